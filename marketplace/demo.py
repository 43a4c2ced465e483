"""Demo organisations, users and projects for a local run.

``load_demo`` is idempotent: it creates what is missing and leaves the rest.
Projects are made through the same services as real ones (drafts submitted,
valued by the demo admin, listed, rejected or withdrawn), so each has its
history and valuation snapshot; their dates are set relative to today.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from marketplace.accounts.models import Role, User
from marketplace.accounts.services import AccountRules, NewUser, create_user
from marketplace.evaluations import services as evaluations
from marketplace.obligations import services as obligations
from marketplace.payments.models import MethodType, PaymentSetup, SetupState
from marketplace.pools import services as pools
from marketplace.pools.models import Pool
from marketplace.projects import services as projects
from marketplace.projects.models import Project, Theme
from marketplace.rounds import services as rounds
from marketplace.rounds.models import Round
from valuation import EvidenceGrade

DEMO_PASSWORD = "demo-password"  # noqa: S105 - published demo credential, local runs only


@dataclass(frozen=True)
class DemoUser:
    email: str
    name: str
    role: Role
    organisation: str


DEMO_USERS = (
    DemoUser("admin@som.example", "Anouk de Vries", Role.ADMIN, "Marketplace expert panel"),
    DemoUser("evaluator@som.example", "Pieter Bakker", Role.EVALUATOR, "Maasstad Impact Evaluatie"),
    DemoUser(
        "entrepreneur@som.example", "Samira El Amrani", Role.ENTREPRENEUR, "Buurtwerk Rotterdam"
    ),
    DemoUser(
        "entrepreneur2@som.example", "Jeroen Visser", Role.ENTREPRENEUR, "Groene Daken Coöperatie"
    ),
    DemoUser("thuis@som.example", "Mehmet Yilmaz", Role.ENTREPRENEUR, "Stichting Thuis op Zuid"),
    DemoUser("jongeren@som.example", "Ilse de Groot", Role.ENTREPRENEUR, "Jongerenwerk Schiedam"),
    DemoUser("herstel@som.example", "Ruben Mulder", Role.ENTREPRENEUR, "Herstel & Co Dordrecht"),
    DemoUser("buyer@som.example", "Lotte Jansen", Role.BUYER, "Havenstad Bank"),
    DemoUser("municipality@som.example", "Daan Smit", Role.BUYER, "Gemeente Rotterdam (demo)"),
    # The municipality's procurement office: accepts suppliers' social-return obligations.
    DemoUser("inkoop@som.example", "Fatima Bouzid", Role.AUTHORITY, "Gemeente Rotterdam (demo)"),
)


@dataclass(frozen=True)
class DemoProject:
    title: str
    owner: str
    city: str
    theme: Theme
    budget_euros: int
    outcomes: tuple[tuple[str, int, str], ...]
    summary: str
    stage: str  # draft, submitted, valued, funding, rejected, withdrawn
    deadline_in_days: int = 45
    in_round: bool = False  # submitted into the demo round (its deadline replaces this one)


DEMO_PROJECTS = (
    DemoProject(
        "Werkplaats Delfshaven",
        "entrepreneur@som.example",
        "Rotterdam",
        Theme.WORK,
        60_000,
        (("EMP_BIJSTAND_TO_WORK", 20, "C"), ("YOUTH_NEET_TO_EET", 10, "C")),
        "A repair workshop where people on social assistance learn a trade and move "
        "into paid work with local employers, with a job coach for the first year.",
        "funding",
        40,
    ),
    DemoProject(
        "Thuis op Zuid",
        "thuis@som.example",
        "Rotterdam",
        Theme.HOUSING,
        48_000,
        (("ROUGH_SLEEPER_HOUSED", 12, "B"),),
        "Housing First on Rotterdam-Zuid: a flat of their own for people sleeping "
        "rough, with support that stays as long as it is needed.",
        "funding",
        60,
        in_round=True,
    ),
    DemoProject(
        "Schuldhulp aan de Maas",
        "thuis@som.example",
        "Vlaardingen",
        Theme.HOUSING,
        35_000,
        (("EVICTION_PREVENTED", 40, "B"), ("HOMELESS_APPLICATION_AVOIDED", 25, "C")),
        "Early debt help for households behind on rent, agreed with the housing "
        "corporations, so that no family has to leave its home.",
        "funding",
        30,
    ),
    DemoProject(
        "Jongeren aan zet",
        "jongeren@som.example",
        "Schiedam",
        Theme.YOUTH,
        42_000,
        (("YOUTH_NEET_TO_EET", 25, "C"), ("YOUTH_OFFENDING_AVOIDED", 10, "D")),
        "Street-based youth work that brings young people without school or work "
        "back into training, with mentors from the neighbourhood.",
        "funding",
        75,
        in_round=True,
    ),
    DemoProject(
        "Veilig Thuis Capelle",
        "herstel@som.example",
        "Capelle aan den IJssel",
        Theme.SAFETY,
        30_000,
        (("DOMESTIC_VIOLENCE_AVOIDED", 30, "C"),),
        "A perpetrator programme and safety plans for families known to the police, "
        "run with the district team.",
        "funding",
        50,
    ),
    DemoProject(
        "School blijft",
        "jongeren@som.example",
        "Delft",
        Theme.EDUCATION,
        25_000,
        (("SCHOOL_EXCLUSION_AVOIDED", 20, "B"),),
        "Coaching in class and at home for pupils at risk of being excluded from school.",
        "funding",
        35,
    ),
    DemoProject(
        "Buurtkracht Feijenoord",
        "entrepreneur@som.example",
        "Rotterdam",
        Theme.WELLBEING,
        28_000,
        (("WELLBY", 300, "C"),),
        "Neighbourhood living rooms where isolated residents meet, cook and volunteer; "
        "wellbeing measured with the ONS life-satisfaction question.",
        "funding",
        55,
        in_round=True,
    ),
    DemoProject(
        "Herstelcoaching Drechtsteden",
        "herstel@som.example",
        "Dordrecht",
        Theme.HEALTH,
        38_000,
        (("DEPRESSION_RECOVERY", 40, "B"), ("ALCOHOL_RECOVERY", 15, "C")),
        "Peer coaching by people with lived experience of depression and addiction, "
        "alongside the GP practices.",
        "valued",
        70,
        in_round=True,
    ),
    DemoProject(
        "Gezinnen Sterk",
        "thuis@som.example",
        "Spijkenisse",
        Theme.YOUTH,
        55_000,
        (("CHILD_CARE_AVOIDED", 6, "B"),),
        "Intensive family support that keeps children safely at home instead of in care.",
        "submitted",
        80,
    ),
    DemoProject(
        "Tweede kans",
        "herstel@som.example",
        "Barendrecht",
        Theme.SAFETY,
        90_000,
        (("CUSTODY_YEAR_AVOIDED", 4, "D"),),
        "A reintegration route for young adults leaving prison.",
        "rejected",
        60,
    ),
    DemoProject(
        "Groene daken Noord",
        "entrepreneur2@som.example",
        "Rotterdam",
        Theme.WELLBEING,
        20_000,
        (("WELLBY", 120, "D"),),
        "Residents turn flat roofs into shared gardens and meeting places.",
        "draft",
        90,
    ),
    DemoProject(
        "Koppelkansen Charlois",
        "entrepreneur2@som.example",
        "Rotterdam",
        Theme.WORK,
        33_000,
        (("HOUSEHOLD_OFF_BIJSTAND", 8, "C"),),
        "Job matching for couples on social assistance.",
        "withdrawn",
        40,
    ),
)

DEMO_REJECTION = "The outcomes rest on self-reported data only; resubmit with records."


def _user(session: Session, email: str) -> User:
    return session.scalars(select(User).where(User.email == email)).one()


DEMO_ROUND = "Rotterdam en omstreken 2027"
ROUND_DEADLINE_IN_DAYS = 60


def demo_round(session: Session, admin: User, *, now: datetime, today: date) -> int:
    """The demo's funding round (open, taking submissions for another month), made once."""
    found = session.scalar(select(Round.id).where(Round.name == DEMO_ROUND))
    if found is not None:
        return found
    made = rounds.open_round(
        session,
        admin,
        rounds.RoundInput(
            name=DEMO_ROUND,
            description="Projects in and around Rotterdam, valued and listed together; "
            "their funding closes on one day.",
            submissions_open=today - timedelta(days=7),
            submissions_close=today + timedelta(days=30),
            funding_deadline=today + timedelta(days=ROUND_DEADLINE_IN_DAYS),
        ),
        now=now,
        today=today,
    )
    return made.id


def load_demo_projects(session: Session, *, now: datetime, today: date) -> list[str]:
    """Create the demo projects that are missing; return their titles."""
    admin = _user(session, "admin@som.example")
    round_id = demo_round(session, admin, now=now, today=today)
    created = []
    for demo in DEMO_PROJECTS:
        if session.scalar(select(Project.id).where(Project.title == demo.title)) is not None:
            continue
        owner = _user(session, demo.owner)
        deadline = today + timedelta(days=demo.deadline_in_days)
        project = projects.create_draft(
            session,
            owner,
            projects.ProjectInput(
                title=demo.title,
                summary=demo.summary,
                city=demo.city,
                theme=demo.theme,
                budget_cents=demo.budget_euros * 100,
                funding_deadline=deadline,
                start_date=deadline + timedelta(days=14),
                end_date=deadline + timedelta(days=14 + 365),
                outcomes=[
                    projects.CommitmentInput(code, quantity, EvidenceGrade(grade))
                    for code, quantity, grade in demo.outcomes
                ],
                round_id=round_id if demo.in_round else None,
            ),
            now=now,
            today=today,
        )
        if demo.stage == "draft":
            created.append(demo.title)
            continue
        projects.submit(session, owner, project, now=now, today=today)
        if demo.stage == "rejected":
            projects.reject(session, admin, project, reason=DEMO_REJECTION, now=now)
        elif demo.stage != "submitted":
            projects.value_project(
                session, admin, project, overrides=[], premium_rate=None, now=now
            )
            if demo.stage in ("funding", "withdrawn"):
                projects.list_for_funding(session, admin, project, now=now, today=today)
            if demo.stage == "withdrawn":
                projects.withdraw(
                    session,
                    owner,
                    project,
                    now=now,
                    reason="The municipality now funds this programme directly.",
                )
        created.append(demo.title)
    return created


def load_demo(session: Session, rules: AccountRules, *, now: datetime) -> list[str]:
    """Create the demo users that are missing; return the e-mails created."""
    created = []
    for demo in DEMO_USERS:
        if session.scalar(select(User.id).where(User.email == demo.email)) is not None:
            continue
        create_user(
            session,
            rules,
            NewUser(
                email=demo.email,
                password=DEMO_PASSWORD,
                name=demo.name,
                role=demo.role,
                organisation=demo.organisation,
            ),
            now=now,
        )
        created.append(demo.email)
    for number, demo in enumerate(DEMO_USERS):
        organisation = _user(session, demo.email).organisation
        if organisation.verified_at is None:  # the demo's organisations, verified
            organisation.legal_name = organisation.legal_name or organisation.name
            organisation.registry_id = organisation.registry_id or f"{90000001 + number}"
            organisation.verified_at = now
    if "evaluator@som.example" in created:
        evaluations.add_accreditation(
            session,
            _user(session, "admin@som.example"),
            _user(session, "evaluator@som.example").id,
            evaluations.AccreditationInput(
                body="Stichting Maatschappelijke Evaluatie (demo)",
                reference="SME-2024-0117",
                themes=tuple(t.value for t in Theme),
                valid_from=date(now.year - 3, 1, 1),
                valid_until=date(now.year + 3, 12, 31),
            ),
            now=now,
        )
    if "inkoop@som.example" in created:
        _demo_obligation(session, now)
    return created


def _demo_obligation(session: Session, now: datetime) -> None:
    """Havenstad Bank's cleaning contract with the municipality: 5% of EUR 1,200,000.00
    in social return, accepted by the municipality's procurement office."""
    authority = _user(session, "inkoop@som.example")
    owed = obligations.register(
        session,
        _user(session, "buyer@som.example"),
        obligations.NewObligation(
            authority_organisation_id=authority.organisation_id,
            contract_reference="RTM-2026-0142",
            contract_title="Schoonmaak stadskantoren 2026-2028",
            contract_value_cents=120_000_000,
            percentage=Decimal("0.05"),
            due_date=date(now.year + 2, 12, 31),
        ),
        now=now,
    )
    obligations.accept(session, authority, owed.id, now=now)


DEMO_POOL = "Rotterdam Werkt Fonds (demo)"


def demo_pool(session: Session, *, now: datetime) -> bool:
    """The municipality's matchfunding pool on the demo round (1:1, 50,000 EUR, at most
    10,000 EUR a project), paying with the card its demo pledges saved. Made once, after
    the demo's settled history (so it matches none of that history's pledges)."""
    if session.scalar(select(Pool.id).where(Pool.name == DEMO_POOL)) is not None:
        return False
    municipality = _user(session, "municipality@som.example")
    card = session.scalar(
        select(PaymentSetup.id)
        .where(
            PaymentSetup.organisation_id == municipality.organisation_id,
            PaymentSetup.state == SetupState.SUCCEEDED,
            PaymentSetup.method_type == MethodType.CARD,
        )
        .order_by(PaymentSetup.id)
    )
    round_id = session.scalar(select(Round.id).where(Round.name == DEMO_ROUND))
    if card is None or round_id is None:
        return False
    pools.open_pool(
        session,
        municipality,
        pools.NewPool(
            name=DEMO_POOL,
            budget_cents=5_000_000,
            match_ratio=Decimal("1"),
            cap_per_project_cents=1_000_000,
            round_id=round_id,
        ),
        payment_setup_id=card,
        now=now,
    )
    return True
