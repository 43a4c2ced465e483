"""Claim integrity (product.md "Evidence grade", "Evaluator accreditation and independence",
"Concerns, disputes and the buffer pool"): grades set and met, accredited and declared
evaluators, concerns and disputes that freeze, and reversals from the buffer pool."""

from __future__ import annotations

import dataclasses
import io
import threading
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from marketplace.accounts.models import Role, User
from marketplace.audit.models import AuditEvent
from marketplace.disputes.models import Concern, ConcernStateChange
from marketplace.funding.models import Pledge
from marketplace.notifications.models import Notification
from marketplace.projects.models import Project, ProjectState
from marketplace.registry.models import BlockStatus, Retirement, TokenBlock
from marketplace.settlement.models import Settlement
from outcomes.evidence import EvidenceFile
from tests.factories import (
    AccreditationFactory,
    EvaluationFactory,
    OrganisationFactory,
    ProjectFactory,
    UserFactory,
)
from tests.integration.funding_support import tick
from tests.integration.test_settlement import (  # noqa: F401 - the fixtures
    ENDED,
    NOW,
    evaluate,
    retire,
    settled_example,
    worked_example,
)
from tests.support.races import at_once, statements
from valuation import EvidenceGrade

SETTLED_AT = ENDED + timedelta(days=1)
LATER = ENDED + timedelta(days=20)


def settlement_of(session, project_id: int) -> Settlement:
    session.rollback()
    return session.scalars(select(Settlement).where(Settlement.project_id == project_id)).one()


def blocks(session, project_id: int) -> dict[str, int]:
    size = TokenBlock.last_serial - TokenBlock.first_serial + 1
    session.rollback()
    found = {
        status.value: int(total)
        for status, total in session.execute(
            select(TokenBlock.status, func.sum(size))
            .where(TokenBlock.project_id == project_id)
            .group_by(TokenBlock.status)
        )
    }
    session.rollback()  # SQLite: no read left open while the app writes
    return found


# ---------------------------------------------------------------- grades


def test_the_panel_sets_a_grade_only_with_a_reason_and_the_snapshot_keeps_both(
    client, session, auth_headers
):
    project = ProjectFactory(state=ProjectState.SUBMITTED)
    admin = UserFactory(role=Role.ADMIN)
    code = project.outcomes[0].outcome_type.code
    path = f"/api/v1/projects/{project.id}/valuation"

    bare = client.post(
        path,
        headers=auth_headers(admin),
        json={"overrides": [{"outcome_type": code, "evidence_grade": "B"}]},
    )
    odd = client.post(
        path,
        headers=auth_headers(admin),
        json={"overrides": [{"outcome_type": code, "evidence_grade": "E", "reason": "x" * 20}]},
    )
    assert bare.status_code == 422 and "overrides.0.reason" in bare.json["errors"]
    assert odd.status_code == 422 and "overrides.0.evidence_grade" in odd.json["errors"]
    session.rollback()
    assert session.get(Project, project.id).valuation_id is None  # nothing saved

    at_c = client.post(path, headers=auth_headers(admin), json={}).json
    set_b = client.post(
        path,
        headers=auth_headers(admin),
        json={
            "overrides": [
                {
                    "outcome_type": code,
                    "evidence_grade": "B",
                    "reason": "Payroll data of the municipality, a comparison group.",
                }
            ]
        },
    )
    assert set_b.status_code == 200, set_b.json
    session.rollback()
    fresh = session.get(Project, project.id)
    line = fresh.valuation.inputs["lines"][0]
    assert (line["proposed_grade"], line["evidence_grade"]) == ("C", "B")
    assert line["reason"] == "Payroll data of the municipality, a comparison group."
    assert fresh.outcomes[0].evidence_grade is EvidenceGrade.B
    # B is 0.85 against C's 0.70: the conservative value grows by 85/70, to the cent.
    before = at_c["valuation"]["total_conservative_value_cents"]
    after = fresh.valuation.total_conservative_value_cents
    assert abs(after * 70 - before * 85) <= 85
    # A re-valuation starts again from what the entrepreneur proposed.
    again = client.post(path, headers=auth_headers(admin), json={}).json
    assert again["valuation"]["total_conservative_value_cents"] == before


def test_grade_d_met_on_the_worked_example_counts_14_people_at_half(
    app, client, session, auth_headers, worked_example
):
    """product.md: planned 20 at grade C, verified 14 with grade D evidence: the line counts
    14 people at confidence 0.50 instead of 0.70. By the rule, by hand:
    V_verified / V_target = (14 x 0.50) / (20 x 0.70) = 1/2, so of S = 2,400 tokens
    floor(2,400 / 2) = 1,200 are minted; the premium paid is floor(1,086,704 / 2) = 543,352,
    the refund 1,086,704 - 543,352 = 543,352; the buffer takes floor(1,200 x 5%) = 60 and
    the buyers share 1,140 as 1,000 : 1,400, that is 475 and 665."""
    project, admin = worked_example
    evaluate(client, auth_headers, project, admin, verified=14, met_grade="D")
    tick(app, SETTLED_AT)

    settled = settlement_of(session, project.id)
    # Present values are whole cents per line: half of the target, to a cent.
    assert abs(settled.v_verified_cents * 2 - settled.v_target_cents) <= 1
    assert settled.tokens_minted == 1200
    assert settled.premium_payout_cents == 543_352
    assert settled.refund_total_cents == 543_352
    assert settled.tokens_buffer == 60
    assert [(s.tokens_paid, s.tokens_minted) for s in settled.shares] == [(1000, 475), (1400, 665)]
    assert blocks(session, project.id) == {"issued": 1140, "buffer": 60}
    (line,) = client.get(f"/api/v1/projects/{project.id}").json["outcomes"]
    assert (line["evidence_grade"], line["verified_quantity"], line["met_grade"]) == ("C", 14, "D")
    page = client.get(f"/projects/{project.id}").get_data(as_text=True)
    assert "met: D" in page


def test_evidence_better_than_planned_does_not_raise_the_value(
    app, client, session, auth_headers, worked_example
):
    project, admin = worked_example
    evaluate(client, auth_headers, project, admin, verified=14, met_grade="A")
    tick(app, SETTLED_AT)

    settled = settlement_of(session, project.id)
    assert settled.tokens_minted == 1680  # 70%, as with grade C met
    result = client.get(f"/api/v1/registry/serials/SOM-P{project.id:06d}-2027-0000001/trail").json[
        "outcomes"
    ][0]
    assert (result["planned_grade"], result["met_grade"]) == ("C", "A")


# ---------------------------------------------------------------- accreditation


ACCREDITATION = {
    "body": "Stichting Maatschappelijke Evaluatie",
    "reference": "SME-2026-0042",
    "themes": ["work"],
    "valid_from": "2026-01-01",
    "valid_until": "2028-12-31",
}


def test_assigning_outside_an_accreditation_is_409_until_an_admin_records_one(
    client, session, auth_headers, worked_example
):
    project, admin = worked_example
    evaluator = UserFactory(
        role=Role.EVALUATOR, organisation=OrganisationFactory(), accredited=False
    )
    headers = auth_headers(admin)
    assign = f"/api/v1/projects/{project.id}/evaluator"

    def attempt():
        return client.post(assign, headers=headers, json={"evaluator_id": evaluator.id})

    none = attempt()
    AccreditationFactory(user_id=evaluator.id, themes=["youth", "housing"])
    wrong_theme = attempt()
    AccreditationFactory(
        user_id=evaluator.id, valid_from=date(2020, 1, 1), valid_until=date(2026, 6, 30)
    )
    expired = attempt()  # the assignment is on 22 November 2026
    for refused in (none, wrong_theme, expired):
        assert refused.status_code == 409 and refused.json["code"] == "not_accredited"
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Concern)) == 0

    accreditations = f"/api/v1/evaluators/{evaluator.id}/accreditations"
    for bad, field in [
        ({**ACCREDITATION, "themes": []}, "themes"),
        ({**ACCREDITATION, "themes": ["astrology"]}, "themes"),
        ({**ACCREDITATION, "valid_until": "2025-12-31"}, "valid_until"),
        ({**ACCREDITATION, "body": "  "}, "body"),
        ({**ACCREDITATION, "reference": "x" * 101}, "reference"),
        ({**ACCREDITATION, "valid_from": "1999-12-31"}, "valid_from"),
    ]:
        answer = client.post(accreditations, headers=headers, json=bad)
        named = [name for name in answer.json.get("errors", {}) if name.split(".")[0] == field]
        assert answer.status_code == 422 and named, (bad, answer.json)
    buyer = auth_headers(UserFactory(role=Role.BUYER))
    assert client.post(accreditations, headers=buyer, json=ACCREDITATION).status_code == 403
    assert (
        client.post(
            f"/api/v1/evaluators/{admin.id}/accreditations", headers=headers, json=ACCREDITATION
        ).status_code
        == 404
    )  # not an evaluator

    made = client.post(accreditations, headers=headers, json=ACCREDITATION)
    assert made.status_code == 201, made.json
    assert attempt().status_code == 200
    listed = client.get(accreditations, headers=headers).json
    assert "SME-2026-0042" in [a["reference"] for a in listed]
    changed = client.put(
        f"/api/v1/accreditations/{made.json['id']}",
        headers=headers,
        json={**ACCREDITATION, "valid_until": "2027-06-30"},
    )
    assert changed.status_code == 200 and changed.json["valid_until"] == "2027-06-30"
    session.rollback()
    logged = session.scalars(
        select(AuditEvent.action).where(AuditEvent.subject == f"user:{evaluator.id}")
    ).all()
    assert logged.count("accreditation added") == 1 and "accreditation changed" in logged


def test_the_assignment_page_suggests_accredited_independent_evaluators_least_busy_first(
    web, session, worked_example
):
    project, admin = worked_example
    busy = UserFactory(role=Role.EVALUATOR, name="Busy Bakker", organisation=OrganisationFactory())
    for _ in range(2):
        other = ProjectFactory(state=ProjectState.RUNNING)
        EvaluationFactory(project_id=other.id, evaluator_id=busy.id)
    UserFactory(role=Role.EVALUATOR, name="Free Visser", organisation=OrganisationFactory())
    UserFactory(role=Role.EVALUATOR, name="Unaccredited Smit", accredited=False)
    pledger = session.scalars(select(Pledge).order_by(Pledge.id)).first().user
    UserFactory(role=Role.EVALUATOR, name="Conflicted Jansen", organisation=pledger.organisation)
    session.commit()

    page = web.as_user(admin.email).get("/evaluations").get_data(as_text=True)
    start = page.index(f'id="evaluator-{project.id}"')
    options = page[start : page.index("</select>", start)]
    order = [
        name
        for name in ("Free Visser", "Busy Bakker", "Unaccredited Smit", "Conflicted Jansen")
        if name in options
    ]
    assert order == ["Free Visser", "Busy Bakker", "Unaccredited Smit", "Conflicted Jansen"]
    assert options.index("Free Visser") < options.index("Busy Bakker")
    assert "suggested" in options[: options.index("Busy Bakker")]
    for blocked in ("Unaccredited Smit", "Conflicted Jansen"):
        option = options[options.rindex("<option", 0, options.index(blocked)) :]
        assert option.split(">", 1)[0].endswith("disabled"), blocked
    assert "not accredited for this theme" in options and "conflict of interest" in options


def test_results_wait_for_the_declaration_and_a_new_evaluator_signs_its_own(
    client, session, auth_headers, worked_example
):
    project, admin = worked_example
    evaluator = UserFactory(role=Role.EVALUATOR, organisation=OrganisationFactory())
    assigned = client.post(
        f"/api/v1/projects/{project.id}/evaluator",
        headers=auth_headers(admin),
        json={"evaluator_id": evaluator.id},
    ).json
    path = f"/api/v1/evaluations/{assigned['id']}"
    mine = auth_headers(evaluator)
    result = {
        "outcome_id": project.outcomes[0].id,
        "verified_quantity": 14,
        "met_grade": "B",
        "evidence_note": "Payroll.",
    }

    early = client.put(f"{path}/results", headers=mine, json={"results": [result]})
    assert early.status_code == 409 and early.json["code"] == "declaration_needed"
    short = client.post(f"{path}/declaration", headers=mine, json={"text": "none"})
    assert short.status_code == 422 and "text" in short.json["errors"]
    stranger = UserFactory(role=Role.EVALUATOR)
    text = {"text": "No ties to the project, its organisation or its buyers."}
    assert (
        client.post(f"{path}/declaration", headers=auth_headers(stranger), json=text).status_code
        == 404
    )
    signed = client.post(f"{path}/declaration", headers=mine, json=text)
    assert signed.status_code == 200 and signed.json["declared_at"]
    twice = client.post(f"{path}/declaration", headers=mine, json=text)
    assert twice.status_code == 409 and twice.json["code"] == "already_declared"
    saved = client.put(f"{path}/results", headers=mine, json={"results": [result]})
    assert saved.status_code == 200 and saved.json["results"][0]["met_grade"] == "B"

    other = UserFactory(role=Role.EVALUATOR, organisation=OrganisationFactory())
    client.post(
        f"/api/v1/projects/{project.id}/evaluator",
        headers=auth_headers(admin),
        json={"evaluator_id": other.id},
    )
    again = client.put(f"{path}/results", headers=auth_headers(other), json={"results": [result]})
    assert again.status_code == 409 and again.json["code"] == "declaration_needed"
    session.rollback()
    notices = session.scalars(
        select(Notification.kind).where(Notification.user_id == other.id)
    ).all()
    assert sorted(notices) == ["declaration_needed", "evaluation_assigned"]


# ---------------------------------------------------------------- concerns and disputes


def file(client, headers, project_id, text="The payroll records look copied from last year."):
    return client.post(
        f"/api/v1/projects/{project_id}/concerns", headers=headers, json=text and {"text": text}
    )


def test_a_concern_is_for_a_settled_project_within_365_days(
    app, client, session, auth_headers, settled_example, clock
):
    project = settled_example.project
    someone = auth_headers(UserFactory(role=Role.ENTREPRENEUR))
    unsettled = ProjectFactory(state=ProjectState.RUNNING)
    session.commit()

    assert file(client, someone, unsettled.id).status_code == 404
    assert file(client, someone, 10**9).status_code == 404
    short = file(client, someone, project.id, "Wrong.")
    assert short.status_code == 422 and "text" in short.json["errors"]
    control = file(client, someone, project.id, "Wrong figures\x00 in the payroll records.")
    assert control.status_code == 422 and "text" in control.json["errors"]
    assert file(client, {}, project.id).status_code == 401

    clock.at = LATER
    made = file(client, someone, project.id)
    assert made.status_code == 201 and made.json["state"] == "filed"
    settled = settlement_of(session, project.id)
    clock.at = settled.finished_at + timedelta(days=365, seconds=1)
    late = file(client, someone, project.id)
    assert late.status_code == 409 and late.json["code"] == "concern_window_closed"

    session.rollback()
    assert session.scalar(select(func.count()).select_from(Concern)) == 1
    admins_told = session.scalars(
        select(Notification.user_id).where(Notification.kind == "concern_filed")
    ).all()
    admins = session.scalars(select(User.id).where(User.role == Role.ADMIN)).all()
    assert settled_example.admin.id in admins_told and sorted(admins_told) == sorted(admins)
    session.rollback()
    # the filer sees its concern; another person does not know it exists
    mine = client.get(f"/api/v1/concerns/{made.json['id']}", headers=someone)
    theirs = client.get(
        f"/api/v1/concerns/{made.json['id']}", headers=auth_headers(UserFactory(role=Role.BUYER))
    )
    assert mine.status_code == 200 and theirs.status_code == 404
    public = client.get(f"/api/v1/projects/{project.id}/disputes").json
    assert public == []  # a concern is not public; a dispute is


def open_dispute(client, session, auth_headers, example):
    # SQLite: no snapshot of the test's session may span the app's writes (read the ids,
    # make the tokens, end the transaction, then call).
    session.rollback()
    project_id = example.project.id
    admin = auth_headers(example.admin)
    filer = auth_headers(UserFactory(role=Role.BUYER))
    session.rollback()
    concern = file(client, filer, project_id).json
    opened = client.post(
        f"/api/v1/concerns/{concern['id']}/dispute",
        headers=admin,
        json={"reason": "Two employers deny the jobs."},
    )
    assert opened.status_code == 200, opened.json
    return concern["id"]


def test_a_dispute_freezes_unretired_serials_publicly_until_dismissed(
    client, session, auth_headers, settled_example, clock
):
    example = settled_example
    clock.at = LATER
    bank = auth_headers(example.bank)
    assert retire(client, bank, example.project.id, 5, "before").status_code == 201
    concern_id = open_dispute(client, session, auth_headers, example)

    frozen = retire(client, bank, example.project.id, 5, "during")
    assert frozen.status_code == 409 and frozen.json["code"] == "frozen"
    assert frozen.json["detail"] == (
        "The tokens of this project are frozen while a dispute about it is open; "
        "they can be retired again once it is resolved."
    )
    project = client.get(f"/api/v1/projects/{example.project.id}").json
    assert "disputed" in project["flags"]
    page = client.get(f"/projects/{example.project.id}").get_data(as_text=True)
    assert "Two employers deny the jobs." in page and "disputed" in page
    trail = client.get(
        f"/api/v1/registry/serials/SOM-P{example.project.id:06d}-2027-0000100/trail"
    ).json
    assert trail["block"]["frozen"] is True and trail["disputes"][0]["state"] == "disputed"
    retired_one = client.get(
        f"/api/v1/registry/serials/SOM-P{example.project.id:06d}-2027-0000001/trail"
    ).json
    assert retired_one["block"]["frozen"] is False  # a retired serial stays a valid claim

    dismissed = client.post(
        f"/api/v1/concerns/{concern_id}/dismiss",
        headers=auth_headers(example.admin),
        json={"reason": "The employers confirmed the jobs in writing."},
    )
    assert dismissed.status_code == 200 and dismissed.json["state"] == "dismissed"
    assert retire(client, bank, example.project.id, 5, "after").status_code == 201
    session.rollback()
    moves = session.scalars(
        select(ConcernStateChange.to_state)
        .where(ConcernStateChange.concern_id == concern_id)
        .order_by(ConcernStateChange.id)
    ).all()
    assert [m.value for m in moves] == ["filed", "disputed", "dismissed"]
    audit = session.scalars(
        select(AuditEvent.action).where(AuditEvent.subject == f"concern:{concern_id}")
    ).all()
    assert audit == [
        "concern new -> filed",
        "concern filed -> disputed",
        "concern disputed -> dismissed",
    ]
    told = session.scalars(
        select(Notification.kind).where(
            Notification.organisation_id == example.bank.organisation_id
        )
    ).all()
    assert told.count("dispute") == 2  # opened and dismissed, to a holder


def test_twenty_concurrent_retirements_of_frozen_serials_are_all_409(
    app, client, session, auth_headers, settled_example, clock
):
    example = settled_example
    clock.at = LATER
    open_dispute(client, session, auth_headers, example)
    headers = auth_headers(example.bank)
    project_id = example.project.id
    session.rollback()

    def attempt(n: int) -> tuple[int, str]:
        answer = retire(app.test_client(), headers, project_id, 3, f"frozen-{n}")
        return answer.status_code, answer.json.get("code", "")

    answers = at_once(20, attempt)

    assert answers == [(409, "frozen")] * 20
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Retirement)) == 0
    assert blocks(session, example.project.id) == {"issued": 1596, "buffer": 84}


def retire_everything(client, session, auth_headers, project_id):
    pledges = session.scalars(select(Pledge).where(Pledge.project_id == project_id)).all()
    session.rollback()
    for pledge in pledges:
        held = client.get("/api/v1/holdings", headers=auth_headers(pledge.user)).json
        quantity = sum(h["quantity"] for h in held if h["project_id"] == project_id)
        if quantity:
            answer = retire(
                client, auth_headers(pledge.user), project_id, quantity, f"all-{pledge.id}"
            )
            assert answer.status_code == 201, answer.json


def uphold(client, auth_headers, example, concern_id, verified):
    return client.post(
        f"/api/v1/concerns/{concern_id}/uphold",
        headers=auth_headers(example.admin),
        json={
            "finding": "One of the fourteen jobs ended in its first week.",
            "quantities": [
                {"outcome_id": example.project.outcomes[0].id, "verified_quantity": verified}
            ],
        },
    )


def test_an_upheld_dispute_after_every_token_was_retired_cancels_from_the_buffer(
    app, client, session, auth_headers, worked_example, clock
):
    """A buffer of 10%: 168 of the 1,680 tokens. Corrected from 14 to 13 people, the
    tokens become floor(2,400 x 13/20 x 0.70 / 0.70 ...) = 1,560: 120 over, all covered."""
    project, admin = worked_example
    settings = app.extensions["settings"]
    app.extensions["settings"] = dataclasses.replace(settings, buffer_rate=Decimal("0.10"))
    try:
        evaluate(client, auth_headers, project, admin, verified=14)
        tick(app, SETTLED_AT)
    finally:
        app.extensions["settings"] = settings
    assert settlement_of(session, project.id).tokens_buffer == 168
    clock.at = LATER
    retire_everything(client, session, auth_headers, project.id)
    assert blocks(session, project.id) == {"retired": 1512, "buffer": 168}

    example = type("Example", (), {"project": project, "admin": admin})
    concern_id = open_dispute(client, session, auth_headers, example)
    higher = uphold(client, auth_headers, example, concern_id, 15)
    assert higher.status_code == 422 and "quantities.0.verified_quantity" in higher.json["errors"]
    same = uphold(client, auth_headers, example, concern_id, 14)
    assert same.status_code == 422 and "quantities" in same.json["errors"]
    upheld = uphold(client, auth_headers, example, concern_id, 13)

    assert upheld.status_code == 200, upheld.json
    body = upheld.json
    assert (body["tokens_minted"], body["tokens_over"], body["tokens_cancelled"]) == (
        1560,
        120,
        120,
    )
    assert body["shortfall"] == 0
    assert blocks(session, project.id) == {"retired": 1512, "buffer": 48, "cancelled": 120}
    for retirement in session.scalars(select(Retirement)):  # every claim stays valid
        assert all(b.status is BlockStatus.RETIRED for b in retirement.blocks)
        assert (
            client.get(f"/registry/retirements/{retirement.id}/certificate.pdf").status_code == 200
        )
    buffer = client.get("/api/v1/registry/buffer").json
    assert (buffer["held"], buffer["cancelled"], buffer["shortfall"]) == (48, 120, 0)
    assert buffer["cancellations"] == [
        {
            "serial_block": f"SOM-P{project.id:06d}-2027-0001513-0001632",
            "project_id": project.id,
            "quantity": 120,
            "concern_id": concern_id,
        }
    ]
    assert buffer["findings"][0]["finding"] == "One of the fourteen jobs ended in its first week."
    session.rollback()
    assert session.get(Project, project.id).disputed is False


def test_a_buffer_too_small_shows_its_shortfall_and_cancels_nothing_silently(
    client, session, auth_headers, settled_example, clock
):
    """The default 5%: 84 in the buffer. Corrected to 13 people: 120 over; 84 cancelled,
    36 not covered, shown publicly; every holder keeps what it holds."""
    example = settled_example
    clock.at = LATER
    held_before = blocks(session, example.project.id)["issued"]
    concern_id = open_dispute(client, session, auth_headers, example)
    upheld = uphold(client, auth_headers, example, concern_id, 13)

    assert upheld.status_code == 200, upheld.json
    assert (upheld.json["tokens_over"], upheld.json["tokens_cancelled"]) == (120, 84)
    assert upheld.json["shortfall"] == 36
    assert blocks(session, example.project.id) == {"issued": held_before, "cancelled": 84}
    assert client.get("/api/v1/registry/buffer").json["shortfall"] == 36
    page = client.get("/registry/buffer").get_data(as_text=True)
    assert "The buffer pool was short by 36 tokens." in page
    dutch = client.get("/registry/buffer", headers={"Accept-Language": "nl"}).get_data(as_text=True)
    assert "De buffervoorraad kwam 36 tokens tekort." in dutch
    told = session.scalars(select(Notification.kind).where(Notification.kind == "dispute")).all()
    assert len(told) >= 4  # opened and upheld, to the owner and the holders


def test_a_concerns_file_is_seen_by_the_one_who_raised_it_and_the_admins_only(
    client, session, auth_headers, web, settled_example, clock
):
    example = settled_example
    clock.at = LATER
    session.rollback()
    project_id, owner = example.project.id, example.project.created_by
    raiser = UserFactory(role=Role.BUYER)
    session.commit()
    browser = web.as_user(raiser.email)
    form = browser.get(f"/projects/{project_id}/concerns/new")
    assert form.status_code == 200
    bad = browser.submit(
        f"/projects/{project_id}/concerns/new",
        {
            "text": "The payroll records look copied from last year.",
            "file": (io.BytesIO(b"MZ\x90\x00binary"), "records.exe"),
        },
        action=f"/projects/{project_id}/concerns",
        content_type="multipart/form-data",
    )
    assert bad.status_code == 422  # the file is refused, and so is the concern with it
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Concern)) == 0
    made = browser.submit(
        f"/projects/{project_id}/concerns/new",
        {
            "text": "The payroll records look copied from last year.",
            "file": (io.BytesIO(b"%PDF-1.4\n% payroll of 2026\n"), "payroll.pdf"),
        },
        action=f"/projects/{project_id}/concerns",
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert "Your concern is filed." in made.get_data(as_text=True)
    session.rollback()
    concern = session.scalars(select(Concern)).one()
    (stored,) = session.scalars(select(EvidenceFile).where(EvidenceFile.concern_id == concern.id))
    session.rollback()
    path = f"/api/v1/files/{stored.id}"
    assert client.get(path, headers=auth_headers(raiser)).status_code == 200
    assert client.get(path, headers=auth_headers(example.admin)).status_code == 200
    for outsider in (owner, example.bank, example.evaluator):
        assert client.get(path, headers=auth_headers(outsider)).status_code == 404
    more = client.post(
        f"/api/v1/concerns/{concern.id}/files",
        headers=auth_headers(raiser),
        data={"file": (io.BytesIO(b"name,job\nA,yes\n"), "jobs.csv")},
        content_type="multipart/form-data",
    )
    assert more.status_code == 201 and more.json["content_type"] == "text/csv"
    theirs = client.post(
        f"/api/v1/concerns/{concern.id}/files",
        headers=auth_headers(example.bank),
        data={"file": (io.BytesIO(b"x,y\n"), "x.csv")},
        content_type="multipart/form-data",
    )
    assert theirs.status_code == 404
    page = web.as_user(example.admin.email).get(f"/admin/concerns/{concern.id}")
    assert "payroll.pdf" in page.get_data(as_text=True) and "jobs.csv" in page.get_data(
        as_text=True
    )


def test_two_disputes_upheld_at_once_count_each_other(
    app, client, session, auth_headers, settled_example, clock
):
    """Corrected to 13 and to 12 people at the same moment: whichever goes second sees the
    first's excess, so together they reverse 1,680 - 1,440 = 240 tokens, never more (if
    12 goes first, 13 then mints no fewer tokens than stand and is refused, 422); the
    buffer's 84 are cancelled and 156 are the public shortfall."""
    example = settled_example
    clock.at = LATER
    first = open_dispute(client, session, auth_headers, example)
    second = open_dispute(client, session, auth_headers, example)
    session.rollback()
    admin, outcome = auth_headers(example.admin), example.project.outcomes[0].id
    session.rollback()
    barrier = threading.Barrier(2, timeout=30)
    answers: dict[int, dict] = {}
    failures: list[BaseException] = []

    def uphold_at_once(concern_id: int, verified: int) -> None:
        try:
            mine = app.test_client()
            barrier.wait()
            answer = mine.post(
                f"/api/v1/concerns/{concern_id}/uphold",
                headers=admin,
                json={
                    "finding": "Fewer placements than verified.",
                    "quantities": [{"outcome_id": outcome, "verified_quantity": verified}],
                },
            )
            answers[concern_id] = answer.json
        except BaseException as exc:
            failures.append(exc)

    threads = [
        threading.Thread(target=uphold_at_once, args=args) for args in ((first, 13), (second, 12))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not failures, failures
    upheld = [a for a in answers.values() if a.get("state") == "upheld"]
    refused = [a for a in answers.values() if a.get("status") == 422]
    assert len(upheld) + len(refused) == 2 and upheld, answers
    assert sum(a["tokens_over"] for a in upheld) == 240, answers
    assert sum(a["tokens_cancelled"] for a in upheld) == 84
    assert client.get("/api/v1/registry/buffer").json["shortfall"] == 156
    assert blocks(session, example.project.id) == {"issued": 1596, "cancelled": 84}


@pytest.mark.postgres_only
def test_upholding_locks_the_project_before_it_counts_the_tokens_standing(
    app, client, session, auth_headers, settled_example, clock
):
    """The order the test above relies on, seen in the statements: the project row is
    locked FOR UPDATE before the tokens standing are summed."""
    example = settled_example
    clock.at = LATER
    concern_id = open_dispute(client, session, auth_headers, example)
    session.rollback()
    admin, outcome = auth_headers(example.admin), example.project.outcomes[0].id
    session.rollback()
    with statements(app) as seen:
        answer = client.post(
            f"/api/v1/concerns/{concern_id}/uphold",
            headers=admin,
            json={
                "finding": "Fewer placements than verified.",
                "quantities": [{"outcome_id": outcome, "verified_quantity": 13}],
            },
        )
    assert answer.status_code == 200, answer.json
    flat = [" ".join(s.split()).upper() for s in seen]
    lock = next(
        i for i, s in enumerate(flat) if s.startswith("SELECT PROJECTS.ID") and "FOR UPDATE" in s
    )
    standing = next(i for i, s in enumerate(flat) if "SUM(CONCERNS.TOKENS_OVER)" in s)
    assert lock < standing


@pytest.mark.postgres_only
def test_a_retirement_reads_the_freeze_under_a_share_lock_before_it_moves_serials(
    client, session, auth_headers, settled_example, app, clock
):
    """Opening a dispute updates the project row; a retirement reads that row FOR SHARE
    first, so it either finished before the dispute or sees it (no retirement slips
    between the check and the move)."""
    clock.at = LATER
    headers = auth_headers(settled_example.bank)
    project_id = settled_example.project.id
    session.rollback()
    with statements(app) as seen:
        assert retire(client, headers, project_id, 2, "share-lock").status_code == 201
    flat = [" ".join(s.split()).upper() for s in seen]
    share = next(
        i for i, s in enumerate(flat) if "PROJECTS.DISPUTED" in s and s.endswith("FOR SHARE")
    )
    moved = next(i for i, s in enumerate(flat) if s.startswith("UPDATE TOKEN_BLOCKS"))
    assert share < moved
