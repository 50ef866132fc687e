"""Tasks: Microsoft To Do ``todoTask`` ⇄ Salesforce ``Task``.

=================  ==========================================  =========================
canonical          Graph todoTask                              Salesforce Task
=================  ==========================================  =========================
title (≤255)       title                                       Subject
body (≤32,000)     body.content (HTML read as text; written    Description
                   as text)
status             status                                      Status (table below)
importance         importance                                  Priority (Low/Normal/High)
due_date (date)    dueDateTime {dateTime, timeZone}            ActivityDate
reminder_at        reminderDateTime + isReminderOn             ReminderDateTime + IsReminderSet
completed_at       completedDateTime (info only)               CompletedDateTime (read-only)
=================  ==========================================  =========================

Due dates: To Do stores a date as a midnight ``dateTime`` in some zone. The
date is read as written, in its own zone, never converted (converting
``2024-05-01T00:00 Pacific`` to UTC would keep the date, but
``2024-05-01T00:00 Tokyo`` would move to 30 April), and written back as
midnight UTC. Salesforce ``ActivityDate`` is a plain date. No day shift.

Reminders: ``reminder_at`` is the reminder instant in UTC to the minute, or
None when the reminder is off (a stale time under a switched-off reminder is
not content).

Completion: Salesforce sets ``CompletedDateTime`` itself when a task is saved
with a closed status, and To Do sets ``completedDateTime`` when the status
becomes completed, so the status drives completion and ``completed_at`` is
informational (not hashed, never written).

Statuses a Salesforce org added itself map by ``IsClosed`` (closed →
completed, open → notStarted) with a warning; unknown priorities map to normal.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from .common import (
    Canonical,
    MappingError,
    format_sf_datetime,
    html_to_text,
    info,
    norm_body,
    norm_text,
    parse_date,
    parse_sf_datetime,
    read_flag,
    read_object,
    read_text,
    show,
    truncate,
)
from .timezones import graph_wall, graph_wall_to_utc

STATUS_TO_SF = {
    "notStarted": "Not Started",
    "inProgress": "In Progress",
    "completed": "Completed",
    "waitingOnOthers": "Waiting on someone else",
    "deferred": "Deferred",
}
STATUS_FROM_SF = {v.casefold(): k for k, v in STATUS_TO_SF.items()}
IMPORTANCE_TO_SF = {"low": "Low", "normal": "Normal", "high": "High"}
IMPORTANCE_FROM_SF = {v.casefold(): k for k, v in IMPORTANCE_TO_SF.items()}

TITLE_MAX = 255
BODY_MAX = 32_000


@dataclass(frozen=True, eq=False)
class CanonicalTask(Canonical):
    KIND = "tasks"

    title: str = ""
    body: str = ""
    status: str = "notStarted"
    importance: str = "normal"
    due_date: date | None = None
    reminder_at: datetime | None = None
    completed_at: datetime | None = info(None)
    warnings: tuple[str, ...] = info(())


def _single_line(value: Any) -> str:
    text = norm_text(value)
    return " ".join(text.split()) if "\n" in text else text


def _build(warnings: list[str], **values: Any) -> CanonicalTask:
    values["title"] = truncate(_single_line(values.get("title")), TITLE_MAX, "title", warnings)
    values["body"] = truncate(norm_body(values.get("body")), BODY_MAX, "body", warnings)
    return CanonicalTask(warnings=tuple(warnings), **values)


# ---------------------------------------------------------------- Graph


def _graph_body(body: Any) -> str:
    """The text of a body object (one :func:`from_graph` accepted, or any value)."""
    if not isinstance(body, dict):
        return ""
    content = body.get("content") or ""
    content_type = body.get("contentType") or "text"
    if not isinstance(content, str) or not isinstance(content_type, str):
        return ""
    if content_type.lower() == "html":
        return html_to_text(content)
    return content


def _checked_body(payload: dict[str, Any]) -> str:
    body = read_object(payload, "body", "a body object")
    if body is not None:
        read_text(body, "content", "body.content")
        read_text(body, "contentType", "body.contentType")
    return _graph_body(body)


def from_graph(payload: dict[str, Any]) -> CanonicalTask:
    if not isinstance(payload, dict):
        raise MappingError("payload", "not a Graph todoTask object")
    status = read_text(payload, "status") or "notStarted"
    if status not in STATUS_TO_SF:
        raise MappingError("status", f"unknown To Do status {show(status)}")
    importance = read_text(payload, "importance") or "normal"
    if importance not in IMPORTANCE_TO_SF:
        raise MappingError("importance", f"unknown To Do importance {show(importance)}")
    due = payload.get("dueDateTime")
    due_date = graph_wall(due, "due_date")[0].date() if due else None
    reminder = None
    if read_flag(payload, "isReminderOn"):
        reminder = graph_wall_to_utc(payload.get("reminderDateTime"), "reminder_at")
    return _build(
        [],
        title=read_text(payload, "title"),
        body=_checked_body(payload),
        status=status,
        importance=importance,
        due_date=due_date,
        reminder_at=reminder,
        completed_at=graph_wall_to_utc(payload.get("completedDateTime"), "completed_at"),
    )


def _graph_utc(dt: datetime) -> dict[str, str]:
    return {"dateTime": dt.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"}


def to_graph(c: CanonicalTask, *, existing: dict[str, Any] | None = None) -> dict[str, Any]:
    """todoTask body. The body is rewritten only when its text changed, so a
    formatted To Do note is not flattened by an unrelated edit."""
    body: dict[str, Any] = {
        "title": c.title,
        "status": c.status,
        "importance": c.importance,
        "dueDateTime": (
            {"dateTime": f"{c.due_date.isoformat()}T00:00:00.0000000", "timeZone": "UTC"}
            if c.due_date
            else None
        ),
        "isReminderOn": c.reminder_at is not None,
        "reminderDateTime": _graph_utc(c.reminder_at) if c.reminder_at else None,
    }
    old_body = (existing or {}).get("body")
    if old_body and norm_body(_graph_body(old_body)) == c.body:
        body["body"] = old_body
    else:
        body["body"] = {"contentType": "text", "content": c.body}
    return body


# ---------------------------------------------------------------- Salesforce


def from_salesforce(record: dict[str, Any]) -> CanonicalTask:
    if not isinstance(record, dict):
        raise MappingError("record", "not a Salesforce Task record")
    warnings: list[str] = []
    raw_status = norm_text(read_text(record, "Status")) or "Not Started"
    status = STATUS_FROM_SF.get(raw_status.casefold())
    if status is None:
        status = "completed" if read_flag(record, "IsClosed") else "notStarted"
        warnings.append(f"status: Salesforce status {show(raw_status)} synced as {status}")
    raw_priority = norm_text(read_text(record, "Priority")) or "Normal"
    importance = IMPORTANCE_FROM_SF.get(raw_priority.casefold())
    if importance is None:
        importance = "normal"
        warnings.append(f"importance: Salesforce priority {show(raw_priority)} synced as normal")
    reminder = None
    if read_flag(record, "IsReminderSet"):
        reminder = parse_sf_datetime(read_text(record, "ReminderDateTime"), "reminder_at")
    return _build(
        warnings,
        title=read_text(record, "Subject"),
        body=read_text(record, "Description"),
        status=status,
        importance=importance,
        due_date=parse_date(read_text(record, "ActivityDate"), "due_date"),
        reminder_at=reminder,
        completed_at=parse_sf_datetime(read_text(record, "CompletedDateTime"), "completed_at"),
    )


def to_salesforce(c: CanonicalTask) -> dict[str, Any]:
    """Task body. CompletedDateTime is read-only: the status drives it."""
    return {
        "Subject": c.title or None,
        "Description": c.body or None,
        "Status": STATUS_TO_SF[c.status],
        "Priority": IMPORTANCE_TO_SF[c.importance],
        "ActivityDate": c.due_date.isoformat() if c.due_date else None,
        "IsReminderSet": c.reminder_at is not None,
        "ReminderDateTime": format_sf_datetime(c.reminder_at),
    }


__all__ = [
    "CanonicalTask",
    "IMPORTANCE_TO_SF",
    "STATUS_TO_SF",
    "from_graph",
    "from_salesforce",
    "to_graph",
    "to_salesforce",
]
