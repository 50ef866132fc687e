"""Reads of sync state. Tenant data is reached through the membership or org."""

from __future__ import annotations

from django.core.management.base import CommandError

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
