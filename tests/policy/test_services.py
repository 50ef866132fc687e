"""Policy services: locks, exclusivity, validation messages, audit."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction

from orgs.models import AuditEntry
from policy.models import OrgPolicy, PolicyNotice, UserPolicy
from policy.selectors import policy_effective_for, policy_notices_open
from policy.services import (
    PolicyLocked,
    member_time_zone_set,
    org_policy_update,
    user_policy_reset_field,
    user_policy_set,
)

pytestmark = pytest.mark.django_db


def messages(exc: ValidationError) -> dict:
    return exc.value.message_dict


def test_member_override_wins_until_reset(alice, carol, ctx_for, membership_of):
    m = membership_of(carol)
    user_policy_set(ctx=ctx_for(carol), membership=m, kind="calendar", values={"days_back": 7})
    eff = policy_effective_for(m, "calendar")
    assert (eff.days_back.value, eff.days_back.source) == (7, "user")

    user_policy_reset_field(ctx=ctx_for(carol), membership=m, kind="calendar", field="days_back")
    eff = policy_effective_for(m, "calendar")
    assert (eff.days_back.value, eff.days_back.source) == (30, "org")


def test_service_refuses_override_of_locked_field_without_any_form(
    alice, carol, ctx_for, membership_of
):
    org_policy_update(
        ctx=ctx_for(alice), kind="calendar", values={"days_back": 14}, locks=["days_back"]
    )
    m = membership_of(carol)

    with pytest.raises(PolicyLocked) as exc:
        user_policy_set(ctx=ctx_for(carol), membership=m, kind="calendar", values={"days_back": 90})
    assert messages(exc) == {"days_back": ["Past days is locked by your organization."]}
    # Not even an admin acting for the member gets past the lock.
    with pytest.raises(PolicyLocked):
        user_policy_set(ctx=ctx_for(alice), membership=m, kind="calendar", values={"days_back": 90})
    assert not UserPolicy.objects.filter(membership=m, days_back__isnull=False).exists()
    eff = policy_effective_for(m, "calendar")
    assert (eff.days_back.value, eff.days_back.source) == (14, "locked")


def test_locking_clears_overrides_notifies_and_audits(alice, bob, carol, ctx_for, membership_of):
    carol_m, bob_m = membership_of(carol), membership_of(bob)
    user_policy_set(
        ctx=ctx_for(carol),
        membership=carol_m,
        kind="calendar",
        values={"mode": "auto", "days_back": 3},
    )
    user_policy_set(ctx=ctx_for(bob), membership=bob_m, kind="calendar", values={"days_ahead": 30})

    org_policy_update(ctx=ctx_for(alice), kind="calendar", locks=["mode"])

    row = UserPolicy.objects.get(membership=carol_m, kind="calendar")
    assert row.mode is None and row.days_back == 3  # only the locked field is cleared
    eff = policy_effective_for(carol_m, "calendar")
    assert (eff.mode.value, eff.mode.source) == ("snaprecord", "locked")

    [notice] = policy_notices_open(membership=carol_m)
    assert notice.fields == ["mode"]
    assert "Sync mode is now SnapRecord (you had Auto sync)" in notice.message
    assert policy_notices_open(membership=bob_m) == []  # bob had not set the mode

    entry = AuditEntry.objects.get(action="policy.locks_update")
    assert entry.actor == alice and not entry.acting_as_staff
    assert entry.after["locked"] == ["mode"]
    assert entry.after["overrides_cleared"] == {"mode": 1}
    assert entry.after["members_notified"] == ["carol@acme.test"]


def test_unlocking_lets_members_override_again(alice, carol, ctx_for, membership_of):
    org_policy_update(ctx=ctx_for(alice), kind="tasks", locks=["mode"])
    org_policy_update(ctx=ctx_for(alice), kind="tasks", locks=[])
    m = membership_of(carol)
    user_policy_set(ctx=ctx_for(carol), membership=m, kind="tasks", values={"mode": "auto"})
    assert policy_effective_for(m, "tasks").mode.source == "user"


def test_calendar_modes_are_exclusive_and_auto_turns_snaprecord_off(
    alice, carol, ctx_for, membership_of
):
    m = membership_of(carol)
    assert policy_effective_for(m, "calendar").snaprecord_enabled
    user_policy_set(ctx=ctx_for(carol), membership=m, kind="calendar", values={"mode": "auto"})
    eff = policy_effective_for(m, "calendar")
    assert eff.auto_enabled and not eff.snaprecord_enabled

    with pytest.raises(ValidationError) as exc:
        user_policy_set(
            ctx=ctx_for(carol), membership=m, kind="contacts", values={"mode": "snaprecord"}
        )
    assert messages(exc) == {"mode": ["SnapRecord is available for calendar only."]}
    # The database refuses it too, whoever writes the row.
    with pytest.raises(IntegrityError), transaction.atomic():
        UserPolicy.objects.create(membership=m, kind="tasks", mode="snaprecord")


@pytest.mark.parametrize(
    ("kind", "values", "field", "message"),
    [
        ("calendar", {"days_back": 9999}, "days_back", "Past days must be between 0 and 730 days."),
        (
            "calendar",
            {"frequency_minutes": 2},
            "frequency_minutes",
            "Auto sync every must be between 5 and 1440 minutes.",
        ),
        (
            "tasks",
            {"completed_within_days": "soon"},
            "completed_within_days",
            "Completed tasks must be a whole number.",
        ),
        (
            "calendar",
            {"mass_delete_threshold_percent": 0},
            "mass_delete_threshold_percent",
            "Mass-delete guard must be between 1 and 100 %.",
        ),
        (
            "calendar",
            {"direction": "sideways"},
            "direction",
            "Direction: choose one of Outlook → Salesforce, Salesforce → Outlook, Both ways.",
        ),
        ("contacts", {"days_back": 3}, "days_back", "Past days does not apply to contacts sync."),
        (
            "calendar",
            {"window_start": "25:00"},
            "window_start",
            "Window starts: enter a time such as 08:30 (24-hour, without a time zone).",
        ),
        (
            "calendar",
            {"window_enabled": True, "window_start": "09:00", "window_end": "09:00"},
            "window_end",
            "The sync window must not start and end at the same time. Turn the window off to sync around the clock.",
        ),
        (
            "contacts",
            {"direction": "outlook_to_salesforce", "delete_salesforce_to_outlook": True},
            "delete_salesforce_to_outlook",
            "Salesforce deletes reach Outlook can't be on: this policy only syncs Outlook → Salesforce. Choose “Both ways” first.",
        ),
    ],
)
def test_validation_messages(alice, carol, ctx_for, membership_of, kind, values, field, message):
    for call in (
        lambda: org_policy_update(ctx=ctx_for(alice), kind=kind, values=values),
        lambda: user_policy_set(
            ctx=ctx_for(carol), membership=membership_of(carol), kind=kind, values=values
        ),
    ):
        with pytest.raises(ValidationError) as exc:
            call()
        assert messages(exc)[field] == [message]
    assert not AuditEntry.objects.exists()


def test_one_way_direction_forces_winner_to_source_side(alice, carol, ctx_for, membership_of):
    change = org_policy_update(
        ctx=ctx_for(alice),
        kind="contacts",
        values={"direction": "outlook_to_salesforce", "conflict_winner": "salesforce"},
    )
    assert change.policy.conflict_winner == "outlook"
    assert change.notes == [
        "Conflict winner set to Outlook: with one-way sync Outlook → Salesforce, "
        "Outlook's version always wins, so the setting is not used."
    ]
    # A member's one-way choice makes the org's winner moot: the resolver says so.
    org_policy_update(ctx=ctx_for(alice), kind="tasks", values={"conflict_winner": "salesforce"})
    m = membership_of(carol)
    user_policy_set(
        ctx=ctx_for(carol),
        membership=m,
        kind="tasks",
        values={"direction": "outlook_to_salesforce"},
    )
    eff = policy_effective_for(m, "tasks")
    assert eff.conflict_winner.value == "outlook"
    assert eff.conflict_winner.note == "Not used for one-way sync: Outlook always wins."


def test_every_change_is_audited_with_before_and_after(alice, carol, ctx_for, membership_of):
    org_policy_update(
        ctx=ctx_for(alice), kind="calendar", values={"days_ahead": 90, "include_private": True}
    )
    user_policy_set(
        ctx=ctx_for(carol),
        membership=membership_of(carol),
        kind="calendar",
        values={"window_enabled": True, "window_start": dt.time(7, 0)},
    )
    member_time_zone_set(ctx=ctx_for(carol), time_zone="Europe/Berlin")

    org_entry, user_entry, tz_entry = AuditEntry.objects.order_by("id")
    assert org_entry.action == "policy.org_update"
    assert org_entry.before == {"days_ahead": 365, "include_private": False}
    assert org_entry.after == {"days_ahead": 90, "include_private": True}
    assert user_entry.action == "policy.user_set" and user_entry.actor == carol
    assert user_entry.after == {"window_enabled": True, "window_start": "07:00"}
    assert tz_entry.after == {"time_zone": "Europe/Berlin"}
    assert policy_effective_for(membership_of(carol), "calendar").time_zone == "Europe/Berlin"


def test_staff_changes_are_audited_as_professional_services(
    pat, carol, org_a, ctx_for, membership_of
):
    ctx = ctx_for(pat)
    assert ctx.acting_as_staff
    org_policy_update(ctx=ctx, kind="calendar", values={"mode": "auto"}, locks=["mode"])
    user_policy_set(
        ctx=ctx, membership=membership_of(carol), kind="calendar", values={"days_back": 1}
    )

    entries = AuditEntry.objects.filter(organization=org_a).order_by("id")
    assert [e.action for e in entries] == [
        "policy.org_update",
        "policy.locks_update",
        "policy.user_set",
    ]
    assert all(e.acting_as_staff and e.actor_email == "pat@linkpoint.test" for e in entries)


def test_unknown_time_zone_is_refused(carol, ctx_for):
    with pytest.raises(ValidationError) as exc:
        member_time_zone_set(ctx=ctx_for(carol), time_zone="Mars/Olympus_Mons")
    assert messages(exc) == {
        "time_zone": [
            "Unknown time zone “Mars/Olympus_Mons”. Choose one from the list, such as Europe/Berlin or America/New_York."
        ]
    }


def test_members_cannot_change_org_policy_or_each_other(carol, bob, ctx_for, membership_of):
    with pytest.raises(PermissionDenied):
        org_policy_update(ctx=ctx_for(carol), kind="calendar", values={"days_back": 1})
    with pytest.raises(PermissionDenied):
        user_policy_set(
            ctx=ctx_for(carol),
            membership=membership_of(bob),
            kind="calendar",
            values={"days_back": 1},
        )
    assert not OrgPolicy.objects.exists() and not UserPolicy.objects.exists()


def test_membership_of_another_org_is_refused(alice, charlie, ctx_for):
    from orgs.models import Membership

    other = Membership.objects.get(user=charlie)
    with pytest.raises(PermissionDenied):
        user_policy_set(
            ctx=ctx_for(alice), membership=other, kind="calendar", values={"days_back": 1}
        )
    assert not PolicyNotice.objects.exists()
