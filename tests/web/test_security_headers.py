"""Security headers on every page, HTTPS behind a trusted proxy, and no inline script."""

from __future__ import annotations

import re
from pathlib import Path

from marketplace.audit.models import AuditEvent
from tests.conftest import build_app

TEMPLATES = Path(__file__).resolve().parents[2] / "marketplace" / "templates"


def test_pages_forbid_framing_sniffing_and_scripts_from_elsewhere(client):
    headers = client.get("/projects").headers
    policy = headers["Content-Security-Policy"]

    assert "frame-ancestors 'none'" in policy
    assert (
        "script-src 'self'" in policy
        and "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
    )
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert "Strict-Transport-Security" not in headers  # plain http: no HSTS promise


def test_no_template_has_an_inline_script_or_event_handler():
    offenders = []
    for template in TEMPLATES.rglob("*.html"):
        html = template.read_text()
        if re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html):
            offenders.append(f"{template.name}: inline <script>")
        if re.search(r"\son[a-z]+\s*=", html):
            offenders.append(f"{template.name}: event handler attribute")
        if "javascript:" in html:
            offenders.append(f"{template.name}: javascript: URL")
    assert offenders == []


def test_behind_a_trusted_proxy_https_and_the_client_address_come_from_its_headers(
    app, tmp_path, session
):
    settings = app.extensions["settings"]
    proxied = build_app(
        str(app.extensions["db"].engine.url.render_as_string(hide_password=False)),
        tmp_path,
        trusted_proxies=1,
        stripe_api_base=settings.stripe_api_base,
    )
    client = proxied.test_client()

    response = client.get(
        "/api/v1/me",
        headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"},
    )

    assert response.status_code == 401
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    refused = session.query(AuditEvent).one()
    assert refused.remote_addr == "203.0.113.7"
    # Without the setting the same headers are ignored.
    plain = app.test_client().get("/api/v1/me", headers={"X-Forwarded-For": "203.0.113.8"})
    assert "Strict-Transport-Security" not in plain.headers
    session.rollback()
    addresses = {e.remote_addr for e in session.query(AuditEvent)}
    assert addresses == {"203.0.113.7", "127.0.0.1"}
    proxied.extensions["db"].engine.dispose()
