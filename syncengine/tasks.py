"""django-q2 tasks: one sync per (member, kind), and the minute dispatcher (DESIGN §7).

The dispatcher (`dispatch.py`) claims due (member, kind) rows with the same
lease a run takes (SKIP LOCKED on PostgreSQL, a conditional UPDATE elsewhere), so
two dispatchers or two workers never start the same sync twice; the claimed task
runs under the dispatcher's lease token.
"""

from __future__ import annotations

import logging
import zoneinfo
from datetime import timedelta

DISPATCH_SCHEDULE = "syncengine.dispatch"
PURGE_SCHEDULE = "syncengine.purge-plans"
# Below the cluster's `retry` (720 s): a slow run is never handed to a second worker.
RUN_TIMEOUT = 600
# A queued run whose (member, kind) lease is held waits and tries again, up to WAIT_MAX times.
WAIT_SECONDS = 30
WAIT_MAX = 60

logger = logging.getLogger(__name__)


def run_queued(run_id: int) -> dict:
    """Task body for the pages' work: load the queued run by id and carry out its purpose.

    Idempotent: a run that is no longer queued (a retried or duplicated task) is
    left alone. A held lease (an auto run is going) keeps the run queued and
    tries again shortly.
    """
    from .models import RunStatus, SyncRun
    from .services import run_fail

    run = SyncRun.objects.select_related("membership__user", "membership__organization").filter(pk=run_id).first()
    if run is None or run.status != RunStatus.QUEUED:
        return {"run_id": run_id, "status": getattr(run, "status", "gone"), "message": "not queued"}
    if not run.membership.is_active:
        run_fail(run_id=run.pk, message="This membership is no longer active, so nothing was synced.")
        return {"run_id": run_id, "status": "failed"}
    try:
        result = _carry_out(run)
    except Exception:
        # Support sees the traceback in the worker log; the member sees what to do.
        logger.exception("sync run %s (%s) crashed", run.pk, run.purpose)
        run_fail(run_id=run.pk, message="Something went wrong on our side and the run stopped. "
                 "Nothing more will be written by it; try again in a few minutes.")
        return {"run_id": run_id, "status": "failed"}
    if result.get("status") == "skipped":
        _wait_for_lease(run)
    elif run.purpose not in ("preview", "rebuild_preview", "settings_preview"):
        _alerts(run.membership_id)
    return result


def _carry_out(run) -> dict:
    from django.core.exceptions import ValidationError

    from .engine.run import engine_policy, now, plan_ttl, run_sync
    from .models import RunPurpose, RunStatus, SyncRun
    from .services import run_fail

    m, kind, purpose = run.membership, run.kind, run.purpose
    if purpose == RunPurpose.SYNC:
        result = run_sync(m, kind, run.trigger, run_id=run.pk)
    elif purpose in (RunPurpose.PREVIEW, RunPurpose.REBUILD_PREVIEW):
        rebuild = purpose == RunPurpose.REBUILD_PREVIEW
        result = run_sync(m, kind, run.trigger, run_id=run.pk, plan_only=True, full=rebuild,
                          ignore_links=rebuild)
    elif purpose == RunPurpose.SETTINGS_PREVIEW:
        try:
            policy = engine_policy(m, kind, run.policy_overrides or None)
        except ValidationError as exc:
            run_fail(run_id=run.pk, message="This setting cannot be previewed: " + " ".join(exc.messages))
            return {"run_id": run.pk, "status": "failed"}
        result = run_sync(m, kind, run.trigger, run_id=run.pk, policy=policy, settings_preview=True)
    else:  # apply_plan, rebuild: a reviewed plan, exactly as reviewed
        plan = SyncRun.objects.filter(applied_run=run, membership=m).first()
        if plan is None:
            run_fail(run_id=run.pk, message="The plan of this run is gone (previews expire after a day): "
                     "start a new preview.")
            return {"run_id": run.pk, "status": "failed"}
        rebuild = plan.purpose == RunPurpose.REBUILD_PREVIEW
        result = run_sync(m, kind, run.trigger, run_id=run.pk, reviewed_plan=plan.pk, full=rebuild,
                          forget_links=rebuild)
        if result.status != "skipped":
            SyncRun.objects.filter(pk=plan.pk).update(status=RunStatus.SUCCEEDED)
    if result.status == RunStatus.PLANNED:
        SyncRun.objects.filter(pk=run.pk).update(plan_expires_at=now() + plan_ttl())
    return result.as_dict()


def _wait_for_lease(run) -> None:
    """Another run of this member and kind holds the lease: stay queued and try again soon."""
    from django_q.models import Schedule

    from .engine.run import now
    from .models import SyncRun
    from .services import run_fail

    waits = int((run.progress or {}).get("waits", 0)) + 1
    if waits > WAIT_MAX:
        run_fail(run_id=run.pk, message="Another sync of this kind kept running, so this one did not start. "
                 "Try again once it has finished.")
        return
    SyncRun.objects.filter(pk=run.pk).update(progress={**(run.progress or {}), "phase": "queued", "waits": waits})
    Schedule.objects.update_or_create(
        name=f"syncengine.wait-{run.pk}",
        defaults={"func": "syncengine.tasks.run_queued", "args": repr((run.pk,)), "schedule_type": Schedule.ONCE,
                  "repeats": -1, "next_run": now() + timedelta(seconds=WAIT_SECONDS)},
    )


def purge_expired_plans() -> int:
    """Scheduled: remove the items of expired plans, in batches."""
    from .services import sync_plans_purge

    return sync_plans_purge()


def run_sync(membership_id: int, kind: str, trigger: str = "auto", holder: str | None = None) -> dict:
    """Task body: load by id, run, schedule the next auto run."""
    from orgs.models import Membership

    from .engine.run import run_sync as engine_run
    from .services import sync_schedule_next

    membership = Membership.objects.filter(pk=membership_id, is_active=True).first()
    if membership is None:
        return {"status": "skipped", "message": "membership gone"}
    result = engine_run(membership, kind, trigger, holder=holder)
    if trigger in ("auto", "snaprecord"):
        from .governor import budget_for

        # Near the org's Salesforce API budget the interval stretches (see governor.py).
        minutes = round(_frequency(membership, kind, 30) * budget_for(membership.organization_id).stretch)
        # A service that asked for a pause is waited for, not counted as a failure to back off from.
        sync_schedule_next(membership_id=membership_id, kind=kind, minutes=minutes,
                           failed=result.status in ("failed", "stopped") and result.resume_at is None,
                           not_before=result.resume_at)
    _alerts(membership_id)
    return result.as_dict()


def _alerts(membership_id: int) -> None:
    """Alerts after a run; a mail server fault must not fail the sync that already happened."""
    from .services import alerts_check

    try:
        alerts_check(membership_id=membership_id)
    except Exception:
        logger.exception("sync alerts for membership %s could not be raised", membership_id)


def _frequency(membership, kind, default) -> int:
    from policy.selectors import policy_effective_for

    r = getattr(policy_effective_for(membership, kind), "frequency_minutes", None)
    return int(getattr(r, "value", default) or default)


def _in_time_window(eff, now) -> bool:
    enabled = getattr(eff, "window_enabled", None)
    if enabled is None or not enabled.value:
        return True
    try:
        local = now.astimezone(zoneinfo.ZoneInfo(eff.time_zone or "UTC")).time()
    except zoneinfo.ZoneInfoNotFoundError:
        local = now.time()
    start, end = eff.window_start.value, eff.window_end.value
    return start <= local < end if start <= end else (local >= start or local < end)


def dispatch_due(limit: int | None = None) -> int:
    """Scheduled every minute: enqueue a run for every due auto / SnapRecord (member, kind).

    Returns how many were claimed. The work (reconcile what changed, claim fairly
    with a per-tick budget, enqueue) is in `dispatch.py`; `limit` overrides the budget.
    """
    from .dispatch import dispatch

    return dispatch(budget=limit)


def run_queue() -> str:
    """The broker queue the runs go to: the site's own (every run qcluster serves it).

    Named explicitly wherever a task enqueues runs, because the dispatcher's tick runs in a
    cluster of its own, whose default queue is the ticks'."""
    from django_q.conf import Conf

    return Conf.PREFIX


def dispatch_cluster() -> str | None:
    """The qcluster that runs the minute tick: `SYNC_DISPATCH_CLUSTER`, or None (the run clusters)."""
    from django.conf import settings

    return getattr(settings, "SYNC_DISPATCH_CLUSTER", "") or None


def schedule_ensure() -> None:
    """Create (or repair) the dispatcher's and the plan purge's schedules; safe to call any time.

    The tick's schedule targets the dispatcher cluster when there is one: that cluster's
    scheduler puts the tick in its own queue, which holds nothing else, so a backlog of runs
    never delays it (bench/results/scale_bench-2026-12-01.txt: ticks 648 s apart when it
    shared the runs' queue). Without one, the run clusters' scheduler runs it as before."""
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name=DISPATCH_SCHEDULE,
        defaults={"func": "syncengine.tasks.dispatch_due", "schedule_type": Schedule.MINUTES, "minutes": 1,
                  "repeats": -1, "cluster": dispatch_cluster()},
    )
    Schedule.objects.update_or_create(
        name=PURGE_SCHEDULE,
        defaults={"func": "syncengine.tasks.purge_expired_plans", "schedule_type": Schedule.MINUTES,
                  "minutes": 15, "repeats": -1},
    )
