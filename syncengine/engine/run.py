"""One run for one member and kind: lease, fetch, decide, plan, apply, cursors, log.

`run_sync(membership, kind, trigger=...)` is the single entry point (the
command, the django-q task, SnapRecord and the tests all call it) and returns
a `RunResult` with counts per action and side and API requests per side.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ..models import (
    PENDING_STATES,
    LinkState,
    PlannedChange,
    PlanStatus,
    RunStatus,
    SyncCursor,
    SyncLease,
    SyncLink,
    SyncLogEntry,
    SyncRun,
)
from .apply import Applier
from .fetch import (
    CursorIn,
    Fetched,
    confirm_outlook,
    confirm_salesforce,
    fetch_outlook,
    fetch_salesforce,
)
from .kinds import CALENDAR, CONTACTS, outlook_item
from .mapping import canonical_hash
from .plan import decide, mass_delete_stop
from .records import OUTLOOK, SALESFORCE, Counts, Decision, EnginePolicy, Item, LinkView, Write
from .remote import OutlookSide, SalesforceSide

LEASE_TTL = timedelta(minutes=30)
SWEEP_LIMIT = 1000
LOG_FLUSH = 1000


def now() -> datetime:
    """The engine's clock (tests freeze or advance `django.utils.timezone.now`)."""
    return timezone.now()


class RunStopped(Exception):
    """The run must stop and say why (auth, daily limit, mass-delete guard)."""

    def __init__(self, message: str, *, status: str = RunStatus.STOPPED):
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass
class RunResult:
    run_id: int | None
    status: str
    counts: Counts = field(default_factory=Counts)
    api_requests: dict = field(default_factory=lambda: {OUTLOOK: 0, SALESFORCE: 0})
    message: str = ""
    decisions: list[Decision] = field(default_factory=list, repr=False)

    @property
    def writes(self) -> int:
        return self.counts.writes

    def as_dict(self) -> dict:
        c = self.counts
        return {
            "run_id": self.run_id,
            "status": self.status,
            "created": c.created,
            "updated": c.updated,
            "deleted": c.deleted,
            "linked": c.linked,
            "conflicts": c.conflicts,
            "errors": c.errors,
            "out_of_scope": c.out_of_scope,
            "tombstoned": c.tombstoned,
            "skipped": c.skipped,
            "api_requests": dict(self.api_requests),
            "message": self.message,
        }


# ---------------------------------------------------------------- policy


def engine_policy(membership, kind: str) -> EnginePolicy:
    """Read the effective policy defensively into the engine's frozen view."""
    from policy.selectors import policy_effective_for

    eff = policy_effective_for(membership, kind)

    def val(name, default):
        r = getattr(eff, name, None)
        return default if r is None else getattr(r, "value", r)

    base = EnginePolicy(kind=kind)
    kw = {
        f.name: val(f.name, getattr(base, f.name))
        for f in dataclasses.fields(EnginePolicy)
        if f.name not in ("kind", "time_zone")
    }
    return EnginePolicy(kind=kind, time_zone=getattr(eff, "time_zone", None) or "UTC", **kw)


# ---------------------------------------------------------------- lease


def lease_acquire(membership, kind: str, holder: str, *, ttl: timedelta = LEASE_TTL) -> bool:
    """Claim the (member, kind) lease with one conditional UPDATE; False if someone holds it."""
    SyncLease.objects.get_or_create(membership=membership, kind=kind)
    t = now()
    n = (
        SyncLease.objects.filter(membership=membership, kind=kind)
        # The same holder may re-enter: the dispatcher claims, its task then runs.
        .filter(Q(holder="") | Q(holder=holder) | Q(expires_at__lt=t) | Q(expires_at__isnull=True))
        .update(holder=holder, expires_at=t + ttl)
    )
    return n == 1


def lease_release(membership, kind: str, holder: str) -> None:
    SyncLease.objects.filter(membership=membership, kind=kind, holder=holder).update(
        holder="", expires_at=None
    )


# ---------------------------------------------------------------- helpers


def _view(link: SyncLink) -> LinkView:
    return LinkView(
        pk=link.pk,
        link_key=str(link.link_key),
        outlook_id=link.outlook_id,
        sf_id=link.sf_id,
        outlook_version=link.outlook_change_key,
        sf_version=link.sf_modstamp,
        snapshot=link.snapshot,
        snapshot_hash=link.snapshot_hash,
        state=link.state,
        one_way_from=link.one_way_from,
        container=link.outlook_container,
        ical_uid=link.outlook_ical_uid,
    )


def _sf_owner_id(membership) -> str | None:
    from connections.selectors import connection_for

    conn = connection_for(membership, "salesforce")
    for name in ("sf_user_id", "remote_user_id", "salesforce_user_id", "external_user_id"):
        value = getattr(conn, name, None)
        if value:
            return value
    return None


def _clients(membership, counter):
    from connections.selectors import graph_client_for, salesforce_client_for

    return graph_client_for(membership, counter=counter), salesforce_client_for(
        membership, counter=counter
    )


def _links_query(membership, kind):
    return SyncLink.objects.filter(membership=membership, kind=kind)


# ---------------------------------------------------------------- the run


def run_sync(
    membership,
    kind: str,
    trigger: str = "manual",
    *,
    dry_run: bool = False,
    plan_only: bool = False,
    full: bool = False,
    ignore_links: bool = False,
    force_delete: bool = False,
    reviewed_plan: int | None = None,
    holder: str | None = None,
    policy: EnginePolicy | None = None,
) -> RunResult:
    """Sync one member's `kind` once. Never raises for remote trouble: the
    result (and the SyncRun row) says what happened."""
    from connections import errors
    from connections.clients import RequestCounter

    holder = holder or uuid.uuid4().hex
    if not lease_acquire(membership, kind, holder):
        return RunResult(
            run_id=None, status="skipped", message="Another sync of this kind is running."
        )
    counter = RequestCounter()
    run = SyncRun.objects.create(
        membership=membership,
        kind=kind,
        trigger=trigger,
        started_at=now(),
        dry_run=dry_run or plan_only,
    )
    result = RunResult(run_id=run.pk, status=RunStatus.RUNNING)
    log: list[SyncLogEntry] = []
    try:
        policy = policy or engine_policy(membership, kind)
        graph, sfc = _clients(membership, counter)
        engine = _Run(membership, kind, trigger, policy, graph, sfc, run, log)
        engine.execute(
            result,
            dry_run=dry_run,
            plan_only=plan_only,
            full=full or trigger == "rebuild",
            ignore_links=ignore_links,
            force_delete=force_delete,
            reviewed_plan=reviewed_plan,
        )
    except RunStopped as stop:
        result.status, result.message = stop.status, stop.message
    except errors.AuthError as exc:
        result.status = RunStatus.STOPPED
        result.message = f"Reconnect needed ({_side_label(exc)}): the sign-in no longer works. Nothing was deleted."
    except errors.RequestLimitExceeded:
        result.status = RunStatus.STOPPED
        result.message = "Salesforce daily API limit reached; the sync resumes when it resets."
    except errors.RemoteError as exc:
        result.status = RunStatus.FAILED
        result.message = f"{_side_label(exc)} did not answer: {getattr(exc, 'message', '') or exc}"[
            :900
        ]
    finally:
        result.api_requests = {OUTLOOK: counter.outlook, SALESFORCE: counter.salesforce}
        if result.status == RunStatus.RUNNING:
            result.status = RunStatus.SUCCEEDED
        if result.message:
            log.append(
                SyncLogEntry(
                    run=run,
                    level="error" if result.status != "succeeded" else "info",
                    action="run",
                    message=result.message[:500],
                )
            )
        SyncLogEntry.objects.bulk_create(log, batch_size=500)
        SyncRun.objects.filter(pk=run.pk).update(
            status=result.status,
            counts=result.counts.as_dict(),
            api_outlook=counter.outlook,
            api_salesforce=counter.salesforce,
            finished_at=now(),
            error=result.message[:1000] if result.status != RunStatus.SUCCEEDED else "",
        )
        lease_release(membership, kind, holder)
    return result


def _side_label(exc) -> str:
    return "Salesforce" if getattr(exc, "side", "") == SALESFORCE else "Outlook"


class _Run:
    def __init__(self, membership, kind, trigger, policy, graph, sfc, run, log):
        self.membership = membership
        self.kind = kind
        self.trigger = trigger
        self.policy = policy
        self.run = run
        self.log = log
        self.cursor, _ = SyncCursor.objects.get_or_create(membership=membership, kind=kind)
        self.outlook = OutlookSide(graph, kind, container=self.cursor.outlook_container)
        self.sf = SalesforceSide(sfc, kind, owner_id=_sf_owner_id(membership))

    def execute(
        self,
        result: RunResult,
        *,
        dry_run,
        plan_only,
        full,
        ignore_links,
        force_delete,
        reviewed_plan,
    ):
        t = now()
        cur = CursorIn(
            delta_link=self.cursor.outlook_delta_link,
            window_start=self.cursor.outlook_window_start,
            window_end=self.cursor.outlook_window_end,
            container=self.cursor.outlook_container,
            sf_high_water=self.cursor.sf_high_water,
        )
        snapshots = {}
        if self.kind == CONTACTS and not ignore_links:
            snapshots = dict(
                _links_query(self.membership, self.kind)
                .exclude(sf_id=None)
                .values_list("sf_id", "snapshot")
            )
        fetched = Fetched()
        # The Salesforce mark is taken before either side is read.
        fetch_salesforce(
            self.sf,
            self.kind,
            self.policy,
            cur,
            t,
            full=full,
            into=fetched,
            snapshot_hint=snapshots.get,
        )
        fetch_outlook(self.outlook, self.kind, self.policy, cur, t, full=full, into=fetched)

        links = [] if ignore_links else self._links_for(fetched)
        self._confirm(fetched, links, t, snapshots)
        self._sweep(fetched, links, t, snapshots)

        snaprecord = self.trigger == "snaprecord"
        decisions = decide(
            self.kind,
            self.policy,
            links,
            fetched.outlook.values(),
            fetched.salesforce.values(),
            create_unlinked=not snaprecord,
            only_one_way=snaprecord,
        )
        result.decisions = decisions
        live = (
            _links_query(self.membership, self.kind)
            .filter(state__in=[LinkState.SYNCED, LinkState.OUT_OF_SCOPE])
            .count()
        )
        stop = None if force_delete else mass_delete_stop(decisions, live, self.policy)

        if reviewed_plan is not None:
            decisions = self._reviewed(reviewed_plan, decisions)

        if dry_run or plan_only or stop:
            result.counts = _projected_counts(decisions)
            self._store_plan(decisions)
            if stop:
                raise RunStopped(stop)
            if plan_only:
                result.status = RunStatus.PLANNED
                result.message = f"{len(decisions)} change(s) planned; review, then apply the plan."
            return

        applier = Applier(
            membership=self.membership,
            kind=self.kind,
            policy=self.policy,
            outlook=self.outlook,
            salesforce=self.sf,
            now=now,
        )
        out = applier.apply(decisions)
        result.counts = out.counts
        for level, d, message, detail in out.log:
            self._log(level, d, message, detail)
        if reviewed_plan is not None and self._plan_incomplete:
            return  # what was not reviewed is read again next time: cursors stay
        self._advance(fetched)

    # ------------------------------------------------------------ links
    def _links_for(self, fetched: Fetched) -> list[LinkView]:
        q = _links_query(self.membership, self.kind)
        if fetched.full_outlook or fetched.full_salesforce:
            # Tombstoned links too: they keep their ids from being taken for new items.
            return [_view(lk) for lk in q.iterator(chunk_size=2000)]
        found: dict[int, SyncLink] = {}
        oids, sids = list(fetched.outlook), list(fetched.salesforce)
        keys = {
            it.link_key
            for it in (*fetched.outlook.values(), *fetched.salesforce.values())
            if it.link_key
        }
        for i in range(0, len(oids), 500):
            found.update({lk.pk: lk for lk in q.filter(outlook_id__in=oids[i : i + 500])})
        for i in range(0, len(sids), 500):
            found.update({lk.pk: lk for lk in q.filter(sf_id__in=sids[i : i + 500])})
        keys = sorted(keys)
        for i in range(0, len(keys), 500):
            found.update({lk.pk: lk for lk in q.filter(link_key__in=keys[i : i + 500])})
        found.update({lk.pk: lk for lk in q.filter(state__in=PENDING_STATES)[:SWEEP_LIMIT]})
        return [_view(lk) for lk in found.values()]

    def _confirm(self, fetched: Fetched, links: list[LinkView], t, snapshots) -> None:
        """Read back what looks deleted before it may count as deleted."""
        by_oid = {lk.outlook_id for lk in links if lk.outlook_id and lk.state != "tombstoned"}
        by_sid = {lk.sf_id for lk in links if lk.sf_id and lk.state != "tombstoned"}
        o_check = {i for i, it in fetched.outlook.items() if it.deleted and i in by_oid}
        if fetched.removed_unknown - by_oid:
            # Removed occurrences may mean a removed series: read our series masters back.
            o_check |= {
                lk.outlook_id
                for lk in _links_query(self.membership, self.kind)
                .exclude(state=LinkState.TOMBSTONED)
                .exclude(outlook_id=None)
                .filter(snapshot__recurrence__isnull=False)
                .only("outlook_id")
                if lk.outlook_id not in fetched.outlook or fetched.outlook[lk.outlook_id].deleted
            }
        s_check: set[str] = set()
        settled_out = {lk.outlook_id for lk in links if lk.state == "out_of_scope"}
        settled_sf = {lk.sf_id for lk in links if lk.state == "out_of_scope"}
        if fetched.full_outlook:
            o_check |= {i for i in by_oid if i not in fetched.outlook and i not in settled_out}
        if fetched.full_salesforce:
            s_check |= {i for i in by_sid if i not in fetched.salesforce and i not in settled_sf}
        if o_check:
            confirm_outlook(self.outlook, self.kind, self.policy, t, o_check, fetched)
        if s_check:
            confirm_salesforce(self.sf, self.kind, self.policy, t, s_check, fetched, snapshots.get)

    def _sweep(self, fetched: Fetched, links: list[LinkView], t, snapshots) -> None:
        """Re-drive links a previous run left pending: adopt lost creates by key, re-read both sides."""
        pending = [lk for lk in links if lk.state in PENDING_STATES]
        if not pending:
            return
        o_keys = [lk.link_key for lk in pending if lk.outlook_id is None]
        s_keys = [lk.link_key for lk in pending if lk.sf_id is None]
        if o_keys:
            for key, payload in self.outlook.find_by_keys(o_keys).items():
                it = outlook_item(
                    self.kind, payload, self.policy, t, container=self.outlook.container
                )
                fetched.outlook[it.id] = dataclasses.replace(it, link_key=key)
        if s_keys:
            from .kinds import sf_item

            for key, row in self.sf.find_by_keys(s_keys).items():
                it = sf_item(self.kind, row, self.policy, t, snapshot_hint=snapshots.get)
                fetched.salesforce[it.id] = dataclasses.replace(it, link_key=key)
        o_ids = [
            lk.outlook_id
            for lk in pending
            if lk.outlook_id and lk.outlook_id not in fetched.outlook
        ]
        s_ids = [lk.sf_id for lk in pending if lk.sf_id and lk.sf_id not in fetched.salesforce]
        if o_ids:
            confirm_outlook(self.outlook, self.kind, self.policy, t, o_ids, fetched)
        if s_ids:
            confirm_salesforce(self.sf, self.kind, self.policy, t, s_ids, fetched, snapshots.get)

    # ------------------------------------------------------------ cursors
    def _advance(self, fetched: Fetched) -> None:
        c = self.cursor
        if fetched.delta_link:
            c.outlook_delta_link = fetched.delta_link
        if fetched.window is not None:
            c.outlook_window_start, c.outlook_window_end = fetched.window.start, fetched.window.end
        c.outlook_container = fetched.container or c.outlook_container
        c.sf_high_water = fetched.sf_mark
        if fetched.full_outlook and fetched.full_salesforce:
            c.last_full_at = now()
        c.save()

    # ------------------------------------------------------------ plan
    def _store_plan(self, decisions: list[Decision]) -> None:
        rows = []
        for seq, d in enumerate(decisions, start=1):
            rows.append(
                PlannedChange(
                    run=self.run,
                    seq=seq,
                    action=d.action,
                    side=",".join(f"{w.side}:{w.op}" for w in d.writes),
                    link_key=d.link.link_key if d.link else d.link_key or None,
                    outlook_id=(
                        d.outlook.id if d.outlook else (d.link.outlook_id if d.link else "")
                    )
                    or "",
                    sf_id=(d.sf.id if d.sf else (d.link.sf_id if d.link else "")) or "",
                    outlook_version=d.outlook.version if d.outlook else "",
                    sf_version=d.sf.version if d.sf else "",
                    title=(d.title or "")[:255],
                    fields=_fields(d),
                    before=(d.link.snapshot if d.link and d.link.snapshot else {}),
                    after={"hash": canonical_hash(d.result), "record": d.result.projection()}
                    if d.result
                    else {},
                    conflicts=[
                        {"fields": list(x.fields), "kept": x.kept, "lost": x.lost}
                        for x in d.conflicts
                    ],
                )
            )
        PlannedChange.objects.bulk_create(rows, batch_size=500)

    _plan_incomplete = False

    def _reviewed(self, plan_run_id: int, decisions: list[Decision]) -> list[Decision]:
        """Keep only decisions identical to an included item of the reviewed plan."""
        planned = {
            _sig_row(p): p
            for p in PlannedChange.objects.filter(
                run_id=plan_run_id, run__membership=self.membership
            )
        }
        keep, applied_rows = [], []
        for d in decisions:
            p = planned.pop(_sig(d), None)
            if p is not None and p.included:
                # Use the reviewed key so the new link is the one that was shown.
                if d.link is None and p.link_key:
                    d = dataclasses.replace(d, link_key=str(p.link_key))
                keep.append(d)
                applied_rows.append(p.pk)
            else:
                self._plan_incomplete = True
        PlannedChange.objects.filter(pk__in=applied_rows).update(status=PlanStatus.APPLIED)
        stale = [p.pk for p in planned.values() if p.included]
        PlannedChange.objects.filter(pk__in=stale).update(status=PlanStatus.STALE)
        PlannedChange.objects.filter(run_id=plan_run_id, included=False).update(
            status=PlanStatus.SKIPPED
        )
        for p in planned.values():
            if p.included:
                self.log.append(
                    SyncLogEntry(
                        run=self.run,
                        level="warning",
                        action="stale",
                        outlook_id=p.outlook_id,
                        sf_id=p.sf_id,
                        link_key=p.link_key,
                        message=f"Not applied: “{p.title[:80]}” changed after the plan was made.",
                    )
                )
        return keep

    def _log(self, level: str, d: Decision, message: str, detail: dict) -> None:
        self.log.append(
            SyncLogEntry(
                run=self.run,
                level=level,
                action=d.action,
                side=",".join(sorted({w.side for w in d.writes})),
                outlook_id=(d.outlook.id if d.outlook else (d.link.outlook_id if d.link else ""))
                or "",
                sf_id=(d.sf.id if d.sf else (d.link.sf_id if d.link else "")) or "",
                link_key=d.link_key or None,
                message=(message or d.action)[:500],
                detail={"title": (d.title or "")[:120], **detail},
            )
        )
        if len(self.log) >= LOG_FLUSH:
            # Written as we go: a 10,000-item run does not hold 10,000 rows in memory
            # (and the log viewer sees a long run's entries while it is going).
            SyncLogEntry.objects.bulk_create(self.log, batch_size=500)
            self.log.clear()


def _fields(d: Decision) -> list[str]:
    if d.result is None or d.link is None or not d.link.snapshot:
        return []
    p = d.result.projection()
    return sorted(k for k in p if p[k] != d.link.snapshot.get(k))


def _sig(d: Decision) -> tuple:
    return (
        d.action,
        ",".join(f"{w.side}:{w.op}" for w in d.writes),
        (d.outlook.id if d.outlook else (d.link.outlook_id if d.link else "")) or "",
        (d.sf.id if d.sf else (d.link.sf_id if d.link else "")) or "",
        d.outlook.version if d.outlook else "",
        d.sf.version if d.sf else "",
        canonical_hash(d.result) if d.result is not None else "",
    )


def _sig_row(p: PlannedChange) -> tuple:
    return (
        p.action,
        p.side,
        p.outlook_id,
        p.sf_id,
        p.outlook_version,
        p.sf_version,
        (p.after or {}).get("hash", ""),
    )


def _projected_counts(decisions: list[Decision]) -> Counts:
    c = Counts()
    for d in decisions:
        for w in d.writes:
            {"create": c.created, "update": c.updated, "delete": c.deleted}[w.op][w.side] += 1
        if d.action == "link":
            c.linked += 1
        elif d.action == "error":
            c.errors[OUTLOOK if d.outlook is not None and d.outlook.error else SALESFORCE] += 1
        elif d.action == "tombstone":
            c.tombstoned += 1
        if d.conflicts:
            c.conflicts += 1
    return c


# ---------------------------------------------------------------- SnapRecord


def snaprecord_event(membership, outlook_event_id: str) -> RunResult:
    """Copy one Outlook event to Salesforce and keep it following Outlook (one-way link)."""
    from connections import errors
    from connections.clients import RequestCounter

    kind = CALENDAR
    holder = uuid.uuid4().hex
    if not lease_acquire(membership, kind, holder):
        return RunResult(
            run_id=None, status="skipped", message="A calendar sync is running; try again shortly."
        )
    counter = RequestCounter()
    run = SyncRun.objects.create(
        membership=membership, kind=kind, trigger="snaprecord", started_at=now()
    )
    result = RunResult(run_id=run.pk, status=RunStatus.RUNNING)
    log: list[SyncLogEntry] = []
    try:
        policy = engine_policy(membership, kind)
        graph, sfc = _clients(membership, counter)
        engine = _Run(membership, kind, "snaprecord", policy, graph, sfc, run, log)
        existing = _links_query(membership, kind).filter(outlook_id=outlook_event_id).first()
        if existing is not None and existing.state != LinkState.TOMBSTONED:
            result.message = "This event is already recorded in Salesforce."
        else:
            payload = engine.outlook.get_many([outlook_event_id])[outlook_event_id]
            if payload is None:
                raise RunStopped("The event no longer exists in Outlook.", status=RunStatus.FAILED)
            it = outlook_item(kind, payload, policy, now())
            if it.error or it.record is None:
                raise RunStopped(
                    f"This event cannot be recorded: {it.error}", status=RunStatus.FAILED
                )
            if existing is not None:
                with transaction.atomic():
                    existing.delete()
            d = Decision(
                link_key=it.link_key or str(uuid.uuid4()),
                action="create",
                outlook=it,
                result=it.record,
                writes=(Write(SALESFORCE, "create"),),
                one_way_from=OUTLOOK,
            )
            out = Applier(
                membership=membership,
                kind=kind,
                policy=policy,
                outlook=engine.outlook,
                salesforce=engine.sf,
                now=now,
            ).apply([d])
            result.counts = out.counts
            for level, dd, message, detail in out.log:
                engine._log(level, dd, message, detail)
            if out.failed_keys:
                result.status = RunStatus.FAILED
                result.message = "Salesforce refused the event; see the log."
    except RunStopped as stop:
        result.status, result.message = stop.status, stop.message
    except errors.AuthError as exc:
        result.status = RunStatus.STOPPED
        result.message = f"Reconnect needed ({_side_label(exc)})."
    except errors.RemoteError as exc:
        result.status = RunStatus.FAILED
        result.message = f"{_side_label(exc)} did not answer: {getattr(exc, 'message', '') or exc}"[
            :900
        ]
    finally:
        result.api_requests = {OUTLOOK: counter.outlook, SALESFORCE: counter.salesforce}
        if result.status == RunStatus.RUNNING:
            result.status = RunStatus.SUCCEEDED
        SyncLogEntry.objects.bulk_create(log)
        SyncRun.objects.filter(pk=run.pk).update(
            status=result.status,
            counts=result.counts.as_dict(),
            api_outlook=counter.outlook,
            api_salesforce=counter.salesforce,
            finished_at=now(),
            error=result.message[:1000],
        )
        lease_release(membership, kind, holder)
    return result


# ---------------------------------------------------------------- Rebuild


def rebuild(membership, kind: str, *, apply: bool = False) -> RunResult:
    """Forget links and cursors of (member, kind) and re-match both full listings.

    Without `apply` this is a preview (nothing is forgotten or written). With
    it, matching adopts everything it can — by our key first — so nothing a
    match can adopt is created again.
    """
    if not apply:
        return run_sync(membership, kind, "rebuild", dry_run=True, full=True, ignore_links=True)
    with transaction.atomic():
        _links_query(membership, kind).delete()
        SyncCursor.objects.filter(membership=membership, kind=kind).delete()
    return run_sync(membership, kind, "rebuild", full=True)


def plan_apply(
    membership, plan_run_id: int, *, exclude: set[int] | frozenset = frozenset()
) -> RunResult:
    """Apply a stored Manual plan exactly as reviewed (excluded items are left out;
    items changed since the plan are not applied and are reported)."""
    plan = SyncRun.objects.get(pk=plan_run_id, membership=membership, status=RunStatus.PLANNED)
    if exclude:
        PlannedChange.objects.filter(run=plan, seq__in=exclude).update(included=False)
    result = run_sync(membership, plan.kind, "manual", reviewed_plan=plan.pk)
    SyncRun.objects.filter(pk=plan.pk).update(status=RunStatus.SUCCEEDED, finished_at=now())
    return result


__all__ = [
    "RunResult",
    "Item",
    "lease_acquire",
    "lease_release",
    "now",
    "plan_apply",
    "rebuild",
    "run_sync",
    "snaprecord_event",
    "engine_policy",
]
