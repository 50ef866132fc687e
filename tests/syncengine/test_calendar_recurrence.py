"""Recurring series through the sandbox: what a user sees on either side.

Series map to series where both sides can express the pattern; what
Salesforce cannot hold is skipped, with a log entry saying why. Pattern changes
after the first sync: test_calendar_repattern.py.
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
    # Salesforce holds the series as one Event per occurrence, all with the pattern.
    rows = member.sf("Event")
    assert len(rows) == 6
    assert {r["Recurrence2PatternText"] for r in rows} == {
        "RRULE:FREQ=WEEKLY;BYDAY=MO,TH;WKST=SU;INTERVAL=1;COUNT=6"
    }
    assert all(r["IsRecurrence2"] is True for r in rows)
    assert _sync(member).counts.writes == 0
    assert len(member.events_o()) == 1  # never six Outlook events

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
    assert len(member.events_o()) == 2  # one Outlook series for four Salesforce occurrences
    assert _sync(member).counts.writes == 0
    assert SyncLink.objects.count() == 2


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
    standup = _sf_row(member, "Standup forever")
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


def _occurrences(member, subject_prefix="Team sync"):
    """The Salesforce occurrence records of the series, by start."""
    rows = [r for r in member.sf("Event") if (r["Subject"] or "").startswith(subject_prefix)]
    return sorted(rows, key=lambda r: r["StartDateTime"])


def _sf_when(value: dt.datetime) -> str:
    return value.strftime(FMT) + ".000+0000"


def _instances(member, master):
    """Outlook's occurrences of the series, as /instances serves them, by original start."""
    from connections.selectors import graph_client_for

    start = master.start_utc - dt.timedelta(days=1)
    params = {
        "startDateTime": start.strftime(FMT) + "Z",
        "endDateTime": (start + dt.timedelta(days=120)).strftime(FMT) + "Z",
    }
    client = graph_client_for(member.membership)
    out = {}
    for page in client.iter_pages(f"/me/events/{master.graph_id}/instances", params=params):
        for e in page.items:
            out[e["originalStart"][:16]] = e
    return out


def _quiet(member):
    again = _sync(member)
    assert again.counts.writes == 0, _messages(again)
    assert len(member.events_o()) == 1  # one Outlook series, never one event per occurrence
    assert SyncLink.objects.count() == 1


def test_changed_occurrence_in_outlook_changes_that_salesforce_occurrence_only(member):
    from sandbox.microsoft.services import occurrence_update
    from syncengine.models import SyncOccurrence

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
            "end": {"dateTime": (moved + dt.timedelta(minutes=30)).strftime(FMT), "timeZone": "UTC"},
        },
    )
    result = _sync(member)
    assert result.counts.updated == {"outlook": 0, "salesforce": 1}
    rows = _occurrences(member)
    assert len(rows) == 6
    (changed,) = [r for r in rows if r["IsRecurrence2Exception"]]
    assert changed["Subject"] == "Team sync (moved)"
    assert changed["StartDateTime"] == _sf_when(moved)
    assert [r["Subject"] for r in rows if r is not changed] == ["Team sync"] * 5
    assert rows[0]["StartDateTime"] == _sf_when(start)
    (note,) = [m for m in _messages(result) if "Occurrence originally on" in m]
    assert second.strftime("%Y-%m-%d %H:%M") in note and "(that occurrence only)" in note
    assert SyncOccurrence.objects.get().state == "changed"
    _quiet(member)


def test_cancelled_occurrence_in_outlook_deletes_that_salesforce_occurrence_only(member):
    from sandbox.microsoft.services import occurrence_delete

    start = _monday()
    master = _o_series(member, "Team sync", start)
    _sync(member)
    third = start + dt.timedelta(days=14)
    occurrence_delete(master, third)
    result = _sync(member)
    assert result.counts.deleted == {"outlook": 0, "salesforce": 1}
    starts = [r["StartDateTime"] for r in _occurrences(member)]
    assert len(starts) == 5 and _sf_when(third) not in starts
    assert _sf_when(start) in starts
    assert any("cancelled in Outlook: deleted in Salesforce" in m for m in _messages(result))
    _quiet(member)


def test_changed_occurrence_in_salesforce_changes_that_outlook_occurrence(member):
    from sandbox.salesforce.services import sf_records_update

    start = _monday()
    master = _o_series(member, "Team sync", start)
    _sync(member)
    fourth = start + dt.timedelta(days=21)
    (row,) = [r for r in _occurrences(member) if r["StartDateTime"] == _sf_when(fourth)]
    later = fourth + dt.timedelta(hours=3)
    # The user changes that one event in Salesforce ("this event only").
    (r,) = sf_records_update(
        user=member.sf_user,
        records=[("Event", row["Id"], {
            "Subject": "Team sync (customer visit)", "Location": "Lyon",
            "StartDateTime": _sf_when(later), "EndDateTime": _sf_when(later + dt.timedelta(minutes=30)),
        })],
        api_version="57.0",
    )  # fmt: skip
    assert r.success, r.errors
    result = _sync(member)
    assert result.counts.updated == {"outlook": 1, "salesforce": 0}
    inst = _instances(member, master)
    moved = inst[fourth.strftime("%Y-%m-%dT%H:%M")]
    assert moved["type"] == "exception"
    assert moved["subject"] == "Team sync (customer visit)"
    assert moved["location"]["displayName"] == "Lyon"
    assert moved["start"]["dateTime"].startswith(later.strftime(FMT))
    assert len(inst) == 6
    assert [e["subject"] for k, e in inst.items() if e is not moved] == ["Team sync"] * 5
    _quiet(member)


def test_deleted_occurrence_in_salesforce_cancels_that_outlook_occurrence(member):
    start = _monday()
    master = _o_series(member, "Team sync", start)
    _sync(member)
    fifth = start + dt.timedelta(days=28)
    (row,) = [r for r in _occurrences(member) if r["StartDateTime"] == _sf_when(fifth)]
    member.sf_delete(row["Id"])
    result = _sync(member)
    assert result.counts.deleted == {"outlook": 1, "salesforce": 0}
    inst = _instances(member, master)
    assert len(inst) == 5 and fifth.strftime("%Y-%m-%dT%H:%M") not in inst
    assert any("cancelled in Salesforce: deleted in Outlook" in m for m in _messages(result))
    assert len(_occurrences(member)) == 5
    _quiet(member)


def test_series_edit_reaches_future_salesforce_occurrences_and_keeps_the_past(member):
    from sandbox.microsoft.services import item_update

    start = _monday(-2)  # two occurrences already past
    master = _o_series(member, "Team sync", start)
    _sync(member)
    item_update(master, {"subject": "Team sync (new room)", "location": {"displayName": "Room 4"}})
    result = _sync(member)
    assert result.counts.updated == {"outlook": 0, "salesforce": 1}
    rows = _occurrences(member)
    assert len(rows) == 6
    now = _sf_when(timezone.now().astimezone(dt.UTC).replace(tzinfo=None))
    past = [r for r in rows if r["StartDateTime"] < now]
    future = [r for r in rows if r["StartDateTime"] >= now]
    assert [r["Subject"] for r in past] == ["Team sync", "Team sync"]  # activity history
    assert {(r["Subject"], r["Location"]) for r in future} == {("Team sync (new room)", "Room 4")}
    assert not any(r["IsRecurrence2Exception"] for r in rows)
    _quiet(member)


def test_occurrences_changed_before_the_first_sync_follow_the_new_copy(member):
    """A series is created with its pattern; the run after copies what its occurrences
    already had on their own (a cancelled one, a changed one), once."""
    from sandbox.microsoft.services import occurrence_delete, occurrence_update

    start = _monday()
    master = _o_series(member, "Team sync", start)
    occurrence_delete(master, start + dt.timedelta(days=7))
    occurrence_update(master, start + dt.timedelta(days=14), {"subject": "Team sync (offsite)"})
    first = _sync(member)
    assert first.counts.created == {"outlook": 0, "salesforce": 1}
    second = _sync(member)
    assert second.counts.deleted == {"outlook": 0, "salesforce": 1}
    assert second.counts.updated == {"outlook": 0, "salesforce": 1}
    rows = _occurrences(member)
    assert len(rows) == 5
    assert [r["Subject"] for r in rows].count("Team sync (offsite)") == 1
    assert SyncLink.objects.get().state == "synced"
    _quiet(member)


def test_cancelling_the_first_occurrence_keeps_it_in_salesforce_and_says_why(member):
    from sandbox.microsoft.services import occurrence_delete

    start = _monday()
    master = _o_series(member, "Team sync", start)
    _sync(member)
    occurrence_delete(master, start)
    result = _sync(member)
    assert result.counts.writes == 0
    assert len(_occurrences(member)) == 6
    (note,) = [m for m in _messages(result) if "Salesforce keeps it" in m]
    assert "first occurrence" in note
    _quiet(member)


def test_this_and_following_in_outlook_ends_one_series_and_starts_the_other(member):
    """Outlook's "this and following" edit: the master's range is cut short and the rest
    becomes a new series. Salesforce ends the old series there (its later occurrences
    deleted, the earlier ones kept) and gets the new one; nothing twice."""
    from sandbox.microsoft.services import item_update

    start = _monday()
    master = _o_series(member, "Team sync", start)
    _sync(member)
    fourth = start + dt.timedelta(days=21)
    item_update(master, {"recurrence": {
        "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"], "firstDayOfWeek": "sunday"},
        "range": {"type": "numbered", "startDate": start.date().isoformat(), "numberOfOccurrences": 3},
    }})  # fmt: skip
    _o_series(
        member, "Team sync (new time)", fourth + dt.timedelta(hours=1),
        rng={"type": "numbered", "startDate": fourth.date().isoformat(), "numberOfOccurrences": 3},
    )  # fmt: skip
    result = _sync(member)
    assert result.counts.created == {"outlook": 0, "salesforce": 1}
    old = [r for r in _occurrences(member) if r["Subject"] == "Team sync"]
    new = [r for r in _occurrences(member) if r["Subject"] == "Team sync (new time)"]
    assert [r["StartDateTime"] for r in old] == [
        _sf_when(start + dt.timedelta(days=7 * k)) for k in range(3)
    ]
    assert [r["StartDateTime"] for r in new] == [
        _sf_when(fourth + dt.timedelta(days=7 * k, hours=1)) for k in range(3)
    ]
    assert any("now ends earlier in Outlook" in m for m in _messages(result))
    assert any("were deleted; the earlier ones are kept" in m for m in _messages(result))
    again = _sync(member)
    assert again.counts.writes == 0, _messages(again)
    assert len(member.events_o()) == 2 and SyncLink.objects.count() == 2
    assert len(_occurrences(member)) == 6


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
    """The first occurrence of a Salesforce series (the record its create returned)."""
    rows = sorted(
        (r for r in member.sf("Event") if r["Subject"] == subject), key=lambda r: r["StartDateTime"]
    )
    assert rows, subject
    assert len({r["Recurrence2PatternText"] for r in rows}) == 1
    return rows[0]


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


def test_manual_plan_lists_a_changed_occurrence_and_applies_only_it(member):
    """Manual mode: the changed occurrence is a planned change of its own, with its
    reason, in the review page's "Series occurrences" group; applying the plan writes it."""
    from sandbox.microsoft.services import occurrence_update
    from syncengine.engine.run import plan_apply
    from syncengine.models import PlannedChange
    from syncengine.selectors import group_of

    start = _monday()
    master = _o_series(member, "Team sync", start)
    _sync(member)
    _sync(member)
    second = start + dt.timedelta(days=7)
    occurrence_update(master, second, {"subject": "Team sync (board)"})
    plan = run_sync(member.membership, "calendar", "manual", plan_only=True)
    assert plan.status == "planned", plan.message
    (row,) = PlannedChange.objects.filter(run_id=plan.run_id)
    assert row.action == "occurrence" and row.side == "salesforce:update"
    assert group_of(row.action, row.side) == "occurrence"
    assert second.strftime("%Y-%m-%d %H:%M") in row.reason and "that occurrence only" in row.reason
    assert row.title == "Team sync"
    assert all(r["Subject"] == "Team sync" for r in _occurrences(member))  # nothing written yet
    result = plan_apply(member.membership, plan.run_id)
    assert result.counts.updated == {"outlook": 0, "salesforce": 1}
    assert [r["Subject"] for r in _occurrences(member)].count("Team sync (board)") == 1
    _quiet(member)


def test_series_deleted_in_outlook_keeps_its_past_in_salesforce_and_never_comes_back(member):
    from sandbox.microsoft.services import item_delete

    start = _monday(-2)  # two occurrences already past
    master = _o_series(member, "Team sync", start)
    _sync(member)
    _sync(member)
    item_delete(master)
    result = _sync(member)
    assert result.counts.deleted == {"outlook": 0, "salesforce": 1}
    now = _sf_when(timezone.now().astimezone(dt.UTC).replace(tzinfo=None))
    rows = _occurrences(member)
    assert [r["StartDateTime"] < now for r in rows] == [True, True]  # activity history kept
    assert any("past occurrences stay there as activity history" in m for m in _messages(result))
    for _ in range(2):
        again = _sync(member)
        assert again.counts.writes == 0, _messages(again)
    assert member.events_o() == []  # the kept history is never copied back to Outlook
    assert SyncLink.objects.get().state == "tombstoned"


def test_series_deleted_in_salesforce_deletes_the_outlook_series(member):
    from sandbox.salesforce.services import sf_series_delete_onwards

    start = _monday()
    _o_series(member, "Team sync", start)
    _sync(member)
    _sync(member)
    sf_series_delete_onwards(user=member.sf_user, record_id=_occurrences(member)[0]["Id"])
    assert _occurrences(member) == []
    result = _sync(member)
    assert result.counts.deleted == {"outlook": 1, "salesforce": 0}
    assert member.events_o() == []
    assert _sync(member).counts.writes == 0


def test_a_salesforce_series_whose_outlook_copy_was_not_recorded_still_gets_its_cancellations(member):
    """Created in Salesforce with one occurrence deleted; the run that creates the Outlook
    series dies before recording it. The next run finds the copy by our key, and the
    occurrence deleted in Salesforce is then cancelled in Outlook too (found by the state
    machine: the adopted copy was settled before its occurrences were ever compared)."""
    from contextlib import suppress
    from unittest import mock

    from sandbox.salesforce.services import sf_records_create
    from syncengine.engine.apply import Applier

    class Died(Exception):
        pass

    first = _monday(1)
    (r,) = sf_records_create(user=member.sf_user, records=[("Event", {
        "Subject": "Board", "StartDateTime": _sf_when(first), "DurationInMinutes": 30,
        "IsRecurrence2": True, "Recurrence2PatternText": "RRULE:FREQ=WEEKLY;BYDAY=MO;INTERVAL=1;COUNT=4",
        "Recurrence2PatternTimeZone": "UTC",
    })])  # fmt: skip
    assert r.success, r.errors
    member.sf_delete(_occurrences(member, "Board")[3]["Id"])

    def died(self, decisions):
        raise Died()

    with mock.patch.object(Applier, "_finish", died), suppress(Died):
        run_sync(member.membership, "calendar", "manual")
    _sync(member)
    _sync(member)
    (o,) = member.events_o()
    assert _outlook_instances(member, o) == [first + dt.timedelta(days=7 * k) for k in range(3)]
    for _ in range(2):
        assert _sync(member).counts.writes == 0
