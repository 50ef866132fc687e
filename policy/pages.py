"""What the two policy pages show, one row per registry setting.

Rows are built here, not in templates, so templates stay free of rules (which
value is moot, who may edit what) and follow no relation the query did not load.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from orgs.access import OrgContext
from orgs.models import Membership

from . import registry
from .selectors import (
    LOCKED,
    USER,
    Resolved,
    org_policy_get,
    override_counts,
    policy_effective_for,
    policy_notices_open,
    resolve,
)

INPUT_TYPES = {
    registry.CHOICE: "select",
    registry.INT: "number",
    registry.BOOL: "checkbox",
    registry.TIME: "time",
    registry.TEXT: "text",
}


@dataclass(frozen=True)
class FieldRow:
    setting: registry.Setting
    kind: str
    value: Any
    source: str
    source_label: str
    note: str
    locked: bool
    editable: bool
    override_count: int = 0
    error: str = ""

    @property
    def name(self) -> str:
        return self.setting.name

    @property
    def input_type(self) -> str:
        return INPUT_TYPES[self.setting.type]

    @property
    def choices(self):
        return self.setting.choices_for(self.kind)

    @property
    def display(self) -> str:
        return self.setting.display(self.value)

    @property
    def input_value(self) -> str:
        if isinstance(self.value, dt.time):
            return self.value.strftime("%H:%M")
        return "" if self.value is None else str(self.value)

    @property
    def is_user_value(self) -> bool:
        return self.source == USER


def _tabs(kind: str) -> list[dict]:
    return [
        {"kind": k, "label": registry.KIND_LABELS[k], "current": k == kind} for k in registry.KINDS
    ]


def org_policy_context(*, ctx: OrgContext, kind: str, errors: dict | None = None, notes=()) -> dict:
    policy = org_policy_get(org=ctx.org, kind=kind)
    counts = override_counts(org=ctx.org, kind=kind)
    # Resolving with no member layer gives the org's own values plus the moot-value notes.
    resolved = resolve(kind=kind, org_values=policy.values(), locked=(), user_values={})
    errors = errors or {}
    rows = [
        _row(
            s,
            kind,
            resolved[s.name],
            locked=s.name in policy.locked,
            editable=True,
            override_count=counts[s.name],
            error=" ".join(errors.get(s.name, ())),
        )
        for s in registry.settings_for(kind)
    ]
    return {
        "ctx": ctx,
        "kind": kind,
        "kind_label": registry.KIND_LABELS[kind],
        "tabs": _tabs(kind),
        "rows": rows,
        "notes": list(notes),
        "other_errors": [" ".join(v) for k, v in errors.items() if k not in registry.BY_NAME],
    }


def my_settings_context(
    *, ctx: OrgContext, membership: Membership, kind: str, errors: dict | None = None, notes=()
) -> dict:
    eff = policy_effective_for(membership, kind)
    errors = errors or {}
    rows = []
    for name, r in eff.items():
        locked = r.source == LOCKED
        rows.append(
            _row(
                registry.BY_NAME[name],
                kind,
                r,
                locked=locked,
                editable=not locked,
                error=" ".join(errors.get(name, ())),
            )
        )
    return {
        "ctx": ctx,
        "kind": kind,
        "kind_label": registry.KIND_LABELS[kind],
        "tabs": _tabs(kind),
        "rows": rows,
        "notes": list(notes),
        "other_errors": [" ".join(v) for k, v in errors.items() if k not in registry.BY_NAME],
        "time_zone": eff.time_zone,
        "notices": policy_notices_open(membership=membership),
    }


def _row(setting, kind, resolved: Resolved, *, editable: bool, **kwargs) -> FieldRow:
    # A moot value (the winner of a one-way sync, deletes in an unsynced direction)
    # is shown with its note but cannot be edited until the direction makes it matter.
    return FieldRow(
        editable=editable and not resolved.note,
        setting=setting,
        kind=kind,
        value=resolved.value,
        source=resolved.source,
        source_label=resolved.source_label,
        note=resolved.note,
        **kwargs,
    )
