"""The e-mails that carry an account link, written in the reader's language and sent at
once (the link's secret is in no table, so these cannot wait in the notices' outbox).

A failure to send is the caller's to report ("ask again in a moment"); the link it
carried stays unused and expires.
"""

from __future__ import annotations

import logging
import smtplib

from config.settings import Settings
from marketplace.accounts.models import LinkPurpose
from marketplace.core.exports import header_text
from marketplace.notifications.messages import N_, render
from marketplace.notifications.services import EMAIL_LANGUAGES, Mailer, translator

log = logging.getLogger(__name__)

# (subject, body, path of the page the link opens) per purpose
LETTERS = {
    LinkPurpose.VERIFY_EMAIL: (
        N_("Confirm your e-mail address"),
        N_(
            "Hello %(name)s,\n\nOpen this link to confirm that %(email)s is your address. "
            "Until you do, you can look around but not submit a project or pledge. "
            "The link works once, for 3 days."
        ),
        "/account/verify/",
    ),
    LinkPurpose.RESET_PASSWORD: (
        N_("Choose a new password"),
        N_(
            "Hello %(name)s,\n\nSomeone (we hope you) asked to reset the password of the "
            "account %(email)s. Open this link within an hour to choose a new one; it works "
            "once. If it was not you, ignore this e-mail: your password stays as it is."
        ),
        "/password/reset/",
    ),
    LinkPurpose.CHANGE_EMAIL: (
        N_("Confirm your new e-mail address"),
        N_(
            "Hello %(name)s,\n\nOpen this link to make %(email)s the address of your account. "
            "Until you do, your old address stays. The link works once, for a day."
        ),
        "/account/email/",
    ),
    LinkPurpose.INVITATION: (
        N_("%(inviter)s invites you to %(organisation)s"),
        N_(
            "Hello,\n\n%(inviter)s invites you to join %(organisation)s on the Social "
            "Outcomes Marketplace. Open this link within 7 days to choose your name and "
            "password."
        ),
        "/invitations/",
    ),
}


def letter(
    settings: Settings, purpose: LinkPurpose, secret: str, language: str | None, **params: str
) -> tuple[str, str]:
    """The subject and text (link last) in the reader's language."""
    chosen = language if language in EMAIL_LANGUAGES else "en"
    subject, body, path = LETTERS[purpose]
    written = [
        render(
            template,
            params,
            translate=translator(chosen),
            locale=EMAIL_LANGUAGES[chosen],
            currency=settings.currency,
            zone=settings.timezone,
        )
        for template in (subject, body)
    ]
    return header_text(written[0]), f"{written[1]}\n\n{settings.public_url}{path}{secret}"


def send_link(
    settings: Settings,
    purpose: LinkPurpose,
    to: str,
    secret: str,
    language: str | None,
    **params: str,
) -> bool:
    """Send the link's e-mail now; False when the mail server refused or was out of reach.
    The letter may name the address it goes to as ``%(email)s``."""
    subject, text = letter(settings, purpose, secret, language, **{"email": to, **params})
    try:
        Mailer(settings).send([to], subject, text)
    except (smtplib.SMTPException, OSError, ValueError) as failure:
        log.error("the %s e-mail to %s could not be sent: %s", purpose.value, to, failure)
        return False
    return True
