"""Geometry of the funding progress bar (drawn as SVG: no inline styles under the CSP)."""

from __future__ import annotations

from dataclasses import dataclass

from marketplace.projects.models import Project


@dataclass(frozen=True)
class FundingBar:
    width: int
    height: int
    pledged: int
    paid: int
    threshold: int | None
    total: int | None
    pledged_width: float
    paid_width: float
    threshold_x: float | None
    percent_of_threshold: int

    @property
    def threshold_met(self) -> bool:
        return self.threshold is not None and self.pledged >= self.threshold


def funding_bar(project: Project, *, compact: bool = False) -> FundingBar | None:
    """None before the project has a price (nothing to fund yet)."""
    total, threshold = project.tokens_total, project.threshold_tokens
    if not total or threshold is None:
        return None
    width = 240 if compact else 640
    scale = width / total
    pledged, paid = project.tokens_pledged, project.tokens_paid
    return FundingBar(
        width=width,
        height=10 if compact else 18,
        pledged=pledged,
        paid=paid,
        threshold=threshold,
        total=total,
        pledged_width=round(min(pledged, total) * scale, 1),
        paid_width=round(min(paid, total) * scale, 1),
        threshold_x=round(threshold * scale, 1),
        percent_of_threshold=pledged * 100 // threshold if threshold else 0,
    )
