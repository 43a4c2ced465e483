"""Evidence files: what an evaluator (or a progress report) shows for a claimed outcome.

Invariants:
- A file belongs to exactly one evaluation, progress report or concern, and so
  to one project; it may name one of that project's outcome commitments.
- The stored bytes are the uploaded bytes: size and SHA-256 are recorded at
  upload and never change; rows are never updated.
- Only the types in ``ALLOWED`` are taken, and only when the content itself is
  of that type (its first bytes), whatever the name or the client claims.
- The bytes live outside the database under a random key (``storage_key``);
  where they live and who may read them is the marketplace's business.
"""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from outcomes.db import Base, UTCDateTime
from outcomes.errors import Message, ValidationFailed

MAX_NAME = 200
# content type -> the file name endings that may carry it
ALLOWED: dict[str, tuple[str, ...]] = {
    "application/pdf": (".pdf",),
    "image/png": (".png",),
    "image/jpeg": (".jpg", ".jpeg"),
    "text/csv": (".csv",),
    "text/plain": (".txt",),
}
MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
)


# An evaluation, a progress report or a concern about a settled project: one of them.
OWNERS = (
    "(CASE WHEN evaluation_id IS NULL THEN 0 ELSE 1 END)"
    " + (CASE WHEN progress_report_id IS NULL THEN 0 ELSE 1 END)"
    " + (CASE WHEN concern_id IS NULL THEN 0 ELSE 1 END) = 1"
)


class EvidenceFile(Base):
    __tablename__ = "evidence_files"
    __table_args__ = (
        CheckConstraint(OWNERS, name="exactly_one_owner"),
        CheckConstraint("size_bytes > 0", name="size_positive"),
        CheckConstraint("length(sha256) = 64", name="sha256_hex"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    evaluation_id: Mapped[int | None] = mapped_column(ForeignKey("evaluations.id"), index=True)
    progress_report_id: Mapped[int | None] = mapped_column(
        ForeignKey("progress_reports.id"), index=True
    )
    # a concern about a settled project (the marketplace's ``concerns`` table)
    concern_id: Mapped[int | None] = mapped_column(ForeignKey("concerns.id"), index=True)
    commitment_id: Mapped[int | None] = mapped_column(ForeignKey("outcome_commitments.id"))
    filename: Mapped[str] = mapped_column(String(MAX_NAME))
    content_type: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(64), unique=True)
    uploaded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime)


@dataclass(frozen=True)
class CheckedUpload:
    filename: str
    content_type: str
    size_bytes: int
    sha256: str


def clean_filename(raw: str) -> str:
    """The last path part, without control characters, at most ``MAX_NAME`` characters."""
    name = PurePosixPath(raw.replace("\\", "/")).name
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip(" .")
    if len(name) > MAX_NAME:
        stem, dot, ending = name.rpartition(".")
        name = (stem[: MAX_NAME - len(ending) - 1] + dot + ending) if dot else name[:MAX_NAME]
    return name


def sniff(data: bytes, ending: str) -> str | None:
    """The content type the bytes themselves show, or None when not an allowed type."""
    for magic, content_type in MAGIC:
        if data.startswith(magic):
            return content_type
    if b"\x00" in data:
        return None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return "text/csv" if ending == ".csv" else "text/plain"


def check_upload(raw_name: str, data: bytes, *, max_bytes: int) -> CheckedUpload:
    """Refuse what is empty, too large, of a type not taken, or not what its name says."""
    name = clean_filename(raw_name or "")
    ending = PurePosixPath(name.lower()).suffix
    problem: str | None = None
    content_type: str | None = None
    if not data:
        problem = "The file is empty."
    elif len(data) > max_bytes:
        problem = Message("The file is larger than %(n)s MB.", n=max_bytes // (1024 * 1024))
    elif not name:
        problem = "The file needs a name."
    else:
        content_type = sniff(data, ending)
        if content_type is None:
            problem = "Only PDF, PNG, JPEG, CSV and plain text files are taken."
        elif ending not in ALLOWED[content_type]:
            problem = Message(
                "The content is %(kind)s; name the file with %(endings)s.",
                kind=content_type,
                endings=" or ".join(ALLOWED[content_type]),
            )
    if problem or content_type is None:
        raise ValidationFailed(errors={"file": [problem or "The file is empty."]})
    return CheckedUpload(
        filename=name,
        content_type=content_type,
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )
