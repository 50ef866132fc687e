"""The seeder fills both sides with the asked counts and overlap, and a re-run adds nothing."""

from io import StringIO

import pytest
from django.core.management import call_command

from sandbox.microsoft.models import Item, Mailbox
from sandbox.salesforce.models import SfUser
from sandbox.salesforce.services import sf_records

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])


def seed(**extra):
    out = StringIO()
    call_command("sandbox_seed", "--mailbox", "dana@contoso.test", "--sf-user", "dana@contoso.test",
                 "--events", "40", "--contacts", "20", "--tasks", "10", "--overlap", "0.25", "--seed", "7",
                 stdout=out, **extra)
    return out.getvalue()


def test_seed_counts_overlap_and_idempotence():
    report = seed()
    mailbox = Mailbox.objects.get(email="dana@contoso.test")
    items = Item.objects.filter(mailbox=mailbox, deleted=False)
    stored_events = items.filter(kind="event", event_type__in=["singleInstance", "seriesMaster"])
    assert stored_events.count() == 40
    assert items.filter(kind="contact").count() == 20
    assert items.filter(kind="todoTask").count() == 10
    assert "40 events, 20 contacts, 10 tasks created" in report

    org = SfUser.objects.get(username="dana@contoso.test").org
    sf_events = sf_records(org=org, sobject="Event")
    outlook_keys = {(e.data["subject"], e.start_utc.strftime("%Y-%m-%dT%H:%M:%S")) for e in stored_events}
    both = [r for r in sf_events if (r["Subject"], r["StartDateTime"][:19]) in outlook_keys]
    assert len(both) == 10  # 25 % of 40
    emails = {e["address"].lower() for c in items.filter(kind="contact") for e in c.data.get("emailAddresses", [])}
    assert len([r for r in sf_records(org=org, sobject="Contact") if (r.get("Email") or "").lower() in emails]) == 5
    titles = set(items.filter(kind="todoTask").values_list("data__title", flat=True))
    assert len([r for r in sf_records(org=org, sobject="Task") if r["Subject"] in titles]) == 2  # round(2.5)

    # Variety the sync must cope with.
    assert stored_events.filter(event_type="seriesMaster").exists()
    assert items.filter(kind="event", event_type="exception").exists()
    assert any(e.data.get("isAllDay") for e in stored_events)
    assert any(e.data["start"]["timeZone"] not in ("UTC",) for e in stored_events)
    assert any(not c.data.get("surname") for c in items.filter(kind="contact"))

    counts = (items.count(), len(sf_events))
    again = seed()
    assert "0 events, 0 contacts, 0 tasks created" in again
    assert (Item.objects.filter(mailbox=mailbox, deleted=False).count(),
            len(sf_records(org=org, sobject="Event"))) == counts
