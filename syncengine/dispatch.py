"""The minute dispatcher: find what is due through the index, claim it, enqueue it (DESIGN §7).

Cost follows what is due, not the customer base:

- `SyncLease.next_run_at` (indexed) is the schedule. NULL means "not scheduled"
  (mode Manual or Off, or Auto before the first reviewed sync).
- It is kept up to date by a *reconciliation* at the start of each tick that only
  reads rows changed since the previous tick: user and org policy rows (their
  `updated_at`), new memberships, and runs finished since then (a first reviewed
  sync lifts the "First Auto needs a review" gate). We chose this over a hook
  called from the policy services because every writer of a policy row (the
  services, the admin, a shell, a data import) bumps `updated_at`, and `policy`
  keeps knowing nothing of the engine. The first tick, with no watermark yet,
  reconciles everyone once.
- Every due row is checked again when it is claimed (mode, pause, time window,
  the review gate, the org's API budget), so a missed change costs one extra
  look, never a wrong run: ineligible rows are parked (NULL) or pushed to when
  they may run (the next window opening, tomorrow at the budget cap).

Claiming takes the per-tick budget in rounds ranked per organization (each org's
oldest due row first, then each org's second, ...), so one org's 5,000 due
members do not starve another's 5. On PostgreSQL the rows are locked with
`SELECT … FOR UPDATE SKIP LOCKED`, so concurrent dispatchers split the work
without waiting for each other; elsewhere one conditional UPDATE claims them.
Either way the claim writes a holder unique to this tick, so two dispatchers can
never both start the same (member, kind).

The budget (`tick_budget`): what the workers measurably get through in a minute (the
runs finished in the last five minutes; the settings only before there is any history)
minus what already waits in the run queue, never below a quarter of it, so the queue
holds about a minute of work. Whatever is left due waits for the next tick, oldest
first, so a crowd due in the same minute is spread over the minutes the workers need,
and `sync_schedule_next` adds a little jitter so that cohort drifts apart.

The tick itself runs in a qcluster of its own when `SYNC_DISPATCH_CLUSTER` names one
(`tasks.schedule_ensure` points the schedule at it): its broker queue holds only ticks,
so a backlog of runs never delays the next tick. The runs it claims go to the site's
run queue (`tasks.run_queue`), named explicitly.
"""

from __future__ import annotations

import logging
import uuid
import zoneinfo
from datetime import datetime, time, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import CharField, F, Q, Value, Window
from django.db.models.functions import Cast, Concat, RowNumber

logger = logging.getLogger(__name__)

STATE_NAME = "dispatch"
ELIGIBLE_MODES = ("auto", "snaprecord")
# A policy saved in a transaction that commits after our read still gets seen next tick.
RECONCILE_OVERLAP = timedelta(minutes=5)
CHUNK = 500
MAX_ROUNDS = 3
# How far back the budget looks at finished runs (tick_budget).
THROUGHPUT_WINDOW = timedelta(minutes=5)


def _free(t):
    return Q(holder="") | Q(expires_at__lt=t) | Q(expires_at__isnull=True)


def _due(t):
    """Due and free, or held by a claim whose lease expired (its worker died: due again).

    A claim moves `next_run_at` to its lease's expiry, so the moment between a finished run
    releasing its lease and the task writing the next due time (`sync_schedule_next`) is not
    "due and free": a tick in that moment started the same run a second time (seen by
    bench/scale_bench.py as a run straight after another, before its due time)."""
    return (Q(next_run_at__lte=t) & _free(t)) | (~Q(holder="") & Q(expires_at__lt=t))


def _fallback_capacity() -> int:
    """Runs a minute before there is any history: the settings' figure."""
    capacity = int(getattr(settings, "SYNC_DISPATCH_CAPACITY", 0) or 0)
    if capacity <= 0:
        capacity = _workers() * int(getattr(settings, "SYNC_RUNS_PER_WORKER_MINUTE", 6))
    return max(1, capacity)


def _workers() -> int:
    """Run workers of the site: Q_WORKERS × SYNC_CLUSTERS (run qclusters on all machines)."""
    q = getattr(settings, "Q_CLUSTER", {})
    return max(1, int(q.get("workers", 2)) * int(getattr(settings, "SYNC_CLUSTERS", 1)))


def run_queue_size() -> int:
    """Tasks waiting in the run queue (not the dispatcher's own), 0 if the broker cannot say."""
    from django_q.brokers import get_broker

    from .tasks import run_queue

    try:
        return int(get_broker(run_queue()).queue_size() or 0)
    except Exception:  # a broker fault must not stop the schedule; the claim is still exclusive
        logger.exception("dispatcher: broker queue size unavailable")
        return 0


def measured_throughput(t: datetime) -> tuple[int, float, float]:
    """(runs finished, minutes they span, their run seconds) over the last THROUGHPUT_WINDOW.

    One aggregate over the `finished_at` index, whatever the size of the history. Every kind
    of run counts (manual runs and previews take a worker too), but not rows that finished the
    instant they started: they took no worker (history written in bulk, e.g. an import or
    bench/scale_bench.py's seed of reviewed syncs, which made a first tick claim all 600 due
    runs at once). The span starts at the
    window's start, or later when the first of those runs started later (a cluster that came
    up two minutes ago has two minutes of history, not five), and is at least a minute."""
    from django.db.models import Count, DurationField, ExpressionWrapper, Min, Sum

    from .models import SyncRun

    since = t - THROUGHPUT_WINDOW
    row = SyncRun.objects.filter(finished_at__gte=since, finished_at__lte=t, finished_at__gt=F("started_at")).aggregate(
        n=Count("pk"), first=Min("started_at"),
        busy=Sum(ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())))
    n = int(row["n"] or 0)
    start = max(since, row["first"]) if row["first"] else since
    minutes = max(1.0, (t - start).total_seconds() / 60)
    busy = row["busy"].total_seconds() if row["busy"] else 0.0
    return n, minutes, busy


def tick_budget(t: datetime | None = None) -> int:
    """How many runs one tick may start: what the workers measurably get through in a minute,
    less what already waits in the run queue (so the queue holds about a minute of work).

    The capacity is the larger of two measurements over the runs finished in the last
    THROUGHPUT_WINDOW (`measured_throughput`, one indexed query):

    - the runs finished per minute: what the workers did. While they are all busy that is
      what they can do, whatever the settings guessed;
    - the workers (Q_WORKERS × SYNC_CLUSTERS) over the measured time a run takes
      (workers × 60 s ÷ mean run seconds): what they can do when they had room, so a crowd
      coming due after a quiet hour starts at the workers' pace, not at the quiet hour's.

    No run finished in the window (a new site, or every worker stopped): the settings.
    Never below a quarter of the capacity: a backlog (or tasks nobody will consume) slows the
    schedule down but never stops it; with that floor a queue longer than a minute still
    shrinks each minute (the workers take a capacity's worth, the tick adds a quarter)."""
    from .engine.run import now

    t = t or now()
    queued = run_queue_size()
    n, minutes, busy = measured_throughput(t)
    if n == 0:
        capacity = float(_fallback_capacity())
    else:
        capacity = n / minutes
        if busy > 0:
            capacity = max(capacity, _workers() * 60 * n / busy)
    cap = max(1, round(capacity))
    return max(cap - queued, max(1, cap // 4))


# ---------------------------------------------------------------- reconciliation


def _changed_pairs(since: datetime | None) -> dict[str, set[int]] | None:
    """(kind -> member ids) whose schedule may have changed since `since`; None: everyone."""
    from connections.models import Connection
    from orgs.models import Membership
    from policy.models import OrgPolicy, UserPolicy

    from .engine.kinds import KINDS
    from .models import SyncRun
    from .selectors import COMPLETED_SYNC

    if since is None:
        return None
    out: dict[str, set[int]] = {k: set() for k in KINDS}
    for mid, kind in UserPolicy.objects.filter(updated_at__gte=since).values_list("membership_id", "kind"):
        out[kind].add(mid)
    org_kinds = list(OrgPolicy.objects.filter(updated_at__gte=since).values_list("organization_id", "kind"))
    if org_kinds:
        orgs = {o for o, _ in org_kinds}
        by_org: dict[int, list[int]] = {}
        for mid, org in Membership.objects.filter(organization_id__in=orgs, is_active=True).values_list(
                "pk", "organization_id"):
            by_org.setdefault(org, []).append(mid)
        for org, kind in org_kinds:
            out[kind].update(by_org.get(org, ()))
    for mid in Membership.objects.filter(created_at__gte=since, is_active=True).values_list("pk", flat=True):
        for kind in KINDS:
            out[kind].add(mid)
    finished = (SyncRun.objects.filter(finished_at__gte=since, **COMPLETED_SYNC).exclude(trigger="snaprecord")
                .values_list("membership_id", "kind").distinct())
    for mid, kind in finished:
        out[kind].add(mid)
    # Connecting or disconnecting an account starts or parks the member's schedule.
    for mid in Connection.objects.filter(updated_at__gte=since).values_list("membership_id", flat=True):
        for kind in KINDS:
            out[kind].add(mid)
    return out


def _eligible(members, kind: str) -> tuple[dict[int, object], set[int]]:
    """Effective policies of `members` for `kind`, and those the dispatcher may start
    (Auto or SnapRecord; Auto only after a completed sync: "First Auto needs a review";
    either only with both accounts connected: a member who never connected, or
    disconnected, would get a stopped run every interval and an attention flag)."""
    from connections.models import Connection, Status
    from policy.selectors import policy_effective_for_many

    from .selectors import members_with_completed_sync

    policies = policy_effective_for_many(members, kind)
    providers: dict[int, set[str]] = {}
    for mid, provider in (Connection.objects.filter(membership_id__in=list(policies))
                          .exclude(status=Status.REVOKED).values_list("membership_id", "provider")):
        providers.setdefault(mid, set()).add(provider)
    modes = {mid: eff.mode.value for mid, eff in policies.items()
             if providers.get(mid, set()) >= {"microsoft", "salesforce"}}
    auto = [mid for mid, mode in modes.items() if mode == "auto"]
    reviewed = members_with_completed_sync(kind=kind, membership_ids=auto) if auto else set()
    ok = {mid for mid, mode in modes.items()
          if mode == "snaprecord" or (mode == "auto" and mid in reviewed)}
    return policies, ok


def reconcile(*, since: datetime | None, t: datetime) -> int:
    """Bring `next_run_at` up to date for what changed since `since`; returns rows looked at."""
    from orgs.models import Membership

    from .engine.kinds import KINDS
    from .models import SyncLease

    changed = _changed_pairs(since)
    looked = 0
    for kind in KINDS:
        if changed is None:
            ids_iter = Membership.objects.filter(is_active=True).order_by("pk").values_list("pk", flat=True)
            ids = list(ids_iter)
        else:
            ids = sorted(changed[kind])
        for i in range(0, len(ids), CHUNK):
            members = list(Membership.objects.filter(pk__in=ids[i:i + CHUNK], is_active=True))
            looked += len(members)
            _reconcile_chunk(members, kind, t, SyncLease)
    return looked


def _reconcile_chunk(members, kind, t, SyncLease) -> None:
    if not members:
        return
    policies, ok = _eligible(members, kind)
    ids = [m.pk for m in members]
    parked = [mid for mid in ids if mid not in ok]
    if parked:
        SyncLease.objects.filter(kind=kind, membership_id__in=parked, next_run_at__isnull=False).update(
            next_run_at=None)
    if not ok:
        return
    leases = dict(SyncLease.objects.filter(kind=kind, membership_id__in=ok).values_list(
        "membership_id", "next_run_at"))
    SyncLease.objects.bulk_create(
        [SyncLease(membership_id=mid, kind=kind, next_run_at=t) for mid in ok if mid not in leases],
        ignore_conflicts=True)
    SyncLease.objects.filter(kind=kind, membership_id__in=ok, next_run_at__isnull=True).update(next_run_at=t)
    # A shorter frequency takes effect now, not after the old, longer interval.
    by_freq: dict[int, list[int]] = {}
    for mid, at in leases.items():
        freq = _frequency(policies[mid])
        if at is not None and at > t + timedelta(minutes=freq):
            by_freq.setdefault(freq, []).append(mid)
    for freq, mids in by_freq.items():
        SyncLease.objects.filter(kind=kind, membership_id__in=mids).update(
            next_run_at=t + timedelta(minutes=freq))


def _frequency(eff, default: int = 30) -> int:
    r = getattr(eff, "frequency_minutes", None)
    return int(getattr(r, "value", default) or default)


# ---------------------------------------------------------------- claiming


def _next_window_opening(eff, t: datetime) -> datetime | None:
    """When the member's time-of-day window opens next (None: no window, or open now)."""
    from .tasks import _in_time_window

    if _in_time_window(eff, t):
        return None
    try:
        tz = zoneinfo.ZoneInfo(eff.time_zone or "UTC")
    except zoneinfo.ZoneInfoNotFoundError:
        tz = zoneinfo.ZoneInfo("UTC")
    local = t.astimezone(tz)
    start: time = eff.window_start.value
    opening = datetime.combine(local.date(), start, tzinfo=tz)
    if opening <= local:
        opening = datetime.combine(local.date() + timedelta(days=1), start, tzinfo=tz)
    return opening


def _candidates(t: datetime, n: int) -> list[tuple[int, int, str, int]]:
    """Up to `n` free due rows, round-robin over organizations: (lease pk, member, kind, org)."""
    from .models import SyncLease

    rows = (
        SyncLease.objects.filter(auto_paused=False, membership__is_active=True)
        .filter(_due(t))
        .annotate(org=F("membership__organization_id"),
                  turn=Window(RowNumber(), partition_by=[F("membership__organization_id")],
                              order_by=[F("next_run_at").asc(), F("pk").asc()]))
        .order_by("turn", "next_run_at", "pk")
        .values_list("pk", "membership_id", "kind", "org")[:n]
    )
    return list(rows)


def _claim(pks: list[int], t: datetime, tick: str) -> set[int]:
    """Take the leases of `pks` that are still free; returns the pks this tick now holds."""
    from .engine.run import LEASE_TTL
    from .models import SyncLease

    holder = Concat(Value(f"dispatch-{tick}-"), Cast("pk", CharField()))
    if connection.vendor == "postgresql":
        with transaction.atomic():
            # Rows another dispatcher (or a starting run) holds locked are skipped, not waited on.
            got = list(SyncLease.objects.select_for_update(skip_locked=True)
                       .filter(pk__in=pks, auto_paused=False).filter(_due(t))
                       .values_list("pk", flat=True))
            if got:
                SyncLease.objects.filter(pk__in=got).update(holder=holder, expires_at=t + LEASE_TTL,
                                                            next_run_at=t + LEASE_TTL)
        return set(got)
    SyncLease.objects.filter(pk__in=pks, auto_paused=False).filter(_due(t)).update(
        holder=holder, expires_at=t + LEASE_TTL, next_run_at=t + LEASE_TTL)
    return set(SyncLease.objects.filter(pk__in=pks, holder__startswith=f"dispatch-{tick}-")
               .values_list("pk", flat=True))


def _sort_out(cands, t: datetime):
    """Split candidates into those to start (with their trigger) and fix the others' schedule."""
    from orgs.models import Membership

    from .governor import budgets_for, day_start
    from .models import SyncLease

    members = {m.pk: m for m in Membership.objects.filter(pk__in={c[1] for c in cands})}
    budgets = budgets_for({c[3] for c in cands}, now=t)
    start: list[tuple[int, int, str, str]] = []
    by_kind: dict[str, list] = {}
    for c in cands:
        by_kind.setdefault(c[2], []).append(c)
    for kind, rows in by_kind.items():
        policies, ok = _eligible([members[c[1]] for c in rows if c[1] in members], kind)
        parked, tomorrow, later = [], [], {}
        for pk, mid, _kind, org in rows:
            if mid not in ok:
                parked.append(pk)
                continue
            opening = _next_window_opening(policies[mid], t)
            if opening is not None:
                later.setdefault(opening, []).append(pk)
            elif budgets[org].held:
                # At the org's API budget cap auto runs wait for the next day (the pages say so).
                tomorrow.append(pk)
            else:
                start.append((pk, mid, kind, policies[mid].mode.value))
        if parked:
            SyncLease.objects.filter(pk__in=parked).update(next_run_at=None)
        if tomorrow:
            SyncLease.objects.filter(pk__in=tomorrow).update(next_run_at=day_start(t) + timedelta(days=1))
            logger.info("API budget: %d %s auto sync(s) wait for tomorrow", len(tomorrow), kind)
        for opening, pks in later.items():
            SyncLease.objects.filter(pk__in=pks).update(next_run_at=opening)
    return start


def dispatch(*, budget: int | None = None) -> int:
    """One tick: reconcile, claim up to `budget` due runs fairly, enqueue them; returns claims."""
    from django_q.tasks import async_task

    from .engine.run import now
    from .models import DispatcherState
    from .tasks import RUN_TIMEOUT, run_queue

    t = now()
    state, _ = DispatcherState.objects.get_or_create(name=STATE_NAME)
    since = state.reconciled_until - RECONCILE_OVERLAP if state.reconciled_until else None
    reconcile(since=since, t=t)
    budget = tick_budget(t) if budget is None else budget
    queue = run_queue()
    tick = uuid.uuid4().hex
    claimed = 0
    for _round in range(MAX_ROUNDS):
        if claimed >= budget:
            break
        cands = _candidates(t, budget - claimed)
        if not cands:
            break
        start = _sort_out(cands, t)
        got = _claim([s[0] for s in start], t, tick) if start else set()
        for pk, mid, kind, trigger in start:
            if pk in got:
                claimed += 1
                async_task("syncengine.tasks.run_sync", mid, kind, trigger, f"dispatch-{tick}-{pk}",
                           task_name=f"sync-{kind}-{mid}", timeout=RUN_TIMEOUT, cluster=queue)
        if len(start) == len(cands):
            break  # every candidate was startable: no parked row left room for more
    DispatcherState.objects.filter(pk=state.pk).update(last_tick_at=t, reconciled_until=t, last_claimed=claimed)
    if claimed:
        logger.info("dispatcher: %d run(s) claimed (budget %d)", claimed, budget)
    return claimed
