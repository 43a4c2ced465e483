"""Request ids, the access log, and the health check."""

from __future__ import annotations

import json
import logging

from marketplace.core.observability import JsonFormatter, RequestIdFilter
from tests.conftest import build_app


def test_a_request_id_is_kept_or_made_and_sent_back(client):
    kept = client.get("/health", headers={"X-Request-ID": "lb-1234abcd"})
    made = client.get("/health", headers={"X-Request-ID": "no spaces; <script>"})

    assert kept.headers["X-Request-ID"] == "lb-1234abcd"
    assert len(made.headers["X-Request-ID"]) == 32
    assert made.headers["X-Request-ID"] != "no spaces; <script>"


def test_the_access_log_is_json_with_the_request_id(app, client, caplog):
    caplog.set_level(logging.INFO, logger="marketplace.access")
    client.get("/projects", headers={"X-Request-ID": "trace-42abcdef"})

    [record] = [r for r in caplog.records if r.name == "marketplace.access"]
    with app.test_request_context(headers={"X-Request-ID": "trace-42abcdef"}):
        from flask import g

        g.request_id = "trace-42abcdef"
        RequestIdFilter().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert line["request_id"] == "trace-42abcdef"
    assert (line["method"], line["path"], line["status"]) == ("GET", "/projects", 200)
    assert line["duration_ms"] >= 0


def test_health_says_ok_and_503_when_the_database_is_gone(client, tmp_path):
    assert client.get("/health").json == {"status": "ok", "database": "ok"}
    lost = build_app("postgresql://nobody@127.0.0.1:1/none", tmp_path)

    answer = lost.test_client().get("/health")

    assert answer.status_code == 503
    assert answer.json == {"status": "unavailable", "database": "unreachable"}
