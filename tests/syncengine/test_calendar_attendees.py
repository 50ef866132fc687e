"""Attendees relate the Salesforce Event to a Contact (WhoId), through the sandbox.

Attendees are never written into Outlook (no invitation e-mails to customers),
and Salesforce's WhoId never turns into an Outlook attendee.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from sandbox.accounting import api_counts_by_family, api_counts_reset
from syncengine.engine.run import run_sync
from syncengine.models import SyncLogEntry

from .conftest import SANDBOX_DBS

pytestmark = pytest.mark.django_db(databases=SANDBOX_DBS, transaction=True)


def _when(days: int, hour: int = 10) -> dt.datetime:
    return (timezone.now() + dt.timedelta(days=days)).replace(
        hour=hour, minute=0, second=0, microsecond=0
    )


def _attendee(address: str, name: str = "") -> dict:
    return {"type": "required", "emailAddress": {"address": address, "name": name or address}}


def _o_event(member, subject, start, *, attendees=(), organizer=None, **extra):
    from sandbox.microsoft.services import event_create

    end = start + dt.timedelta(hours=1)
    payload = {
        "subject": subject,
        "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
        "end": {"dateTime": end.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
        "attendees": [_attendee(a) for a in attendees],
        **extra,
    }
    if organizer:
        payload["organizer"] = {"emailAddress": {"address": organizer, "name": organizer}}
    item, _ = event_create(member.mailbox, payload)
    return item


def _sync(member):
    result = run_sync(member.membership, "calendar", "manual")
    assert result.status == "succeeded", result.message
    return result


def _sf_event(member, subject):
    return next(r for r in member.sf("Event") if r["Subject"] == subject)


def test_first_matching_attendee_becomes_the_who_skipping_organizer_and_self(member):
    ada = member.sf_create("Contact", LastName="Lovelace", Email="ada@example.com")
    grace = member.sf_create(
        "Contact",
        LastName="Hopper",
        Email="grace@navy.example",
        LinkPoint_Email3__c="GRACE@example.com",
    )
    boss = member.sf_create("Contact", LastName="Boss", Email="boss@initech.example")
    # Organizer (a customer who sent the invitation) and the member herself come
    # first in the list and match nothing we may use.
    kickoff_key = _o_event(
        member,
        "Kick-off",
        _when(2),
        organizer="boss@initech.example",
        attendees=[
            "boss@initech.example",
            member.membership.user.email,
            "nobody@example.org",
            "Grace@Example.com",
            "ada@example.com",
        ],
    ).change_key
    _o_event(member, "Review", _when(3), attendees=["ada@example.com"])
    _o_event(member, "Dentist", _when(4))

    api_counts_reset()
    result = _sync(member)
    assert result.counts.created["salesforce"] == 3
    # Grace matches by her third e-mail, case-insensitively, and comes before Ada.
    assert _sf_event(member, "Kick-off")["WhoId"] == grace
    assert _sf_event(member, "Review")["WhoId"] == ada
    assert _sf_event(member, "Dentist")["WhoId"] is None
    assert boss not in {r["WhoId"] for r in member.sf("Event")}
    # One Contact query for the whole batch of events (the rest: the change query and the insert).
    sf_calls = {f: n for (side, f), n in api_counts_by_family().items() if side == "salesforce"}
    assert sum(n for f, n in sf_calls.items() if not f.startswith("identity-")) == 3, sf_calls
    # Nothing was written into Outlook: no invitation to anyone.
    kickoff = next(e for e in member.events_o() if e.data["subject"] == "Kick-off")
    assert kickoff.change_key == kickoff_key
    assert _sync(member).counts.writes == 0


def test_no_matching_contact_leaves_the_event_unrelated_with_a_log_entry(member):
    _o_event(member, "Coffee", _when(2), attendees=["stranger@example.org"])
    result = _sync(member)
    assert _sf_event(member, "Coffee")["WhoId"] is None
    entry = SyncLogEntry.objects.get(run_id=result.run_id, message__contains="stranger@example.org")
    assert entry.level == "info" and "left unrelated" in entry.message


def test_update_relates_a_contact_but_never_replaces_or_clears_the_users_who(member):
    from sandbox.microsoft.services import item_update

    a = _o_event(member, "Demo", _when(2), attendees=["ada@example.com"])
    b = _o_event(member, "Pricing", _when(3), attendees=["ada@example.com"])
    _sync(member)  # no Contact yet: both unrelated
    assert _sf_event(member, "Demo")["WhoId"] is None
    ada = member.sf_create("Contact", LastName="Lovelace", Email="ada@example.com")
    mine = member.sf_create("Contact", LastName="Chosen", Email="chosen@example.com")
    member.sf_update("Event", _sf_event(member, "Pricing")["Id"], WhoId=mine)

    item_update(a, {"subject": "Demo (moved)"})
    item_update(b, {"subject": "Pricing (v2)", "attendees": []})
    result = _sync(member)
    assert result.counts.updated["salesforce"] == 2
    assert _sf_event(member, "Demo (moved)")["WhoId"] == ada
    # The user's own choice survives an update, with or without attendees.
    assert _sf_event(member, "Pricing (v2)")["WhoId"] == mine

    item_update(a, {"subject": "Demo (final)", "attendees": []})
    _sync(member)
    assert _sf_event(member, "Demo (final)")["WhoId"] == ada  # never cleared by us


def test_who_in_salesforce_never_becomes_an_outlook_attendee(member):
    ada = member.sf_create("Contact", LastName="Lovelace", Email="ada@example.com")
    start = _when(2)
    sf_id = member.sf_create(
        "Event",
        Subject="Call Ada",
        StartDateTime=start.strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
        DurationInMinutes=30,
        WhoId=ada,
    )
    _sync(member)
    (ev,) = member.events_o()
    assert ev.data["subject"] == "Call Ada" and not ev.data.get("attendees")
    member.sf_update("Event", sf_id, Subject="Call Ada back")
    _sync(member)
    (ev,) = member.events_o()
    assert ev.data["subject"] == "Call Ada back" and not ev.data.get("attendees")


def test_private_events_are_not_related(member):
    member.sf_create("Contact", LastName="Lovelace", Email="ada@example.com")
    from syncengine.engine.run import engine_policy

    policy = engine_policy(member.membership, "calendar").replace(include_private=True)
    _o_event(member, "Private chat", _when(2), attendees=["ada@example.com"], sensitivity="private")
    result = run_sync(member.membership, "calendar", "manual", policy=policy)
    assert result.counts.created["salesforce"] == 1
    row = _sf_event(member, "Private chat")
    assert row["IsPrivate"] is True and row["WhoId"] is None
    assert SyncLogEntry.objects.filter(
        run_id=result.run_id, message__startswith="Private event"
    ).exists()
