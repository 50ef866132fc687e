"""Microsoft's wire formats: the clock, item ids, dateTimeTimeZone values and zone names.

Every "now" in the Microsoft sandbox comes from `now()`, which reads
`django.utils.timezone.now` at call time so tests that patch it move token
expiry and lastModifiedDateTime too.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import secrets
import struct
import uuid
import zoneinfo

from django.utils import timezone

UTC = dt.UTC


def now() -> dt.datetime:
    return timezone.now().astimezone(UTC)


# --- ids --------------------------------------------------------------------------
# Graph ids are opaque, case-sensitive, URL-safe base64 strings beginning "AAMk".
# Ours carry a type byte, so an occurrence id can be decoded to its series master
# and original start without a lookup table.
_ID_PREFIX = "AAMk"
ID_ITEM = 1
ID_OCCURRENCE = 2


def new_item_id() -> str:
    raw = bytes([ID_ITEM]) + uuid.uuid4().bytes + secrets.token_bytes(3)
    return _ID_PREFIX + base64.urlsafe_b64encode(raw).decode()


def occurrence_id(master_id: str, original_start: dt.datetime) -> str:
    master = _decode(master_id)
    stamp = int(original_start.astimezone(UTC).timestamp())
    raw = bytes([ID_OCCURRENCE]) + master[1:17] + struct.pack(">q", stamp)
    return _ID_PREFIX + base64.urlsafe_b64encode(raw).decode()


def _decode(graph_id: str) -> bytes:
    if not graph_id.startswith(_ID_PREFIX):
        raise ValueError("malformed")
    try:
        raw = base64.urlsafe_b64decode(graph_id[len(_ID_PREFIX):].encode())
    except (ValueError, TypeError) as exc:
        raise ValueError("malformed") from exc
    if len(raw) < 17 or raw[0] not in (ID_ITEM, ID_OCCURRENCE):
        raise ValueError("malformed")
    return raw


def id_is_wellformed(graph_id: str) -> bool:
    try:
        _decode(graph_id)
    except ValueError:
        return False
    return True


def id_occurrence_parts(graph_id: str) -> tuple[bytes, dt.datetime] | None:
    """(master uuid bytes, original start) for an occurrence id, else None."""
    raw = _decode(graph_id)
    if raw[0] != ID_OCCURRENCE or len(raw) != 25:
        return None
    return raw[1:17], dt.datetime.fromtimestamp(struct.unpack(">q", raw[17:25])[0], UTC)


def id_master_bytes(graph_id: str) -> bytes:
    return _decode(graph_id)[1:17]


def new_change_key() -> str:
    # Exchange change keys are base64 of a 22-byte blob ("CQAAABYAAAA…").
    return base64.b64encode(b"\x09\x00\x00\x00\x16\x00\x00\x00" + secrets.token_bytes(14)).decode()


def new_ical_uid() -> str:
    return "040000008200E00074C5B7101A82E00800000000" + secrets.token_hex(28).upper()


# --- timestamps -------------------------------------------------------------------

def fmt_offset(value: dt.datetime | None) -> str | None:
    """DateTimeOffset as Graph writes it: UTC with a Z, e.g. 2024-01-02T03:04:05.1234567Z."""
    if value is None:
        return None
    value = value.astimezone(UTC)
    return f"{value:%Y-%m-%dT%H:%M:%S}.{value.microsecond:06d}0Z"


def fmt_local(value: dt.datetime) -> str:
    """A wall time without offset, seven fractional digits."""
    return f"{value:%Y-%m-%dT%H:%M:%S}.{value.microsecond:06d}0"


_LOCAL = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?)?(Z|[+-]\d{2}:\d{2})?$"
)


def parse_iso(text: str) -> tuple[dt.datetime, dt.timezone | None] | None:
    """(naive wall time, explicit offset or None). A '+' decoded to a space is malformed, as in Graph."""
    m = _LOCAL.match(text or "")
    if not m:
        return None
    y, mo, d, h, mi, s, frac, off = m.groups()
    try:
        value = dt.datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0),
                            int(((frac or "0") + "000000")[:6]))
    except ValueError:
        return None
    if off is None:
        return value, None
    if off == "Z":
        return value, UTC
    sign = 1 if off[0] == "+" else -1
    return value, dt.timezone(sign * dt.timedelta(hours=int(off[1:3]), minutes=int(off[4:6])))


def parse_query_instant(text: str) -> dt.datetime | None:
    """startDateTime/endDateTime query values: an offset or Z means that; none means UTC."""
    parsed = parse_iso(text)
    if parsed is None:
        return None
    value, offset = parsed
    return value.replace(tzinfo=offset or UTC).astimezone(UTC)


# --- time zones -------------------------------------------------------------------
# Windows zone names → IANA (CLDR windowsZones, territory 001).
WINDOWS_ZONES = {
    "Dateline Standard Time": "Etc/GMT+12", "UTC-11": "Etc/GMT+11",
    "Aleutian Standard Time": "America/Adak", "Hawaiian Standard Time": "Pacific/Honolulu",
    "Marquesas Standard Time": "Pacific/Marquesas", "Alaskan Standard Time": "America/Anchorage",
    "UTC-09": "Etc/GMT+9", "Pacific Standard Time (Mexico)": "America/Tijuana", "UTC-08": "Etc/GMT+8",
    "Pacific Standard Time": "America/Los_Angeles", "US Mountain Standard Time": "America/Phoenix",
    "Mountain Standard Time (Mexico)": "America/Mazatlan", "Mountain Standard Time": "America/Denver",
    "Yukon Standard Time": "America/Whitehorse", "Central America Standard Time": "America/Guatemala",
    "Central Standard Time": "America/Chicago", "Easter Island Standard Time": "Pacific/Easter",
    "Central Standard Time (Mexico)": "America/Mexico_City", "Canada Central Standard Time": "America/Regina",
    "SA Pacific Standard Time": "America/Bogota", "Eastern Standard Time (Mexico)": "America/Cancun",
    "Eastern Standard Time": "America/New_York", "Haiti Standard Time": "America/Port-au-Prince",
    "Cuba Standard Time": "America/Havana", "US Eastern Standard Time": "America/Indiana/Indianapolis",
    "Turks And Caicos Standard Time": "America/Grand_Turk", "Paraguay Standard Time": "America/Asuncion",
    "Atlantic Standard Time": "America/Halifax", "Venezuela Standard Time": "America/Caracas",
    "Central Brazilian Standard Time": "America/Cuiaba", "SA Western Standard Time": "America/La_Paz",
    "Pacific SA Standard Time": "America/Santiago", "Newfoundland Standard Time": "America/St_Johns",
    "Tocantins Standard Time": "America/Araguaina", "E. South America Standard Time": "America/Sao_Paulo",
    "SA Eastern Standard Time": "America/Cayenne", "Argentina Standard Time": "America/Argentina/Buenos_Aires",
    "Greenland Standard Time": "America/Nuuk", "Montevideo Standard Time": "America/Montevideo",
    "Magallanes Standard Time": "America/Punta_Arenas", "Saint Pierre Standard Time": "America/Miquelon",
    "Bahia Standard Time": "America/Bahia", "UTC-02": "Etc/GMT+2", "Azores Standard Time": "Atlantic/Azores",
    "Cape Verde Standard Time": "Atlantic/Cape_Verde", "UTC": "Etc/UTC", "GMT Standard Time": "Europe/London",
    "Greenwich Standard Time": "Atlantic/Reykjavik", "Sao Tome Standard Time": "Africa/Sao_Tome",
    "Morocco Standard Time": "Africa/Casablanca", "W. Europe Standard Time": "Europe/Berlin",
    "Central Europe Standard Time": "Europe/Budapest", "Romance Standard Time": "Europe/Paris",
    "Central European Standard Time": "Europe/Warsaw", "W. Central Africa Standard Time": "Africa/Lagos",
    "Jordan Standard Time": "Asia/Amman", "GTB Standard Time": "Europe/Bucharest",
    "Middle East Standard Time": "Asia/Beirut", "Egypt Standard Time": "Africa/Cairo",
    "E. Europe Standard Time": "Europe/Chisinau", "Syria Standard Time": "Asia/Damascus",
    "West Bank Standard Time": "Asia/Hebron", "South Africa Standard Time": "Africa/Johannesburg",
    "FLE Standard Time": "Europe/Kyiv", "Israel Standard Time": "Asia/Jerusalem",
    "South Sudan Standard Time": "Africa/Juba", "Kaliningrad Standard Time": "Europe/Kaliningrad",
    "Sudan Standard Time": "Africa/Khartoum", "Libya Standard Time": "Africa/Tripoli",
    "Namibia Standard Time": "Africa/Windhoek", "Arabic Standard Time": "Asia/Baghdad",
    "Turkey Standard Time": "Europe/Istanbul", "Arab Standard Time": "Asia/Riyadh",
    "Belarus Standard Time": "Europe/Minsk", "Russian Standard Time": "Europe/Moscow",
    "E. Africa Standard Time": "Africa/Nairobi", "Volgograd Standard Time": "Europe/Volgograd",
    "Iran Standard Time": "Asia/Tehran", "Arabian Standard Time": "Asia/Dubai",
    "Astrakhan Standard Time": "Europe/Astrakhan", "Azerbaijan Standard Time": "Asia/Baku",
    "Russia Time Zone 3": "Europe/Samara", "Mauritius Standard Time": "Indian/Mauritius",
    "Saratov Standard Time": "Europe/Saratov", "Georgian Standard Time": "Asia/Tbilisi",
    "Caucasus Standard Time": "Asia/Yerevan", "Afghanistan Standard Time": "Asia/Kabul",
    "West Asia Standard Time": "Asia/Tashkent", "Ekaterinburg Standard Time": "Asia/Yekaterinburg",
    "Pakistan Standard Time": "Asia/Karachi", "Qyzylorda Standard Time": "Asia/Qyzylorda",
    "India Standard Time": "Asia/Kolkata", "Sri Lanka Standard Time": "Asia/Colombo",
    "Nepal Standard Time": "Asia/Kathmandu", "Central Asia Standard Time": "Asia/Bishkek",  # CLDR 45+
    "Bangladesh Standard Time": "Asia/Dhaka", "Omsk Standard Time": "Asia/Omsk",
    "Myanmar Standard Time": "Asia/Yangon", "SE Asia Standard Time": "Asia/Bangkok",
    "Altai Standard Time": "Asia/Barnaul", "W. Mongolia Standard Time": "Asia/Hovd",
    "North Asia Standard Time": "Asia/Krasnoyarsk", "N. Central Asia Standard Time": "Asia/Novosibirsk",
    "Tomsk Standard Time": "Asia/Tomsk", "China Standard Time": "Asia/Shanghai",
    "North Asia East Standard Time": "Asia/Irkutsk", "Singapore Standard Time": "Asia/Singapore",
    "W. Australia Standard Time": "Australia/Perth", "Taipei Standard Time": "Asia/Taipei",
    "Ulaanbaatar Standard Time": "Asia/Ulaanbaatar", "Aus Central W. Standard Time": "Australia/Eucla",
    "Transbaikal Standard Time": "Asia/Chita", "Tokyo Standard Time": "Asia/Tokyo",
    "North Korea Standard Time": "Asia/Pyongyang", "Korea Standard Time": "Asia/Seoul",
    "Yakutsk Standard Time": "Asia/Yakutsk", "Cen. Australia Standard Time": "Australia/Adelaide",
    "AUS Central Standard Time": "Australia/Darwin", "E. Australia Standard Time": "Australia/Brisbane",
    "AUS Eastern Standard Time": "Australia/Sydney", "West Pacific Standard Time": "Pacific/Port_Moresby",
    "Tasmania Standard Time": "Australia/Hobart", "Vladivostok Standard Time": "Asia/Vladivostok",
    "Lord Howe Standard Time": "Australia/Lord_Howe", "Bougainville Standard Time": "Pacific/Bougainville",
    "Russia Time Zone 10": "Asia/Srednekolymsk", "Magadan Standard Time": "Asia/Magadan",
    "Norfolk Standard Time": "Pacific/Norfolk", "Sakhalin Standard Time": "Asia/Sakhalin",
    "Central Pacific Standard Time": "Pacific/Guadalcanal", "Russia Time Zone 11": "Asia/Kamchatka",
    "New Zealand Standard Time": "Pacific/Auckland", "UTC+12": "Etc/GMT-12",
    "Fiji Standard Time": "Pacific/Fiji", "Chatham Islands Standard Time": "Pacific/Chatham",
    "UTC+13": "Etc/GMT-13", "Tonga Standard Time": "Pacific/Tongatapu", "Samoa Standard Time": "Pacific/Apia",
    "Line Islands Standard Time": "Pacific/Kiritimati",
}
_WINDOWS_LOWER = {k.lower(): v for k, v in WINDOWS_ZONES.items()}


def zone(name: str) -> dt.tzinfo | None:
    """A Windows or IANA zone name as Graph accepts it; None when unsupported."""
    name = (name or "").strip().strip('"')
    if not name:
        return None
    if name.lower() in ("utc", "etc/utc", "gmt", "coordinated universal time"):
        return UTC
    iana = _WINDOWS_LOWER.get(name.lower(), name)
    try:
        return zoneinfo.ZoneInfo(iana)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


def to_utc(local: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    return local.replace(tzinfo=tz).astimezone(UTC)


def dtz(value_utc: dt.datetime, zone_name: str, tz: dt.tzinfo) -> dict:
    """A dateTimeTimeZone for an instant shown in a zone."""
    return {"dateTime": fmt_local(value_utc.astimezone(tz).replace(tzinfo=None)), "timeZone": zone_name}
