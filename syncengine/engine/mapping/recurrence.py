"""Recurring series: Graph ``patternedRecurrence`` ⇄ Salesforce event-series
RRULE (``Recurrence2PatternText``, creatable from API 52.0).

The canonical pattern follows Graph's model (it is the narrower of the two);
only what both sides can express is mapped, anything else is a
``MappingError("recurrence", why)`` and the engine skips the series with that
reason in the log.

================  =============================================  ==============
Graph type        RRULE written                                  limits (SF)
================  =============================================  ==============
daily             FREQ=DAILY;INTERVAL=n                          n ≤ 999
weekly            FREQ=WEEKLY;BYDAY=MO,TH;WKST=SU;INTERVAL=n     n ≤ 99
absoluteMonthly   FREQ=MONTHLY;BYMONTHDAY=d;INTERVAL=n           n ≤ 99
relativeMonthly   FREQ=MONTHLY;BYDAY=TU;BYSETPOS=2;INTERVAL=n    n ≤ 99
absoluteYearly    FREQ=YEARLY;BYMONTH=m;BYMONTHDAY=d;INTERVAL=1  n = 1, or
relativeYearly    FREQ=YEARLY;BYMONTH=m;BYDAY=MO;BYSETPOS=-1;…   2 ≤ n ≤ 8 (*)
================  =============================================  ==============

(*) Salesforce's yearly rule repeats every year only; every n years is every
12·n months from the series' first month (``FREQ=MONTHLY;INTERVAL=24;…``),
which its monthly interval (≤ 99) holds up to n = 8. It reads back as a
monthly Outlook pattern with the same occurrences.

Range: ``endDate`` → ``UNTIL`` (the end of that day in the series' zone, in
UTC, ``yyyyMMddTHHmmssZ``); ``numbered`` → ``COUNT`` (1–999). ``noEnd``:
Salesforce materializes a series occurrence by occurrence and its RRULE subset
bounds it by UNTIL or COUNT (api_fidelity §3.1), so an open series is written
up to a horizon (policy: the end of the org's calendar range, ``days_ahead``
after the day it is created; the engine passes it as ``horizon``) and the
member is told the date. Every occurrence Salesforce holds is one Outlook
shows; later ones stay in Outlook only. The horizon does not roll by itself
(Salesforce fixes a series' pattern at creation); the link keeps the open series
as the synced one (the planner reads a Salesforce series that holds the synced
series' occurrences from its own start on as the synced series).

The series' zone is the event's own (Graph ``originalStartTimeZone`` /
``start.timeZone``), never the member's: its days and wall-clock time are
Outlook's in that zone, and ``Recurrence2PatternTimeZone`` names it, so both
sides expand it across daylight-saving changes alike. All-day series are
dates: Salesforce holds them at midnight UTC, so their zone is UTC.

Day-of-month patterns on days 29–31: Outlook moves the occurrence to the last
day of a shorter month, RFC 5545 ``BYMONTHDAY=31`` skips the month. "Day 31"
monthly and a yearly day past the month's shortest length (February 29) are
"the last day" — ``BYMONTHDAY=-1``, exactly. A monthly day 29 or 30 is written
as it is when no month of the series is shorter, else the series is skipped
(Salesforce has no "day 30 or the month's last day" it documents). Reading
applies the same rule the other way. A series whose first day is not one of
its own days is skipped: Outlook starts at the next matching day, RFC 5545
counts the first day as an occurrence, so the two would differ by one.

How Salesforce holds a series, and what the engine does with it (engine/series.py
has the details): a Lightning event series is ONE Event RECORD PER OCCURRENCE,
all with the same ``IsRecurrence2``/``Recurrence2PatternText``/
``Recurrence2PatternTimeZone``/``Recurrence2PatternStartDate`` (there is no
queryable series id; the series-pattern record is not returned by SOQL). The
create answers with the first occurrence's Id, which the series link keeps, and
our unique key sits on that occurrence only. The pattern fields cannot be
updated; from API 58.0 an update of a future occurrence changes the series from
there on and an update of a past one changes that occurrence only
(``IsRecurrence2Exception``); below 58.0 any update changes that occurrence only.

- Reading: the occurrence rows of a series are read whole (one query for many
  series) and become ONE item — never N Outlook events — with its occurrences
  keyed by original start (``occurrence_dates`` below places them).
- A series-wide edit (subject, time…) is written to the first future
  occurrence; past occurrences keep their values as activity history.
- A changed single occurrence (Outlook ``type: exception``, keyed by series and
  ``originalStart``) updates the matching Salesforce occurrence record at API
  57.0, so only it changes (it becomes an exception there); a cancelled one
  deletes that record. The same the other way: a Salesforce exception PATCHes
  the Outlook occurrence (found through ``/instances``), a deleted Salesforce
  occurrence cancels it. Per-occurrence agreement is kept in ``SyncOccurrence``.
  The series' first occurrence is never deleted for a cancellation: it holds
  our key and names the series; the member is told it was kept.
- A deleted series is deleted from its first future occurrence on
  (``fromThisEventOnwards``): past occurrences stay as history.
- A pattern changed in Outlook after the series exists (a later end included):
  the API cannot change a series' pattern, so the Salesforce series is re-created
  the way Salesforce's own calendar does it — its past occurrences stay as activity
  history, the rest is deleted and the new pattern starts at its first occurrence
  not past (``engine.series`` "pattern changes": crash-safe steps, the member told
  what was kept). An earlier end only deletes the occurrences after it.
- A pattern changed in Salesforce's calendar (Salesforce re-creates the series and
  keeps the past as ``IsRecurrence2Exclusion`` history): before the series started,
  Outlook's series takes the new pattern; after, Outlook's series ends at the last
  occurrence kept and the new Salesforce series becomes a new Outlook series.

RRULEs are written in the order Salesforce normalizes them to (FREQ, BYMONTH,
BYMONTHDAY, BYDAY, WKST, BYSETPOS, INTERVAL, UNTIL, COUNT, with ``RRULE:`` and
``INTERVAL``), so the stored text reads back unchanged. Reading accepts the
equivalent spellings (``BYDAY=2TU``, ``FREQ=DAILY;BYDAY=MO,…`` with interval 1,
missing BYMONTH / BYMONTHDAY taken from the series start).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from .common import YEARS, MappingError, shape, show

FIELD = "recurrence"
DAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
RR_DAY = dict(zip(DAYS, ("SU", "MO", "TU", "WE", "TH", "FR", "SA"), strict=True))
DAY_FROM_RR = {v: k for k, v in RR_DAY.items()}
INDEXES = {"first": 1, "second": 2, "third": 3, "fourth": 4, "last": -1}
INDEX_FROM_POS = {v: k for k, v in INDEXES.items()}
PATTERNS = (
    "daily",
    "weekly",
    "absoluteMonthly",
    "relativeMonthly",
    "absoluteYearly",
    "relativeYearly",
)
MAX_INTERVAL = {"daily": 999, "weekly": 99, "absoluteMonthly": 99, "relativeMonthly": 99}
MAX_YEARS = 8  # every n years written as every 12·n months (Salesforce: ≤ 99)
MAX_COUNT = 999
MAX_RRULE_LEN = 512
_SUPPORTED_PARTS = {
    "FREQ",
    "INTERVAL",
    "BYDAY",
    "BYMONTHDAY",
    "BYMONTH",
    "BYSETPOS",
    "WKST",
    "UNTIL",
    "COUNT",
}


@dataclass(frozen=True)
class CanonicalRecurrence:
    """A series pattern both sides can express. Only the fields its pattern
    uses are set (others None / empty), so equal patterns compare equal."""

    pattern: str
    interval: int = 1
    days_of_week: tuple[str, ...] = ()
    day_of_month: int | None = None
    month: int | None = None
    index: str | None = None
    first_day_of_week: str | None = None
    end_date: date | None = None
    count: int | None = None


def _fail(reason: str) -> MappingError:
    return MappingError(FIELD, reason)


def _days(values: Any) -> tuple[str, ...]:
    if not values:
        return ()
    if not isinstance(values, list | tuple):
        raise _fail(f"days of week are not a list (they are {shape(values)})")
    out = set()
    for v in values:
        name = v.strip().lower() if isinstance(v, str) else ""
        if name not in RR_DAY:
            raise _fail(f"unknown day of week {show(v)}")
        out.add(name)
    return tuple(d for d in DAYS if d in out)


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or (isinstance(value, str) and len(value) > 12):
        raise _fail(f"{what} is not a number: {show(value)}")
    if isinstance(value, float) and not value.is_integer():
        raise _fail(f"{what} is not a whole number: {show(value)}")
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        raise _fail(f"{what} is not a number: {show(value)}") from None


def normalize(
    *,
    pattern: str,
    interval: Any = 1,
    days_of_week: Any = (),
    day_of_month: Any = None,
    month: Any = None,
    index: Any = None,
    first_day_of_week: Any = None,
    end_date: date | None = None,
    count: Any = None,
) -> CanonicalRecurrence:
    """Build a canonical pattern and check Salesforce can hold it."""
    if not isinstance(pattern, str) or pattern not in PATTERNS:
        raise _fail(f"unsupported pattern type {show(pattern)}")
    interval = _int(interval if interval is not None else 1, "interval")
    if interval < 1:
        raise _fail("interval must be at least 1")
    if pattern.endswith("Yearly"):
        if interval > MAX_YEARS:
            raise _fail(
                "Salesforce yearly series repeat every year only (INTERVAL=1), and every "
                f"{interval} years is more than its 99 months"
            )
    elif interval > MAX_INTERVAL[pattern]:
        raise _fail(
            f"Salesforce allows an interval of at most {MAX_INTERVAL[pattern]} for {pattern}"
        )
    days = _days(days_of_week)
    r: dict[str, Any] = {"pattern": pattern, "interval": interval}
    if pattern in ("weekly", "relativeMonthly", "relativeYearly"):
        if not days:
            raise _fail(f"{pattern} needs days of week")
        r["days_of_week"] = days
    if pattern == "weekly":
        fdow = first_day_of_week or "sunday"
        fdow = fdow.lower() if isinstance(fdow, str) else ""
        if fdow not in RR_DAY:
            raise _fail(f"unknown first day of week {show(first_day_of_week)}")
        r["first_day_of_week"] = fdow
    if pattern in ("absoluteMonthly", "absoluteYearly"):
        dom = _int(day_of_month, "dayOfMonth")
        if not 1 <= dom <= 31:
            raise _fail(f"day of month {dom} out of range")
        r["day_of_month"] = dom
    if pattern.startswith("relative"):
        idx = index or "first"
        idx = idx.lower() if isinstance(idx, str) else ""
        if idx not in INDEXES:
            raise _fail(f"unknown week index {show(index)}")
        r["index"] = idx
    if pattern.endswith("Yearly"):
        m = _int(month, "month")
        if not 1 <= m <= 12:
            raise _fail(f"month {m} out of range")
        r["month"] = m
        if "day_of_month" in r:
            # April 31 is April 30 every year in Outlook: one spelling per series.
            r["day_of_month"] = min(r["day_of_month"], _month_len(2000, m))
    if count is not None:
        n = _int(count, "numberOfOccurrences")
        if not 1 <= n <= MAX_COUNT:
            raise _fail(f"Salesforce series hold 1 to {MAX_COUNT} occurrences, not {n}")
        r["count"] = n
        if end_date is not None:
            raise _fail("a series ends by date or by count, not both")
    elif end_date is not None:
        r["end_date"] = end_date
    return CanonicalRecurrence(**r)


NO_END_WITHOUT_HORIZON = (
    "series without an end date cannot be represented in Salesforce "
    "(event series need UNTIL or COUNT ≤ 999)"
)


def _month_len(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def _relative_day(year: int, month: int, days: tuple[str, ...], index: str) -> date | None:
    wanted = {(DAYS.index(d) - 1) % 7 for d in days}  # Python weekday numbers
    matches = [
        date(year, month, d)
        for d in range(1, _month_len(year, month) + 1)
        if date(year, month, d).weekday() in wanted
    ]
    pos = INDEXES[index]
    if pos == -1:
        return matches[-1] if matches else None
    return matches[pos - 1] if len(matches) >= pos else None


def starts_on_pattern(r: CanonicalRecurrence, start: date) -> bool:
    """Is the series' first day one of its own occurrences?"""
    if r.pattern == "daily":
        return True
    if r.pattern == "weekly":
        return DAYS[(start.weekday() + 1) % 7] in r.days_of_week
    if r.month is not None and start.month != r.month:
        return False
    if r.day_of_month is not None:
        return start.day == min(r.day_of_month, _month_len(start.year, start.month))
    return start == _relative_day(start.year, start.month, r.days_of_week, r.index or "first")


def _months_of(r: CanonicalRecurrence, start: date, horizon: date | None):
    """(year, month) of each occurrence of a day-of-month series (one per month)."""
    step = 12 if r.pattern == "absoluteYearly" else r.interval
    last = r.end_date or horizon
    y, m, n = start.year, start.month, 0
    # An open series repeats its months within 400 years (the leap-year cycle).
    while n < (r.count or 4800 // step + 1):
        if last is not None and (y, m) > (last.year, last.month):
            return
        yield y, m
        n += 1
        m += step
        y, m = y + (m - 1) // 12, (m - 1) % 12 + 1


def _month_day_part(r: CanonicalRecurrence, start: date | None, horizon: date | None) -> str:
    """BYMONTHDAY for Outlook's day-of-month, which falls on the last day of shorter months."""
    d = r.day_of_month
    assert d is not None
    if r.pattern == "absoluteYearly":
        shortest = 28 if r.month == 2 else _month_len(2001, r.month or 1)
        return "-1" if d > shortest else str(d)
    if d == 31:
        return "-1"
    if d < 29 or start is None:
        return str(d)
    short = next(((y, m) for y, m in _months_of(r, start, horizon) if _month_len(y, m) < d), None)
    if short is None:
        return str(d)
    raise _fail(
        f"Outlook moves day {d} to the last day of shorter months (as in "
        f"{calendar.month_name[short[1]]} {short[0]}); Salesforce's series would skip those "
        "months, so the series is not copied"
    )


# ---------------------------------------------------------------- expansion


def occurrence_dates(
    r: CanonicalRecurrence, start: date, *, through: date | None = None
) -> list[date]:
    """The series' occurrence days as Outlook places them, from ``start`` (its first
    day, in its own zone) up to ``through`` and the series' own end.

    The engine needs them to key occurrences by their original start on both sides
    (Salesforce has no original-start field: an occurrence row sits at its pattern
    slot unless it is an exception) and to tell a cancelled occurrence (a slot with
    no occurrence) from one outside the range read. Day-of-month patterns fall on
    the last day of shorter months, as in Outlook."""
    last = min(d for d in (r.end_date, through) if d is not None) if (
        r.end_date or through
    ) else None
    if last is None and r.count is None:
        raise ValueError("an open series needs a last day to expand to")
    out: list[date] = []
    for day in _candidate_days(r, start):
        if day < start:
            continue
        if (last is not None and day > last) or (r.count is not None and len(out) >= r.count):
            break
        out.append(day)
        if len(out) >= 4 * MAX_COUNT:  # no series Salesforce holds is longer
            break
    return out


def _candidate_days(r: CanonicalRecurrence, start: date):
    """Candidate days in order (callers drop those before ``start`` and stop at the end)."""
    step = r.interval
    if r.pattern == "daily":
        day = start
        while day.year < YEARS[1]:
            yield day
            day = date.fromordinal(day.toordinal() + step)
        return
    if r.pattern == "weekly":
        fdow = DAYS.index(r.first_day_of_week or "sunday")  # 0 = Sunday
        sunday_based = (start.weekday() + 1) % 7
        week = start.toordinal() - (sunday_based - fdow) % 7
        offsets = sorted((DAYS.index(d) - fdow) % 7 for d in r.days_of_week)
        while week < date(YEARS[1], 1, 1).toordinal():
            for off in offsets:
                yield date.fromordinal(week + off)
            week += 7 * step
        return
    months = 12 * step if r.pattern.endswith("Yearly") else step
    y, m = start.year, (r.month or start.month) if r.pattern.endswith("Yearly") else start.month
    while y < YEARS[1]:
        if r.day_of_month is not None:
            yield date(y, m, min(r.day_of_month, _month_len(y, m)))
        else:
            day = _relative_day(y, m, r.days_of_week, r.index or "first")
            if day is not None:
                yield day
        m += months
        y, m = y + (m - 1) // 12, (m - 1) % 12 + 1


def occurrence_starts(
    r: CanonicalRecurrence,
    first: datetime,
    zone: ZoneInfo,
    *,
    through: date | None = None,
) -> list[datetime]:
    """UTC starts of a timed series' occurrences: the first start's wall-clock time in
    the series' zone on every occurrence day (so they move with daylight saving)."""
    local = first.astimezone(zone)
    wall = local.time().replace(tzinfo=None)
    return [
        datetime.combine(d, wall, tzinfo=zone).astimezone(UTC)
        for d in occurrence_dates(r, local.date(), through=through)
    ]


# ---------------------------------------------------------------- Graph


def from_graph(recurrence: dict[str, Any]) -> CanonicalRecurrence:
    if not isinstance(recurrence, dict):
        raise _fail("not a patternedRecurrence object")
    p = recurrence.get("pattern") or {}
    rng = recurrence.get("range") or {}
    if not isinstance(p, dict) or not isinstance(rng, dict):
        raise _fail("pattern and range must be objects")
    kind = rng.get("type")
    end_date = count = None
    if kind == "endDate":
        if not rng.get("endDate"):
            raise _fail("endDate range without endDate")
        try:
            if not isinstance(rng["endDate"], str):
                raise ValueError
            end_date = date.fromisoformat(rng["endDate"][:10])
        except ValueError:
            raise _fail(f"invalid endDate {show(rng['endDate'])}") from None
        _in_years(end_date, rng["endDate"])
    elif kind == "numbered":
        count = rng.get("numberOfOccurrences")
        if count is None:
            raise _fail("numbered range without numberOfOccurrences")
    elif kind == "noEnd":
        pass
    else:
        raise _fail(f"unknown range type {show(kind)}")
    return normalize(
        pattern=p.get("type"),
        interval=p.get("interval"),
        days_of_week=p.get("daysOfWeek"),
        day_of_month=p.get("dayOfMonth"),
        month=p.get("month"),
        index=p.get("index"),
        first_day_of_week=p.get("firstDayOfWeek"),
        end_date=end_date,
        count=count,
    )


def to_graph(r: CanonicalRecurrence, *, start_date: date, time_zone: str) -> dict[str, Any]:
    """patternedRecurrence; ``start_date`` is the series start in ``time_zone``."""
    pattern: dict[str, Any] = {"type": r.pattern, "interval": r.interval}
    if r.days_of_week:
        pattern["daysOfWeek"] = list(r.days_of_week)
    if r.first_day_of_week:
        pattern["firstDayOfWeek"] = r.first_day_of_week
    if r.day_of_month is not None:
        pattern["dayOfMonth"] = r.day_of_month
    if r.month is not None:
        pattern["month"] = r.month
    if r.index:
        pattern["index"] = r.index
    rng: dict[str, Any] = {"startDate": start_date.isoformat(), "recurrenceTimeZone": time_zone}
    if r.count is not None:
        rng.update(type="numbered", numberOfOccurrences=r.count)
    elif r.end_date is not None:
        rng.update(type="endDate", endDate=r.end_date.isoformat())
    else:
        rng.update(type="noEnd")
    return {"pattern": pattern, "range": rng}


# ---------------------------------------------------------------- RRULE


def _until_utc(end_date: date, zone: ZoneInfo) -> str:
    end = datetime.combine(end_date, time(23, 59, 59), tzinfo=zone).astimezone(UTC)
    return end.strftime("%Y%m%dT%H%M%SZ")


def check_writable(r: CanonicalRecurrence, *, start: date) -> None:
    """Raise the skip reason now (when the item is read) if Salesforce cannot hold the
    series exactly, whatever horizon an open series later gets; ``start``: its first day."""
    to_rrule(r, zone=ZoneInfo("UTC"), start=start, horizon=start)
    if r.day_of_month is not None:
        _month_day_part(r, start, None)


def to_rrule(
    r: CanonicalRecurrence,
    *,
    zone: ZoneInfo,
    start: date | None = None,
    horizon: date | None = None,
) -> str:
    """The Salesforce RRULE. ``start``: the series' first day in ``zone`` (checked
    to be one of its days); ``horizon``: the last day an open series is written up to."""
    if start is not None and not starts_on_pattern(r, start):
        raise _fail(
            "the series starts on a day that is not one of its own days; Outlook starts it "
            "at the next matching day, Salesforce on the first day, so the series is not copied"
        )
    if r.end_date is None and r.count is None and horizon is None:
        raise _fail(NO_END_WITHOUT_HORIZON)
    freq = {
        "daily": "DAILY",
        "weekly": "WEEKLY",
        "absoluteMonthly": "MONTHLY",
        "relativeMonthly": "MONTHLY",
        "absoluteYearly": "YEARLY",
        "relativeYearly": "YEARLY",
    }[r.pattern]
    interval = r.interval
    if freq == "YEARLY" and interval > 1:
        freq, interval = "MONTHLY", 12 * interval  # from the series' first month
    parts = [f"FREQ={freq}"]
    if r.month is not None and freq == "YEARLY":
        parts.append(f"BYMONTH={r.month}")
    if r.day_of_month is not None:
        parts.append(f"BYMONTHDAY={_month_day_part(r, start, horizon)}")
    if r.days_of_week:
        parts.append("BYDAY=" + ",".join(RR_DAY[d] for d in r.days_of_week))
    if r.first_day_of_week:
        parts.append(f"WKST={RR_DAY[r.first_day_of_week]}")
    if r.index:
        parts.append(f"BYSETPOS={INDEXES[r.index]}")
    parts.append(f"INTERVAL={interval}")
    if r.end_date is not None or r.count is None:
        parts.append(f"UNTIL={_until_utc(r.end_date or horizon, zone)}")
    if r.count is not None:
        parts.append(f"COUNT={r.count}")
    text = "RRULE:" + ";".join(parts)
    if len(text) > MAX_RRULE_LEN:
        raise _fail(f"RRULE longer than {MAX_RRULE_LEN} characters")
    return text


def _parse_until(value: str, zone: ZoneInfo) -> date:
    v = value.strip().upper()
    try:
        if "T" not in v:
            return _in_years(datetime.strptime(v[:8], "%Y%m%d").date(), value)
        dt = datetime.strptime(v.rstrip("Z")[:15], "%Y%m%dT%H%M%S")
    except ValueError:
        raise _fail(f"invalid UNTIL {show(value)}") from None
    _in_years(dt.date(), value)
    if v.endswith("Z"):
        return dt.replace(tzinfo=UTC).astimezone(zone).date()
    return dt.date()


def _in_years(day: date, raw: Any) -> date:
    """An end date Salesforce can store (and zone arithmetic cannot overflow)."""
    if not YEARS[0] <= day.year <= YEARS[1]:
        raise _fail(f"end date {show(raw)} is outside the years 1700–4000")
    return day


def _split_byday(value: str) -> tuple[tuple[str, ...], set[int]]:
    days, prefixes = [], set()
    for token in value.split(","):
        token = token.strip().upper()
        code, num = token[-2:], token[:-2]
        if code not in DAY_FROM_RR:
            raise _fail(f"invalid BYDAY entry {show(token)}")
        days.append(DAY_FROM_RR[code])
        if num:
            prefixes.add(_int(num.lstrip("+"), "BYDAY prefix"))
    return tuple(days), prefixes


def _check_no_short_month(day, freq, interval, month, start, end_date, count) -> None:
    """Salesforce's BYMONTHDAY=29…31 skips shorter months, Outlook's day moves to their
    last day: the same series only when no month of it is shorter."""
    probe = CanonicalRecurrence(
        pattern="absoluteYearly" if freq == "YEARLY" else "absoluteMonthly",
        interval=max(1, interval) if isinstance(interval, int) else 1,
        day_of_month=day,
        month=month,
        end_date=end_date,
        count=_int(count, "COUNT") if count else None,
    )
    for y, m in _months_of(probe, start, None):
        if _month_len(y, m) < day:
            raise _fail(
                f"Salesforce's series skips months without a day {day} (as "
                f"{calendar.month_name[m]} {y}); Outlook would move it to their last day, "
                "so the series is not copied"
            )


def from_rrule(text: str, *, zone: ZoneInfo, start: date) -> CanonicalRecurrence:
    """RRULE text → canonical; ``start`` is the series start date in ``zone``."""
    if not text or not isinstance(text, str):
        raise _fail("empty recurrence rule")
    body = text.strip()
    if body.upper().startswith("RRULE:"):
        body = body[6:]
    parts: dict[str, str] = {}
    for chunk in body.split(";"):
        if not chunk.strip():
            continue
        key, sep, value = chunk.partition("=")
        key = key.strip().upper()
        if not sep or key in parts:
            raise _fail(f"malformed RRULE part {show(chunk)}")
        if key not in _SUPPORTED_PARTS:
            raise _fail(f"{key} cannot be expressed in Outlook")
        parts[key] = value.strip()
    freq = parts.get("FREQ", "").upper()
    interval = _int(parts.get("INTERVAL", "1"), "INTERVAL")
    days, prefixes = _split_byday(parts["BYDAY"]) if parts.get("BYDAY") else ((), set())
    setpos = _int(parts["BYSETPOS"], "BYSETPOS") if parts.get("BYSETPOS") else None
    if parts.get("BYMONTHDAY") and "," in parts["BYMONTHDAY"]:
        raise _fail("several BYMONTHDAY values cannot be expressed in Outlook")
    month_day = _int(parts["BYMONTHDAY"], "BYMONTHDAY") if parts.get("BYMONTHDAY") else None
    if parts.get("BYMONTH") and "," in parts["BYMONTH"]:
        raise _fail("several BYMONTH values cannot be expressed in Outlook")
    month = _int(parts["BYMONTH"], "BYMONTH") if parts.get("BYMONTH") else None
    wkst = DAY_FROM_RR.get(parts.get("WKST", "MO").upper())
    if wkst is None:
        raise _fail(f"invalid WKST {show(parts.get('WKST'))}")
    end_date = _parse_until(parts["UNTIL"], zone) if parts.get("UNTIL") else None
    count = parts.get("COUNT")
    if month_day is not None and days:
        raise _fail("BYMONTHDAY together with BYDAY cannot be expressed in Outlook")
    if month_day == -1:
        # "The last day of the month": Outlook's day 31 (monthly) or the month's
        # longest length (yearly: February 29), which it moves to the last day.
        month_day = 31 if freq != "YEARLY" else _month_len(2000, month or start.month)
    elif month_day is not None and month_day < 1:
        raise _fail("counting days from the month's end cannot be expressed in Outlook")
    elif month_day is not None and month_day >= 29:
        yearly_month = (month or start.month) if freq == "YEARLY" else None
        _check_no_short_month(month_day, freq, interval, yearly_month, start, end_date, count)

    common: dict[str, Any] = {"interval": interval, "end_date": end_date, "count": count}
    if freq == "DAILY":
        if days:
            if interval != 1 or prefixes or setpos is not None:
                raise _fail(
                    "daily rule with weekdays and an interval cannot be expressed in Outlook"
                )
            return _starting_on_pattern(
                normalize(pattern="weekly", days_of_week=days, first_day_of_week=wkst, **common),
                start,
            )
        if month_day is not None or month is not None or setpos is not None:
            raise _fail("filtered daily rule cannot be expressed in Outlook")
        return normalize(pattern="daily", **common)
    if freq == "WEEKLY":
        if prefixes or setpos is not None or month_day is not None or month is not None:
            raise _fail("filtered weekly rule cannot be expressed in Outlook")
        days = days or (DAYS[(start.weekday() + 1) % 7],)
        return _starting_on_pattern(
            normalize(pattern="weekly", days_of_week=days, first_day_of_week=wkst, **common), start
        )
    if freq not in ("MONTHLY", "YEARLY"):
        raise _fail(f"unsupported FREQ {show(freq or None)}")
    prefix = "absolute" if not days else "relative"
    kind = prefix + ("Monthly" if freq == "MONTHLY" else "Yearly")
    if freq == "MONTHLY" and month is not None:
        raise _fail("monthly rule limited to some months cannot be expressed in Outlook")
    extra: dict[str, Any] = {}
    if freq == "YEARLY":
        extra["month"] = month or start.month
    if not days:
        if setpos is not None:
            raise _fail("BYSETPOS without BYDAY cannot be expressed in Outlook")
        extra["day_of_month"] = month_day or start.day
    else:
        if prefixes and setpos is not None:
            raise _fail("BYDAY prefixes together with BYSETPOS cannot be expressed in Outlook")
        if len(prefixes) > 1:
            raise _fail("different week numbers in one rule cannot be expressed in Outlook")
        pos = next(iter(prefixes)) if prefixes else setpos
        if pos is None:
            raise _fail("every matching weekday of the month cannot be expressed in Outlook")
        if pos not in INDEX_FROM_POS:
            raise _fail(f"week index {pos} cannot be expressed in Outlook")
        extra.update(days_of_week=days, index=INDEX_FROM_POS[pos])
    return _starting_on_pattern(normalize(pattern=kind, **common, **extra), start)


def _starting_on_pattern(r: CanonicalRecurrence, start: date) -> CanonicalRecurrence:
    if not starts_on_pattern(r, start):
        raise _fail(
            "the Salesforce series starts on a day that is not one of its own days; "
            "Outlook would start it at the next matching day, so the series is not copied"
        )
    return r


__all__ = [
    "CanonicalRecurrence",
    "check_writable",
    "from_graph",
    "from_rrule",
    "normalize",
    "occurrence_dates",
    "occurrence_starts",
    "starts_on_pattern",
    "to_graph",
    "to_rrule",
]
