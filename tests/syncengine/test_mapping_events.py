"""Event mapping: times across zones and DST, all-day dates, bodies, limits."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from syncengine.engine.mapping import MappingError, canonical_hash, events
from syncengine.engine.mapping.timezones import IANA_TO_WINDOWS, WINDOWS_TO_IANA

ZONES = [
    "UTC",
    "America/Los_Angeles",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/St_Johns",
    "America/Sao_Paulo",
    "Europe/London",
    "Europe/Berlin",
    "Europe/Paris",
    "Europe/Moscow",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Asia/Tokyo",
    "Asia/Shanghai",
    "Australia/Sydney",
    "Australia/Lord_Howe",
    "Pacific/Auckland",
    "Pacific/Chatham",
    "Pacific/Kiritimati",
    "Pacific/Pago_Pago",
    "Pacific/Apia",
]
zones = st.sampled_from(ZONES)
# Graph may name a zone either way; a Windows name when one exists.
zone_spellings = zones.flatmap(lambda z: st.sampled_from(sorted({z, IANA_TO_WINDOWS.get(z, z)})))
walls = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2037, 12, 31)).map(
    lambda d: d.replace(microsecond=0)
)
instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2037, 12, 31), timezones=st.just(UTC)
).map(lambda d: d.replace(second=0, microsecond=0))
durations = st.integers(min_value=0, max_value=14 * 24 * 60)
days_span = st.integers(min_value=1, max_value=14)
dates = st.dates(min_value=date(2000, 1, 1), max_value=date(2037, 12, 1))


def graph_timed(wall: datetime, zone: str, minutes: int, **extra) -> dict:
    # Wall-clock arithmetic, as a person types the end time into Outlook.
    end_wall = wall + timedelta(minutes=minutes)
    return {
        "id": "AAMk=",
        "subject": "Quarterly review",
        "start": {"dateTime": wall.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": zone},
        "end": {"dateTime": end_wall.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": zone},
        "originalStartTimeZone": zone,
        "isAllDay": False,
        **extra,
    }


def graph_all_day(first: date, days: int, zone: str, **extra) -> dict:
    return {
        "subject": "Offsite",
        "isAllDay": True,
        "start": {"dateTime": f"{first.isoformat()}T00:00:00.0000000", "timeZone": zone},
        "end": {
            "dateTime": f"{(first + timedelta(days=days)).isoformat()}T00:00:00.0000000",
            "timeZone": zone,
        },
        "originalStartTimeZone": zone,
        **extra,
    }


def sf_reads_back(body: dict, record_extra: dict | None = None) -> dict:
    """What a Salesforce GET returns for a body we wrote (all-day EndDateTime
    is midnight UTC of the last day)."""
    record = dict(body, Id="00U000000000001", **(record_extra or {}))
    if body.get("IsAllDayEvent"):
        first = date.fromisoformat(body["ActivityDate"])
        last = first + timedelta(days=body["DurationInMinutes"] // 1440 - 1)
        record["EndDateTime"] = f"{last.isoformat()}T00:00:00.000+0000"
    return record


# ---------------------------------------------------------------- timed


@settings(max_examples=300)
@given(wall=walls, zone=zone_spellings, minutes=st.integers(0, 14 * 24 * 60 - 60))  # DST slack
@example(wall=datetime(2024, 3, 10, 2, 30), zone="America/New_York", minutes=60)  # spring gap
@example(wall=datetime(2024, 11, 3, 1, 30), zone="America/New_York", minutes=30)  # fall overlap
@example(wall=datetime(2024, 10, 27, 1, 30), zone="GMT Standard Time", minutes=45)
@example(wall=datetime(2024, 4, 7, 2, 30), zone="AUS Eastern Standard Time", minutes=60)
@example(wall=datetime(2000, 3, 26, 2, 0, fold=1), zone="Europe/Berlin", minutes=0)  # gap, fold=1
def test_timed_graph_to_salesforce_and_back(wall, zone, minutes):
    # Graph's wire format carries no fold: a wall time is always read as fold=0.
    wall = wall.replace(fold=0)
    payload = graph_timed(wall, zone, minutes)
    z = ZoneInfo(WINDOWS_TO_IANA.get(zone, zone))
    # A wall range that a DST jump turns backwards is not an event Outlook holds.
    assume(wall.replace(tzinfo=z) <= (wall + timedelta(minutes=minutes)).replace(tzinfo=z))
    c = events.from_graph(payload)
    z = ZoneInfo(WINDOWS_TO_IANA.get(zone, zone))
    assert c.start == wall.replace(tzinfo=z).astimezone(UTC).replace(second=0)
    assert c.start.tzinfo is UTC or c.start.utcoffset() == timedelta(0)
    # graph → canonical → salesforce → canonical
    assert (
        events.from_salesforce(sf_reads_back(events.to_salesforce(c)), time_zone=c.time_zone) == c
    )
    # canonical → graph → canonical, written in the event's own zone
    written = events.to_graph(c, existing=payload)
    assert events.from_graph(written) == c
    assert "attendees" not in written


@settings(max_examples=300)
@given(start=instants, minutes=durations, zone=zones)
@example(start=datetime(2024, 11, 3, 6, 30, tzinfo=UTC), minutes=30, zone="America/New_York")
@example(start=datetime(2024, 11, 3, 5, 30, tzinfo=UTC), minutes=90, zone="America/New_York")
@example(start=datetime(2024, 4, 6, 15, 30, tzinfo=UTC), minutes=60, zone="Australia/Sydney")
def test_timed_salesforce_to_graph_and_back(start, minutes, zone):
    record = {
        "Id": "00U000000000001",
        "Subject": "Call",
        "StartDateTime": start.strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
        "EndDateTime": (start + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
        "DurationInMinutes": minutes,
        "IsAllDayEvent": False,
        "ShowAs": "Busy",
    }
    c = events.from_salesforce(record, time_zone=zone)
    written = events.to_graph(c, time_zone=zone)
    assert events.from_graph(written) == c
    assert events.from_salesforce(sf_reads_back(events.to_salesforce(c)), time_zone=zone) == c


def test_spring_forward_gap_is_read_deterministically():
    # 02:30 does not exist in New York on 2024-03-10; read with the offset
    # before the jump (EST), the same instant Outlook shows as 03:30 EDT.
    c = events.from_graph(graph_timed(datetime(2024, 3, 10, 2, 30), "Eastern Standard Time", 60))
    assert c.start == datetime(2024, 3, 10, 7, 30, tzinfo=UTC)
    written = events.to_graph(c, time_zone="America/New_York")
    assert written["start"] == {
        "dateTime": "2024-03-10T03:30:00.0000000",
        "timeZone": "Eastern Standard Time",
    }


def test_fall_back_overlap_second_pass_is_written_in_utc():
    # 06:30Z is 01:30 EST, the second 01:30 of the night; a wall time alone
    # would read back as 01:30 EDT, an hour early.
    record = {
        "StartDateTime": "2024-11-03T06:30:00.000+0000",
        "EndDateTime": "2024-11-03T07:00:00.000+0000",
        "IsAllDayEvent": False,
    }
    c = events.from_salesforce(record, time_zone="America/New_York")
    written = events.to_graph(c, time_zone="America/New_York")
    assert written["start"] == {"dateTime": "2024-11-03T06:30:00.0000000", "timeZone": "UTC"}
    assert events.from_graph(written).start == datetime(2024, 11, 3, 6, 30, tzinfo=UTC)


def test_seconds_and_fractions_are_dropped():
    payload = graph_timed(datetime(2024, 5, 1, 9, 0, 59), "UTC", 30)
    payload["start"]["dateTime"] = "2024-05-01T09:00:59.9999999"
    assert events.from_graph(payload).start == datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


# ---------------------------------------------------------------- all-day


@settings(max_examples=300)
@given(first=dates, days=days_span, zone=zone_spellings)
@example(first=date(2024, 12, 31), days=1, zone="Pacific/Kiritimati")
@example(first=date(2024, 12, 31), days=1, zone="Pacific/Pago_Pago")
@example(first=date(2024, 3, 10), days=1, zone="America/St_Johns")
@example(first=date(2024, 3, 31), days=2, zone="India Standard Time")
def test_all_day_dates_never_shift_graph_first(first, days, zone):
    payload = graph_all_day(first, days, zone)
    c = events.from_graph(payload)
    assert (c.is_all_day, c.start_date, c.end_date) == (True, first, first + timedelta(days=days))
    body = events.to_salesforce(c, time_zone=c.time_zone)
    assert body["ActivityDate"] == first.isoformat()
    assert body["DurationInMinutes"] == days * 1440
    assert events.from_salesforce(sf_reads_back(body), time_zone=c.time_zone) == c
    written = events.to_graph(c, existing=payload)
    assert written["start"]["dateTime"].startswith(first.isoformat())
    assert events.from_graph(written) == c


@settings(max_examples=300)
@given(first=dates, days=days_span, zone=zones, with_duration=st.booleans())
def test_all_day_dates_never_shift_salesforce_first(first, days, zone, with_duration):
    record = {
        "IsAllDayEvent": True,
        "ActivityDate": first.isoformat(),
        "StartDateTime": f"{first.isoformat()}T00:00:00.000+0000",
        "EndDateTime": f"{(first + timedelta(days=days - 1)).isoformat()}T00:00:00.000+0000",
    }
    if with_duration:
        record["DurationInMinutes"] = days * 1440
    c = events.from_salesforce(record, time_zone=zone)
    assert (c.start_date, c.end_date) == (first, first + timedelta(days=days))
    written = events.to_graph(c, time_zone=zone)
    assert written["isAllDay"] is True
    assert written["start"]["dateTime"] == f"{first.isoformat()}T00:00:00.0000000"
    assert (
        written["end"]["dateTime"]
        == f"{(first + timedelta(days=days)).isoformat()}T00:00:00.0000000"
    )
    assert events.from_graph(written) == c


@pytest.mark.parametrize(
    "zone", ["Pacific/Kiritimati", "Pacific/Pago_Pago", "Asia/Kolkata", "America/St_Johns"]
)
def test_all_day_in_extreme_zones_keeps_its_date(zone):
    c = events.from_graph(graph_all_day(date(2025, 1, 1), 1, zone))
    assert (c.start_date, c.end_date) == (date(2025, 1, 1), date(2025, 1, 2))
    assert events.to_salesforce(c)["ActivityDate"] == "2025-01-01"


def test_all_day_bounds_converted_to_utc_are_recovered():
    # Without a Prefer zone some payloads carry the zone's midnight in UTC.
    payload = graph_all_day(date(2024, 7, 4), 1, "Pacific Standard Time")
    payload["start"] = {"dateTime": "2024-07-04T07:00:00.0000000", "timeZone": "UTC"}
    payload["end"] = {"dateTime": "2024-07-05T07:00:00.0000000", "timeZone": "UTC"}
    c = events.from_graph(payload)
    assert (c.start_date, c.end_date) == (date(2024, 7, 4), date(2024, 7, 5))


def test_all_day_reminder_is_relative_to_local_midnight():
    payload = graph_all_day(date(2024, 7, 4), 1, "Pacific Standard Time", isReminderOn=True)
    payload["reminderMinutesBeforeStart"] = 18 * 60
    c = events.from_graph(payload)
    body = events.to_salesforce(c, time_zone="America/Los_Angeles")
    assert body["ReminderDateTime"] == "2024-07-03T13:00:00.000+0000"  # 06:00 PDT the day before
    assert events.from_salesforce(body, time_zone="America/Los_Angeles").reminder_minutes == 18 * 60


# ---------------------------------------------------------------- other fields


def test_fields_map_both_ways():
    payload = graph_timed(
        datetime(2024, 5, 2, 14, 0),
        "W. Europe Standard Time",
        45,
        body={
            "contentType": "html",
            "content": "<html><body><p>Agenda:</p><p>1. Budget&nbsp;&amp; hiring</p></body></html>",
        },
        location={"displayName": "  Room 4  "},
        showAs="oof",
        sensitivity="private",
        isReminderOn=True,
        reminderMinutesBeforeStart=10,
        attendees=[{"emailAddress": {"address": "Jane@Customer.example", "name": "Jane"}}],
    )
    c = events.from_graph(payload)
    assert c.body == "Agenda:\n1. Budget & hiring"
    assert c.attendees == ("jane@customer.example",)
    body = events.to_salesforce(c)
    assert body == {
        "Subject": "Quarterly review",
        "Description": "Agenda:\n1. Budget & hiring",
        "Location": "Room 4",
        "ShowAs": "OutOfOffice",
        "IsPrivate": True,
        "IsAllDayEvent": False,
        "StartDateTime": "2024-05-02T12:00:00.000+0000",
        "EndDateTime": "2024-05-02T12:45:00.000+0000",
        "DurationInMinutes": 45,
        "IsReminderSet": True,
        "ReminderDateTime": "2024-05-02T11:50:00.000+0000",
    }


def test_attendees_are_never_written_to_outlook():
    payload = graph_timed(
        datetime(2024, 5, 2, 14, 0),
        "UTC",
        30,
        attendees=[{"emailAddress": {"address": "a@b.example"}}],
    )
    c = events.from_graph(payload)
    assert "attendees" not in events.to_graph(c)
    assert "attendees" not in events.to_graph(c, existing=payload)


def test_lossy_show_as_and_sensitivity_are_kept_in_outlook():
    payload = graph_timed(
        datetime(2024, 5, 2, 14, 0), "UTC", 30, showAs="tentative", sensitivity="confidential"
    )
    c = events.from_graph(payload)
    assert (c.show_as, c.is_private) == ("busy", True)
    written = events.to_graph(c, existing=payload)
    assert (written["showAs"], written["sensitivity"]) == ("tentative", "confidential")
    fresh = events.to_graph(c)
    assert (fresh["showAs"], fresh["sensitivity"]) == ("busy", "private")


def test_unchanged_body_keeps_the_outlook_html():
    html = '<html><body><div style="color:red"><b>Hi</b></div></body></html>'
    payload = graph_timed(
        datetime(2024, 5, 2, 14, 0), "UTC", 30, body={"contentType": "html", "content": html}
    )
    c = events.from_graph(payload)
    assert events.to_graph(c, existing=payload)["body"]["content"] == html


def test_long_text_is_truncated_with_a_warning():
    payload = graph_timed(datetime(2024, 5, 2, 14, 0), "UTC", 30, subject="S" * 300)
    c = events.from_graph(payload)
    assert len(c.subject) == 255
    assert any(w.startswith("subject: truncated") for w in c.warnings)
    assert events.from_salesforce(events.to_salesforce(c)) == c


# ---------------------------------------------------------------- errors


def test_longer_than_fourteen_days_is_an_item_error():
    with pytest.raises(MappingError) as err:
        events.from_graph(graph_timed(datetime(2024, 5, 1, 9), "UTC", 14 * 24 * 60 + 1))
    assert err.value.field == "end" and "14 days" in err.value.reason
    with pytest.raises(MappingError):
        events.from_graph(graph_all_day(date(2024, 5, 1), 15, "UTC"))
    events.from_graph(graph_all_day(date(2024, 5, 1), 14, "UTC"))  # the limit itself is fine


@pytest.mark.parametrize(
    "zone", ["Mars Standard Time", "tzone://Microsoft/Custom", "Not/AZone", "../../etc/passwd"]
)
def test_unknown_zone_is_an_item_error(zone):
    payload = graph_timed(datetime(2024, 5, 1, 9), "UTC", 30)
    payload["start"]["timeZone"] = zone
    payload["originalStartTimeZone"] = zone
    with pytest.raises(MappingError) as err:
        events.from_graph(payload)
    assert err.value.field == "time_zone"


@pytest.mark.parametrize(
    "change",
    [
        {"end": {"dateTime": "2024-05-01T08:00:00", "timeZone": "UTC"}},
        {"start": None},
        {"start": {"dateTime": "yesterday", "timeZone": "UTC"}},
        {"showAs": "sleeping"},
        {"isAllDay": True},  # 09:00 is not midnight
    ],
)
def test_malformed_events_are_item_errors(change):
    payload = graph_timed(datetime(2024, 5, 1, 9), "UTC", 30)
    payload.update(change)
    with pytest.raises(MappingError):
        events.from_graph(payload)


def test_classic_salesforce_recurrence_is_refused_with_a_reason():
    record = {
        "StartDateTime": "2024-05-01T09:00:00.000+0000",
        "EndDateTime": "2024-05-01T10:00:00.000+0000",
        "IsRecurrence": True,
    }
    with pytest.raises(MappingError) as err:
        events.from_salesforce(record)
    assert err.value.field == "recurrence"


# ---------------------------------------------------------------- hashing


def test_hash_ignores_key_order_whitespace_seconds_and_server_fields():
    a = graph_timed(datetime(2024, 5, 2, 14, 0), "Pacific Standard Time", 30, subject="Review")
    b = dict(reversed(list(a.items())))
    b["subject"] = "  Review \r\n"
    b["start"] = {"timeZone": "America/Los_Angeles", "dateTime": "2024-05-02T14:00:42.1230000"}
    b["changeKey"] = "new"
    b["lastModifiedDateTime"] = "2030-01-01T00:00:00Z"
    b["attendees"] = [{"emailAddress": {"address": "x@y.example"}}]
    assert canonical_hash(events.from_graph(a)) == canonical_hash(events.from_graph(b))


@pytest.mark.parametrize(
    "change",
    [
        {"subject": "Review!"},
        {"start": {"dateTime": "2024-05-02T14:01:00", "timeZone": "Pacific Standard Time"}},
        {"showAs": "free"},
        {"sensitivity": "private"},
        {"isReminderOn": True, "reminderMinutesBeforeStart": 5},
        {"location": {"displayName": "HQ"}},
        {"body": {"contentType": "text", "content": "new"}},
    ],
)
def test_hash_changes_with_synced_content(change):
    a = graph_timed(datetime(2024, 5, 2, 14, 0), "Pacific Standard Time", 30, subject="Review")
    assert canonical_hash(events.from_graph(a)) != canonical_hash(
        events.from_graph({**a, **change})
    )
