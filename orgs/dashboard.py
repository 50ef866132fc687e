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
