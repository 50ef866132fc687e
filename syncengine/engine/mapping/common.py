"""Shared pieces of the mapping layer: the error type, text / date normalizers,
the canonical base class, hashing, field diffs and the three-way merge.

A canonical record holds only the synced fields of one item, normalized so
that the same content read from Outlook or from Salesforce gives the same
record (and the same hash). Fields declared with :func:`info` travel with the
record (warnings, attendees, the event's zone, ...) but are not content: they
are left out of equality, the hash, diffs and merges.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar, Literal

# Bump when the canonical projection changes meaning: every stored snapshot hash
# then differs once, which the engine treats as "re-verify", never as a change.
PROJECTION_VERSION = 1


class MappingError(Exception):
    """One item cannot be mapped. Item-level: the engine logs it and moves on.

    ``field`` names what could not be read: the remote field (``businessAddress``,
    ``reminderMinutesBeforeStart``) when the payload has the wrong shape, the
    canonical field when the content cannot be synced (``end``, ``recurrence``).
    A reason phrased as a predicate ("is not text") reads as one sentence with
    the field; any other reason follows it after a colon.
    """

    def __init__(self, field: str, reason: str):
        self.field = field
        self.reason = reason
        sep = " " if reason.startswith("is ") else ": "
        super().__init__(f"{field}{sep}{reason}")


# ---------------------------------------------------------------- reading payloads
#
# Remote payloads are read through these: a value of the wrong shape (a string
# where Graph sends an object, "abc" for a number, true as text) is a
# MappingError naming the field, never a TypeError deep in the mapper, so one
# malformed item is an item-level error and the run goes on.


def shape(value: Any) -> str:
    """What a JSON value is, in words, for an error message (never its content)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def show(value: Any, limit: int = 60) -> str:
    """A short repr of a remote value for an error message (long values are cut)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def read_text(payload: dict[str, Any], key: str, name: str | None = None) -> str | None:
    value = payload.get(key)
    if value is None or isinstance(value, str):
        return value
    raise MappingError(name or key, f"is not text (it is {shape(value)})")


def read_object(
    payload: dict[str, Any], key: str, what: str = "an object", name: str | None = None
) -> dict[str, Any] | None:
    value = payload.get(key)
    if value is None or isinstance(value, dict):
        return value
    raise MappingError(name or key, f"is not {what} (it is {shape(value)})")


def read_list(payload: dict[str, Any], key: str, name: str | None = None) -> list[Any]:
    value = payload.get(key)
    if value is None:
        return []
    if isinstance(value, list):
        return value
    raise MappingError(name or key, f"is not a list (it is {shape(value)})")


def read_flag(payload: dict[str, Any], key: str, name: str | None = None) -> bool:
    """A boolean; absent or null is false. "false" as text is not read as true."""
    value = payload.get(key)
    if value is None or isinstance(value, bool):
        return bool(value)
    raise MappingError(name or key, f"is not true or false (it is {shape(value)})")


def read_int(
    payload: dict[str, Any], key: str, *, low: int, high: int, name: str | None = None
) -> int | None:
    """A whole number within [low, high]; absent or null is None."""
    value = payload.get(key)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise MappingError(name or key, f"is not a whole number (it is {shape(value)})")
    if not low <= value <= high:
        raise MappingError(name or key, f"is out of range ({value} not within {low}..{high})")
    return value


# ---------------------------------------------------------------- fields


def info(default: Any = None) -> Any:
    """A field that travels with the record but is not synced content."""
    return field(default=default, compare=False, metadata={"synced": False})


def unordered(default: Any = ()) -> Any:
    """A tuple field whose order is kept but does not count as a change."""
    return field(default=default, metadata={"unordered": True})


# ---------------------------------------------------------------- text

# Control characters, and lone UTF-16 surrogates (JSON can carry "\ud800"; no
# database or UTF-8 encoder accepts them).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_LINE_TRAILING_WS = re.compile(r"[ \t]+\n")
_EMAIL_OK = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def norm_text(value: Any) -> str:
    """Trimmed single-value text: CRLF/CR become LF, control characters go."""
    if value is None:
        return ""
    if not isinstance(value, str):
        value = str(value)
    if "\r" in value:
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    if _CONTROL.search(value):
        value = _CONTROL.sub("", value)
    return value.replace("\xa0", " ").strip()


def norm_body(value: Any) -> str:
    """Multi-line text: like :func:`norm_text`, and no trailing blanks on lines.

    Trailing spaces carry no meaning in either system and HTML rendering loses
    them, so keeping them would make every HTML round trip look like an edit.
    """
    text = norm_text(value)
    if " \n" in text or "\t\n" in text:
        text = _LINE_TRAILING_WS.sub("\n", text)
    return text


def norm_email(value: Any) -> str:
    return norm_text(value).lower()


def valid_email(value: str) -> bool:
    return bool(_EMAIL_OK.match(value))


def truncate(value: str, limit: int, name: str, warnings: list[str]) -> str:
    """Cut text to a Salesforce field length, noting it on the record.

    Truncation happens when the canonical record is built (both directions), so
    both sides agree on the stored value and the cut never looks like an edit.
    """
    if len(value) <= limit:
        return value
    warnings.append(f"{name}: truncated from {len(value)} to {limit} characters")
    return value[:limit].rstrip()


# ---------------------------------------------------------------- dates

YEARS = (1700, 4000)
_ISO = re.compile(
    r"^(\d{4})-(\d\d)-(\d\d)(?:[T ](\d\d):(\d\d)(?::(\d\d)(?:[.,]\d+)?)?)?"
    r"\s*(Z|[+-]\d\d:?\d\d)?$"
)


def parse_iso(value: str, name: str) -> tuple[datetime, bool]:
    """Parse an ISO-8601 date-time of any precision (Graph sends 7 digits).

    Returns a naive datetime (seconds kept) and whether an offset was given;
    with an offset the datetime is returned aware.
    """
    m = _ISO.match(value.strip()) if isinstance(value, str) and len(value) <= 64 else None
    if not m:
        raise MappingError(name, f"not an ISO-8601 date-time: {show(value)}")
    y, mo, d, hh, mi, ss, off = m.groups()
    if not YEARS[0] <= int(y) <= YEARS[1]:
        # Salesforce stores 1700–4000 only; the bound also keeps zone arithmetic
        # clear of datetime's own limits.
        raise MappingError(name, f"date-time {show(value)} is outside the years 1700–4000")
    try:
        dt = datetime(int(y), int(mo), int(d), int(hh or 0), int(mi or 0), int(ss or 0))
    except ValueError as exc:
        raise MappingError(name, f"invalid date-time {show(value)}: {exc}") from None
    if off is None:
        return dt, False
    if off == "Z":
        return dt.replace(tzinfo=UTC), True
    sign = 1 if off[0] == "+" else -1
    digits = off[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:])
    if hours > 23 or minutes > 59:
        raise MappingError(name, f"invalid offset in {show(value)}")
    delta = timedelta(hours=hours, minutes=minutes)
    return (dt - sign * delta).replace(tzinfo=UTC), True


def utc_minute(dt: datetime) -> datetime:
    """Aware UTC, truncated to the minute (what both sides reliably keep)."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).replace(second=0, microsecond=0)


def parse_sf_datetime(value: Any, name: str) -> datetime | None:
    """Salesforce dateTime (``2024-05-01T15:00:00.000+0000``) → UTC minute."""
    if value is None or value == "":
        return None
    dt, aware = parse_iso(value, name)
    return utc_minute(dt if aware else dt.replace(tzinfo=UTC))


def format_sf_datetime(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def parse_date(value: Any, name: str) -> date | None:
    """A date; a date-time's date part as written (never shifted by zone)."""
    if value is None or value == "":
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise MappingError(name, f"is not a date (it is {shape(value)})")
    dt, _ = parse_iso(value[:10], name)
    return dt.date()


# ---------------------------------------------------------------- canonical base


_SPECS: dict[type, tuple[tuple[str, bool], ...]] = {}


def _field_specs(cls: type) -> tuple[tuple[str, bool], ...]:
    specs = _SPECS.get(cls)
    if specs is None:
        specs = tuple(
            (f.name, f.metadata.get("unordered", False))
            for f in dataclasses.fields(cls)
            if f.metadata.get("synced", True)
        )
        _SPECS[cls] = specs
    return specs


def _jsonable(value: Any, *, unordered_: bool = False) -> Any:
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()[:16] + "Z"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, tuple | list):
        items = [_jsonable(v) for v in value]
        return sorted(items) if unordered_ else items
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            name: _jsonable(getattr(value, name), unordered_=unordered)
            for name, unordered in _field_specs(type(value))
        }
    return value


class Canonical:
    """Base of the canonical records: equality and hashing by projection."""

    KIND: ClassVar[str] = ""
    # Fields that only make sense together merge as one unit (an event's start
    # and end, for instance): taking the start from one side and the end from
    # the other could produce an event that ends before it starts.
    MERGE_GROUPS: ClassVar[tuple[tuple[str, ...], ...]] = ()

    def projection(self) -> dict[str, Any]:
        """The synced fields as JSON-able values (what is hashed and compared).

        A copy each time: the caller may keep or change it (a link's snapshot)."""
        return _json_copy(self._projection())

    def _projection(self) -> dict[str, Any]:
        """The projection itself, worked out once per record (records are frozen): a run
        compares, hashes and logs each record several times. Read-only: never hand it out."""
        cached = self.__dict__.get("_projection_cache")
        if cached is None:
            cached = _jsonable(self)
            object.__setattr__(self, "_projection_cache", cached)
        return cached  # type: ignore[return-value]

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._projection() == other._projection()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(canonical_hash(self))


def synced_fields(c: Canonical | type[Canonical]) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(c) if f.metadata.get("synced", True))  # type: ignore[arg-type]


def _json_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_copy(v) for v in value]
    return value


def canonical_hash(c: Canonical) -> str:
    """sha256 of the sorted-key JSON of the canonical projection (kept on the record once known)."""
    cached = c.__dict__.get("_hash_cache")
    if cached is None:
        payload = {"kind": c.KIND, "v": PROJECTION_VERSION, "fields": c._projection()}
        raw = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        cached = hashlib.sha256(raw.encode("utf-8")).hexdigest()
        object.__setattr__(c, "_hash_cache", cached)
    return cached


def diff_fields(a: Canonical, b: Canonical) -> set[str]:
    """Names of the synced fields whose values differ between a and b."""
    if type(a) is not type(b):
        raise TypeError(f"cannot diff {type(a).__name__} with {type(b).__name__}")
    pa, pb = a._projection(), b._projection()
    return {name for name in pa if pa[name] != pb[name]}


@dataclass(frozen=True)
class FieldConflict:
    """The same field (or merge group) changed differently on both sides.

    ``kept`` holds the winner's values, ``lost`` the loser's (for the run log),
    both as JSON-able projections keyed by field name.
    """

    fields: tuple[str, ...]
    winner: str
    kept: dict[str, Any]
    lost: dict[str, Any]


def _groups(cls: type[Canonical]) -> list[tuple[str, ...]]:
    names = synced_fields(cls)
    grouped = {n for g in cls.MERGE_GROUPS for n in g}
    return list(cls.MERGE_GROUPS) + [(n,) for n in names if n not in grouped]


def merge3(
    base: Canonical | None,
    ours: Canonical,
    theirs: Canonical,
    winner: Literal["ours", "theirs"],
) -> tuple[Canonical, tuple[FieldConflict, ...]]:
    """Field-level three-way merge against the last synced snapshot.

    A field changed on one side only takes that side's value; changed on both
    sides to the same value is no conflict; changed on both sides differently
    takes the winner's value and reports the loser's in the conflicts. With no
    snapshot (``base`` None) every difference is a conflict. Non-synced fields
    (warnings, attendees, zone) come from ``ours`` — the engine passes the
    Outlook side as ``ours``.
    """
    if winner not in ("ours", "theirs"):
        raise ValueError("winner must be 'ours' or 'theirs'")
    cls = type(ours)
    if type(theirs) is not cls or (base is not None and type(base) is not cls):
        raise TypeError("merge3 needs three records of the same kind")
    pb = base.projection() if base is not None else None
    po, pt = ours.projection(), theirs.projection()
    values: dict[str, Any] = {}
    conflicts: list[FieldConflict] = []
    for group in _groups(cls):
        o = {n: po[n] for n in group}
        t = {n: pt[n] for n in group}
        b = {n: pb[n] for n in group} if pb is not None else None
        if o == t or (b is not None and t == b):
            source = ours
        elif b is not None and o == b:
            source = theirs
        else:
            source = ours if winner == "ours" else theirs
            kept, lost = (o, t) if winner == "ours" else (t, o)
            conflicts.append(FieldConflict(fields=group, winner=winner, kept=kept, lost=lost))
        for n in group:
            values[n] = getattr(source, n)
    merged = dataclasses.replace(ours, **values)  # type: ignore[type-var]
    return merged, tuple(conflicts)


def dedupe(items: Iterable[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for item in items:
        if item and item not in seen:
            seen[item] = None
    return tuple(seen)


def get_path(payload: dict[str, Any], *path: str) -> Any:
    cur: Any = payload
    for key in path:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(key)
    return cur


# ---------------------------------------------------------------- HTML ⇄ text
#
# Outlook bodies are HTML, Salesforce descriptions plain text. The reader keeps
# line structure (block tags and <br> are line breaks), collapses source
# whitespace as a browser does, and keeps whitespace that was written as an
# entity (&nbsp;, &#9;) literally. The writer escapes, wraps each line in a
# <div> (an empty line becomes <div><br></div>, as Outlook on the web writes
# it) and spells repeated or leading spaces as &nbsp;, so text → HTML → text is
# the identity on normalized text.

_BLOCK_TAGS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "center",
        "dd",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "tbody",
        "thead",
        "tfoot",
        "tr",
        "ul",
    ]
)
_SKIP_TAGS = frozenset({"head", "script", "style", "title", "template"})
_HTML_WS = re.compile(r"([ \t\n\r\f]+)")


class _HtmlText:
    __slots__ = ("out", "pending_space", "at_line_start", "skip", "pre")

    def __init__(self) -> None:
        self.out: list[str] = []
        self.pending_space = False
        self.at_line_start = True
        self.skip = 0
        self.pre = 0

    def literal(self, s: str) -> None:
        if not s:
            return
        if self.pending_space and not self.at_line_start:
            self.out.append(" ")
        self.pending_space = False
        self.out.append(s)
        self.at_line_start = s.endswith("\n")

    def newline(self) -> None:
        self.out.append("\n")
        self.at_line_start = True
        self.pending_space = False

    def block_edge(self) -> None:
        if not self.at_line_start:
            self.newline()
        self.pending_space = False

    def data(self, d: str) -> None:
        if self.skip:
            return
        if self.pre:
            self.literal(d.replace("\r\n", "\n"))
            return
        for part in _HTML_WS.split(d):
            if not part:
                continue
            if part[0] in " \t\n\r\f":
                self.pending_space = True
            else:
                self.literal(part)


# One regex pass instead of html.parser: Outlook bodies carry kilobytes of
# style and conditional comments, and the engine maps thousands per run.
_TOKEN = re.compile(
    r"""
    <!--.*?(?:-->|\Z)
    |<!\[CDATA\[(?P<cdata>.*?)(?:\]\]>|\Z)
    |<[!?][^>]*>
    |<(?P<end>/)?(?P<tag>[a-zA-Z][\w:.-]*)(?:"[^"]*"|'[^']*'|[^'">])*>
    |&(?P<ent>\#[0-9]{1,7}|\#[xX][0-9a-fA-F]{1,6}|[a-zA-Z][a-zA-Z0-9]{0,31});?
    |(?P<text>[^<&]+)
    |(?P<other>[<&])
    """,
    re.S | re.X,
)
_RAW_TEXT_TAGS = frozenset({"script", "style"})


def html_to_text(html_text: str | None) -> str:
    """Outlook HTML body → normalized plain text with its line breaks."""
    if not html_text:
        return ""
    from html import unescape

    t = _HtmlText()
    pos, n = 0, len(html_text)
    while pos < n:
        m = _TOKEN.match(html_text, pos)
        pos = m.end()
        if (text := m.group("text")) is not None:
            t.data(text)
        elif (tag := m.group("tag")) is not None:
            tag = tag.lower()
            if m.group("end"):
                if tag in _SKIP_TAGS:
                    t.skip = max(0, t.skip - 1)
                elif tag in _BLOCK_TAGS:
                    if tag == "pre":
                        t.pre = max(0, t.pre - 1)
                    if not t.skip:
                        t.block_edge()
                continue
            if tag in _RAW_TEXT_TAGS:
                close = re.compile(rf"</{tag}\s*>", re.I).search(html_text, pos)
                pos = close.end() if close else n
            elif tag in _SKIP_TAGS:
                t.skip += 1
            elif t.skip:
                continue
            elif tag == "br":
                t.newline()
            elif tag in _BLOCK_TAGS:
                if tag == "pre" and not m.group(0).endswith("/>"):
                    t.pre += 1
                t.block_edge()
            elif tag in ("td", "th") and not t.at_line_start:
                t.pending_space = True
        elif m.group("ent") is not None:
            if not t.skip:
                raw = m.group(0)
                char = unescape(raw if raw.endswith(";") else raw + ";")
                t.literal(raw if char == raw + ";" else char)
        elif (cdata := m.group("cdata")) is not None:
            t.data(cdata)
        elif (other := m.group("other")) is not None:
            t.data(other)
    return norm_body("".join(t.out))


_LEADING_OR_REPEATED_SPACE = re.compile(r"^ | (?= )|(?<= ) ")


def text_to_html(text: str | None) -> str:
    """Plain text → an HTML body Outlook shows with the same lines."""
    from html import escape

    lines = norm_body(text).split("\n") if text else []
    parts = ["<html><body>"]
    for line in lines:
        if not line:
            parts.append("<div><br></div>")
            continue
        esc = escape(line, quote=False).replace("\t", "&#9;")
        esc = _LEADING_OR_REPEATED_SPACE.sub("&nbsp;", esc)
        parts.append(f"<div>{esc}</div>")
    parts.append("</body></html>")
    return "".join(parts)
