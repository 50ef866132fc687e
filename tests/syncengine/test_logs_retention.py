"""Retention: each org's runs and entries older than its setting are purged in batches by a
daily task; the setting is the admin's, audited. Attention on My sync."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from orgs.models import AuditEntry, Membership
from syncengine.models import SyncLink, SyncLogEntry, SyncRun
from syncengine.selectors import attention_for
from syncengine.support import (
    RETENTION_SCHEDULE,
    log_retention_purge,
    retention_schedule_ensure,
)

pytestmark = pytest.mark.django_db


def _run(membership, *, days_ago, entries=3, status="succeeded", kind="contacts", error=""):
    started = timezone.now() - dt.timedelta(days=days_ago)
    run = SyncRun.objects.create(membership=membership, kind=kind, trigger="auto", status=status,
                                 started_at=started, error=error)
    SyncLogEntry.objects.bulk_create([
        SyncLogEntry(run=run, action="update", message=f"entry {n}") for n in range(entries)
    ])
    SyncLogEntry.objects.filter(run=run).update(created_at=started)
    return run


def test_purge_removes_what_is_older_than_each_orgs_retention_in_batches(carol, charlie, org_b):
    acme = Membership.objects.get(user=carol)
    globex = Membership.objects.get(user=charlie)
    org_b.log_retention_days = 90
    org_b.save()
    old = _run(acme, days_ago=31, entries=12)
    kept = _run(acme, days_ago=29, entries=4)
    stuck = _run(acme, days_ago=40, entries=2, status="running")
    other_org = _run(globex, days_ago=60, entries=5)
    # An entry written today on an old run (a long run) goes with its run.
    SyncLogEntry.objects.create(run=old, action="run", message="finished late")

    removed = log_retention_purge(batch=5)

    assert removed == {"entries": 12 + 2, "runs": 1}
    assert not SyncRun.objects.filter(pk=old.pk).exists()
    assert set(SyncRun.objects.values_list("pk", flat=True)) == {kept.pk, stuck.pk, other_org.pk}
    assert SyncLogEntry.objects.filter(run=kept).count() == 4
    # A running run is kept (its worker still writes), its old entries are not.
    assert SyncLogEntry.objects.filter(run=stuck).count() == 0
    assert SyncLogEntry.objects.filter(run=other_org).count() == 5
    assert log_retention_purge(batch=5) == {"entries": 0, "runs": 0}


def test_the_purge_is_scheduled_daily_once_by_name():
    from django_q.models import Schedule

    retention_schedule_ensure()
    retention_schedule_ensure()
    (schedule,) = Schedule.objects.filter(name=RETENTION_SCHEDULE)
    assert schedule.func == "syncengine.support.log_retention_task"
    assert schedule.schedule_type == Schedule.DAILY and schedule.repeats == -1


def test_an_admin_sets_the_retention_and_it_is_audited(client_for, bob, carol, org_a):
    url = reverse("orgs:settings", args=[org_a.slug])
    assert client_for(carol).get(url).status_code == 403
    client = client_for(bob)
    bad = client.post(url, {"name": "Acme", "allowed_salesforce_org_id": "",
                            "log_retention_days": "0"})
    assert bad.status_code == 200 and b"greater than or equal to 1" in bad.content
    ok = client.post(url, {"name": "Acme", "allowed_salesforce_org_id": "",
                           "log_retention_days": "90"})
    assert ok.status_code == 302
    org_a.refresh_from_db()
    assert org_a.log_retention_days == 90
    entry = AuditEntry.objects.get(action="organization.update")
    assert (entry.before, entry.after) == ({"log_retention_days": 30}, {"log_retention_days": 90})


def test_attention_names_a_failed_last_run_and_an_item_that_keeps_failing(client_for, carol,
                                                                         org_a):
    m = Membership.objects.get(user=carol)
    _run(m, days_ago=1, kind="calendar")
    _run(m, days_ago=0, kind="calendar", status="stopped",
         error="Reconnect needed (Outlook): the sign-in no longer works.")
    _run(m, days_ago=0, kind="contacts")  # succeeded: nothing to say
    link = SyncLink.objects.create(membership=m, kind="tasks", sf_id="00T000000000001AAA",
                                   state="error", attempts=4, last_error="Subject too long")
    run = _run(m, days_ago=0, kind="tasks", entries=0)
    SyncLogEntry.objects.create(run=run, level="error", action="error", link_key=link.link_key,
                                message="Not synced", detail={"title": "Call Ada"})

    items = attention_for(m)
    assert [(a.kind, bool(a.run_id), a.trace_item) for a in items] == [
        ("calendar", True, ""), ("tasks", False, str(link.link_key))]
    assert "stopped" in items[0].message.lower() and "Reconnect needed" in items[0].message
    assert items[1].message == "“Call Ada” failed 4 syncs in a row: Subject too long"

    page = client_for(carol).get(reverse("syncengine:my-sync", args=[org_a.slug])).content.decode()
    assert "Needs your attention" in page
    assert reverse("syncengine:trace", args=[org_a.slug]) + f"?item={link.link_key}" in page
    assert reverse("syncengine:history", args=[org_a.slug]) in page
