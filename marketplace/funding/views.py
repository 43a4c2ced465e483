"""Web pages: pledging on a project page, the buyer's pledges, the entrepreneur's
funding view and payout account.

They call the same services as the JSON API; a refused form is shown again
with the reason and the API's status.
"""

from __future__ import annotations

import secrets

import marshmallow as ma
from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import format_date, ngettext
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from marketplace.accounts.models import Role
from marketplace.api.problems import flatten_errors, status_of
from marketplace.core import idempotency as idempotent
from marketplace.core.clock import now, today
from marketplace.core.errors import Forbidden, MarketplaceError, Unavailable
from marketplace.core.idempotency import Replayed
from marketplace.core.schemas import page_number
from marketplace.extensions import db
from marketplace.funding import matching, services
from marketplace.funding.api import debit_terms, invoice_pdf
from marketplace.funding.models import PledgeState
from marketplace.funding.schemas import PayInSchema, PledgeInSchema
from marketplace.funding.services import SEPA_DEBIT
from marketplace.notifications.models import Notification
from marketplace.payments import services as payments
from marketplace.payments.models import (
    BANK_TRANSFER,
    MethodType,
    PaymentSetup,
    PaymentState,
    SetupState,
    Transfer,
)
from marketplace.projects import services as projects
from marketplace.projects.views import detail as project_page
from marketplace.receipts import services as receipts
from marketplace.web.formatting import money, number
from marketplace.web.formatting import tokens as token_count
from marketplace.web.messages import translated
from marketplace.web.panels import project_panel
from marketplace.web.review import confirmed, rehearse, review_page

bp = Blueprint("funding", __name__)

# Stripe's test PaymentMethods, offered on the pledge form in test mode.
TEST_CARDS = (
    ("pm_card_visa", "Visa 4242 — succeeds"),
    ("pm_card_chargeCustomerFail", "Visa 0341 — saved, then declined when charged"),
    ("pm_card_authenticationRequired", "Visa 3184 — needs 3-D Secure when charged"),
    ("pm_card_visa_chargeDeclined", "Visa 0002 — declined at once"),
)


def saved_cards(organisation_id: int, most: int = 5) -> list[PaymentSetup]:
    """The organisation's saved cards and SEPA accounts, newest first, to offer again."""
    return list(
        db.session.scalars(
            select(PaymentSetup)
            .where(
                PaymentSetup.organisation_id == organisation_id,
                PaymentSetup.state == SetupState.SUCCEEDED,
                PaymentSetup.method_type != MethodType.BANK_TRANSFER,
            )
            .order_by(PaymentSetup.id.desc())
            .limit(most)
        )
    )


@project_panel
def pledge_form_context(project, _viewer=None, _is_owner: bool = False) -> dict:
    """What the pledge card on a project page needs (a panel of the project page).

    The form carries a fresh idempotency key: submitting it twice (a double
    click, a reload) makes one pledge.
    """
    settings = current_app.extensions["settings"]
    is_buyer = current_user.is_authenticated and current_user.role is Role.BUYER
    saved = saved_cards(current_user.organisation_id) if is_buyer else []
    return {
        "funding": {
            "can_pledge": is_buyer and services.funding_open(project, today()),
            "remaining": services.remaining_tokens(project),
            "saved_cards": saved,
            "test_cards": TEST_CARDS if not settings.stripe_publishable_key else (),
            "publishable_key": settings.stripe_publishable_key,
            "form_key": secrets.token_urlsafe(24),
            "sepa_limit_cents": settings.sepa_limit_cents,
            "platform_name": settings.platform_legal_name,
            "offer": matching.offer_for(
                db.session,
                project,
                current_user.organisation_id if current_user.is_authenticated else None,
            ),
            "matched_by": matching.matched_by(db.session, project.id),
        }
    }


# The pledge form's fields, as the API's schema reads them.
PLEDGE_FIELDS = ("tokens", "payment_method", "iban", "account_holder", "mandate_accepted")


def _pledge_input(form: dict) -> dict:
    given = {name: form[name] for name in PLEDGE_FIELDS if form.get(name)}
    return {"tokens": "", "payment_method": "", **given}


def _form_idempotency(form: dict, project_id: int) -> idempotent.Idempotency | None:
    """The pledge form's key with the fingerprint of what it asks (the same form sent
    twice is one pledge; the key with other figures is refused)."""
    body = _pledge_input(form)
    key = form.get("form_key") or None
    return idempotent.parse(
        current_user.id, f"form-{key}" if key else None, "POST", request.path, body
    )


def _form_errors(exc: MarketplaceError) -> dict[str, list[str]]:
    return exc.errors or {"_action": [exc.message]}


@bp.post("/projects/<int:project_id>/pledge")
@login_required
def pledge(project_id: int):
    form = request.form.to_dict()
    try:
        data = PledgeInSchema().load(_pledge_input(form))
    except ma.ValidationError as exc:
        return project_page(project_id, status=422, errors=flatten_errors(exc.messages), form=form)
    if not confirmed():
        return _review_pledge(project_id, data, form)
    try:
        key = _form_idempotency(form, project_id)
        created = services.create_pledge(
            db.session,
            current_app.extensions["stripe"],
            current_user,
            project_id,
            tokens=data["tokens"],
            payment_method=data["payment_method"],
            now=now(),
            today=today(),
            idempotency=key,
            hand_over=db.for_process,
            limit_cents=current_app.extensions["settings"].unverified_pledge_limit_cents,
            **debit_terms(data, current_user),
        )
    except Replayed as replayed:
        # The same form again (a double click): show the pledge the first one made.
        db.session.rollback()
        record = idempotent.replay(db.session, replayed.idempotency)
        pledge_id = record.response.get("id") if record else None
        return redirect(url_for("funding.pledges", _anchor=f"pledge-{pledge_id}"))
    except MarketplaceError as exc:
        db.session.rollback()
        if isinstance(exc, Unavailable) and exc.retry_after:
            # Stripe's rate limit: nothing was saved; the person tries again in a moment.
            busy = _(
                "Stripe asks us to slow down just now. "
                "Nothing was saved: please try again in a moment."
            )
            page, status = project_page(
                project_id, status=503, errors={"_action": [busy]}, form=form
            )
            return page, status, {"Retry-After": str(exc.retry_after)}
        return project_page(project_id, status=status_of(exc), errors=_form_errors(exc), form=form)
    if created.payment_type == BANK_TRANSFER:
        done = _(
            "Pledged %(n)d tokens. If funding reaches its threshold you get an invoice with "
            "an IBAN and a reference to transfer the amount to.",
            n=created.tokens,
        )
    elif created.payment_type == SEPA_DEBIT:
        done = _(
            "Pledged %(n)d tokens. Your account and mandate are saved; it is debited only if "
            "funding reaches its threshold.",
            n=created.tokens,
        )
    else:
        done = _(
            "Pledged %(n)d tokens. Your card is saved and is charged only if funding reaches "
            "its threshold.",
            n=created.tokens,
        )
    if created.matched:
        done = " ".join(
            (
                done,
                ngettext(
                    "A matchfunding pool adds %(num)d token.",
                    "A matchfunding pool adds %(num)d tokens.",
                    created.matched["tokens"],
                ),
            )
        )
    flash(done, "success")
    return redirect(url_for("funding.pledges", _anchor=f"pledge-{created.id}"))


def _card_name(data: dict) -> str:
    """The payment method as the buyer chose it on the form."""
    payment_method = data["payment_method"]
    if payment_method == SEPA_DEBIT:
        return _("The account %(iban)s", iban=f"{data['iban'][:4]} •••• {data['iban'][-4:]}")
    for value, label in TEST_CARDS:
        if value == payment_method:
            return label.split(" — ")[0]
    for card in saved_cards(current_user.organisation_id):
        if card.payment_method_id == payment_method:
            return card.label
    return _("the new card")


def _review_pledge(project_id: int, data: dict, form: dict):
    """What the pledge commits the buyer to, before anything is saved."""
    tokens = data["tokens"]
    project = projects.get_project(db.session, current_user, project_id)
    left = services.remaining_tokens(project)
    if project.token_price_cents is None or tokens > left:
        message = _(
            "Only %(left)s tokens remain; you asked for %(tokens)s.",
            left=number(left),
            tokens=number(tokens),
        )
        return project_page(project_id, status=409, errors={"tokens": [message]}, form=form)
    total = tokens * project.token_price_cents
    return review_page(
        title=_("Pledge to %(project)s", project=project.title),
        consequences=[
            _(
                "%(tokens)s at %(price)s = %(total)s.",
                tokens=token_count(tokens),
                price=money(project.token_price_cents),
                total=money(total),
            ),
            _how_paid(data, total, project.funding_deadline),
            _(
                "You may cancel the pledge until funding closes. After the evaluation you "
                "pay only for verified outcomes; the rest is refunded."
            ),
        ],
        confirm=_("Pledge %(total)s", total=money(total)),
        back=url_for("projects.detail", project_id=project_id),
    )


def _how_paid(data: dict, total: int, deadline) -> str:
    grace = current_app.extensions["settings"].payment_grace_hours
    if data["payment_method"] == BANK_TRANSFER:
        return _(
            "If funding reaches its threshold by %(deadline)s, you get an invoice with an "
            "IBAN and a reference: transfer %(total)s within %(hours)s hours, or the pledge is "
            "cancelled. Otherwise nothing is asked.",
            deadline=format_date(deadline, "long"),
            total=money(total),
            hours=number(grace),
        )
    if data["payment_method"] == SEPA_DEBIT or _saved_debit(data["payment_method"]):
        return _(
            "%(account)s is saved now with your mandate and debited %(total)s only if funding "
            "reaches its threshold by %(deadline)s; otherwise nothing is debited. Your bank "
            "confirms a debit within a few days.",
            account=_card_name(data),
            total=money(total),
            deadline=format_date(deadline, "long"),
        )
    return _(
        "%(card)s is saved now and charged %(total)s only if funding reaches its "
        "threshold by %(deadline)s; otherwise nothing is charged.",
        card=_card_name(data),
        total=money(total),
        deadline=format_date(deadline, "long"),
    )


def _saved_debit(payment_method: str) -> bool:
    return any(
        card.payment_method_id == payment_method and card.method_type is MethodType.SEPA_DEBIT
        for card in saved_cards(current_user.organisation_id)
    )


def _pledges_page(status: int = 200, errors=None, form=None, focus: int | None = None):
    if current_user.role not in (Role.BUYER, Role.ADMIN):
        raise Forbidden("Only buyers pledge.")
    page = page_number(request.args.get("page"))
    items, total = services.list_pledges(db.session, current_user, page=page, per_page=50)
    notes = list(
        db.session.scalars(
            select(Notification)
            .where(Notification.organisation_id == current_user.organisation_id)
            .order_by(Notification.id.desc())
            .limit(10)
        )
    )
    saved = saved_cards(current_user.organisation_id)
    settings = current_app.extensions["settings"]
    return render_template(
        "funding/pledges.html",
        receipts=receipts.of_organisation(db.session, current_user),
        pledges=items,
        total=total,
        page=page,
        notifications=notes,
        states=PledgeState,
        today=today(),
        now=now(),
        errors=errors or {},
        form=form or {},
        focus=focus,
        saved_cards=saved,
        test_cards=TEST_CARDS if not settings.stripe_publishable_key else (),
        publishable_key=settings.stripe_publishable_key,
        funding_open=services.funding_open,
        transfer_details=services.transfer_details,
    ), status


@bp.get("/pledges")
@login_required
def pledges():
    return _pledges_page()


@bp.post("/pledges/<int:pledge_id>/cancel")
@login_required
def cancel(pledge_id: int):
    try:
        if not confirmed():
            return _review_cancel(pledge_id)
        services.cancel_pledge(db.session, current_user, pledge_id, now=now(), today=today())
    except MarketplaceError as exc:
        db.session.rollback()
        return _pledges_page(status_of(exc), _form_errors(exc), focus=pledge_id)
    flash(_("The pledge is cancelled; nothing was charged."), "success")
    return redirect(url_for("funding.pledges"))


def _review_cancel(pledge_id: int):
    def act() -> tuple[int, str, int]:
        pledge = services.cancel_pledge(
            db.session, current_user, pledge_id, now=now(), today=today()
        )
        return pledge.tokens, pledge.project.title, pledge.amount_cents

    tokens, title, amount = rehearse(act)
    return review_page(
        title=_("Cancel your pledge to %(project)s", project=title),
        consequences=[
            _(
                "Your pledge of %(tokens)s (%(amount)s) ends; nothing is charged.",
                tokens=token_count(tokens),
                amount=money(amount),
            ),
            _("The tokens return to the project for other buyers. To pledge again, start anew."),
        ],
        confirm=_("Cancel the pledge"),
        back=url_for("funding.pledges", _anchor=f"pledge-{pledge_id}"),
        danger=True,
    )


@bp.post("/pledges/<int:pledge_id>/pay")
@login_required
def pay(pledge_id: int):
    form = request.form.to_dict()
    try:
        data = PayInSchema().load({"payment_method": form.get("payment_method", "")})
        outcome = services.pay_pledge(
            db.for_process(),
            current_app.extensions["stripe"],
            current_user,
            pledge_id,
            payment_method=data["payment_method"],
            now=now(),
            grace_hours=current_app.extensions["settings"].payment_grace_hours,
        )
    except ma.ValidationError as exc:
        return _pledges_page(422, flatten_errors(exc.messages), form, focus=pledge_id)
    except MarketplaceError as exc:
        db.session.rollback()
        return _pledges_page(status_of(exc), _form_errors(exc), form, focus=pledge_id)
    if outcome.state is PaymentState.SUCCEEDED:
        flash(_("Paid. Thank you: the pledge is complete."), "success")
    else:
        flash(_("Your bank asks you to confirm the payment; follow its instructions."), "info")
    return redirect(url_for("funding.pledges", _anchor=f"pledge-{pledge_id}"))


@bp.get("/pledges/<int:pledge_id>/invoice.pdf")
@login_required
def invoice(pledge_id: int):
    """The invoice of a bank transfer awaited: rendered now, in the reader's language, with
    what has arrived so far. Only the buyer's organisation and admins see it (others 404)."""
    return invoice_pdf(services.get_pledge(db.session, current_user, pledge_id))


@bp.get("/projects/<int:project_id>/funding")
@login_required
def project_funding(project_id: int):
    project = projects.get_project(db.session, current_user, project_id)
    rows = services.project_pledges(db.session, current_user, project)
    transfers = list(db.session.scalars(select(Transfer).where(Transfer.project_id == project.id)))
    account = payments.connected_account(db.session, project.organisation_id)
    paid = [p for p in rows if p.state is PledgeState.PAID]
    return render_template(
        "funding/project.html",
        project=project,
        pledges=rows,
        transfers=transfers,
        account=account,
        raised_cents=sum(p.amount_cents for p in paid),
        is_owner=current_user.organisation_id == project.organisation_id,
    )


@bp.post("/projects/<int:project_id>/close-funding")
@login_required
def close_funding(project_id: int):
    try:
        if not confirmed():
            return _review_close(project_id)
        services.close_funding_early(db.session, current_user, project_id, now=now())
    except MarketplaceError as exc:
        db.session.rollback()
        return project_page(project_id, status=status_of(exc), errors=_form_errors(exc))
    flash(_("Funding is closed. Every pledge is charged within a few minutes."), "success")
    return redirect(url_for("projects.detail", project_id=project_id))


def _review_close(project_id: int):
    def act() -> tuple[str, int, int, int]:
        project = services.close_funding_early(db.session, current_user, project_id, now=now())
        pledged = project.tokens_pledged
        return (
            project.title,
            pledged,
            project.tokens_total or 0,
            pledged * (project.token_price_cents or 0),
        )

    title, pledged, total, cents = rehearse(act)
    return review_page(
        title=_("Close funding of %(project)s", project=title),
        consequences=[
            _(
                "%(pledged)s of %(total)s tokens are pledged: every pledge is charged now, "
                "%(amount)s in all.",
                pledged=number(pledged),
                total=number(total),
                amount=money(cents),
            ),
            _("Nobody can pledge after this; the tokens not pledged are not sold."),
        ],
        confirm=_("Close funding and charge the pledges"),
        back=url_for("projects.detail", project_id=project_id),
        danger=True,
    )


@bp.get("/payouts")
@login_required
def payouts():
    if current_user.role is not Role.ENTREPRENEUR:
        raise Forbidden("Payout accounts belong to entrepreneurs.")
    account = payments.connected_account(db.session, current_user.organisation_id)
    if account is not None and not account.ready:
        try:
            payments.refresh_account(db.session, current_app.extensions["stripe"], account, now())
        except MarketplaceError:
            db.session.rollback()
            flash(_("Stripe did not answer; the status shown may be out of date."), "warning")
    waiting = list(
        db.session.scalars(
            select(Transfer)
            .where(Transfer.organisation_id == current_user.organisation_id)
            .order_by(Transfer.id.desc())
        )
    )
    return render_template("funding/payouts.html", account=account, transfers=waiting)


@bp.post("/payouts")
@login_required
def start_payouts():
    if current_user.role is not Role.ENTREPRENEUR:
        raise Forbidden("Payout accounts belong to entrepreneurs.")
    back = url_for("funding.payouts", _external=True)
    name, email = current_user.organisation.name, current_user.email
    try:
        link = payments.start_onboarding(
            db.for_process(),
            current_app.extensions["stripe"],
            organisation_id=current_user.organisation_id,
            organisation_name=name,
            email=email,
            return_url=back,
            refresh_url=back,
            now=now(),
        )
    except MarketplaceError as exc:
        db.session.rollback()
        flash(translated(exc.message), "error")
        return redirect(url_for("funding.payouts"))
    return redirect(link, code=303)
