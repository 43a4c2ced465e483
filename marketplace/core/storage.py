"""Where evidence files and attachments keep their bytes: a local folder (the default)
or an S3-compatible bucket (``STORAGE_URL=s3://bucket/prefix``), for several app
servers that share no disk.

Invariants (of both):
- ``put`` writes the bytes under a new random key and returns it only once they are
  stored in full (a local file is written to a temporary name, synced and renamed; an
  object is sent with its SHA-256, which the store checks on receipt); ``get`` returns
  them. Nothing is public: the folder is the app's user's only, the objects are private
  (no ACL grants, encrypted at rest by the store).
- Whoever reads checks the bytes against the SHA-256 kept in the database
  (``evaluations.files``): the store is trusted to keep bytes, not to keep them right.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit


class Storage(Protocol):
    @property
    def max_bytes(self) -> int: ...

    def put(self, data: bytes) -> str: ...

    def get(self, key: str) -> bytes: ...


def _new_key() -> str:
    return secrets.token_hex(24)


@dataclass(frozen=True)
class LocalStore:
    """Files under a folder outside the web root, readable by the app's user only."""

    root: Path
    max_bytes: int

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / key

    def put(self, data: bytes) -> str:
        key = _new_key()
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = path.with_suffix(".part")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        return key

    def get(self, key: str) -> bytes:
        return self._path(key).read_bytes()


@dataclass(frozen=True)
class S3Store:
    """Private objects in a bucket of S3 or a store that speaks its API (MinIO, Ceph,
    Garage...). Credentials come the usual way (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY,
    or the machine's role); ``endpoint_url`` names a store other than Amazon's."""

    bucket: str
    prefix: str
    max_bytes: int
    client: Any = field(repr=False)

    def _name(self, key: str) -> str:
        return f"{self.prefix}{key[:2]}/{key}"

    def put(self, data: bytes) -> str:
        key = _new_key()
        self.client.put_object(
            Bucket=self.bucket,
            Key=self._name(key),
            Body=data,
            ContentType="application/octet-stream",
            ChecksumSHA256=base64.b64encode(hashlib.sha256(data).digest()).decode(),
            ServerSideEncryption="AES256",
        )
        return key

    def get(self, key: str) -> bytes:
        found = self.client.get_object(Bucket=self.bucket, Key=self._name(key))
        data: bytes = found["Body"].read()
        return data


def open_storage(
    url: str, *, folder: Path, max_bytes: int, endpoint_url: str | None = None
) -> Storage:
    """The store ``STORAGE_URL`` names: empty for ``folder`` (EVIDENCE_DIR, or the
    instance's ``evidence``), ``file:///path`` for another folder, ``s3://bucket/prefix``
    for a bucket. ValueError for anything else."""
    if not url:
        return LocalStore(folder, max_bytes)
    parts = urlsplit(url)
    if parts.scheme == "file" and parts.path:
        return LocalStore(Path(parts.path), max_bytes)
    if parts.scheme == "s3" and parts.netloc:
        import boto3  # only a deployment with a bucket needs it (the "s3" extra)
        from botocore.config import Config

        prefix = parts.path.strip("/")
        client = boto3.client(
            "s3",
            endpoint_url=endpoint_url or None,
            config=Config(retries={"max_attempts": 5, "mode": "standard"}),
        )
        return S3Store(parts.netloc, f"{prefix}/" if prefix else "", max_bytes, client)
    raise ValueError(f"STORAGE_URL must be file:///folder or s3://bucket/prefix, not {url!r}")
