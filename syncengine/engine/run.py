"""One run for one member and kind: lease, fetch, decide, plan, apply, cursors, log.

`run_sync(membership, kind, trigger=...)` is the single entry point (the
command, the django-q task, SnapRecord and the tests all call it) and returns
a `RunResult` with counts per action and side and API requests per side.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.db.models.fields.json import KeyTextTransform
from django.utils import timezone

from ..governor import requests_add
from ..models import (
    PENDING_STATES,
    LinkState,
    PlannedChange,
    PlanStatus,
    RunPurpose,
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
    read_ahead,
)
from .kinds import CALENDAR, CONTACTS, calendar_window, outlook_item
from .mapping import canonical_hash
from .match import match_keys
from .plan import (
    KeyPool,
    decide_links,
    decide_new,
    decide_with_winner,
    mass_delete_check,
    unlinked_errors,
)
from .records import OUTLOOK, SALESFORCE, Counts, Decision, EnginePolicy, Item, LinkView, Write
from .remote import OutlookSide, SalesforceSide
from .series import SeriesReader, is_series_row, stored_occurrences, with_instances
from .stage import Stage
from .why import decision_detail

logger = logging.getLogger(__name__)
LEASE_TTL = timedelta(minutes=30)
SWEEP_LIMIT = 1000
DECIDE_BLOCK = 1000  # links (or matched pairs, or new items) decided at a time
APPLY_BLOCK = 1000  # decisions applied at a time (the applier batches within)
LOG_FLUSH = 1000
LOG_FLUSH_SECONDS = 2.0  # a run's buffered entries reach the table (and its live tail) this often
PROGRESS_EVERY = 500  # items read or decided between two progress writes
PROGRESS_SECONDS = 1.0


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
    # Set when a service asked us to pause (a long Retry-After): no run before then.
    resume_at: datetime | None = None

    @property
    def writes(self) -> int:
        return self.counts.writes

    def as_dict(self) -> dict:
        c = self.counts
        return {
            "run_id": self.run_id,
            "status": self.status,
            "resume_at": self.resume_at.isoformat() if self.resume_at else None,
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


def engine_policy(membership, kind: str, overrides: dict | None = None) -> EnginePolicy:
    """Read the effective policy defensively into the engine's frozen view.

    `overrides` are proposed raw settings (a settings preview): the policy
    registry parses and validates them (a ValidationError names the field).
    """
    from policy.selectors import policy_effective_for

    if overrides:
        eff = policy_effective_for(membership, kind, overrides=overrides)
    else:
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
        occurrences=stored_occurrences(link),
        resume=link.resume,
    )


def _sf_owner_id(membership) -> str | None:
    from connections.selectors import connection_for

    conn = connection_for(membership, "salesforce")
    for name in ("sf_user_id", "remote_user_id", "salesforce_user_id", "external_user_id"):
        value = getattr(conn, name, None)
        if value:
            return value
    return None


def _refuse_shared(membership) -> None:
    """One remote account synced by two members duplicates every item: stop before any read."""
    from connections.selectors import shared_connection_stop

    message = shared_connection_stop(membership)
    if message:
        raise RunStopped(message)


def _clients(membership, counter):
    from connections.selectors import graph_client_for, salesforce_client_for

    _refuse_shared(membership)
    return graph_client_for(membership, counter=counter), salesforce_client_for(
        membership, counter=counter
    )


def _links_query(membership, kind):
    return SyncLink.objects.filter(membership=membership, kind=kind)


def _fanout(graph, sfc):
    """Worker threads for the run's requests, when settings.SYNC_CONCURRENCY allows more
    than one at a time (linkpoint/fanout.py: the database stays on this thread).

    The clients get their session and token here, before anything fans out, so a
    worker never waits for either; the emulators' database, where the sandbox runs
    in-process, is lent to the workers (settings.SYNC_WORKER_DATABASES)."""
    from django.conf import settings

    from connections.http import concurrency
    from linkpoint.fanout import Fanout

    width = max(concurrency(OUTLOOK), concurrency(SALESFORCE))
    if width <= 1:
        return contextlib.nullcontext(None)
    graph.prepare()
    sfc.prepare()
    fan = Fanout(workers=width + 2)  # + the two reads that go on at once
    fan.lend(*getattr(settings, "SYNC_WORKER_DATABASES", ()))
    return fan


# ---------------------------------------------------------------- progress


class Progress:
    """What a run has done so far, on its row for the pages to poll.

    One UPDATE of the run row per block (autocommit, no transaction held open):
    at every phase change and after PROGRESS_EVERY items or PROGRESS_SECONDS,
    whichever comes first, so a 10,000-item run costs a few dozen writes.
    """

    def __init__(self, run_pk: int):
        self.run_pk = run_pk
        self.data: dict = {
            "phase": "reading",
            "read": {OUTLOOK: 0, SALESFORCE: 0},
            "decided": 0,
            "applied": 0,
            "total": None,
        }
        self._pending = 0
        self._last = time.monotonic()
        self.flush()

    def phase(self, name: str, *, total: int | None = None) -> None:
        self.data["phase"] = name
        if total is not None:
            self.data["total"] = total
        self.flush()

    def read(self, side: str) -> None:
        self.data["read"][side] += 1
        self._bump(1)

    def decided(self, n: int) -> None:
        self.data["decided"] += n
        self._bump(n)

    def applied(self, n: int) -> None:
        self.data["applied"] += n
        self.flush()  # one block applied

    def _bump(self, n: int) -> None:
        self._pending += n
        if self._pending >= PROGRESS_EVERY or time.monotonic() - self._last >= PROGRESS_SECONDS:
            self.flush()

    def flush(self) -> None:
        self._pending, self._last = 0, time.monotonic()
        SyncRun.objects.filter(pk=self.run_pk).update(progress=copy.deepcopy(self.data))

    def finish(self) -> None:
        if self.data["total"] is None:
            self.data["total"] = self.data["decided"]
        self.phase("done")


INTERRUPTED = (
    "This run stopped part-way (the worker running it was stopped). Nothing is lost: "
    "the next run picks up where it left off."
)


def _close_interrupted(membership, kind: str, *, keep: int | None) -> None:
    """Runs still marked running when we hold the lease died with their worker
    (SIGKILL, lost machine): only the lease holder runs, so they cannot be live.
    Settings previews take no lease and are left alone."""
    (
        SyncRun.objects.filter(membership=membership, kind=kind, status=RunStatus.RUNNING)
        .exclude(purpose=RunPurpose.SETTINGS_PREVIEW)
        .exclude(pk=keep)
        .update(status=RunStatus.FAILED, error=INTERRUPTED, finished_at=now())
    )


def _run_row(membership, kind, trigger, run_id, *, dry_run, plan_only, reviewed) -> SyncRun:
    """The run's row: the queued one a page asked for, or a new one (commands, tests)."""
    t = now()
    if run_id is not None:
        SyncRun.objects.filter(pk=run_id, membership=membership).update(
            status=RunStatus.RUNNING, started_at=t, dry_run=dry_run
        )
        return SyncRun.objects.get(pk=run_id, membership=membership)
    if plan_only:
        purpose = RunPurpose.REBUILD_PREVIEW if trigger == "rebuild" else RunPurpose.PREVIEW
    elif reviewed:
        purpose = RunPurpose.APPLY_PLAN
    elif trigger == "rebuild" and not dry_run:
        purpose = RunPurpose.REBUILD
    else:
        purpose = RunPurpose.SYNC
    return SyncRun.objects.create(
        membership=membership,
        kind=kind,
        trigger=trigger,
        started_at=t,
        dry_run=dry_run,
        purpose=purpose,
        plan_expires_at=t + plan_ttl() if plan_only else None,
    )


def plan_ttl() -> timedelta:
    """How long a stored plan can be applied (settings.SYNC_PLAN_TTL, 24 h by default)."""
    from django.conf import settings

    ttl = getattr(settings, "SYNC_PLAN_TTL", None)
    return ttl if isinstance(ttl, timedelta) else timedelta(seconds=int(ttl or 86400))


def _forget(membership, kind: str) -> None:
    """An applied Rebuild starts from no links and no cursors (under the run's lease)."""
    with transaction.atomic():
        _links_query(membership, kind).delete()
        SyncCursor.objects.filter(membership=membership, kind=kind).delete()


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
    run_id: int | None = None,
    settings_preview: bool = False,
    forget_links: bool = False,
) -> RunResult:
    """Sync one member's `kind` once. Never raises for remote trouble: the
    result (and the SyncRun row) says what happened.

    `run_id` runs an existing queued SyncRun (the page's task) instead of
    creating one. `settings_preview` plans under `policy` and writes nothing but
    the run's own plan and log: no lease, cursor, link or remote write.
    `forget_links` (an applied Rebuild) drops the links and cursors once the
    lease is held."""
    from connections import errors
    from connections.clients import RequestCounter

    holder = holder or (f"run-{run_id}" if run_id else uuid.uuid4().hex)
    if settings_preview:
        plan_only, full = True, True
    elif not lease_acquire(membership, kind, holder):
        return RunResult(
            run_id=run_id, status="skipped", message="Another sync of this kind is running."
        )
    else:
        _close_interrupted(membership, kind, keep=run_id)
    counter = RequestCounter()
    run = _run_row(
        membership,
        kind,
        trigger,
        run_id,
        dry_run=dry_run or plan_only,
        plan_only=plan_only,
        reviewed=reviewed_plan is not None,
    )
    result = RunResult(run_id=run.pk, status=RunStatus.RUNNING)
    log: list[SyncLogEntry] = []
    progress = Progress(run.pk)
    completed = False
    try:
        if forget_links:
            _refuse_shared(membership)  # before anything is forgotten
            _forget(membership, kind)
        policy = policy or engine_policy(membership, kind)
        graph, sfc = _clients(membership, counter)
        with _fanout(graph, sfc) as fan:
            engine = _Run(
                membership, kind, trigger, policy, graph, sfc, run, log,
                progress=progress, readonly=settings_preview, fanout=fan,
            )  # fmt: skip
            engine.execute(
                result,
                dry_run=dry_run,
                plan_only=plan_only,
                full=full or trigger == "rebuild",
                ignore_links=ignore_links,
                force_delete=force_delete,
                reviewed_plan=reviewed_plan,
            )
        completed = True
    except RunStopped as stop:
        result.status, result.message = stop.status, stop.message
    except errors.AuthError as exc:
        result.status = RunStatus.STOPPED
        result.message = _auth_message(membership, exc)
    except errors.RequestLimitExceeded:
        result.status = RunStatus.STOPPED
        result.message = "Salesforce daily API limit reached; the sync resumes when it resets."
    except errors.Throttled as exc:
        result.status = RunStatus.STOPPED
        result.resume_at = now() + timedelta(seconds=max(exc.retry_after, 1))
        result.message = _throttled_message(exc, result.resume_at)
    except errors.RemoteError as exc:
        result.status = RunStatus.FAILED
        result.message = f"{_side_label(exc)} did not answer: {getattr(exc, 'message', '') or exc}"[
            :900
        ]
    except Exception as exc:
        _crashed(result, exc, run)
    finally:
        result.api_requests = {OUTLOOK: counter.outlook, SALESFORCE: counter.salesforce}
        if result.status == RunStatus.RUNNING:
            # Left RUNNING by a normal return only; an exception that got past the
            # handlers above (the worker interrupted) is a failure, never a success.
            if completed:
                result.status = RunStatus.SUCCEEDED
            else:
                result.status = RunStatus.FAILED
                result.message = result.message or INTERRUPTED
        if result.message:
            log.append(
                SyncLogEntry(
                    run=run,
                    # A stored plan (a preview) ends as normally as a finished sync.
                    level="info"
                    if result.status in (RunStatus.SUCCEEDED, RunStatus.PLANNED)
                    else "error",
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
        requests_add(membership.organization_id, run.started_at, counter.salesforce)
        progress.finish()
        lease_release(membership, kind, holder)
    return result


def _write_depth() -> int:
    """Chunks (≤ 200 decisions) written at once: Salesforce takes a collection per
    chunk and side, so its cap is the number worth having in flight; Graph's
    mailbox slots then pace the `$batch` requests of those chunks by themselves."""
    from connections.http import concurrency

    return max(2, concurrency(SALESFORCE))


def _item_keys(fetched: Fetched) -> set[str]:
    return set(fetched.outlook.link_keys()) | set(fetched.salesforce.link_keys())


def _throttled_message(exc, resume_at: datetime) -> str:
    """What a member reads when a service asked for a long pause (Retry-After)."""
    side = _side_label(exc)
    why = (
        "Microsoft allows an app 10,000 requests per mailbox in 10 minutes"
        if side == "Outlook"
        else "Salesforce asked for a pause"
    )
    said = f" (“{exc.message}”)" if getattr(exc, "message", "") else ""
    return (
        f"{side} is limiting requests for this account for now{said}: {why}. The sync stopped "
        "there and nothing was lost: what it did not write is written by the next run, which "
        f"starts after {resume_at:%Y-%m-%d %H:%M} UTC."
    )[:900]


def _side_label(exc) -> str:
    return "Salesforce" if getattr(exc, "side", "") == SALESFORCE else "Outlook"


INTERRUPTED = "The sync was interrupted before it finished; the next run starts over."
# Secrets that could ride in an exception's text: credentials after their name, and
# long token-like runs (access tokens, signed URLs, keys).
_SECRET_AFTER_NAME = re.compile(
    r"(?i)\b(access_token|refresh_token|id_token|client_secret|token|secret|password|"
    r"authorization)\s*[=:]\s*(?:bearer\s+)?\S+|\b(bearer)\s+\S+"
)
_TOKEN_LIKE = re.compile(r"(?=[A-Za-z0-9+_\-=%]*\d)[A-Za-z0-9+_\-=%]{20,}")


def crash_text(exc: BaseException) -> str:
    """An exception as the run's error: its class and the first line of its message,
    short, with anything token-like blanked (the run row and log are shown to members
    and exported in support bundles; the full traceback goes to the operators' log)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = _SECRET_AFTER_NAME.sub(lambda m: f"{m.group(1) or m.group(2)} [hidden]", text)
    text = _TOKEN_LIKE.sub("[hidden]", text)
    if len(text) > 200:
        text = text[:199] + "…"
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


def _crashed(result: RunResult, exc: Exception, run: SyncRun) -> None:
    """An exception the engine did not expect: the run failed (never "succeeded"),
    members read the error class and message, operators get the traceback."""
    logger.exception(
        "Sync run %s (membership %s, %s) failed on an unexpected error",
        run.pk,
        run.membership_id,
        run.kind,
    )
    result.status = RunStatus.FAILED
    result.message = (
        f"The sync stopped on an unexpected error ({crash_text(exc)}). Nothing more was "
        "written; the next run starts over from where this one stopped."
    )


def _auth_message(membership, exc) -> str:
    """Why a sign-in stopped the run, and what the member does about it.

    A member who never connected the account (or disconnected it) is told to
    connect it; "reconnect" is for a sign-in that stopped working."""
    from django.urls import reverse

    from connections.models import Status
    from connections.selectors import connection_for

    side = _side_label(exc)
    provider = "salesforce" if side == "Salesforce" else "microsoft"
    conn = connection_for(membership, provider)
    page = reverse("connections:my-connections", kwargs={"org_slug": membership.organization.slug})
    if conn is None or conn.status == Status.REVOKED:
        return (
            f"{side} is not connected: connect your {side} account on the My connections "
            f"page ({page}), then sync again. Nothing was synced."
        )
    if conn.status == Status.NEEDS_CONSENT:
        return (
            f"Permission missing ({side}): LinkPoint is signed in but not allowed to read or "
            f"write these items. Grant the permissions again on the My connections page "
            f"({page}). Nothing was deleted."
        )
    return (
        f"Reconnect needed ({side}): the sign-in no longer works. Reconnect it on the My "
        f"connections page ({page}). Nothing was deleted."
    )


class _Run:
    def __init__(
        self, membership, kind, trigger, policy, graph, sfc, run, log, *, progress=None,
        readonly=False, fanout=None,
    ):  # fmt: skip
        self.membership = membership
        self.fanout = fanout
        self.kind = kind
        self.trigger = trigger
        self.policy = policy
        self.run = run
        self.log = log
        self.progress = progress
        # A settings preview: reads and plans, never writes a cursor, link or remote item.
        self.readonly = readonly
        if readonly:
            self.cursor = SyncCursor.objects.filter(membership=membership, kind=kind).first()
            self.cursor = self.cursor or SyncCursor(membership=membership, kind=kind)
        else:
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
        hints = self._snapshot_hints if self.kind == CONTACTS and not ignore_links else None
        # What the run reads and decides waits on disk, a block at a time in memory.
        progress = self.progress
        with Stage(self.kind, on_item=progress.read if progress else None) as stage:
            fetched = Fetched(outlook=stage.outlook, salesforce=stage.salesforce)
            if self.fanout is not None:
                # Both sides' pages are requested at once, read here in the usual order.
                read_ahead(
                    self.outlook,
                    self.sf,
                    self.kind,
                    self.policy,
                    cur,
                    t,
                    full=full,
                    fanout=self.fanout,
                )
            # The Salesforce mark is taken before either side is read.
            fetch_salesforce(
                self.sf,
                self.kind,
                self.policy,
                cur,
                t,
                full=full,
                into=fetched,
                snapshot_hints=hints,
                series_known=None if ignore_links else self._series_known,
            )
            fetch_outlook(self.outlook, self.kind, self.policy, cur, t, full=full, into=fetched)
            link_pks: list[int] = []
            if not ignore_links:
                link_pks = self._link_pks(fetched)
                self._confirm(fetched, link_pks, t, hints)
                self._sweep(fetched, t, hints)
                if not (fetched.full_outlook or fetched.full_salesforce):
                    # What confirm and sweep read back may name links the changes did not.
                    link_pks = self._link_pks(fetched)
                if self.kind == CALENDAR:
                    self._series_reads(fetched, link_pks, t, hints)
            if progress:
                progress.phase("deciding")
            deletes = self._decide(stage, link_pks, snaprecord=self.trigger == "snaprecord")
            live = (
                _links_query(self.membership, self.kind)
                .filter(state__in=[LinkState.SYNCED, LinkState.OUT_OF_SCOPE])
                .count()
            )
            stop = None if force_delete else mass_delete_check(deletes, live, self.policy)
            review = _Review(self, reviewed_plan) if reviewed_plan is not None else None
            blocks = stage.decision_blocks(APPLY_BLOCK)
            if review is not None:
                blocks = (review.keep(block) for block in blocks)
            if progress:
                progress.data["total"] = (
                    review.included if review is not None else progress.data["decided"]
                )

            if dry_run or plan_only or stop:
                seq, counts = 0, Counts()
                for block in blocks:
                    _project(counts, block)
                    seq = self._store_plan(block, seq)
                    if stop:
                        self._log_guarded(block)
                if review is not None:
                    review.finish()
                result.counts = counts
                if stop:
                    raise RunStopped(stop)
                if plan_only:
                    result.status = RunStatus.PLANNED
                    if (
                        self.run.purpose == RunPurpose.SETTINGS_PREVIEW
                    ):  # a dry run is never applied
                        result.message = (
                            f"{seq} change(s) the proposed setting would make; "
                            "nothing was saved or written."
                        )
                    else:
                        result.message = f"{seq} change(s) planned; review, then apply the plan."
                return

            applier = Applier(
                membership=self.membership,
                kind=self.kind,
                policy=self.policy,
                outlook=self.outlook,
                salesforce=self.sf,
                now=now,
                log_now=self._log_now,
                fanout=self.fanout,
                depth=_write_depth() if self.fanout is not None else 1,
            )
            if progress:
                progress.phase("applying")
            try:
                for block in blocks:
                    applier.apply(block)
                    self._drain(applier)
                    if progress:
                        progress.applied(len(block))
                applier.drain()
            finally:
                result.counts = applier.out.counts
                self._drain(applier)
                if review is not None:
                    review.finish()
            if review is not None and review.incomplete:
                return  # what was not reviewed is read again next time: cursors stay
            self._advance(fetched)

    def _drain(self, applier: Applier) -> None:
        for level, d, message, detail in applier.out.log:
            self._log(level, d, message, detail)
        applier.out.log.clear()

    def _snapshot_hints(self, sf_ids: list[str]):
        """The linked contacts' last synced projections, for one page of Salesforce ids."""
        snaps = dict(
            _links_query(self.membership, self.kind)
            .filter(sf_id__in=[i for i in sf_ids if i])
            .values_list("sf_id", "snapshot")
        )
        return snaps.get

    # ------------------------------------------------------------ decide
    def _decide(self, stage: Stage, link_pks: list[int], *, snaprecord: bool) -> dict[str, int]:
        """Decide block by block into the stage; returns the deletions per side (the guard's input)."""
        deletes = {OUTLOOK: 0, SALESFORCE: 0}

        def emit(decisions: list[Decision]) -> None:
            for d in decisions:
                for w in d.writes:
                    if w.op == "delete":
                        deletes[w.side] += 1
            stage.add_decisions(decisions)
            if self.progress:
                self.progress.decided(len(decisions))

        used_keys: set[str] = set()
        for block in self._link_blocks(link_pks):
            used_keys.update(lk.link_key for lk in block)
            got = {
                OUTLOOK: stage.outlook.by_ids(lk.outlook_id for lk in block),
                SALESFORCE: stage.salesforce.by_ids(lk.sf_id for lk in block),
            }
            for side in (OUTLOOK, SALESFORCE):
                # Our key on an item we have no id for: the lost answer of our own create
                # (unless the item's id belongs to another link).
                # A calendar series re-created in Salesforce: our key moved to a new record.
                keys = [
                    lk.link_key
                    for lk in block
                    if lk.id_on(side) is None
                    or (
                        self.kind == CALENDAR
                        and side == SALESFORCE
                        and lk.snapshot
                        and lk.snapshot.get("recurrence")
                        and (got[side].get(lk.sf_id) is None or got[side][lk.sf_id].deleted)
                    )
                ]
                found = [it for it in stage.side(side).by_keys(keys) if it.id not in got[side]]
                linked = self._linked_ids(side, [it.id for it in found])
                got[side].update((it.id, it) for it in found if it.id not in linked)
            decisions, unclaimed = decide_links(
                self.kind,
                self.policy,
                block,
                got[OUTLOOK].values(),
                got[SALESFORCE].values(),
                only_one_way=snaprecord,
            )
            for side in (OUTLOOK, SALESFORCE):
                stage.side(side).mark_used(i for i in got[side] if i not in unclaimed[side])
            emit(decisions)

        for side in (OUTLOOK, SALESFORCE):
            for items in stage.side(side).unused_errors():
                emit(unlinked_errors(*((items, ()) if side == OUTLOOK else ((), items))))
        if snaprecord:
            return deletes  # SnapRecord copies one chosen event; nothing unlinked is created

        pairs, rest_o, rest_s = match_keys(
            stage.outlook.match_keys(), stage.salesforce.match_keys()
        )
        pool = KeyPool(used_keys)
        for i in range(0, len(pairs), DECIDE_BLOCK):
            block = pairs[i : i + DECIDE_BLOCK]
            o = stage.outlook.by_ids(p[0] for p in block)
            s = stage.salesforce.by_ids(p[1] for p in block)
            emit(
                decide_new(self.policy, [(o[a], s[b], rule) for a, b, rule in block], (), (), pool)
            )
        for side, rest in ((OUTLOOK, rest_o), (SALESFORCE, rest_s)):
            for i in range(0, len(rest), DECIDE_BLOCK):
                items = stage.side(side).by_ids(rest[i : i + DECIDE_BLOCK])
                ordered = [items[x] for x in rest[i : i + DECIDE_BLOCK]]
                emit(
                    decide_new(
                        self.policy,
                        (),
                        ordered if side == OUTLOOK else (),
                        ordered if side == SALESFORCE else (),
                        pool,
                    )
                )
        return deletes

    # ------------------------------------------------------------ links
    def _link_pks(self, fetched: Fetched) -> list[int]:
        """The links this run must look at: all on a full read; else those its items name."""
        q = _links_query(self.membership, self.kind)
        if fetched.full_outlook or fetched.full_salesforce:
            # Tombstoned links too: they keep their ids from being taken for new items.
            return list(q.order_by("pk").values_list("pk", flat=True))
        pks: set[int] = set()
        for side, name in ((OUTLOOK, "outlook_id"), (SALESFORCE, "sf_id")):
            items = fetched.outlook if side == OUTLOOK else fetched.salesforce
            ids = list(items)
            for i in range(0, len(ids), 500):
                pks.update(
                    q.filter(**{f"{name}__in": ids[i : i + 500]}).values_list("pk", flat=True)
                )
        keys = sorted(_item_keys(fetched))
        for i in range(0, len(keys), 500):
            pks.update(q.filter(link_key__in=keys[i : i + 500]).values_list("pk", flat=True))
        pks.update(q.filter(state__in=PENDING_STATES).values_list("pk", flat=True)[:SWEEP_LIMIT])
        return sorted(pks)

    def _link_blocks(self, pks: list[int]):
        q = _links_query(self.membership, self.kind)
        for i in range(0, len(pks), DECIDE_BLOCK):
            block = q.filter(pk__in=pks[i : i + DECIDE_BLOCK]).order_by("pk")
            if self.kind == CALENDAR:
                block = block.prefetch_related("occurrences")  # one query per block
            yield [_view(lk) for lk in block]

    def _link_rows(self, pks: list[int], *fields: str):
        q = _links_query(self.membership, self.kind)
        for i in range(0, len(pks), DECIDE_BLOCK):
            yield list(q.filter(pk__in=pks[i : i + DECIDE_BLOCK]).values_list(*fields))

    def _linked_ids(self, side: str, ids: list[str]) -> set[str]:
        if not ids:
            return set()
        name = "outlook_id" if side == OUTLOOK else "sf_id"
        q = _links_query(self.membership, self.kind).filter(**{f"{name}__in": ids})
        return set(q.values_list(name, flat=True))

    def _confirm(self, fetched: Fetched, link_pks: list[int], t, hints) -> None:
        """Read back what looks deleted before it may count as deleted."""
        deleted_o = set(fetched.outlook.deleted_ids())
        o_check: set[str] = set()
        s_check: set[str] = set()
        removed_linked: set[str] = set()
        for rows in self._link_rows(link_pks, "outlook_id", "sf_id", "state"):
            live = [r for r in rows if r[2] != LinkState.TOMBSTONED]
            oids = {o for o, _, _ in live if o}
            o_check |= deleted_o & oids
            removed_linked |= fetched.removed_unknown & oids
            # A linked item missing from a full listing, unless the link is out of scope.
            if fetched.full_outlook:
                want = [o for o, _, st in live if o and st != LinkState.OUT_OF_SCOPE]
                o_check |= set(want) - fetched.outlook.present(want)
            if fetched.full_salesforce:
                want = [sid for _, sid, st in live if sid and st != LinkState.OUT_OF_SCOPE]
                s_check |= set(want) - fetched.salesforce.present(want)
        if fetched.removed_unknown - removed_linked:
            # Removed occurrences may mean a removed series: read our series masters back.
            for oid in (
                _links_query(self.membership, self.kind)
                .exclude(state=LinkState.TOMBSTONED)
                .exclude(outlook_id=None)
                .filter(snapshot__recurrence__isnull=False)
                .values_list("outlook_id", flat=True)
            ):
                seen = fetched.outlook.get(oid)
                if seen is None or seen.deleted:
                    o_check.add(oid)
        if o_check:
            confirm_outlook(self.outlook, self.kind, self.policy, t, o_check, fetched)
        if s_check:
            confirm_salesforce(self.sf, self.kind, self.policy, t, s_check, fetched, hints)

    def _sweep(self, fetched: Fetched, t, hints) -> None:
        """Re-drive links a previous run left pending: adopt lost creates by key, re-read both sides."""
        pending = list(
            _links_query(self.membership, self.kind)
            .filter(state__in=PENDING_STATES)
            .order_by("pk")
            .values_list("link_key", "outlook_id", "sf_id")[:SWEEP_LIMIT]
        )
        if not pending:
            return
        o_keys = [str(k) for k, o, _ in pending if o is None]
        s_keys = [str(k) for k, _, s in pending if s is None]
        if o_keys:
            for key, payload in self.outlook.find_by_keys(o_keys).items():
                it = outlook_item(
                    self.kind, payload, self.policy, t, container=self.outlook.container
                )
                fetched.outlook[it.id] = dataclasses.replace(it, link_key=key)
        if s_keys:
            from .kinds import sf_item

            rows = self.sf.find_by_keys(s_keys)
            hint = hints([r.get("Id") for r in rows.values()]) if hints else None
            series = SeriesReader(self.sf, self.kind, self.policy, t)
            for key, row in rows.items():
                if self.kind == CALENDAR and is_series_row(row) and not row.get("IsDeleted"):
                    series.add(row)  # the key sits on one occurrence: read the series whole
                    continue
                it = sf_item(self.kind, row, self.policy, t, snapshot_hint=hint)
                fetched.salesforce[it.id] = dataclasses.replace(it, link_key=key)
            for it in series.items():
                fetched.salesforce[it.id] = it
        o_ids = [o for _, o, _ in pending if o and o not in fetched.outlook]
        s_ids = [s for _, _, s in pending if s and s not in fetched.salesforce]
        if o_ids:
            confirm_outlook(self.outlook, self.kind, self.policy, t, o_ids, fetched)
        if s_ids:
            confirm_salesforce(self.sf, self.kind, self.policy, t, s_ids, fetched, hints)

    def _series_known(self, latest: dict[str, list[str]]) -> set[str]:
        """Series starts (keys) where each series reported (its latest stamp) has a link
        holding that stamp already: an overlap re-read of what the last run saw."""
        rows = (
            _links_query(self.membership, self.kind)
            .exclude(sf_modstamp="")
            .filter(snapshot__start__in=[f"{k}Z" for k in latest])
            .values_list("snapshot__start", "sf_modstamp")
        )
        found: dict[str, list[str]] = {}
        for start, stamp in rows:
            found.setdefault(start[:16], []).append(stamp)
        known = set()
        for k, stamps in found.items():
            links = sorted(stamps, reverse=True)
            # A series no newer than every link at that start was seen by all of them (the
            # old future of a series re-created from its first occurrence, say).
            groups = sorted((g for g in latest[k] if g > links[-1]), reverse=True)
            if len(links) >= len(groups) and all(
                a >= b for a, b in zip(links, groups, strict=False)
            ):
                known.add(k)
        return known

    def _series_reads(self, fetched: Fetched, link_pks: list[int], t, hints) -> None:
        """A linked series read on one side is read on the other too, and an Outlook
        series with its occurrences (/instances): its occurrences are decided with
        both sides in hand (engine.series)."""
        rows: list[tuple[str, str]] = []
        for chunk in self._link_rows(link_pks, "outlook_id", "sf_id", "state", "snapshot"):
            rows += [
                (o, s)
                for o, s, st, snap in chunk
                if o
                and s
                and st != LinkState.TOMBSTONED
                and isinstance(snap, dict)
                and isinstance(snap.get("recurrence"), dict)
            ]
        if not rows:
            return
        o_need = [o for o, s in rows if s in fetched.salesforce and o not in fetched.outlook]
        s_need = [s for o, s in rows if o in fetched.outlook and s not in fetched.salesforce]
        if o_need:
            confirm_outlook(self.outlook, self.kind, self.policy, t, o_need, fetched)
        if s_need:
            confirm_salesforce(self.sf, self.kind, self.policy, t, s_need, fetched, hints)
        masters = fetched.outlook.by_ids(o for o, _ in rows)
        window = fetched.window or calendar_window(self.policy, t)
        for it in with_instances(
            masters.values(), lambda ids: self.outlook.instances_many(ids, window), window
        ):
            fetched.outlook[it.id] = it

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
    def _store_plan(self, decisions: list[Decision], seq: int = 0) -> int:
        """Store one block of the plan after `seq`; returns the last seq used."""
        rows = []
        start = seq
        for seq, d in enumerate(decisions, start=start + 1):  # noqa: B020
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
                        {
                            "fields": list(x.fields),
                            "kept": x.kept,
                            "lost": x.lost,
                            "winner": OUTLOOK if x.winner == "ours" else SALESFORCE,
                        }
                        for x in d.conflicts
                    ],
                    reason=(d.message or "")[:500],
                )
            )
        PlannedChange.objects.bulk_create(rows, batch_size=500)
        return seq

    def _log(self, level: str, d: Decision, message: str, detail: dict) -> None:
        self.log.append(self._entry(level, d, message, detail))
        due = time.monotonic() - getattr(self, "_log_flushed", 0.0) >= LOG_FLUSH_SECONDS
        if len(self.log) >= LOG_FLUSH or due:
            # Written as we go: a 10,000-item run does not hold 10,000 rows in memory,
            # and a run's live tail shows its entries within seconds, not at the end.
            SyncLogEntry.objects.bulk_create(self.log, batch_size=500)
            self.log.clear()
            self._log_flushed = time.monotonic()

    def _log_now(self, level: str, d: Decision, message: str, detail: dict) -> None:
        self._entry(level, d, message, detail).save()

    def _entry(self, level: str, d: Decision, message: str, detail: dict) -> SyncLogEntry:
        # The ids the applier recorded (a create's new copy), when the decision lacks them.
        applied_o, applied_s = detail.pop("ids", ("", ""))
        return SyncLogEntry(
            run=self.run,
            level=level,
            action=d.action,
            side=",".join(sorted({w.side for w in d.writes})),
            outlook_id=(d.outlook.id if d.outlook else (d.link.outlook_id if d.link else ""))
            or applied_o
            or "",
            sf_id=(d.sf.id if d.sf else (d.link.sf_id if d.link else "")) or applied_s or "",
            link_key=d.link_key or None,
            message=(message or d.action)[:500],
            detail=self._why(d, detail),
        )

    def _why(self, d: Decision, detail: dict) -> dict:
        """The entry's detail: the caller's, with what the item trace needs (why.py);
        a rule the caller names (a failed write) wins over the decision's own."""
        why = decision_detail(d, kind=self.kind, policy=self.policy, now=now())
        if detail.get("rule"):
            why["rule"] = detail["rule"]
        return {"title": (d.title or "")[:120], **detail, **why}

    def _log_guarded(self, decisions: list[Decision]) -> None:
        """The mass-delete guard stopped the run: each delete it held back is named on
        its item, so the trace says why the item still exists."""
        for d in decisions:
            if any(w.op == "delete" for w in d.writes):
                self._log(
                    "warning",
                    d,
                    "Not deleted: the mass-delete guard stopped the run.",
                    {"rule": "mass_delete_guard"},
                )


class _Review:
    """A reviewed Manual plan, applied block by block: only decisions identical to an
    included planned item go through; the rest is reported and read again next run."""

    def __init__(self, engine: _Run, plan_run_id: int):
        self.engine = engine
        # Only the signature columns and the result's hash: a 10,000-item plan's
        # stored records never come back into memory.
        rows = PlannedChange.objects.filter(
            run_id=plan_run_id, run__membership=engine.membership
        ).values_list(
            "action",
            "side",
            "outlook_id",
            "sf_id",
            "outlook_version",
            "sf_version",
            KeyTextTransform("hash", "after"),
            "pk",
            "included",
            "link_key",
            "winner",
        )
        self.planned = {
            (*row[:6], row[6] or ""): tuple(row[7:]) for row in rows.iterator(chunk_size=2000)
        }
        self.plan_run_id = plan_run_id
        self.included = sum(1 for p in self.planned.values() if p[1])
        self.applied: list[int] = []
        self.incomplete = False
        self.finished = False

    def keep(self, decisions: list[Decision]) -> list[Decision]:
        keep = []
        for d in decisions:
            p = self.planned.pop(_sig(d), None)
            if p is not None and p[1]:
                pk, _, key, winner = p
                # Use the reviewed key so the new link is the one that was shown.
                if d.link is None and key:
                    d = dataclasses.replace(d, link_key=str(key))
                if winner and d.action == "conflict":
                    # The member chose this conflict's winner on the review page.
                    d = decide_with_winner(self.engine.kind, self.engine.policy, d, winner)
                keep.append(d)
                self.applied.append(pk)
            else:
                self.incomplete = True
        return keep

    def finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        PlannedChange.objects.filter(pk__in=self.applied).update(status=PlanStatus.APPLIED)
        stale = [pk for pk, included, _, _ in self.planned.values() if included]
        PlannedChange.objects.filter(pk__in=stale).update(status=PlanStatus.STALE)
        PlannedChange.objects.filter(run_id=self.plan_run_id, included=False).update(
            status=PlanStatus.SKIPPED
        )
        for p in PlannedChange.objects.filter(pk__in=stale).only(
            "outlook_id", "sf_id", "link_key", "title"
        ):
            self.engine.log.append(
                SyncLogEntry(
                    run=self.engine.run,
                    level="warning",
                    action="stale",
                    outlook_id=p.outlook_id,
                    sf_id=p.sf_id,
                    link_key=p.link_key,
                    message=f"Not applied: “{p.title[:80]}” changed since the preview; "
                    "it is in the next preview.",
                    detail={"title": p.title[:120], "rule": "stale"},
                )
            )


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


def _project(c: Counts, decisions: list[Decision]) -> None:
    """Add what `decisions` would do to the projected counts of a preview."""
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
    completed = False
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
                log_now=engine._log_now,
            ).apply([d])
            result.counts = out.counts
            for level, dd, message, detail in out.log:
                engine._log(level, dd, message, detail)
            if out.failed_keys:
                result.status = RunStatus.FAILED
                errors = [m for lvl, _, m, _ in out.log if lvl == "error"]
                result.message = (
                    errors[0] if errors else "Salesforce refused the event; see the log."
                )[:900]
        completed = True
    except RunStopped as stop:
        result.status, result.message = stop.status, stop.message
    except errors.AuthError as exc:
        result.status = RunStatus.STOPPED
        result.message = _auth_message(membership, exc)
    except errors.RemoteError as exc:
        result.status = RunStatus.FAILED
        result.message = f"{_side_label(exc)} did not answer: {getattr(exc, 'message', '') or exc}"[
            :900
        ]
    except Exception as exc:
        _crashed(result, exc, run)
    finally:
        result.api_requests = {OUTLOOK: counter.outlook, SALESFORCE: counter.salesforce}
        if result.status == RunStatus.RUNNING:
            if completed:
                result.status = RunStatus.SUCCEEDED
            else:
                result.status = RunStatus.FAILED
                result.message = result.message or INTERRUPTED
        if result.status != RunStatus.SUCCEEDED and result.message:
            log.append(
                SyncLogEntry(run=run, level="error", action="run", message=result.message[:500])
            )
        SyncLogEntry.objects.bulk_create(log)
        SyncRun.objects.filter(pk=run.pk).update(
            status=result.status,
            counts=result.counts.as_dict(),
            api_outlook=counter.outlook,
            api_salesforce=counter.salesforce,
            finished_at=now(),
            error=result.message[:1000],
        )
        requests_add(membership.organization_id, run.started_at, counter.salesforce)
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
    # Forgotten under the run's lease: a sync going on meanwhile keeps its links.
    return run_sync(membership, kind, "rebuild", full=True, forget_links=True)


def plan_apply(
    membership, plan_run_id: int, *, exclude: set[int] | frozenset = frozenset()
) -> RunResult:
    """Apply a stored Manual plan exactly as reviewed (excluded items are left out;
    items changed since the plan are not applied and are reported)."""
    plan = SyncRun.objects.get(
        pk=plan_run_id, membership=membership, status=RunStatus.PLANNED, applied_run=None
    )
    if exclude:
        PlannedChange.objects.filter(run=plan, seq__in=exclude).update(included=False)
    result = run_sync(membership, plan.kind, "manual", reviewed_plan=plan.pk)
    SyncRun.objects.filter(pk=plan.pk).update(
        status=RunStatus.SUCCEEDED, finished_at=now(), applied_run_id=result.run_id
    )
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
