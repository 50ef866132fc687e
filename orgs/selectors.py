"""Reads of tenant data. Every selector takes `org=` first and returns rows of
that organization only, with the relations its pages need already joined."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q, QuerySet

from .models import AuditEntry, Invitation, Membership, Organization


def membership_list(*, org: Organization) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(organization=org)
        .select_related("user", "organization")
        .order_by("-is_active", "user__email")
    )


def membership_get(*, org: Organization, public_id) -> Membership:
    """Raises Membership.DoesNotExist for another org's id as for a missing one."""
    return membership_list(org=org).get(public_id=public_id)


def membership_exists(*, org: Organization, user) -> bool:
    return Membership.objects.filter(organization=org, user=user).exists()


def membership_active_owner_count(*, org: Organization) -> int:
    return Membership.objects.filter(organization=org, role="owner", is_active=True).count()


def invitation_list_open(*, org: Organization) -> QuerySet[Invitation]:
    return (
        Invitation.objects.filter(organization=org, accepted_at__isnull=True, revoked_at__isnull=True)
        .select_related("invited_by", "organization")
        .order_by("-created_at", "-id")
    )


def invitation_get_open(*, org: Organization, public_id) -> Invitation:
    return invitation_list_open(org=org).get(public_id=public_id)


def invitation_get_by_token(*, token: str) -> Invitation | None:
    """The token is the credential: it alone names the organization."""
    return Invitation.objects.select_related("organization").filter(token=token).first()


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditEntry]
    next_cursor: str | None


def _encode_cursor(entry: AuditEntry) -> str:
    raw = f"{entry.created_at.isoformat()}|{entry.pk}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, int] | None:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, pk = raw.rsplit("|", 1)
        return datetime.fromisoformat(stamp), int(pk)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None


def audit_list(*, org: Organization, cursor: str | None = None, limit: int = 50) -> AuditPage:
    """Newest first, paged by keyset on (created_at, id): page N costs what page 1 costs,
    and rows written while someone pages never shift or repeat entries (OFFSET would)."""
    qs = AuditEntry.objects.filter(organization=org).order_by("-created_at", "-id")
    position = _decode_cursor(cursor) if cursor else None
    if position is not None:
        stamp, pk = position
        qs = qs.filter(Q(created_at__lt=stamp) | Q(created_at=stamp, id__lt=pk))
    rows = list(qs[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return AuditPage(entries=rows, next_cursor=_encode_cursor(rows[-1]) if more and rows else None)


# --- Professional Services directory (platform staff only) ------------------------------------


@dataclass(frozen=True)
class DirectoryPage:
    orgs: list[Organization]
    next_cursor: str


def organization_directory(*, q: str = "", cursor: str = "", limit: int = 50) -> DirectoryPage:
    """Every organization by name (keyset on name, id), filtered by name or slug."""
    qs = Organization.objects.all()
    if q:
        qs = qs.filter(Q(name__icontains=q) | Q(slug__icontains=q.lower()))
    after = _decode_directory_cursor(cursor)
    if after is not None:
        name, pk = after
        qs = qs.filter(Q(name__gt=name) | Q(name=name, pk__gt=pk))
    rows = list(qs.order_by("name", "pk")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    nxt = ""
    if more and rows:
        nxt = base64.urlsafe_b64encode(f"{rows[-1].pk}|{rows[-1].name}".encode()).decode()
    return DirectoryPage(orgs=rows, next_cursor=nxt)


def _decode_directory_cursor(cursor: str) -> tuple[str, int] | None:
    if not cursor or len(cursor) > 400:
        return None
    try:
        pk, name = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        return name, int(pk)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
