"""Writes of the sync engine that pages, commands and tasks call.

The engine itself lives in `syncengine/engine/`; these are the named entry
points (keyword-only) and the scheduler's bookkeeping.

Pages start work with `sync_start`: it creates a queued SyncRun and enqueues
`syncengine.tasks.run_queued` (by id) once the transaction commits; the task
runs the engine on that row, which writes its progress there every block.
"""

from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta

from django.db import transaction

from orgs.models import Membership

from .engine.kinds import KINDS
from .engine.run import (
    LEASE_TTL,
    RunResult,
    now,
    plan_apply,
    plan_ttl,
    rebuild,
    run_sync,
    snaprecord_event,
)
from .models import (
    PlannedChange,
    RunPurpose,
    RunStatus,
    SyncLease,
    SyncRun,
)

logger = logging.getLogger(__name__)

PLAN_SOURCES = (RunPurpose.PREVIEW, RunPurpose.REBUILD_PREVIEW)
TRIGGER_FOR = {
    RunPurpose.SYNC: "manual",
    RunPurpose.PREVIEW: "manual",
    RunPurpose.REBUILD_PREVIEW: "rebuild",
    RunPurpose.REBUILD: "rebuild",
    RunPurpose.APPLY_PLAN: "manual",
    RunPurpose.SETTINGS_PREVIEW: "manual",
}
ID_BLOCK = 500  # ids per IN (...) when a page sends a long selection
MAX_ROW_ID = 2**63 - 1  # the largest primary key any supported database stores
# A queued run whose task no worker took in this long is taken as lost (a worker
# waits at most tasks.WAIT_MAX × WAIT_SECONDS = 30 min for a held lease).
QUEUE_STALE = timedelta(hours=1)


class SyncRefused(Exception):
    """The request cannot be carried out; `message` says why and what to do."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


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
def sync_schedule_next(*, membership_id: int, kind: str, minutes: int, failed: bool,
                       not_before: datetime | None = None) -> None:
    """After an auto run: next due time, backing off exponentially on failures (≤ 1 day), and
    never before `not_before` (a service's Retry-After)."""
    lease, _ = SyncLease.objects.select_for_update().get_or_create(membership_id=membership_id, kind=kind)
    lease.consecutive_failures = lease.consecutive_failures + 1 if failed else 0
    delay = minutes * (2 ** min(lease.consecutive_failures, 6)) if failed else minutes
    # A little jitter (at most 30 s, or 5 % of a short interval): members claimed in the
    # same tick drift apart instead of all coming due in the same second again.
    jitter = random.uniform(0, min(30.0, delay * 3.0))
    lease.next_run_at = now() + timedelta(minutes=min(delay, 1440), seconds=jitter)
    if not_before is not None and lease.next_run_at < not_before:
        lease.next_run_at = not_before + timedelta(seconds=jitter)
    lease.save(update_fields=["consecutive_failures", "next_run_at"])


# ---------------------------------------------------------------- My sync: starting work


def sync_start(*, membership: Membership, kind: str, purpose: str, policy_overrides: dict | None = None,
               plan_run_id: int | None = None) -> SyncRun:
    """Queue one run of `purpose` for (member, kind) and enqueue its task on commit.

    A run of this member and kind already queued or running is returned instead
    (a second click shows the first run). Raises `SyncRefused` when a connection
    is missing or, for `apply_plan` / `rebuild`, when the plan cannot be applied.
    """
    run = sync_start_queued(membership=membership, kind=kind, purpose=purpose,
                            policy_overrides=policy_overrides, plan_run_id=plan_run_id)
    if run.status == RunStatus.QUEUED and getattr(run, "_created", False):
        transaction.on_commit(lambda: _enqueue(run.pk))
    return run


@transaction.atomic
def sync_start_queued(*, membership: Membership, kind: str, purpose: str, policy_overrides: dict | None = None,
                      plan_run_id: int | None = None) -> SyncRun:
    """`sync_start` without the enqueue (the commands run the task body inline)."""
    if purpose not in RunPurpose.values:
        raise SyncRefused("Unknown action; reload the page and try again.")
    if purpose == RunPurpose.REBUILD and plan_run_id is None:
        raise SyncRefused("A rebuild is always previewed first: preview the rebuild, review it, then apply it.")
    plan = None
    if plan_run_id is not None and purpose in (RunPurpose.APPLY_PLAN, RunPurpose.REBUILD):
        plan = _plan_for_update(membership, plan_run_id)
        kind = plan.kind
    elif purpose in (RunPurpose.APPLY_PLAN,):
        raise SyncRefused("Choose the plan to apply: start a preview, review it, then run the selection.")
    if kind not in KINDS:
        raise SyncRefused("Unknown kind of item; reload the page and try again.")
    _connections_usable(membership)
    if purpose == RunPurpose.SETTINGS_PREVIEW:
        _overrides_valid(membership, kind, policy_overrides)
    # One start at a time per member: concurrent clicks queue behind this lock.
    Membership.objects.select_for_update().filter(pk=membership.pk).first()
    overrides = dict(policy_overrides or {})
    active = _active_run(membership, kind, purpose, overrides)
    if active is not None:
        return active
    if plan is not None:
        why = _not_applicable(plan, purpose)
        if why:
            raise SyncRefused(why)
    t = now()
    run = SyncRun.objects.create(
        membership=membership,
        kind=kind,
        trigger="rebuild" if plan is not None and plan.purpose == RunPurpose.REBUILD_PREVIEW else TRIGGER_FOR[purpose],
        status=RunStatus.QUEUED,
        purpose=purpose,
        started_at=t,
        dry_run=purpose in (RunPurpose.PREVIEW, RunPurpose.REBUILD_PREVIEW, RunPurpose.SETTINGS_PREVIEW),
        policy_overrides=overrides,
        plan_expires_at=t + plan_ttl() if purpose in (*PLAN_SOURCES, RunPurpose.SETTINGS_PREVIEW) else None,
        progress={"phase": "queued", "read": {"outlook": 0, "salesforce": 0}, "decided": 0, "applied": 0,
                  "total": None},
    )
    # Claimed once: a second apply of the same plan finds it taken.
    if plan is not None and not SyncRun.objects.filter(pk=plan.pk, applied_run__isnull=True).update(
        applied_run=run
    ):
        raise SyncRefused("This plan is already being applied.")
    run._created = True
    return run


def _enqueue(run_id: int) -> None:
    from django_q.tasks import async_task

    from .tasks import RUN_TIMEOUT

    async_task("syncengine.tasks.run_queued", run_id, task_name=f"sync-run-{run_id}", timeout=RUN_TIMEOUT)


def _connections_usable(membership: Membership) -> None:
    from django.urls import reverse

    from connections.selectors import connection_for

    page = reverse("connections:my-connections", kwargs={"org_slug": membership.organization.slug})
    for provider, label in (("microsoft", "Outlook"), ("salesforce", "Salesforce")):
        conn = connection_for(membership, provider)
        if conn is None or conn.status == "revoked":
            raise SyncRefused(f"{label} is not connected: connect it on the My connections page ({page}), "
                              "then try again.")
        if not conn.is_usable:
            raise SyncRefused(f"{label} needs a reconnect: reconnect it on the My connections page ({page}), "
                              "then try again.")


def _overrides_valid(membership: Membership, kind: str, overrides: dict | None) -> None:
    from django.core.exceptions import ValidationError

    from policy.selectors import policy_effective_for

    if not overrides:
        raise SyncRefused("Change a setting first, then preview what it would do.")
    try:
        policy_effective_for(membership, kind, overrides=overrides)
    except ValidationError as exc:
        raise SyncRefused("This change cannot be previewed: " + " ".join(exc.messages)) from None


def _active_run(membership: Membership, kind: str, purpose: str, overrides: dict) -> SyncRun | None:
    """The run of this member and kind that is queued or still running, if any.

    A settings preview takes no lease and writes nothing, so it neither waits for
    nor blocks a sync: only the same preview (same proposed values) is "the same run".
    A `running` row older than the lease can be a killed worker's: it does not block.
    A `queued` row no worker took within QUEUE_STALE (its task was lost) is closed
    with what to do, so it never blocks the member's next click.
    """
    qs = SyncRun.objects.filter(membership=membership, kind=kind, status__in=[RunStatus.QUEUED, RunStatus.RUNNING])
    if purpose == RunPurpose.SETTINGS_PREVIEW:
        qs = qs.filter(purpose=RunPurpose.SETTINGS_PREVIEW)
    else:
        qs = qs.exclude(purpose=RunPurpose.SETTINGS_PREVIEW)
    fresh = now() - LEASE_TTL
    for run in qs.order_by("-pk")[:5]:
        if run.status == RunStatus.RUNNING and run.started_at < fresh:
            continue
        if run.status == RunStatus.QUEUED and run.started_at < now() - QUEUE_STALE:
            logger.warning("sync run %s was never picked up by a worker; closed", run.pk)
            run_fail(run_id=run.pk, message="This run never started (no worker picked it up). "
                     "Start it again; if it keeps waiting, tell your administrator.")
            continue
        if purpose == RunPurpose.SETTINGS_PREVIEW and run.policy_overrides != overrides:
            continue
        return run
    return None


def _plan_for_update(membership: Membership, plan_run_id: int) -> SyncRun:
    plan = SyncRun.objects.select_for_update().filter(pk=plan_run_id, membership=membership).first()
    if plan is None:
        # Another member's plan reads exactly like a missing one.
        raise SyncRefused("This plan is not available: start a new preview.")
    return plan


def _not_applicable(plan: SyncRun, purpose: str = RunPurpose.APPLY_PLAN) -> str:
    """Why `plan` cannot be applied (or edited), in words a member understands; "" when it can."""
    if plan.purpose == RunPurpose.SETTINGS_PREVIEW:
        return ("This preview shows what a settings change would do; it cannot be applied. "
                "Save the setting, then preview a sync.")
    if plan.purpose not in PLAN_SOURCES:
        return "This run is not a preview, so there is nothing to apply: start a preview."
    if purpose == RunPurpose.REBUILD and plan.purpose != RunPurpose.REBUILD_PREVIEW:
        return "This is not a rebuild preview: preview the rebuild, then apply it."
    if plan.applied_run_id is not None:
        return "This plan was already applied. Start a new preview to see what is left to sync."
    if plan.status in (RunStatus.QUEUED, RunStatus.RUNNING):
        return "The preview is still being prepared: wait for it to finish, then review it."
    if plan.status != RunStatus.PLANNED:
        return "This preview did not finish, so it cannot be applied: start a new preview."
    if plan.plan_expires_at is None or plan.plan_expires_at <= now():
        return "This preview has expired (previews are kept for a day): start a new preview."
    return ""


# ---------------------------------------------------------------- My sync: the review page


def _editable_plan(membership: Membership, run_id: int) -> SyncRun:
    plan = SyncRun.objects.filter(pk=run_id, membership=membership).first()
    if plan is None:
        raise SyncRefused("This plan is not available: start a new preview.")
    why = _not_applicable(plan)
    if why:
        raise SyncRefused(why)
    return plan


@transaction.atomic
def plan_set_included(*, membership: Membership, run_id: int, change_ids: list[int] | None = None,
                      action_group: str | None = None, included: bool) -> int:
    """Include or leave out items of a plan (by id, or a whole group); returns how many rows changed.

    Ids that are not items of this plan (a tampered form) refuse the whole request.
    """
    plan = _editable_plan(membership, run_id)
    qs = PlannedChange.objects.filter(run=plan)
    if action_group is not None:
        qs = qs.filter(_group_q(action_group))
    if change_ids is None:
        return qs.update(included=included) if action_group is not None else 0
    ids = sorted({int(i) for i in change_ids})
    if ids and not (ids[0] > 0 and ids[-1] <= MAX_ROW_ID):
        # Beyond any row id (a tampered form): the database driver would overflow on it.
        raise SyncRefused("Some selected items are not in this plan: reload the review page and select again.")
    blocks = [ids[i : i + ID_BLOCK] for i in range(0, len(ids), ID_BLOCK)]
    found = sum(qs.filter(pk__in=block).count() for block in blocks)
    if found != len(ids):
        raise SyncRefused("Some selected items are not in this plan: reload the review page and select again.")
    return sum(qs.filter(pk__in=block).exclude(included=included).update(included=included) for block in blocks)


def _group_q(action_group: str):
    from django.db.models import Q

    from . import selectors

    groups = getattr(selectors, "GROUPS_BY_KEY", {})
    if action_group in groups:
        return groups[action_group].q
    if action_group in ("create", "update", "delete", "link", "conflict", "skip", "error"):
        return Q(action=action_group)
    raise SyncRefused("Unknown group of items: reload the review page and try again.")


@transaction.atomic
def plan_set_winner(*, membership: Membership, run_id: int, change_id: int, winner: str) -> PlannedChange:
    """Choose which side wins one conflict of a plan ("" = the policy's winner)."""
    if winner not in ("", "outlook", "salesforce"):
        raise SyncRefused("Choose Outlook or Salesforce as the winner.")
    plan = _editable_plan(membership, run_id)
    change = PlannedChange.objects.filter(run=plan, pk=change_id).first()
    if change is None:
        raise SyncRefused("This item is not in this plan: reload the review page.")
    if change.action != "conflict":
        raise SyncRefused("Only a conflict has a winner to choose.")
    PlannedChange.objects.filter(pk=change.pk).update(winner=winner)
    change.winner = winner
    return change


# ---------------------------------------------------------------- Auto: pause, plan expiry


def sync_auto_pause(*, membership: Membership, kind: str, paused: bool) -> SyncLease:
    """Pause or resume Auto sync of one kind for one member (`SyncLease.auto_paused`);
    the dispatcher skips paused rows. A resumed kind is due at once."""
    if kind not in KINDS:
        raise SyncRefused("Unknown kind of item; reload the page and try again.")
    lease, _ = SyncLease.objects.get_or_create(membership=membership, kind=kind)
    fields = {"auto_paused": paused}
    if not paused and (lease.next_run_at is None or lease.next_run_at > now()):
        fields["next_run_at"] = now()
    SyncLease.objects.filter(pk=lease.pk).update(**fields)
    for name, value in fields.items():
        setattr(lease, name, value)
    logger.info("auto sync %s", "paused" if paused else "resumed",
                extra={"membership_id": membership.pk, "kind": kind})
    return lease


def sync_plans_purge(*, batch: int = 1000, max_batches: int = 100) -> int:
    """Delete the items of expired plans, `batch` rows per statement; returns rows deleted.

    An expired plan's run row stays (history); its `plan_expires_at` is cleared once
    its items are gone, so the next purge does not look at it again and a cleared
    expiry still reads as expired when someone tries to apply it.
    """
    t = now()
    deleted = 0
    runs = list(SyncRun.objects.filter(plan_expires_at__lte=t).order_by("plan_expires_at")
                .values_list("pk", flat=True)[:max_batches])
    for run_pk in runs:
        while deleted < batch * max_batches:
            pks = list(PlannedChange.objects.filter(run_id=run_pk).values_list("pk", flat=True)[:batch])
            if not pks:
                SyncRun.objects.filter(pk=run_pk).update(plan_expires_at=None)
                break
            deleted += PlannedChange.objects.filter(pk__in=pks).delete()[0]
    return deleted


@transaction.atomic
def run_fail(*, run_id: int, message: str) -> None:
    """Close a queued or running run as failed with `message` (shown to the member).

    A plan whose applying run fails before it started was not touched: it is
    released, so the member can run the selection again.
    """
    run = SyncRun.objects.filter(pk=run_id).only("status", "progress").first()
    if run is None or run.status not in (RunStatus.QUEUED, RunStatus.RUNNING):
        return
    if run.status == RunStatus.QUEUED:
        SyncRun.objects.filter(applied_run_id=run_id).update(applied_run=None)
    SyncRun.objects.filter(pk=run_id, status=run.status).update(
        status=RunStatus.FAILED, error=message[:1000], finished_at=now(),
        progress={**(run.progress or {}), "phase": "done"},
    )


__all__ = [
    "SyncRefused",
    "plan_set_included",
    "plan_set_winner",
    "sync_auto_pause",
    "sync_plans_purge",
    "sync_start",
]


# ---------------------------------------------------------------- org dashboard (issue 14)

ALERT_DIGEST_SCHEDULE = "syncengine.alert-digest"


def org_sync_settings_update(*, ctx, api_share_percent: int, alert_delivery: str,
                             sf_refresh_policy: str, sf_refresh_days: int | None):
    """Save the dashboard's settings (validated by the form) and audit the change."""
    from orgs.audit import audit_record

    from .models import OrgSyncSettings

    with transaction.atomic():
        row, _ = OrgSyncSettings.objects.select_for_update().get_or_create(organization=ctx.org)
        fields = ("api_share_percent", "alert_delivery", "sf_refresh_policy", "sf_refresh_days")
        before = {f: getattr(row, f) for f in fields}
        row.api_share_percent, row.alert_delivery = api_share_percent, alert_delivery
        row.sf_refresh_policy, row.sf_refresh_days = sf_refresh_policy, sf_refresh_days
        row.save()
        after = {f: getattr(row, f) for f in fields}
        if before != after:
            audit_record(ctx=ctx, action="sync_settings.update", target="sync dashboard",
                         before=before, after=after)
    return row


def _admin_emails(org_id: int) -> list[str]:
    return list(Membership.objects.active().filter(organization_id=org_id, role__in=("owner", "admin"))
                .order_by("user__email").values_list("user__email", flat=True))


def _alert_mail(*, to: list[str], subject: str, lines: list[str], org) -> None:
    from django.conf import settings
    from django.core.mail import send_mail

    if not to:
        return
    url = f"{settings.SITE_URL}/o/{org.slug}/"
    send_mail(subject, "\n".join([*lines, "", f"Open LinkPoint: {url}"]), None, to,
              fail_silently=False)


def alerts_check(*, membership_id: int) -> list:
    """Raise today's alerts for one member (reconnect, a kind failing N times in a row) and
    resolve those whose cause is gone. One alert per member, cause and day (a unique row):
    the member is e-mailed once; the admins too unless the org chose the daily digest.
    Called after every run; safe to call any time."""
    from django.db import IntegrityError

    from .models import AlertCause, AlertDelivery, OrgSyncSettings, SyncAlert
    from .selectors import FAILING_AFTER, org_sync_health

    m = Membership.objects.select_related("user", "organization").filter(
        pk=membership_id, is_active=True).first()
    if m is None:
        return []
    (health,) = org_sync_health(org=m.organization, memberships=[m])
    causes: dict[tuple[str, str], str] = {}
    for f in (health.microsoft, health.salesforce):
        if f.stopped:
            causes[(AlertCause.RECONNECT, f.provider)] = (
                f"{m.user.email} needs to reconnect {f.label}: syncing stopped until they do.")
    # Runs stopped by a refused sign-in are the reconnect's consequence, not another cause.
    for k in health.kinds if not causes else ():
        if k.failures_in_row >= FAILING_AFTER:
            error = (k.last_run.error if k.last_run is not None else "")[:200]
            causes[(AlertCause.FAILING, k.kind)] = (
                f"{k.label} sync of {m.user.email} failed {k.failures_in_row} times in a row"
                + (f": {error}" if error else "."))
    t = now()
    SyncAlert.objects.filter(membership=m, resolved_at__isnull=True).exclude(
        id__in=[a.pk for a in SyncAlert.objects.filter(membership=m, resolved_at__isnull=True)
                if (a.cause, a.subject) in causes]).update(resolved_at=t)
    delivery = (OrgSyncSettings.objects.filter(organization_id=m.organization_id)
                .values_list("alert_delivery", flat=True).first() or AlertDelivery.IMMEDIATE)
    raised = []
    for (cause, subject), message in causes.items():
        try:
            with transaction.atomic():
                alert, created = SyncAlert.objects.get_or_create(
                    membership=m, cause=cause, subject=subject, day=t.date(),
                    defaults={"organization_id": m.organization_id, "message": message[:500]})
        except IntegrityError:  # a concurrent worker raised it first
            continue
        if not created:
            continue
        raised.append(alert)
        logger.warning("sync alert %s/%s for membership %s: %s", cause, subject, m.pk, message)
        _alert_mail(to=[m.user.email], subject=f"LinkPoint: {message[:120]}", org=m.organization,
                    lines=[message, "", "Open LinkPoint to see what to do."])
        fields = {"member_emailed_at": t}
        if delivery == AlertDelivery.IMMEDIATE:
            admins = [e for e in _admin_emails(m.organization_id) if e != m.user.email]
            _alert_mail(to=admins, subject=f"LinkPoint alert in {m.organization.name}",
                        org=m.organization, lines=[message])
            fields["admins_emailed_at"] = t
        SyncAlert.objects.filter(pk=alert.pk).update(**fields)
    return raised


def alerts_digest_send() -> int:
    """Scheduled daily: each digest org's admins get one e-mail with the alerts not yet sent
    to them. Returns how many e-mails went out; a re-run sends nothing twice."""
    from orgs.models import Organization

    from .models import AlertDelivery, SyncAlert

    t = now()
    pending = SyncAlert.objects.filter(
        admins_emailed_at__isnull=True,
        organization__sync_settings__alert_delivery=AlertDelivery.DIGEST,
    ).order_by("organization_id", "created_at", "pk")
    by_org: dict[int, list] = {}
    for alert in pending:
        by_org.setdefault(alert.organization_id, []).append(alert)
    sent = 0
    for org in Organization.objects.filter(pk__in=list(by_org)):
        alerts = by_org[org.pk]
        _alert_mail(to=_admin_emails(org.pk), org=org,
                    subject=f"LinkPoint daily digest for {org.name}: {len(alerts)} alert(s)",
                    lines=[f"- {a.message}" + (" (resolved since)" if a.resolved_at else "")
                           for a in alerts])
        SyncAlert.objects.filter(pk__in=[a.pk for a in alerts]).update(admins_emailed_at=t)
        sent += 1
    return sent


def alerts_schedule_ensure() -> None:
    """The daily digest's schedule, created (or repaired) idempotently by name."""
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name=ALERT_DIGEST_SCHEDULE,
        defaults={"func": "syncengine.services.alerts_digest_send", "schedule_type": Schedule.DAILY,
                  "repeats": -1},
    )
