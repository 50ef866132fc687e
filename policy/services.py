"""Writes of sync policy. Every change is validated here (the forms may be bypassed) and audited."""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from orgs.access import OrgContext
from orgs.audit import audit_record
from orgs.models import Membership

from . import registry
from .extensions import Advice, advise
from .models import OrgPolicy, PolicyNotice, UserPolicy
from .selectors import (
    PolicyLocked,  # noqa: F401  (callers catch it from services)
    member_overrides_proposed,
    org_policy_get,
    resolve,
)

AUTO_REPLACES_SNAPRECORD = "Auto sync replaces SnapRecord: SnapRecord is now off for the calendar."


@dataclass
class PolicyChange:
    """What a service saved, plus notes on values it adjusted so the page can say so."""

    policy: OrgPolicy | UserPolicy
    notes: list[str] = field(default_factory=list)
    # Advice other apps gave on the change (informational once saved).
    advice: list[Advice] = field(default_factory=list)


class AdviceRequired(Exception):
    """A member's change was not saved: an advisor asks them to look first (e.g. preview)."""

    def __init__(self, advice: list[Advice]):
        super().__init__("; ".join(a.message for a in advice))
        self.advice = advice


def _advice_on(*, org, membership, kind: str, before: Mapping, after: Mapping, fields) -> list:
    """Advice on each field whose effective value the change moves."""
    out = []
    for name in fields:
        if before.get(name) != after.get(name):
            out += advise(org=org, membership=membership, kind=kind, field=name, value=after[name])
    return out


def _jsonable(value: Any) -> Any:
    return value.strftime("%H:%M") if isinstance(value, dt.time) else value


def _winner_fix(direction: str, winner: str | None) -> tuple[str | None, str]:
    """For one-way sync the winner is the source side; return the fixed value and a note."""
    source = registry.SOURCE_SIDE.get(direction)
    if source is None or winner is None or winner == source:
        return winner, ""
    side = registry.SIDE_LABELS[source]
    return source, (
        f"Conflict winner set to {side}: with one-way sync {dict(registry.DIRECTION_CHOICES)[direction]}, "
        f"{side}'s version always wins, so the setting is not used."
    )


def _require_admin(ctx: OrgContext) -> None:
    if not ctx.is_admin:
        raise PermissionDenied("Only admins change the organization's sync policy.")


def _require_can_edit_member(ctx: OrgContext, membership: Membership) -> None:
    if membership.organization_id != ctx.org.pk:
        raise PermissionDenied("That member belongs to another organization.")
    is_self = ctx.membership is not None and ctx.membership.pk == membership.pk
    if not (is_self or ctx.is_admin):
        raise PermissionDenied("You can only change your own sync settings.")


@transaction.atomic
def org_policy_update(
    *,
    ctx: OrgContext,
    kind: str,
    values: Mapping[str, Any] | None = None,
    locks: Iterable[str] | None = None,
) -> PolicyChange:
    """Change the org's values for `kind` and/or replace its set of locked fields.

    Newly locked fields lose every member override (the lock would hide them
    anyway; keeping them would resurrect them on unlock), the affected members
    get a notice, and the clearing is audited.
    """
    _require_admin(ctx)
    registry.check_kind(kind)
    values = registry.clean_values(kind, values or {})
    if any(v is None for v in values.values()):
        raise ValidationError("The organization's policy needs a value for every setting.")

    policy = OrgPolicy.objects.select_for_update().filter(organization=ctx.org, kind=kind).first()
    if policy is None:
        policy = OrgPolicy.with_defaults(organization_id=ctx.org.pk, kind=kind)
    before = policy.values()
    combined = {**before, **values}
    registry.check_combination(combined=combined, submitted=values)
    notes = []
    fixed, note = _winner_fix(combined["direction"], combined["conflict_winner"])
    if note:
        values["conflict_winner"] = fixed
        notes.append(note)
    if (
        kind == registry.CALENDAR
        and before["mode"] == "snaprecord"
        and values.get("mode") == "auto"
    ):
        notes.append(AUTO_REPLACES_SNAPRECORD)
    for name, value in values.items():
        setattr(policy, name, value)

    old_locks = policy.locked
    if locks is not None:
        locks = frozenset(locks)
        for name in locks:
            registry.get(name, kind)
        policy.locked_fields = [s.name for s in registry.settings_for(kind) if s.name in locks]
    policy.save()

    changed = {k: v for k, v in values.items() if before[k] != v}
    if changed:
        audit_record(
            ctx=ctx,
            action="policy.org_update",
            target=f"{kind} policy",
            before={k: _jsonable(before[k]) for k in changed},
            after={k: _jsonable(v) for k, v in changed.items()},
        )
    if policy.locked != old_locks:
        _apply_lock_change(ctx=ctx, policy=policy, old_locks=old_locks)
    advice = _advice_on(
        org=ctx.org, membership=None, kind=kind, before=before, after=policy.values(), fields=changed
    )
    return PolicyChange(policy=policy, notes=notes, advice=advice)


def _apply_lock_change(*, ctx: OrgContext, policy: OrgPolicy, old_locks: frozenset[str]) -> None:
    newly = [
        s.name for s in registry.settings_for(policy.kind) if s.name in policy.locked - old_locks
    ]
    cleared_members: list[str] = []
    cleared_counts: dict[str, int] = {}
    if newly:
        has_override = functools.reduce(
            lambda q, name: q | Q(**{f"{name}__isnull": False}), newly, Q()
        )
        rows = list(
            UserPolicy.objects.select_for_update()
            .filter(has_override, membership__organization=ctx.org, kind=policy.kind)
            .select_related("membership__user")
        )
        notices = []
        for row in rows:
            cleared = {name: getattr(row, name) for name in newly if getattr(row, name) is not None}
            for name in cleared:
                setattr(row, name, None)
                cleared_counts[name] = cleared_counts.get(name, 0) + 1
            cleared_members.append(row.membership.user.email)
            notices.append(_lock_notice(row.membership, policy, cleared))
        UserPolicy.objects.bulk_update(rows, newly)
        PolicyNotice.objects.bulk_create(notices)
    audit_record(
        ctx=ctx,
        action="policy.locks_update",
        target=f"{policy.kind} policy",
        before={"locked": sorted(old_locks)},
        after={
            "locked": list(policy.locked_fields),
            "overrides_cleared": cleared_counts,
            "members_notified": cleared_members,
        },
    )


def _lock_notice(membership: Membership, policy: OrgPolicy, cleared: dict) -> PolicyNotice:
    parts = []
    for name, old in cleared.items():
        s = registry.BY_NAME[name]
        parts.append(
            f"{s.label} is now {s.display(getattr(policy, name))} (you had {s.display(old)})"
        )
    kind_label = registry.KIND_LABELS[policy.kind].lower()
    return PolicyNotice(
        membership=membership,
        kind=policy.kind,
        fields=list(cleared),
        cleared_values={k: _jsonable(v) for k, v in cleared.items()},
        message=(
            f"Your organization locked {kind_label} settings you had changed: "
            + "; ".join(parts)
            + "."
        )[:500],
    )


@transaction.atomic
def user_policy_set(
    *,
    ctx: OrgContext,
    membership: Membership,
    kind: str,
    values: Mapping[str, Any],
    advice_confirmed: bool = True,
) -> PolicyChange:
    """Set a member's overrides for `kind`; None resets a field to the org's value.

    Refuses locked fields even when called without the form. With
    `advice_confirmed=False` (the settings page before "Turn on anyway") a
    blocking advice on the change raises AdviceRequired and nothing is saved.
    """
    _require_can_edit_member(ctx, membership)
    registry.check_kind(kind)
    values = registry.clean_values(kind, values)
    org = org_policy_get(org=ctx.org, kind=kind)
    row, _ = UserPolicy.objects.select_for_update().get_or_create(membership=membership, kind=kind)
    before = row.overrides()
    overrides = member_overrides_proposed(org=org, current=before, values=values)

    def effective_with(user_values):
        resolved = resolve(
            kind=kind, org_values=org.values(), locked=org.locked, user_values=user_values
        )
        return {name: r.value for name, r in resolved.items()}

    effective = effective_with(overrides)
    advice = _advice_on(
        org=ctx.org,
        membership=membership,
        kind=kind,
        before=effective_with(before),
        after=effective,
        fields=values,
    )
    if not advice_confirmed and any(a.blocking for a in advice):
        raise AdviceRequired([a for a in advice if a.blocking])
    notes = []
    winner = overrides.get("conflict_winner")
    fixed, note = _winner_fix(effective["direction"], winner)
    if note and "conflict_winner" not in org.locked:
        values["conflict_winner"] = fixed
        notes.append(note)
    if kind == registry.CALENDAR and effective["mode"] == "auto" and values.get("mode") == "auto":
        notes.append(AUTO_REPLACES_SNAPRECORD)
    for name, value in values.items():
        setattr(row, name, value)
    row.save()

    after = row.overrides()
    if before != after:
        audit_record(
            ctx=ctx,
            action="policy.user_set",
            target=f"{membership.user.email} {kind}",
            before={k: _jsonable(before.get(k)) for k in values},
            after={k: _jsonable(after.get(k)) for k in values},
        )
    return PolicyChange(policy=row, notes=notes, advice=advice)


def user_policy_reset_field(
    *,
    ctx: OrgContext,
    membership: Membership,
    kind: str,
    field: str,
    advice_confirmed: bool = True,
) -> PolicyChange:
    """Forget a member's own value for `field`, so the org's applies again."""
    registry.get(field, kind)
    return user_policy_set(
        ctx=ctx,
        membership=membership,
        kind=kind,
        values={field: None},
        advice_confirmed=advice_confirmed,
    )


@functools.cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def validate_time_zone(name: str) -> str:
    name = (name or "").strip() if isinstance(name, str) else ""
    if name not in _time_zones():
        # Name the input, but never echo a 100k-character or control-laden value back.
        shown = "".join(c if c.isprintable() else "?" for c in name[:60])
        shown += "…" if len(name) > 60 else ""
        raise ValidationError(
            {
                "time_zone": [
                    f"Unknown time zone “{shown}”. Choose one from the list, "
                    "such as Europe/Berlin or America/New_York."
                ]
            }
        )
    return name


@transaction.atomic
def member_time_zone_set(*, ctx: OrgContext, time_zone: str) -> None:
    """Set the caller's own time zone (it belongs to the person, so every org sees it)."""
    time_zone = validate_time_zone(time_zone)
    user = ctx.user
    before = user.time_zone
    if before == time_zone:
        return
    user.time_zone = time_zone
    user.save(update_fields=["time_zone"])
    audit_record(
        ctx=ctx,
        action="policy.time_zone_set",
        target=user.email,
        before={"time_zone": before},
        after={"time_zone": time_zone},
    )


def policy_notice_dismiss(*, notice: PolicyNotice) -> None:
    # Not audited: dismissing a notice changes nobody's settings.
    if notice.dismissed_at is None:
        notice.dismissed_at = timezone.now()
        notice.save(update_fields=["dismissed_at"])
