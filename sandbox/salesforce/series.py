"""Lightning Experience event series (``IsRecurrence2``) as a real org stores them.

What Salesforce documents, and the emulator therefore does:

- A series is stored as ONE EVENT RECORD PER OCCURRENCE (Change Data Capture
  Developer Guide, "Recurring Activities": the series record, GroupEventType 3,
  plus one change event per occurrence, GroupEventType 0, all with the same
  ``Recurrence2PatternText``). There is no queryable series id.
- ``Recurrence2PatternText`` is an RFC 5545 RRULE subset (research/api_fidelity.md
  §3.1): FREQ DAILY/WEEKLY/MONTHLY/YEARLY, BYMONTH, BYMONTHDAY, BYDAY, WKST,
  BYSETPOS, INTERVAL, UNTIL (``yyyyMMddTHHmmssZ``), COUNT (1–999), BYWEEKNO,
  BYYEARDAY; UNTIL and COUNT exclusive; INTERVAL ≤ 999 daily, ≤ 99 weekly and
  monthly, 1 yearly; WEEKLY needs BYDAY without a numeric prefix; BYDAY prefixes
  are -1, 1, 2, 3, 4 and cannot be mixed; at most 512 characters. It is saved
  normalised: ``RRULE:`` prefix, parts in a fixed order, ``INTERVAL=1`` added.
- The pattern, its start and its zone cannot be updated through the API. Since
  API 58.0 changing a future occurrence changes the series from there on, and
  changing a past one makes it an exception (``IsRecurrence2Exception``); before
  58.0 an update changes only that occurrence. Deleting an occurrence removes it
  alone; ``/fromThisEventOnwards`` removes it and the later ones (REST API
  Developer Guide, "Delete Lightning Experience Event Series").
- A pattern change made in the UI deletes and re-creates the series (CDC guide,
  "Updating Recurring Calendar Events"); past occurrences stay as history
  (``IsRecurrence2Exclusion``, "Historical Event, Not Following Recurrence").

Emulator decisions (not documented by Salesforce, stated so tests can rely on them):

- The series-pattern record is internal: it is not an Event row, so SOQL, SOSL,
  GET and getUpdated never return it. Each occurrence carries the series' internal
  id in ``fields["_series"]`` (not an API field).
- Create answers with the FIRST occurrence's Id. Every field sent is copied to
  every occurrence, except the unique external id ``LinkPoint_Key__c``, which a
  unique value can only be on one record: it stays on the first occurrence.
- Occurrences are the RRULE's instances at or after DTSTART, python-dateutil's
  reading of RFC 5545 (a DTSTART off the pattern is not itself an occurrence).
  DTSTART is the StartDateTime's wall-clock time in ``Recurrence2PatternTimeZone``,
  so the series keeps its local time across daylight-saving changes; all-day
  series are expanded as dates. At most ``MAX_OCCURRENCES`` are materialised, and a
  rule that finds no occurrence for 200 years (or past 4000, Salesforce's last year)
  ends there. BYWEEKNO counts weeks as RFC 5545 does (week 1 has four days of the
  year); python-dateutil counts 53 weeks in some 52-week years, so the two differ there.

The expansion here is the emulator's own (python-dateutil is a test dependency
only); the tests check it against dateutil.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .validation import SfError

FIELD = "Recurrence2PatternText"
MAX_LENGTH = 512
MAX_COUNT = 999
MAX_OCCURRENCES = 999  # no documented cap was found; COUNT's maximum bounds UNTIL and open rules too
ORDER = ("FREQ", "BYMONTH", "BYMONTHDAY", "BYDAY", "WKST", "BYSETPOS", "INTERVAL", "UNTIL", "COUNT",
         "BYWEEKNO", "BYYEARDAY")
FREQS = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")
MAX_INTERVAL = {"DAILY": 999, "WEEKLY": 99, "MONTHLY": 99, "YEARLY": 1}
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")  # index = date.weekday()
BYDAY_PREFIXES = (-1, 1, 2, 3, 4)
LAST_YEAR = 4000  # Salesforce stores dates up to 4000


def _bad(why: str) -> SfError:
    return SfError("FIELD_INTEGRITY_EXCEPTION", f"{FIELD}: {why}", [FIELD])


def _ints(key: str, value: str, low: int, high: int, *, negative: bool) -> list[int]:
    """A comma list of integers in low..high (and -high..-low when negative is allowed); 0 never."""
    out = []
    for item in value.split(","):
        if not re.fullmatch(r"[+-]?\d{1,4}", item):
            raise _bad(f"{key} must be a list of numbers: {value}")
        n = int(item)
        if not (low <= n <= high or (negative and -high <= n <= -low)):
            span = f"{low} to {high}" + (f" or -{high} to -{low}" if negative else "")
            raise _bad(f"{key} values must be {span}: {value}")
        out.append(n)
    return out


def _byday(value: str, freq: str) -> list[tuple[int | None, int]]:
    """[(prefix or None, weekday index)]; prefixes as Salesforce allows them."""
    out = []
    for item in value.split(","):
        m = re.fullmatch(r"([+-]?\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)", item)
        if not m:
            raise _bad(f"BYDAY has an invalid day: {item}")
        prefix = int(m.group(1)) if m.group(1) else None
        if prefix is not None and prefix not in BYDAY_PREFIXES:
            raise _bad(f"BYDAY prefixes must be -1, 1, 2, 3 or 4: {item}")
        out.append((prefix, WEEKDAYS.index(m.group(2))))
    prefixes = {p for p, _ in out}
    if len(prefixes) > 1:
        raise _bad(f"BYDAY can't mix numeric prefixes: {value}")
    if prefixes != {None} and freq in ("DAILY", "WEEKLY"):
        raise _bad(f"FREQ={freq} needs BYDAY with weekdays and no numeric prefix")
    return out


def parse(text: str) -> dict[str, str]:
    """The rule's parts, upper-cased and checked against Salesforce's subset; raises SfError."""
    body = (text or "").strip()
    if body.upper().startswith("RRULE:"):
        body = body[6:]
    parts: dict[str, str] = {}
    for piece in body.split(";"):
        key, sep, value = piece.partition("=")
        key, value = key.strip().upper(), value.strip().upper()
        if not sep or not key:
            raise _bad(f"unsupported recurrence rule part: {piece}")
        if key not in ORDER:
            raise _bad(f"unsupported recurrence rule part: {key}")
        if key in parts:
            raise _bad(f"{key} is specified more than once")
        if not value:
            raise _bad(f"{key} needs a value")
        parts[key] = value
    freq = parts.get("FREQ")
    if freq not in FREQS:
        raise _bad("FREQ must be DAILY, WEEKLY, MONTHLY or YEARLY")
    interval = parts.setdefault("INTERVAL", "1")
    top = MAX_INTERVAL[freq]
    if not re.fullmatch(r"\d{1,4}", interval) or not 1 <= int(interval) <= top:
        raise _bad(f"INTERVAL must be between 1 and {top} for FREQ={freq}")
    parts["INTERVAL"] = str(int(interval))
    if "UNTIL" in parts and "COUNT" in parts:
        raise _bad("UNTIL and COUNT can't both be specified")
    if "COUNT" in parts:
        if not re.fullmatch(r"\d{1,4}", parts["COUNT"]) or not 1 <= int(parts["COUNT"]) <= MAX_COUNT:
            raise _bad(f"COUNT must be between 1 and {MAX_COUNT}")
        parts["COUNT"] = str(int(parts["COUNT"]))
    if "UNTIL" in parts and until_of(parts) is None:
        raise _bad("UNTIL must look like yyyyMMddTHHmmssZ")
    if "WKST" in parts and parts["WKST"] not in WEEKDAYS:
        raise _bad(f"WKST must be a weekday: {parts['WKST']}")
    if "BYDAY" in parts:
        _byday(parts["BYDAY"], freq)
    elif freq == "WEEKLY":
        raise _bad("FREQ=WEEKLY needs BYDAY with weekdays and no numeric prefix")
    if "BYMONTHDAY" in parts:
        if freq == "WEEKLY":
            raise _bad("BYMONTHDAY can't be used with FREQ=WEEKLY")
        _ints("BYMONTHDAY", parts["BYMONTHDAY"], 1, 31, negative=True)
    if "BYMONTH" in parts:
        _ints("BYMONTH", parts["BYMONTH"], 1, 12, negative=False)
    if "BYYEARDAY" in parts:
        if freq in ("WEEKLY", "MONTHLY"):
            raise _bad(f"BYYEARDAY can't be used with FREQ={freq}")
        _ints("BYYEARDAY", parts["BYYEARDAY"], 1, 366, negative=True)
    if "BYWEEKNO" in parts:
        if freq != "YEARLY":
            raise _bad("BYWEEKNO can be used with FREQ=YEARLY only")
        _ints("BYWEEKNO", parts["BYWEEKNO"], 1, 53, negative=True)
        if "BYDAY" in parts and any(p is not None for p, _ in _byday(parts["BYDAY"], freq)):
            raise _bad("BYDAY can't have numeric prefixes with BYWEEKNO")
    if "BYSETPOS" in parts:
        _ints("BYSETPOS", parts["BYSETPOS"], 1, 366, negative=True)
        if not any(k in parts for k in ("BYDAY", "BYMONTHDAY", "BYMONTH", "BYYEARDAY", "BYWEEKNO")):
            raise _bad("BYSETPOS needs another BY rule part")
    return parts


def normalise(text: str) -> str:
    """The saved form of an accepted rule; raises SfError for one Salesforce refuses."""
    if len(text or "") > MAX_LENGTH:
        raise SfError("STRING_TOO_LONG", f"{FIELD}: data value too large: {text} (max length={MAX_LENGTH})", [FIELD])
    parts = parse(text)
    saved = "RRULE:" + ";".join(f"{k}={parts[k]}" for k in ORDER if k in parts)
    if len(saved) > MAX_LENGTH:
        raise SfError("STRING_TOO_LONG", f"{FIELD}: data value too large: {saved} (max length={MAX_LENGTH})", [FIELD])
    return saved


def until_of(parts: dict[str, str]) -> dt.datetime | None:
    m = re.fullmatch(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z", parts.get("UNTIL", ""))
    if not m:
        return None
    try:
        return dt.datetime(*map(int, m.groups()), tzinfo=dt.UTC)
    except ValueError:
        return None


def zone_of(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise SfError("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                      f"Recurrence2PatternTimeZone: bad value for restricted picklist field: {name}",
                      ["Recurrence2PatternTimeZone"]) from None


# --- expansion ----------------------------------------------------------------------------------


def _week_one(year: int, wkst: int) -> dt.date:
    """The first day of week 1 (RFC 5545: the first week with at least four days in the year)."""
    jan1 = dt.date(year, 1, 1)
    start = jan1 - dt.timedelta(days=(jan1.weekday() - wkst) % 7)
    return start if (jan1 - start).days <= 3 else start + dt.timedelta(days=7)


def _weeks_in(year: int, wkst: int) -> int:
    return (_week_one(year + 1, wkst) - _week_one(year, wkst)).days // 7


def _weekno_matches(day: dt.date, year: int, wanted: set[int], wkst: int) -> bool:
    """Does `day` (in `year`'s set) fall in one of the wanted week numbers, counted as RFC 5545 does."""
    nxt = _week_one(year + 1, wkst)
    if day >= nxt:
        return 1 in wanted or -_weeks_in(year + 1, wkst) in wanted
    first = _week_one(year, wkst)
    if day < first:
        total = _weeks_in(year - 1, wkst)
        return total in wanted or -1 in wanted
    total = _weeks_in(year, wkst)
    n = (day - first).days // 7 + 1
    return n in wanted or n - total - 1 in wanted


def _nth_weekdays(days: list[dt.date], wanted: list[tuple[int | None, int]]) -> set[dt.date]:
    """The days of `days` (one month or one year, in order) that BYDAY selects."""
    out = set()
    for prefix, weekday in wanted:
        same = [d for d in days if d.weekday() == weekday]
        if prefix is None:
            out.update(same)
        elif prefix > 0 and prefix <= len(same):
            out.add(same[prefix - 1])
        elif prefix < 0 and -prefix <= len(same):
            out.add(same[prefix])
    return out


class _Rule:
    def __init__(self, parts: dict[str, str], start: dt.date):
        self.freq = parts["FREQ"]
        self.interval = int(parts["INTERVAL"])
        self.wkst = WEEKDAYS.index(parts.get("WKST", "MO"))
        self.bymonth = set(_ints("BYMONTH", parts["BYMONTH"], 1, 12, negative=False)) if "BYMONTH" in parts else None
        self.bymonthday = (set(_ints("BYMONTHDAY", parts["BYMONTHDAY"], 1, 31, negative=True))
                           if "BYMONTHDAY" in parts else None)
        self.byyearday = (set(_ints("BYYEARDAY", parts["BYYEARDAY"], 1, 366, negative=True))
                          if "BYYEARDAY" in parts else None)
        self.byweekno = (set(_ints("BYWEEKNO", parts["BYWEEKNO"], 1, 53, negative=True))
                         if "BYWEEKNO" in parts else None)
        self.byday = _byday(parts["BYDAY"], self.freq) if "BYDAY" in parts else None
        self.bysetpos = _ints("BYSETPOS", parts["BYSETPOS"], 1, 366, negative=True) if "BYSETPOS" in parts else None
        # RFC 5545 / dateutil: without any day-selecting part the day comes from DTSTART.
        if not (self.byweekno or self.byyearday or self.bymonthday or self.byday):
            if self.freq == "YEARLY":
                self.bymonth = self.bymonth or {start.month}
                self.bymonthday = {start.day}
            elif self.freq == "MONTHLY":
                self.bymonthday = {start.day}
            elif self.freq == "WEEKLY":
                self.byday = [(None, start.weekday())]

    def periods(self, start: dt.date):
        """Each period's days in order: one day, one week (from WKST), one month or one year."""
        if self.freq == "DAILY":
            day = start
            while day.year <= LAST_YEAR:
                yield [day], None
                day += dt.timedelta(days=self.interval)
        elif self.freq == "WEEKLY":
            week = start - dt.timedelta(days=(start.weekday() - self.wkst) % 7)
            while week.year <= LAST_YEAR:
                yield [week + dt.timedelta(days=i) for i in range(7)], None
                week += dt.timedelta(days=7 * self.interval)
        elif self.freq == "MONTHLY":
            year, month = start.year, start.month
            while year <= LAST_YEAR:
                last = calendar.monthrange(year, month)[1]
                yield [dt.date(year, month, d) for d in range(1, last + 1)], None
                month += self.interval
                year, month = year + (month - 1) // 12, (month - 1) % 12 + 1
        else:
            year = start.year
            while year <= LAST_YEAR:
                first = dt.date(year, 1, 1)
                yield [first + dt.timedelta(days=i) for i in range(366 if calendar.isleap(year) else 365)], year
                year += self.interval

    def _keep(self, day: dt.date, year: int | None) -> bool:
        if self.bymonth is not None and day.month not in self.bymonth:
            return False
        if self.bymonthday is not None:
            last = calendar.monthrange(day.year, day.month)[1]
            if day.day not in self.bymonthday and day.day - last - 1 not in self.bymonthday:
                return False
        if self.byyearday is not None:
            length = 366 if calendar.isleap(day.year) else 365
            n = day.timetuple().tm_yday
            if n not in self.byyearday and n - length - 1 not in self.byyearday:
                return False
        return self.byweekno is None or _weekno_matches(day, year or day.year, self.byweekno, self.wkst)

    def select(self, days: list[dt.date], year: int | None) -> list[dt.date]:
        kept = [d for d in days if self._keep(d, year)]
        if self.byday is not None:
            prefixed = any(p is not None for p, _ in self.byday)
            if not prefixed:
                weekdays = {w for _, w in self.byday}
                kept = [d for d in kept if d.weekday() in weekdays]
            elif self.freq == "MONTHLY" or (self.freq == "YEARLY" and self.bymonth is not None):
                chosen = set()
                for month in sorted({d.month for d in kept}):
                    whole = [d for d in days if d.month == month]
                    chosen |= _nth_weekdays(whole, self.byday)
                kept = [d for d in kept if d in chosen]
            else:  # YEARLY without BYMONTH: the n-th weekday of the year
                chosen = _nth_weekdays(days, self.byday)
                kept = [d for d in kept if d in chosen]
        if self.bysetpos is not None:
            picked = set()
            for pos in self.bysetpos:
                if 0 < pos <= len(kept):
                    picked.add(kept[pos - 1])
                elif pos < 0 and -pos <= len(kept):
                    picked.add(kept[pos])
            kept = sorted(picked)
        return kept


def occurrences(text: str, *, start: dt.datetime, zone: str, all_day: bool,
                limit: int = MAX_OCCURRENCES) -> list[dt.datetime]:
    """The series' occurrence starts in UTC (midnight UTC of each date for all-day series)."""
    parts = parse(text)
    until = until_of(parts)
    count = int(parts["COUNT"]) if "COUNT" in parts else None
    tz = dt.UTC if all_day else zone_of(zone)
    local = start.astimezone(tz).replace(tzinfo=None)
    first_day = local.date()
    rule = _Rule(parts, first_day)
    wanted = min(count or limit, limit)
    out: list[dt.datetime] = []
    last_match = first_day
    for days, year in rule.periods(first_day):
        if days[0] > last_match + dt.timedelta(days=366 * 200):  # a rule that matches nothing any more
            break
        for day in rule.select(days, year):
            last_match = day
            wall = dt.datetime.combine(day, local.time())
            if wall < local:
                continue
            instant = wall.replace(tzinfo=tz).astimezone(dt.UTC)
            if until is not None and instant > until:
                return out
            out.append(instant)
            if len(out) >= wanted:
                return out
    return out


def shift_wall(instant: dt.datetime, delta: dt.timedelta, zone: str, all_day: bool) -> dt.datetime:
    """Move an occurrence by a wall-clock difference in its series' zone (so 09:00 → 10:00 stays local)."""
    tz = dt.UTC if all_day else zone_of(zone)
    wall = instant.astimezone(tz).replace(tzinfo=None) + delta
    return wall.replace(tzinfo=tz).astimezone(dt.UTC)


def wall_delta(old: dt.datetime, new: dt.datetime, zone: str, all_day: bool) -> dt.timedelta:
    tz = dt.UTC if all_day else zone_of(zone)
    return new.astimezone(tz).replace(tzinfo=None) - old.astimezone(tz).replace(tzinfo=None)


# --- occurrence records -------------------------------------------------------------------------

SLOT_FIELDS = ("StartDateTime", "EndDateTime", "ActivityDateTime", "ActivityDate", "ReminderDateTime")
TIME_FIELDS = ("StartDateTime", "EndDateTime", "ActivityDateTime", "ActivityDate", "DurationInMinutes",
               "IsAllDayEvent", "ReminderDateTime")


def _when(text: str | None) -> dt.datetime | None:
    from .clock import parse_datetime

    return parse_datetime(text) if text else None


def _slot(start: dt.datetime, length: dt.timedelta, reminder_lead: dt.timedelta | None, all_day: bool) -> dict:
    from .clock import fmt_datetime

    return {
        "StartDateTime": fmt_datetime(start),
        "EndDateTime": fmt_datetime(start + length),
        "ActivityDateTime": None if all_day else fmt_datetime(start),
        "ActivityDate": start.date().isoformat(),
        "ReminderDateTime": fmt_datetime(start - reminder_lead) if reminder_lead is not None else None,
    }


def slots(values: dict) -> list[dict]:
    """Each occurrence's own time fields for a series being created from `values` (validated)."""
    all_day = bool(values.get("IsAllDayEvent"))
    start = _when(values["StartDateTime"])
    length = _when(values["EndDateTime"]) - start
    reminder = _when(values.get("ReminderDateTime"))
    lead = start - reminder if reminder is not None else None
    starts = occurrences(values["Recurrence2PatternText"], start=start, zone=values["Recurrence2PatternTimeZone"],
                         all_day=all_day)
    if not starts:
        raise _bad("the event series has no occurrences")
    return [_slot(s, length, lead, all_day) for s in starts]


def moved(sibling: dict, old: dict, new: dict) -> dict:
    """A sibling's time fields after its series moved from `old` to `new` (one occurrence's before/after)."""
    all_day = bool(new.get("IsAllDayEvent"))
    zone = sibling.get("Recurrence2PatternTimeZone") or "UTC"
    delta = wall_delta(_when(old["StartDateTime"]), _when(new["StartDateTime"]), zone, all_day)
    start = shift_wall(_when(sibling["StartDateTime"]), delta, zone, all_day)
    length = _when(new["EndDateTime"]) - _when(new["StartDateTime"])
    reminder = _when(new.get("ReminderDateTime"))
    lead = _when(new["StartDateTime"]) - reminder if reminder is not None else None
    return {**_slot(start, length, lead, all_day), "DurationInMinutes": new.get("DurationInMinutes"),
            "IsAllDayEvent": new.get("IsAllDayEvent")}
