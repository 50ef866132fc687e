"""Time-zone names as Graph sends them (Windows or IANA) → ``zoneinfo``.

Graph ``dateTimeTimeZone`` values are a wall time without an offset plus a zone
name; the name is a Windows name (``"Pacific Standard Time"``) or one of the
IANA names Graph supports (api_fidelity §1.3). Every Windows name maps to the
IANA zone Unicode CLDR's ``windowsZones.xml`` lists for the "001" territory:
the full table is CLDR's as packaged by the maintained ``tzlocal`` package
(``tzlocal.windows_tz``, generated from CLDR's windowsZones); the table below
pins the modern IANA spellings we write for the common ones (``Europe/Kyiv``
where CLDR still says ``Europe/Kiev``; both resolve with ``tzdata``). An unknown name is an item-level :class:`MappingError`, never a
silent UTC guess (a guess would move the meeting).

When we write to Graph we prefer the Windows name (always accepted) and fall
back to the IANA name (accepted for Graph's supported list).

Wall times that do not exist (spring-forward gap) or exist twice (fall-back
overlap) resolve with ``fold=0``: the offset before the transition. That is
deterministic on both sides; :func:`wall_time_is_exact` tells a writer whether
a UTC instant survives a trip through the zone's wall clock.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# Unicode CLDR windowsZones.xml ("001" rows, and every territory's zones for
# the reverse), as shipped by tzlocal (its windows_tz module is generated from
# CLDR and updated with it).
from tzlocal.windows_tz import tz_win as _CLDR_IANA_TO_WIN
from tzlocal.windows_tz import win_tz as _CLDR_WIN_TO_IANA

from .common import MappingError, parse_iso, shape, show, utc_minute

WINDOWS_TO_IANA: dict[str, str] = {
    "Dateline Standard Time": "Etc/GMT+12",
    "UTC-11": "Etc/GMT+11",
    "Aleutian Standard Time": "America/Adak",
    "Hawaiian Standard Time": "Pacific/Honolulu",
    "Alaskan Standard Time": "America/Anchorage",
    "Pacific Standard Time (Mexico)": "America/Tijuana",
    "Pacific Standard Time": "America/Los_Angeles",
    "US Mountain Standard Time": "America/Phoenix",
    "Mountain Standard Time (Mexico)": "America/Mazatlan",
    "Mountain Standard Time": "America/Denver",
    "Central America Standard Time": "America/Guatemala",
    "Central Standard Time": "America/Chicago",
    "Central Standard Time (Mexico)": "America/Mexico_City",
    "Canada Central Standard Time": "America/Regina",
    "SA Pacific Standard Time": "America/Bogota",
    "Eastern Standard Time": "America/New_York",
    "US Eastern Standard Time": "America/Indiana/Indianapolis",
    "Venezuela Standard Time": "America/Caracas",
    "Atlantic Standard Time": "America/Halifax",
    "SA Western Standard Time": "America/La_Paz",
    "Pacific SA Standard Time": "America/Santiago",
    "Newfoundland Standard Time": "America/St_Johns",
    "E. South America Standard Time": "America/Sao_Paulo",
    "Argentina Standard Time": "America/Argentina/Buenos_Aires",
    "SA Eastern Standard Time": "America/Cayenne",
    "Greenland Standard Time": "America/Nuuk",
    "UTC-02": "Etc/GMT+2",
    "Azores Standard Time": "Atlantic/Azores",
    "Cape Verde Standard Time": "Atlantic/Cape_Verde",
    "UTC": "Etc/UTC",
    "GMT Standard Time": "Europe/London",
    "Greenwich Standard Time": "Atlantic/Reykjavik",
    "Morocco Standard Time": "Africa/Casablanca",
    "W. Europe Standard Time": "Europe/Berlin",
    "Central Europe Standard Time": "Europe/Budapest",
    "Romance Standard Time": "Europe/Paris",
    "Central European Standard Time": "Europe/Warsaw",
    "W. Central Africa Standard Time": "Africa/Lagos",
    "Jordan Standard Time": "Asia/Amman",
    "GTB Standard Time": "Europe/Bucharest",
    "Middle East Standard Time": "Asia/Beirut",
    "Egypt Standard Time": "Africa/Cairo",
    "South Africa Standard Time": "Africa/Johannesburg",
    "FLE Standard Time": "Europe/Kyiv",
    "Israel Standard Time": "Asia/Jerusalem",
    "E. Europe Standard Time": "Europe/Chisinau",
    "Namibia Standard Time": "Africa/Windhoek",
    "Turkey Standard Time": "Europe/Istanbul",
    "Arabic Standard Time": "Asia/Baghdad",
    "Arab Standard Time": "Asia/Riyadh",
    "Russian Standard Time": "Europe/Moscow",
    "E. Africa Standard Time": "Africa/Nairobi",
    "Iran Standard Time": "Asia/Tehran",
    "Arabian Standard Time": "Asia/Dubai",
    "Azerbaijan Standard Time": "Asia/Baku",
    "Georgian Standard Time": "Asia/Tbilisi",
    "Caucasus Standard Time": "Asia/Yerevan",
    "Mauritius Standard Time": "Indian/Mauritius",
    "Afghanistan Standard Time": "Asia/Kabul",
    "Ekaterinburg Standard Time": "Asia/Yekaterinburg",
    "Pakistan Standard Time": "Asia/Karachi",
    "West Asia Standard Time": "Asia/Tashkent",
    "India Standard Time": "Asia/Kolkata",
    "Sri Lanka Standard Time": "Asia/Colombo",
    "Nepal Standard Time": "Asia/Kathmandu",
    "Bangladesh Standard Time": "Asia/Dhaka",
    "Myanmar Standard Time": "Asia/Yangon",
    "SE Asia Standard Time": "Asia/Bangkok",
    "N. Central Asia Standard Time": "Asia/Novosibirsk",
    "North Asia Standard Time": "Asia/Krasnoyarsk",
    "China Standard Time": "Asia/Shanghai",
    "Singapore Standard Time": "Asia/Singapore",
    "Taipei Standard Time": "Asia/Taipei",
    "W. Australia Standard Time": "Australia/Perth",
    "Tokyo Standard Time": "Asia/Tokyo",
    "Korea Standard Time": "Asia/Seoul",
    "Cen. Australia Standard Time": "Australia/Adelaide",
    "AUS Central Standard Time": "Australia/Darwin",
    "E. Australia Standard Time": "Australia/Brisbane",
    "AUS Eastern Standard Time": "Australia/Sydney",
    "Tasmania Standard Time": "Australia/Hobart",
    "West Pacific Standard Time": "Pacific/Port_Moresby",
    "Vladivostok Standard Time": "Asia/Vladivostok",
    "New Zealand Standard Time": "Pacific/Auckland",
    "UTC+12": "Etc/GMT-12",
    "Fiji Standard Time": "Pacific/Fiji",
    "UTC+13": "Etc/GMT-13",
    "Tonga Standard Time": "Pacific/Tongatapu",
    "Samoa Standard Time": "Pacific/Apia",
    "Line Islands Standard Time": "Pacific/Kiritimati",
}

# Preferred Windows name per IANA zone for writing; the reverse of the table
# plus zones that share a Windows zone with its representative.
IANA_TO_WINDOWS: dict[str, str] = {iana: win for win, iana in WINDOWS_TO_IANA.items()} | {
    "UTC": "UTC",
    "Etc/GMT": "UTC",
    "Etc/UCT": "UTC",
    "Etc/Universal": "UTC",
    "Etc/Zulu": "UTC",
    "Pacific/Pago_Pago": "UTC-11",
    "Pacific/Midway": "UTC-11",
    "America/Toronto": "Eastern Standard Time",
    "America/Detroit": "Eastern Standard Time",
    "America/Vancouver": "Pacific Standard Time",
    "America/Edmonton": "Mountain Standard Time",
    "America/Winnipeg": "Central Standard Time",
    "Europe/Dublin": "GMT Standard Time",
    "Europe/Lisbon": "GMT Standard Time",
    "Europe/Amsterdam": "W. Europe Standard Time",
    "Europe/Rome": "W. Europe Standard Time",
    "Europe/Vienna": "W. Europe Standard Time",
    "Europe/Zurich": "W. Europe Standard Time",
    "Europe/Stockholm": "W. Europe Standard Time",
    "Europe/Oslo": "W. Europe Standard Time",
    "Europe/Brussels": "Romance Standard Time",
    "Europe/Madrid": "Romance Standard Time",
    "Europe/Copenhagen": "Romance Standard Time",
    "Europe/Prague": "Central Europe Standard Time",
    "Europe/Helsinki": "FLE Standard Time",
    "Europe/Kiev": "FLE Standard Time",
    "Europe/Athens": "GTB Standard Time",
    "Asia/Calcutta": "India Standard Time",
    "Asia/Hong_Kong": "China Standard Time",
    "Asia/Kuala_Lumpur": "Singapore Standard Time",
    "Asia/Manila": "Singapore Standard Time",
    "Asia/Jakarta": "SE Asia Standard Time",
    "Australia/Melbourne": "AUS Eastern Standard Time",
    "America/Mexico_City": "Central Standard Time (Mexico)",
}

# CLDR's complete table under our pinned spellings; CLDR's territory rows
# (America/Toronto → Eastern Standard Time, ...) complete the reverse table.
WINDOWS_TO_IANA = {**_CLDR_WIN_TO_IANA, **WINDOWS_TO_IANA}
IANA_TO_WINDOWS = {**_CLDR_IANA_TO_WIN, **IANA_TO_WINDOWS}

_WINDOWS_FOLDED = {k.casefold(): v for k, v in WINDOWS_TO_IANA.items()}

# Graph's own spellings of UTC (older payloads) and the legacy custom zone.
_GRAPH_ALIASES = {"tzone://microsoft/utc": "Etc/UTC", "z": "Etc/UTC", "gmt": "Etc/UTC"}


def resolve_zone(name: str | None) -> ZoneInfo:
    """A Windows or IANA zone name → ZoneInfo; unknown names raise MappingError."""
    if not name or not isinstance(name, str):
        # Checked before the cache: an unhashable value (a list from a payload)
        # must be an item error, not a TypeError from lru_cache.
        raise MappingError("time_zone", "missing time zone")
    if len(name) > 128:
        raise MappingError("time_zone", f"unknown time zone {show(name)}")
    return _resolve_zone(name)


@lru_cache(maxsize=512)
def _resolve_zone(name: str) -> ZoneInfo:
    key = name.strip()
    folded = key.casefold()
    if folded == "tzone://microsoft/custom":
        raise MappingError("time_zone", "legacy Outlook custom time zone cannot be converted")
    iana = WINDOWS_TO_IANA.get(key) or _WINDOWS_FOLDED.get(folded) or _GRAPH_ALIASES.get(folded)
    try:
        return ZoneInfo(iana or key)
    except (ZoneInfoNotFoundError, ValueError, TypeError, OSError):
        raise MappingError("time_zone", f"unknown time zone {show(name)}") from None


def iana_name(name: str | None) -> str:
    """The IANA key for a Windows or IANA name (validated)."""
    return resolve_zone(name).key


def graph_zone_name(name: str | None) -> str:
    """The name to send to Graph for a zone: Windows when we know it, else IANA."""
    key = iana_name(name)
    return IANA_TO_WINDOWS.get(key, key)


def _zone_of(value: dict) -> ZoneInfo:
    zone = value.get("timeZone")
    if zone is not None and not isinstance(zone, str):
        raise MappingError("time_zone", f"is not text (it is {shape(zone)})")
    return resolve_zone(zone or "UTC")


def graph_wall_to_utc(value: dict | None, name: str) -> datetime | None:
    """Graph ``{dateTime, timeZone}`` → aware UTC datetime truncated to the minute."""
    if value is None or value == {}:
        return None
    if not isinstance(value, dict) or not value.get("dateTime"):
        raise MappingError(name, f"not a dateTimeTimeZone: {show(value)}")
    wall, aware = parse_iso(value["dateTime"], name)
    if aware:
        return utc_minute(wall)
    return utc_minute(wall.replace(tzinfo=_zone_of(value)))


def graph_wall(value: dict, name: str) -> tuple[datetime, ZoneInfo]:
    """Graph ``{dateTime, timeZone}`` → (naive wall time, zone), no conversion."""
    if not isinstance(value, dict) or not value.get("dateTime"):
        raise MappingError(name, f"not a dateTimeTimeZone: {show(value)}")
    wall, aware = parse_iso(value["dateTime"], name)
    zone = _zone_of(value)
    if aware:
        wall = wall.astimezone(zone).replace(tzinfo=None)
    return wall, zone


def format_graph_wall(wall: datetime) -> str:
    return wall.strftime("%Y-%m-%dT%H:%M:%S.0000000")


def wall_time_is_exact(instant: datetime, zone: ZoneInfo) -> bool:
    """True when the instant's wall time in ``zone`` reads back as the same instant.

    False in the fall-back overlap's second pass: a wall time without an offset
    cannot say which of the two it means.
    """
    # fold=0: a bare wall time (what Graph receives) always reads as the first pass.
    wall = instant.astimezone(zone).replace(tzinfo=None, fold=0)
    return wall.replace(tzinfo=zone).astimezone(UTC) == instant.astimezone(UTC)


def local_midnight_utc(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0, 0), tzinfo=zone).astimezone(UTC)
