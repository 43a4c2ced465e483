"""Panels of the project page that other features provide.

The project page belongs to ``projects``; funding adds the pledge box,
evaluations the progress reports. Each registers a function that gives its
part of the page's template context, so the project page imports none of
them (and none of them is imported back: no cycle between the views).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

ProjectPanel = Callable[[Any, Any, bool], dict[str, Any]]

_project_panels: list[ProjectPanel] = []


def project_panel(panel: ProjectPanel) -> ProjectPanel:
    """Register ``panel(project, viewer, is_owner) -> context`` for the project page."""
    if panel not in _project_panels:
        _project_panels.append(panel)
    return panel


def project_panels(project: Any, viewer: Any, is_owner: bool) -> dict[str, Any]:
    """The context every registered panel gives for this project and viewer."""
    context: dict[str, Any] = {}
    for panel in _project_panels:
        context.update(panel(project, viewer, is_owner))
    return context
