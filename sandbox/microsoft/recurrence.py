"""Expand a Graph patternedRecurrence into occurrence dates, as Exchange does.

Dates are walked in the series' own zone (wall time), so a weekly 09:00 meeting
stays at 09:00 across a daylight-saving change.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterator

DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
INDEXES = {"first": 0, "second": 1, "third": 2, "fourth": 3, "last": -1}
PATTERN_TYPES = {
    "daily": ("interval",),
    "weekly": ("interval", "daysOfWeek"),
    "absoluteMonthly": ("interval", "dayOfMonth"),
    "relativeMonthly": ("interval", "daysOfWeek"),
    "absoluteYearly": ("interval", "dayOfMonth", "month"),
    "relativeYearly": ("interval", "daysOfWeek", "month"),
}
RANGE_TYPES = {"endDate": ("startDate", "endDate"), "noEnd": ("startDate",), "numbered": ("startDate", "numberOfOccurrences")}
MAX_OCCURRENCES = 5000  # a safety stop for noEnd series; far beyond any window we serve
MAX_INTERVAL = 999  # Outlook's own limits on "every N" and "end after N occurrences"
MAX_NUMBERED = 999


def validate(recurrence: dict, start_date: dt.date) -> str | None:
    """An error message, or None when the recurrence is acceptable."""
    pattern = recurrence.get("pattern") or {}
    rng = recurrence.get("range") or {}
    ptype = pattern.get("type")
    if ptype not in PATTERN_TYPES:
        return f"Recurrence pattern type '{ptype}' is not supported."
    for name in PATTERN_TYPES[ptype]:
        if pattern.get(name) in (None, [], 0):
            return f"Recurrence pattern of type {ptype} requires '{name}'."
    if not 1 <= int(pattern.get("interval") or 0) <= MAX_INTERVAL:
        return f"Recurrence interval must be between 1 and {MAX_INTERVAL}."
    month, day_of_month = int(pattern.get("month") or 0), int(pattern.get("dayOfMonth") or 0)
    if not 0 <= month <= 12 or (ptype.endswith("Yearly") and month == 0):
        return "Recurrence month must be between 1 and 12."
    if not 0 <= day_of_month <= 31:
        return "Recurrence dayOfMonth must be between 1 and 31."
    if pattern.get("index") is not None and str(pattern["index"]).lower() not in INDEXES:
        return f"Requested value '{pattern['index']}' was not found."
    if pattern.get("firstDayOfWeek") is not None and str(pattern["firstDayOfWeek"]).lower() not in DAYS:
        return f"Requested value '{pattern['firstDayOfWeek']}' was not found."
    for day in pattern.get("daysOfWeek") or []:
        if str(day).lower() not in DAYS:
            return f"Requested value '{day}' was not found."
    rtype = rng.get("type")
    if rtype not in RANGE_TYPES:
        return f"Recurrence range type '{rtype}' is not supported."
    for name in RANGE_TYPES[rtype]:
        if rng.get(name) in (None, "", 0):
            return f"Recurrence range of type {rtype} requires '{name}'."
    if rtype == "numbered" and not 1 <= int(rng["numberOfOccurrences"]) <= MAX_NUMBERED:
        return f"The number of occurrences must be between 1 and {MAX_NUMBERED}."
    try:
        range_start = dt.date.fromisoformat(rng["startDate"])
        if rtype == "endDate" and dt.date.fromisoformat(rng["endDate"]) < range_start:
            return "The recurrence end date is before its start date."
    except (ValueError, TypeError):
        return "Recurrence range dates must be formatted YYYY-MM-DD."
    if range_start != start_date:
        return "The start date of the recurrence range must match the date of the event's start."
    return None


def _weekday_set(pattern: dict) -> list[int]:
    return sorted({DAYS.index(str(d).lower()) for d in pattern.get("daysOfWeek") or []})


def _clamp_day(year: int, month: int, day: int) -> dt.date:
    return dt.date(year, month, min(day, calendar.monthrange(year, month)[1]))


def _relative_day(year: int, month: int, weekdays: list[int], index: str) -> dt.date | None:
    last = calendar.monthrange(year, month)[1]
    matches = [dt.date(year, month, d) for d in range(1, last + 1) if dt.date(year, month, d).weekday() in weekdays]
    pos = INDEXES.get(str(index or "first").lower(), 0)
    if not matches or pos >= len(matches):
        return None
    return matches[pos]


def _candidates(pattern: dict, start: dt.date) -> Iterator[dt.date]:
    ptype = pattern["type"]
    interval = int(pattern.get("interval") or 1)
    if ptype == "daily":
        day = start
        while True:
            yield day
            day += dt.timedelta(days=interval)
    elif ptype == "weekly":
        first = DAYS.index(str(pattern.get("firstDayOfWeek") or "sunday").lower())
        week_start = start - dt.timedelta(days=(start.weekday() - first) % 7)
        offsets = sorted((d - first) % 7 for d in _weekday_set(pattern))
        while True:
            for off in offsets:
                yield week_start + dt.timedelta(days=off)
            week_start += dt.timedelta(weeks=interval)
    elif ptype in ("absoluteMonthly", "relativeMonthly"):
        year, month = start.year, start.month
        while True:
            if ptype == "absoluteMonthly":
                yield _clamp_day(year, month, int(pattern["dayOfMonth"]))
            else:
                day = _relative_day(year, month, _weekday_set(pattern), pattern.get("index"))
                if day:
                    yield day
            month += interval
            year, month = year + (month - 1) // 12, (month - 1) % 12 + 1
    else:  # yearly
        year, month = start.year, int(pattern["month"])
        while True:
            if ptype == "absoluteYearly":
                yield _clamp_day(year, month, int(pattern["dayOfMonth"]))
            else:
                day = _relative_day(year, month, _weekday_set(pattern), pattern.get("index"))
                if day:
                    yield day
            year += interval


def _bounded(days: Iterator[dt.date]) -> Iterator[dt.date]:
    """A series simply ends where the calendar does (year 9999), instead of raising."""
    try:
        yield from days
    except (OverflowError, ValueError):
        return


def occurrence_dates(recurrence: dict, *, until: dt.date | None = None) -> Iterator[dt.date]:
    """Every occurrence date of the series in order, stopping after `until` (inclusive) if given."""
    pattern = recurrence["pattern"]
    rng = recurrence["range"]
    start = dt.date.fromisoformat(rng["startDate"])
    end = dt.date.fromisoformat(rng["endDate"]) if rng.get("type") == "endDate" else None
    remaining = int(rng.get("numberOfOccurrences") or 0) if rng.get("type") == "numbered" else None
    produced = 0
    for day in _bounded(_candidates(pattern, start)):
        if day < start:
            continue
        if (end and day > end) or (until and day > until) or produced >= MAX_OCCURRENCES:
            return
        if remaining is not None and produced >= remaining:
            return
        produced += 1
        yield day


def last_date(recurrence: dict) -> dt.date | None:
    """The date of the last occurrence, None for a series without end."""
    if (recurrence.get("range") or {}).get("type") == "noEnd":
        return None
    last = None
    for day in occurrence_dates(recurrence):
        last = day
    return last
