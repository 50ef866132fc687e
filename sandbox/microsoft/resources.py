"""Graph resource shapes: validate incoming JSON and serialise stored items as Graph does."""

from __future__ import annotations

import datetime as dt
import html
import re
from dataclasses import dataclass

from . import recurrence as rec
from .models import Item, ItemKind
from .wire import (
    UTC,
    dtz,
    fmt_local,
    fmt_offset,
    id_occurrence_parts,
    occurrence_id,
    parse_iso,
    to_utc,
    zone,
)


class GraphError(Exception):
    """Raised by services and views; the view layer turns it into Graph's error envelope."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def bad_request(code: str, message: str) -> GraphError:
    return GraphError(400, code, message)


EVENT_FIELDS = {
    "subject", "body", "start", "end", "isAllDay", "location", "locations", "showAs", "sensitivity",
    "importance", "isReminderOn", "reminderMinutesBeforeStart", "categories", "recurrence", "attendees",
    "organizer", "responseRequested", "allowNewTimeProposals", "isOnlineMeeting", "onlineMeetingProvider",
    "hideAttendees", "isDraft", "originalStartTimeZone", "originalEndTimeZone", "transactionId",
    "singleValueExtendedProperties", "multiValueExtendedProperties", "extensions",
}
CONTACT_FIELDS = {
    "givenName", "middleName", "surname", "displayName", "fileAs", "initials", "nickName", "title",
    "generation", "jobTitle", "department", "companyName", "profession", "manager", "assistantName",
    "officeLocation", "emailAddresses", "businessPhones", "homePhones", "mobilePhone", "imAddresses",
    "businessAddress", "homeAddress", "otherAddress", "birthday", "personalNotes", "businessHomePage",
    "spouseName", "children", "categories", "yomiGivenName", "yomiSurname", "yomiCompanyName",
    "singleValueExtendedProperties", "multiValueExtendedProperties", "extensions",
}
TASK_FIELDS = {
    "title", "body", "status", "importance", "isReminderOn", "reminderDateTime", "dueDateTime",
    "startDateTime", "completedDateTime", "categories", "recurrence", "linkedResources", "checklistItems",
    "extensions",
}
LIST_FIELDS = {"displayName", "extensions"}
ENUMS = {
    "showAs": {"free", "tentative", "busy", "oof", "workingElsewhere", "unknown"},
    "sensitivity": {"normal", "personal", "private", "confidential"},
    "importance": {"low", "normal", "high"},
    "status": {"notStarted", "inProgress", "completed", "waitingOnOthers", "deferred"},
}
READ_ONLY = {"id", "changeKey", "createdDateTime", "lastModifiedDateTime", "iCalUId", "type", "seriesMasterId",
             "originalStart", "bodyPreview", "webLink", "isOrganizer", "hasAttachments", "parentFolderId",
             "isCancelled", "responseStatus", "wellknownListName", "isOwner", "isShared",
             "bodyLastModifiedDateTime"}
_EXT_ID = re.compile(r"^(String|Integer|Boolean|SystemTime|Double|Binary|Guid) (\{[0-9a-fA-F-]{36}\} (Name \S.*|Id 0x[0-9a-fA-F]+)|0x[0-9a-fA-F]+)$")


def _entity_type(kind: str) -> str:
    return {ItemKind.EVENT: "event", ItemKind.CONTACT: "contact", ItemKind.TODO_LIST: "todoTaskList",
            ItemKind.TODO_TASK: "todoTask"}[kind]


def check_fields(kind: str, payload: dict, allowed: set[str]) -> None:
    if not isinstance(payload, dict):
        raise bad_request("RequestBodyRead", "Cannot read the request body: a JSON object is expected.")
    for key, value in payload.items():
        if key.startswith("@odata.") or key in READ_ONLY:
            continue
        if key not in allowed:
            raise bad_request(
                "RequestBodyRead",
                f"The property '{key}' does not exist on type 'microsoft.graph.{_entity_type(kind)}'. "
                "Make sure to only use property names that are defined by the type or mark the type as open type.",
            )
        if key in ENUMS and value is not None and (not isinstance(value, str) or value not in ENUMS[key]):
            raise bad_request("RequestBodyRead", f"Requested value '{str(value)[:80]}' was not found.")
    from . import edm  # the value types, checked before anything is written

    edm.check_entity({ItemKind.EVENT: edm.EVENT, ItemKind.CONTACT: edm.CONTACT, ItemKind.TODO_TASK: edm.TASK,
                      ItemKind.TODO_LIST: edm.TODO_LIST}[kind], payload)


def ext_props_from(payload: dict) -> dict[str, str] | None:
    props = payload.get("singleValueExtendedProperties")
    if props is None:
        return None
    out = {}
    for prop in props:
        pid, value = (prop or {}).get("id"), (prop or {}).get("value")
        if not isinstance(pid, str) or not _EXT_ID.match(pid) or value is None:
            raise bad_request("ErrorInvalidProperty", "The extended property id or value is invalid.")
        out[pid] = str(value)
    return out


# --- dateTimeTimeZone ---------------------------------------------------------------

def parse_dtz(value, field: str) -> tuple[dt.datetime, str, dt.tzinfo]:
    """(naive wall time, zone name as given, tzinfo) from a dateTimeTimeZone."""
    if not isinstance(value, dict) or not value.get("dateTime"):
        raise bad_request("ErrorInvalidRequest", f"The '{field}' property must have a dateTime value.")
    name = value.get("timeZone") or "UTC"
    tz = zone(name)
    if tz is None:
        raise bad_request(
            "TimeZoneNotSupportedException",
            f"A valid TimeZone value must be specified. The following TimeZone value is not supported: '{name}'.",
        )
    parsed = parse_iso(value["dateTime"])
    if parsed is None:
        raise bad_request("ErrorInvalidRequest", f"The value of '{field}.dateTime' is not a valid date and time.")
    local, offset = parsed
    if offset is not None:  # an explicit offset wins; keep the wall time in the named zone
        local = local.replace(tzinfo=offset).astimezone(tz).replace(tzinfo=None)
    return local, name, tz


@dataclass
class EventTimes:
    start_utc: dt.datetime
    end_utc: dt.datetime
    series_end_utc: dt.datetime | None
    is_master: bool


def event_times(data: dict) -> EventTimes:
    """Validate start/end/isAllDay/recurrence of an event's data; compute the UTC columns."""
    try:
        return _event_times(data)
    except OverflowError:
        raise bad_request("ErrorInvalidRequest", "The event's dates are outside the supported range.") from None


def _event_times(data: dict) -> EventTimes:
    start, start_zone, start_tz = parse_dtz(data.get("start"), "start")
    end, _, end_tz = parse_dtz(data.get("end"), "end")
    start_utc, end_utc = to_utc(start, start_tz), to_utc(end, end_tz)
    if end_utc < start_utc:
        raise bad_request("ErrorCalendarEndDateIsEarlierThanStartDate", "The end date occurs before the start date.")
    if data.get("isAllDay"):
        if start.time() != dt.time(0) or end.time() != dt.time(0) or end <= start:
            raise bad_request(
                "ErrorPropertyValidationFailure",
                "The start and end times of an all-day event must be midnight and at least one day apart.",
            )
        # All-day events float: the wall dates hold whatever zone the viewer is in.
        start_utc, end_utc = start.replace(tzinfo=UTC), end.replace(tzinfo=UTC)
    recurrence = data.get("recurrence")
    if not recurrence:
        return EventTimes(start_utc, end_utc, end_utc, False)
    problem = rec.validate(recurrence, start.date())
    if problem:
        raise bad_request("ErrorPropertyValidationFailure", problem)
    last = rec.last_date(recurrence)
    series_end = None
    if last is not None:
        series_end = occurrence_span(data, last)[1]
    return EventTimes(start_utc, end_utc, series_end, True)


def occurrence_span(data: dict, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """UTC start and end of the series occurrence on `day` (wall time kept across DST)."""
    start, _, start_tz = parse_dtz(data["start"], "start")
    end, _, end_tz = parse_dtz(data["end"], "end")
    local_start = dt.datetime.combine(day, start.time())
    local_end = local_start + (end - start)
    if data.get("isAllDay"):
        return local_start.replace(tzinfo=UTC), local_end.replace(tzinfo=UTC)
    return to_utc(local_start, start_tz), to_utc(local_end, end_tz)


def series_occurrences(master: Item, window: tuple[dt.datetime, dt.datetime] | None,
                       *, horizon: tuple[dt.datetime, dt.datetime] | None = None) -> list[tuple[dt.datetime, dt.datetime]]:
    """(start_utc, end_utc) of the master's generated occurrences overlapping the window."""
    bounds = window or horizon
    if bounds is None:
        raise ValueError("a window is required to expand a series")
    until = (bounds[1] + dt.timedelta(days=2)).date()
    out = []
    for day in rec.occurrence_dates(master.data["recurrence"], until=until):
        start_utc, end_utc = occurrence_span(master.data, day)
        if start_utc < bounds[1] and end_utc > bounds[0]:
            out.append((start_utc, end_utc))
    return out


# --- serialisation ----------------------------------------------------------------

@dataclass
class View:
    """How the caller asked to see items: Prefer zone, $select, expansions."""

    base: str  # https://graph.sandbox.test/v1.0
    tz_name: str = "UTC"
    tz: dt.tzinfo = UTC
    select: frozenset[str] | None = None
    expand_ext: tuple[str, ...] = ()  # extended property ids to include
    expand_linked: bool = False
    body_type: str = "html"  # Prefer: outlook.body-content-type (event bodies)


def etag(change_key: str) -> str:
    return f'W/"{change_key}"'


def _time_out(value: dict, view: View, all_day: bool) -> dict:
    local, _, tz = parse_dtz(value, "start")
    if all_day:  # reported as the same wall date whatever zone is asked for
        return {"dateTime": f"{local:%Y-%m-%dT%H:%M:%S}.0000000", "timeZone": view.tz_name}
    return dtz(to_utc(local, tz), view.tz_name, view.tz)


def _preview(body: dict | None) -> str:
    content = (body or {}).get("content") or ""
    if (body or {}).get("contentType", "text").lower() == "html":
        content = html.unescape(re.sub(r"<[^>]+>", " ", content))
    return re.sub(r"\s+", " ", content).strip()[:255]


# --- event bodies -------------------------------------------------------------------
# Graph keeps an event body as it was written and answers in HTML unless the request says
# `Prefer: outlook.body-content-type="text"`; it converts on the way out either way
# (learn.microsoft.com/graph/api/resources/event, "body"; learn.microsoft.com/graph/api/event-get,
# "Support various time zones" / "Prefer: outlook.body-content-type").
_HEAD = re.compile(r"<(head|style|script|title)\b[^>]*>.*?</\1\s*>", re.I | re.S)
_BREAK = re.compile(r"<br\s*/?>", re.I)
_BREAK_AT_END = re.compile(r"<br\s*/?>\s*(?=</(?:div|p|li|h[1-6])\s*>)", re.I)
_SPACE = re.compile(r"[ \t\r\n\f]+")
_BLOCK_END = re.compile(r"</(div|p|li|tr|h[1-6]|table|ul|ol|blockquote|pre)\s*>", re.I)
_TAG = re.compile(r"<[^>]+>")


def body_as_text(content: str) -> str:
    """An HTML body as Exchange's plain text: CRLF line ends, markup and head dropped."""
    text = _HEAD.sub("", content or "")
    text = _SPACE.sub(" ", text)  # source layout is not content; &nbsp; is
    text = _BREAK_AT_END.sub("", text)  # <div><br></div> is one empty line
    text = _BREAK.sub("\n", text)
    text = _BLOCK_END.sub("\n", text)
    lines = [line.strip(" ") for line in html.unescape(_TAG.sub("", text)).split("\n")]
    lines = [line.replace("\xa0", " ").rstrip() for line in lines]
    while lines and not lines[-1]:
        lines.pop()
    while lines and not lines[0]:
        lines.pop(0)
    return "\r\n".join(lines)


def body_as_html(content: str) -> str:
    """A plain-text body as the HTML Exchange hands out for it."""
    lines = (content or "").replace("\r\n", "\n").split("\n")
    inner = "<br>\r\n".join(html.escape(line, quote=False) for line in lines)
    return ('<html>\r\n<head>\r\n<meta http-equiv="Content-Type" content="text/html; charset=utf-8">'
            f'\r\n</head>\r\n<body>\r\n<div class="PlainText">{inner}</div>\r\n</body>\r\n</html>\r\n')


def body_out(body: dict | None, view: View) -> dict:
    body = body or {"contentType": "html", "content": ""}
    stored = (body.get("contentType") or "text").lower()
    content = body.get("content") or ""
    if view.body_type == "text":
        return {"contentType": "text", "content": body_as_text(content) if stored == "html" else content}
    if stored == "html" or not content:
        return {"contentType": "html", "content": content}
    return {"contentType": "html", "content": body_as_html(content)}


# --- recurrence as Graph returns it ----------------------------------------------------
# Graph answers with every property of patternedRecurrence, defaults included, whatever
# was posted (learn.microsoft.com/graph/api/resources/patternedrecurrence,
# recurrencepattern and recurrencerange).
_PATTERN_DEFAULTS = {"type": None, "interval": 1, "month": 0, "dayOfMonth": 0, "daysOfWeek": [],
                     "firstDayOfWeek": "sunday", "index": "first"}
_RANGE_DEFAULTS = {"type": None, "startDate": None, "endDate": "0001-01-01", "recurrenceTimeZone": None,
                   "numberOfOccurrences": 0}


def recurrence_out(recurrence: dict | None, start_zone: str) -> dict | None:
    if not recurrence:
        return None
    pattern = {**_PATTERN_DEFAULTS, **{k: v for k, v in (recurrence.get("pattern") or {}).items()
                                       if v is not None}}
    rng = {**_RANGE_DEFAULTS, **{k: v for k, v in (recurrence.get("range") or {}).items() if v is not None}}
    rng["recurrenceTimeZone"] = rng["recurrenceTimeZone"] or start_zone
    return {"pattern": pattern, "range": rng}


def _with_ext(out: dict, item_props: dict, view: View) -> dict:
    if view.expand_ext:
        props = [{"id": pid, "value": item_props[pid]} for pid in view.expand_ext if pid in item_props]
        if props:
            out["singleValueExtendedProperties"] = props
    return out


def _select(out: dict, view: View) -> dict:
    if view.select is None:
        return out
    keep = {"@odata.etag", "@odata.type", "id", "singleValueExtendedProperties", "linkedResources"} | view.select
    return {k: v for k, v in out.items() if k in keep}


def event_json(item: Item, view: View, *, occurrence: tuple[dt.datetime, dt.datetime] | None = None) -> dict:
    """A stored event, or (with `occurrence`) a generated occurrence of the master `item`."""
    data = item.data
    all_day = bool(data.get("isAllDay"))
    mailbox = item.mailbox
    if occurrence is not None:
        start_utc, end_utc = occurrence
        ident = occurrence_id(item.graph_id, start_utc)
        kind, master_id, original = "occurrence", item.graph_id, start_utc

        # The generated instant, in UTC (all-day: the floating wall date stored as UTC).
        start_value = {"dateTime": fmt_local(start_utc.replace(tzinfo=None)), "timeZone": "UTC"}
        end_value = {"dateTime": fmt_local(end_utc.replace(tzinfo=None)), "timeZone": "UTC"}
        ical = item.ical_uid[:-8] + f"{int(start_utc.timestamp()) & 0xFFFFFFFF:08X}"
    else:
        ident, kind = item.graph_id, item.event_type
        master_id = item.parent.graph_id if item.parent_id else None
        original = item.original_start
        start_value, end_value = data["start"], data["end"]
        ical = item.ical_uid
    out = {
        "@odata.etag": etag(item.change_key),
        "id": ident,
        "createdDateTime": fmt_offset(item.created),
        "lastModifiedDateTime": fmt_offset(item.modified),
        "changeKey": item.change_key,
        "categories": data.get("categories") or [],
        "originalStartTimeZone": data.get("originalStartTimeZone") or data["start"].get("timeZone", "UTC"),
        "originalEndTimeZone": data.get("originalEndTimeZone") or data["end"].get("timeZone", "UTC"),
        "iCalUId": ical,
        "reminderMinutesBeforeStart": data.get("reminderMinutesBeforeStart", 15),
        "isReminderOn": data.get("isReminderOn", True),
        "hasAttachments": False,
        "subject": data.get("subject") or "",
        "bodyPreview": _preview(data.get("body")),
        "importance": data.get("importance") or "normal",
        "sensitivity": data.get("sensitivity") or "normal",
        "isAllDay": all_day,
        "isCancelled": False,
        "isOrganizer": True,
        "responseRequested": data.get("responseRequested", True),
        "seriesMasterId": master_id,
        "showAs": data.get("showAs") or "busy",
        "type": kind,
        "webLink": f"https://outlook.sandbox.test/owa/?itemid={ident}&exvsurl=1&path=/calendar/item",
        "onlineMeetingUrl": None,
        "isOnlineMeeting": bool(data.get("isOnlineMeeting")),
        "responseStatus": {"response": "organizer", "time": "0001-01-01T00:00:00Z"},
        "body": body_out(data.get("body"), view),
        "start": _time_out(start_value, view, all_day),
        "end": _time_out(end_value, view, all_day),
        "location": data.get("location") or {"displayName": "", "locationType": "default",
                                              "uniqueIdType": "unknown", "address": {}, "coordinates": {}},
        "locations": data.get("locations") or ([data["location"]] if data.get("location") else []),
        "recurrence": (recurrence_out(data.get("recurrence"), data["start"].get("timeZone") or "UTC")
                       if kind == "seriesMaster" else None),
        "attendees": data.get("attendees") or [],
        "organizer": data.get("organizer") or {
            "emailAddress": {"name": mailbox.display_name or mailbox.email, "address": mailbox.email}},
    }
    if original is not None:
        out["originalStart"] = fmt_offset(original)
    if item.transaction_id and occurrence is None:
        out["transactionId"] = item.transaction_id
    return _select(_with_ext(out, item.ext_props, view), view)


# The contact's own fields in the order served, each with its "unset" value (a list, an
# empty address or null); worked out once, not for every contact of a 1,000-item page.
_CONTACT_OUT = tuple(
    (key, "list" if key in ("emailAddresses", "businessPhones", "homePhones", "imAddresses", "children")
     else "dict" if key.endswith("Address") else None)
    for key in sorted(CONTACT_FIELDS - {"singleValueExtendedProperties", "multiValueExtendedProperties",
                                        "extensions", "categories"})
)


def contact_json(item: Item, view: View) -> dict:
    data = item.data
    out = {
        "@odata.etag": etag(item.change_key),
        "id": item.graph_id,
        "createdDateTime": fmt_offset(item.created),
        "lastModifiedDateTime": fmt_offset(item.modified),
        "changeKey": item.change_key,
        "categories": data.get("categories") or [],
        "parentFolderId": "AAMkAGNvbnRhY3RzAAA=",
    }
    for key, unset in _CONTACT_OUT:
        if key in data:
            out[key] = data[key]
        else:  # a fresh [] / {} each time: callers may change what they are given
            out[key] = [] if unset == "list" else {} if unset == "dict" else None
    if not out.get("displayName"):
        out["displayName"] = " ".join(p for p in (data.get("givenName"), data.get("surname")) if p) or (
            (data.get("emailAddresses") or [{}])[0].get("address") or "")
    return _select(_with_ext(out, item.ext_props, view), view)


def task_json(item: Item, view: View, linked: list[dict] | None = None) -> dict:
    data = item.data
    out = {
        "@odata.etag": etag(item.change_key),
        "importance": data.get("importance") or "normal",
        "isReminderOn": bool(data.get("isReminderOn")),
        "status": data.get("status") or "notStarted",
        "title": data.get("title") or "",
        "createdDateTime": fmt_offset(item.created),
        "lastModifiedDateTime": fmt_offset(item.modified),
        "hasAttachments": False,
        "categories": data.get("categories") or [],
        "id": item.graph_id,
        "body": data.get("body") or {"content": "", "contentType": "text"},
        "bodyLastModifiedDateTime": fmt_offset(item.modified),
    }
    for key in ("dueDateTime", "startDateTime", "reminderDateTime", "completedDateTime", "recurrence"):
        if data.get(key):
            out[key] = data[key]
    if data.get("dueDateTime"):
        # To Do keeps only the due date: it answers midnight UTC of the date as written, the
        # time and zone dropped (learn.microsoft.com/graph/api/resources/todotask "dueDateTime";
        # observed behaviour in microsoftgraph/microsoft-graph-docs issue 16991).
        wall = parse_iso(str(data["dueDateTime"].get("dateTime") or ""))
        if wall is not None:
            out["dueDateTime"] = {"dateTime": f"{wall[0]:%Y-%m-%d}T00:00:00.0000000", "timeZone": "UTC"}
    if view.expand_linked:
        out["linkedResources"] = linked if linked is not None else data.get("linkedResources") or []
    return _select(out, view)


def list_json(item: Item, view: View) -> dict:
    return {
        "@odata.etag": etag(item.change_key),
        "displayName": item.data.get("displayName") or "",
        "isOwner": True,
        "isShared": False,
        "wellknownListName": item.data.get("wellknownListName") or "none",
        "id": item.graph_id,
    }


def item_json(item: Item, view: View) -> dict:
    if item.kind == ItemKind.EVENT:
        return event_json(item, view)
    if item.kind == ItemKind.CONTACT:
        return contact_json(item, view)
    if item.kind == ItemKind.TODO_TASK:
        return task_json(item, view)
    return list_json(item, view)


def removed_json(kind: str, graph_id: str) -> dict:
    return {"@odata.type": f"#microsoft.graph.{_entity_type(kind)}", "id": graph_id, "@removed": {"reason": "deleted"}}


__all__ = ["GraphError", "View", "event_json", "contact_json", "task_json", "list_json", "item_json",
           "removed_json", "event_times", "series_occurrences", "id_occurrence_parts", "etag"]
