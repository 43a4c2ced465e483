"""factory-boy factories for every model, committing through the test session.

The session is bound to the backend under test by the ``_app`` fixture and
removed after each test.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import factory
from factory.alchemy import SQLAlchemyModelFactory
from sqlalchemy import select
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import scoped_session, sessionmaker

from marketplace.accounts.models import (
    AccountLink,
    ApiToken,
    LinkPurpose,
    LoginAttempt,
    Organisation,
    Role,
    User,
)
from marketplace.accounts.passwords import PasswordHasher
from marketplace.accounts.services import API_TOKEN_PREFIX, organisation_key, token_digest
from marketplace.core.idempotency import IdempotencyRecord
from marketplace.disputes.models import Concern, ConcernState, ConcernStateChange
from marketplace.evaluations.models import Accreditation
from marketplace.funding.models import (
    LIVE_STATES,
    Pledge,
    PledgeState,
    PledgeStateChange,
)
from marketplace.ledger.models import AccountKind, JournalEntry, LedgerAccount
from marketplace.ledger.services import Leg, get_account, post
from marketplace.notifications.models import Notification
from marketplace.payments.models import (
    ConnectedAccount,
    MoneyState,
    Payment,
    PaymentKind,
    PaymentSetup,
    PaymentState,
    ReconciliationRun,
    Refund,
    SetupState,
    StripeCustomer,
    StripeEvent,
    Transfer,
)
from marketplace.pools.models import Pool, PoolState
from marketplace.projects.models import (
    Project,
    ProjectState,
    ProjectStateChange,
    Theme,
    ValuationSnapshot,
    city_key,
)
from marketplace.registry.models import BlockStatus, Claim, Purpose, Retirement, TokenBlock
from marketplace.rounds.models import Round, RoundState
from outcomes.catalogue import OutcomeType
from outcomes.commitments import OutcomeCommitment
from outcomes.evaluation import (
    Evaluation,
    EvaluationResult,
    EvaluationState,
    EvaluationStateChange,
)
from outcomes.evidence import EvidenceFile
from outcomes.progress import ProgressReport
from valuation import EvidenceGrade, Per


class TestSession(OrmSession):
    """The tests' session. Rolling back also forgets every object it holds, even
    with no transaction open, so a read after a request sees what it wrote."""

    def rollback(self) -> None:
        super().rollback()
        self.expire_all()


Session = scoped_session(sessionmaker(class_=TestSession, expire_on_commit=False))

DEFAULT_PASSWORD = "correct horse battery"
# Hashed once with the testing profile's cost, so factories stay fast.
_HASHER = PasswordHasher(time_cost=1, memory_cost_kib=1024, parallelism=1)
DEFAULT_PASSWORD_HASH = _HASHER.hash(DEFAULT_PASSWORD)


def _now() -> datetime:
    return datetime.now(UTC)


class BaseFactory(SQLAlchemyModelFactory):
    class Meta:
        abstract = True
        sqlalchemy_session = Session
        sqlalchemy_session_persistence = "commit"


class OrganisationFactory(BaseFactory):
    class Meta:
        model = Organisation

    name = factory.Sequence(lambda n: f"Organisation {n}")
    name_key = factory.LazyAttribute(lambda o: organisation_key(o.name))
    created_at = factory.LazyFunction(_now)
    # verified unless a test says otherwise (registration makes unverified ones)
    verified_at = factory.LazyFunction(_now)


class UserFactory(BaseFactory):
    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"user{n}@example.org")
    name = factory.Faker("name")
    role = Role.BUYER
    organisation = factory.SubFactory(OrganisationFactory)
    password_hash = DEFAULT_PASSWORD_HASH
    is_active = True
    created_at = factory.LazyFunction(_now)
    email_verified_at = factory.SelfAttribute("created_at")

    class Params:
        admin = factory.Trait(role=Role.ADMIN)
        evaluator = factory.Trait(role=Role.EVALUATOR)
        entrepreneur = factory.Trait(role=Role.ENTREPRENEUR)
        buyer = factory.Trait(role=Role.BUYER)

    @factory.post_generation
    def accredited(obj, create, extracted, **kwargs):
        """An evaluator comes accredited for every theme unless ``accredited=False``."""
        if create and obj.role is Role.EVALUATOR and extracted is not False:
            AccreditationFactory(user_id=obj.id)


class ApiTokenFactory(BaseFactory):
    """A token whose secret is kept on the instance as ``secret`` for the test."""

    class Meta:
        model = ApiToken

    secret = factory.LazyFunction(lambda: API_TOKEN_PREFIX + secrets.token_urlsafe(32))
    user = factory.SubFactory(UserFactory)
    name = "test token"
    token_hash = factory.LazyAttribute(lambda o: token_digest(o.secret))
    prefix = factory.LazyAttribute(lambda o: o.secret[:8])
    created_at = factory.LazyFunction(_now)

    @classmethod
    def _create(cls, model_class, *args, secret, **kwargs):
        token = super()._create(model_class, *args, **kwargs)
        token.secret = secret  # not a column: only the digest is stored
        return token


class LoginAttemptFactory(BaseFactory):
    class Meta:
        model = LoginAttempt

    email = factory.Sequence(lambda n: f"user{n}@example.org")
    remote_addr = "127.0.0.1"
    attempted_at = factory.LazyFunction(_now)
    succeeded = False


class OutcomeTypeFactory(BaseFactory):
    class Meta:
        model = OutcomeType

    code = factory.Sequence(lambda n: f"TEST_OUTCOME_{n}")
    name = factory.Sequence(lambda n: f"Test outcome {n}")
    unit = "person"
    proxy_value = Decimal("1000")
    currency = "EUR"
    per = Per.YEAR
    price_year = 2025
    basis = "fiscal"
    haircut = Decimal("1")
    deadweight = Decimal("0.2")
    displacement = Decimal("0.1")
    attribution = Decimal("0.2")
    drop_off = Decimal("0.3")
    duration_years = 2
    source = "Test source"
    url = "https://example.org/source"
    licence = "CC BY"
    created_at = factory.LazyFunction(_now)


class ProjectFactory(BaseFactory):
    """A project in any state; listed states get a price and threshold."""

    class Meta:
        model = Project

    organisation = factory.SubFactory(OrganisationFactory)
    created_by = factory.SubFactory(
        UserFactory, role=Role.ENTREPRENEUR, organisation=factory.SelfAttribute("..organisation")
    )
    title = factory.Sequence(lambda n: f"Project {n}")
    summary = "A project that helps people in Rotterdam into work."
    city = "Rotterdam"
    city_key = factory.LazyAttribute(lambda o: city_key(o.city))
    theme = Theme.WORK
    budget_cents = 6_000_000
    premium_rate = Decimal("0.25")
    funding_deadline = factory.LazyFunction(lambda: date.today() + timedelta(days=60))
    start_date = factory.LazyAttribute(lambda o: o.funding_deadline + timedelta(days=1))
    end_date = factory.LazyAttribute(lambda o: o.start_date + timedelta(days=365))
    state = ProjectState.DRAFT
    created_at = factory.LazyFunction(_now)
    updated_at = factory.LazyFunction(_now)
    tokens_total = factory.LazyAttribute(lambda o: None if o.state in UNVALUED else 2540)
    token_price_cents = factory.LazyAttribute(lambda o: None if o.state in UNVALUED else 2953)
    threshold_tokens = factory.LazyAttribute(lambda o: None if o.state in UNVALUED else 2032)
    listed_at = factory.LazyAttribute(
        lambda o: _now() if o.state not in (*UNVALUED, ProjectState.VALUED) else None
    )

    @factory.post_generation
    def outcomes(project, create, extracted, **kwargs):
        """One line of 20 people into work, unless ``outcomes=[...]`` was given."""
        if not create or extracted is not None or project.outcomes:
            return
        emp = Session.scalars(
            select(OutcomeType).where(OutcomeType.code == "EMP_BIJSTAND_TO_WORK")
        ).one()
        project.outcomes.append(
            OutcomeCommitment(
                position=0, outcome_type=emp, target_quantity=20, evidence_grade=EvidenceGrade.C
            )
        )
        Session.commit()


UNVALUED = (ProjectState.DRAFT, ProjectState.SUBMITTED, ProjectState.REJECTED)


class OutcomeCommitmentFactory(BaseFactory):
    class Meta:
        model = OutcomeCommitment

    project_id = factory.LazyFunction(lambda: ProjectFactory(outcomes=[]).id)
    position = factory.Sequence(lambda n: n)
    outcome_type = factory.SubFactory(OutcomeTypeFactory)
    target_quantity = 10
    evidence_grade = EvidenceGrade.C


class ProjectStateChangeFactory(BaseFactory):
    class Meta:
        model = ProjectStateChange

    project = factory.SubFactory(ProjectFactory)
    at = factory.LazyFunction(_now)
    from_state = None
    to_state = factory.SelfAttribute("project.state")
    actor = factory.SubFactory(UserFactory, role=Role.ENTREPRENEUR)
    reason = "created"


class ValuationSnapshotFactory(BaseFactory):
    """A snapshot as value_project writes it, for one line of the project."""

    class Meta:
        model = ValuationSnapshot

    project_id = factory.LazyFunction(lambda: ProjectFactory(state=ProjectState.VALUED).id)
    created_at = factory.LazyFunction(_now)
    created_by = factory.SubFactory(UserFactory, role=Role.ADMIN)
    method_version = 1
    inputs = factory.LazyFunction(lambda: {"parameters": {"valuation_year": 2027}, "lines": []})
    result = factory.LazyFunction(lambda: {"method_version": 1, "lines": []})
    total_present_value_cents = 36_000_000
    total_conservative_value_cents = 25_400_000
    tokens_total = 2540
    budget_cents = 6_000_000
    premium_rate = Decimal("0.25")
    token_price_cents = 2953
    threshold_tokens = 2032


# Models without a factory, and why.
WITHOUT_FACTORY = {
    "ListingVersion": "one row, created by migration 0003 and restored after every test",
}


class LedgerAccountFactory(BaseFactory):
    class Meta:
        model = LedgerAccount

    code = factory.Sequence(lambda n: f"test:account:{n}")
    kind = AccountKind.BUYER
    debit_normal = False
    may_go_negative = True
    balance_cents = 0


class JournalEntryFactory(BaseFactory):
    """An entry posted through the ledger service (a bare row would break the balances):
    ``amount_cents`` moves from a fresh buyer account into the Stripe clearing account."""

    class Meta:
        model = JournalEntry

    reference = factory.Sequence(lambda n: f"test:entry:{n}")
    kind = "test"
    amount_cents = 1000  # not a column: handed to _create, which posts it

    @classmethod
    def _create(cls, model_class, *, reference, kind, amount_cents):
        clearing = get_account(Session(), AccountKind.STRIPE_CLEARING)
        buyer = LedgerAccountFactory()
        entry = post(
            Session(),
            reference=reference,
            kind=kind,
            now=_now(),
            legs=[Leg(debit=clearing, credit=buyer, amount_cents=amount_cents)],
        )
        Session.commit()
        return entry


WITHOUT_FACTORY["BalanceReturn"] = (
    "made only from Stripe's word on a buyer's cash balance; the tests make one through the "
    "development Stripe (tests/integration/test_sepa_and_bank_transfer.py)"
)
WITHOUT_FACTORY["JournalLeg"] = "legs exist only inside an entry: JournalEntryFactory makes them"
WITHOUT_FACTORY["StripePace"] = (
    "one row a rate limit, made by the pacer on first use (its tests use one)"
)


# ---------------------------------------------------------------- funding and payments


class PaymentSetupFactory(BaseFactory):
    """A card saved for off-session charges (as Stripe would have confirmed it)."""

    class Meta:
        model = PaymentSetup

    organisation_id = factory.LazyFunction(lambda: OrganisationFactory().id)
    user_id = factory.LazyAttribute(
        lambda o: (
            UserFactory(
                role=Role.BUYER, organisation=Session.get(Organisation, o.organisation_id)
            ).id
        )
    )
    requested_method = "pm_card_visa"
    state = SetupState.SUCCEEDED
    setup_intent_id = factory.Sequence(lambda n: f"seti_test{n}")
    payment_method_id = factory.Sequence(lambda n: f"pm_test{n}")
    brand = "visa"
    last4 = "4242"
    created_at = factory.LazyFunction(_now)


class PledgeFactory(BaseFactory):
    """A committed pledge on a project in funding (its tokens counted as pledged)."""

    class Meta:
        model = Pledge

    project = factory.SubFactory(ProjectFactory, state=ProjectState.FUNDING)
    organisation = factory.SubFactory(OrganisationFactory)
    user = factory.SubFactory(
        UserFactory, role=Role.BUYER, organisation=factory.SelfAttribute("..organisation")
    )
    payment_setup = factory.SubFactory(
        PaymentSetupFactory, organisation_id=factory.SelfAttribute("..organisation.id")
    )
    tokens = 10
    amount_cents = factory.LazyAttribute(lambda o: o.tokens * o.project.token_price_cents)
    state = PledgeState.COMMITTED
    created_at = factory.LazyFunction(_now)
    updated_at = factory.LazyFunction(_now)

    @factory.post_generation
    def counted(pledge, create, extracted, **kwargs):
        if create and pledge.state in LIVE_STATES:
            pledge.project.tokens_pledged += pledge.tokens
            if pledge.state is PledgeState.PAID:
                pledge.project.tokens_paid += pledge.tokens
            Session.commit()


class PledgeStateChangeFactory(BaseFactory):
    class Meta:
        model = PledgeStateChange

    pledge_id = factory.LazyFunction(lambda: PledgeFactory().id)
    at = factory.LazyFunction(_now)
    from_state = None
    to_state = PledgeState.COMMITTED
    reason = "pledged"


class PaymentFactory(BaseFactory):
    class Meta:
        model = Payment

    pledge = factory.SubFactory(PledgeFactory)
    attempt = 1
    kind = PaymentKind.OFF_SESSION
    amount_cents = factory.LazyAttribute(lambda o: o.pledge.amount_cents)
    payment_method_id = factory.LazyAttribute(lambda o: o.pledge.payment_setup.payment_method_id)
    state = PaymentState.CREATED
    created_at = factory.LazyFunction(_now)
    updated_at = factory.LazyFunction(_now)

    @classmethod
    def _create(cls, model_class, *args, pledge=None, **kwargs):
        return super()._create(model_class, *args, pledge_id=pledge.id, **kwargs)


class RefundFactory(BaseFactory):
    class Meta:
        model = Refund

    payment = factory.SubFactory(PaymentFactory, state=PaymentState.SUCCEEDED)
    pledge_id = factory.LazyAttribute(lambda o: o.payment.pledge_id)
    reason = "unfunded"
    amount_cents = factory.LazyAttribute(lambda o: o.payment.amount_cents)
    state = MoneyState.CREATED
    created_at = factory.LazyFunction(_now)
    updated_at = factory.LazyFunction(_now)

    @classmethod
    def _create(cls, model_class, *args, payment=None, **kwargs):
        return super()._create(model_class, *args, payment_id=payment.id, **kwargs)


class ConnectedAccountFactory(BaseFactory):
    class Meta:
        model = ConnectedAccount

    organisation_id = factory.LazyFunction(lambda: OrganisationFactory().id)
    account_id = factory.Sequence(lambda n: f"acct_test{n}")
    details_submitted = True
    payouts_enabled = True
    created_at = factory.LazyFunction(_now)
    updated_at = factory.LazyFunction(_now)


class TransferFactory(BaseFactory):
    class Meta:
        model = Transfer

    project = factory.SubFactory(ProjectFactory, state=ProjectState.RUNNING)
    organisation_id = factory.LazyAttribute(lambda o: o.project.organisation_id)
    kind = "cost_tranche"
    amount_cents = 5_700_471
    fee_cents = 300_025
    state = MoneyState.CREATED
    created_at = factory.LazyFunction(_now)
    updated_at = factory.LazyFunction(_now)

    @classmethod
    def _create(cls, model_class, *args, project=None, **kwargs):
        return super()._create(model_class, *args, project_id=project.id, **kwargs)


class StripeCustomerFactory(BaseFactory):
    class Meta:
        model = StripeCustomer

    organisation_id = factory.LazyFunction(lambda: OrganisationFactory().id)
    customer_id = factory.Sequence(lambda n: f"cus_test{n}")
    created_at = factory.LazyFunction(_now)


class StripeEventFactory(BaseFactory):
    class Meta:
        model = StripeEvent

    id = factory.Sequence(lambda n: f"evt_test{n}")
    type = "payment_intent.succeeded"
    object_id = factory.Sequence(lambda n: f"pi_test{n}")
    received_at = factory.LazyFunction(_now)
    outcome = "not used"


class IdempotencyRecordFactory(BaseFactory):
    class Meta:
        model = IdempotencyRecord

    user_id = factory.LazyFunction(lambda: UserFactory().id)
    key = factory.Sequence(lambda n: f"key-{n}")
    fingerprint = "0" * 64
    status_code = 201
    response = factory.LazyFunction(lambda: {"id": 1})
    created_at = factory.LazyFunction(_now)


class NotificationFactory(BaseFactory):
    class Meta:
        model = Notification

    organisation_id = factory.LazyFunction(lambda: OrganisationFactory().id)
    kind = "payment_failed"
    subject = "Payment needed"
    body = "Please pay within the grace period."
    created_at = factory.LazyFunction(_now)


class ReconciliationRunFactory(BaseFactory):
    class Meta:
        model = ReconciliationRun

    at = factory.LazyFunction(_now)
    checked = 0
    differences = factory.LazyFunction(list)


# ---------------------------------------------------------------- evaluation and settlement


class EvaluationFactory(BaseFactory):
    """An evaluation assigned to an evaluator, of a running project."""

    class Meta:
        model = Evaluation

    project_id = factory.LazyFunction(lambda: ProjectFactory(state=ProjectState.RUNNING).id)
    evaluator_id = factory.LazyFunction(lambda: UserFactory(role=Role.EVALUATOR).id)
    assigned_by_id = factory.LazyFunction(lambda: UserFactory(role=Role.ADMIN).id)
    state = EvaluationState.ASSIGNED
    assigned_at = factory.LazyFunction(_now)
    declaration = "I have no ties to the project, its organisation or its buyers."
    declared_at = factory.LazyFunction(_now)


class AccreditationFactory(BaseFactory):
    """Accredited for every theme, from 2000 to 2100."""

    class Meta:
        model = Accreditation

    user_id = factory.LazyFunction(lambda: UserFactory(role=Role.EVALUATOR, accredited=False).id)
    body = "Stichting Maatschappelijke Evaluatie"
    reference = factory.Sequence(lambda n: f"SME-{n:05d}")
    themes = factory.LazyFunction(lambda: [t.value for t in Theme])
    valid_from = date(2000, 1, 1)
    valid_until = date(2100, 12, 31)
    created_by_id = factory.LazyFunction(lambda: UserFactory(role=Role.ADMIN).id)
    created_at = factory.LazyFunction(_now)
    updated_at = factory.LazyFunction(_now)


class EvaluationResultFactory(BaseFactory):
    class Meta:
        model = EvaluationResult

    evaluation_id = factory.LazyFunction(lambda: EvaluationFactory().id)
    commitment_id = factory.LazyAttribute(
        lambda o: Session.scalars(
            select(OutcomeCommitment.id)
            .join(Evaluation, Evaluation.project_id == OutcomeCommitment.project_id)
            .where(Evaluation.id == o.evaluation_id)
        ).first()
    )
    verified_quantity = 14
    met_grade = EvidenceGrade.C
    evidence_note = "Payroll records of the employers, checked against the municipality's data."


class EvaluationStateChangeFactory(BaseFactory):
    class Meta:
        model = EvaluationStateChange

    evaluation_id = factory.LazyFunction(lambda: EvaluationFactory().id)
    at = factory.LazyFunction(_now)
    from_state = None
    to_state = EvaluationState.ASSIGNED
    reason = "assigned"


WITHOUT_FACTORY["Settlement"] = (
    "a settlement is only ever computed by settle_project from an approved evaluation; "
    "tests make it that way"
)
WITHOUT_FACTORY["SettlementShare"] = "shares exist only inside a settlement"


class TokenBlockFactory(BaseFactory):
    """An issued block of serials 1..quantity of a settled project."""

    class Meta:
        model = TokenBlock

    project_id = factory.LazyFunction(lambda: ProjectFactory(state=ProjectState.SETTLED).id)
    vintage = 2027
    first_serial = 1
    last_serial = 100
    holder_id = factory.LazyFunction(lambda: OrganisationFactory().id)
    status = BlockStatus.ISSUED
    issued_at = factory.LazyFunction(_now)


class RetirementFactory(BaseFactory):
    class Meta:
        model = Retirement

    project_id = factory.LazyFunction(lambda: ProjectFactory(state=ProjectState.SETTLED).id)
    organisation_id = factory.LazyFunction(lambda: OrganisationFactory().id)
    user_id = factory.LazyAttribute(
        lambda o: UserFactory(organisation=Session.get(Organisation, o.organisation_id)).id
    )
    quantity = 10
    beneficiary = "Gemeente Rotterdam"
    purpose = Purpose.CSR_VOLUNTARY
    claim = Claim.CONTRIBUTION
    retired_at = factory.LazyFunction(_now)


# ---------------------------------------------------------------- progress and evidence


class ProgressReportFactory(BaseFactory):
    """A report on a running project, with a figure for its first outcome."""

    class Meta:
        model = ProgressReport

    project_id = factory.LazyFunction(lambda: ProjectFactory(state=ProjectState.RUNNING).id)
    author_id = factory.LazyAttribute(
        lambda o: (
            UserFactory(
                role=Role.ENTREPRENEUR, organisation=Session.get(Project, o.project_id).organisation
            ).id
        )
    )
    text = "Twelve people started work this quarter; four more start in January."
    figures = factory.LazyAttribute(
        lambda o: {
            str(
                Session.scalars(
                    select(OutcomeCommitment.id).where(OutcomeCommitment.project_id == o.project_id)
                ).first()
            ): 12
        }
    )
    created_at = factory.LazyFunction(_now)


class EvidenceFileFactory(BaseFactory):
    """The row of an evidence file of an evaluation (the bytes are the store's business)."""

    class Meta:
        model = EvidenceFile

    evaluation_id = factory.LazyFunction(lambda: EvaluationFactory().id)
    project_id = factory.LazyAttribute(
        lambda o: Session.get(Evaluation, o.evaluation_id).project_id
    )
    uploaded_by_id = factory.LazyAttribute(
        lambda o: Session.get(Evaluation, o.evaluation_id).evaluator_id
    )
    filename = "payroll-2027.pdf"
    content_type = "application/pdf"
    size_bytes = 2048
    sha256 = factory.LazyFunction(lambda: secrets.token_hex(32))
    storage_key = factory.LazyFunction(lambda: secrets.token_hex(24))
    uploaded_at = factory.LazyFunction(_now)


WITHOUT_FACTORY["AuditEvent"] = (
    "written only by the audit hooks, as a side effect of what they record; tests make the "
    "events happen"
)


class AccountLinkFactory(BaseFactory):
    """An open link to verify a person's address (its secret is not kept: only its digest)."""

    class Meta:
        model = AccountLink

    purpose = LinkPurpose.VERIFY_EMAIL
    token_hash = factory.Sequence(lambda n: hashlib.sha256(f"link-{n}".encode()).hexdigest())
    email = factory.Sequence(lambda n: f"link{n}@example.org")
    user_id = factory.LazyFunction(lambda: UserFactory().id)
    created_at = factory.LazyFunction(_now)
    expires_at = factory.LazyAttribute(lambda link: link.created_at + timedelta(days=3))


# ---------------------------------------------------------------- concerns and disputes


class ConcernFactory(BaseFactory):
    """A concern as filed (about any project: the service checks it is settled)."""

    class Meta:
        model = Concern

    project_id = factory.LazyFunction(lambda: ProjectFactory().id)
    user_id = factory.LazyFunction(lambda: UserFactory().id)
    organisation_id = factory.LazyAttribute(lambda o: Session.get(User, o.user_id).organisation_id)
    text = "The payroll records shown for the jobs outcome do not match the employers' own."
    state = ConcernState.FILED
    created_at = factory.LazyFunction(_now)
    updated_at = factory.LazyFunction(_now)


class ConcernStateChangeFactory(BaseFactory):
    class Meta:
        model = ConcernStateChange

    concern_id = factory.LazyFunction(lambda: ConcernFactory().id)
    at = factory.LazyFunction(_now)
    from_state = None
    to_state = ConcernState.FILED
    reason = "filed"


WITHOUT_FACTORY["TokenTransfer"] = (
    "a transfer moves serial blocks: only registry.services.transfer makes one, as the "
    "tests do (tests/integration/test_token_transfers.py)"
)
WITHOUT_FACTORY["TransferRange"] = "ranges exist only inside a transfer"
WITHOUT_FACTORY["Obligation"] = (
    "registered through obligations.services.register, which fixes the amount due by the "
    "rule, as the tests do (tests/integration/test_obligations.py)"
)
WITHOUT_FACTORY["ObligationStateChange"] = "history rows exist only beside their obligation"
WITHOUT_FACTORY["Credit"] = (
    "a credit exists only with the retirement that earns it (obligations.services.retire)"
)
WITHOUT_FACTORY["CreditStateChange"] = "history rows exist only beside their credit"
WITHOUT_FACTORY["Receipt"] = (
    "numbered documents exist only as receipts.services.issue writes them, number and PDF "
    "together (tests/integration/test_receipts.py)"
)
WITHOUT_FACTORY["ReceiptCounter"] = "a year's counter row is made by the first issue of the year"


class RoundFactory(BaseFactory):
    """An open funding round taking submissions now, its projects funded in two months."""

    class Meta:
        model = Round

    name = factory.Sequence(lambda n: f"Ronde {n}")
    description = "Work and youth projects in Rotterdam."
    themes = factory.LazyFunction(list)
    cities = factory.LazyFunction(list)
    submissions_open = factory.LazyFunction(lambda: _now().date() - timedelta(days=1))
    submissions_close = factory.LazyFunction(lambda: _now().date() + timedelta(days=30))
    funding_deadline = factory.LazyFunction(lambda: _now().date() + timedelta(days=60))
    state = RoundState.OPEN
    created_by_id = factory.LazyFunction(lambda: UserFactory(role=Role.ADMIN).id)
    created_at = factory.LazyFunction(_now)
    updated_at = factory.LazyFunction(_now)


WITHOUT_FACTORY["RoundStateChange"] = "history rows exist only beside their round"


class PoolFactory(BaseFactory):
    """An active pool of a buyer organisation matching 1:1, paying with a saved card."""

    class Meta:
        model = Pool

    organisation_id = factory.LazyFunction(lambda: OrganisationFactory().id)
    created_by_id = factory.LazyAttribute(
        lambda o: (
            UserFactory(
                role=Role.BUYER, organisation=Session.get(Organisation, o.organisation_id)
            ).id
        )
    )
    payment_setup_id = factory.LazyAttribute(
        lambda o: PaymentSetupFactory(organisation_id=o.organisation_id, user_id=o.created_by_id).id
    )
    name = "Rotterdam Jobs Fund"
    budget_cents = 1_000_000
    match_ratio = Decimal("1")
    cap_per_project_cents = 500_000
    themes = factory.LazyFunction(list)
    cities = factory.LazyFunction(list)
    state = PoolState.ACTIVE
    created_at = factory.LazyFunction(_now)
    updated_at = factory.LazyFunction(_now)


WITHOUT_FACTORY["PoolStateChange"] = "history rows exist only beside their pool"
WITHOUT_FACTORY["PoolProject"] = "a running total, written by the matches of a pool's pledges"
