"""Another process winning a race at an exact statement (PostgreSQL).

``before_first(app, "INSERT INTO PAYMENTS", competitor)`` runs ``competitor`` just
before the first statement sent that starts so; the competitor works in its own
transaction on its own connection (``other_process``) and commits, so the code under
test meets what a concurrent request would have written there. SQLite takes its
write lock when a transaction begins (marketplace/core/db.py): no second writer can
come between two statements there, so these tests are PostgreSQL's.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from sqlalchemy import event

T = TypeVar("T")


@contextmanager
def before_first(app, starts: str, competitor: Callable[[], None]) -> Iterator[list[bool]]:
    fired: list[bool] = []

    def interleave(_conn, _cursor, statement, *_args):
        if not fired and statement.lstrip().upper().startswith(starts):
            fired.append(True)  # before the competitor's own statements
            competitor()

    engine = app.extensions["db"].engine
    event.listen(engine, "before_cursor_execute", interleave)
    try:
        yield fired
    finally:
        event.remove(engine, "before_cursor_execute", interleave)


def other_process(app, work: Callable) -> Callable[[], None]:
    def run() -> None:
        with app.extensions["db"].transaction() as other:
            work(other)

    return run


@contextmanager
def statements(app) -> Iterator[list[str]]:
    """Every SQL statement sent to the database while the block runs."""
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args):
        seen.append(statement)

    engine = app.extensions["db"].engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def at_once(count: int, attempt: Callable[[int], T]) -> list[T]:
    """``attempt(n)`` for n in 0..count-1, each in a thread of its own, all released
    together by a barrier; their answers in the order they came. A thread's exception
    fails the caller (the first one is raised here)."""
    barrier = threading.Barrier(count, timeout=60)
    answers: list[T] = []
    failures: list[BaseException] = []

    def run(n: int) -> None:
        try:
            barrier.wait()
            answers.append(attempt(n))
        except BaseException as exc:  # a thread's failure is the test's
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return answers
