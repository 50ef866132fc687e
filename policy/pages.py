"""What the two policy pages show, one row per registry setting.

Rows are built here, not in templates, so templates stay free of rules (which
value is moot, who may edit what) and follow no relation the query did not load.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.urls import NoReverseMatch, reverse

from orgs.access import OrgContext
from orgs.models import Membership

from . import registry
from .extensions import Advice
from .forms import TimeZoneForm
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
    # The inline confirmation of a save of this row ("Saved."), and advice on it.
    saved: str = ""
    advice: tuple[Advice, ...] = ()
    # What "Turn on anyway" re-posts when a blocking advice stopped the save.
    pending_value: str = ""
    preview_url: str = ""

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

    @property
    def can_preview(self) -> bool:
        """A dry run of this row's change is offered (then the row saves on Save, not on change)."""
        return bool(self.preview_url) and self.setting.previewable and self.editable

    @property
    def blocking_advice(self) -> tuple[Advice, ...]:
        return tuple(a for a in self.advice if a.blocking)

    @property
    def confirm_label(self) -> str:
        return "Turn on anyway" if self.name == "mode" else "Save anyway"


SET, RESET, LOCK, UNLOCK = "set", "reset", "lock", "unlock"


@dataclass(frozen=True)
class Feedback:
    """What the last POST did to one row: saved (SET, RESET, LOCK, UNLOCK) and/or advice."""

    field: str = ""
    saved: str = ""
    advice: tuple[Advice, ...] = ()
    pending_value: str = ""

    def for_row(self, name: str) -> dict:
        if name != self.field:
            return {}
        return {"saved": self.saved, "advice": self.advice, "pending_value": self.pending_value}


NO_FEEDBACK = Feedback()


def settings_preview_url(org_slug: str) -> str:
    """The dry-run endpoint of the My sync pages, or "" while that app does not provide it.

    Looked up by name so policy never imports syncengine (DESIGN §2).
    """
    try:
        return reverse("syncengine:settings-preview", kwargs={"org_slug": org_slug})
    except NoReverseMatch:
        return ""


def saved_message(setting: registry.Setting, value: Any, what: str) -> str:
    shown = setting.display(value)
    if what == RESET:
        return f"Saved: back to the organization's value ({shown})."
    if what == LOCK:
        return f"Locked: every member now uses {shown}."
    if what == UNLOCK:
        return "Unlocked: members may choose their own value again."
    return f"Saved: {shown}."


def _split_by_mode(rows: list[FieldRow], mode: str) -> tuple[list[FieldRow], list[FieldRow]]:
    """Rows the engine reads in `mode`, and the rest (used only by other modes)."""
    shown = [r for r in rows if r.setting.applies_in(mode)]
    return shown, [r for r in rows if not r.setting.applies_in(mode)]


def _off_page(errors: dict, hidden: list[FieldRow]) -> tuple[list[str], list[str]]:
    """Errors and save confirmations of rows the page does not show (a stale page, or a
    field of another mode): they go above the table, so no answer is ever invisible."""
    shown_errors = [" ".join(v) for k, v in errors.items() if k not in registry.BY_NAME]
    notes = []
    for row in hidden:
        if row.error:
            shown_errors.append(row.error)
        if row.saved:
            modes = ", ".join(
                label
                for value, label in registry.BY_NAME["mode"].choices_for(row.kind)
                if row.setting.applies_in(value)
            )
            notes.append(f"{row.setting.label}: {row.saved} It applies in {modes}.")
        notes.extend(a.message for a in row.advice)
    return shown_errors, notes


def _mode_summary(kind: str, mode: str) -> str:
    label = dict(registry.BY_NAME["mode"].choices_for(kind)).get(mode, mode)
    if mode == "off":
        return f"{registry.KIND_LABELS[kind]} sync is off: nothing is synced, so no other setting applies."
    return f"Showing the settings {label} uses."


def _tabs(kind: str) -> list[dict]:
    return [
        {"kind": k, "label": registry.KIND_LABELS[k], "current": k == kind} for k in registry.KINDS
    ]


def org_policy_context(
    *,
    ctx: OrgContext,
    kind: str,
    errors: dict | None = None,
    notes=(),
    feedback: Feedback = NO_FEEDBACK,
) -> dict:
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
            **feedback.for_row(s.name),
        )
        for s in registry.settings_for(kind)
    ]
    rows, other_rows = _split_by_mode(rows, policy.mode)
    mode_locked = "mode" in policy.locked
    other_errors, off_page_notes = _off_page(errors, other_rows if mode_locked else [])
    return {
        "ctx": ctx,
        "kind": kind,
        "kind_label": registry.KIND_LABELS[kind],
        "tabs": _tabs(kind),
        "rows": rows,
        # Members may choose another mode unless it is locked: their defaults stay editable.
        "other_rows": [] if mode_locked else other_rows,
        # Keep the group open when the row just posted sits in it (htmx re-renders it).
        "other_open": any(r.saved or r.error or r.advice for r in other_rows),
        "hidden_count": len(other_rows) if mode_locked else 0,
        "mode_summary": _mode_summary(kind, policy.mode),
        "notes": [*notes, *off_page_notes],
        "other_errors": other_errors,
    }


def my_settings_context(
    *,
    ctx: OrgContext,
    membership: Membership,
    kind: str,
    errors: dict | None = None,
    notes=(),
    feedback: Feedback = NO_FEEDBACK,
) -> dict:
    """The member settings page. Other apps may render it too (a refused dry run shows its
    error here): `render(request, "policy/my_settings.html", my_settings_context(...))`."""
    eff = policy_effective_for(membership, kind)
    errors = errors or {}
    # A dry run plans a manual/auto sync; SnapRecord copies chosen events and Off syncs nothing.
    dry_run = eff.mode.value in registry.TWO_WAY_MODES
    preview_url = settings_preview_url(ctx.org.slug) if dry_run else ""
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
                preview_url=preview_url,
                **feedback.for_row(name),
            )
        )
    rows, hidden = _split_by_mode(rows, eff.mode.value)
    other_errors, off_page_notes = _off_page(errors, hidden)
    return {
        "ctx": ctx,
        "kind": kind,
        "kind_label": registry.KIND_LABELS[kind],
        "tabs": _tabs(kind),
        "rows": rows,
        "hidden_count": len(hidden),
        "mode_summary": _mode_summary(kind, eff.mode.value),
        "notes": [*notes, *off_page_notes],
        "other_errors": other_errors,
        "time_zone": eff.time_zone,
        "tz_form": time_zone_form(eff.time_zone),
        "notices": policy_notices_open(membership=membership),
    }


def time_zone_form(time_zone: str) -> TimeZoneForm:
    return TimeZoneForm(initial={"time_zone": time_zone})


def _row(
    setting, kind, resolved: Resolved, *, editable: bool, saved: str = "", **kwargs
) -> FieldRow:
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
        saved=saved_message(setting, resolved.value, saved) if saved else "",
        **kwargs,
    )
