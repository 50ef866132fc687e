"""Calendar events: Graph ``event`` ⇄ Salesforce ``Event``.

=====================  ==================================  ===================================
canonical              Graph event                         Salesforce Event
=====================  ==================================  ===================================
subject (≤255)         subject                             Subject
body (≤32,000)         body (HTML → text, text → HTML)     Description (plain text)
location (≤255)        location.displayName                Location
is_all_day             isAllDay                            IsAllDayEvent
start / end (UTC)      start / end {dateTime, timeZone}    StartDateTime / EndDateTime
start_date / end_date  all-day start / end (end exclusive) ActivityDate + DurationInMinutes
show_as                showAs                              ShowAs (Free / Busy / OutOfOffice)
is_private             sensitivity private|confidential    IsPrivate
reminder_minutes       isReminderOn +                      IsReminderSet + ReminderDateTime
                       reminderMinutesBeforeStart
recurrence             recurrence (patternedRecurrence)    Recurrence2PatternText (RRULE)
attendees (info)       attendees[].emailAddress.address    (engine: WhoId by e-mail)
=====================  ==================================  ===================================

Timed events are UTC instants truncated to the minute. Graph wall times are
read in their own zone (Windows or IANA names, see ``timezones``); we write
them back in the event's zone (its ``originalStartTimeZone``, else the
member's zone, else UTC) — except a wall time in a fall-back overlap, which is
written in UTC because a wall time cannot say which of the two it means.

All-day events are dates, never instants, so no zone can shift them: Graph's
all-day ``start``/``end`` are midnights in the event's zone with an exclusive
end (2024-05-01 → 2024-05-02 for one day); the canonical keeps exactly those
two dates. Salesforce all-day events carry ``ActivityDate`` (the first day, a
plain date) and ``DurationInMinutes`` = 1440 × days; Salesforce reports
``EndDateTime`` as midnight UTC of the *last* day (inclusive end). We write
``IsAllDayEvent``, ``ActivityDate``, ``StartDateTime`` (midnight UTC of that
date, to keep ``ActivityDate`` consistent with it) and ``DurationInMinutes``,
never ``EndDateTime``, and read ``ActivityDate`` + ``DurationInMinutes``,
falling back to the inclusive ``EndDate``/``EndDateTime`` date. Design
assumption (api_fidelity §3.1/§7 mark the end convention unconfirmed).

Salesforce multiday events span at most 14 days; longer events raise
``MappingError("end", ...)``.

Show-as is lossy: Salesforce has Free / Busy / OutOfOffice only. Outlook
``tentative`` and ``unknown`` read as busy, ``workingElsewhere`` as free; when
the engine passes ``existing``, an Outlook value that still maps to the same
canonical value is kept (no tentative → busy rewrite). Sensitivity likewise.

Reminders are minutes before the start. For all-day events the start is
midnight of the first day in the member's zone (``time_zone``).

Attendees are read (lower-cased e-mails, in Outlook's order, the organizer
left out) so the engine can find the Salesforce Contact for ``WhoId``; they
are not synced content and ``to_graph`` never writes them (no invitations are
sent to customers). Salesforce's ``WhoId`` is never read back into attendees.
The engine (``kinds.relate_event_contacts``) looks the attendees up among the
member's Contacts (any of their three e-mails, one query per batch) and sets
the first match as ``WhoId`` on create, and on update only while the Event has
none: a WhoId the user chose is never replaced or cleared. Because attendees
are not content, an attendee-only edit in Outlook writes nothing; the next
content change brings the relation. Private events are never related.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from . import recurrence as rec
from .common import (
    Canonical,
    MappingError,
    dedupe,
    format_sf_datetime,
    html_to_text,
    info,
    norm_body,
    norm_email,
    norm_text,
    parse_date,
    parse_sf_datetime,
    read_flag,
    read_int,
    read_list,
    read_object,
    read_text,
    show,
    text_to_html,
    truncate,
)
from .recurrence import CanonicalRecurrence
from .timezones import (
    format_graph_wall,
    graph_wall,
    graph_wall_to_utc,
    graph_zone_name,
    iana_name,
    local_midnight_utc,
    resolve_zone,
    wall_time_is_exact,
)

SUBJECT_MAX = 255
BODY_MAX = 32_000
LOCATION_MAX = 255
MAX_DAYS = 14
MINUTES_PER_DAY = 1440
# Bounds on remote numbers, so arithmetic on them cannot overflow: Outlook offers
# reminders up to two weeks ahead; a duration past the multiday limit fails anyway.
REMINDER_MAX = 4 * 7 * MINUTES_PER_DAY
DURATION_MAX = 366 * MINUTES_PER_DAY

SHOW_AS_FROM_GRAPH = {
    "free": "free",
    "workingElsewhere": "free",
    "tentative": "busy",
    "busy": "busy",
    "unknown": "busy",
    "oof": "oof",
}
SHOW_AS_TO_SF = {"free": "Free", "busy": "Busy", "oof": "OutOfOffice"}
SHOW_AS_FROM_SF = {v.casefold(): k for k, v in SHOW_AS_TO_SF.items()}
PRIVATE_SENSITIVITIES = {"private", "confidential"}


@dataclass(frozen=True, eq=False)
class CanonicalEvent(Canonical):
    KIND = "calendar"
    MERGE_GROUPS = (("is_all_day", "start", "end", "start_date", "end_date"),)

    subject: str = ""
    body: str = ""
    location: str = ""
    is_all_day: bool = False
    start: datetime | None = None  # timed: aware UTC, to the minute
    end: datetime | None = None
    start_date: date | None = None  # all-day: first day
    end_date: date | None = None  # all-day: day after the last (exclusive)
    show_as: str = "busy"
    is_private: bool = False
    reminder_minutes: int | None = None  # None: no reminder
    recurrence: CanonicalRecurrence | None = None
    attendees: tuple[str, ...] = info(())
    time_zone: str = info("UTC")  # IANA; where the event lives (for writing)
    warnings: tuple[str, ...] = info(())

    @property
    def days(self) -> int:
        if self.is_all_day and self.start_date and self.end_date:
            return (self.end_date - self.start_date).days
        return 0

    @property
    def duration_minutes(self) -> int:
        if self.is_all_day:
            return self.days * MINUTES_PER_DAY
        assert self.start is not None and self.end is not None
        return int((self.end - self.start).total_seconds() // 60)


def _single_line(value: Any) -> str:
    text = norm_text(value)
    return " ".join(text.split()) if "\n" in text else text


def _build(warnings: list[str], **v: Any) -> CanonicalEvent:
    v["subject"] = truncate(_single_line(v.get("subject")), SUBJECT_MAX, "subject", warnings)
    v["body"] = truncate(norm_body(v.get("body")), BODY_MAX, "body", warnings)
    v["location"] = truncate(_single_line(v.get("location")), LOCATION_MAX, "location", warnings)
    if v["is_all_day"]:
        if v["end_date"] <= v["start_date"]:
            raise MappingError("end", "all-day event ends before it starts")
        if (v["end_date"] - v["start_date"]).days > MAX_DAYS:
            raise MappingError("end", f"longer than {MAX_DAYS} days (Salesforce multiday limit)")
    else:
        if v["end"] < v["start"]:
            raise MappingError("end", "event ends before it starts")
        if v["end"] - v["start"] > timedelta(days=MAX_DAYS):
            raise MappingError("end", f"longer than {MAX_DAYS} days (Salesforce multiday limit)")
    minutes = v.get("reminder_minutes")
    if minutes is not None and minutes < 0:
        warnings.append("reminder_minutes: reminder after the start synced as at the start")
        v["reminder_minutes"] = 0
    return CanonicalEvent(warnings=tuple(warnings), **v)


# ---------------------------------------------------------------- Graph


def _event_zone_name(payload: dict[str, Any]) -> str | None:
    """The event's own zone (IANA key), if Graph told us a usable one."""
    start = payload.get("start")
    for candidate in (
        payload.get("originalStartTimeZone"),
        start.get("timeZone") if isinstance(start, dict) else None,
    ):
        if candidate:
            try:
                return iana_name(candidate)
            except MappingError:
                continue
    return None


def _all_day_date(value: Any, payload: dict[str, Any], name: str) -> date:
    wall, _zone = graph_wall(value, name)
    if wall.time() == time(0, 0):
        return wall.date()
    # Some responses carry all-day bounds converted to the Prefer zone (UTC by
    # default); midnight in the event's own zone recovers the date unshifted.
    own = payload.get("originalStartTimeZone")
    if own and isinstance(own, str):
        instant = graph_wall_to_utc(value, name)
        local = instant.astimezone(resolve_zone(own))
        if local.time() == time(0, 0):
            return local.date()
    raise MappingError(name, "all-day event does not start and end at midnight")


def _graph_body_text(payload: dict[str, Any]) -> str:
    body = read_object(payload, "body", "a body object") or {}
    content = read_text(body, "content", "body.content") or ""
    content_type = read_text(body, "contentType", "body.contentType") or "html"
    return html_to_text(content) if content_type.lower() == "html" else content


def _address(value: Any) -> str:
    """An ``{emailAddress: {address}}`` entry's address, "" when it has none readable.

    Attendees and the organizer are not synced content (they only choose the
    Contact an event is related to), so an unreadable entry is passed over.
    """
    inner = value.get("emailAddress") if isinstance(value, dict) else None
    address = inner.get("address") if isinstance(inner, dict) else None
    return norm_email(address) if isinstance(address, str) else ""


def from_graph(payload: dict[str, Any]) -> CanonicalEvent:
    if not isinstance(payload, dict):
        raise MappingError("payload", "not a Graph event object")
    if not payload.get("start") or not payload.get("end"):
        raise MappingError("start", "event without start or end")
    is_all_day = read_flag(payload, "isAllDay")
    when: dict[str, Any] = {"is_all_day": is_all_day}
    if is_all_day:
        when["start_date"] = _all_day_date(payload["start"], payload, "start")
        when["end_date"] = _all_day_date(payload["end"], payload, "end")
    else:
        when["start"] = graph_wall_to_utc(payload["start"], "start")
        when["end"] = graph_wall_to_utc(payload["end"], "end")
    text = _graph_body_text(payload)
    recurrence = payload.get("recurrence")
    reminder = None
    if read_flag(payload, "isReminderOn"):
        reminder = (
            read_int(payload, "reminderMinutesBeforeStart", low=-REMINDER_MAX, high=REMINDER_MAX)
            or 0
        )
    # The organizer is never the customer the event is about (often it is the
    # member; when not, it is whoever sent the invitation), so it is left out.
    organizer = _address(payload.get("organizer"))
    attendees = tuple(
        a
        for a in dedupe(_address(a) for a in read_list(payload, "attendees"))
        if a and a != organizer
    )
    show_as = read_text(payload, "showAs") or "busy"
    if show_as not in SHOW_AS_FROM_GRAPH:
        raise MappingError("show_as", f"unknown showAs {show(show_as)}")
    location = read_object(payload, "location", "a location object") or {}
    c = _build(
        [],
        subject=read_text(payload, "subject"),
        body=text,
        location=read_text(location, "displayName", "location.displayName"),
        show_as=SHOW_AS_FROM_GRAPH[show_as],
        is_private=(read_text(payload, "sensitivity") or "normal") in PRIVATE_SENSITIVITIES,
        reminder_minutes=reminder,
        recurrence=rec.from_graph(recurrence) if recurrence else None,
        attendees=attendees,
        time_zone=_event_zone_name(payload) or "UTC",
        **when,
    )
    if c.recurrence is not None:
        # A series Salesforce cannot hold exactly is an item-level skip here, when
        # it is read, never an error halfway through writing it.
        first = c.start_date if c.is_all_day else c.start.astimezone(series_zone(c)).date()
        rec.check_writable(c.recurrence, start=first)
    return c


def _graph_time(instant: datetime, zone_name: str) -> dict[str, str]:
    zone = resolve_zone(zone_name)
    if wall_time_is_exact(instant, zone):
        wall = instant.astimezone(zone).replace(tzinfo=None)
        return {"dateTime": format_graph_wall(wall), "timeZone": graph_zone_name(zone_name)}
    return {
        "dateTime": format_graph_wall(instant.astimezone(UTC).replace(tzinfo=None)),
        "timeZone": "UTC",
    }


def to_graph(
    c: CanonicalEvent, *, existing: dict[str, Any] | None = None, time_zone: str | None = None
) -> dict[str, Any]:
    """Graph event body (create or absolute update). Never writes attendees.

    ``existing`` is the current Graph payload (zone, HTML body, richer show-as
    and sensitivity are kept when the canonical value is unchanged);
    ``time_zone`` is the member's zone for new events.
    """
    existing = existing or {}
    own = c.time_zone if c.recurrence is not None and not c.is_all_day else None
    zone_name = (existing and _event_zone_name(existing)) or own or time_zone or c.time_zone
    zone_name = zone_name or "UTC"
    zone_name = iana_name(zone_name)
    body: dict[str, Any] = {"subject": c.subject, "isAllDay": c.is_all_day}
    if c.is_all_day:
        graph_zone = graph_zone_name(zone_name)
        body["start"] = {
            "dateTime": f"{c.start_date.isoformat()}T00:00:00.0000000",
            "timeZone": graph_zone,
        }
        body["end"] = {
            "dateTime": f"{c.end_date.isoformat()}T00:00:00.0000000",
            "timeZone": graph_zone,
        }
        local_start = c.start_date
    else:
        body["start"] = _graph_time(c.start, zone_name)
        body["end"] = _graph_time(c.end, zone_name)
        local_start = c.start.astimezone(resolve_zone(zone_name)).date()

    old_body = existing.get("body")
    if old_body and _body_text(old_body) == c.body:
        body["body"] = old_body
    else:
        body["body"] = {"contentType": "html", "content": text_to_html(c.body)}

    old_location = existing.get("location")
    if old_location and _single_line(old_location.get("displayName")) == c.location:
        body["location"] = old_location
    else:
        body["location"] = {"displayName": c.location}

    old_show = existing.get("showAs")
    body["showAs"] = old_show if SHOW_AS_FROM_GRAPH.get(old_show) == c.show_as else c.show_as
    old_sens = existing.get("sensitivity") or "normal"
    if (old_sens in PRIVATE_SENSITIVITIES) == c.is_private and existing:
        body["sensitivity"] = old_sens
    else:
        body["sensitivity"] = "private" if c.is_private else "normal"

    body["isReminderOn"] = c.reminder_minutes is not None
    if c.reminder_minutes is not None:
        body["reminderMinutesBeforeStart"] = c.reminder_minutes
    if c.recurrence is not None:
        body["recurrence"] = rec.to_graph(
            c.recurrence, start_date=local_start, time_zone=graph_zone_name(zone_name)
        )
    elif existing.get("recurrence"):
        body["recurrence"] = None
    return body


def _body_text(body: dict[str, Any]) -> str:
    return norm_body(_graph_body_text({"body": body}))


# ---------------------------------------------------------------- Salesforce


def from_salesforce(record: dict[str, Any], *, time_zone: str = "UTC") -> CanonicalEvent:
    """Salesforce Event → canonical. ``time_zone`` is the member's zone (used for
    all-day reminders and for series without ``Recurrence2PatternTimeZone``)."""
    if not isinstance(record, dict):
        raise MappingError("record", "not a Salesforce Event record")
    zone_key = iana_name(time_zone)
    warnings: list[str] = []
    is_all_day = read_flag(record, "IsAllDayEvent")
    when: dict[str, Any] = {"is_all_day": is_all_day}
    duration = read_int(record, "DurationInMinutes", low=0, high=DURATION_MAX)
    if is_all_day:
        first = parse_date(
            read_text(record, "ActivityDate") or read_text(record, "StartDateTime"), "start_date"
        )
        if first is None:
            raise MappingError("start_date", "all-day event without ActivityDate")
        days = 1
        last = parse_date(
            read_text(record, "EndDate") or read_text(record, "EndDateTime"), "end_date"
        )
        if duration:
            days = max(1, -(-duration // MINUTES_PER_DAY))
        elif last is not None:
            days = max(1, (last - first).days + 1)
        when.update(start_date=first, end_date=first + timedelta(days=days))
        anchor = local_midnight_utc(first, resolve_zone(zone_key))
    else:
        start = parse_sf_datetime(
            read_text(record, "StartDateTime") or read_text(record, "ActivityDateTime"), "start"
        )
        if start is None:
            raise MappingError("start", "event without StartDateTime")
        end = parse_sf_datetime(read_text(record, "EndDateTime"), "end")
        if end is None:
            end = start + timedelta(minutes=duration or 0)
        when.update(start=start, end=end)
        anchor = start

    reminder = None
    if read_flag(record, "IsReminderSet"):
        at = parse_sf_datetime(read_text(record, "ReminderDateTime"), "reminder_minutes")
        if at is not None:
            reminder = int((anchor - at).total_seconds() // 60)

    raw_show = norm_text(read_text(record, "ShowAs")) or "Busy"
    show_as = SHOW_AS_FROM_SF.get(raw_show.casefold())
    if show_as is None:
        show_as = "busy"
        warnings.append(f"show_as: Salesforce ShowAs {show(raw_show)} synced as busy")

    recurrence = None
    event_zone = zone_key
    if read_flag(record, "IsRecurrence"):
        raise MappingError(
            "recurrence",
            "Salesforce Classic recurring events (IsRecurrence) are not synced; "
            "only event series (Recurrence2) are",
        )
    pattern = read_text(record, "Recurrence2PatternText")
    if read_flag(record, "IsRecurrence2") and pattern:
        pattern_zone = resolve_zone(read_text(record, "Recurrence2PatternTimeZone") or zone_key)
        first_day = when.get("start_date") or when["start"].astimezone(pattern_zone).date()
        recurrence = rec.from_rrule(pattern, zone=pattern_zone, start=first_day)
        if not is_all_day:
            event_zone = pattern_zone.key  # Outlook gets the series in Salesforce's zone

    return _build(
        warnings,
        subject=read_text(record, "Subject"),
        body=read_text(record, "Description"),
        location=read_text(record, "Location"),
        show_as=show_as,
        is_private=read_flag(record, "IsPrivate"),
        reminder_minutes=reminder,
        recurrence=recurrence,
        time_zone=event_zone,
        **when,
    )


def series_zone(c: CanonicalEvent, member_zone: str | None = None):
    """The zone a series' days, wall-clock time and end belong to: the event's own
    (Outlook's organizer zone), never the member's; all-day series are dates,
    held by Salesforce at midnight UTC, so UTC."""
    if c.is_all_day:
        return resolve_zone("UTC")
    return resolve_zone(c.time_zone or member_zone or "UTC")


def to_salesforce(
    c: CanonicalEvent,
    *,
    time_zone: str | None = None,
    create: bool = False,
    horizon: date | None = None,
) -> dict[str, Any]:
    """Event sObject body.

    ``time_zone``: the member's zone (all-day reminders); defaults to the
    event's zone. The series itself is written in the event's own zone
    (:func:`series_zone`); ``horizon``: the last day a series without end is
    written up to (see ``recurrence``). ``create``: include the series fields
    (``IsRecurrence2``, ``Recurrence2PatternText``, ``Recurrence2PatternTimeZone``);
    Salesforce does not let them change after creation, so updates leave them
    out; a changed pattern re-creates the Salesforce series (engine.series).
    """
    zone = resolve_zone(time_zone or c.time_zone or "UTC")
    body: dict[str, Any] = {
        "Subject": c.subject or None,
        "Description": c.body or None,
        "Location": c.location or None,
        "ShowAs": SHOW_AS_TO_SF[c.show_as],
        "IsPrivate": c.is_private,
        "IsAllDayEvent": c.is_all_day,
    }
    if c.is_all_day:
        start = datetime.combine(c.start_date, time(0, 0), tzinfo=UTC)
        body.update(
            ActivityDate=c.start_date.isoformat(),
            StartDateTime=format_sf_datetime(start),
            DurationInMinutes=c.days * MINUTES_PER_DAY,
        )
        anchor = local_midnight_utc(c.start_date, zone)
    else:
        body.update(
            StartDateTime=format_sf_datetime(c.start),
            EndDateTime=format_sf_datetime(c.end),
            DurationInMinutes=c.duration_minutes,
        )
        anchor = c.start
    body["IsReminderSet"] = c.reminder_minutes is not None
    body["ReminderDateTime"] = (
        format_sf_datetime(anchor - timedelta(minutes=c.reminder_minutes))
        if c.reminder_minutes is not None
        else None
    )
    if c.recurrence is not None:
        # Validate on every call (an unwritable pattern is an item error either
        # way), but send the series fields on create only: Salesforce fixes
        # IsRecurrence2 and the pattern when the series is created.
        pattern_zone = series_zone(c, time_zone)
        first_day = c.start_date if c.is_all_day else c.start.astimezone(pattern_zone).date()
        rrule = rec.to_rrule(c.recurrence, zone=pattern_zone, start=first_day, horizon=horizon)
        if create:
            body["IsRecurrence2"] = True
            body["Recurrence2PatternText"] = rrule
            body["Recurrence2PatternTimeZone"] = pattern_zone.key
    return body


__all__ = [
    "CanonicalEvent",
    "CanonicalRecurrence",
    "SHOW_AS_FROM_GRAPH",
    "SHOW_AS_TO_SF",
    "from_graph",
    "from_salesforce",
    "to_graph",
    "to_salesforce",
]
