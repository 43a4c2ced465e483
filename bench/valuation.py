"""Benchmark: valuing outcome lines with method version 1.

Prints the time to value 1,000 and 100,000 lines (a mix of every outcome type
in the shipped value bank, with random quantities, grades and overrides) and
lines per second, plus the one-at-a-time sensitivity for 1,000 lines.
Aim (issue 3): 1,000 lines in under 50 ms.

    .venv/bin/python -m bench.valuation
"""

from __future__ import annotations

import random
import statistics
import time
from decimal import Decimal

from outcomes.catalogue import read_catalogue_csv
from valuation import EvidenceGrade, LineInput, MethodParameters, OutcomeProxy, sensitivity, value

AIM_MS_FOR_1000 = 50.0


def proxies() -> list[OutcomeProxy]:
    return [
        OutcomeProxy(
            row.code,
            row.proxy_value,
            row.currency,
            row.per,
            row.price_year,
            row.haircut,
            row.deadweight,
            row.displacement,
            row.attribution,
            row.drop_off,
            row.duration_years,
        )
        for row in read_catalogue_csv()
    ]


def make_lines(n: int, seed: int = 7) -> list[LineInput]:
    rng = random.Random(seed)
    pool = proxies()
    lines = []
    for _ in range(n):
        override = rng.random() < 0.3
        lines.append(
            LineInput(
                proxy=rng.choice(pool),
                quantity=rng.randint(1, 500),
                grade=rng.choice(list(EvidenceGrade)),
                deadweight=Decimal(rng.randint(0, 95)) / 100 if override else None,
                duration_years=rng.randint(1, 5) if override else None,
            )
        )
    return lines


def timed(fn, repeat: int) -> list[float]:
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - start) * 1000)
    return runs


def main() -> dict[str, float]:
    params = MethodParameters(valuation_year=2027)
    results = {}
    print("valuation method v1 benchmark")
    for n, repeat in ((1_000, 20), (100_000, 3)):
        lines = make_lines(n)
        runs = timed(lambda lines=lines: value(lines, params), repeat)
        median = statistics.median(runs)
        results[f"value_{n}_ms"] = median
        print(
            f"  value {n:>7,} lines: median {median:8.1f} ms over {repeat} runs "
            f"(best {min(runs):.1f} ms) = {n / median * 1000:>10,.0f} lines/s"
        )
    lines = make_lines(1_000)
    runs = timed(lambda: sensitivity(lines, params), 5)
    results["sensitivity_1000_ms"] = statistics.median(runs)
    print(
        f"  sensitivity 1,000 lines (7 parameters x 2 settings): median "
        f"{results['sensitivity_1000_ms']:.1f} ms"
    )
    verdict = "PASS" if results["value_1000_ms"] < AIM_MS_FOR_1000 else "FAIL"
    print(f"  aim: 1,000 lines under {AIM_MS_FOR_1000:.0f} ms -> {verdict}")
    return results


if __name__ == "__main__":
    main()
