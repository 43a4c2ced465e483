"""Run every benchmark and write the figures beside their aims to bench/RESULTS.md.

Each benchmark runs as its own process with its default arguments (they start
their own PostgreSQL server and localstripe where they need them); its output
is kept whole at the end of the report, and the figures the issues set aims
for are read from it into one table.

    .venv/bin/python -m bench.run_all [--only valuation,settlement]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"


@dataclass(frozen=True)
class Row:
    issue: str
    figure: str
    value: str
    aim: str
    ok: bool


def valuation_rows(out: str) -> list[Row]:
    median = re.search(r"value\s+1,000 lines: median\s+([\d.]+) ms", out)
    return (
        [
            Row(
                "3",
                "valuation of 1,000 lines, median",
                f"{median.group(1)} ms",
                "< 50 ms",
                float(median.group(1)) < 50,
            )
        ]
        if median
        else []
    )


def listing_rows(out: str) -> list[Row]:
    rows = []
    pattern = (
        r"^\s+(\w+)\s+(.+?)\s+p95 at ([\d,]+): ([\d.]+) ms \(aim < (\d+)\), ([\d.]+)x the "
        r"([\d,]+) figure \(aim <= ([\d.]+)\)"
    )
    for backend, name, large, p95, aim, growth, small, aim_growth in re.findall(pattern, out, re.M):
        rows.append(
            Row(
                "4",
                f"{name} p95 at {large} projects ({backend})",
                f"{p95} ms",
                f"< {aim} ms",
                float(p95) < float(aim),
            )
        )
        rows.append(
            Row(
                "4",
                f"{name} p95 growth {small} -> {large} ({backend})",
                f"{growth}x",
                f"<= {aim_growth}x",
                float(growth) <= float(aim_growth),
            )
        )
    return rows


def pledges_rows(out: str) -> list[Row]:
    rows = []
    pattern = (
        r"^\s+(\d+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+(\d+)\s+([\d.]+)\s+(\d+)\s+(\d+)"
        r"(?:\s+\(turns:.*\))?\s*$"
    )
    for clients, rate, _p50, p95, ceiling, ratio, errors, floor in re.findall(pattern, out, re.M):
        rows.append(
            Row(
                "20",
                f"pledges/s at {clients} clients vs GET /api/v1/me/s {floor}",
                f"{rate}/s = {int(rate) / int(floor):.2f}",
                ">= 0.60",
                int(rate) >= 0.6 * int(floor),
            )
        )
        rows.append(
            Row(
                "5",
                f"pledges/s at {clients} clients vs pgbench ceiling {ceiling}",
                f"{rate}/s = {ratio}",
                ">= 0.30 of the ceiling",
                float(ratio) >= 0.30 and errors == "0",
            )
        )
        if clients == "32":
            rows.append(
                Row(
                    "5",
                    "pledge p95 latency at 32 clients",
                    f"{p95} ms",
                    "< 100 ms",
                    float(p95) < 100,
                )
            )
    pooled = r"^\s+(\d+)\s+(\d+)\s+([\d.]+)\s+(\d+)\s+([\d.]+)\s*$"
    for clients, rate, _p95, alone, ratio in re.findall(pooled, out, re.M):
        rows.append(
            Row(
                "19",
                f"pledges/s with a pool at {clients} clients vs without ({alone}/s)",
                f"{rate}/s = {ratio}",
                ">= 0.80",
                float(ratio) >= 0.80,
            )
        )
    consistent = re.search(r"consistency: .*: (yes|NO)", out)
    if consistent:
        rows.append(
            Row(
                "5",
                "tokens pledged == rows written under load",
                consistent.group(1),
                "yes",
                consistent.group(1) == "yes",
            )
        )
    return rows


def settlement_rows(out: str) -> list[Row]:
    rows = [
        Row(
            "6",
            f"pledges settled per second, {projects} projects x 100 pledges",
            f"{rate}/s",
            ">= 500/s",
            int(rate) >= 500,
        )
        for projects, _pledges, _seconds, rate in re.findall(
            r"^\s+(\d+)\s+(\d+)\s+([\d.]+)\s+(\d+)\s", out, re.M
        )
    ]
    scaling = re.search(r"the rate keeps (\d+)%", out)
    if scaling:
        rows.append(
            Row(
                "6",
                "settlement rate kept from 100 to 1,000 projects",
                f"{scaling.group(1)}%",
                ">= 80% (linear)",
                int(scaling.group(1)) >= 80,
            )
        )
    return rows


def topology_rows(out: str) -> list[Row]:
    ratio = re.search(r"pledges/s ([\d.]+), listing p95 ([\d.]+)", out)
    rates = dict(re.findall(r"^(nginx, 2 servers|1 server directly)\s+(\d+)", out, re.M))
    if not ratio or len(rates) != 2:
        return []
    return [
        Row(
            "20",
            "pledges/s through nginx to 2 servers / 1 server directly "
            f"({rates['nginx, 2 servers']} / {rates['1 server directly']})",
            ratio.group(1),
            "printed (one machine)",
            True,
        ),
        Row("20", "listing p95, the same ratio", ratio.group(2), "printed (one machine)", True),
    ]


BENCHMARKS = {
    "valuation": valuation_rows,
    "listing": listing_rows,
    "pledges": pledges_rows,
    "settlement": settlement_rows,
    "topology": topology_rows,
}


def run(name: str) -> tuple[str, float]:
    started = time.monotonic()
    done = subprocess.run(  # noqa: S603 - our own benchmark modules
        [sys.executable, "-m", f"bench.{name}"],
        capture_output=True,
        text=True,
        cwd=HERE.parent,
        env={**os.environ, "PYTHONPATH": str(HERE.parent)},
    )
    output = done.stdout + (
        f"\n[exit {done.returncode}]\n{done.stderr[-3000:]}" if done.returncode else ""
    )
    return output, time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default=",".join(BENCHMARKS))
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n]
    rows: list[Row] = []
    outputs = {}
    for name in names:
        print(f"running bench.{name} ...", flush=True)
        output, seconds = run(name)
        outputs[name] = (output, seconds)
        found = BENCHMARKS[name](output)
        if not found:
            found = [Row("?", f"bench.{name} printed no figure", "-", "-", False)]
        rows.extend(found)
        for row in found:
            print(f"  {row.figure}: {row.value} (aim {row.aim}) {'pass' if row.ok else 'FAIL'}")
    lines = [
        "# Benchmark results",
        "",
        f"Written by `python -m bench.run_all` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}. "
        "Each benchmark's own output follows the table.",
        "",
        "| issue | figure | value | aim | result |",
        "|---|---|---|---|---|",
        *(
            f"| {r.issue} | {r.figure} | {r.value} | {r.aim} | {'pass' if r.ok else 'FAIL'} |"
            for r in rows
        ),
        "",
    ]
    for name, (output, seconds) in outputs.items():
        lines += [f"## bench.{name} ({seconds:.0f} s)", "", "```", output.strip(), "```", ""]
    RESULTS.write_text("\n".join(lines))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
