"""django-q2 tasks: one sync per (member, kind), and the minute dispatcher (DESIGN §7).

The dispatcher claims due (member, kind) rows with the same lease a run takes
(a conditional UPDATE), so two dispatchers or two workers never start the same
sync twice; the claimed task runs under the dispatcher's lease token.
"""

from __future__ import annotations

import uuid
import zoneinfo

from django.db.models import Q

DISPATCH_SCHEDULE = "syncengine.dispatch"


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
        sync_schedule_next(membership_id=membership_id, kind=kind, minutes=_frequency(membership, kind, 30),
                           failed=result.status in ("failed", "stopped"))
    return result.as_dict()


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


def dispatch_due(limit: int = 200) -> int:
    """Enqueue a run for every due auto (member, kind); returns how many were claimed."""
    from django_q.tasks import async_task

    from orgs.models import Membership
    from policy.selectors import policy_effective_for_many

    from .engine.kinds import KINDS
    from .engine.run import LEASE_TTL, now
    from .models import SyncLease

    t = now()
    members = list(Membership.objects.filter(is_active=True).select_related("user"))
    claimed = 0
    for kind in KINDS:
        policies = policy_effective_for_many(members, kind)
        # SnapRecord members are dispatched too: their recorded events follow Outlook edits.
        triggers = {
            mid: eff.mode.value
            for mid, eff in policies.items()
            if eff.mode.value in ("auto", "snaprecord") and _in_time_window(eff, t)
        }
        auto_ids = list(triggers)
        existing = set(SyncLease.objects.filter(kind=kind, membership_id__in=auto_ids).values_list(
            "membership_id", flat=True))
        SyncLease.objects.bulk_create(
            [SyncLease(membership_id=mid, kind=kind, next_run_at=t) for mid in auto_ids if mid not in existing],
            ignore_conflicts=True,
        )
        SyncLease.objects.filter(kind=kind, membership_id__in=auto_ids, next_run_at__isnull=True).update(next_run_at=t)
        due = SyncLease.objects.filter(kind=kind, membership_id__in=auto_ids, next_run_at__lte=t).filter(
            Q(holder="") | Q(expires_at__lt=t) | Q(expires_at__isnull=True)
        ).values_list("pk", "membership_id")[:limit]
        for pk, mid in list(due):
            holder = f"dispatch-{uuid.uuid4().hex}"
            n = SyncLease.objects.filter(pk=pk).filter(
                Q(holder="") | Q(expires_at__lt=t) | Q(expires_at__isnull=True)
            ).update(holder=holder, expires_at=t + LEASE_TTL)
            if n == 1:
                claimed += 1
                async_task("syncengine.tasks.run_sync", mid, kind, triggers[mid], holder,
                           task_name=f"sync-{kind}-{mid}")
    return claimed


def schedule_ensure() -> None:
    """Create (or repair) the every-minute dispatcher schedule; safe to call any time."""
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name=DISPATCH_SCHEDULE,
        defaults={"func": "syncengine.tasks.dispatch_due", "schedule_type": Schedule.MINUTES, "minutes": 1,
                  "repeats": -1},
    )
