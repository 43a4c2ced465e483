"""Demo organisations and users for a local run.

``load_demo`` is idempotent: it creates what is missing and leaves the rest,
so it can run at every start. Later features add demo projects here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from marketplace.accounts.models import Role, User
from marketplace.accounts.services import AccountRules, NewUser, create_user

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
    DemoUser("buyer@som.example", "Lotte Jansen", Role.BUYER, "Havenstad Bank"),
    DemoUser("municipality@som.example", "Daan Smit", Role.BUYER, "Gemeente Rotterdam (demo)"),
)


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
    return created
