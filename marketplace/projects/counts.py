"""Exact list totals without recounting: a per-process cache keyed by the listing version.

Invariants:
- ``bump(session)`` runs in the same transaction as every change that can move
  a project in or out of a listing, so a total cached under version v is the
  total of every state that version describes.
- A request reads the version, then uses the total counted under it or counts
  and stores it. Totals are never stale: a new version is a new key.
- The cache is bounded (least recently used entries go first) and thread-safe.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from marketplace.projects.models import ListingVersion


def bump(session: Session) -> None:
    session.execute(
        update(ListingVersion)
        .where(ListingVersion.id == 1)
        .values(version=ListingVersion.version + 1)
    )


def current(session: Session) -> int:
    return session.scalar(select(ListingVersion.version).where(ListingVersion.id == 1)) or 0


class CountCache:
    def __init__(self, size: int = 2048) -> None:
        self.size = size
        self._entries: OrderedDict[Hashable, int] = OrderedDict()
        self._lock = threading.Lock()

    def get_or_count(self, key: Hashable, count: Callable[[], int]) -> int:
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
        total = count()
        with self._lock:
            self._entries[key] = total
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return total


def count_cache() -> CountCache:
    """The running application's cache (one per process)."""
    from flask import current_app

    return current_app.extensions.setdefault("project_count_cache", CountCache())
