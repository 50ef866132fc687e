"""Recurring series through the sandbox: what a user sees on either side.

Series map to series where both sides can express the pattern; what
Salesforce cannot hold (an unbounded series, a changed single occurrence, a
pattern changed after creation) is skipped or kept, with a log entry saying why.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from syncengine.engine.run import run_sync
from syncengine.models import SyncLink, SyncLogEntry

from .conftest import SANDBOX_DBS

pytestmark = pytest.mark.django_db(databases=SANDBOX_DBS, transaction=True)

FMT = "%Y-%m-%dT%H:%M:%S"


def _monday(weeks_ahead: int = 1) -> dt.datetime:
    today = timezone.now().astimezone(dt.UTC).replace(hour=9, minute=0, second=0, microsecond=0)
    return today + dt.timedelta(days=(7 - today.weekday()) % 7 + 7 * weeks_ahead)


def _o_series(member, subject, start, *, rng=None, days=("monday",)):
    from sandbox.microsoft.services import event_create

    end = start + dt.timedelta(minutes=30)
    item, _ = event_create(
        member.mailbox,
        {
            "subject": subject,
            "start": {"dateTime": start.strftime(FMT), "timeZone": "UTC"},
            "end": {"dateTime": end.strftime(FMT), "timeZone": "UTC"},
            "recurrence": {
                "pattern": {
                    "type": "weekly",
                    "interval": 1,
                    "daysOfWeek": list(days),
                    "firstDayOfWeek": "sunday",
                },
                "range": rng
                or {
                    "type": "numbered",
                    "startDate": start.date().isoformat(),
                    "numberOfOccurrences": 6,
                },
            },
        },
    )
    return item


def _sync(member):
    result = run_sync(member.membership, "calendar", "manual")
    assert result.status == "succeeded", result.message
    return result


def _messages(result) -> list[str]:
    return list(SyncLogEntry.objects.filter(run_id=result.run_id).values_list("message", flat=True))


def test_outlook_series_becomes_a_salesforce_series_and_back(member):
    start = _monday()
    _o_series(member, "Weekly pipeline review", start, days=("monday", "thursday"))
    first = _sync(member)
    assert first.counts.created["salesforce"] == 1
    (row,) = member.sf("Event")
    assert row["IsRecurrence2"] is True
    assert (
        row["Recurrence2PatternText"] == "RRULE:FREQ=WEEKLY;BYDAY=MO,TH;WKST=SU;INTERVAL=1;COUNT=6"
    )
    assert _sync(member).counts.writes == 0

    # A series made in Salesforce arrives in Outlook as a series with the same pattern
    # (it starts on one of its days: the next month's first Tuesday).
    sf_start = (start + dt.timedelta(days=31)).replace(day=1, hour=14)
    sf_start += dt.timedelta(days=(1 - sf_start.weekday()) % 7)
    member.sf_create(
        "Event",
        Subject="Monthly board call",
        StartDateTime=sf_start.strftime(FMT) + ".000+0000",
        DurationInMinutes=60,
        IsRecurrence2=True,
        Recurrence2PatternText="RRULE:FREQ=MONTHLY;BYDAY=TU;BYSETPOS=1;INTERVAL=1;COUNT=4",
    )
    assert _sync(member).counts.created["outlook"] == 1
    board = next(e for e in member.events_o() if e.data["subject"] == "Monthly board call")
    assert board.event_type == "seriesMaster"
    assert board.data["recurrence"]["pattern"] == {
        "type": "relativeMonthly",
        "interval": 1,
        "daysOfWeek": ["tuesday"],
        "index": "first",
    }
    assert board.data["recurrence"]["range"]["numberOfOccurrences"] == 4
    assert _sync(member).counts.writes == 0


def test_open_series_goes_to_the_horizon_and_unholdable_rules_are_skipped(member):
    start = _monday()
    _o_series(
        member,
        "Standup forever",
        start,
        rng={"type": "noEnd", "startDate": start.date().isoformat()},
    )
    member.sf_create(
        "Event",
        Subject="Second-last day of the month",
        StartDateTime=(start + dt.timedelta(hours=6)).strftime(FMT) + ".000+0000",
        DurationInMinutes=30,
        IsRecurrence2=True,
        Recurrence2PatternText="RRULE:FREQ=MONTHLY;BYMONTHDAY=-2;COUNT=3",
    )
    result = _sync(member)
    assert result.counts.created == {"outlook": 0, "salesforce": 1}
    assert result.counts.errors == {"outlook": 0, "salesforce": 0}
    assert result.counts.skipped == 1
    messages = _messages(result)
    # The open series: written up to the end of the calendar range, and the member told so.
    horizon = (timezone.now() + dt.timedelta(days=365)).astimezone(dt.UTC).date()
    (standup,) = [r for r in member.sf("Event") if r["Subject"] == "Standup forever"]
    assert standup["Recurrence2PatternText"] == (
        f"RRULE:FREQ=WEEKLY;BYDAY=MO;WKST=SU;INTERVAL=1;UNTIL={horizon:%Y%m%d}T235959Z"
    )
    assert any(
        "no end date in Outlook; Salesforce holds its occurrences through "
        f"{horizon:%Y-%m-%d}" in m
        for m in messages
    ), messages
    assert any(
        m.startswith("Skipped:") and "cannot be expressed in Outlook" in m for m in messages
    ), messages
    # The rule Outlook cannot hold is not copied; the open series stays open in Outlook.
    assert sorted(e.data["subject"] for e in member.events_o()) == ["Standup forever"]
    assert SyncLink.objects.count() == 1
    (o,) = member.events_o()
    assert o.data["recurrence"]["range"]["type"] == "noEnd"
    assert _sync(member).counts.writes == 0


def test_changed_occurrence_is_skipped_with_the_reason_and_never_duplicated(member):
    from sandbox.microsoft.services import occurrence_update

    start = _monday()
    master = _o_series(member, "Team sync", start)
    _sync(member)
    second = start + dt.timedelta(days=7)
    moved = second + dt.timedelta(hours=2)
    occurrence_update(
        master,
        second,
        {
            "subject": "Team sync (moved)",
            "start": {"dateTime": moved.strftime(FMT), "timeZone": "UTC"},
            "end": {
                "dateTime": (moved + dt.timedelta(minutes=30)).strftime(FMT),
                "timeZone": "UTC",
            },
        },
    )
    result = _sync(member)
    assert result.counts.writes == 0
    (note,) = [m for m in _messages(result) if "changed on its own" in m]
    assert "“Team sync (moved)” originally on " + second.strftime("%Y-%m-%d %H:%M") in note
    assert "Salesforce event series cannot hold a changed single occurrence" in note
    # Still exactly one Salesforce series with its pattern, no single copy.
    (row,) = member.sf("Event")
    assert row["Subject"] == "Team sync" and row["IsRecurrence2"] is True
    assert _sync(member).counts.writes == 0


def test_cancelled_occurrence_neither_deletes_nor_changes_the_salesforce_series(member):
    from sandbox.microsoft.services import occurrence_delete

    start = _monday()
    master = _o_series(member, "Team sync", start)
    _sync(member)
    occurrence_delete(master, start + dt.timedelta(days=7))
    result = _sync(member)
    assert result.counts.writes == 0
    (row,) = member.sf("Event")
    assert row["Subject"] == "Team sync"
    assert SyncLink.objects.get().state == "synced"


def test_pattern_change_in_outlook_keeps_the_salesforce_series_and_warns(member):
    from sandbox.microsoft.services import item_update

    start = _monday()
    master = _o_series(member, "Team sync", start)
    _sync(member)
    (row,) = member.sf("Event")
    old_rule = row["Recurrence2PatternText"]
    new_recurrence = {
        "pattern": {
            "type": "weekly",
            "interval": 2,
            "daysOfWeek": ["monday"],
            "firstDayOfWeek": "sunday",
        },
        "range": {
            "type": "numbered",
            "startDate": start.date().isoformat(),
            "numberOfOccurrences": 3,
        },
    }
    item_update(master, {"subject": "Team sync (fortnightly)", "recurrence": new_recurrence})

    result = _sync(member)
    assert result.counts.updated == {"outlook": 0, "salesforce": 1}
    (row,) = member.sf("Event")
    assert row["Subject"] == "Team sync (fortnightly)"
    assert row["Recurrence2PatternText"] == old_rule  # Salesforce cannot change it
    (warning,) = [
        m for m in _messages(result) if "Warning: the series' pattern changed in Outlook" in m
    ]
    assert "keeps its old recurrence" in warning

    # The user's new pattern is never reverted from Salesforce's old one, and it goes quiet.
    for _ in range(2):
        assert _sync(member).counts.writes == 0
    (o,) = member.events_o()
    assert o.data["recurrence"]["pattern"]["interval"] == 2
    assert o.data["recurrence"]["range"]["numberOfOccurrences"] == 3
    link = SyncLink.objects.get()
    assert link.state == "synced" and link.sf_id == row["Id"]


# ---------------------------------------------------------------- fidelity (issue 12)


def _outlook_instances(member, item, *, days: int = 800):
    """Occurrence starts of an Outlook series as Graph's /instances serves them."""
    from connections.selectors import graph_client_for

    start = dt.datetime.fromisoformat(item.data["start"]["dateTime"][:19]) - dt.timedelta(days=2)
    params = {
        "startDateTime": start.strftime(FMT) + "Z",
        "endDateTime": (start + dt.timedelta(days=days)).strftime(FMT) + "Z",
    }
    client = graph_client_for(member.membership)
    out = []
    for page in client.iter_pages(f"/me/events/{item.graph_id}/instances", params=params):
        for e in page.items:
            wall = dt.datetime.fromisoformat(e["start"]["dateTime"][:19])
            out.append(wall.date() if e.get("isAllDay") else wall.replace(tzinfo=dt.UTC))
    return sorted(out)


def _graph_series(member, subject, *, start, zone, pattern, rng, minutes=60, all_day=False):
    from sandbox.microsoft.services import event_create

    end = start + (dt.timedelta(days=1) if all_day else dt.timedelta(minutes=minutes))
    item, _ = event_create(
        member.mailbox,
        {
            "subject": subject,
            "isAllDay": all_day,
            "start": {"dateTime": start.strftime(FMT), "timeZone": zone},
            "end": {"dateTime": end.strftime(FMT), "timeZone": zone},
            "recurrence": {"pattern": pattern, "range": {"startDate": f"{start:%Y-%m-%d}", **rng}},
        },
    )
    return item


def _sf_row(member, subject):
    (row,) = [r for r in member.sf("Event") if r["Subject"] == subject]
    return row


def test_series_follows_the_organizers_zone_across_dst_not_the_members(member):
    """Root cause 1: a Berlin 09:00 weekly series for a member in Los Angeles. The two
    zones change clocks on different Sundays; every occurrence stays 09:00 in Berlin."""
    from .test_recurrence_fidelity import _dateutil_salesforce

    user = member.membership.user
    user.time_zone = "America/Los_Angeles"
    user.save(update_fields=["time_zone"])
    item = _graph_series(
        member,
        "Berlin stand-up",
        start=dt.datetime(2027, 3, 1, 9, 0),  # a Monday; US DST 03-14, EU DST 03-28
        zone="W. Europe Standard Time",
        pattern={"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]},
        rng={"type": "numbered", "numberOfOccurrences": 8},
    )
    _sync(member)
    row = _sf_row(member, "Berlin stand-up")
    assert row["Recurrence2PatternTimeZone"] == "Europe/Berlin"
    outlook = _outlook_instances(member, item)
    assert len(outlook) == 8
    assert _dateutil_salesforce(row) == outlook
    berlin = [o.astimezone(dt.timezone(dt.timedelta(0))).hour for o in outlook]
    assert berlin[:4] == [8, 8, 8, 8] and berlin[-1] == 7  # 09:00 CET, then 09:00 CEST


def test_day_31_falls_on_the_last_day_of_shorter_months_on_both_sides(member):
    """Root cause 2: Outlook's monthly "day 31" is February 28, April 30, ...; an
    RRULE BYMONTHDAY=31 would skip those months."""
    from .test_recurrence_fidelity import _dateutil_salesforce

    item = _graph_series(
        member,
        "Month-end close",
        start=dt.datetime(2027, 1, 31, 16, 0),
        zone="Eastern Standard Time",
        pattern={"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 31},
        rng={"type": "numbered", "numberOfOccurrences": 6},
    )
    _sync(member)
    row = _sf_row(member, "Month-end close")
    assert "BYMONTHDAY=-1" in row["Recurrence2PatternText"]
    outlook = _outlook_instances(member, item)
    assert [o.astimezone(dt.UTC).date().isoformat()[5:] for o in outlook] == [
        "01-31", "02-28", "03-31", "04-30", "05-31", "06-30",
    ]
    assert _dateutil_salesforce(row) == outlook
    assert _sync(member).counts.writes == 0


def test_day_30_with_a_february_is_skipped_with_the_reason(member):
    _graph_series(
        member,
        "Payroll",
        start=dt.datetime(2027, 1, 30, 10, 0),
        zone="UTC",
        pattern={"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 30},
        rng={"type": "numbered", "numberOfOccurrences": 4},
    )
    result = _sync(member)
    assert result.counts.created == {"outlook": 0, "salesforce": 0}
    (note,) = [m for m in _messages(result) if m.startswith("Skipped:")]
    assert "Outlook moves day 30 to the last day of shorter months" in note
    assert "February 2027" in note
    assert not member.sf("Event")
