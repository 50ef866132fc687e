"""Reads of sync state. Tenant data is reached through the membership or org."""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from django.core.management.base import CommandError
from django.db.models import Count, OuterRef, Q, Subquery

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
    PlanGroup("occurrence", "Series occurrences", Q(action="occurrence"),
              "One occurrence of a series changed or cancelled on its own: only that occurrence "
              "is changed on the other side."),
    PlanGroup("skip", "Skipped", Q(action__in=("skip", "tombstone")),
              "Left as they are, with the reason."),
    PlanGroup("error", "Errors", Q(action="error"), "Could not be read: nothing is written for them."),
)
GROUPS_BY_KEY = {g.key: g for g in PLAN_GROUPS}
SHOWN_ACTIONS = ("create", "update", "delete", "link", "conflict", "occurrence", "skip", "tombstone", "error")


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
    """Items and included items per group: one aggregate query, whatever the plan's size.

    It reads only the (run, action, side, included) index, never the wide rows.
    """
    totals: dict[str, list[int]] = {g.key: [0, 0] for g in PLAN_GROUPS}
    rows = (
        PlannedChange.objects.filter(run=run, action__in=SHOWN_ACTIONS)
        .values_list("action", "side", "included")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for action, side, included, n in rows:
        key = group_of(action, side)
        totals[key][0] += n
        if included:
            totals[key][1] += n
    return [GroupCount(g, *totals[g.key]) for g in PLAN_GROUPS]


@dataclass(frozen=True)
class ReviewFilter:
    group: str = ""
    q: str = ""
    show: str = ""  # "" all, "included", "excluded", "stale" (changed since the preview)
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
    elif f.show == "stale":
        qs = qs.filter(status="stale")
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
    """The latest run of each kind (previews included, settings dry runs not): one query."""
    from .engine.kinds import KINDS

    latest = Q()
    for kind in KINDS:
        sub = (
            SyncRun.objects.filter(membership=membership, kind=kind)
            .exclude(purpose="settings_preview")
            .order_by("-started_at", "-pk")
            .values("pk")[:1]
        )
        latest |= Q(pk=Subquery(sub))
    return {r.kind: r for r in SyncRun.objects.filter(latest)}


def runs_live_by_kind(*, membership: Membership) -> dict[str, SyncRun]:
    # A settings dry run neither waits for nor blocks a sync (it takes no lease): not shown as "the" run.
    rows = (
        SyncRun.objects.filter(membership=membership, status__in=LIVE_STATUSES)
        .exclude(purpose="settings_preview")
        .order_by("started_at", "pk")
    )
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
    """What a run left out and why: the plan's skip / error items, else its log's
    (skips, unmappable items and writes the other side refused; not the run's own line)."""
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
        for e in SyncLogEntry.objects.filter(Q(action__in=("skip", "error")) | Q(level="error"), run_id=run_id)
        .exclude(action="run")
        .order_by("id")
        .values("action", "message", "detail", "outlook_id", "sf_id")[:limit]
    ]


# ---------------------------------------------------------------- support logs (issue 13)
# Reads of the run history, the log viewer, the item trace and the support bundle.
# Every read takes the org and, for a member, their own membership: an id from
# another org (or another member, for a member) is simply not in the queryset.

LOG_PAGE_SIZE = 50
RUN_PAGE_SIZE = 30
TRACE_LIMIT = 500
TRACE_CANDIDATES = 20
OUTLOOK_WEB = "https://outlook.office.com"
SF_OBJECT = {"calendar": "Event", "contacts": "Contact", "tasks": "Task"}


@dataclass(frozen=True)
class LogQuery:
    """The log viewer's filters, already validated (forms_logs.LogFilterForm)."""

    membership_id: int | None = None
    kind: str = ""
    run_id: int | None = None
    level: str = ""
    action: str = ""
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive
    text: str = ""


@dataclass(frozen=True)
class LogRow:
    entry: object
    member_email: str
    outlook_url: str
    salesforce_url: str
    trace_item: str


@dataclass(frozen=True)
class LogPage:
    rows: list[LogRow]
    next_cursor: str | None


def _cursor_encode(stamp: datetime, pk: int) -> str:
    raw = f"{stamp.isoformat()}|{pk}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def cursor_decode(cursor: str | None) -> tuple[datetime, int] | None:
    """A keyset position from the URL, or None when absent or not one of ours."""
    if not cursor or len(cursor) > 200:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, pk = raw.rsplit("|", 1)
        parsed = datetime.fromisoformat(stamp)
        # In UTC, as the database compares it: a forged offset at year 1 or 9999 overflows here,
        # not in the database driver.
        parsed = (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
        position = int(pk)
    except (ValueError, OverflowError, binascii.Error, UnicodeDecodeError):
        return None
    return (parsed, position) if 0 < position <= 2**63 - 1 else None


def _before(qs, field: str, position: tuple[datetime, int] | None):
    """Rows strictly older than `position` in (field, id) order. The plain `<=` bound
    is what the index range starts at; the OR only trims the rows of that instant, so
    a deep page costs what the first page costs."""
    if position is None:
        return qs
    stamp, pk = position
    return qs.filter(**{f"{field}__lte": stamp}).filter(
        Q(**{f"{field}__lt": stamp}) | Q(id__lt=pk)
    )


def log_entries_filtered(*, org, membership: Membership | None, q: LogQuery):
    """The org's entries (a member's own only, when `membership` is given) under `q`,
    newest first. Each filter is a column of the entry itself (no join)."""
    from .models import SyncLogEntry

    qs = SyncLogEntry.objects.filter(organization=org)
    if membership is not None:
        qs = qs.filter(membership=membership)
    elif q.membership_id:
        qs = qs.filter(membership_id=q.membership_id)
    if q.kind:
        qs = qs.filter(kind=q.kind)
    if q.run_id:
        qs = qs.filter(run_id=q.run_id)
    if q.level:
        qs = qs.filter(level=q.level)
    if q.action:
        qs = qs.filter(action=q.action)
    if q.since:
        qs = qs.filter(created_at__gte=q.since)
    if q.until:
        qs = qs.filter(created_at__lt=q.until)
    if q.text:
        # LIKE '%…%' on the lower-cased search text: the trigram GIN index on
        # PostgreSQL, a scan bounded by the org's retention elsewhere.
        qs = qs.filter(search_text__contains=q.text.lower())
    return qs.order_by("-created_at", "-id")


def outlook_web_url(kind: str, outlook_id: str) -> str:
    if not outlook_id:
        return ""
    if kind == "tasks":
        return f"https://to-do.office.com/tasks/id/{quote(outlook_id, safe='')}/details"
    path = "/calendar/item" if kind == "calendar" else "/people"
    return f"{OUTLOOK_WEB}/owa/?itemid={quote(outlook_id, safe='')}&exvsurl=1&path={path}"


def salesforce_record_url(kind: str, instance_url: str, sf_id: str) -> str:
    if not (instance_url and sf_id):
        return ""
    return f"{instance_url.rstrip('/')}/lightning/r/{SF_OBJECT.get(kind, 'Event')}/{sf_id}/view"


def _instance_urls(membership_ids) -> dict[int, str]:
    from connections.models import Connection

    return dict(
        Connection.objects.filter(membership_id__in=set(membership_ids), provider="salesforce")
        .exclude(sf_instance_url="")
        .values_list("membership_id", "sf_instance_url")
    )


def _emails_of(membership_ids) -> dict[int, str]:
    return dict(
        Membership.objects.filter(pk__in=set(membership_ids)).values_list("pk", "user__email")
    )


def log_rows(entries) -> list[LogRow]:
    """Entries with what their row shows: the member, both item links, the trace key.
    Two queries whatever the number of entries."""
    entries = list(entries)
    mids = {e.membership_id for e in entries if e.membership_id}
    urls = _instance_urls(mids) if mids else {}
    emails = _emails_of(mids) if mids else {}
    return [
        LogRow(
            entry=e,
            member_email=emails.get(e.membership_id, ""),
            outlook_url=outlook_web_url(e.kind, e.outlook_id),
            salesforce_url=salesforce_record_url(e.kind, urls.get(e.membership_id, ""), e.sf_id),
            trace_item=str(e.link_key) if e.link_key else (e.sf_id or e.outlook_id),
        )
        for e in entries
    ]


def log_page(
    *, org, membership: Membership | None, q: LogQuery, cursor: str | None = None,
    size: int = LOG_PAGE_SIZE,
) -> LogPage:
    """One page of the log viewer by keyset (created_at, id): never OFFSET."""
    qs = _before(log_entries_filtered(org=org, membership=membership, q=q), "created_at",
                 cursor_decode(cursor))
    entries = list(qs[: size + 1])
    more = len(entries) > size
    entries = entries[:size]
    nxt = _cursor_encode(entries[-1].created_at, entries[-1].pk) if more and entries else None
    return LogPage(rows=log_rows(entries), next_cursor=nxt)


def log_export_rows(*, org, membership: Membership | None, q: LogQuery, chunk: int = 2000):
    """Every filtered entry, newest first, read by keyset a chunk at a time (streamed
    CSV export: memory stays flat however many entries match)."""
    position = None
    while True:
        qs = _before(log_entries_filtered(org=org, membership=membership, q=q), "created_at",
                     position)
        entries = list(qs[:chunk])
        if not entries:
            return
        yield from log_rows(entries)
        if len(entries) < chunk:
            return
        position = (entries[-1].created_at, entries[-1].pk)


def log_members(*, org) -> list[Membership]:
    """The org's members for the viewer's member filter (an admin's choice)."""
    return list(
        Membership.objects.filter(organization=org).select_related("user").order_by("user__email")
    )


def log_actions() -> list[str]:
    """The actions an entry can carry (the viewer's action filter)."""
    return [
        "create", "update", "delete", "link", "conflict", "touch", "out_of_scope", "tombstone",
        "error", "skip", "stale", "run",
    ]


# ---- run history


@dataclass(frozen=True)
class RunPage:
    runs: list[SyncRun]
    next_cursor: str | None


def runs_visible(*, org, membership: Membership | None):
    qs = SyncRun.objects.filter(membership__organization=org)
    if membership is not None:
        qs = qs.filter(membership=membership)
    return qs


def run_history(
    *, org, membership: Membership | None, member_id: int | None = None, kind: str = "",
    status: str = "", trigger: str = "", cursor: str | None = None, size: int = RUN_PAGE_SIZE,
) -> RunPage:
    """Runs newest first by keyset on (started_at, id), with the member joined."""
    qs = runs_visible(org=org, membership=membership)
    if membership is None and member_id:
        qs = qs.filter(membership_id=member_id)
    if kind:
        qs = qs.filter(kind=kind)
    if status:
        qs = qs.filter(status=status)
    if trigger:
        qs = qs.filter(trigger=trigger)
    qs = _before(qs.select_related("membership__user").order_by("-started_at", "-id"),
                 "started_at", cursor_decode(cursor))
    runs = list(qs[: size + 1])
    more = len(runs) > size
    runs = runs[:size]
    nxt = _cursor_encode(runs[-1].started_at, runs[-1].pk) if more and runs else None
    return RunPage(runs=runs, next_cursor=nxt)


def run_visible_get(*, org, membership: Membership | None, run_id: int) -> SyncRun:
    """One run of the org (of the member, for a member); DoesNotExist otherwise."""
    return runs_visible(org=org, membership=membership).select_related("membership__user").get(
        pk=run_id
    )


def run_entries_after(*, run: SyncRun, after_id: int = 0, limit: int = 200) -> list[LogRow]:
    """A run's entries in the order written, after `after_id` (the live tail's position)."""
    from .models import SyncLogEntry

    entries = SyncLogEntry.objects.filter(run=run, id__gt=after_id).order_by("id")[:limit]
    return log_rows(entries)


# ---- item trace


@dataclass(frozen=True)
class TraceItem:
    link_key: str
    outlook_id: str
    sf_id: str
    title: str
    kind: str
    state: str = ""


def _trace_link_qs(org, membership):
    qs = SyncLink.objects.filter(membership__organization=org)
    return qs.filter(membership=membership) if membership is not None else qs


def trace_candidates(*, org, membership: Membership | None, q: str) -> list[TraceItem]:
    """Items that `q` names: our link key or either side's id exactly, else a title or
    e-mail in the log's search text (newest first, distinct items)."""
    from .models import SyncLogEntry

    q = (q or "").strip()
    if not q:
        return []
    links = _trace_link_qs(org, membership)
    by_id = Q(outlook_id=q) | Q(sf_id=q)
    key = _as_uuid(q)
    if key is not None:
        by_id |= Q(link_key=key)
    found = list(links.filter(by_id)[:TRACE_CANDIDATES])
    if found:
        titles = _titles_for([str(lk.link_key) for lk in found], org=org)
        return [
            TraceItem(str(lk.link_key), lk.outlook_id or "", lk.sf_id or "",
                      titles.get(str(lk.link_key), ""), lk.kind, lk.state)
            for lk in found
        ]
    entries = SyncLogEntry.objects.filter(organization=org)
    if membership is not None:
        entries = entries.filter(membership=membership)
    exact = entries.filter(Q(outlook_id=q) | Q(sf_id=q)).order_by("-id")[:1]
    rows = list(exact) or list(
        entries.filter(search_text__contains=q.lower()).exclude(action="run")
        .order_by("-created_at", "-id")[:200]
    )
    seen: dict[str, TraceItem] = {}
    for e in rows:
        key = str(e.link_key) if e.link_key else (e.sf_id or e.outlook_id)
        if key and key not in seen:
            seen[key] = TraceItem(str(e.link_key or ""), e.outlook_id, e.sf_id,
                                  (e.detail or {}).get("title", ""), e.kind)
        if len(seen) >= TRACE_CANDIDATES:
            break
    return list(seen.values())


def _as_uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def _titles_for(keys: list[str], *, org) -> dict[str, str]:
    from .models import SyncLogEntry

    out: dict[str, str] = {}
    for key, detail in (
        SyncLogEntry.objects.filter(organization=org, link_key__in=keys)
        .order_by("id").values_list("link_key", "detail")
    ):
        if (detail or {}).get("title"):
            out[str(key)] = detail["title"]
    return out


def trace_entries(*, org, membership: Membership | None, item: TraceItem) -> list[LogRow]:
    """Every entry about one item across runs, oldest first: by our key or either
    side's id (an item is logged by id before it has a key)."""
    from .models import SyncLogEntry

    which = Q()
    if item.link_key:
        which |= Q(link_key=item.link_key)
    if item.outlook_id:
        which |= Q(outlook_id=item.outlook_id)
    if item.sf_id:
        which |= Q(sf_id=item.sf_id)
    if not which:
        return []
    qs = SyncLogEntry.objects.filter(which, organization=org)
    if membership is not None:
        qs = qs.filter(membership=membership)
    return log_rows(qs.order_by("created_at", "id")[:TRACE_LIMIT])


# ---- attention (My sync card)


@dataclass(frozen=True)
class Attention:
    message: str
    kind: str
    run_id: int | None = None
    trace_item: str = ""


def attention_for(membership: Membership, *, failing_after: int = 3) -> list[Attention]:
    """What needs the member's eye: a kind whose last run failed or stopped, and items
    that failed `failing_after` runs in a row (with the item to trace). Four queries."""
    from .engine.kinds import KINDS

    out: list[Attention] = []
    latest = Subquery(
        SyncRun.objects.filter(membership=membership, kind=OuterRef("kind"))
        .exclude(status__in=("queued", "running"))
        .order_by("-started_at", "-id").values("pk")[:1]
    )
    last_runs = SyncRun.objects.filter(membership=membership, kind__in=list(KINDS),
                                       pk=latest).order_by("kind")
    for run in last_runs:
        if run.status in ("failed", "stopped"):
            label = dict(SyncRun._meta.get_field("kind").choices).get(run.kind, run.kind)
            out.append(Attention(
                message=f"Last {label.lower()} sync {run.get_status_display().lower()}: "
                        f"{run.error or 'see its log'}"[:300],
                kind=run.kind, run_id=run.pk,
            ))
    failing = list(
        SyncLink.objects.filter(membership=membership, state="error", attempts__gte=failing_after)
        .order_by("-updated_at")[:5]
    )
    titles = _titles_for([str(lk.link_key) for lk in failing], org=membership.organization_id)
    for lk in failing:
        name = titles.get(str(lk.link_key)) or "An item"
        out.append(Attention(
            message=f"“{name[:80]}” failed {lk.attempts} syncs in a row: {lk.last_error}"[:300],
            kind=lk.kind, trace_item=str(lk.link_key),
        ))
    return out


def runs_failed_recent_count(*, org, days: int = 7) -> int:
    """Failed or stopped runs of the org's members in the last `days` (dashboard panel)."""
    from django.utils import timezone

    since = timezone.now() - timedelta(days=days)
    return SyncRun.objects.filter(
        membership__organization=org, started_at__gte=since, status__in=("failed", "stopped")
    ).count()


def plan_applied_by(*, run: SyncRun) -> tuple[SyncRun | None, int]:
    """The plan this run applied, and how many of its items changed since the preview (left out)."""
    plan = SyncRun.objects.filter(applied_run=run, membership_id=run.membership_id).first()
    if plan is None:
        return None, 0
    return plan, PlannedChange.objects.filter(run=plan, status="stale").count()


def org_member(*, org, membership_id: int | None) -> Membership | None:
    """One member of `org` by id (None for another org's id), with the user joined."""
    if membership_id is None:
        return None
    return Membership.objects.select_related("user").filter(organization=org,
                                                           pk=membership_id).first()


def trace_policy_sources(*, membership: Membership | None, kind: str) -> dict[str, str]:
    """Where each of the member's settings comes from now ({name: "Locked by your
    organization" | "Organization default" | "Your setting"}), for the trace's rules."""
    from policy.selectors import policy_effective_for

    if membership is None or kind not in {"calendar", "contacts", "tasks"}:
        return {}
    eff = policy_effective_for(membership, kind)
    return {name: r.source_label for name, r in eff.items() if r is not None}


# ---- org admin dashboard: sync health per member (issue 14)
#
# Token and consent forecast, the rules used (documented on the dashboard too):
# - Microsoft: a refresh token lapses after 90 days without use (Microsoft identity
#   platform's default inactivity lifetime); every sync uses it, so the date is the last
#   use (or the connect) plus 90 days.
# - Salesforce: the connected app's Refresh Token Policy, set per org on the dashboard
#   settings or by the deployment (settings.SALESFORCE_REFRESH_TOKEN_POLICY / _DAYS):
#   "until revoked" (Salesforce's default: no date), "idle" (last use + N days) or
#   "absolute" (connect + N days).
# - A connection already marked "reconnect needed" or in error has stopped; a revoked
#   consent is a disconnected connection.

MS_REFRESH_IDLE_DAYS = 90
LAPSE_WARNING_DAYS = 7
FAILING_AFTER = 3
HEALTH_PAGE_SIZE = 50
_FAILED = ("failed", "stopped")
# Runs that synced (or tried to): previews and settings previews read only.
_SYNCING_PURPOSES = ("sync", "apply_plan", "rebuild")


@dataclass(frozen=True)
class ConnectionForecast:
    provider: str
    label: str
    connection: object | None
    lapses_at: datetime | None
    rule: str
    shared_with: str = ""

    @property
    def state(self) -> str:
        return self.connection.status if self.connection is not None else "none"

    @property
    def stopped(self) -> bool:
        """It no longer works: marked so by a failed refresh, or its forecast date passed."""
        if self.connection is None or self.state == "revoked":
            return False
        from django.utils import timezone

        return self.state in ("needs_reauth", "needs_consent", "error") or (
            self.lapses_at is not None and self.lapses_at <= timezone.now())

    @property
    def lapses_soon(self) -> bool:
        from django.utils import timezone

        return (not self.stopped and self.lapses_at is not None
                and self.lapses_at <= timezone.now() + timedelta(days=LAPSE_WARNING_DAYS))


@dataclass(frozen=True)
class KindHealth:
    kind: str
    label: str
    mode: str
    last_ok_at: datetime | None
    last_run: SyncRun | None
    failures_in_row: int
    errors_24h: int
    conflicts_24h: int
    next_run_at: datetime | None
    lock_overridden: tuple[str, ...] = ()

    @property
    def guard_waiting(self) -> bool:
        run = self.last_run
        return run is not None and run.status == "stopped" and run.error.startswith(
            "Stopped before deleting")


@dataclass(frozen=True)
class MemberSyncHealth:
    membership: Membership
    microsoft: ConnectionForecast
    salesforce: ConnectionForecast
    kinds: tuple[KindHealth, ...]
    reasons: tuple[str, ...]

    @property
    def needs_attention(self) -> bool:
        return bool(self.reasons)

    @property
    def never_synced(self) -> bool:
        return all(k.last_ok_at is None for k in self.kinds if k.mode != "off")

    @property
    def state(self) -> str:
        if self.reasons:
            return "attention"
        return "idle" if all(k.mode == "off" for k in self.kinds) else "healthy"

    @property
    def sort_key(self) -> tuple:
        return (0 if self.reasons else 1, self.membership.user.email.lower(), self.membership.pk)


@dataclass(frozen=True)
class HealthFilter:
    kind: str = ""
    state: str = ""  # attention | healthy | never_synced | reconnect
    role: str = ""


@dataclass(frozen=True)
class HealthPage:
    rows: list[MemberSyncHealth]
    next_cursor: str
    total: int
    attention: int


def sf_refresh_rule(org_settings) -> tuple[str, int]:
    from django.conf import settings

    policy = (getattr(org_settings, "sf_refresh_policy", "") or
              getattr(settings, "SALESFORCE_REFRESH_TOKEN_POLICY", "until_revoked"))
    days = (getattr(org_settings, "sf_refresh_days", None) or
            getattr(settings, "SALESFORCE_REFRESH_TOKEN_DAYS", 90))
    return policy, int(days)


def connection_forecast(conn, provider: str, *, sf_rule: tuple[str, int],
                        shared_with: str = "") -> ConnectionForecast:
    label = "Outlook" if provider == "microsoft" else "Salesforce"
    if conn is None or conn.status == "revoked":
        return ConnectionForecast(provider, label, conn, None, "Not connected", shared_with)
    base_use = conn.last_used_at or conn.connected_at
    if provider == "microsoft":
        lapses = base_use + timedelta(days=MS_REFRESH_IDLE_DAYS) if base_use else None
        rule = f"Microsoft: {MS_REFRESH_IDLE_DAYS} days without use"
    else:
        policy, days = sf_rule
        if policy == "idle":
            lapses, rule = (base_use + timedelta(days=days) if base_use else None,
                            f"Salesforce: {days} days without use")
        elif policy == "absolute":
            lapses, rule = (conn.connected_at + timedelta(days=days) if conn.connected_at else None,
                            f"Salesforce: {days} days after connecting")
        else:
            lapses, rule = None, "Salesforce: valid until revoked"
    return ConnectionForecast(provider, label, conn, lapses, rule, shared_with)


def _reasons(microsoft, salesforce, kinds) -> tuple[str, ...]:
    out = []
    for f in (microsoft, salesforce):
        if f.stopped:
            out.append(f"Needs to reconnect {f.label}")
        elif f.lapses_soon:
            out.append(f"{f.label} sign-in lapses on {f.lapses_at:%d %b %Y}")
        if f.shared_with:
            out.append(f"{f.label} account also connected by {f.shared_with}")
    reconnect = microsoft.stopped or salesforce.stopped
    for k in kinds:
        # Runs stopped by a refused sign-in are the reconnect's consequence, said once above.
        if k.failures_in_row >= FAILING_AFTER and not reconnect:
            out.append(f"{k.label}: {k.failures_in_row} failed runs in a row")
        if k.guard_waiting:
            out.append(f"{k.label}: mass-delete guard waiting for a confirmation")
        if k.lock_overridden:
            out.append(f"{k.label}: own setting against a lock ({', '.join(k.lock_overridden)})")
    active = [k for k in kinds if k.mode != "off"]
    if active and all(k.last_ok_at is None for k in active):
        out.append("Never synced")
    return tuple(out)


def org_sync_health(*, org, memberships: list[Membership] | None = None) -> list[MemberSyncHealth]:
    """Every active member's sync health (or only `memberships`'), sorted attention first.

    Eleven queries whatever the number of members: each source is read once for the org
    and joined in Python (pinned in tests/syncengine/test_dashboard_health.py).
    """
    if memberships is None:
        memberships = list(Membership.objects.active().filter(organization=org)
                           .select_related("user").order_by("user__email"))
    return sync_health_many(memberships)


def sync_health_many(memberships: list[Membership]) -> list[MemberSyncHealth]:
    """`org_sync_health` for members of any orgs (the staff directory): ten queries."""
    from django.utils import timezone

    from connections.models import Connection
    from connections.selectors import connections_shared
    from policy import registry
    from policy.models import OrgPolicy, UserPolicy
    from policy.selectors import resolve

    from .engine.kinds import KINDS
    from .models import OrgSyncSettings, SyncLogEntry

    ids = [m.pk for m in memberships]
    org_ids = {m.organization_id for m in memberships}
    if not ids:
        return []
    t = timezone.now()
    conns = list(Connection.objects.filter(membership_id__in=ids))
    shared = connections_shared(conns)
    by_member: dict[int, dict] = {}
    for c in conns:
        by_member.setdefault(c.membership_id, {})[c.provider] = c
    leases = {(lease.membership_id, lease.kind): lease
              for lease in SyncLease.objects.filter(membership_id__in=ids)}
    syncing = SyncRun.objects.filter(purpose__in=_SYNCING_PURPOSES, dry_run=False).exclude(
        status__in=("queued", "running", "planned"))
    agg = _latest_runs(syncing, ids, KINDS)
    last_runs = {r.pk: r for r in SyncRun.objects.filter(pk__in=[a["last_id"] for a in agg.values()])
                 .only("pk", "status", "error", "finished_at", "started_at", "trigger", "kind")}
    # Failed runs after the last success (of the last 30 days), counted per (member, kind)
    # in Python: two integers per failed run, so the read stays small. Each pair's range starts
    # at its last success, so the read follows the failures, never the run history.
    fails: dict[tuple, int] = {}
    since = t - timedelta(days=30)
    ranges = Q()
    for (mid, kind), a in agg.items():
        if a["last_id"] != a["last_ok_id"]:
            ranges |= Q(membership_id=mid, kind=kind, started_at__gte=max(since, a["last_ok_started"] or since))
    failed = syncing.filter(ranges, status__in=_FAILED).values_list("membership_id", "kind", "pk") if ranges else ()
    for mid, kind, pk in failed:
        if pk > (agg[(mid, kind)]["last_ok_id"] or 0):
            fails[(mid, kind)] = fails.get((mid, kind), 0) + 1
    logs = {(r["membership_id"], r["kind"]): r for r in SyncLogEntry.objects.filter(
        organization_id__in=org_ids, membership_id__in=ids, created_at__gte=t - timedelta(days=1))
        .filter(Q(level="error") | Q(action="conflict")).values("membership_id", "kind").annotate(
        errors=Count("pk", filter=Q(level="error")), conflicts=Count("pk", filter=Q(action="conflict")))}
    org_policies = {(p.organization_id, p.kind): p
                    for p in OrgPolicy.objects.filter(organization_id__in=org_ids)}
    user_policies = {(p.membership_id, p.kind): p
                     for p in UserPolicy.objects.filter(membership_id__in=ids)}
    org_settings = {s.organization_id: s
                    for s in OrgSyncSettings.objects.filter(organization_id__in=org_ids)}

    def holder_name(conn, org_id) -> str:
        other = shared.get(conn.pk) if conn is not None else None
        if other is None:
            return ""
        if other.membership.organization_id != org_id:
            return "a member of another organization"
        return other.membership.user.email

    out = []
    for m in memberships:
        mine = by_member.get(m.pk, {})
        ms, sf = mine.get("microsoft"), mine.get("salesforce")
        sf_rule = sf_refresh_rule(org_settings.get(m.organization_id))
        microsoft = connection_forecast(ms, "microsoft", sf_rule=sf_rule,
                                        shared_with=holder_name(ms, m.organization_id))
        salesforce = connection_forecast(sf, "salesforce", sf_rule=sf_rule,
                                         shared_with=holder_name(sf, m.organization_id))
        kinds = []
        for kind in KINDS:
            op = org_policies.get((m.organization_id, kind)) or OrgPolicy.with_defaults(
                organization_id=m.organization_id, kind=kind)
            up = user_policies.get((m.pk, kind))
            overrides = up.overrides() if up is not None else {}
            mode = resolve(kind=kind, org_values=op.values(), locked=op.locked,
                           user_values=overrides)["mode"].value
            a = agg.get((m.pk, kind)) or {}
            lg = logs.get((m.pk, kind)) or {}
            lease = leases.get((m.pk, kind))
            kinds.append(KindHealth(
                kind=kind, label=registry.KIND_LABELS[kind], mode=mode,
                last_ok_at=a.get("last_ok_at"), last_run=last_runs.get(a.get("last_id")),
                failures_in_row=fails.get((m.pk, kind), 0), errors_24h=lg.get("errors", 0),
                conflicts_24h=lg.get("conflicts", 0),
                next_run_at=lease.next_run_at if lease is not None and mode in ("auto", "snaprecord")
                and not lease.auto_paused else None,
                lock_overridden=tuple(sorted(set(overrides) & op.locked)),
            ))
        out.append(MemberSyncHealth(m, microsoft, salesforce, tuple(kinds),
                                    _reasons(microsoft, salesforce, kinds)))
    return sorted(out, key=lambda r: r.sort_key)


def _latest_runs(syncing, ids: list[int], kinds) -> dict[tuple[int, str], dict]:
    """Per (member, kind) that ever ran: its last run's id and its last success's id, start
    and finish. One query of LIMIT-1 lookups on the (member, kind, started_at) index, so its
    cost follows the members asked about, not how many runs they ever made (an aggregate over
    the history did, after every run of the alerts check)."""

    def latest(kind: str, field: str, **flt):
        return Subquery(syncing.filter(membership_id=OuterRef("pk"), kind=kind, **flt)
                        .order_by("-started_at", "-pk").values(field)[:1])

    columns = {}
    for i, kind in enumerate(kinds):
        columns[f"k{i}_last"] = latest(kind, "pk")
        columns[f"k{i}_ok"] = latest(kind, "pk", status="succeeded")
        columns[f"k{i}_ok_started"] = latest(kind, "started_at", status="succeeded")
        columns[f"k{i}_ok_at"] = latest(kind, "finished_at", status="succeeded")
    out: dict[tuple[int, str], dict] = {}
    for row in Membership.objects.filter(pk__in=ids).values("pk", **columns):
        for i, kind in enumerate(kinds):
            if row[f"k{i}_last"] is not None:
                out[(row["pk"], kind)] = {
                    "last_id": row[f"k{i}_last"], "last_ok_id": row[f"k{i}_ok"],
                    "last_ok_started": row[f"k{i}_ok_started"], "last_ok_at": row[f"k{i}_ok_at"]}
    return out


def health_matches(row: MemberSyncHealth, f: HealthFilter) -> bool:
    if f.role and row.membership.role != f.role:
        return False
    if f.kind and all(k.mode == "off" for k in row.kinds if k.kind == f.kind):
        return False
    if f.state == "attention":
        return row.needs_attention
    if f.state == "healthy":
        return not row.needs_attention
    if f.state == "never_synced":
        return row.never_synced
    if f.state == "reconnect":
        return row.microsoft.stopped or row.salesforce.stopped
    return True


def health_cursor_encode(row: MemberSyncHealth) -> str:
    attention, email, pk = row.sort_key
    raw = f"{attention}|{pk}|{email}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def health_cursor_decode(cursor: str | None) -> tuple | None:
    """The keyset position after which a page starts; None for a missing or broken cursor."""
    if not cursor or len(cursor) > 400:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        attention, pk, email = raw.split("|", 2)
        return (int(attention), email, int(pk))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None


def health_page(*, org, f: HealthFilter, cursor: str | None = None,
                size: int = HEALTH_PAGE_SIZE) -> HealthPage:
    """One page of the health table by keyset on (attention first, e-mail, id)."""
    rows = [r for r in org_sync_health(org=org) if health_matches(r, f)]
    after = health_cursor_decode(cursor)
    start = [r for r in rows if after is None or r.sort_key > after]
    page = start[:size]
    more = len(start) > size
    return HealthPage(rows=page, next_cursor=health_cursor_encode(page[-1]) if more and page else "",
                      total=len(rows), attention=sum(r.needs_attention for r in rows))


# ---- org admin dashboard: charts (30 days)


@dataclass(frozen=True)
class DayPoint:
    day: object  # date
    runs: dict  # kind -> runs that synced
    errors: dict  # kind -> failed or stopped runs
    sf_requests: int


def org_sync_days(*, org, days: int = 30) -> list[DayPoint]:
    """Runs, failed runs and Salesforce requests per UTC day and kind: one aggregate query."""
    from django.db.models import Sum
    from django.db.models.functions import TruncDate

    from .engine.kinds import KINDS
    from .governor import day_start

    first = day_start() - timedelta(days=days - 1)
    rows = (SyncRun.objects.filter(membership__organization=org, started_at__gte=first)
            .annotate(d=TruncDate("started_at", tzinfo=UTC)).values("d", "kind")
            .annotate(n=Count("pk", filter=Q(purpose__in=_SYNCING_PURPOSES)),
                      failed=Count("pk", filter=Q(status__in=_FAILED)),
                      sf=Sum("api_salesforce")))
    by_day: dict = {}
    for r in rows:
        by_day.setdefault(r["d"], []).append(r)
    out = []
    for i in range(days):
        day = (first + timedelta(days=i)).date()
        found = by_day.get(day, [])
        out.append(DayPoint(
            day=day,
            runs={k: sum(r["n"] for r in found if r["kind"] == k) for k in KINDS},
            errors={k: sum(r["failed"] for r in found if r["kind"] == k) for k in KINDS},
            sf_requests=sum(r["sf"] or 0 for r in found),
        ))
    return out


def alerts_open(*, org, membership: Membership | None = None, limit: int = 10) -> list:
    """Unresolved alerts for the in-app banner: the member's own, or the whole org's."""
    from .models import SyncAlert

    qs = SyncAlert.objects.filter(organization=org, resolved_at__isnull=True)
    if membership is not None:
        qs = qs.filter(membership=membership)
    return list(qs.select_related("membership__user").order_by("-created_at", "-pk")[:limit])


def org_sync_settings(*, org):
    """The org's dashboard settings, or an unsaved row with the defaults."""
    from .models import OrgSyncSettings

    return OrgSyncSettings.objects.filter(organization=org).first() or OrgSyncSettings(organization=org)


@dataclass(frozen=True)
class OrgSummary:
    members: int
    attention: int
    budget: object  # governor.Budget


def org_summaries(org_ids: list[int]) -> dict[int, OrgSummary]:
    """The staff directory's health summary of each org: members, needing attention, API use.
    A constant number of queries for a whole page of orgs."""
    from .governor import budgets_for

    members = list(Membership.objects.active().filter(organization_id__in=org_ids)
                   .select_related("user"))
    health = sync_health_many(members)
    budgets = budgets_for(org_ids)
    by_org: dict[int, list] = {}
    for h in health:
        by_org.setdefault(h.membership.organization_id, []).append(h)
    out = {}
    for oid in org_ids:
        rows = by_org.get(oid, [])
        out[oid] = OrgSummary(members=len(rows), attention=sum(h.needs_attention for h in rows),
                              budget=budgets[oid])
    return out
