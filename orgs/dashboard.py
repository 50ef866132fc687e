"""Panels other apps add to the org home (connection health, sync health, ...).

`orgs` knows nothing of syncing, so the dependency points the right way: an app
registers a panel from its `AppConfig.ready()` and the dashboard includes it.

    from orgs.dashboard import register_panel
    register_panel(template="connections/_dashboard_panel.html",
                   context=lambda ctx: {"health": connection_health(org=ctx.org)})
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .access import OrgContext
from .models import Role


@dataclass(frozen=True)
class Panel:
    template: str
    context: Callable[[OrgContext], dict] | None
    min_role: str
    order: int


_PANELS: dict[str, Panel] = {}


def register_panel(
    *,
    template: str,
    context: Callable[[OrgContext], dict] | None = None,
    min_role: str = Role.ADMIN,
    order: int = 100,
) -> None:
    """Idempotent by template name, so a re-run `ready()` does not show a panel twice."""
    _PANELS[template] = Panel(template=template, context=context, min_role=min_role, order=order)


def panels_for(ctx: OrgContext) -> list[dict]:
    return [
        {"template": p.template, "context": p.context(ctx) if p.context else {}}
        for p in sorted(_PANELS.values(), key=lambda p: (p.order, p.template))
        if ctx.has_role(p.min_role)
    ]


# --- the Professional Services directory ---------------------------------------------------
# Platform staff list every organization; apps above orgs add summary columns (sync health,
# API use) the same way they add panels: `summaries(org_ids)` returns {org id: object} for a
# whole page of orgs at once (constant queries), `template` renders that org's <td> cells.


@dataclass(frozen=True)
class DirectoryColumns:
    headers: tuple[str, ...]
    template: str
    summaries: Callable[[list[int]], dict]
    order: int


_DIRECTORY: dict[str, DirectoryColumns] = {}


def register_directory_columns(
    *, headers: tuple[str, ...], template: str, summaries: Callable[[list[int]], dict],
    order: int = 100,
) -> None:
    _DIRECTORY[template] = DirectoryColumns(tuple(headers), template, summaries, order)


def directory_table(orgs: list) -> tuple[list[str], list[dict]]:
    """Headers, and per org its cells: [{"org", "cells": [{"template", "summary"}]}]."""
    columns = sorted(_DIRECTORY.values(), key=lambda c: (c.order, c.template))
    by_column = [c.summaries([o.pk for o in orgs]) for c in columns]
    headers = [h for c in columns for h in c.headers]
    rows = [{"org": o, "cells": [{"template": c.template, "summary": found.get(o.pk)}
                                 for c, found in zip(columns, by_column, strict=True)]}
            for o in orgs]
    return headers, rows
