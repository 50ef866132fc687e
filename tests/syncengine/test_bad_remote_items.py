"""One malformed remote item never stops a run (issue 10).

The emulators refuse bad input at their API, as the real services do, so the
malformed payload is written straight into the emulator's stored item: what a
service bug, a migration or a third-party app could leave in a mailbox or org.
The run must go on, sync everything else, log the item (level error, its ids,
the field named) for support, do the same again next run, never delete or copy
anything because of it, and sync the item once it is readable again.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from syncengine.engine.run import run_sync
from syncengine.models import SyncLink, SyncLogEntry

from .conftest import SANDBOX_DBS

pytestmark = pytest.mark.django_db(databases=SANDBOX_DBS, transaction=True)


def _o_contact(member, given, surname, email):
    from sandbox.microsoft.services import contact_create

    return contact_create(member.mailbox, {
        "givenName": given, "surname": surname,
        "emailAddresses": [{"address": email, "name": f"{given} {surname}"}],
    })


def _o_event(member, subject, start, **extra):
    from sandbox.microsoft.services import event_create

    end = start + dt.timedelta(hours=1)
    item, _ = event_create(member.mailbox, {
        "subject": subject,
        "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
        "end": {"dateTime": end.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
        **extra,
    })
    return item


def _corrupt_outlook(item, **fields):
    """Write fields into the emulator's stored payload, past its API's validation,
    and stamp a new change (so the next delta round reports the item)."""
    from sandbox.microsoft.models import Item
    from sandbox.microsoft.services import event_touch

    item.refresh_from_db()
    Item.objects.filter(pk=item.pk).update(data={**item.data, **fields})
    item.refresh_from_db()
    event_touch(item)  # any kind: a new changeKey, content as stored
    return item


def _corrupt_salesforce(member, sobject, sf_id, **fields):
    from sandbox.salesforce.models import SfRecord
    from sandbox.salesforce.services import sf_record_touch

    rec = SfRecord.objects.get(sf_id=sf_id)
    SfRecord.objects.filter(pk=rec.pk).update(fields={**rec.fields, **fields})
    sf_record_touch(user=member.sf_user, sobject=sobject, record_id=sf_id)


def _run(member, kind, **kw):
    result = run_sync(member.membership, kind, "manual", **kw)
    assert result.status == "succeeded", result.as_dict()
    return result


def _errors(result):
    return list(SyncLogEntry.objects.filter(run_id=result.run_id, level="error"))


def test_a_malformed_outlook_contact_is_logged_and_the_rest_syncs_every_run(member, client_for):
    from django.urls import reverse

    from sandbox.microsoft.services import item_update

    _o_contact(member, "Ada", "Lovelace", "ada@example.com")
    bad = _o_contact(member, "Grace", "Hopper", "grace@example.com")
    _o_contact(member, "Alan", "Turing", "alan@example.com")
    member.sf_create("Contact", FirstName="Katherine", LastName="Johnson", Email="kj@example.com")
    bad = _corrupt_outlook(bad, businessAddress="1 Navy Way, Arlington")

    first = _run(member, "contacts")
    assert first.counts.created == {"outlook": 1, "salesforce": 2}
    assert first.counts.errors == {"outlook": 1, "salesforce": 0}
    assert sorted(r["LastName"] for r in member.sf("Contact")) == ["Johnson", "Lovelace", "Turing"]
    (entry,) = _errors(first)
    assert entry.outlook_id == bad.graph_id and entry.action == "error"
    assert "Outlook contact “Grace Hopper”: businessAddress is not an address object" in entry.message
    assert entry.detail["title"] == "Grace Hopper"
    # Where support (and the member) read it: the run's log and the error filter.
    page = client_for(member.membership.user).get(
        reverse("syncengine:logs", args=[member.membership.organization.slug]), {"level": "error"}
    )
    assert page.status_code == 200
    assert "businessAddress is not an address object" in page.content.decode()

    # The next run does not die on it either, and reads it again once it changes.
    assert _run(member, "contacts").counts.writes == 0
    _corrupt_outlook(bad)
    again = _run(member, "contacts")
    assert again.counts.writes == 0 and len(_errors(again)) == 1
    # A full read (Rebuild preview, a 410) meets it as well, and still goes on.
    assert _run(member, "contacts", full=True).counts.errors["outlook"] == 1

    # Readable again: synced once, never twice.
    bad.refresh_from_db()
    item_update(bad, {"businessAddress": {"street": "1 Navy Way", "city": "Arlington"}})
    fixed = _run(member, "contacts")
    assert fixed.counts.created == {"outlook": 0, "salesforce": 1}, fixed.as_dict()
    hopper = [r for r in member.sf("Contact") if r["LastName"] == "Hopper"]
    assert len(hopper) == 1 and hopper[0]["MailingCity"] == "Arlington"
    assert _run(member, "contacts").counts.writes == 0


def test_a_linked_item_that_turns_unreadable_is_never_deleted_on_the_other_side(member):
    from sandbox.microsoft.services import item_update

    item = _o_contact(member, "Ada", "Lovelace", "ada@example.com")
    _o_contact(member, "Alan", "Turing", "alan@example.com")
    assert _run(member, "contacts").counts.created["salesforce"] == 2
    link = SyncLink.objects.get(outlook_id=item.graph_id)
    item = _corrupt_outlook(item, emailAddresses="ada@example.com", businessAddress=["x"])

    for full in (False, True):
        result = _run(member, "contacts", full=full)
        assert result.counts.deleted == {"outlook": 0, "salesforce": 0}
        assert result.counts.errors["outlook"] == 1
        (entry,) = _errors(result)
        assert (entry.outlook_id, entry.sf_id) == (link.outlook_id, link.sf_id)
    assert sorted(r["LastName"] for r in member.sf("Contact")) == ["Lovelace", "Turing"]
    assert SyncLink.objects.get(pk=link.pk).state == link.state == "synced"

    item.refresh_from_db()
    item_update(item, {"emailAddresses": [{"address": "ada@example.com"}],
                       "businessAddress": {"city": "London"}})
    assert _run(member, "contacts").counts.updated["salesforce"] == 1
    (ada,) = [r for r in member.sf("Contact") if r["LastName"] == "Lovelace"]
    assert ada["MailingCity"] == "London"


def test_malformed_outlook_events_do_not_stop_the_calendar(member):
    start = timezone.now().replace(second=0, microsecond=0) + dt.timedelta(days=2)
    _o_event(member, "Quarterly review", start)
    where = _o_event(member, "Site visit", start + dt.timedelta(hours=3))
    when = _o_event(member, "Call Ada", start + dt.timedelta(hours=5), isReminderOn=True)
    _corrupt_outlook(where, location="Building 4")
    _corrupt_outlook(when, reminderMinutesBeforeStart="abc")

    for _ in range(2):
        result = _run(member, "calendar", full=True)
        messages = sorted(e.message for e in _errors(result))
        assert len(messages) == 2, messages
        assert "Outlook event “Call Ada”: reminderMinutesBeforeStart is not a whole number" in messages[0]
        assert "Outlook event “Site visit”: location is not a location object" in messages[1]
    assert [r["Subject"] for r in member.sf("Event")] == ["Quarterly review"]


def test_a_malformed_salesforce_record_is_logged_and_nothing_is_deleted(member):
    keep = member.sf_create("Task", Subject="Send quote", Status="Not Started")
    bad = member.sf_create("Task", Subject="Call Ada", Status="Not Started")
    assert _run(member, "tasks").counts.created["outlook"] == 2
    _corrupt_salesforce(member, "Task", bad, Status=3, IsReminderSet="yes")
    member.sf_update("Task", keep, Subject="Send the quote")

    result = _run(member, "tasks")
    assert result.counts.updated["outlook"] == 1
    assert result.counts.deleted == {"outlook": 0, "salesforce": 0}
    (entry,) = _errors(result)
    assert entry.sf_id == bad and "Salesforce Task “Call Ada”" in entry.message
    assert sorted(t.data["title"] for t in member.tasks_o()) == ["Call Ada", "Send the quote"]
    assert _run(member, "tasks", full=True).counts.writes == 0
