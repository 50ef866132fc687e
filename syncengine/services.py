"""Writes of the sync engine that pages, commands and tasks call.

The engine itself lives in `syncengine/engine/`; these are the named entry
points (keyword-only) and the scheduler's bookkeeping.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction

from orgs.models import Membership

from .engine.run import RunResult, now, plan_apply, rebuild, run_sync, snaprecord_event
from .models import SyncLease


def sync_run(*, membership: Membership, kind: str, trigger: str = "manual", dry_run: bool = False,
             plan_only: bool = False) -> RunResult:
    return run_sync(membership, kind, trigger, dry_run=dry_run, plan_only=plan_only)


def sync_plan_apply(*, membership: Membership, plan_run_id: int, exclude: frozenset[int] = frozenset()) -> RunResult:
    return plan_apply(membership, plan_run_id, exclude=exclude)


def sync_rebuild(*, membership: Membership, kind: str, apply: bool = False) -> RunResult:
    return rebuild(membership, kind, apply=apply)


def sync_snaprecord(*, membership: Membership, outlook_event_id: str) -> RunResult:
    return snaprecord_event(membership, outlook_event_id)


@transaction.atomic
def sync_schedule_next(*, membership_id: int, kind: str, minutes: int, failed: bool) -> None:
    """After an auto run: next due time, backing off exponentially on failures (≤ 1 day)."""
    lease, _ = SyncLease.objects.select_for_update().get_or_create(membership_id=membership_id, kind=kind)
    lease.consecutive_failures = lease.consecutive_failures + 1 if failed else 0
    delay = minutes * (2 ** min(lease.consecutive_failures, 6)) if failed else minutes
    lease.next_run_at = now() + timedelta(minutes=min(delay, 1440))
    lease.save(update_fields=["consecutive_failures", "next_run_at"])
