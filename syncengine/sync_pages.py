"""What the My sync, run and review pages show, built from the selectors' rows.

Rules live here, not in templates: which actions a mode allows, what a run did
in words, which side holds which value of a planned change. Nothing here
queries the database on its own; the callers pass what the selectors loaded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from . import selectors
from .models import PlannedChange, SyncRun

KIND_LABELS = {"calendar": "Calendar", "contacts": "Contacts", "tasks": "Tasks"}
ITEM_WORDS = {"calendar": ("event", "events"), "contacts": ("contact", "contacts"),
              "tasks": ("task", "tasks")}
SIDE_LABELS = {"outlook": "Outlook", "salesforce": "Salesforce"}
PURPOSE_LABELS = {
    "sync": "Sync",
    "preview": "Preview",
    "rebuild_preview": "Rebuild preview",
    "rebuild": "Rebuild",
    "apply_plan": "Reviewed sync",
    "settings_preview": "Settings dry run",
}
PHASE_LABELS = {
    "queued": "Waiting to start",
    "reading": "Reading both sides",
    "deciding": "Deciding what to do",
    "applying": "Writing changes",
    "done": "Finished",
}


def url_or_none(name: str, *args) -> str | None:
    """A page another issue builds is linked only once its URL exists (never a 404)."""
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return None


# ---------------------------------------------------------------- runs in words


def _plural(n: int, word: str) -> str:
    return f"{n} {word}"


def counts_in_words(counts: dict | None, *, planned: bool = False) -> str:
    """'12 created in Salesforce, 3 updated in Outlook' (or 'to create' for a plan)."""
    counts = counts or {}
    parts: list[str] = []
    verbs = (("created", "to create"), ("updated", "to update"), ("deleted", "to delete"))
    for key, future in verbs:
        per_side = counts.get(key) or {}
        for side in ("salesforce", "outlook"):
            n = int(per_side.get(side) or 0)
            if n:
                parts.append(f"{n} {future if planned else key} in {SIDE_LABELS[side]}")
    if counts.get("linked"):
        parts.append(f"{counts['linked']} {'to link' if planned else 'linked'} (already on both sides)")
    if counts.get("conflicts"):
        parts.append(f"{counts['conflicts']} conflict{'s' if counts['conflicts'] != 1 else ''}")
    errors = sum(int(v or 0) for v in (counts.get("errors") or {}).values())
    if errors:
        parts.append(f"{errors} could not be read")
    if counts.get("skipped"):
        parts.append(f"{counts['skipped']} skipped")
    if not parts:
        return "Nothing to change: both sides already agree." if planned else "Nothing changed: both sides agreed."
    return ", ".join(parts) + "."


def run_status_label(run: SyncRun) -> str:
    return run.get_status_display()


def run_is_live(run: SyncRun) -> bool:
    return run.status in selectors.LIVE_STATUSES


def run_is_plan(run: SyncRun) -> bool:
    return run.purpose in selectors.PREVIEW_PURPOSES


@dataclass(frozen=True)
class Progress:
    phase: str
    phase_label: str
    read_outlook: int
    read_salesforce: int
    decided: int
    applied: int
    total: int | None
    live: bool
    failed: bool = False

    @property
    def bar_max(self) -> int:
        return max(self.total or 0, 1)

    @property
    def bar_value(self) -> int | None:
        """None while the amount of work is unknown (an indeterminate bar)."""
        if self.failed:
            return min(self.applied, self.total) if self.total else 0  # where it stopped
        if self.phase == "done" or not self.live:
            return self.bar_max
        if self.total:
            done = self.applied if self.phase == "applying" else self.decided
            return min(done, self.total)
        return None


def progress_of(run: SyncRun) -> Progress:
    p = run.progress or {}
    read = p.get("read") or {}
    live = run_is_live(run)
    phase = p.get("phase") or ("queued" if run.status == "queued" else ("done" if not live else "reading"))
    if not live:
        phase = "done"
    return Progress(
        phase=phase,
        phase_label=PHASE_LABELS.get(phase, phase),
        read_outlook=int(read.get("outlook") or 0),
        read_salesforce=int(read.get("salesforce") or 0),
        decided=int(p.get("decided") or 0),
        applied=int(p.get("applied") or 0),
        total=p.get("total"),
        live=live,
        failed=run.status in ("failed", "stopped"),
    )


def failure_help(run: SyncRun, org_slug: str) -> tuple[str, str, str]:
    """(what to do, link, link label) for a failed or stopped run."""
    text = (run.error or "").lower()
    if "connect" in text or "sign-in" in text:
        return ("Reconnect the account on My connections, then run the sync again.",
                reverse("connections:my-connections", args=[org_slug]), "My connections")
    if "limit" in text:
        return ("Salesforce counts API requests per day; the sync can run again once the limit resets.",
                "", "")
    if "guard" in text or "deleting" in text:
        return ("Check the other side: if those items really were deleted on purpose, preview the sync "
                "and review the deletes before running it.", "", "")
    return ("Try again in a few minutes. If it keeps failing, send the run number to your administrator.",
            "", "")


# ---------------------------------------------------------------- My sync cards


@dataclass
class Card:
    kind: str
    label: str
    policy: Any
    connections: list
    missing: list
    last_run: SyncRun | None
    live_run: SyncRun | None
    lease: Any
    synced_once: bool
    settings_url: str

    @property
    def mode(self) -> str:
        return self.policy.mode.value

    @property
    def mode_label(self) -> str:
        from policy.registry import BY_NAME

        return BY_NAME["mode"].display(self.mode)

    @property
    def direction_label(self) -> str:
        from policy.registry import BY_NAME

        return BY_NAME["direction"].display(self.policy.direction.value)

    @property
    def connected(self) -> bool:
        return not self.missing

    @property
    def paused(self) -> bool:
        return bool(getattr(self.lease, "auto_paused", False))

    @property
    def next_run_at(self):
        if self.mode != "auto" or self.paused or not self.synced_once or self.lease is None:
            return None
        return self.lease.next_run_at

    @property
    def needs_first_review(self) -> bool:
        return self.mode == "auto" and not self.synced_once

    @property
    def can_preview(self) -> bool:
        return self.connected and (self.mode == "manual" or self.needs_first_review)

    @property
    def can_sync_now(self) -> bool:
        return self.connected and self.mode == "auto" and not self.needs_first_review

    @property
    def can_pause(self) -> bool:
        return self.connected and self.mode == "auto" and not self.needs_first_review

    @property
    def can_rebuild(self) -> bool:
        return self.connected and self.mode in ("manual", "auto") and self.synced_once

    @property
    def last_summary(self) -> str:
        r = self.last_run
        if r is None:
            return ""
        if r.status in ("failed", "stopped"):
            return r.error or "The run did not finish."
        if run_is_live(r):
            return ""
        return counts_in_words(r.counts, planned=run_is_plan(r))

    @property
    def last_purpose(self) -> str:
        return PURPOSE_LABELS.get(self.last_run.purpose, "") if self.last_run else ""


def my_sync_cards(*, membership, org_slug: str) -> list[Card]:
    """One card per kind; a constant number of queries whatever the member's history."""
    from connections.selectors import my_connections
    from policy.selectors import policy_effective_for

    providers = my_connections(membership=membership)
    missing = [p for p in providers if p.connection is None or not p.connection.is_usable]
    latest = selectors.runs_latest_by_kind(membership=membership)
    live = selectors.runs_live_by_kind(membership=membership)
    synced = selectors.kinds_synced(membership=membership)
    leases = selectors.leases_by_kind(membership=membership)
    cards = []
    for kind, label in KIND_LABELS.items():
        cards.append(
            Card(
                kind=kind,
                label=label,
                policy=policy_effective_for(membership, kind),
                connections=providers,
                missing=missing,
                last_run=latest.get(kind),
                live_run=live.get(kind),
                lease=leases.get(kind),
                synced_once=kind in synced,
                settings_url=reverse("policy:my-settings-kind", args=[org_slug, kind]),
            )
        )
    return cards


# ---------------------------------------------------------------- review rows


def field_label(name: str) -> str:
    return name.replace("_", " ").capitalize()


def show_value(value: Any) -> str:
    if value is None or value == "" or value == [] or value == {}:
        return "—"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, list | tuple):
        return ", ".join(show_value(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)[:300]
    text = str(value)
    return text if len(text) <= 300 else text[:299] + "…"


@dataclass(frozen=True)
class FieldDiff:
    name: str
    before: str
    after: str


@dataclass(frozen=True)
class ConflictChoice:
    names: str
    outlook: str
    salesforce: str


@dataclass(frozen=True)
class DrawerRow:
    name: str
    outlook: str
    salesforce: str
    after: str
    changed: bool


@dataclass
class ChangeView:
    """One planned item as the review page shows it."""

    change: PlannedChange
    group: str
    policy_winner: str
    writes: list[tuple[str, str]] = field(default_factory=list)

    @property
    def pk(self) -> int:
        return self.change.pk

    @property
    def title(self) -> str:
        return self.change.title or "(untitled)"

    @property
    def group_label(self) -> str:
        g = selectors.GROUPS_BY_KEY.get(self.group)
        return g.label if g else ""

    @property
    def reason(self) -> str:
        return getattr(self.change, "reason", "") or ""

    @property
    def winner(self) -> str:
        return getattr(self.change, "winner", "") or self.policy_winner

    @property
    def winner_label(self) -> str:
        return SIDE_LABELS.get(self.winner, "")

    @property
    def status_label(self) -> str:
        if self.change.status == "stale":
            return "Changed since preview"
        if self.change.status == "planned":
            return ""
        return self.change.get_status_display()

    @property
    def target_label(self) -> str:
        if self.group == "link":
            if not self.writes:
                return "Paired as they are: nothing to write"
            sides = " and ".join(SIDE_LABELS.get(side, side) for side, _ in self.writes)
            return f"Paired: {sides} get{'s' if len(self.writes) == 1 else ''} our link key" + (
                " and the merged fields" if self.change.fields else "")
        text = ", ".join(f"{verb} in {SIDE_LABELS.get(side, side)}" for side, verb in self.writes)
        return text[:1].upper() + text[1:]

    @property
    def includable(self) -> bool:
        return self.group not in ("skip", "error")

    @property
    def record(self) -> dict:
        return (self.change.after or {}).get("record") or {}

    @property
    def before(self) -> dict:
        return self.change.before or {}

    def updates_on(self) -> list[tuple[str, list[FieldDiff]]]:
        """Per written side, each changed field: before → after."""
        names = self.change.fields or sorted(
            k for k in self.record if self.record.get(k) != self.before.get(k)
        )
        out = []
        for side, verb in self.writes:
            if verb != "update":
                continue
            diffs = [FieldDiff(field_label(n), show_value(self.before.get(n)), show_value(self.record.get(n)))
                     for n in names]
            out.append((SIDE_LABELS.get(side, side), diffs))
        return out

    def conflict_choices(self) -> list[ConflictChoice]:
        """Both values of each conflicting field. `kept` is the policy winner's value."""
        out = []
        for c in self.change.conflicts or []:
            kept, lost = c.get("kept") or {}, c.get("lost") or {}
            winner = {"ours": "outlook", "theirs": "salesforce"}.get(c.get("winner", ""), self.policy_winner)
            o, s = (kept, lost) if winner == "outlook" else (lost, kept)
            for name in c.get("fields") or []:
                out.append(ConflictChoice(field_label(name), show_value(o.get(name)), show_value(s.get(name))))
        return out

    def summary(self) -> list[FieldDiff]:
        """A few fields of a created, deleted or linked item, for the row."""
        data = self.record or self.before
        picked = []
        for name in ("start", "end", "start_date", "due_date", "emails", "company", "status", "location"):
            if data.get(name) not in (None, "", [], {}):
                picked.append(FieldDiff(field_label(name), "", show_value(data[name])))
        return picked[:3]

    def drawer_rows(self) -> list[DrawerRow]:
        """Both sides' canonical fields as the plan knows them, and the result.

        A side that is written held the last synced value (or its own, for a
        conflicting field); a side left alone already holds the result; a side
        that gets the item created holds nothing yet.
        """
        written = dict(self.writes)
        conflict_side: dict[str, dict[str, Any]] = {"outlook": {}, "salesforce": {}}
        for c in self.change.conflicts or []:
            kept, lost = c.get("kept") or {}, c.get("lost") or {}
            winner = {"ours": "outlook", "theirs": "salesforce"}.get(c.get("winner", ""), self.policy_winner)
            loser = "salesforce" if winner == "outlook" else "outlook"
            conflict_side[winner].update(kept)
            conflict_side[loser].update(lost)
        names = sorted(set(self.record) | set(self.before))
        rows = []
        for n in names:
            values = {}
            for side in ("outlook", "salesforce"):
                verb = written.get(side)
                if n in conflict_side[side]:
                    v = conflict_side[side][n]
                elif verb == "create":
                    v = None
                elif verb in ("update", "delete"):
                    v = self.before.get(n, self.record.get(n))
                else:
                    v = self.record.get(n, self.before.get(n))
                values[side] = show_value(v)
            after = "—" if self.change.action == "delete" else show_value(self.record.get(n))
            rows.append(DrawerRow(field_label(n), values["outlook"], values["salesforce"], after,
                                  values["outlook"] != values["salesforce"]))
        return rows


def change_views(changes: list[PlannedChange], *, policy_winner: str) -> list[ChangeView]:
    out = []
    for c in changes:
        writes = []
        for part in (c.side or "").split(","):
            if ":" in part:
                side, verb = part.split(":", 1)
                writes.append((side, verb))
        out.append(ChangeView(c, selectors.group_of(c.action, c.side or "") or "skip", policy_winner, writes))
    return out


def proposed_settings(run: SyncRun) -> list[tuple[str, str]]:
    """A settings dry run's proposed values as the settings page words them."""
    from policy import registry

    out = []
    for name, raw in (run.policy_overrides or {}).items():
        setting = registry.BY_NAME.get(name)
        if setting is None:
            continue
        try:
            value = setting.display(setting.clean(raw, run.kind))
        except Exception:  # a stored value the registry no longer accepts: show it as it was posted
            value = str(raw)
        out.append((setting.label, value))
    return out


def selected_of(counts) -> tuple[int, int]:
    """(included, total) over the groups that can run (skipped items and errors never do)."""
    runnable = [c for c in counts if c.key not in ("skip", "error")]
    return sum(c.included for c in runnable), sum(c.total for c in runnable)


@dataclass(frozen=True)
class PlanState:
    """Whether the plan can still be run, and what to tell the member if not."""

    runnable: bool
    tone: str = ""
    message: str = ""
    link: str = ""
    link_label: str = ""


def plan_state(run: SyncRun, *, org_slug: str) -> PlanState:
    if run.purpose == "settings_preview":
        return PlanState(False)  # the page's introduction says what a dry run is
    if run_is_live(run):
        return PlanState(False, "info", "The preview is still being computed.",
                         reverse("syncengine:run", args=[org_slug, run.pk]), "Show progress")
    if run.applied_run_id:
        link = reverse("syncengine:run", args=[org_slug, run.applied_run_id])
        if run.applied_run is not None and run_is_live(run.applied_run):
            return PlanState(False, "info", "This plan is being run now.", link, "Show progress")
        return PlanState(False, "info", "This plan was already run. Preview again to see what changed since.",
                         link, "Show that run")
    if run.status != "planned":
        return PlanState(False, "error", "This preview did not finish, so there is nothing to run. "
                         "Preview again from My sync.", reverse("syncengine:my-sync", args=[org_slug]),
                         "My sync")
    # A purged plan has no expiry left: it reads as expired too.
    if run.plan_expires_at is None or run.plan_expires_at <= timezone.now():
        return PlanState(False, "warning", "This plan has expired: both sides may have changed since it was "
                         "made. Preview again for a fresh plan.",
                         reverse("syncengine:my-sync", args=[org_slug]), "My sync")
    return PlanState(True)
