"""Translation between the boundary's loaded data and the valuation services."""

from __future__ import annotations

from outcomes.valuations import LineRequest, PreviewRequest
from valuation import SensitivityRow, Valuation


def preview_request(data: dict) -> PreviewRequest:
    """A PreviewRequest from PreviewSchema's loaded data."""
    return PreviewRequest(
        valuation_year=data["valuation_year"],
        lines=[LineRequest(**line) for line in data["lines"]],
        inflation=data.get("inflation"),
        discount_rate=data.get("discount_rate"),
    )


def preview_result(valuation: Valuation, rows: list[SensitivityRow]) -> dict:
    return {**valuation.as_dict(), "sensitivity": [row.__dict__ for row in rows]}
