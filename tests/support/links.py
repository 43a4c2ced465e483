"""One open e-mailed link of each purpose, for walking the pages they open."""

from __future__ import annotations

from marketplace.accounts import profile
from marketplace.accounts.models import AccountLink, LinkPurpose, User


def open_links(session, owner: User, domain: str) -> dict[LinkPurpose, tuple[AccountLink, str]]:
    """A link of each purpose to its own address at ``domain`` (an invitation to the
    owner's organisation, the others for the owner): {purpose: (link, secret)}."""
    return {
        purpose: profile.issue_link(
            session,
            purpose,
            f"person{number}@{domain}",
            now=owner.created_at,
            user=None if purpose is LinkPurpose.INVITATION else owner,
            organisation_id=owner.organisation_id,
            invited_by=owner,
        )
        for number, purpose in enumerate(LinkPurpose)
    }


def secret_ids(links: dict[LinkPurpose, tuple[AccountLink, str]]) -> dict[tuple[str, str], str]:
    """The secret each link page's path takes, by (endpoint, argument)."""
    pages = {
        LinkPurpose.VERIFY_EMAIL: "accounts.verify",
        LinkPurpose.RESET_PASSWORD: "accounts.reset_password",
        LinkPurpose.CHANGE_EMAIL: "accounts.confirm_email",
        LinkPurpose.INVITATION: "accounts.accept_invitation",
    }
    return {(pages[purpose], "secret"): secret for purpose, (_link, secret) in links.items()}
