"""Recurring series: Graph patternedRecurrence ⇄ Salesforce RRULE."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncengine.engine.mapping import MappingError, events
from syncengine.engine.mapping import recurrence as rec

DAYS = rec.DAYS
zones = st.sampled_from(
    [
        "UTC",
        "America/Los_Angeles",
        "Europe/Berlin",
        "Asia/Kolkata",
        "Pacific/Kiritimati",
        "Pacific/Pago_Pago",
    ]
)
day_sets = st.sets(st.sampled_from(DAYS), min_size=1).map(
    lambda s: tuple(d for d in DAYS if d in s)
)
ends = st.one_of(
    st.builds(lambda d: {"end_date": d}, st.dates(date(2024, 1, 1), date(2035, 12, 31))),
    st.builds(lambda n: {"count": n}, st.integers(1, 999)),
)


@st.composite
def recurrences(draw):
    pattern = draw(st.sampled_from(rec.PATTERNS))
    kw = {"pattern": pattern, **draw(ends)}
    if pattern.endswith("Yearly"):
        kw["interval"] = 1
        kw["month"] = draw(st.integers(1, 12))
    else:
        kw["interval"] = draw(st.integers(1, rec.MAX_INTERVAL[pattern]))
    if pattern in ("weekly", "relativeMonthly", "relativeYearly"):
        kw["days_of_week"] = draw(day_sets)
    if pattern == "weekly":
        kw["first_day_of_week"] = draw(st.sampled_from(DAYS))
    if pattern.startswith("absolute"):
        kw["day_of_month"] = draw(st.integers(1, 31))
    if pattern.startswith("relative"):
        kw["index"] = draw(st.sampled_from(list(rec.INDEXES)))
    return rec.normalize(**kw)


def _first_day_of(r, day: date) -> date:
    """The first day on or after `day` that is one of the series' own days."""
    while not rec.starts_on_pattern(r, day):
        day += timedelta(days=1)
    return day


@settings(max_examples=300)
@given(r=recurrences(), zone=zones, start=st.dates(date(2023, 1, 1), date(2023, 12, 31)))
def test_rrule_round_trip_and_salesforce_normal_form(r, zone, start):
    z = ZoneInfo(zone)
    start = _first_day_of(r, start)
    try:
        text = rec.to_rrule(r, zone=z, start=start)
    except MappingError as err:  # Outlook's day 29/30 in a series with shorter months
        assert "shorter months" in err.reason
        return
    assert text.startswith("RRULE:FREQ=") and "INTERVAL=" in text and len(text) <= 512
    back = rec.from_rrule(text, zone=z, start=start)
    assert back == r
    assert rec.to_rrule(back, zone=z) == text  # what Salesforce stores reads back unchanged


@settings(max_examples=300)
@given(r=recurrences(), zone=zones, start=st.dates(date(2023, 1, 1), date(2023, 12, 31)))
def test_graph_round_trip(r, zone, start):
    graph = rec.to_graph(r, start_date=start, time_zone=zone)
    assert graph["range"]["startDate"] == start.isoformat()
    assert rec.from_graph(graph) == r


@pytest.mark.parametrize(
    ("graph", "rrule"),
    [
        ({"type": "daily", "interval": 2}, "RRULE:FREQ=DAILY;INTERVAL=2;COUNT=10"),
        (
            {
                "type": "weekly",
                "interval": 1,
                "daysOfWeek": ["thursday", "monday"],
                "firstDayOfWeek": "sunday",
            },
            "RRULE:FREQ=WEEKLY;BYDAY=MO,TH;WKST=SU;INTERVAL=1;COUNT=10",
        ),
        (
            {"type": "absoluteMonthly", "interval": 3, "dayOfMonth": 15},
            "RRULE:FREQ=MONTHLY;BYMONTHDAY=15;INTERVAL=3;COUNT=10",
        ),
        (
            {
                "type": "relativeMonthly",
                "interval": 1,
                "daysOfWeek": ["tuesday"],
                "index": "second",
            },
            "RRULE:FREQ=MONTHLY;BYDAY=TU;BYSETPOS=2;INTERVAL=1;COUNT=10",
        ),
        (
            {"type": "absoluteYearly", "interval": 1, "dayOfMonth": 29, "month": 2},
            # Outlook's February 29 is February 28 in other years: the month's last day.
            "RRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=-1;INTERVAL=1;COUNT=10",
        ),
        (
            {
                "type": "relativeYearly",
                "interval": 1,
                "daysOfWeek": ["friday"],
                "index": "last",
                "month": 11,
            },
            "RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=FR;BYSETPOS=-1;INTERVAL=1;COUNT=10",
        ),
    ],
)
def test_each_graph_pattern_has_its_rrule(graph, rrule):
    r = rec.from_graph(
        {
            "pattern": graph,
            "range": {"type": "numbered", "startDate": "2024-01-01", "numberOfOccurrences": 10},
        }
    )
    assert rec.to_rrule(r, zone=ZoneInfo("UTC")) == rrule


def test_until_is_the_end_of_the_last_day_in_the_series_zone():
    r = rec.normalize(pattern="daily", end_date=date(2024, 6, 30))
    text = rec.to_rrule(r, zone=ZoneInfo("America/Los_Angeles"))
    assert text.endswith("UNTIL=20240701T065959Z")
    assert rec.from_rrule(
        text, zone=ZoneInfo("America/Los_Angeles"), start=date(2024, 6, 1)
    ).end_date == date(2024, 6, 30)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "FREQ=MONTHLY;BYDAY=2TU",
            {"pattern": "relativeMonthly", "days_of_week": ("tuesday",), "index": "second"},
        ),
        (
            "RRULE:FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR",
            {"pattern": "weekly", "first_day_of_week": "monday"},
        ),
        ("FREQ=YEARLY", {"pattern": "absoluteYearly", "month": 3, "day_of_month": 14}),
        ("FREQ=WEEKLY;WKST=SU", {"pattern": "weekly", "days_of_week": ("thursday",)}),
        ("FREQ=MONTHLY;BYDAY=-1FR", {"pattern": "relativeMonthly", "index": "last"}),
    ],
)
def test_equivalent_rrule_spellings_are_read(text, expected):
    # A series starts on one of its own days (2024-03-12 is March's second Tuesday).
    first = {"FREQ=MONTHLY;BYDAY=2TU": 12, "FREQ=MONTHLY;BYDAY=-1FR": 29}.get(text, 14)
    r = rec.from_rrule(text + ";COUNT=5", zone=ZoneInfo("UTC"), start=date(2024, 3, first))
    for k, v in expected.items():
        assert getattr(r, k) == v


@pytest.mark.parametrize(
    "graph",
    [
        {
            "pattern": {"type": "absoluteYearly", "interval": 9, "dayOfMonth": 1, "month": 1},
            "range": {"type": "numbered", "numberOfOccurrences": 3},
        },
        {
            "pattern": {"type": "weekly", "interval": 100, "daysOfWeek": ["monday"]},
            "range": {"type": "numbered", "numberOfOccurrences": 3},
        },
        {
            "pattern": {"type": "daily", "interval": 1},
            "range": {"type": "numbered", "numberOfOccurrences": 1000},
        },
        {
            "pattern": {"type": "weekly", "interval": 1},
            "range": {"type": "numbered", "numberOfOccurrences": 3},
        },
        {
            "pattern": {"type": "hourly", "interval": 1},
            "range": {"type": "numbered", "numberOfOccurrences": 3},
        },
        {
            "pattern": {
                "type": "relativeMonthly",
                "interval": 1,
                "daysOfWeek": ["monday"],
                "index": "fifth",
            },
            "range": {"type": "numbered", "numberOfOccurrences": 3},
        },
    ],
)
def test_graph_patterns_salesforce_cannot_hold_are_refused(graph):
    with pytest.raises(MappingError) as err:
        rec.from_graph(graph)
    assert err.value.field == "recurrence" and err.value.reason


@pytest.mark.parametrize(
    "text",
    [
        "FREQ=MONTHLY;BYDAY=MO;COUNT=5",  # every Monday of the month
        "FREQ=MONTHLY;BYMONTHDAY=-2;COUNT=5",  # the day before the month's last
        "FREQ=YEARLY;BYWEEKNO=20;COUNT=5",
        "FREQ=YEARLY;BYYEARDAY=100;COUNT=5",
        "FREQ=DAILY;INTERVAL=2;BYDAY=MO,WE;COUNT=5",
        "FREQ=MONTHLY;BYDAY=1MO,2TU;COUNT=5",
        "FREQ=DAILY;COUNT=3;UNTIL=20240101T000000Z",
        "FREQ=HOURLY;COUNT=3",
        "FREQ=MONTHLY;BYMONTHDAY=1,15;COUNT=3",
    ],
)
def test_rrules_outlook_cannot_hold_are_refused(text):
    with pytest.raises(MappingError) as err:
        rec.from_rrule(text, zone=ZoneInfo("UTC"), start=date(2024, 1, 1))
    assert err.value.field == "recurrence"


def test_series_event_round_trips_through_both_sides():
    payload = {
        "subject": "Stand-up",
        "start": {"dateTime": "2024-03-04T09:00:00.0000000", "timeZone": "W. Europe Standard Time"},
        "end": {"dateTime": "2024-03-04T09:15:00.0000000", "timeZone": "W. Europe Standard Time"},
        "originalStartTimeZone": "W. Europe Standard Time",
        "type": "seriesMaster",
        "recurrence": {
            "pattern": {
                "type": "weekly",
                "interval": 1,
                "daysOfWeek": ["monday", "wednesday"],
                "firstDayOfWeek": "monday",
            },
            "range": {
                "type": "endDate",
                "startDate": "2024-03-04",
                "endDate": "2024-12-31",
                "recurrenceTimeZone": "W. Europe Standard Time",
            },
        },
    }
    c = events.from_graph(payload)
    body = events.to_salesforce(c, create=True)
    assert body["IsRecurrence2"] is True
    assert (
        body["Recurrence2PatternText"]
        == "RRULE:FREQ=WEEKLY;BYDAY=MO,WE;WKST=MO;INTERVAL=1;UNTIL=20241231T225959Z"
    )
    assert body["Recurrence2PatternTimeZone"] == "Europe/Berlin"
    update = events.to_salesforce(c)  # Salesforce fixes the series at creation
    assert not {"IsRecurrence2", "Recurrence2PatternText", "Recurrence2PatternTimeZone"} & set(
        update
    )
    # A member in another zone reads the series by its own pattern zone.
    assert events.from_salesforce(body, time_zone="Asia/Tokyo") == c
    written = events.to_graph(c, existing=payload)
    assert written["recurrence"]["range"]["startDate"] == "2024-03-04"
    assert events.from_graph(written) == c


def test_unbounded_outlook_series_is_written_up_to_the_horizon():
    start = datetime(2024, 3, 4, 9, tzinfo=UTC)
    payload = {
        "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
        "end": {
            "dateTime": (start + timedelta(minutes=15)).strftime("%Y-%m-%dT%H:%M:%S"),
            "timeZone": "UTC",
        },
        "recurrence": {
            "pattern": {"type": "daily", "interval": 1},
            "range": {"type": "noEnd", "startDate": "2024-03-04"},
        },
    }
    c = events.from_graph(payload)
    assert c.recurrence.end_date is None and c.recurrence.count is None
    with pytest.raises(MappingError) as err:  # no horizon given: never silently cut
        events.to_salesforce(c, create=True)
    assert err.value.field == "recurrence" and "end" in err.value.reason
    body = events.to_salesforce(c, create=True, horizon=date(2024, 12, 31))
    assert body["Recurrence2PatternText"] == "RRULE:FREQ=DAILY;INTERVAL=1;UNTIL=20241231T235959Z"
    # Read back, Salesforce's copy is the open series up to that day; Outlook keeps it open.
    assert events.to_graph(c)["recurrence"]["range"] == {
        "startDate": "2024-03-04",
        "recurrenceTimeZone": "UTC",
        "type": "noEnd",
    }
