"""The emulated org's clock and its wire formats.

Every "now" in the Salesforce sandbox comes from `now()`, which reads
`django.utils.timezone.now` at call time, so tests that freeze or advance time
by patching it move session expiry, SystemModstamp and the API-usage day too.
"""

from __future__ import annotations

import datetime as dt
import re

from django.utils import timezone

UTC = dt.UTC


def now() -> dt.datetime:
    return timezone.now().astimezone(UTC)


def to_ms(value: dt.datetime) -> dt.datetime:
    """Salesforce keeps datetimes to the millisecond."""
    return value.replace(microsecond=(value.microsecond // 1000) * 1000)


def fmt_datetime(value: dt.datetime | None) -> str | None:
    """`2024-01-01T00:00:00.000+0000`: the REST API's datetime shape (always UTC)."""
    if value is None:
        return None
    value = value.astimezone(UTC)
    return f"{value:%Y-%m-%dT%H:%M:%S}.{value.microsecond // 1000:03d}+0000"


def fmt_date(value: dt.date | None) -> str | None:
    return None if value is None else value.isoformat()


_DATETIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?"
    r"(Z|[+-]\d{2}:?\d{2})?$"
)


def parse_datetime(text: str) -> dt.datetime | None:
    """Parse the datetime forms Salesforce accepts in JSON bodies and SOQL.

    `2024-01-01T10:00:00Z`, `...+00:00`, `...+0000`, `....000+0000`; a value without
    an offset is read as UTC, as the API does.
    """
    m = _DATETIME.match(text.strip()) if isinstance(text, str) else None
    if not m:
        return None
    year, month, day, hour, minute, second, frac, offset = m.groups()
    try:
        value = dt.datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0),
            int(((frac or "0") + "000000")[:6]), tzinfo=UTC,
        )
    except ValueError:
        return None
    if offset and offset != "Z":
        sign = 1 if offset[0] == "+" else -1
        digits = offset[1:].replace(":", "")
        try:
            value -= sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        except OverflowError:  # an offset pushing year 1 or 9999 off the calendar
            return None
    return value


def parse_date(text: str) -> dt.date | None:
    if not isinstance(text, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text.strip()):
        return None
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        return None
