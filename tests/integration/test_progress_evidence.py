"""Progress reports, the public late flags, and evidence files stored privately."""

from __future__ import annotations

import base64
import hashlib
import io
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from marketplace.accounts.models import Role
from marketplace.core.storage import LocalStore
from marketplace.core.sweeps import sweep_context
from marketplace.funding.models import PledgeState
from marketplace.projects.models import Project, ProjectState
from marketplace.settlement.sweeps import flag_late
from outcomes.evaluation import EvaluationState
from outcomes.evidence import EvidenceFile
from outcomes.progress import ProgressReport
from tests.factories import (
    EvaluationFactory,
    OrganisationFactory,
    PledgeFactory,
    ProjectFactory,
    UserFactory,
)
from tests.integration.funding_support import tick

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def running_project(**overrides) -> Project:
    values = {
        "state": ProjectState.RUNNING,
        "funding_deadline": date(2026, 6, 1),
        "start_date": date(2026, 6, 2),
        "end_date": date(2027, 6, 1),
    }
    return ProjectFactory(**{**values, **overrides})


def owner_of(project: Project):
    return UserFactory(role=Role.ENTREPRENEUR, organisation=project.organisation)


def upload(client, path, headers, name, data, **form):
    return client.post(
        path,
        headers=headers,
        data={"file": (io.BytesIO(data), name), **form},
        content_type="multipart/form-data",
    )


def stored_files(app) -> list:
    root = app.extensions["evidence"].root
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


# ---------------------------------------------------------------- progress reports


def test_the_owner_reports_and_everyone_reads_it_but_attachments_stay_with_the_buyers(
    app, client, session, auth_headers, clock
):
    project = running_project()
    outcome = project.outcomes[0]
    owner = auth_headers(owner_of(project))
    backer = PledgeFactory(project=project, state=PledgeState.PAID)
    session.commit()

    posted = client.post(
        f"/api/v1/projects/{project.id}/progress-reports",
        headers=owner,
        json={
            "text": "  Eight people started work.  ",
            "figures": [{"outcome_id": outcome.id, "quantity": 8}],
        },
    )
    assert posted.status_code == 201, posted.json
    assert posted.json["text"] == "Eight people started work."
    assert posted.json["figures"] == [{"outcome_id": outcome.id, "quantity": 8}]
    report_id = posted.json["id"]
    attached = upload(
        client, f"/api/v1/progress-reports/{report_id}/attachments", owner, "payroll.pdf", PDF
    )
    assert attached.status_code == 201, attached.json
    assert attached.json["sha256"] == hashlib.sha256(PDF).hexdigest()

    public = client.get(f"/api/v1/projects/{project.id}/progress-reports")
    assert public.status_code == 200
    assert [r["id"] for r in public.json] == [report_id]
    assert public.json[0]["attachments"] == []
    assert public.json[0]["attachment_count"] == 1
    as_buyer = client.get(
        f"/api/v1/projects/{project.id}/progress-reports", headers=auth_headers(backer.user)
    ).json[0]
    assert [a["filename"] for a in as_buyer["attachments"]] == ["payroll.pdf"]
    download = client.get(f"/api/v1/files/{attached.json['id']}", headers=auth_headers(backer.user))
    assert download.status_code == 200
    assert download.data == PDF
    stranger = UserFactory(role=Role.BUYER, organisation=OrganisationFactory())
    session.commit()
    refused = client.get(f"/api/v1/files/{attached.json['id']}", headers=auth_headers(stranger))
    assert refused.status_code == 404
    page = client.get(f"/projects/{project.id}")
    assert "Eight people started work." in page.text
    assert "payroll.pdf" not in page.text  # not for the public


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": "   "}, "text"),
        ({"text": "x" * 20_001}, "text"),
        ({"text": "ok", "figures": [{"outcome_id": 1, "quantity": -1}]}, "figures.0.quantity"),
        ({"text": "ok", "figures": [{"outcome_id": 1, "quantity": 1.5}]}, "figures.0.quantity"),
        ({"figures": []}, "text"),
    ],
)
def test_a_bad_report_is_refused_naming_the_field_and_changes_nothing(
    app, client, session, auth_headers, body, field
):
    project = running_project()
    owner = auth_headers(owner_of(project))
    session.commit()

    refused = client.post(
        f"/api/v1/projects/{project.id}/progress-reports", headers=owner, json=body
    )

    assert refused.status_code == 422
    assert field in refused.json["errors"]
    session.rollback()
    assert session.scalar(select(func.count()).select_from(ProgressReport)) == 0


def test_a_figure_for_another_projects_outcome_is_refused(app, client, session, auth_headers):
    project, other = running_project(), running_project()
    owner = auth_headers(owner_of(project))
    foreign = other.outcomes[0].id
    session.commit()

    refused = client.post(
        f"/api/v1/projects/{project.id}/progress-reports",
        headers=owner,
        json={"text": "ok", "figures": [{"outcome_id": foreign, "quantity": 3}]},
    )

    assert refused.status_code == 422
    assert f"figures.{foreign}" in refused.json["errors"]


def test_only_the_owner_reports_and_only_while_running(app, client, session, auth_headers):
    project = running_project()
    funding = ProjectFactory(state=ProjectState.FUNDING)
    someone_else = UserFactory(role=Role.ENTREPRENEUR, organisation=OrganisationFactory())
    owner_of_funding = auth_headers(owner_of(funding))
    session.commit()

    assert (
        client.post(
            f"/api/v1/projects/{project.id}/progress-reports",
            headers=auth_headers(someone_else),
            json={"text": "not mine"},
        ).status_code
        == 403
    )
    not_running = client.post(
        f"/api/v1/projects/{funding.id}/progress-reports",
        headers=owner_of_funding,
        json={"text": "too early"},
    )
    assert not_running.status_code == 409
    assert not_running.json["code"] == "invalid_transition"


def test_three_months_without_a_report_flags_the_project_until_it_reports(
    app, client, session, auth_headers
):
    project = running_project(start_date=date(2026, 6, 2))
    quiet_but_new = running_project(start_date=date(2026, 11, 1))
    owner = auth_headers(owner_of(project))
    session.commit()

    tick(app, datetime(2026, 9, 1, 9, tzinfo=UTC))  # 91 days after the start: not yet late
    assert client.get(f"/api/v1/projects/{project.id}").json["flags"] == []
    tick(app, datetime(2026, 9, 2, 9, tzinfo=UTC))  # 92 days
    assert client.get(f"/api/v1/projects/{project.id}").json["flags"] == ["late_to_report"]
    assert client.get(f"/api/v1/projects/{quiet_but_new.id}").json["flags"] == []
    assert "late to report" in client.get(f"/projects/{project.id}").text

    app.extensions["clock"] = lambda: datetime(2026, 9, 3, 9, tzinfo=UTC)
    assert (
        client.post(
            f"/api/v1/projects/{project.id}/progress-reports",
            headers=owner,
            json={"text": "Back on track."},
        ).status_code
        == 201
    )
    assert client.get(f"/api/v1/projects/{project.id}").json["flags"] == []
    tick(app, datetime(2026, 12, 3, 9, tzinfo=UTC))  # 91 days after the report
    assert client.get(f"/api/v1/projects/{project.id}").json["flags"] == []
    tick(app, datetime(2026, 12, 4, 9, tzinfo=UTC))
    assert client.get(f"/api/v1/projects/{project.id}").json["flags"] == ["late_to_report"]


def test_not_approved_sixty_days_after_the_end_is_late_to_verify(app, client, session):
    project = running_project(state=ProjectState.EVALUATING, end_date=date(2026, 9, 1))
    evaluation = EvaluationFactory(project_id=project.id, state=EvaluationState.SUBMITTED)
    session.commit()

    tick(app, datetime(2026, 10, 31, 9, tzinfo=UTC))  # 60 days after
    assert client.get(f"/api/v1/projects/{project.id}").json["flags"] == []
    tick(app, datetime(2026, 11, 1, 9, tzinfo=UTC))
    assert client.get(f"/api/v1/projects/{project.id}").json["flags"] == ["late_to_verify"]

    # Approved (the settlement sweeps, which need a real valuation, are not run here).
    evaluation.state = EvaluationState.APPROVED
    session.commit()
    assert "1 projects" in flag_late(sweep_context(app), datetime(2026, 11, 2, 9, tzinfo=UTC))
    assert client.get(f"/api/v1/projects/{project.id}").json["flags"] == []


# ---------------------------------------------------------------- evidence files


@pytest.fixture
def assigned(session, auth_headers):
    project = running_project(state=ProjectState.EVALUATING)
    evaluation = EvaluationFactory(project_id=project.id)
    evaluator = session.get(UserFactory._meta.model, evaluation.evaluator_id)
    session.commit()
    return project, evaluation, evaluator


def test_evidence_is_stored_privately_with_its_digest_and_read_only_by_those_entitled(
    app, client, session, auth_headers, assigned
):
    project, evaluation, evaluator = assigned
    mine = auth_headers(evaluator)

    added = upload(
        client,
        f"/api/v1/evaluations/{evaluation.id}/evidence",
        mine,
        "../../etc/payroll 2027.pdf",
        PDF,
        outcome_id=str(project.outcomes[0].id),
    )

    assert added.status_code == 201, added.json
    assert added.json["filename"] == "payroll 2027.pdf"
    assert added.json["content_type"] == "application/pdf"
    assert added.json["size_bytes"] == len(PDF)
    assert added.json["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert added.json["outcome_id"] == project.outcomes[0].id
    [on_disk] = stored_files(app)
    assert on_disk.read_bytes() == PDF
    assert "payroll" not in str(on_disk)
    assert on_disk.stat().st_mode & 0o077 == 0  # the app's user only
    listed = client.get(f"/api/v1/evaluations/{evaluation.id}/evidence", headers=mine)
    assert [f["id"] for f in listed.json] == [added.json["id"]]

    url = f"/api/v1/files/{added.json['id']}"
    got = client.get(url, headers=mine)
    assert got.status_code == 200
    assert got.data == PDF
    assert got.headers["Content-Type"] == "application/pdf"
    assert got.headers["Content-Disposition"].startswith("attachment;")
    digest = base64.b64encode(hashlib.sha256(PDF).digest()).decode()
    assert got.headers["Repr-Digest"] == f"sha-256=:{digest}:"

    admin = UserFactory(role=Role.ADMIN)
    owner = owner_of(project)
    backer = PledgeFactory(project=project, state=PledgeState.PAID)
    other_evaluator = UserFactory(role=Role.EVALUATOR, organisation=OrganisationFactory())
    session.commit()
    assert client.get(url, headers=auth_headers(admin)).status_code == 200
    assert client.get(url, headers=auth_headers(owner)).status_code == 200
    assert client.get(url, headers=auth_headers(backer.user)).status_code == 404
    assert client.get(url, headers=auth_headers(other_evaluator)).status_code == 404
    assert client.get(url).status_code == 401


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("scan.pdf", PNG, "image/png"),
        ("tool.exe", b"MZ\x90\x00\x03\x00\x00\x00", "Only PDF"),
        ("report.pdf", b"", "empty"),
        ("notes.txt", b"\xff\xfe\x00binary", "Only PDF"),
        ("payroll.csv", PDF, "application/pdf"),
    ],
)
def test_files_are_judged_by_their_content_and_a_refusal_stores_nothing(
    app, client, session, auth_headers, assigned, name, data, message
):
    _project, evaluation, evaluator = assigned

    refused = upload(
        client, f"/api/v1/evaluations/{evaluation.id}/evidence", auth_headers(evaluator), name, data
    )

    assert refused.status_code == 422
    assert message in " ".join(refused.json["errors"]["file"])
    session.rollback()
    assert session.scalar(select(func.count()).select_from(EvidenceFile)) == 0
    assert stored_files(app) == []


def test_size_limits_and_missing_parts_are_clear_4xx(app, client, session, auth_headers, assigned):
    _project, evaluation, evaluator = assigned
    mine = auth_headers(evaluator)
    path = f"/api/v1/evaluations/{evaluation.id}/evidence"
    store = app.extensions["evidence"]
    app.extensions["evidence"] = LocalStore(root=store.root, max_bytes=1024 * 1024)
    try:
        too_big = upload(client, path, mine, "big.txt", b"a" * (1024 * 1024 + 1))
    finally:
        app.extensions["evidence"] = store
    assert too_big.status_code == 422
    assert "larger than 1 MB" in too_big.json["errors"]["file"][0]

    beyond = app.config["MAX_CONTENT_LENGTH"] + 1
    assert upload(client, path, mine, "huge.txt", b"a" * beyond).status_code == 413

    no_file = client.post(path, headers=mine, data={}, content_type="multipart/form-data")
    assert no_file.status_code == 422
    assert "file" in no_file.json["errors"]
    wrong_outcome = upload(client, path, mine, "a.txt", b"fine", outcome_id="999999")
    assert wrong_outcome.status_code == 422
    assert "outcome_id" in wrong_outcome.json["errors"]
    session.rollback()
    assert session.scalar(select(func.count()).select_from(EvidenceFile)) == 0


def test_no_evidence_after_submission(app, client, session, auth_headers, assigned):
    _project, evaluation, evaluator = assigned
    evaluation.state = EvaluationState.SUBMITTED
    evaluation.submitted_at = datetime.now(UTC) - timedelta(minutes=1)
    session.commit()

    late = upload(
        client,
        f"/api/v1/evaluations/{evaluation.id}/evidence",
        auth_headers(evaluator),
        "late.pdf",
        PDF,
    )

    assert late.status_code == 409
    assert late.json["code"] == "invalid_transition"


def test_a_damaged_file_is_never_served(app, client, session, auth_headers, assigned):
    _project, evaluation, evaluator = assigned
    mine = auth_headers(evaluator)
    added = upload(client, f"/api/v1/evaluations/{evaluation.id}/evidence", mine, "a.pdf", PDF)
    [on_disk] = stored_files(app)
    on_disk.write_bytes(PDF.replace(b"Catalog", b"Katalog"))

    damaged = client.get(f"/api/v1/files/{added.json['id']}", headers=mine)

    assert damaged.status_code == 503
    assert damaged.json["code"] == "evidence_damaged"
