from __future__ import annotations

from typing import Any

from .access import OrgContext
from .models import AuditEntry


def audit_record(
    *,
    ctx: OrgContext,
    action: str,
    target: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEntry:
    """Record one change in the org's audit log. Callers must never pass secrets."""
    return AuditEntry.objects.create(
        organization=ctx.org,
        actor=ctx.user if getattr(ctx.user, "pk", None) else None,
        actor_email=getattr(ctx.user, "email", "") or "",
        acting_as_staff=ctx.acting_as_staff,
        action=action,
        target=target[:200],
        before=before or {},
        after=after or {},
    )
