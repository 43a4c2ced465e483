"""Who may do what: every route of the application, tried by eight people.

The routes come from the application's URL map, so a route added later fails
``test_every_route_has_an_audience`` until it is given one here. Each route
is called (page with the session cookie and a CSRF token, API with a bearer
token) by everyone outside its audience, on a settled project and on one in
funding, and must answer without success (no 2xx) and change nothing in the
database. Everyone inside the audience reads its GET routes with success, and
no GET, by anyone, changes the database.

Left out of the comparison: bookkeeping that a read or a refused request is
meant to write (when a token was last used, login attempts, the audit log).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from flask import url_for
from sqlalchemy import select

from marketplace.accounts.models import ApiToken, LinkPurpose, Role
from marketplace.obligations import services as obligations
from marketplace.receipts.models import Receipt
from outcomes.catalogue import OutcomeType
from outcomes.db import Base
from outcomes.evaluation import Evaluation
from outcomes.evidence import EvidenceFile
from tests import factories
from tests.conftest import csrf_from
from tests.factories import OrganisationFactory, ProgressReportFactory, UserFactory
from tests.integration.funding_support import listed_project, pledge_via_api
from tests.integration.test_settlement import (  # noqa: F401 - the fixtures
    retire,
    settled_example,
    worked_example,
)
from tests.support.links import open_links, secret_ids
from tests.support.obligations import accepted_obligation

PEOPLE = (
    "anonymous",
    "admin",
    "owner",
    "other_entrepreneur",
    "buyer",
    "other_buyer",
    "evaluator",
    "other_evaluator",
    "authority",
    "other_authority",
)
EVERYONE = frozenset(PEOPLE)
SIGNED_IN = EVERYONE - {"anonymous"}
ADMIN = frozenset({"admin"})
BUYERS = frozenset({"buyer", "other_buyer"})
ENTREPRENEURS = frozenset({"owner", "other_entrepreneur"})
EVALUATORS = frozenset({"evaluator", "other_evaluator"})
AUTHORITIES = frozenset({"authority", "other_authority"})

# (endpoint, method) -> who may succeed. Object rules (whose project, pledge,
# evaluation) are part of the audience: "owner" owns both projects, "buyer"
# pledged to both, "evaluator" evaluated the settled one.
AUDIENCE: dict[tuple[str, str], frozenset[str]] = {
    # public pages, documents and machine endpoints
    ("web.home", "GET"): EVERYONE,
    ("web.health", "GET"): EVERYONE,
    ("static", "GET"): EVERYONE,
    ("api-docs.openapi_json", "GET"): EVERYONE,
    ("web.choose_language", "POST"): EVERYONE,
    ("accounts.login", "GET"): EVERYONE,
    ("accounts.login", "POST"): EVERYONE,
    ("accounts.register_page", "GET"): EVERYONE,
    ("accounts.register_page", "POST"): EVERYONE,
    # e-mailed links: the secret in the path is the permission
    ("accounts.forgot_password", "GET"): EVERYONE,
    ("accounts.forgot_password", "POST"): EVERYONE,
    ("accounts.verify", "GET"): EVERYONE,
    ("accounts.verify", "POST"): EVERYONE,
    ("accounts.reset_password", "GET"): EVERYONE,
    ("accounts.reset_password", "POST"): EVERYONE,
    ("accounts.confirm_email", "GET"): EVERYONE,
    ("accounts.confirm_email", "POST"): EVERYONE,
    ("accounts.accept_invitation", "GET"): EVERYONE,
    ("accounts.accept_invitation", "POST"): EVERYONE,
    ("projects.marketplace", "GET"): EVERYONE,
    ("projects.detail", "GET"): EVERYONE,
    ("catalogue.catalogue", "GET"): EVERYONE,
    ("catalogue.calculator", "GET"): EVERYONE,
    ("registry.registry", "GET"): EVERYONE,
    ("registry.registry_csv", "GET"): EVERYONE,
    ("registry.retirement", "GET"): EVERYONE,
    ("registry.certificate", "GET"): EVERYONE,
    ("registry.trail", "GET"): EVERYONE,
    ("registry_api.SerialTrail", "GET"): EVERYONE,
    ("dashboards.organisation", "GET"): EVERYONE,
    # Stripe signs its webhooks; no person is involved.
    ("webhooks.stripe_webhook", "POST"): EVERYONE,
    ("accounts_api.Register", "POST"): EVERYONE,
    ("accounts_api.Tokens", "POST"): EVERYONE,
    ("accounts_api.Verify", "POST"): EVERYONE,
    ("catalogue_api.OutcomeTypes", "GET"): EVERYONE,
    ("catalogue_api.OutcomeTypeItem", "GET"): EVERYONE,
    ("projects_api.Projects", "GET"): EVERYONE,
    ("projects_api.ProjectItem", "GET"): EVERYONE,
    ("projects_api.History", "GET"): EVERYONE,
    ("evaluations_api.ProgressReports", "GET"): EVERYONE,
    ("registry_api.RegistryBlocks", "GET"): EVERYONE,
    ("registry_api.OneRetirement", "GET"): EVERYONE,
    # anyone signed in, about themselves
    ("accounts.account", "GET"): SIGNED_IN,
    ("accounts.create_token", "POST"): SIGNED_IN,
    ("accounts.logout", "POST"): SIGNED_IN,
    ("accounts.send_verification", "POST"): SIGNED_IN,
    ("accounts.change_name", "POST"): SIGNED_IN,
    ("accounts.change_password", "POST"): SIGNED_IN,
    ("accounts.change_email", "POST"): SIGNED_IN,
    ("accounts.email_preferences", "POST"): SIGNED_IN,
    ("accounts.colleagues", "GET"): SIGNED_IN,
    ("accounts.organisation_profile", "GET"): SIGNED_IN,
    ("accounts.organisation_profile", "POST"): frozenset({"owner"}),
    # the organisation's owner, for its own colleagues and invitations
    ("accounts.invite", "POST"): frozenset({"owner"}),
    ("accounts.withdraw_invitation", "POST"): frozenset({"owner"}),
    ("accounts.remove_colleague", "POST"): frozenset({"owner"}),
    ("dashboards.dashboard", "GET"): SIGNED_IN,
    ("notifications.notices", "GET"): SIGNED_IN,
    ("notifications.mark_read", "POST"): SIGNED_IN,
    ("accounts_api.Tokens", "GET"): SIGNED_IN,
    ("accounts_api.Me", "GET"): SIGNED_IN,
    ("catalogue_api.Preview", "POST"): SIGNED_IN,
    # the token revoked is the owner's
    ("accounts.revoke_token", "POST"): frozenset({"owner"}),
    ("accounts_api.TokenItem", "DELETE"): frozenset({"owner"}),
    # the panel
    ("reconciliation.ledger", "GET"): ADMIN,
    ("reconciliation.reconcile_now", "POST"): ADMIN,
    ("notifications.outbox", "GET"): ADMIN,
    ("audit.log", "GET"): ADMIN,
    ("audit_api.AuditEvents", "GET"): ADMIN,
    ("projects.review", "GET"): ADMIN,
    ("projects.value", "POST"): ADMIN,
    ("projects.list_project", "POST"): ADMIN,
    ("projects.reject", "POST"): ADMIN,
    ("catalogue.new_outcome_type", "GET"): ADMIN,
    ("catalogue.new_outcome_type", "POST"): ADMIN,
    ("catalogue.retire", "POST"): ADMIN,
    ("evaluations.assign", "POST"): ADMIN,
    ("evaluations.approve", "POST"): ADMIN,
    ("evaluations.send_back", "POST"): ADMIN,
    ("accounts_api.Users", "GET"): ADMIN,
    ("catalogue_api.OutcomeTypes", "POST"): ADMIN,
    ("catalogue_api.RetireOutcomeType", "POST"): ADMIN,
    ("projects_api.Valuation", "POST"): ADMIN,
    ("projects_api.List", "POST"): ADMIN,
    ("projects_api.Reject", "POST"): ADMIN,
    ("evaluations_api.AssignEvaluator", "POST"): ADMIN,
    ("evaluations_api.Approve", "POST"): ADMIN,
    ("evaluations_api.SendBack", "POST"): ADMIN,
    # entrepreneurs, and the owner for its own projects
    ("projects.mine", "GET"): ENTREPRENEURS,
    ("projects.new", "GET"): ENTREPRENEURS,
    ("projects.new", "POST"): ENTREPRENEURS,
    ("funding.payouts", "GET"): ENTREPRENEURS,
    ("funding.start_payouts", "POST"): ENTREPRENEURS,
    ("projects_api.Projects", "POST"): ENTREPRENEURS,
    ("funding_api.PayoutAccount", "GET"): ENTREPRENEURS,
    ("funding_api.PayoutAccount", "POST"): ENTREPRENEURS,
    ("projects.edit", "GET"): frozenset({"owner"}),
    ("projects.edit", "POST"): frozenset({"owner"}),
    ("projects.submit", "POST"): frozenset({"owner"}),
    ("projects.withdraw", "POST"): frozenset({"owner"}),
    ("funding.close_funding", "POST"): frozenset({"owner"}),
    ("evaluations.post_report", "POST"): frozenset({"owner"}),
    ("projects_api.ProjectItem", "PATCH"): frozenset({"owner"}),
    ("projects_api.Submit", "POST"): frozenset({"owner"}),
    ("projects_api.Withdraw", "POST"): frozenset({"owner"}),
    ("funding_api.CloseFunding", "POST"): frozenset({"owner"}),
    ("evaluations_api.ProgressReports", "POST"): frozenset({"owner"}),
    ("evaluations_api.Attachments", "POST"): frozenset({"owner"}),
    ("funding.project_funding", "GET"): frozenset({"owner", "admin"}),
    # buyers, and the buyer for its own pledges
    ("funding.pledges", "GET"): BUYERS | ADMIN,
    ("registry.holdings", "GET"): BUYERS,
    ("registry.retire", "POST"): BUYERS,
    ("registry.visibility", "POST"): BUYERS,
    ("dashboards.impact_csv", "GET"): BUYERS,
    ("dashboards.impact_pdf", "GET"): BUYERS,
    ("funding.pledge", "POST"): BUYERS,
    ("funding.cancel", "POST"): frozenset({"buyer"}),
    ("funding.pay", "POST"): frozenset({"buyer"}),
    ("registry_api.Holdings", "GET"): BUYERS,
    ("registry_api.Retirements", "POST"): BUYERS,
    ("registry_api.Transfers", "POST"): BUYERS,
    ("funding_api.Pledges", "POST"): BUYERS,
    ("funding_api.OwnPledges", "GET"): BUYERS | ADMIN,
    ("funding_api.OnePledge", "GET"): frozenset({"buyer", "admin"}),
    # (the world's pledge has no bank transfer awaited: 404 for its buyer too)
    ("funding_api.PledgeInvoice", "GET"): frozenset(),
    ("funding.invoice", "GET"): frozenset(),
    ("funding_api.CancelPledge", "POST"): frozenset({"buyer"}),
    ("funding_api.PayPledge", "POST"): frozenset({"buyer"}),
    # evaluation: the assigned evaluator and the panel
    ("evaluations.queue", "GET"): EVALUATORS | ADMIN,
    ("evaluations.form", "GET"): frozenset({"evaluator", "admin"}),
    ("evaluations.save_results", "POST"): frozenset({"evaluator"}),
    ("evaluations.upload_evidence", "POST"): frozenset({"evaluator"}),
    ("evaluations_api.Evaluations", "GET"): EVALUATORS | ADMIN,
    ("evaluations_api.OneEvaluation", "GET"): frozenset({"evaluator", "admin"}),
    ("evaluations_api.Results", "PUT"): frozenset({"evaluator"}),
    ("evaluations_api.Submit", "POST"): frozenset({"evaluator"}),
    ("evaluations_api.Evidence", "POST"): frozenset({"evaluator"}),
    ("evaluations_api.Evidence", "GET"): frozenset({"evaluator", "admin"}),
    # the parties to a settled project
    ("settlement.settlement_page", "GET"): frozenset({"owner", "buyer", "admin"}),
    ("settlement_api.ProjectSettlement", "GET"): frozenset({"owner", "buyer", "admin"}),
    ("evaluations.download", "GET"): frozenset({"owner", "evaluator", "admin"}),
    ("evaluations_api.FileContent", "GET"): frozenset({"owner", "evaluator", "admin"}),
    # accreditation and declarations
    ("evaluations.evaluators", "GET"): ADMIN,
    ("evaluations.add_accreditation", "POST"): ADMIN,
    ("evaluations.change_accreditation", "POST"): ADMIN,
    ("evaluations_api.Accreditations", "GET"): ADMIN,
    ("evaluations_api.Accreditations", "POST"): ADMIN,
    ("evaluations_api.OneAccreditation", "PUT"): ADMIN,
    ("evaluations.declare", "POST"): frozenset({"evaluator"}),
    ("evaluations_api.Declaration", "POST"): frozenset({"evaluator"}),
    # concerns and disputes: anyone signed in raises one; admins decide; findings public
    ("disputes.new_concern", "GET"): SIGNED_IN,
    ("disputes.file_concern", "POST"): SIGNED_IN,
    ("disputes_api.ProjectConcerns", "POST"): SIGNED_IN,
    ("disputes_api.ConcernFiles", "POST"): frozenset({"buyer"}),  # the person who raised it
    ("disputes.concerns", "GET"): ADMIN,
    ("disputes.concern", "GET"): ADMIN,
    ("disputes.open_dispute", "POST"): ADMIN,
    ("disputes.dismiss", "POST"): ADMIN,
    ("disputes.uphold", "POST"): ADMIN,
    ("disputes_api.Concerns", "GET"): ADMIN,
    ("disputes_api.OneConcern", "GET"): frozenset({"admin", "buyer"}),  # and its filer
    ("disputes_api.OpenDispute", "POST"): ADMIN,
    ("disputes_api.DismissConcern", "POST"): ADMIN,
    ("disputes_api.Uphold", "POST"): ADMIN,
    ("disputes.buffer", "GET"): EVERYONE,
    # organisations: the owner keeps its legal details; admins verify
    ("organisations_api.OneOrganisation", "PUT"): frozenset({"owner"}),
    ("organisations_api.VerifyOrganisation", "POST"): ADMIN,
    ("dashboards.verify", "POST"): ADMIN,
    ("disputes_api.Buffer", "GET"): EVERYONE,
    ("disputes_api.ProjectDisputes", "GET"): EVERYONE,
    # social-return obligations: the buyer's and its authority's, private to both
    ("obligations.listing", "GET"): BUYERS | AUTHORITIES,
    # funding rounds: public pages; the platform team runs them
    ("rounds.listing", "GET"): EVERYONE,
    ("organisations_api.OpenData", "GET"): EVERYONE,
    ("pools_api.Pools", "POST"): BUYERS,
    ("pools.listing", "GET"): BUYERS | ADMIN,
    ("pools.open_pool", "POST"): BUYERS,
    ("pools.detail", "GET"): frozenset({"buyer", "admin"}),
    ("pools_api.OnePool", "GET"): frozenset({"buyer", "admin"}),
    ("rounds.detail", "GET"): EVERYONE,
    ("rounds.new", "GET"): ADMIN,
    ("rounds.new", "POST"): ADMIN,
    ("rounds.edit", "GET"): ADMIN,
    ("rounds.edit", "POST"): ADMIN,
    ("rounds.close", "POST"): ADMIN,
    ("rounds_api.Rounds", "GET"): EVERYONE,
    ("rounds_api.Rounds", "POST"): ADMIN,
    ("rounds_api.OneRound", "GET"): EVERYONE,
    ("rounds_api.OneRound", "PATCH"): ADMIN,
    ("rounds_api.CloseRound", "POST"): ADMIN,
    ("obligations.new", "GET"): BUYERS,
    ("obligations.register", "POST"): BUYERS,
    ("obligations.detail", "GET"): frozenset({"buyer", "authority"}),
    ("obligations.accept", "POST"): frozenset({"authority"}),
    ("obligations.reject", "POST"): frozenset({"authority"}),
    ("obligations.sign_off", "POST"): frozenset({"authority"}),
    ("obligations.reject_credit", "POST"): frozenset({"authority"}),
    ("obligations.factor", "POST"): AUTHORITIES,
    ("obligations.export", "GET"): AUTHORITIES,
    ("obligations_api.Obligations", "GET"): BUYERS | AUTHORITIES,
    ("obligations_api.Obligations", "POST"): BUYERS,
    ("obligations_api.OneObligation", "GET"): frozenset({"buyer", "authority"}),
    ("obligations_api.ObligationCredits", "GET"): frozenset({"buyer", "authority"}),
    ("obligations_api.AcceptObligation", "POST"): frozenset({"authority"}),
    ("obligations_api.RejectObligation", "POST"): frozenset({"authority"}),
    ("obligations_api.SignOffCredit", "POST"): frozenset({"authority"}),
    ("obligations_api.RejectCredit", "POST"): frozenset({"authority"}),
    ("obligations_api.Authorities", "GET"): EVERYONE,
    ("obligations_api.AuthorityFactor", "PUT"): frozenset({"authority"}),
    ("registry.transfer", "POST"): BUYERS,
    # receipts and credit notes: the buyer's organisation's, and admins
    ("receipts.pdf", "GET"): frozenset({"buyer", "admin"}),
    ("receipts_api.Receipts", "GET"): BUYERS | ADMIN,
    ("receipts_api.OneReceipt", "GET"): frozenset({"buyer", "admin"}),
}

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
# Bookkeeping that reads and refusals are meant to write.
NOT_COMPARED_TABLES = {"login_attempts", "audit_events"}
NOT_COMPARED_COLUMNS = {("api_tokens", "last_used_at"), ("users", "last_login_at")}


def routes(app) -> list[tuple[str, str]]:
    return sorted(
        {
            (rule.endpoint, method)
            for rule in app.url_map.iter_rules()
            for method in rule.methods
            if method in METHODS
        }
    )


def test_every_route_has_an_audience(app):
    assert set(routes(app)) == set(AUDIENCE)


def database_state(app) -> str:
    """A digest of every row of every compared table."""
    digest = hashlib.sha256()
    engine = app.extensions["db"].engine
    with engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            if table.name in NOT_COMPARED_TABLES:
                continue
            columns = [c for c in table.columns if (table.name, c.name) not in NOT_COMPARED_COLUMNS]
            rows = connection.execute(select(*columns).order_by(*table.primary_key.columns))
            digest.update(table.name.encode())
            for row in rows:
                digest.update(repr(tuple(row)).encode())
    return digest.hexdigest()


@pytest.fixture
def world(app, client, session, auth_headers, settled_example):
    """A settled project and a project in funding, both the owner's, and the eight people."""
    settled, admin, buyer = settled_example.project, settled_example.admin, settled_example.bank
    owner = settled.created_by
    evaluation = session.get(Evaluation, settled_example.evaluation_id)
    retirement = retire(client, auth_headers(buyer), settled.id, 10, "matrix").json
    in_funding = listed_project(organisation=owner.organisation, created_by=owner)
    session.commit()
    pledge = pledge_via_api(client, auth_headers(buyer), in_funding.id, 5).json
    report = ProgressReportFactory(project_id=settled.id, author_id=owner.id)
    data = b"%PDF-1.4\n% payroll\n"
    evidence = factories.EvidenceFileFactory(
        evaluation_id=evaluation.id,
        storage_key=app.extensions["evidence"].put(data),
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
    )
    owners_token = factories.ApiTokenFactory(user=owner)
    owner.is_owner = True
    colleague = UserFactory(role=Role.ENTREPRENEUR, organisation=owner.organisation)
    session.flush()
    links = open_links(session, owner, "matrix.example")
    concern = factories.ConcernFactory(project_id=settled.id, user_id=buyer.id)
    accreditation = factories.AccreditationFactory(user_id=settled_example.evaluator.id)
    funding_round = factories.RoundFactory()
    pool = factories.PoolFactory(organisation_id=buyer.organisation_id, created_by_id=buyer.id)
    contracting = OrganisationFactory(sroi_factor=Decimal(1))
    authority = UserFactory(role=Role.AUTHORITY, organisation=contracting)
    session.commit()
    owed = accepted_obligation(session, buyer, authority, "MATRIX-1", datetime.now(UTC))
    session.commit()
    credited = retire(
        client,
        auth_headers(buyer),
        settled.id,
        2,
        "matrix-sroi",
        purpose="sroi_obligation",
        obligation_id=owed,
    ).json
    credit = obligations.credit_of(session, credited["id"])
    people = {
        "admin": admin,
        "owner": owner,
        "other_entrepreneur": UserFactory(
            role=Role.ENTREPRENEUR, organisation=OrganisationFactory()
        ),
        "buyer": buyer,
        "other_buyer": UserFactory(role=Role.BUYER, organisation=OrganisationFactory()),
        "evaluator": settled_example.evaluator,
        "other_evaluator": UserFactory(role=Role.EVALUATOR, organisation=OrganisationFactory()),
        "authority": authority,
        "other_authority": UserFactory(
            role=Role.AUTHORITY, organisation=OrganisationFactory(sroi_factor=Decimal(1))
        ),
    }
    session.commit()
    return {
        "people": people,
        "projects": [settled.id, in_funding.id],
        "ids": {
            "pledge_id": pledge["id"],
            "evaluation_id": evaluation.id,
            "retirement_id": retirement["id"],
            "report_id": report.id,
            "file_id": evidence.id,
            "token_id": owners_token.id,
            "user_id": colleague.id,
            "organisation_id": owner.organisation_id,
            "serial": f"SOM-P{settled.id:06d}-2027-0000001",
            "link_id": links[LinkPurpose.INVITATION][0].id,
            "concern_id": concern.id,
            "accreditation_id": accreditation.id,
            "evaluator_id": settled_example.evaluator.id,
            "obligation_id": owed,
            "round_id": funding_round.id,
            "pool_id": pool.id,
            "credit_id": credit.id,
            "receipt_id": session.scalar(
                select(Receipt.id).where(Receipt.organisation_id == buyer.organisation_id)
            ),
            ("obligations_api.AuthorityFactor", "organisation_id"): contracting.id,
            **secret_ids(links),
            "code": session.scalars(select(OutcomeType.code)).first(),
            "filename": "favicon.svg",
        },
    }


class Caller:
    """One person: a browser session for pages and a token for the API."""

    def __init__(self, app, person: str, user, auth_headers) -> None:
        self.person = person
        self.client = app.test_client()
        self.headers = auth_headers(user) if user is not None else {}
        if user is not None:
            page = self.client.get("/login")
            signed_in = self.client.post(
                "/login",
                data={
                    "email": user.email,
                    "password": factories.DEFAULT_PASSWORD,
                    "csrf_token": csrf_from(page.get_data(as_text=True)),
                },
            )
            assert signed_in.status_code == 302, person
        self.csrf = csrf_from(self.client.get("/").get_data(as_text=True))

    def call(self, method: str, path: str):
        if path.startswith("/api/"):
            headers = {**self.headers, "Idempotency-Key": f"matrix-{self.person}-{path}"}
            return self.client.open(path, method=method, headers=headers, json={})
        return self.client.open(path, method=method, data={"csrf_token": self.csrf})


def succeeded(response) -> bool:
    """2xx, or a redirect that is not to the login page (a signed-in person on /login)."""
    if 300 <= response.status_code < 400:
        return "/login" not in response.headers.get("Location", "")
    return 200 <= response.status_code < 300


def paths_for(app, endpoint: str, world) -> list[str]:
    rule = next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint)
    projects = world["projects"] if "project_id" in rule.arguments else [None]
    paths = []
    for project_id in projects:
        ids = world["ids"]
        values = {name: ids.get((endpoint, name), ids.get(name)) for name in rule.arguments}
        if project_id is not None:
            values["project_id"] = project_id
        with app.test_request_context():
            paths.append(url_for(endpoint, **values))
    return paths


def test_no_one_outside_a_routes_audience_succeeds_and_no_read_writes(app, world, auth_headers):
    callers = {
        person: Caller(app, person, world["people"].get(person), auth_headers) for person in PEOPLE
    }
    factories.Session.commit()
    before = database_state(app)
    refused = read = 0
    problems = []
    for endpoint, method in routes(app):
        audience = AUDIENCE[(endpoint, method)]
        for index, path in enumerate(paths_for(app, endpoint, world)):
            for person, caller in callers.items():
                allowed = person in audience
                if allowed and method != "GET":
                    continue  # what the audience may do is each feature's own tests
                response = caller.call(method, path)
                response.get_data()  # a streamed body runs to its end
                response.close()
                where = (person, method, path, response.status_code)
                if response.status_code >= 500:
                    problems.append(("server error", *where))
                if not allowed:
                    refused += 1
                    if 200 <= response.status_code < 300:
                        problems.append(("succeeded outside its audience", *where))
                elif index == 0:  # the settled project: every read has something to show
                    read += 1
                    if not succeeded(response):
                        problems.append(("refused inside its audience", *where))
                after = database_state(app)
                if after != before:
                    problems.append(("changed the database", *where))
                    before = after
    assert not problems, "\n".join(map(str, problems))
    # Each person tried something outside its audience, and every audience read.
    assert refused > 300 and read > 100, (refused, read)
    print(f"{refused} refused, {read} reads by their audience")
    # The refusals were refusals, not a lost session: the owner still holds its token.
    assert factories.Session.get(ApiToken, world["ids"]["token_id"]).revoked_at is None
    assert factories.Session.get(EvidenceFile, world["ids"]["file_id"]) is not None
