"""Reads of sync state. Tenant data is reached through the membership or org."""

from __future__ import annotations

from django.core.management.base import CommandError

from orgs.models import Membership

from .models import PlannedChange, SyncLink, SyncRun


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
