"""Geometry of the tornado chart drawn as SVG on the valuation pages.

Pure layout: it turns the sensitivity rows into bars in pixels; the template
draws them. Bars are sorted by their spread, widest first.
"""

from __future__ import annotations

from dataclasses import dataclass

from valuation import SensitivityRow

WIDTH = 720
LABEL_WIDTH = 190
RIGHT_PAD = 20
ROW_HEIGHT = 34
TOP = 28
BOTTOM = 30

LABELS = {
    "proxy_value": ("Proxy value", "×0.8", "×1.2"),
    "deadweight": ("Deadweight", "−0.10", "+0.10"),
    "displacement": ("Displacement", "−0.10", "+0.10"),
    "attribution": ("Attribution", "−0.10", "+0.10"),
    "drop_off": ("Drop-off", "−0.10", "+0.10"),
    "duration_years": ("Duration", "−1 year", "+1 year"),
    "discount_rate": ("Discount rate", "−0.01", "+0.01"),
}


@dataclass(frozen=True)
class Segment:
    x: float
    width: float
    cents: int
    setting: str  # the parameter's setting that gives this end: "×0.8", "+0.10", ...
    side: str  # "low" or "high": which setting of the parameter


@dataclass(frozen=True)
class Bar:
    parameter: str
    label: str
    y: float
    segments: tuple[Segment, Segment]
    spread_cents: int


@dataclass(frozen=True)
class TornadoChart:
    width: int
    height: int
    base_cents: int
    base_x: float
    label_width: int
    row_height: int
    top: int
    bars: tuple[Bar, ...]


def tornado_chart(base_cents: int, rows: list[SensitivityRow]) -> TornadoChart:
    values = [base_cents]
    for row in rows:
        values += [row.low_present_value_cents, row.high_present_value_cents]
    lowest, highest = min(values), max(values)
    span = max(highest - lowest, 1)
    plot = WIDTH - LABEL_WIDTH - RIGHT_PAD

    def x(cents: int) -> float:
        return round(LABEL_WIDTH + (cents - lowest) / span * plot, 1)

    base_x = x(base_cents)
    ordered = sorted(
        rows,
        key=lambda r: abs(r.high_present_value_cents - r.low_present_value_cents),
        reverse=True,
    )
    bars = []
    for i, row in enumerate(ordered):
        label, low_setting, high_setting = LABELS.get(row.parameter, (row.parameter, "low", "high"))
        segments = []
        for cents, setting, side in (
            (row.low_present_value_cents, low_setting, "low"),
            (row.high_present_value_cents, high_setting, "high"),
        ):
            end = x(cents)
            segments.append(Segment(min(end, base_x), abs(end - base_x), cents, setting, side))
        bars.append(
            Bar(
                row.parameter,
                label,
                TOP + i * ROW_HEIGHT,
                (segments[0], segments[1]),
                abs(row.high_present_value_cents - row.low_present_value_cents),
            )
        )
    height = TOP + len(bars) * ROW_HEIGHT + BOTTOM
    return TornadoChart(
        WIDTH, height, base_cents, base_x, LABEL_WIDTH, ROW_HEIGHT, TOP, tuple(bars)
    )
