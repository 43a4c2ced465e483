"""Web pages: the public registry (search, CSV), retirement pages and certificates, and the
buyer's holdings with the retirement form."""

from __future__ import annotations

import secrets

import marshmallow as ma
from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_babel import format_date
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from marketplace.accounts.models import Organisation, Role, User
from marketplace.api.problems import flatten_errors, status_of
from marketplace.claims.trail import claim_trail
from marketplace.core import idempotency as idempotent
from marketplace.core.clock import now
from marketplace.core.errors import Forbidden, MarketplaceError
from marketplace.core.exports import csv_text
from marketplace.core.idempotency import Replayed
from marketplace.core.schemas import page_number
from marketplace.extensions import db
from marketplace.obligations import services as obligations
from marketplace.obligations.models import ObligationState
from marketplace.projects.models import Project
from marketplace.registry import certificate, services
from marketplace.registry.api import RetirementInSchema, TransferInSchema
from marketplace.registry.models import Claim, Purpose
from marketplace.settlement.models import Settlement
from marketplace.web.formatting import (
    claim_label,
    money,
    number,
    purpose_label,
    quantity,
    tokens,
)
from marketplace.web.review import confirmed, rehearse, review_page
from outcomes.evaluation import Evaluation

bp = Blueprint("registry", __name__)
PER_PAGE = 50


@bp.get("/registry")
def registry():
    serial = request.args.get("serial", "").strip()[:100]
    typed = "".join(ch for ch in request.args.get("q", "")[:1000] if ch.isprintable())
    text = " ".join(typed.split())[:100]
    page = page_number(request.args.get("page"))
    errors = {}
    filters = services.RegistryFilters(
        serial=serial or None, text=text or None, page=page, per_page=PER_PAGE
    )
    try:
        rows, total = services.registry_blocks(db.session, filters)
        totals = services.registry_totals(db.session, filters) if text or serial else []
    except MarketplaceError as exc:
        rows, total, totals, errors = [], 0, [], exc.errors
    titles = dict(
        db.session.execute(
            select(Project.id, Project.title).where(
                Project.id.in_({block.project_id for block, _holder in rows})
            )
        ).all()
    )
    return render_template(
        "registry/list.html",
        rows=rows,
        titles=titles,
        totals=totals,
        total=total,
        page=page,
        serial=serial,
        text=text,
        errors=errors,
        holder_name=services.holder_name,
        pages=max(1, -(-total // PER_PAGE)),
    ), (422 if errors else 200)


@bp.get("/registry.csv")
def registry_csv():
    def lines():
        yield csv_text(
            [
                [
                    "serial_block",
                    "project_id",
                    "vintage",
                    "quantity",
                    "holder",
                    "status",
                    "retirement_id",
                ]
            ]
        )
        for block, holder in services.all_blocks(db.session):
            yield csv_text(
                [
                    [
                        block.serial,
                        block.project_id,
                        block.vintage,
                        block.quantity,
                        services.holder_name(holder),
                        block.status.value,
                        block.retirement_id or "",
                    ]
                ]
            )

    return Response(
        stream_with_context(lines()),
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=registry.csv"},
    )


def _retirement_context(retirement_id: int) -> dict:
    found = services.get_retirement(db.session, retirement_id)
    project = db.session.get(Project, found.project_id)
    holder = db.session.get_one(Organisation, found.organisation_id)
    return {
        "retirement": found,
        "project": project,
        "holder": _(services.holder_name(holder)),
        "public_url": url_for("registry.retirement", retirement_id=found.id, _external=True),
    }


@bp.get("/registry/retirements/<int:retirement_id>")
def retirement(retirement_id: int):
    context = _retirement_context(retirement_id)
    return render_template(
        "registry/retirement.html", trail_serial=first_serial(context["retirement"]), **context
    )


@bp.get("/registry/serials/<string:serial>")
def trail(serial: str):
    """A serial's claim trail, public: what an auditor follows back to the valuation."""
    try:
        found = claim_trail(db.session, serial[:100])
    except MarketplaceError as exc:
        return render_template("registry/trail.html", trail=None, serial=serial[:100]), status_of(
            exc
        )
    return render_template("registry/trail.html", trail=found, serial=found["serial"])


def first_serial(retirement) -> str:
    """The retirement's first serial ("SOM-P000042-2027-0000017"): its trail is checkable."""
    block = min(retirement.blocks, key=lambda b: b.first_serial)
    return block.serial.rsplit("-", 1)[0]


@bp.get("/registry/retirements/<int:retirement_id>/certificate.pdf", endpoint="certificate")
def certificate_pdf(retirement_id: int):
    context = _retirement_context(retirement_id)
    pdf = certificate.render(_certificate_text(context))
    return Response(
        pdf,
        mimetype="application/pdf",
        headers={"Content-Disposition": f"inline; filename=retirement-{retirement_id}.pdf"},
    )


def _certificate_text(context: dict) -> certificate.CertificateText:
    """What the certificate says, in the reader's language."""
    found, project = context["retirement"], context["project"]
    settled = db.session.scalar(select(Settlement).where(Settlement.project_id == project.id))
    evaluation = db.session.scalar(
        select(Evaluation).where(
            Evaluation.project_id == project.id, Evaluation.approved_at.is_not(None)
        )
    )
    evaluator = db.session.get(User, evaluation.evaluator_id) if evaluation else None
    value = (
        settled.v_verified_cents * found.quantity // settled.tokens_minted
        if settled and settled.tokens_minted
        else None
    )
    facts = [
        (_("Purpose"), purpose_label(found.purpose)),
        (_("Claim"), claim_label(found.claim)),
    ]
    if found.contract_reference:
        facts.append((_("Contract reference"), found.contract_reference))
    facts.append((_("Holder"), context["holder"]))
    if value is not None:
        facts.append((_("Verified social value of these tokens"), money(value)))
    if project.valuation:
        facts.append(
            (_("Valuation method"), _("version %(v)s", v=project.valuation.method_version))
        )
    if evaluator and evaluation and evaluation.approved_at:
        facts.append((_("Independent evaluator"), evaluator.name))
        facts.append((_("Results approved on"), format_date(evaluation.approved_at, "long")))
    serial = first_serial(found)
    checked = claim_trail(db.session, serial)
    facts.append(
        (
            _("Fingerprint of the claim trail"),
            _(
                "%(short)s (SHA-256; check it at %(where)s)",
                short=checked["fingerprint"][:16],
                where=f"{current_app.extensions['settings'].public_url}/registry/serials/{serial}",
            ),
        )
    )
    return certificate.CertificateText(
        document_title=_("Retirement certificate %(id)s", id=found.id),
        platform=_("Social Outcomes Marketplace"),
        title=_("Certificate of retirement of impact tokens"),
        number=_(
            "Retirement no. %(id)s, %(date)s",
            id=found.id,
            date=format_date(found.retired_at, "long"),
        ),
        lead=_(
            "%(what)s of %(reference)s %(project)s",
            what=tokens(found.quantity),
            reference=project.reference,
            project=project.title,
        ),
        beneficiary=_("retired on behalf of %(who)s", who=found.beneficiary),
        facts=facts,
        serials_heading=_("Serial numbers"),
        serials=[f"{block.serial} ({tokens(block.quantity)})" for block in found.blocks],
        outcomes_heading=_("Verified outcomes of the project"),
        outcomes=[
            _(
                "%(outcome)s: %(v)s of %(what)s verified",
                outcome=c.outcome_type.name,
                v=number(c.verified_quantity or 0),
                what=quantity(c.target_quantity, c.outcome_type.unit),
            )
            for c in project.outcomes
        ],
        note=_("Note: %(note)s", note=found.note) if found.note else "",
        check=_("Check this retirement in the public registry:"),
        url=context["public_url"],
        final=_(
            "A serial is retired once only: this claim cannot be made again with these tokens."
        ),
    )


def _holdings_page(status: int = 200, errors=None, form=None):
    if current_user.role is not Role.BUYER:
        raise Forbidden("Holdings belong to buyers.")
    blocks = services.holdings(db.session, current_user)
    titles = {
        p.id: p.title
        for p in db.session.query(Project).filter(Project.id.in_({b.project_id for b in blocks}))
    }
    return render_template(
        "registry/holdings.html",
        blocks=blocks,
        titles=titles,
        purposes=list(Purpose),
        claims=list(Claim),
        receivers=db.session.scalars(
            select(Organisation)
            .where(
                Organisation.verified_at.is_not(None),
                Organisation.id != current_user.organisation_id,
            )
            .order_by(Organisation.name)
            .limit(1000)
        ).all(),
        obligations=obligations.listing(
            db.session, current_user, state=ObligationState.ACCEPTED, per_page=100
        )[0],
        errors=errors or {},
        form=form or {},
        form_key=secrets.token_urlsafe(24),
        organisation=current_user.organisation,
    ), status


@bp.get("/holdings")
@login_required
def holdings():
    return _holdings_page()


@bp.post("/holdings/retire")
@login_required
def retire():
    form = request.form.to_dict()
    try:
        fields = {
            k: v
            for k, v in form.items()
            if k not in ("csrf_token", "confirmed", "form_key")
            and not (k == "obligation_id" and not v)
        }
        data = RetirementInSchema().load(fields)
        obligation_id = data.pop("obligation_id")
        if not confirmed():
            return _review_retirement(services.RetirementInput(**data), obligation_id)
        key = form.get("form_key") or None
        found = obligations.retire(
            db.session,
            current_user,
            services.RetirementInput(**data),
            obligation_id=obligation_id,
            now=now(),
            idempotency=idempotent.parse(
                current_user.id, f"form-{key}" if key else None, "POST", request.path, fields
            ),
        )
    except ma.ValidationError as exc:
        return _holdings_page(422, flatten_errors(exc.messages), form)
    except Replayed as replayed:
        # The confirmation sent again (a double click): show the retirement it made.
        db.session.rollback()
        record = idempotent.replay(db.session, replayed.idempotency)
        made = record.response.get("id") if record else None
        return redirect(url_for("registry.retirement", retirement_id=made))
    except MarketplaceError as exc:
        db.session.rollback()
        return _holdings_page(status_of(exc), exc.errors or {"_action": [exc.message]}, form)
    flash(_("Retired %(n)d tokens. The certificate is ready.", n=found.quantity), "success")
    return redirect(url_for("registry.retirement", retirement_id=found.id))


def _review_retirement(data: services.RetirementInput, obligation_id: int | None):
    def act() -> tuple[str, list[str], tuple[int, str] | None]:
        found = obligations.retire(
            db.session, current_user, data, obligation_id=obligation_id, now=now()
        )
        blocks = [b.serial for b in found.blocks]
        credit = obligations.credit_of(db.session, found.id)
        credited = (credit.credit_cents, found.contract_reference) if credit is not None else None
        return db.session.get_one(Project, data.project_id).title, blocks, credited

    title, blocks, credited = rehearse(act)
    consequences = [
        _(
            "%(n)s of %(project)s are retired for %(beneficiary)s, for %(purpose)s.",
            n=tokens(data.quantity),
            project=title,
            beneficiary=data.beneficiary.strip(),
            purpose=purpose_label(data.purpose),
        ),
    ]
    if blocks:
        consequences.append(_("Serials: %(serials)s.", serials=", ".join(blocks)))
    if credited is not None:
        consequences.append(
            _(
                "They are credited %(amount)s toward your social-return obligation under "
                "contract %(reference)s, for its authority to sign off.",
                amount=money(credited[0]),
                reference=credited[1],
            )
        )
    consequences.append(
        _(
            "Retired tokens can never be used, retired again or transferred; the retirement "
            "is public in the registry and a certificate is made."
        )
    )
    return review_page(
        title=_("Retire %(n)s", n=tokens(data.quantity)),
        consequences=consequences,
        confirm=_("Retire the tokens"),
        back=url_for("registry.holdings"),
        danger=True,
    )


@bp.post("/holdings/transfer")
@login_required
def transfer():
    form = request.form.to_dict()
    try:
        fields = {k: v for k, v in form.items() if k not in ("csrf_token", "confirmed", "form_key")}
        data = services.TransferInput(**TransferInSchema().load(fields))
        if not confirmed():
            return _review_transfer(data)
        key = form.get("form_key") or None
        made = services.transfer(
            db.session,
            current_user,
            data,
            now=now(),
            idempotency=idempotent.parse(
                current_user.id, f"form-{key}" if key else None, "POST", request.path, fields
            ),
        )
    except ma.ValidationError as exc:
        return _holdings_page(422, _transfer_errors(flatten_errors(exc.messages)), form)
    except Replayed:
        # The confirmation sent again (a double click): the transfer was made once.
        db.session.rollback()
        flash(_("The transfer was made."), "success")
        return redirect(url_for("registry.holdings"))
    except MarketplaceError as exc:
        db.session.rollback()
        errors = exc.errors or {"_action": [exc.message]}
        return _holdings_page(status_of(exc), _transfer_errors(errors), form)
    flash(
        _(
            "Transferred %(n)s to %(organisation)s.",
            n=tokens(made.quantity),
            organisation=db.session.get_one(Organisation, made.to_organisation_id).name,
        ),
        "success",
    )
    return redirect(url_for("registry.holdings"))


def _transfer_errors(errors: dict) -> dict:
    """The transfer form's fields carry a prefix (the retirement form has a quantity too)."""
    return {(k if k.startswith("_") else f"transfer_{k}"): v for k, v in errors.items()}


def _review_transfer(data: services.TransferInput):
    def act() -> tuple[str, str, list[str]]:
        made = services.transfer(db.session, current_user, data, now=now())
        return (
            db.session.get_one(Project, data.project_id).title,
            db.session.get_one(Organisation, data.to_organisation_id).name,
            [r.serial for r in made.ranges],
        )

    title, receiver, serials = rehearse(act)
    return review_page(
        title=_(
            "Transfer %(n)s to %(organisation)s", n=tokens(data.quantity), organisation=receiver
        ),
        consequences=[
            _(
                "%(n)s of %(project)s go to %(organisation)s: serials %(serials)s.",
                n=tokens(data.quantity),
                project=title,
                organisation=receiver,
                serials=", ".join(serials),
            ),
            _(
                "A transfer is final and public in the registry: the serials' history shows "
                "they went from your organisation to %(organisation)s.",
                organisation=receiver,
            ),
        ],
        confirm=_("Transfer the tokens"),
        back=url_for("registry.holdings"),
        danger=True,
    )


@bp.post("/holdings/visibility")
@login_required
def visibility():
    if current_user.role is not Role.BUYER:
        raise Forbidden("Holdings belong to buyers.")
    current_user.organisation.registry_public = request.form.get("registry_public") == "on"
    flash(_("Saved: the public registry shows your organisation as you chose."), "success")
    return redirect(url_for("registry.holdings"))
