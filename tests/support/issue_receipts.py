"""One process of the receipts race (tests/integration/test_receipts.py): threads that
each issue the receipt of one payment, all starting at the same instant.

    python -m tests.support.issue_receipts DATABASE_URL START_EPOCH PAYMENT_ID...
"""

from __future__ import annotations

import sys
import threading
import time
from datetime import UTC, datetime

from config.settings import Settings
from marketplace.core.db import DatabaseState
from marketplace.receipts.services import Issuer, issue


def main(url: str, start: float, payment_ids: list[int]) -> int:
    db = DatabaseState(url)
    issuer = Issuer.of(Settings())
    failures: list[BaseException] = []

    def one(payment_id: int) -> None:
        time.sleep(max(0.0, start - time.time()))
        try:
            with db.transaction() as session:
                issue(session, issuer, now=datetime.now(UTC), payment_ids=[payment_id])
        except BaseException as exc:  # reported to the test through the exit code
            failures.append(exc)

    threads = [threading.Thread(target=one, args=(p,)) for p in payment_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for failure in failures:
        print(f"{type(failure).__name__}: {failure}", file=sys.stderr)
    db.engine.dispose()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], float(sys.argv[2]), [int(a) for a in sys.argv[3:]]))
