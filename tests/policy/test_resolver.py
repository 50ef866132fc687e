"""Provenance of every effective value: org default, locked, or the member's own."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orgs.models import Membership
from policy import registry
from policy.models import OrgPolicy, UserPolicy
from policy.selectors import (
    policy_effective_for,
    policy_effective_for_many,
    resolve,
)

ONE_WAY_SOURCE = {"outlook_to_salesforce": "outlook", "salesforce_to_outlook": "salesforce"}
UNSYNCED_DELETE = {
    "outlook_to_salesforce": "delete_salesforce_to_outlook",
    "salesforce_to_outlook": "delete_outlook_to_salesforce",
}


def value_strategy(setting: registry.Setting, kind: str):
    if setting.type == registry.CHOICE:
        return st.sampled_from([v for v, _ in setting.choices_for(kind)])
    if setting.type == registry.INT:
        return st.integers(setting.min, setting.max)
    if setting.type == registry.BOOL:
        return st.booleans()
    if setting.type == registry.TIME:
        return st.builds(dt.time, st.integers(0, 23), st.integers(0, 59))
    return st.text(alphabet="abcXYZ -", max_size=12).map(str.strip)


@st.composite
def layered_policy(draw, kinds=registry.KINDS):
    kind = draw(st.sampled_from(kinds))
    fields = registry.settings_for(kind)
    org = {s.name: draw(value_strategy(s, kind)) for s in fields}
    user = {s.name: draw(st.none() | value_strategy(s, kind)) for s in fields}  # None: inherit
    locked = draw(st.sets(st.sampled_from([s.name for s in fields])))
    return kind, org, user, locked


def expected(kind, org, user, locked):
    """The rule, stated independently of the implementation."""
    out = {}
    for s in registry.settings_for(kind):
        if s.name in locked:
            out[s.name] = (org[s.name], "locked")
        elif user[s.name] is not None:
            out[s.name] = (user[s.name], "user")
        else:
            out[s.name] = (org[s.name], "org")
    direction = out["direction"][0]
    if direction in ONE_WAY_SOURCE:
        out["conflict_winner"] = (ONE_WAY_SOURCE[direction], out["conflict_winner"][1])
        name = UNSYNCED_DELETE[direction]
        out[name] = (False, out[name][1])
    return out


@given(layered_policy())
def test_resolve_provenance_for_random_layers(case):
    kind, org, user, locked = case
    got = resolve(kind=kind, org_values=org, locked=locked, user_values=user)
    assert {k: (r.value, r.source) for k, r in got.items()} == expected(kind, org, user, locked)
    # A lock always wins over a stale override, and nothing outside the kind leaks in.
    assert set(got) == {s.name for s in registry.settings_for(kind)}


@pytest.mark.django_db
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=layered_policy())
def test_policy_effective_for_reads_rows_with_provenance(case, carol):
    kind, org, user, locked = case
    membership = Membership.objects.get(user=carol)
    OrgPolicy.objects.update_or_create(
        organization_id=membership.organization_id,
        kind=kind,
        defaults={**org, "locked_fields": sorted(locked)},
    )
    UserPolicy.objects.update_or_create(membership=membership, kind=kind, defaults=user)

    eff = policy_effective_for(membership, kind)
    many = policy_effective_for_many([membership], kind)[membership.pk]

    want = expected(kind, org, user, locked)
    assert {name: (r.value, r.source) for name, r in eff.items()} == want
    assert many == eff
    assert eff.time_zone == "UTC"


@pytest.mark.django_db
def test_defaults_without_any_rows_match_linkpoint(carol):
    m = Membership.objects.get(user=carol)
    cal = policy_effective_for(m, "calendar")
    assert cal.mode.value == "snaprecord" and cal.mode.source == "org"
    assert cal.snaprecord_enabled and not cal.auto_enabled
    assert (cal.days_back.value, cal.days_ahead.value) == (30, 365)
    assert cal.include_private.value is False
    assert cal.completed_within_days is None  # a tasks setting
    contacts = policy_effective_for(m, "contacts")
    assert contacts.mode.value == "manual"
    assert contacts.contact_scope.value == "mine"
    assert contacts.delete_salesforce_to_outlook.value is False
    assert policy_effective_for(m, "tasks").completed_within_days.value == 30


@pytest.mark.django_db
def test_bulk_resolver_is_three_queries_for_any_number_of_members(org_a, org_b, make_user):
    members = []
    for i in range(25):
        org = org_a if i % 2 else org_b
        m = Membership.objects.create(organization=org, user=make_user(f"m{i}@x.test"))
        if i % 3 == 0:
            UserPolicy.objects.create(membership=m, kind="calendar", mode="auto")
        members.append(m)
    OrgPolicy.with_defaults(organization_id=org_a.pk, kind="calendar").save()

    with CaptureQueriesContext(connection) as one:
        policy_effective_for_many(members[:1], "calendar")
    with CaptureQueriesContext(connection) as many:
        result = policy_effective_for_many(members, "calendar")
    assert len(one) == len(many) == 3
    assert result[members[3].pk].mode.value == "auto"
    assert result[members[3].pk].mode.source == "user"
    assert result[members[1].pk].mode.value == "snaprecord"
    assert result[members[5].pk] == policy_effective_for(members[5], "calendar")
