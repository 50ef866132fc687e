"""Reads of sync state. Tenant data is reached through the membership or org."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.management.base import CommandError
from django.db.models import Count, Q, Subquery

from orgs.models import Membership

from .models import PlannedChange, SyncLease, SyncLink, SyncRun


def membership_for_email(email: str, *, org_slug: str | None = None) -> Membership:
    """The active membership of the user with `email` (the support commands' `--user`)."""
    qs = Membership.objects.select_related("user", "organization").filter(
        user__email__iexact=email, is_active=True
    )
    if org_slug:
        qs = qs.filter(organization__slug=org_slug)
    found = list(qs[:2])
    if not found:
        raise CommandError(f"No active membership for {email}.")
    if len(found) > 1:
        raise CommandError(f"{email} belongs to several organizations; pass --org.")
    return found[0]


def sync_runs_recent(*, membership: Membership, kind: str | None = None, limit: int = 20) -> list[SyncRun]:
    qs = SyncRun.objects.filter(membership=membership)
    if kind:
        qs = qs.filter(kind=kind)
    return list(qs.order_by("-started_at", "-pk")[:limit])


def plan_changes(*, membership: Membership, run_id: int) -> list[PlannedChange]:
    return list(PlannedChange.objects.filter(run_id=run_id, run__membership=membership).order_by("seq"))


def link_counts(*, membership: Membership, kind: str) -> dict[str, int]:
    from django.db.models import Count

    rows = SyncLink.objects.filter(membership=membership, kind=kind).values("state").annotate(n=Count("pk"))
    return {r["state"]: r["n"] for r in rows}


# ---------------------------------------------------------------- the My sync pages
#
# Reads for `views_sync.py`. Every function takes the caller's membership first
# and reaches runs and planned items only through it, so another member's (or
# org's) id is simply not found.

PAGE_SIZE = 50
LIVE_STATUSES = ("queued", "running")
PREVIEW_PURPOSES = ("preview", "rebuild_preview", "settings_preview")
# Runs that leave both sides in step (a preview or a dry run does not count).
WRITING_PURPOSES = ("sync", "apply_plan", "rebuild")


@dataclass(frozen=True)
class PlanGroup:
    key: str
    label: str
    q: Q
    help: str = ""


# The review page's groups, in the order a member reads them. "touch" and
# "out_of_scope" decisions are bookkeeping (a version seen, a range left): they
# write nothing on either side and are not shown.
PLAN_GROUPS: tuple[PlanGroup, ...] = (
    PlanGroup("create_salesforce", "Create in Salesforce", Q(action="create", side__startswith="salesforce:"),
              "New in Outlook: a copy is created in Salesforce."),
    PlanGroup("create_outlook", "Create in Outlook", Q(action="create", side__startswith="outlook:"),
              "New in Salesforce: a copy is created in Outlook."),
    PlanGroup("update", "Update", Q(action="update"),
              "Changed on one side: the change is copied to the other."),
    PlanGroup("delete", "Delete", Q(action="delete"),
              "Deleted on one side: the copy on the other side is deleted."),
    PlanGroup("link", "Link existing pairs", Q(action="link"),
              "Already on both sides: paired, nothing is created twice."),
    PlanGroup("conflict", "Conflicts", Q(action="conflict"),
              "Changed differently on both sides: one value wins per field."),
    PlanGroup("skip", "Skipped", Q(action__in=("skip", "tombstone")),
              "Left as they are, with the reason."),
    PlanGroup("error", "Errors", Q(action="error"), "Could not be read: nothing is written for them."),
)
GROUPS_BY_KEY = {g.key: g for g in PLAN_GROUPS}
SHOWN_ACTIONS = ("create", "update", "delete", "link", "conflict", "skip", "tombstone", "error")


def group_of(action: str, side: str) -> str | None:
    if action == "create":
        return "create_salesforce" if side.startswith("salesforce:") else "create_outlook"
    if action == "tombstone":
        return "skip"
    return action if action in GROUPS_BY_KEY else None


def run_for_member_page(*, membership: Membership | None, run_id: int) -> SyncRun:
    """The caller's own run (raises `SyncRun.DoesNotExist` otherwise, also for staff)."""
    if membership is None:
        raise SyncRun.DoesNotExist
    run = SyncRun.objects.select_related("applied_run").get(pk=run_id, membership=membership)
    run.membership = membership  # the caller's own row: no second query to follow it
    return run


@dataclass(frozen=True)
class GroupCount:
    group: PlanGroup
    total: int
    included: int

    @property
    def key(self) -> str:
        return self.group.key

    @property
    def label(self) -> str:
        return self.group.label


def plan_group_counts(*, run: SyncRun) -> list[GroupCount]:
    """Items and included items per group: one aggregate query, whatever the plan's size."""
    totals: dict[str, list[int]] = {g.key: [0, 0] for g in PLAN_GROUPS}
    rows = (
        PlannedChange.objects.filter(run=run, action__in=SHOWN_ACTIONS)
        .values("action", "side")
        .annotate(n=Count("pk"), inc=Count("pk", filter=Q(included=True)))
        .order_by()
    )
    for r in rows:
        key = group_of(r["action"], r["side"])
        if key is not None:
            totals[key][0] += r["n"]
            totals[key][1] += r["inc"]
    return [GroupCount(g, *totals[g.key]) for g in PLAN_GROUPS]


@dataclass(frozen=True)
class ReviewFilter:
    group: str = ""
    q: str = ""
    show: str = ""  # "" all, "included", "excluded"
    after: int = 0

    def querystring(self, **changes) -> str:
        from urllib.parse import urlencode

        values = {"group": self.group, "q": self.q, "show": self.show, **changes}
        return urlencode({k: v for k, v in values.items() if v not in ("", 0, None)})


def _plan_rows(run: SyncRun, f: ReviewFilter):
    qs = PlannedChange.objects.filter(run=run, action__in=SHOWN_ACTIONS)
    if f.group in GROUPS_BY_KEY:
        qs = qs.filter(GROUPS_BY_KEY[f.group].q)
    if f.show == "included":
        qs = qs.filter(included=True)
    elif f.show == "excluded":
        qs = qs.filter(included=False)
    text = f.q.strip()
    if text:
        # A bounded scan of one plan: titles, or either side's id pasted from the other app.
        qs = qs.filter(Q(title__icontains=text) | Q(outlook_id=text) | Q(sf_id=text))
    return qs


def plan_page(*, run: SyncRun, f: ReviewFilter, size: int = PAGE_SIZE) -> tuple[list[PlannedChange], int | None]:
    """One page of planned items after `f.after` (keyset on seq, never OFFSET) and the next cursor."""
    rows = list(_plan_rows(run, f).filter(seq__gt=f.after).order_by("seq")[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    return rows, (rows[-1].seq if more else None)


def plan_group_ids(*, run: SyncRun, group: str) -> list[int]:
    return list(
        PlannedChange.objects.filter(run=run, action__in=SHOWN_ACTIONS)
        .filter(GROUPS_BY_KEY[group].q)
        .values_list("pk", flat=True)
    )


def plan_change(*, run: SyncRun, change_id: int) -> PlannedChange:
    return PlannedChange.objects.get(pk=change_id, run=run)


def plan_changes_by_id(*, run: SyncRun, ids: list[int]) -> list[PlannedChange]:
    return list(PlannedChange.objects.filter(run=run, pk__in=ids).order_by("seq"))


def runs_latest_by_kind(*, membership: Membership) -> dict[str, SyncRun]:
    """The latest run of each kind (previews included): one query for the three kinds."""
    from .engine.kinds import KINDS

    latest = Q()
    for kind in KINDS:
        sub = (
            SyncRun.objects.filter(membership=membership, kind=kind)
            .order_by("-started_at", "-pk")
            .values("pk")[:1]
        )
        latest |= Q(pk=Subquery(sub))
    return {r.kind: r for r in SyncRun.objects.filter(latest)}


def runs_live_by_kind(*, membership: Membership) -> dict[str, SyncRun]:
    rows = SyncRun.objects.filter(membership=membership, status__in=LIVE_STATUSES).order_by("started_at", "pk")
    out: dict[str, SyncRun] = {}
    for r in rows:
        out.setdefault(r.kind, r)
    return out


def kinds_synced(*, membership: Membership) -> set[str]:
    """Kinds with at least one completed sync that wrote (not a preview): one query."""
    return set(
        SyncRun.objects.filter(
            membership=membership, status="succeeded", purpose__in=WRITING_PURPOSES, dry_run=False
        )
        .values_list("kind", flat=True)
        .distinct()
    )


def leases_by_kind(*, membership: Membership) -> dict[str, SyncLease]:
    return {lease.kind: lease for lease in SyncLease.objects.filter(membership=membership)}


def plan_newer_sync(*, run: SyncRun) -> SyncRun | None:
    """A sync of the same kind that wrote after this plan was made (the plan may be out of date)."""
    return (
        SyncRun.objects.filter(
            membership_id=run.membership_id,
            kind=run.kind,
            purpose__in=WRITING_PURPOSES,
            started_at__gt=run.started_at,
        )
        .exclude(pk=run.applied_run_id or 0)
        .order_by("-started_at")
        .first()
    )


# ---------------------------------------------------------------- runs, Auto state (M1)

# Runs that leave both sides in step: a preview, a dry run or a SnapRecord copy does not count.
COMPLETED_SYNC = dict(status="succeeded", dry_run=False, purpose__in=("sync", "apply_plan", "rebuild"))


def run_for_member(*, membership: Membership, run_id: int) -> SyncRun:
    """One of the member's own runs; another member's (or org's) raises `SyncRun.DoesNotExist`."""
    return SyncRun.objects.get(pk=run_id, membership=membership)


def kind_needs_first_review(membership: Membership, kind: str) -> bool:
    """True while the member has never completed a sync of `kind`: Auto does not start
    on its own until a first sync was previewed and run (the dispatcher checks the same)."""
    return not (
        SyncRun.objects.filter(membership=membership, kind=kind, **COMPLETED_SYNC)
        .exclude(trigger="snaprecord")
        .exists()
    )


def members_with_completed_sync(*, kind: str, membership_ids: list[int]) -> set[int]:
    """Of `membership_ids`, those who completed a sync of `kind` (the dispatcher's gate)."""
    out: set[int] = set()
    for i in range(0, len(membership_ids), 500):
        out.update(
            SyncRun.objects.filter(kind=kind, membership_id__in=membership_ids[i : i + 500], **COMPLETED_SYNC)
            .exclude(trigger="snaprecord")
            .values_list("membership_id", flat=True)
            .distinct()
        )
    return out


def auto_paused(*, membership: Membership, kind: str) -> bool:
    """Auto sync of `kind` paused by the member: `SyncLease.auto_paused` of (member, kind)."""
    return SyncLease.objects.filter(membership=membership, kind=kind, auto_paused=True).exists()


def run_skipped_items(*, run_id: int, limit: int = 1000) -> list[dict]:
    """What a run left out and why: the plan's skip / error items, else its log's."""
    rows = list(
        PlannedChange.objects.filter(run_id=run_id, action__in=("skip", "error"))
        .order_by("seq")
        .values("action", "title", "reason", "outlook_id", "sf_id")[:limit]
    )
    if rows:
        return rows
    from .models import SyncLogEntry

    return [
        {"action": e["action"], "title": (e["detail"] or {}).get("title", ""), "reason": e["message"],
         "outlook_id": e["outlook_id"], "sf_id": e["sf_id"]}
        for e in SyncLogEntry.objects.filter(run_id=run_id, action__in=("skip", "error"))
        .order_by("id")
        .values("action", "message", "detail", "outlook_id", "sf_id")[:limit]
    ]
