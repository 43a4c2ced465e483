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


def write_report(found: list[tuple[str, str, str]]) -> str:
    by_module: dict[str, Counter[str]] = defaultdict(Counter)
    for module, _mutant, status in found:
        by_module[module][status] += 1
    lines = [
        "# Mutation testing",
        "",
        "Written by `make mutation` (`bench/mutation.py`, mutmut; modules and tests in",
        "pyproject.toml `[tool.mutmut]`). Score: killed / (killed + survived + no tests).",
        "",
        "| module | mutants | killed | survived | no tests | score |",
        "|---|---|---|---|---|---|",
    ]
    for module in sorted(by_module):
        c = by_module[module]
        total = sum(c.values())
        counted = c["killed"] + c["survived"] + c["no tests"]
        score = c["killed"] / counted if counted else 1.0
        lines.append(
            f"| {module} | {total} | {c['killed']} | {c['survived']} | {c['no tests']} "
            f"| {score:.0%} |"
        )
    lines += ["", "## Mutants not killed", ""]
    for _module, mutant, status in sorted(found):
        if status != "killed":
            reason = EQUIVALENT.get(mutant)
            note = f" (equivalent: {reason})" if reason and status == "survived" else ""
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
        action="store_true",
        help="run again only the mutants the last run did not kill (after new tests)",
    )
    args = parser.parse_args()
    if args.survivors:
        # which tests reach which function is learnt again, so new tests count
        (ROOT / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)
        run_mutmut([m for _module, m, status in results() if status != "killed"])
    elif not args.no_run:
        run_mutmut()
    text = write_report(results())
    print(text.split("## Mutants not killed")[0])


if __name__ == "__main__":
    main()
