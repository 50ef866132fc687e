"""Recurring series keep exactly Outlook's occurrences in Salesforce (issue 12).

The oracle is python-dateutil, an RRULE implementation that shares no code with
the engine or the sandbox:

- the sandbox's own expansion (what ``/instances`` serves) against dateutil
  reading the Graph pattern, so the emulator cannot share the engine's mistake;
- the engine's Salesforce series (``Recurrence2PatternText`` expanded from
  ``StartDateTime`` in ``Recurrence2PatternTimeZone``) against the sandbox's
  expansion of the Outlook series, for random patterns × ranges × IANA and
  Windows zones × starts around daylight-saving changes (both hemispheres,
  30/45-minute offsets, UTC+14 and UTC−11);
- the same through a real sync: Outlook's ``/instances`` against dateutil on the
  Event Salesforce stored, or a skip whose reason the member reads.
"""

from __future__ import annotations

import datetime as dt
import uuid
from datetime import UTC
from zoneinfo import ZoneInfo

import pytest
from dateutil import rrule as du
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from sandbox.microsoft import recurrence as sandbox_rec
from sandbox.microsoft.resources import occurrence_span
from sandbox.microsoft.wire import zone as sandbox_zone
from syncengine.engine.mapping import MappingError, events
from syncengine.engine.mapping.timezones import resolve_zone

from .conftest import SANDBOX_DBS

# Northern and southern DST, 30/45-minute offsets (with and without DST), the
# date line's both ends; Windows names next to IANA ones.
ZONES = [
    "Europe/Berlin",
    "America/New_York",
    "America/Santiago",
    "Australia/Sydney",
    "Australia/Adelaide",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Pacific/Chatham",
    "Pacific/Kiritimati",
    "Pacific/Pago_Pago",
    "UTC",
    "W. Europe Standard Time",
    "Pacific Standard Time",
    "AUS Eastern Standard Time",
    "Cen. Australia Standard Time",
    "Pacific SA Standard Time",
    "Nepal Standard Time",
    "India Standard Time",
    "Chatham Islands Standard Time",
    "Line Islands Standard Time",
    "UTC-11",
    "New Zealand Standard Time",
]
DAYS = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"]
DU_DAY = {
    "monday": du.MO,
    "tuesday": du.TU,
    "wednesday": du.WE,
    "thursday": du.TH,
    "friday": du.FR,
    "saturday": du.SA,
    "sunday": du.SU,
}
DU_POS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "last": -1}
# Why a series may be skipped: each is a limit of Salesforce's series rule.
SKIP_REASONS = (
    "not one of its own days",
    "shorter months",
    "repeat every year only",  # and more than 8 years apart
    "interval of at most",
)


@st.composite
def patterns(draw):
    kind = draw(
        st.sampled_from(
            [
                "daily",
                "weekly",
                "absoluteMonthly",
                "relativeMonthly",
                "absoluteYearly",
                "relativeYearly",
            ]
        )
    )
    p: dict = {"type": kind, "interval": draw(st.sampled_from([1, 1, 1, 2, 3, 5, 13, 100]))}
    if kind in ("weekly", "relativeMonthly", "relativeYearly"):
        p["daysOfWeek"] = draw(st.lists(st.sampled_from(DAYS), min_size=1, max_size=3, unique=True))
    if kind == "weekly":
        p["firstDayOfWeek"] = draw(st.sampled_from(DAYS))
    if kind.startswith("absolute"):
        p["dayOfMonth"] = draw(st.sampled_from([1, 5, 15, 28, 29, 30, 31]))
    if kind.startswith("relative"):
        p["index"] = draw(st.sampled_from(list(DU_POS)))
    if kind.endswith("Yearly"):
        p["month"] = draw(st.integers(1, 12))
    return p


def _first_matching(pattern: dict, day: dt.date) -> dt.date:
    """The first day on or after `day` that dateutil says the pattern holds (so the
    series starts on one of its days, as Outlook's own editor makes it)."""
    rule = _du_rule(pattern, dt.datetime.combine(day, dt.time(0)), until=None, count=1)
    return rule[0].date()


@st.composite
def series(draw, *, years=(2025, 2028), months=(3, 4, 9, 10, 11, 2, 12), on_pattern=True):
    """A Graph event body with a recurrence, starting near a DST change."""
    pattern = draw(patterns())
    zone = draw(st.sampled_from(ZONES))
    day = dt.date(
        draw(st.integers(*years)),
        draw(st.sampled_from(months)),
        draw(st.integers(1, 28)),
    )
    if on_pattern or draw(st.booleans()):
        day = _first_matching(pattern, day)
    at = dt.time(draw(st.sampled_from([0, 1, 2, 3, 9, 12, 23])), draw(st.sampled_from([0, 30, 45])))
    minutes = draw(st.sampled_from([15, 60, 90]))
    rng_type = draw(st.sampled_from(["endDate", "numbered", "noEnd"]))
    rng: dict = {"type": rng_type, "startDate": day.isoformat()}
    if rng_type == "endDate":
        rng["endDate"] = (day + dt.timedelta(days=draw(st.integers(0, 900)))).isoformat()
    elif rng_type == "numbered":
        rng["numberOfOccurrences"] = draw(st.integers(1, 80))
    all_day = draw(st.integers(0, 4)) == 0
    start = dt.datetime.combine(day, dt.time(0) if all_day else at)
    end = start + (dt.timedelta(days=1) if all_day else dt.timedelta(minutes=minutes))
    fmt = "%Y-%m-%dT%H:%M:%S"
    return {
        "subject": "Series",
        "isAllDay": all_day,
        "start": {"dateTime": start.strftime(fmt), "timeZone": zone},
        "end": {"dateTime": end.strftime(fmt), "timeZone": zone},
        "originalStartTimeZone": zone,
        "recurrence": {"pattern": pattern, "range": rng},
    }


# ---------------------------------------------------------------- dateutil oracle


def _du_rule(pattern: dict, dtstart: dt.datetime, *, until, count):
    """Outlook's pattern in RFC 5545 terms, written from Graph's documentation:
    a day of month past a month's end is that month's last day (BYSETPOS=-1 over
    28…N), relative patterns pick the n-th / last of the listed weekdays."""
    kind = pattern["type"]
    kw: dict = {"dtstart": dtstart, "interval": pattern["interval"], "cache": False}
    if until is not None:
        kw["until"] = until
    if count is not None:
        kw["count"] = count
    days = [DU_DAY[d] for d in pattern.get("daysOfWeek") or []]
    if kind == "daily":
        return du.rrule(du.DAILY, **kw)
    if kind == "weekly":
        return du.rrule(
            du.WEEKLY, byweekday=days, wkst=DU_DAY[pattern.get("firstDayOfWeek", "sunday")], **kw
        )
    freq = du.MONTHLY if kind.endswith("Monthly") else du.YEARLY
    if kind.endswith("Yearly"):
        kw["bymonth"] = pattern["month"]
    if kind.startswith("absolute"):
        d = pattern["dayOfMonth"]
        if d <= 28:
            return du.rrule(freq, bymonthday=d, **kw)
        return du.rrule(freq, bymonthday=list(range(28, d + 1)), bysetpos=-1, **kw)
    return du.rrule(freq, byweekday=days, bysetpos=DU_POS[pattern["index"]], **kw)


def _iana(zone_name: str) -> ZoneInfo:
    z = sandbox_zone(zone_name)
    return z if isinstance(z, ZoneInfo) else ZoneInfo("UTC")


def _dateutil_outlook(data: dict, horizon: dt.date | None):
    """Occurrence instants (dates for all-day) of a Graph series, per dateutil."""
    rng = data["recurrence"]["range"]
    zone = _iana(data["start"]["timeZone"])
    wall = dt.datetime.fromisoformat(data["start"]["dateTime"])
    last = dt.date.fromisoformat(rng["endDate"]) if rng["type"] == "endDate" else horizon
    count = rng.get("numberOfOccurrences") if rng["type"] == "numbered" else None
    until = None if count else dt.datetime.combine(last, dt.time(23, 59, 59))
    rule = _du_rule(data["recurrence"]["pattern"], wall, until=until, count=count)
    if data.get("isAllDay"):
        return [d.date() for d in rule]
    return [d.replace(tzinfo=zone).astimezone(UTC) for d in rule]


def _sandbox_outlook(data: dict, horizon: dt.date | None):
    """Occurrence instants (dates for all-day) the sandbox's Outlook serves."""
    out = []
    for day in sandbox_rec.occurrence_dates(data["recurrence"], until=horizon):
        start_utc, _ = occurrence_span(data, day)
        out.append(start_utc.date() if data.get("isAllDay") else start_utc)
    return out


def _dateutil_salesforce(row: dict):
    """Occurrence instants (dates for all-day) of a stored Salesforce series."""
    zone = ZoneInfo(row["Recurrence2PatternTimeZone"])
    start = dt.datetime.fromisoformat(row["StartDateTime"].replace("+0000", "+00:00"))
    rule = du.rrulestr(row["Recurrence2PatternText"], dtstart=start.astimezone(zone), cache=False)
    if row.get("IsAllDayEvent"):
        return [d.date() for d in rule]
    return [d.astimezone(UTC) for d in rule]


def _wall_exists(data: dict) -> bool:
    """Outlook's start wall time exists in its zone (not in a spring-forward gap)."""
    if data.get("isAllDay"):
        return True
    zone = _iana(data["start"]["timeZone"])
    wall = dt.datetime.fromisoformat(data["start"]["dateTime"])
    back = wall.replace(tzinfo=zone).astimezone(UTC).astimezone(zone).replace(tzinfo=None)
    return back == wall


# ---------------------------------------------------------------- properties


@settings(max_examples=400, deadline=None)
@given(data=series(on_pattern=False))
def test_sandbox_outlook_expands_a_series_as_dateutil_does(data):
    first_day = dt.date.fromisoformat(data["start"]["dateTime"][:10])
    assume(sandbox_rec.validate(data["recurrence"], first_day) is None)
    assume(_wall_exists(data))
    rng = data["recurrence"]["range"]
    horizon = None
    if rng["type"] == "noEnd":  # an open series, compared over its first 1,200 days
        horizon = dt.date.fromisoformat(rng["startDate"]) + dt.timedelta(days=1200)
    assert _sandbox_outlook(data, horizon) == _dateutil_outlook(data, horizon)


@settings(max_examples=600, deadline=None)
@given(data=series(on_pattern=False))
def test_salesforce_series_has_exactly_outlooks_occurrences_or_is_skipped(data):
    assume(_wall_exists(data))
    horizon = dt.date.fromisoformat(data["start"]["dateTime"][:10]) + dt.timedelta(days=400)
    try:
        c = events.from_graph(data)
        body = events.to_salesforce(c, time_zone="America/Los_Angeles", create=True, horizon=horizon)
    except MappingError as err:
        assert err.field == "recurrence"
        assert any(r in err.reason for r in SKIP_REASONS), err.reason
        event("skipped: " + next(r for r in SKIP_REASONS if r in err.reason))
        return
    zone = resolve_zone(body["Recurrence2PatternTimeZone"])
    # The last day Salesforce holds: the range's end, or the horizon for an open series.
    rng = data["recurrence"]["range"]
    stop = {"endDate": None, "numbered": None, "noEnd": horizon}[rng["type"]]
    outlook = _sandbox_outlook(data, stop)
    salesforce = _dateutil_salesforce(body)
    assert salesforce == outlook, (body["Recurrence2PatternText"], zone.key)
    event(f"exact: {data['recurrence']['pattern']['type']}")


def test_every_windows_zone_graph_documents_maps_like_the_emulator():
    """Graph accepts every Windows zone (its dateTimeTimeZone page) and lists extra
    IANA names; both resolve, to the same offsets the sandbox's Outlook uses."""
    from sandbox.microsoft.wire import WINDOWS_ZONES
    from syncengine.engine.mapping.timezones import WINDOWS_TO_IANA

    assert set(WINDOWS_ZONES) <= set(WINDOWS_TO_IANA)
    probes = [dt.datetime(2027, m, 15, 12, tzinfo=UTC) for m in (1, 4, 7, 10)]
    for name in WINDOWS_ZONES:
        ours, theirs = resolve_zone(name), sandbox_zone(name)
        assert [p.astimezone(ours).utcoffset() for p in probes] == [
            p.astimezone(theirs).utcoffset() for p in probes
        ], name
    for name in GRAPH_EXTRA_IANA:
        resolve_zone(name)


# The "additional time zones" of Graph's dateTimeTimeZone resource page.
GRAPH_EXTRA_IANA = ["Etc/GMT+12", "Etc/GMT+11", "Pacific/Honolulu", "America/Anchorage", "America/Santa_Isabel", "America/Los_Angeles", "America/Phoenix", "America/Chihuahua", "America/Denver", "America/Guatemala", "America/Chicago", "America/Mexico_City", "America/Regina", "America/Bogota", "America/New_York", "America/Indiana/Indianapolis", "America/Caracas", "America/Asuncion", "America/Halifax", "America/Cuiaba", "America/La_Paz", "America/Santiago", "America/St_Johns", "America/Sao_Paulo", "America/Argentina/Buenos_Aires", "America/Cayenne", "America/Godthab", "America/Montevideo", "America/Bahia", "Etc/GMT+2", "Atlantic/Azores", "Atlantic/Cape_Verde", "Africa/Casablanca", "Etc/GMT", "Europe/London", "Atlantic/Reykjavik", "Europe/Berlin", "Europe/Budapest", "Europe/Paris", "Europe/Warsaw", "Africa/Lagos", "Africa/Windhoek", "Europe/Bucharest", "Asia/Beirut", "Africa/Cairo", "Asia/Damascus", "Africa/Johannesburg", "Europe/Kiev", "Europe/Istanbul", "Asia/Jerusalem", "Asia/Amman", "Asia/Baghdad", "Europe/Kaliningrad", "Asia/Riyadh", "Africa/Nairobi", "Asia/Tehran", "Asia/Dubai", "Asia/Baku", "Europe/Moscow", "Indian/Mauritius", "Asia/Tbilisi", "Asia/Yerevan", "Asia/Kabul", "Asia/Karachi", "Asia/Tashkent", "Asia/Kolkata", "Asia/Colombo", "Asia/Kathmandu", "Asia/Almaty", "Asia/Dhaka", "Asia/Yekaterinburg", "Asia/Yangon", "Asia/Bangkok", "Asia/Novosibirsk", "Asia/Shanghai", "Asia/Krasnoyarsk", "Asia/Singapore", "Australia/Perth", "Asia/Taipei", "Asia/Ulaanbaatar", "Asia/Irkutsk", "Asia/Tokyo", "Asia/Seoul", "Australia/Adelaide", "Australia/Darwin", "Australia/Brisbane", "Australia/Sydney", "Pacific/Port_Moresby", "Australia/Hobart", "Asia/Yakutsk", "Pacific/Guadalcanal", "Asia/Vladivostok", "Pacific/Auckland", "Etc/GMT-12", "Pacific/Fiji", "Asia/Magadan", "Pacific/Tongatapu", "Pacific/Apia", "Pacific/Kiritimati"]



# ---------------------------------------------------------------- through a real sync


@pytest.mark.django_db(databases=SANDBOX_DBS, transaction=True)
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# Inside the calendar range (today - 30 days … + 365 days): March/April and
# September-November 2027 hold both hemispheres' clock changes.
@given(data=series(years=(2027, 2027), months=(3, 4, 9, 10, 11), on_pattern=False))
def test_synced_series_has_outlooks_instances_or_a_skip_the_member_reads(member, data):
    """Each example adds one series to the mailbox and syncs: the new Salesforce
    Event expands (dateutil) to exactly what Outlook's /instances serves, or the run
    logged a skip with the reason. Earlier examples' series stay synced and quiet."""
    from sandbox.microsoft.services import event_create
    from syncengine.engine.run import run_sync
    from syncengine.models import SyncLogEntry

    from .test_calendar_recurrence import _outlook_instances

    assume(_wall_exists(data))
    first_day = dt.date.fromisoformat(data["start"]["dateTime"][:10])
    assume(sandbox_rec.validate(data["recurrence"], first_day) is None)
    today = dt.datetime.now(UTC).date()
    assume(first_day < today + dt.timedelta(days=360))  # starts inside the calendar range
    subject = f"Series {uuid.uuid4().hex[:8]}"
    item, _ = event_create(member.mailbox, {**data, "subject": subject})
    result = run_sync(member.membership, "calendar", "manual")
    assert result.status == "succeeded", result.message
    rows = [r for r in member.sf("Event") if r["Subject"] == subject]
    outlook = _outlook_instances(member, item, days=1200)
    first = outlook[0] if outlook else None
    if isinstance(first, dt.date) and not isinstance(first, dt.datetime):
        first = dt.datetime.combine(first, dt.time(0), UTC)
    if first is None or first.date() > today + dt.timedelta(days=365):
        # No occurrence inside the calendar range: the series is in no calendar view.
        assert not rows
        return
    if not rows:
        skips = SyncLogEntry.objects.filter(run_id=result.run_id, message__startswith="Skipped:")
        messages = list(skips.values_list("message", flat=True))
        assert any(any(r in m for r in SKIP_REASONS) for m in messages), messages
        event("skipped with a reason")
        return
    # Salesforce stores the series as one Event per occurrence, all with one pattern.
    rows.sort(key=lambda r: r["StartDateTime"])
    assert len({(r["Recurrence2PatternText"], r["Recurrence2PatternStartDate"]) for r in rows}) == 1
    row = rows[0]
    # Compared over the 1,200 days /instances was asked for.
    end = dt.datetime.fromisoformat(item.data["start"]["dateTime"][:19]) + dt.timedelta(days=1198)
    salesforce = [
        o for o in _dateutil_salesforce(row)
        if (o if isinstance(o, dt.datetime) else dt.datetime.combine(o, dt.time(0), UTC))
        < end.replace(tzinfo=UTC)
    ]
    if data["recurrence"]["range"]["type"] == "noEnd":  # Salesforce holds it to the horizon
        assert salesforce and "UNTIL=" in row["Recurrence2PatternText"]
        outlook = outlook[: len(salesforce)]
    assert salesforce == outlook, row["Recurrence2PatternText"]
    # The occurrence records themselves sit on those instants.
    stored = [
        dt.date.fromisoformat(r["ActivityDate"]) if r["IsAllDayEvent"]
        else dt.datetime.fromisoformat(r["StartDateTime"].replace("+0000", "+00:00"))
        for r in rows
    ]
    assert stored[: len(salesforce)] == salesforce[: len(stored)]  # (the emulator keeps 999)
    event(f"exact: {data['recurrence']['pattern']['type']} × {data['recurrence']['range']['type']}")


@settings(max_examples=300, deadline=None)
@given(data=series())
def test_engine_places_occurrences_where_dateutil_does(data):
    """The engine keys occurrences by their original start (engine/series.py): its own
    expansion of the pattern must give Outlook's instants, checked against dateutil."""
    from syncengine.engine.series import occ_key, pattern_slots

    assume(_wall_exists(data))
    try:
        c = events.from_graph(data)
    except MappingError:
        assume(False)
    first = dt.date.fromisoformat(data["start"]["dateTime"][:10])
    horizon = first + dt.timedelta(days=400)
    want = [occ_key(x) for x in _dateutil_outlook(data, horizon)]
    bounded = data["recurrence"]["range"]["type"] != "noEnd"
    got = pattern_slots(c, through=None if bounded else horizon)
    assert got == want
