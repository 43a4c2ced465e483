"""Evidence in an S3-compatible bucket (``STORAGE_URL=s3://bucket/prefix``), against a
moto server: the same API and checks as with a folder, the objects private and sent
with their SHA-256; a STORAGE_URL the app cannot use stops it at start with its name."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import secrets

import pytest

from config import testing_settings as settings_for_tests
from config.settings import ConfigError
from marketplace import create_app
from marketplace.core.storage import LocalStore, S3Store, open_storage
from tests.integration.test_progress_evidence import PDF, assigned, upload  # noqa: F401
from tests.support.s3 import CREDENTIALS, S3Server


@pytest.fixture(scope="module")
def s3():
    server = S3Server().start()
    yield server
    server.stop()


@pytest.fixture
def bucket_store(s3, app, monkeypatch):
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    bucket = s3.bucket(f"evidence-{secrets.token_hex(6)}")
    store = open_storage(
        f"s3://{bucket}/som/evidence/",
        folder=app.instance_path,
        max_bytes=10**6,
        endpoint_url=s3.url,
    )
    before = app.extensions["evidence"]
    app.extensions["evidence"] = store
    yield store
    app.extensions["evidence"] = before


def test_storage_urls_name_a_folder_or_a_bucket(tmp_path, s3, monkeypatch):
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    assert open_storage("", folder=tmp_path, max_bytes=1) == LocalStore(tmp_path, 1)
    assert (
        open_storage("file:///srv/som", folder=tmp_path, max_bytes=1).root.as_posix() == "/srv/som"
    )
    bucketed = open_storage("s3://som-files/a/b", folder=tmp_path, max_bytes=1, endpoint_url=s3.url)
    assert isinstance(bucketed, S3Store)
    assert (bucketed.bucket, bucketed.prefix) == ("som-files", "a/b/")
    for wrong in ("s3://", "ftp://host/x", "/srv/som", "file://"):
        with pytest.raises(ValueError, match="STORAGE_URL"):
            open_storage(wrong, folder=tmp_path, max_bytes=1)


def test_a_storage_url_the_app_cannot_use_stops_it_at_start(tmp_path):
    settings = settings_for_tests("sqlite://", tmp_path)
    settings = dataclasses.replace(settings, storage_url="ftp://files.example/som")
    with pytest.raises(ConfigError, match="STORAGE_URL"):
        create_app(settings)


def test_evidence_in_a_bucket_is_private_checked_and_read_back(
    client, auth_headers, assigned, bucket_store, s3
):
    _project, evaluation, evaluator = assigned
    mine = auth_headers(evaluator)

    added = upload(client, f"/api/v1/evaluations/{evaluation.id}/evidence", mine, "a.pdf", PDF)

    assert added.status_code == 201, added.json
    raw = s3.client()
    [stored] = raw.list_objects_v2(Bucket=bucket_store.bucket)["Contents"]
    assert stored["Key"].startswith("som/evidence/")
    assert "a.pdf" not in stored["Key"]
    head = raw.head_object(Bucket=bucket_store.bucket, Key=stored["Key"])
    assert head["ServerSideEncryption"] == "AES256"
    grants = raw.get_object_acl(Bucket=bucket_store.bucket, Key=stored["Key"])["Grants"]
    assert [g["Permission"] for g in grants] == ["FULL_CONTROL"]  # the owner's, no one else's
    assert all("URI" not in g["Grantee"] for g in grants)  # no AllUsers / AuthenticatedUsers
    got = client.get(f"/api/v1/files/{added.json['id']}", headers=mine)
    assert (got.status_code, got.data) == (200, PDF)
    assert hashlib.sha256(got.data).hexdigest() == added.json["sha256"]

    # An object changed behind the app's back is never served.
    raw.put_object(Bucket=bucket_store.bucket, Key=stored["Key"], Body=PDF + b"%tampered")
    damaged = client.get(f"/api/v1/files/{added.json['id']}", headers=mine)
    assert (damaged.status_code, damaged.json["code"]) == (503, "evidence_damaged")


def test_each_object_is_sent_with_its_sha256_for_the_store_to_check(bucket_store):
    """S3 refuses an object whose bytes do not match ``x-amz-checksum-sha256`` (moto
    does not check it, so the test looks at what the app sends)."""
    sent = []
    bucket_store.client.meta.events.register(
        "before-send.s3.PutObject", lambda request, **_: sent.append(dict(request.headers))
    )

    key = bucket_store.put(b"kept whole")

    assert bucket_store.get(key) == b"kept whole"
    expected = base64.b64encode(hashlib.sha256(b"kept whole").digest())
    [headers] = sent
    assert headers["x-amz-checksum-sha256"] == expected
    assert headers["x-amz-server-side-encryption"] == b"AES256"
    assert "x-amz-acl" not in headers  # private: no grant beyond the bucket owner
