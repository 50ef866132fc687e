"""The hooks the My sync pages build on: a dry-run policy (`overrides=`) and advisors."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from orgs.models import AuditEntry
from policy import extensions
from policy.models import UserPolicy
from policy.selectors import policy_effective_for
from policy.services import AdviceRequired, org_policy_update, user_policy_set

pytestmark = pytest.mark.django_db


def test_proposed_values_are_layered_on_the_members_own_and_nothing_is_saved(
    carol, ctx_for, membership_of
):
    m = membership_of(carol)
    user_policy_set(ctx=ctx_for(carol), membership=m, kind="calendar", values={"days_back": 7})

    eff = policy_effective_for(
        m, "calendar", overrides={"direction": "outlook_to_salesforce", "days_ahead": "90"}
    )
    assert (eff.direction.value, eff.direction.source) == ("outlook_to_salesforce", "user")
    assert eff.days_ahead.value == 90
    assert eff.days_back.value == 7  # the member's stored value still applies
    # The resolver's derived rules hold for the proposal too: one-way, the source wins.
    assert eff.conflict_winner.value == "outlook"
    assert eff.conflict_winner.note

    row = UserPolicy.objects.get()
    assert (row.direction, row.days_ahead, row.days_back) == (None, None, 7)
    assert policy_effective_for(m, "calendar").direction.value == "both"


def test_none_proposes_going_back_to_the_org_value(carol, ctx_for, membership_of):
    m = membership_of(carol)
    user_policy_set(ctx=ctx_for(carol), membership=m, kind="tasks", values={"direction": "both"})
    eff = policy_effective_for(m, "tasks", overrides={"direction": None})
    assert eff.direction.source == "org"


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"days_ahead": "0"}, "days_ahead", "Future days must be between 1 and 730 days."),
        ({"days_ahead": "abc"}, "days_ahead", "Future days must be a whole number."),
        (
            {"window_start": "08:30+05:00"},
            "window_start",
            "Window starts: enter a time such as 08:30 (24-hour, without a time zone).",
        ),
        ({"direction": "sideways"}, "direction", None),
        ({"completed_within_days": "3"}, "completed_within_days", None),
        ({"bogus": "1"}, "bogus", "Unknown setting “bogus”."),
        ({"direction": "outlook_to_salesforce"}, "direction", "Direction is locked by your organization."),
    ],
)
def test_invalid_or_locked_proposals_raise_naming_the_field(
    alice, carol, ctx_for, membership_of, overrides, field, message
):
    org_policy_update(ctx=ctx_for(alice), kind="calendar", locks=["direction"])
    if field == "direction" and overrides["direction"] == "sideways":
        org_policy_update(ctx=ctx_for(alice), kind="calendar", locks=[])
    with pytest.raises(ValidationError) as exc:
        policy_effective_for(membership_of(carol), "calendar", overrides=overrides)
    errors = exc.value.message_dict
    assert list(errors) == [field]
    if message:
        assert errors[field] == [message]


def test_a_proposal_the_save_would_refuse_is_refused(carol, membership_of):
    with pytest.raises(ValidationError) as exc:
        policy_effective_for(
            membership_of(carol),
            "contacts",
            overrides={"direction": "outlook_to_salesforce", "delete_salesforce_to_outlook": "on"},
        )
    assert "delete_salesforce_to_outlook" in exc.value.message_dict


def first_auto_advisor(*, org, membership, kind, field, value):
    if field == "mode" and value == "auto":
        who = "the organization" if membership is None else membership.user.email
        return [
            extensions.Advice(
                f"{kind}: preview first ({who})", "/preview/", "Preview first", blocking=True
            )
        ]
    return []


def broken_advisor(**kwargs):
    raise RuntimeError("advisor bug")


@pytest.fixture
def advisors():
    with extensions.advisors_replaced(first_auto_advisor, broken_advisor):
        yield


def test_blocking_advice_stops_a_member_save_until_confirmed(
    advisors, carol, ctx_for, membership_of, caplog
):
    m = membership_of(carol)
    with pytest.raises(AdviceRequired) as exc:
        user_policy_set(
            ctx=ctx_for(carol), membership=m, kind="tasks", values={"mode": "auto"},
            advice_confirmed=False,
        )
    assert [a.message for a in exc.value.advice] == ["tasks: preview first (carol@acme.test)"]
    assert not UserPolicy.objects.filter(mode__isnull=False).exists()
    assert not AuditEntry.objects.exists()
    assert "advisor bug" in caplog.text  # logged for support, not shown as a failure

    change = user_policy_set(
        ctx=ctx_for(carol), membership=m, kind="tasks", values={"mode": "auto"},
        advice_confirmed=True,
    )
    assert change.advice and UserPolicy.objects.get().mode == "auto"
    # Advice is about a change: saving the same value again asks nothing.
    again = user_policy_set(
        ctx=ctx_for(carol), membership=m, kind="tasks", values={"mode": "auto"},
        advice_confirmed=False,
    )
    assert again.advice == []


def test_org_advice_is_returned_after_the_save(advisors, alice, ctx_for):
    change = org_policy_update(ctx=ctx_for(alice), kind="contacts", values={"mode": "auto"})
    assert [a.message for a in change.advice] == ["contacts: preview first (the organization)"]
    assert change.policy.mode == "auto"


def test_register_is_idempotent():
    with extensions.advisors_replaced():
        extensions.register_advisor(first_auto_advisor)
        extensions.register_advisor(first_auto_advisor)
        assert extensions._advisors == [first_auto_advisor]
        extensions.unregister_advisor(first_auto_advisor)
        assert extensions._advisors == []
