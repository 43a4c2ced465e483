"""An evaluator's accreditation: who vouches for it, for which themes, and until when.

Invariants:
- An accreditation belongs to one evaluator account; ``themes`` is a non-empty
  list of project themes; ``valid_from <= valid_until``.
- An evaluator may be assigned a project only while one of its accreditations
  covers the project's theme on the day of assignment (409 ``not_accredited``).
- Rows are edited by admins only, each change in the audit log.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, CheckConstraint, Date, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from outcomes.db import Base, UTCDateTime


class Accreditation(Base):
    __tablename__ = "accreditations"
    __table_args__ = (CheckConstraint("valid_from <= valid_until", name="valid_in_order"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    body: Mapped[str] = mapped_column(String(200))
    reference: Mapped[str] = mapped_column(String(100))
    themes: Mapped[list[str]] = mapped_column(JSON)
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date] = mapped_column(Date)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    def covers(self, theme: str, day: date) -> bool:
        return theme in self.themes and self.valid_from <= day <= self.valid_until
