"""Reads of sync policy. `policy_effective_for` is what the engine and scheduler call."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, make_dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Count

from accounts.models import User
from orgs.models import Membership, Organization

from . import registry
from .models import OrgPolicy, PolicyNotice, UserPolicy

ORG, LOCKED, USER = "org", "locked", "user"
SOURCE_LABELS = {
    ORG: "Organization default",
    LOCKED: "Locked by your organization",
    USER: "Your setting",
}


@dataclass(frozen=True)
class Resolved:
    """One effective value and where it came from.

    `note` explains a value the combination of settings makes moot (the winner
    of a one-way sync, deletes in a direction that is not synced); the value is
    then the one the engine must use, not the stored one.
    """

    value: Any
    source: str
    note: str = ""

    @property
    def source_label(self) -> str:
        return SOURCE_LABELS[self.source]


def _effective_items(self) -> tuple[tuple[str, Resolved], ...]:
    return tuple((s.name, getattr(self, s.name)) for s in registry.settings_for(self.kind))


def _effective_values(self) -> dict[str, Any]:
    return {name: r.value for name, r in self.items()}


def _snaprecord_enabled(self) -> bool:
    return self.kind == registry.CALENDAR and self.mode.value == "snaprecord"


def _auto_enabled(self) -> bool:
    return self.mode.value == "auto"


# One attribute per registry setting (a `Resolved`, or None where the setting
# does not apply to the kind), so the engine reads `eff.direction.value`.
EffectivePolicy = make_dataclass(
    "EffectivePolicy",
    [("kind", str), ("membership_id", int), ("time_zone", str)]
    + [(s.name, Resolved | None) for s in registry.SETTINGS],
    frozen=True,
    namespace={
        "__doc__": "Every effective setting of one member for one kind, with its source.",
        "__module__": __name__,
        "items": _effective_items,
        "values": _effective_values,
        "snaprecord_enabled": property(_snaprecord_enabled),
        "auto_enabled": property(_auto_enabled),
    },
)


def resolve(
    *,
    kind: str,
    org_values: Mapping[str, Any],
    locked: Iterable[str],
    user_values: Mapping[str, Any],
) -> dict[str, Resolved]:
    """Layer org defaults, locks and member overrides for one kind. Pure; no database.

    A lock beats an override even if a stale override row still holds a value.
    """
    locked = frozenset(locked)
    out: dict[str, Resolved] = {}
    for s in registry.settings_for(kind):
        if s.name in locked:
            out[s.name] = Resolved(org_values[s.name], LOCKED)
        elif user_values.get(s.name) is not None:
            out[s.name] = Resolved(user_values[s.name], USER)
        else:
            out[s.name] = Resolved(org_values[s.name], ORG)
    return _apply_derived_rules(out)


def _apply_derived_rules(out: dict[str, Resolved]) -> dict[str, Resolved]:
    direction = out["direction"].value
    source_side = registry.SOURCE_SIDE.get(direction)
    if source_side is not None:
        winner = out["conflict_winner"]
        # With one-way sync the source side's version is the only one that moves.
        out["conflict_winner"] = Resolved(
            source_side,
            winner.source,
            f"Not used for one-way sync: {registry.SIDE_LABELS[source_side]} always wins.",
        )
        unsynced = (
            "delete_salesforce_to_outlook"
            if direction == registry.OUTLOOK_TO_SALESFORCE
            else "delete_outlook_to_salesforce"
        )
        if out[unsynced].value:
            out[unsynced] = Resolved(
                False, out[unsynced].source, "Not used: that direction is not synced."
            )
    return out


def _build(
    membership_id: int,
    kind: str,
    time_zone: str,
    org: OrgPolicy,
    user_values: Mapping[str, Any],
) -> EffectivePolicy:
    resolved = resolve(
        kind=kind, org_values=org.values(), locked=org.locked, user_values=user_values
    )
    fields = {s.name: resolved.get(s.name) for s in registry.SETTINGS}
    return EffectivePolicy(kind=kind, membership_id=membership_id, time_zone=time_zone, **fields)


class PolicyLocked(ValidationError):
    """An override of a field the organization locked."""


def member_overrides_proposed(
    *, org: OrgPolicy, current: Mapping[str, Any], values: Mapping[str, Any]
) -> dict[str, Any]:
    """A member's overrides after applying `values` (already cleaned; None resets a field).

    Raises PolicyLocked for a locked field and ValidationError for a combination
    that cannot mean anything. Shared by the save and by the dry run, so a
    preview is refused exactly when the save would be.
    """
    locked = [name for name in values if name in org.locked]
    if locked:
        raise PolicyLocked(
            {
                name: [f"{registry.BY_NAME[name].label} is locked by your organization."]
                for name in locked
            }
        )
    overrides = {**current, **values}
    # The check runs on stored values: the resolver already hides moot ones.
    org_values = org.values()
    combined = {**org_values, **{k: v for k, v in overrides.items() if v is not None}}
    combined.update({k: org_values[k] for k in org.locked})
    registry.check_combination(combined=combined, submitted=values)
    return overrides


def org_policy_get(*, org: Organization | int, kind: str) -> OrgPolicy:
    """The org's saved policy for `kind`, or an unsaved one holding LinkPoint's defaults."""
    registry.check_kind(kind)
    org_id = org if isinstance(org, int) else org.pk
    policy = OrgPolicy.objects.filter(organization_id=org_id, kind=kind).first()
    if policy is None:
        policy = OrgPolicy.with_defaults(organization_id=org_id, kind=kind)
    return policy


def user_policy_get(*, membership: Membership, kind: str) -> UserPolicy | None:
    return UserPolicy.objects.filter(membership=membership, kind=kind).first()


def policy_effective_for(
    membership: Membership, kind: str, overrides: Mapping[str, Any] | None = None
) -> EffectivePolicy:
    """Every effective setting of `membership` for `kind`, each with its source.

    `overrides` are proposed member values, raw as the settings form posts them
    ({"direction": "outlook_to_salesforce"}; None means "back to the org's
    value"): they are validated exactly as a save would be and layered on top
    of the member's stored overrides, nothing is written. Invalid or locked
    values raise ValidationError keyed by the field. This is how a dry run of a
    settings change ("Preview this change") gets the policy it would run under.
    """
    registry.check_kind(kind)
    org = org_policy_get(org=membership.organization_id, kind=kind)
    user = user_policy_get(membership=membership, kind=kind)
    user_values = user.overrides() if user is not None else {}
    if overrides:
        if not isinstance(overrides, Mapping):
            raise ValidationError("Proposed settings must be a mapping of field to value.")
        cleaned = registry.clean_values(kind, dict(overrides))
        user_values = member_overrides_proposed(org=org, current=user_values, values=cleaned)
    return _build(membership.pk, kind, _time_zone_of(membership), org, user_values)


def policy_effective_for_many(
    memberships: Iterable[Membership], kind: str
) -> dict[int, EffectivePolicy]:
    """`policy_effective_for` for many members (any orgs) in three queries, keyed by membership id."""
    registry.check_kind(kind)
    memberships = list(memberships)
    if not memberships:
        return {}
    org_ids = {m.organization_id for m in memberships}
    org_policies = {
        p.organization_id: p
        for p in OrgPolicy.objects.filter(organization_id__in=org_ids, kind=kind)
    }
    user_policies = {
        p.membership_id: p for p in UserPolicy.objects.filter(membership__in=memberships, kind=kind)
    }
    time_zones = dict(
        User.objects.filter(pk__in={m.user_id for m in memberships}).values_list("pk", "time_zone")
    )
    out = {}
    for m in memberships:
        org = org_policies.get(m.organization_id) or OrgPolicy.with_defaults(
            organization_id=m.organization_id, kind=kind
        )
        user = user_policies.get(m.pk)
        user_values = user.overrides() if user is not None else {}
        out[m.pk] = _build(m.pk, kind, time_zones[m.user_id], org, user_values)
    return out


def _time_zone_of(membership: Membership) -> str:
    if Membership.user.is_cached(membership):
        return membership.user.time_zone
    return User.objects.values_list("time_zone", flat=True).get(pk=membership.user_id)


def override_counts(*, org: Organization, kind: str) -> dict[str, int]:
    """How many active members override each field: one aggregate query, whatever the org's size."""
    names = [s.name for s in registry.settings_for(kind)]
    counts = UserPolicy.objects.filter(
        membership__organization=org, membership__is_active=True, kind=kind
    ).aggregate(**{name: Count(name) for name in names})
    return {name: counts[name] or 0 for name in names}


def policy_notices_open(*, membership: Membership) -> list[PolicyNotice]:
    return list(PolicyNotice.objects.open().filter(membership=membership))
