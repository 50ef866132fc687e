"""The item trace shows a linked calendar series on both sides and the occurrences that diverge
(issue 12), from what the engine stored: real runs through the sandbox, no remote call in the page."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from syncengine.models import SyncLink, SyncOccurrence

from .conftest import SANDBOX_DBS
from .test_calendar_recurrence import FMT, _monday, _o_series, _sync

pytestmark = pytest.mark.django_db(databases=SANDBOX_DBS, transaction=True)


def _trace(client, member, link):
    return client.get(reverse("syncengine:trace", args=[member.membership.organization.slug]),
                      {"item": str(link.link_key)})


def test_trace_shows_the_series_and_each_occurrence_that_differs(member, client_for, carol, bob, pat):
    from sandbox.microsoft.services import occurrence_delete, occurrence_update

    start = _monday()
    master = _o_series(member, "Team sync", start)
    _sync(member)
    link = SyncLink.objects.get(kind="calendar")
    page = _trace(client_for(carol), member, link).content.decode()
    assert "Series on both sides" in page
    assert "Every week on Monday, 6 times" in page
    assert f"first {start:%Y-%m-%d %H:%M} UTC" in page
    assert "Every occurrence follows the pattern on both sides" in page

    second = start + dt.timedelta(days=7)
    moved = second + dt.timedelta(hours=2)
    occurrence_update(master, second, {
        "subject": "Team sync (moved)",
        "start": {"dateTime": moved.strftime(FMT), "timeZone": "UTC"},
        "end": {"dateTime": (moved + dt.timedelta(minutes=30)).strftime(FMT), "timeZone": "UTC"},
    })
    occurrence_delete(master, start)  # the first occurrence: Salesforce keeps it (it names the series)
    _sync(member)
    states = dict(SyncOccurrence.objects.values_list("original_start", "state"))
    assert states == {f"{start:%Y-%m-%dT%H:%M}": "kept", f"{second:%Y-%m-%dT%H:%M}": "changed"}
    for who in (carol, bob, pat):  # the member, an admin, staff
        html = _trace(client_for(who), member, link).content.decode()
        assert "2 occurrences no longer follow the pattern" in html
        assert "1 not the same on both sides yet" in html
        rows = html.split('<table class="series-table">')[1].split("</table>")[0]
        assert rows.index(f"{start:%Y-%m-%d %H:%M} UTC") < rows.index(f"{second:%Y-%m-%d %H:%M} UTC")
        assert "<td>cancelled <a" in rows or "<td>cancelled</td>" in rows
        assert "kept (Salesforce names the series by this occurrence)" in rows
        assert f"changed: start {moved:%Y-%m-%d %H:%M} UTC" in rows and "subject “Team sync (moved)”" in rows


def test_the_series_card_costs_the_same_queries_however_many_occurrences_differ(member, client_for, carol):
    start = _monday()
    _o_series(member, "Team sync", start)
    _sync(member)
    link = SyncLink.objects.get(kind="calendar")
    client = client_for(carol)

    def queries() -> int:
        _trace(client, member, link)  # warm the session and caches
        with CaptureQueriesContext(connection) as seen:
            assert _trace(client, member, link).status_code == 200
        return len(seen)

    SyncOccurrence.objects.create(link=link, original_start=f"{start:%Y-%m-%dT%H:%M}", state="cancelled")
    one = queries()
    for n in range(1, 6):
        when = start + dt.timedelta(days=7 * n)
        SyncOccurrence.objects.create(link=link, original_start=f"{when:%Y-%m-%dT%H:%M}", state="changed",
                                      content={"subject": f"Moved {n}"})
    assert queries() == one
    assert "Moved 5" in _trace(client, member, link).content.decode()


def test_a_single_event_has_no_series_card(member, client_for, carol):
    from sandbox.microsoft.services import event_create

    start = _monday()
    event_create(member.mailbox, {
        "subject": "One-off", "start": {"dateTime": start.strftime(FMT), "timeZone": "UTC"},
        "end": {"dateTime": (start + dt.timedelta(minutes=30)).strftime(FMT), "timeZone": "UTC"}})
    _sync(member)
    page = _trace(client_for(carol), member, SyncLink.objects.get(kind="calendar")).content.decode()
    assert "One-off" in page and "Series on both sides" not in page
