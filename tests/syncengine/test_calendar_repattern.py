"""A series' pattern changed after it was synced: what a user sees on both sides.

Salesforce cannot change a series' pattern through the API, so LinkPoint re-creates
the Salesforce series the way Salesforce's own calendar does: the occurrences already
past stay as activity history (old pattern), the rest is deleted, and the new pattern
starts at its first occurrence not past. Nothing twice, nothing lost, even when the
run dies half-way.
"""

from __future__ import annotations

import datetime as dt
from contextlib import suppress
from unittest import mock

import pytest
from django.utils import timezone

from syncengine.engine.series import history_key
from syncengine.models import SyncLink

from .conftest import SANDBOX_DBS
from .test_calendar_recurrence import _messages, _monday, _o_series, _sf_when, _sync

pytestmark = pytest.mark.django_db(databases=SANDBOX_DBS, transaction=True)


def _weekly(start, *, interval=1, count=6, days=("monday",)):
    return {
        "pattern": {
            "type": "weekly",
            "interval": interval,
            "daysOfWeek": list(days),
            "firstDayOfWeek": "sunday",
        },
        "range": {
            "type": "numbered",
            "startDate": start.date().isoformat(),
            "numberOfOccurrences": count,
        },
    }


def _rows(member):
    return sorted(member.sf("Event"), key=lambda r: r["StartDateTime"])


def _now_sf() -> str:
    return _sf_when(timezone.now().astimezone(dt.UTC).replace(tzinfo=None))


class _Crash(Exception):
    pass


def _fortnightly_change(member):
    """A weekly series (two occurrences past) synced, then made fortnightly in Outlook."""
    from sandbox.microsoft.services import item_update

    start = _monday(-2)
    master = _o_series(member, "Team sync", start)
    _sync(member)
    link = SyncLink.objects.get()
    old_head = link.sf_id
    item_update(
        master,
        {"subject": "Team sync (fortnightly)", "recurrence": _weekly(start, interval=2, count=4)},
    )
    return start, master, old_head


def _assert_repatterned(member, start, old_head):
    now = _now_sf()
    rows = _rows(member)
    old = [r for r in rows if r["Subject"] == "Team sync"]
    new = [r for r in rows if r["Subject"] == "Team sync (fortnightly)"]
    weekly = [_sf_when(start + dt.timedelta(days=7 * k)) for k in range(6)]
    fortnightly = [_sf_when(start + dt.timedelta(days=14 * k)) for k in range(4)]
    # The past stays as it was (activity history); nothing of the old pattern is ahead.
    assert [r["StartDateTime"] for r in old] == [w for w in weekly if w < now]
    assert {r["Recurrence2PatternText"] for r in old} == {
        "RRULE:FREQ=WEEKLY;BYDAY=MO;WKST=SU;INTERVAL=1;COUNT=6"
    }
    # The new pattern, once, from its first occurrence not past.
    assert [r["StartDateTime"] for r in new] == [f for f in fortnightly if f >= now]
    assert len({r["Recurrence2PatternText"] for r in new}) == 1
    assert "INTERVAL=2" in new[0]["Recurrence2PatternText"]
    link = SyncLink.objects.get()
    assert link.sf_id == new[0]["Id"] and link.resume is None
    assert new[0]["LinkPoint_Key__c"] == str(link.link_key)
    (head,) = [r for r in old if r["Id"] == old_head]
    assert head["LinkPoint_Key__c"] == history_key(str(link.link_key))
    return old, new


def _assert_quiet(member):
    for _ in range(2):
        again = _sync(member)
        assert again.counts.writes == 0, _messages(again)
    assert len(member.events_o()) == 1  # one Outlook series; Salesforce's history never comes back
    assert SyncLink.objects.count() == 1
    (o,) = member.events_o()
    assert o.data["recurrence"]["pattern"]["interval"] == 2  # the user's change is never reverted


def test_pattern_change_in_outlook_recreates_the_salesforce_series_and_keeps_the_past(member):
    start, _, old_head = _fortnightly_change(member)
    result = _sync(member)
    assert result.counts.created == {"outlook": 0, "salesforce": 1}
    old, new = _assert_repatterned(member, start, old_head)
    (note,) = [m for m in _messages(result) if "pattern changed in Outlook" in m]
    assert f"its {len(old)} past occurrences stay there as activity history" in note
    assert "created again there with the new pattern" in note
    _assert_quiet(member)


def test_a_later_end_in_outlook_is_a_pattern_change_too(member):
    """Six occurrences become ten: the Salesforce series gets the four more."""
    from sandbox.microsoft.services import item_update

    start = _monday(-1)
    master = _o_series(member, "Team sync", start)
    _sync(member)
    item_update(master, {"recurrence": _weekly(start, count=10)})
    _sync(member)
    now = _now_sf()
    starts = [r["StartDateTime"] for r in _rows(member)]
    assert starts == [_sf_when(start + dt.timedelta(days=7 * k)) for k in range(10)]
    assert sum(1 for s in starts if s < now) == 1
    for _ in range(2):
        assert _sync(member).counts.writes == 0
    assert SyncLink.objects.count() == 1 and len(member.events_o()) == 1


def test_a_series_wholly_ahead_is_replaced_without_history(member):
    from sandbox.microsoft.services import item_update

    start = _monday(1)
    master = _o_series(member, "Team sync", start)
    _sync(member)
    item_update(master, {"recurrence": _weekly(start, count=3, days=("monday", "thursday"))})
    result = _sync(member)
    assert any("none of its occurrences was past" in m for m in _messages(result))
    starts = [r["StartDateTime"] for r in _rows(member)]
    assert starts == [
        _sf_when(start + dt.timedelta(days=d)) for d in (0, 3, 7)
    ]  # Monday, Thursday, Monday: COUNT=3 of the new pattern, nothing of the old
    link = SyncLink.objects.get()
    assert {r["LinkPoint_Key__c"] for r in _rows(member)} == {str(link.link_key), None}
    for _ in range(2):
        assert _sync(member).counts.writes == 0


@pytest.mark.parametrize("dies_in", ["delete_onwards", "create_many", "record"])
def test_a_run_that_dies_half_way_through_a_pattern_change_is_finished_by_the_next(member, dies_in):
    """Killed after retiring the old key, after deleting the old future, or after creating
    the new series but before recording it: the next run ends in the same place, with
    the new series once and the past kept."""
    from syncengine.engine.apply import Applier
    from syncengine.engine.remote import SalesforceSide

    start, _, old_head = _fortnightly_change(member)

    def crash(*args, **kwargs):
        raise _Crash()

    target = (Applier, "_finish") if dies_in == "record" else (SalesforceSide, dies_in)
    real = getattr(*target)
    calls = []

    def first_series_call(self, *args, **kwargs):
        # Only the re-creation's step dies (other writes of the run go through).
        if dies_in == "record" or not calls:
            calls.append(1)
            raise _Crash()
        return real(self, *args, **kwargs)

    from syncengine.engine.run import run_sync

    with mock.patch.object(*target, first_series_call), suppress(_Crash):
        run_sync(member.membership, "calendar", "manual")
    link = SyncLink.objects.get()
    assert (
        link.resume is not None and link.resume["head"] == old_head
    )  # saved before the first step
    _sync(member)
    _assert_repatterned(member, start, old_head)
    _assert_quiet(member)


def test_pattern_change_waits_for_the_review_in_manual_mode_and_says_what_is_kept(member):
    """Manual mode: the plan a member reviews names the re-creation and what stays as
    history before anything is written; applying it does exactly that."""
    from syncengine.engine.run import plan_apply, run_sync
    from syncengine.models import PlannedChange

    start, _, old_head = _fortnightly_change(member)
    before = _rows(member)
    plan = run_sync(member.membership, "calendar", "manual", plan_only=True)
    assert plan.status == "planned", plan.message
    (row,) = PlannedChange.objects.filter(run_id=plan.run_id)
    assert "pattern changed in Outlook" in row.reason and "activity history" in row.reason
    assert _rows(member) == before  # nothing written yet
    result = plan_apply(member.membership, plan.run_id)
    assert result.status == "succeeded", result.message
    _assert_repatterned(member, start, old_head)
    _assert_quiet(member)


# ---------------------------------------------------------------- changed in Salesforce


def _sf_repattern(member, row_id, rrule, start=None):
    from sandbox.salesforce.services import sf_series_repattern

    return sf_series_repattern(user=member.sf_user, occurrence_id=row_id, rrule=rrule, start=start)


def test_pattern_changed_in_salesforce_before_it_starts_reaches_the_outlook_series(member):
    """A series wholly ahead re-created in Salesforce's calendar (our key moves with it):
    Outlook's series takes the new pattern; nothing twice on either side."""
    start = _monday(1)
    _o_series(member, "Team sync", start)
    _sync(member)
    first = _rows(member)[0]
    _sf_repattern(member, first["Id"], "FREQ=WEEKLY;BYDAY=MO,TH;WKST=SU;INTERVAL=1;COUNT=4")
    result = _sync(member)
    assert result.counts.updated == {"outlook": 1, "salesforce": 0}, _messages(result)
    (o,) = member.events_o()
    assert sorted(o.data["recurrence"]["pattern"]["daysOfWeek"]) == ["monday", "thursday"]
    assert o.data["recurrence"]["range"]["numberOfOccurrences"] == 4
    assert SyncLink.objects.get().sf_id == _rows(member)[0]["Id"]
    for _ in range(2):
        again = _sync(member)
        assert again.counts.writes == 0, _messages(again)
    assert len(member.events_o()) == 1 and len(_rows(member)) == 4


def test_pattern_changed_in_salesforce_after_it_started_splits_the_outlook_series(member):
    """Re-created in Salesforce with occurrences past: Salesforce keeps them as history
    (the key stays there) and starts a new series. Outlook ends the old series at its
    last past occurrence and gets the new series — Outlook's own "this and following" —
    so no meeting is twice and none is lost."""
    start = _monday(-2)
    _o_series(member, "Team sync", start)
    _sync(member)
    ahead = [r for r in _rows(member) if r["StartDateTime"] >= _now_sf()]
    tuesday = dt.datetime.fromisoformat(
        ahead[0]["StartDateTime"].replace("+0000", "+00:00")
    ) + dt.timedelta(days=1)
    _sf_repattern(
        member, ahead[0]["Id"], "FREQ=WEEKLY;BYDAY=TU;WKST=SU;INTERVAL=1;COUNT=3", start=tuesday
    )
    result = _sync(member)
    messages = _messages(result)
    masters = sorted(member.events_o(), key=lambda e: e.data["start"]["dateTime"])
    assert len(masters) == 2, messages
    old, new = masters
    kept = [r for r in _rows(member) if r["IsRecurrence2Exclusion"]]
    assert old.data["recurrence"]["range"]["type"] in ("endDate", "numbered"), messages
    if old.data["recurrence"]["range"]["type"] == "numbered":
        assert old.data["recurrence"]["range"]["numberOfOccurrences"] == len(kept), messages
    else:
        assert old.data["recurrence"]["range"]["endDate"] == kept[-1]["StartDateTime"][:10]
    assert new.data["recurrence"]["pattern"]["daysOfWeek"] == ["tuesday"]
    assert new.data["recurrence"]["range"]["numberOfOccurrences"] == 3
    for _ in range(2):
        again = _sync(member)
        assert again.counts.writes == 0, _messages(again)
    assert len(member.events_o()) == 2 and SyncLink.objects.count() == 2


def test_a_salesforce_occurrence_change_lost_to_a_pattern_change_is_named(member):
    """Changed on its own in Salesforce, then the pattern changes in Outlook before a run:
    the re-created series cannot hold that change, and the member is told which one."""
    from sandbox.microsoft.services import item_update
    from sandbox.salesforce.services import sf_records_update

    start = _monday(1)
    master = _o_series(member, "Team sync", start)
    _sync(member)
    _sync(member)
    third = _rows(member)[2]
    (r,) = sf_records_update(
        user=member.sf_user,
        records=[("Event", third["Id"], {"Subject": "Team sync (board)"})],
        api_version="57.0",
    )
    assert r.success, r.errors
    item_update(master, {"recurrence": _weekly(start, interval=2, count=4)})
    result = _sync(member)
    notes = [m for m in _messages(result) if "pattern changed in Outlook" in m]
    assert len(notes) == 1, _messages(result)
    note = notes[0]
    assert "1 of the deleted occurrences had been changed on their own in Salesforce" in note
    assert (start + dt.timedelta(days=14)).strftime("%Y-%m-%d %H:%M") in note
    assert [r["Subject"] for r in _rows(member)] == ["Team sync"] * 4
    assert [r["StartDateTime"] for r in _rows(member)] == [
        _sf_when(start + dt.timedelta(days=14 * k)) for k in range(4)
    ]


def test_an_occurrence_saved_in_salesforce_while_the_run_reads_is_not_deleted_unseen(member):
    """The re-creation deletes the old series' future. A Salesforce save that lands between
    the run's read and that deletion holds the re-creation (as it holds an update): this run
    deletes nothing, and the next one re-creates the series and names the change it could
    not keep."""
    from sandbox.microsoft.services import item_update
    from sandbox.salesforce.services import sf_records_update

    start = _monday(1)
    master = _o_series(member, "Team sync", start)
    _sync(member)
    _sync(member)
    before = _rows(member)
    third = before[2]
    item_update(master, {"recurrence": _weekly(start, interval=2, count=4)})
    from syncengine.engine.run import _Run

    real = _Run._decide

    def decide_then_save(self, *args, **kwargs):
        # After every read of the run (a series' occurrences are read after both listings);
        # at API 57.0 an update changes that one occurrence (at a later version, the series).
        out = real(self, *args, **kwargs)
        (saved,) = sf_records_update(
            user=member.sf_user,
            records=[("Event", third["Id"], {"Subject": "Team sync (board)"})],
            api_version="57.0",
        )
        assert saved.success, saved.errors
        return out

    with mock.patch.object(_Run, "_decide", decide_then_save):
        held = _sync(member)
    assert held.counts.created == {"outlook": 0, "salesforce": 0}, _messages(held)
    assert any("Changed in Salesforce during the run" in m for m in _messages(held)), _messages(held)
    after = _rows(member)
    assert [r["Id"] for r in after] == [r["Id"] for r in before], "the old series was deleted unseen"
    assert after[2]["Subject"] == "Team sync (board)"
    assert SyncLink.objects.get().resume is None

    result = _sync(member)
    notes = [m for m in _messages(result) if "pattern changed in Outlook" in m]
    assert len(notes) == 1, _messages(result)
    assert "1 of the deleted occurrences had been changed on their own in Salesforce" in notes[0]
    assert [r["Subject"] for r in _rows(member)] == ["Team sync"] * 4
    assert [r["StartDateTime"] for r in _rows(member)] == [
        _sf_when(start + dt.timedelta(days=14 * k)) for k in range(4)
    ]
    assert SyncLink.objects.get().resume is None
    _assert_quiet(member)


def test_a_series_wide_edit_after_an_occurrence_change_is_not_held_forever(member):
    """An occurrence changed on its own makes that row the series' newest in Salesforce;
    a later series-wide edit in Outlook must still be written (not "changed during the
    run" at every run)."""
    from sandbox.microsoft.services import item_update, occurrence_update

    start = _monday(1)
    master = _o_series(member, "Team sync", start)
    _sync(member)
    _sync(member)
    occurrence_update(master, start + dt.timedelta(days=14), {"subject": "Team sync (board)"})
    _sync(member)
    item_update(master, {"location": {"displayName": "Room 9"}})
    result = _sync(member)
    assert not any("during the run" in m for m in _messages(result)), _messages(result)
    rows = _rows(member)
    assert [r["Subject"] for r in rows].count("Team sync (board)") == 1
    assert {r["Location"] for r in rows if r["Subject"] == "Team sync"} == {"Room 9"}
    for _ in range(2):
        assert _sync(member).counts.writes == 0


def test_an_all_day_series_pattern_change_keeps_its_past_days(member):
    from sandbox.microsoft.services import item_update

    from .test_calendar_recurrence import _graph_series

    first = (_monday(-1)).replace(hour=0)
    master = _graph_series(
        member, "Offsite", start=first, zone="UTC", all_day=True,
        pattern={"type": "weekly", "interval": 1, "daysOfWeek": ["monday"], "firstDayOfWeek": "sunday"},
        rng={"type": "numbered", "numberOfOccurrences": 4},
    )  # fmt: skip
    _sync(member)
    item_update(master, {"recurrence": {
        "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday", "wednesday"], "firstDayOfWeek": "sunday"},
        "range": {"type": "numbered", "startDate": first.date().isoformat(), "numberOfOccurrences": 5},
    }})  # fmt: skip
    result = _sync(member)
    assert any("pattern changed in Outlook" in m for m in _messages(result)), _messages(result)
    today = timezone.now().date().isoformat()
    days = sorted(r["ActivityDate"] for r in member.sf("Event"))
    new_days = sorted(
        (first.date() + dt.timedelta(days=d)).isoformat() for d in (0, 2, 7, 9, 14)
    )  # Mon, Wed × the new count of five
    old_days = [(first.date() + dt.timedelta(days=7 * k)).isoformat() for k in range(4)]
    assert days == sorted([d for d in old_days if d < today] + [d for d in new_days if d >= today])
    for _ in range(2):
        again = _sync(member)
        assert again.counts.writes == 0, _messages(again)
    assert len(member.events_o()) == 1 and SyncLink.objects.count() == 1


def test_after_a_pattern_change_a_quiet_run_is_one_request_per_side(member):
    """The old series' deleted future is re-reported by the next incremental reads'
    overlap; it was seen already and costs no group query (found by the state machine)."""
    from sandbox.microsoft.services import item_update
    from syncengine.engine.run import run_sync

    start = _monday(1)
    master = _o_series(member, "Team sync", start)
    for _ in range(2):
        run_sync(member.membership, "calendar", "auto")
    item_update(master, {"recurrence": _weekly(start, count=8)})
    assert run_sync(member.membership, "calendar", "auto").counts.created == {"outlook": 0, "salesforce": 1}
    run_sync(member.membership, "calendar", "auto")  # the new series' link reads both sides once more
    for _ in range(2):
        quiet = run_sync(member.membership, "calendar", "auto")
        assert quiet.counts.writes == 0
        assert quiet.api_requests == {"outlook": 1, "salesforce": 1}
