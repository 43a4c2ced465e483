"""A real SMTP server on 127.0.0.1 (aiosmtpd) that keeps what it receives, and the app
pointed at it; helpers read the e-mails and the links in them."""

from __future__ import annotations

import re
from dataclasses import replace
from email import message_from_bytes

import pytest
from aiosmtpd.controller import Controller

from tests.support.postgres import _free_port


class Inbox:
    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    yield controller.port, inbox
    controller.stop()


@pytest.fixture
def inbox(app, smtp, monkeypatch):
    """The app sends its e-mail to the test's SMTP server while the test runs."""
    port, received = smtp
    settings = replace(
        app.extensions["settings"], smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=False
    )
    monkeypatch.setitem(app.extensions, "settings", settings)
    return received


def letters_to(inbox: Inbox, address: str) -> list:
    return [
        message_from_bytes(envelope.original_content)
        for envelope in inbox.messages
        if address in envelope.rcpt_tos
    ]


def link_to(inbox: Inbox, address: str) -> str:
    """The path of the link in the last e-mail to ``address``."""
    letters = letters_to(inbox, address)
    assert letters, f"no e-mail to {address}"
    body = letters[-1].get_payload(decode=True).decode()
    found = re.findall(r"https?://[^/\s]+(/\S+)", body)
    assert found, body
    return found[-1]
