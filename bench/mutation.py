"""`make mutation`: mutation testing with mutmut, and bench/MUTATION.md from its results.

mutmut changes the code one small way at a time (a ``<`` for a ``<=``, a constant,
a dropped argument) and runs the tests that reach the changed function; a mutant
the tests do not notice "survives". The modules and tests are in pyproject.toml
(``[tool.mutmut]``). This writes the score per module and every mutant that
survived or that no test reached, for a person to kill with a test or to explain
as equivalent.

    .venv/bin/python -m bench.mutation [--no-run]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "bench" / "MUTATION.md"
LINE = re.compile(r"^\s*(?P<name>\S+?)__mutmut_(?P<n>\d+): (?P<status>.+)$")


def module_of(name: str) -> str:
    """``valuation.engine.xǁClassǁmethod`` -> ``valuation.engine``."""
    parts = name.split(".")
    return ".".join(p for p in parts if not p.startswith("x"))


def results() -> list[tuple[str, str, str]]:
    """(module, mutant, status) of every mutant mutmut knows."""
    out = subprocess.run(  # noqa: S603 - mutmut from this environment, fixed arguments
        [str(Path(sys.executable).parent / "mutmut"), "results", "--all", "true"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = []
    for line in out.splitlines():
        match = LINE.match(line)
        if match:
            mutant = f"{match['name']}__mutmut_{match['n']}"
            found.append((module_of(match["name"]), mutant, match["status"].strip()))
    return found


# Mutants that behave exactly as the code does, and why (a person read each one).
EQUIVALENT = {
    "marketplace.core.money.x_half_even__mutmut_7": (
        "quantize to Decimal(2) instead of Decimal(1): quantize uses only the exponent, "
        "and both have exponent 0"
    ),
    "valuation.engine.x__context__mutmut_2": (
        "rounding=None takes the default context's rounding, which is half-even too"
    ),
    "valuation.engine.x__context__mutmut_5": (
        "rounding left out: the default context's rounding, which is half-even too"
    ),
    "valuation.engine.x__context__mutmut_3": (
        "traps=None traps more (division by zero, overflow); valid inputs, the only ones "
        "validate lets through, raise none of them"
    ),
    "valuation.engine.x__context__mutmut_6": (
        "traps left out: as traps=None, more traps, none raised by valid inputs"
    ),
    "valuation.engine.x_to_cents__mutmut_4": (
        "rounding=None takes the engine context's rounding, which is half-even"
    ),
    "valuation.engine.x_to_cents__mutmut_7": (
        "rounding left out: the engine context's rounding, which is half-even"
    ),
}
# verify's sums: ``.get(id, None) or 0`` and ``.get(id) or 0`` are ``.get(id, 0) or 0``.
for _n in (27, 29, 34, 36):
    EQUIVALENT[f"marketplace.ledger.services.x_verify__mutmut_{_n}"] = (
        "a missing sum read as None instead of 0 is turned into 0 by the `or 0` after it"
    )
# get_account's per-session memo: without it (or under another key) every call looks
# the account up again; the answers are the same, only slower.
for _n in (9, 13, 14, 15, 16, 26):
    EQUIVALENT[f"marketplace.ledger.services.x_get_account__mutmut_{_n}"] = (
        "the per-session memo of accounts is only a shortcut: without it the account is "
        "looked up again and found the same"
    )


# Changes that behave as the code does wherever they appear, read from the mutant's diff
# (the line it adds): (pattern, why). A person read every survivor they match.
EQUIVALENT_CHANGES = [
    (
        re.compile(r"synchronize_session=None"),
        "SQLAlchemy reads synchronize_session=None as False: no session synchronisation "
        "either way (the code expires what it changed itself)",
    ),
    (
        re.compile(r"session\.expire\(\w+, (None)?\)"),
        "expires every attribute of the object instead of the one named; the next read "
        "loads them again, with the same values",
    ),
    (
        re.compile(r"zip\(\w+, \w+, (strict=(False|None))?\)"),
        "the two sequences always have one item per row inserted (RETURNING gives one id "
        "per row), so a length check cannot fail",
    ),
    (
        re.compile(r"yield_per=(None|1001)"),
        "the export streams in batches of another size: memory, not the rows or their order",
    ),
    (
        re.compile(
            r"join\(\s*Organisation,\s*(None)?\s*\)|Organisation, None$|^\+\s*Organisation, \)"
        ),
        "without the ON clause SQLAlchemy infers the same one from the single foreign key "
        "token_blocks.holder_id -> organisations.id",
    ),
    (
        re.compile(r'"(authorization|AUTHORIZATION)"( in request\.headers|,)'),
        "request headers are read case-insensitively: the same header is found",
    ),
    (
        re.compile(r'headers\.get\("Authorization", "XXXX"\)'),
        "without the header the default is still no Bearer scheme: the same 401 and words",
    ),
    (
        re.compile(r"returning\([\w.]+, (sort_by_parameter_order=(None|False))?\)"),
        "without sort_by_parameter_order SQLAlchemy does not promise RETURNING's order for "
        "a many-row insert; SQLite and PostgreSQL return a single INSERT ... VALUES in order, "
        "so no run can see it (kept because the order is not promised)",
    ),
]
# Mutants of one function that no test can tell apart, by name prefix, and why.
EQUIVALENT_FUNCTIONS = {
    "marketplace.funding.charges.x_pay_on_session__mutmut_2": (
        "three rounds or four of cancelling a 3-D Secure attempt a twin made meanwhile: "
        "reaching the bound needs three twins interleaving between claims; the row lock "
        "makes each round finish, so the bound is a backstop"
    ),
}
for _n in (20, 59, 97):
    EQUIVALENT_FUNCTIONS[f"marketplace.funding.charges.x_pay_on_session__mutmut_{_n}"] = (
        "grace_hours is used only to open a grace period for an off-session charge that "
        "fails; on the page the pledge's grace period is already open and stays as it is"
    )
for _n in (1, 4):
    EQUIVALENT[f"marketplace.accounts.authorisation.x_live_api_token__mutmut_{_n}"] = (
        "the prefix and length check is a shortcut before the lookup: a secret it would "
        "let through (no prefix, or exactly the longest length) matches no stored hash, "
        "so the answer is the same None"
    )
for _n in (34, 41):
    EQUIVALENT[f"marketplace.ledger.services.x_get_account__mutmut_{_n}"] = (
        "balance_cents=None or left out: the ORM leaves a None column out of the INSERT, "
        "so the column's default 0 is written either way"
    )
EQUIVALENT["marketplace.registry.services.x__move_serials__mutmut_25"] = (
    "without `last_serial = :seen` the status alone refuses: a block's row changes only "
    "by being moved (the rest of a split is a new row), so a row another request "
    "changed is never in the old status any more (kept for whatever moves a block next)"
)
EQUIVALENT["valuation.engine.x_weaker_grade__mutmut_3"] = (
    "at equal confidence the two grades are the same grade (each grade has its own "
    "confidence), so `<=` returns the same grade as `<`"
)
EQUIVALENT["marketplace.registry.services.x_cancel_buffer__mutmut_14"] = (
    "the project's own buffer sorts 0 against 2 instead of 1: still first"
)
for _name, _n in (("cancel_buffer", 22), ("cancelled_blocks", 8)):
    EQUIVALENT[f"marketplace.registry.services.x_{_name}__mutmut_{_n}"] = (
        "a project has one buffer block at most (issuing makes one; a cancellation takes "
        "the start of it and leaves the rest as the one block), so a reversal never meets "
        "two blocks of one project and the serial order among them never decides"
    )
for _n in (31, 40, 41, 42, 43):
    EQUIVALENT[f"marketplace.registry.services.x_cancel_buffer__mutmut_{_n}"] = (
        "the refusal when a buffer block moved under a reversal, a backstop: reversals take "
        "one advisory lock and the blocks FOR UPDATE (SQLite: one writer), so no other "
        "transaction can move them between the read and the update"
    )
for _n in (14, 16):
    EQUIVALENT[f"marketplace.registry.services.x_buffer_pool__mutmut_{_n}"] = (
        "without the ON clause SQLAlchemy infers the same one from the single foreign key "
        "token_blocks.project_id -> projects.id"
    )
# funding/charges.py, read one by one after the tests written against the rest.
EQUIVALENT["marketplace.funding.charges.x__locked_pledge__mutmut_4"] = (
    "FOR UPDATE without OF locks every table the query reads, and it reads only pledges "
    "(lazyload('*') keeps the relationships out of it): the same row is locked"
)
EQUIVALENT["marketplace.funding.charges.x_claim_off_session__mutmut_9"] = (
    "a success is a payment row of the pledge, which the next check (any attempt at all) "
    "refuses as well"
)
for _n in (58, 59, 60, 61):
    EQUIVALENT[f"marketplace.funding.charges.x__claim_on_session__mutmut_{_n}"] = (
        "the words when the database refuses a second live attempt, a backstop: the pledge's "
        "row lock (SQLite: the one writer) lets no twin insert between the check for a live "
        "attempt above (its words tested) and this insert"
    )
for _n in (26, 27, 28, 29):
    EQUIVALENT[f"marketplace.funding.charges.x_pay_on_session__mutmut_{_n}"] = (
        "the words after three rounds of superseding, which the row lock leaves unreachable "
        "as it leaves the bound itself (x_pay_on_session__mutmut_2)"
    )
EQUIVALENT["marketplace.funding.charges.x__supersede__mutmut_1"] = (
    "an assertion of what every caller passes: _claim_on_session makes a Claim with "
    "supersede and its intent together, so `and` and `or` differ for no Claim the code makes"
)
EQUIVALENT["marketplace.funding.charges.x__supersede__mutmut_41"] = (
    "grace_hours is used only to open a grace period for an off-session charge that "
    "fails; the attempt superseded is on-session and the grace period is already open"
)
EQUIVALENT["marketplace.funding.charges.x_charge_off_session__mutmut_73"] = (
    "Stripe answers an off-session confirmation it cannot complete with an error "
    "(card_declined, authentication_required: the except branch, with grace_hours); the "
    "answer itself comes back succeeded or processing, which use no grace period"
)
for _n in (5, 7):
    EQUIVALENT[f"marketplace.funding.charges.x_due_refunds__mutmut_{_n}"] = (
        "a refund's pledge is its payment's pledge, so the join SQLAlchemy infers without "
        "the ON clause (through either foreign key) reaches the same pledge"
    )

# Survivors that do change behaviour, with why no test shows it: counted as survived,
# never as equivalent.
UNTESTED: dict[str, str] = {}
for _name, _numbers in (("pay_on_session", (107, 108, 109)), ("charge_off_session", (80, 81, 82))):
    for _n in _numbers:
        UNTESTED[f"marketplace.funding.charges.x_{_name}__mutmut_{_n}"] = (
            "only when the charge just made turns out a surplus (another attempt's success "
            "recorded meanwhile): its refund row is written with it and the refund sweep sends "
            "it within a minute; this call only sends it at once"
        )
for _n in (88, 90, 95, 96, 97, 98, 99, 100):
    UNTESTED[f"marketplace.funding.charges.x_charge_off_session__mutmut_{_n}"] = (
        "the words for an answer the test Stripe never gives to a card (processing, or a "
        "failure status in the answer instead of an error); only the sweep's counts read them"
    )

for _name, _numbers in (
    ("registry_totals", (30, 32, 37, 39, 44, 46)),
    ("buffer_pool", (27, 29, 34, 36)),
):
    for _n in _numbers:
        EQUIVALENT[f"marketplace.registry.services.x_{_name}__mutmut_{_n}"] = (
            "CASE without ELSE 0 gives NULL for the other blocks: SUM skips NULLs, and a sum "
            "of none (NULL) is read as 0 by the `or 0` after it"
        )
for _name in ("registry_totals__mutmut_9", "buffer_pool__mutmut_7"):
    UNTESTED[f"marketplace.registry.services.x_{_name}"] = (
        "both databases return GROUP BY project_id's groups in project order for these "
        "plans, so no run sees the ORDER BY go; it stays because SQL promises no order"
    )


def _diff(mutant: str) -> str:
    out = subprocess.run(  # noqa: S603 - mutmut from this environment, fixed arguments
        [str(Path(sys.executable).parent / "mutmut"), "show", mutant],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return "\n".join(
        line for line in out.splitlines() if line.startswith("+") and not line.startswith("+++")
    )


def equivalent(mutant: str) -> str | None:
    """Why a surviving mutant behaves as the code does, or None (it is a gap)."""
    if mutant in EQUIVALENT:
        return EQUIVALENT[mutant]
    if mutant in EQUIVALENT_FUNCTIONS:
        return EQUIVALENT_FUNCTIONS[mutant]
    added = _diff(mutant)
    for pattern, why in EQUIVALENT_CHANGES:
        if pattern.search(added):
            return why
    return None


def write_report(found: list[tuple[str, str, str]]) -> str:
    reasons = {m: equivalent(m) for _mod, m, status in found if status == "survived"}
    gaps = {m: UNTESTED[m] for _mod, m, status in found if status == "survived" and m in UNTESTED}
    by_module: dict[str, Counter[str]] = defaultdict(Counter)
    for module, mutant, status in found:
        by_module[module][status] += 1
        if reasons.get(mutant):
            by_module[module]["equivalent"] += 1
    lines = [
        "# Mutation testing",
        "",
        "Written by `make mutation` (`bench/mutation.py`, mutmut, on SQLite and PostgreSQL;",
        "modules and tests in pyproject.toml `[tool.mutmut]`). Score: killed / (killed +",
        "survived + no tests); the score without equivalents leaves out the survivors",
        "explained below as behaving exactly as the code does. A survivor marked *not",
        "tested* changes behaviour; its note says why no test shows it (it counts as survived).",
        "",
        "| module | mutants | killed | survived | of which equivalent | no tests | score "
        "| score without equivalents |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for module in sorted(by_module):
        c = by_module[module]
        unrun = c["not checked"]  # mutants of code changed since the last run: a gap too
        total = c["killed"] + c["survived"] + c["no tests"] + c["timeout"] + c["suspicious"] + unrun
        counted = c["killed"] + c["survived"] + c["no tests"] + unrun
        score = c["killed"] / counted if counted else 1.0
        real = counted - c["equivalent"]
        adjusted = c["killed"] / real if real else 1.0
        lines.append(
            f"| {module} | {total} | {c['killed']} | {c['survived']} | {c['equivalent']} "
            f"| {c['no tests']} | {score:.0%} | {adjusted:.0%} |"
        )
    lines += ["", "## Mutants not killed", ""]
    for _module, mutant, status in sorted(found):
        if status != "killed":
            reason = reasons.get(mutant)
            note = f" (equivalent: {reason})" if reason else ""
            if mutant in gaps:
                note = f" (not tested: {gaps[mutant]})"
            lines.append(f"- `{mutant}`: {status}{note}")
    text = "\n".join(lines) + "\n"
    REPORT.write_text(text)
    return text


def run_mutmut(names: list[str] | None = None) -> None:
    """mutmut against both databases: one throwaway PostgreSQL serves every mutant's
    run (each makes and drops its own databases), so the branches only PostgreSQL
    reaches (another process winning a race) are tested too."""
    sys.path.insert(0, str(ROOT))
    from tests.support.postgres import PostgresServer, find_bindir

    bindir = find_bindir()
    if bindir is None:
        raise SystemExit("PostgreSQL is not installed: run `make test` once, which installs it")
    server = PostgresServer(bindir).start()
    try:
        env = {
            **os.environ,
            "TEST_DATABASES": "sqlite,postgresql",
            "TEST_POSTGRES_URL": server.url(),
        }
        mutmut = str(Path(sys.executable).parent / "mutmut")
        subprocess.run([mutmut, "run", *(names or [])], cwd=ROOT, env=env, check=True)  # noqa: S603
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-run", action="store_true", help="report the last run only")
    parser.add_argument(
        "--survivors",
        nargs="?",
        const="",
        metavar="PREFIX",
        help="run again only the mutants the last run did not kill (after new tests), "
        "of the modules starting with PREFIX (several: comma-separated) when given",
    )
    args = parser.parse_args()
    if args.survivors is not None:
        # which tests reach which function is learnt again, so new tests count
        (ROOT / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)
        names = [
            m
            for module, m, status in results()
            if status != "killed" and module.startswith(tuple(args.survivors.split(",")))
        ]
        run_mutmut(names)
    elif not args.no_run:
        run_mutmut()
    text = write_report(results())
    print(text.split("## Mutants not killed")[0])


if __name__ == "__main__":
    main()
