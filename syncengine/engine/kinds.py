"""Per-kind glue between remote payloads, the mapping layer and the engine.

Everything kind-specific the engine needs, in one place: which Salesforce
object and fields, where our link key sits on each side, which items are in
scope under the member's policy, the secondary match key, and the request
bodies (mapping output plus our key on creates).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from .mapping import MappingError, canonical_hash
from .mapping import contacts as m_contacts
from .mapping import events as m_events
from .mapping import tasks as m_tasks
from .mapping.common import norm_text, read_flag, shape, show
from .records import OUTLOOK, SALESFORCE, EnginePolicy, Item

logger = logging.getLogger(__name__)

CALENDAR, CONTACTS, TASKS = "calendar", "contacts", "tasks"
KINDS = (CALENDAR, CONTACTS, TASKS)

# Our single-value extended property on Outlook events and contacts. A fixed
# GUID and name: every named property costs a slot in the mailbox's quota.
KEY_PROPERTY_ID = "String {8a3f2c61-5d0b-4e8e-9c47-1b6d2e9f4a10} Name LinkPointKey"
# To Do tasks carry no extended properties; a linkedResource holds the key.
LINKED_APP = "LinkPoint"
SF_KEY_FIELD = "LinkPoint_Key__c"

SOBJECT = {CALENDAR: "Event", CONTACTS: "Contact", TASKS: "Task"}
_SYSTEM = ("Id", "SystemModstamp", "IsDeleted", "OwnerId", SF_KEY_FIELD)
SF_FIELDS = {
    CONTACTS: _SYSTEM
    + (
        "AccountId",
        "Account.Name",
        "FirstName",
        "LastName",
        "Email",
        "LinkPoint_Email2__c",
        "LinkPoint_Email3__c",
        "Phone",
        "OtherPhone",
        "MobilePhone",
        "HomePhone",
        "Title",
        "Department",
        "MailingStreet",
        "MailingCity",
        "MailingState",
        "MailingPostalCode",
        "MailingCountry",
    ),
    TASKS: _SYSTEM
    + (
        "Subject",
        "Description",
        "Status",
        "Priority",
        "ActivityDate",
        "IsReminderSet",
        "ReminderDateTime",
        "CompletedDateTime",
        "IsClosed",
    ),
    CALENDAR: _SYSTEM
    + (
        "Subject",
        "Description",
        "Location",
        "IsAllDayEvent",
        "StartDateTime",
        "EndDateTime",
        "ActivityDate",
        "ActivityDateTime",
        "DurationInMinutes",
        "ShowAs",
        "IsPrivate",
        "IsReminderSet",
        "ReminderDateTime",
        "IsRecurrence",
        "IsRecurrence2",
        "Recurrence2PatternText",
        "Recurrence2PatternTimeZone",
        "Recurrence2PatternStartDate",
        "IsRecurrence2Exception",
        "IsRecurrence2Exclusion",
        "IsChild",
    ),
}
# Fields the mapping writes that this org's Contact lacks (no "middle names").
_SF_UNSUPPORTED = {CONTACTS: ("MiddleName",)}


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    def covers(self, start: datetime | None, end: datetime | None) -> bool:
        if start is None:
            return True
        end = end or start
        return end > self.start and start < self.end


def calendar_window(policy: EnginePolicy, now: datetime) -> Window:
    """Whole UTC days, so the window (and the delta link bound to it) moves once a day."""
    today = now.astimezone(UTC).date()
    start = datetime.combine(today - timedelta(days=policy.days_back), time(0), tzinfo=UTC)
    end = datetime.combine(today + timedelta(days=policy.days_ahead + 1), time(0), tzinfo=UTC)
    return Window(start, end)


def _event_bounds(rec: Any) -> tuple[datetime | None, datetime | None]:
    if getattr(rec, "is_all_day", False) and rec.start_date:
        s = datetime.combine(rec.start_date, time(0), tzinfo=UTC)
        e = datetime.combine(rec.end_date or rec.start_date, time(0), tzinfo=UTC)
        return s, e
    return getattr(rec, "start", None), getattr(rec, "end", None)


# ---------------------------------------------------------------- scope


def in_scope(
    kind: str,
    rec: Any,
    policy: EnginePolicy,
    now: datetime,
    *,
    raw: dict | None = None,
    side: str = OUTLOOK,
) -> bool:
    return not scope_reason(kind, rec, policy, now, raw=raw, side=side)


def scope_reason(
    kind: str,
    rec: Any,
    policy: EnginePolicy,
    now: datetime,
    *,
    raw: dict | None = None,
    side: str = OUTLOOK,
) -> str:
    """Why an item is outside what the member syncs ("" when it is inside): the
    item trace names the rule (engine.why.RULES)."""
    if rec is None:
        return ""
    if kind == CALENDAR:
        if rec.is_private and not policy.include_private:
            return "private"
        s, e = _event_bounds(rec)
        if rec.recurrence is None and not calendar_window(policy, now).covers(s, e):
            return "out_of_range"
    if kind == TASKS and rec.status == "completed":
        done = rec.completed_at
        if done is not None and done < now - timedelta(days=policy.completed_within_days):
            return "completed_long_ago"
    if side == OUTLOOK and policy.outlook_category_filter and raw is not None:
        wanted = policy.outlook_category_filter.strip().casefold()
        categories = raw.get("categories")
        categories = categories if isinstance(categories, list) else ()
        if wanted not in {str(c).casefold() for c in categories}:
            return "category_filter"
    return ""


# ---------------------------------------------------------------- reading


# Identity fields are stored in columns of these lengths (SyncLink, SyncLogEntry).
_ID_LIMITS = {
    "id": 512,
    "iCalUId": 512,
    "changeKey": 128,
    "@odata.etag": 128,
    "Id": 18,
    "SystemModstamp": 40,
    SF_KEY_FIELD: 64,
    "externalId": 64,
    "value": 64,
}
_ID_BAD = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
_SF_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _text(payload: dict, key: str) -> str:
    """An identity field (id, version, key): text that fits its column, or a
    MappingError naming it."""
    value = payload.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise MappingError(key, f"is not text (it is {shape(value)})")
    limit = _ID_LIMITS.get(key, 512)
    if len(value) > limit or _ID_BAD.search(value):
        raise MappingError(key, f"is not a usable identifier ({show(value, 40)})")
    if key == "Id" and value and not _SF_ID.match(value):
        raise MappingError(key, f"is not a Salesforce record id ({show(value, 40)})")
    return value


def _our_key(value: str) -> str | None:
    """Our link key, lower-cased; a value that is not a UUID was not written by us."""
    value = value.strip().lower()
    return value if _UUID.match(value) else None


def _entries(payload: dict, key: str) -> list[dict]:
    value = payload.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise MappingError(key, f"is not a list (it is {shape(value)})")
    return [v for v in value if isinstance(v, dict)]


def outlook_link_key(kind: str, payload: dict) -> str | None:
    """Our key on a Graph item. Unreadable where ours should be is a MappingError:
    an item whose key we cannot read must not be matched (or created) as new."""
    if kind == TASKS:
        for res in _entries(payload, "linkedResources"):
            if res.get("applicationName") == LINKED_APP:
                return _our_key(_text(res, "externalId"))
        return None
    for prop in _entries(payload, "singleValueExtendedProperties"):
        if str(prop.get("id", "")).casefold() == KEY_PROPERTY_ID.casefold():
            return _our_key(_text(prop, "value"))
    return None


def exception_reason(payload: dict) -> str:
    """Why a changed occurrence read on its own (not through its series) is passed over.

    Occurrences sync with their series: the engine reads a series master's
    ``/instances`` and writes each changed or cancelled occurrence to the
    matching Salesforce occurrence record (engine.series). An exception payload
    met anywhere else must never be adopted or created as an event of its own
    (it carries its master's extended properties, our key included).
    """
    subject = payload.get("subject")
    subject = norm_text(subject)[:80] if isinstance(subject, str) else ""
    original = payload.get("originalStart")
    original = original[:16].replace("T", " ") if isinstance(original, str) else ""
    when = f" originally on {original} UTC" if original else ""
    return (
        f"the occurrence of “{subject or '(no subject)'}”{when} is synced with its series, "
        "not as an event of its own"
    )


_NOUN = {
    OUTLOOK: {CALENDAR: "Outlook event", CONTACTS: "Outlook contact", TASKS: "To Do task"},
    SALESFORCE: {
        CALENDAR: "Salesforce Event",
        CONTACTS: "Salesforce Contact",
        TASKS: "Salesforce Task",
    },
}
_NAME_FIELDS = {
    OUTLOOK: {
        CALENDAR: (("subject",),),
        CONTACTS: (("displayName",), ("givenName", "surname"), ("companyName",)),
        TASKS: (("title",),),
    },
    SALESFORCE: {
        CALENDAR: (("Subject",),),
        CONTACTS: (("FirstName", "LastName"),),
        TASKS: (("Subject",),),
    },
}


def item_label(side: str, kind: str, payload: Any, item_id: str = "") -> str:
    """How a log entry names an item, read from whatever of its payload is readable:
    `Outlook contact “Ada Lovelace”`, else the item's id."""
    noun = _NOUN[side][kind]
    if isinstance(payload, dict):
        for names in _NAME_FIELDS[side][kind]:
            parts = [payload.get(n) for n in names]
            text = " ".join(norm_text(p) for p in parts if isinstance(p, str) and norm_text(p))
            text = " ".join(text.split())
            if text:
                return f"{noun} “{text[:80]}”"
    return f"{noun} {item_id[:40]}" if item_id else f"{noun} (without an id)"


def outlook_item(
    kind: str,
    payload: Any,
    policy: EnginePolicy,
    now: datetime,
    *,
    container: str = "",
    item_id: str = "",
) -> Item:
    """Map one Graph payload (a delta entry or a GET answer) to an Item. Total: a
    payload it cannot read is an Item with `error` (the field named), never an
    exception and never a deletion. `item_id`: the id asked for (a GET answer)."""
    base: dict[str, Any] = {"side": OUTLOOK, "id": item_id, "container": container}
    try:
        if not isinstance(payload, dict):
            raise MappingError("payload", f"is not a Graph item (it is {shape(payload)})")
        base["id"] = _text(payload, "id") or item_id
        if not base["id"]:
            raise MappingError("id", "is missing")
        if "@removed" in payload:
            return Item(**base, deleted=True)
        base["version"] = _text(payload, "changeKey") or _text(payload, "@odata.etag")
        base["link_key"] = outlook_link_key(kind, payload)
        base["ical_uid"] = _text(payload, "iCalUId")
        _categories(payload)
        if kind == CALENDAR:
            event_type = _text(payload, "type")
            if event_type == "exception":
                # No link key: an exception carries its master's extended
                # properties, and must never be adopted as the series itself.
                base.pop("link_key")
                base.pop("ical_uid")
                return Item(
                    **base, error=str(MappingError("recurrence", exception_reason(payload)))
                )
            if event_type == "occurrence":
                raise MappingError("recurrence", "occurrences of a series sync with the series")
            if read_flag(payload, "isCancelled"):
                base.pop("ical_uid")
                return Item(**base, deleted=True)
            rec = m_events.from_graph(payload)
        elif kind == CONTACTS:
            rec = m_contacts.from_graph(payload)
        else:
            rec = m_tasks.from_graph(payload)
        return Item(
            **base,
            record=rec,
            hash=canonical_hash(rec),
            in_scope=in_scope(kind, rec, policy, now, raw=payload),
            raw_json=json.dumps(payload, separators=(",", ":")),
        )
    except MappingError as exc:
        return Item(**base, error=str(exc), label=item_label(OUTLOOK, kind, payload, base["id"]))
    except Exception as exc:  # the last line of "one item never stops a run"
        return _unexpected(OUTLOOK, kind, payload, base, exc)


def _categories(payload: dict) -> None:
    value = payload.get("categories")
    if value is not None and (
        not isinstance(value, list) or not all(isinstance(c, str) for c in value)
    ):
        raise MappingError("categories", f"is not a list of text (it is {shape(value)})")


def _unexpected(side: str, kind: str, payload: Any, base: dict, exc: Exception) -> Item:
    """A mapper bug, not bad data we foresaw: the item is an error like any other
    (the run goes on), and the traceback goes to the operators' log."""
    logger.exception(
        "Unexpected error mapping %s %s item %s", side, kind, str(base.get("id", ""))[:40]
    )
    error = f"payload: could not be read ({type(exc).__name__})"
    return Item(**base, error=error, label=item_label(side, kind, payload, base.get("id", "")))


# What `SalesforceSide.get_many` answers for a record asked by id when the answer
# holds a record without a readable Id: it may be any of them, so none is "gone".
UNREADABLE_ROW: Any = object()


def sf_item(
    kind: str,
    row: Any,
    policy: EnginePolicy,
    now: datetime,
    *,
    snapshot_hint: Callable[[str], dict | None] | None = None,
    item_id: str = "",
) -> Item:
    """Map one Salesforce row. `snapshot_hint(sf_id)` gives the linked item's
    last synced canonical projection, for what this org cannot store. Total, like
    `outlook_item`: an unreadable row is an Item with `error`, never a deletion."""
    base: dict[str, Any] = {"side": SALESFORCE, "id": item_id}
    try:
        if row is UNREADABLE_ROW:
            raise MappingError("Id", "Salesforce answered the read without a readable Id")
        if not isinstance(row, dict):
            raise MappingError("record", f"is not a Salesforce record (it is {shape(row)})")
        base["id"] = _text(row, "Id") or item_id
        if not base["id"]:
            raise MappingError("Id", "is missing")
        base["version"] = _text(row, "SystemModstamp")
        base["link_key"] = _our_key(_text(row, SF_KEY_FIELD))
        # Only a real `true` is a deletion: an unreadable flag must not delete anything.
        if read_flag(row, "IsDeleted"):
            return Item(**base, deleted=True)
        if kind == CALENDAR:
            if read_flag(row, "IsChild"):
                raise MappingError("IsChild", "an invitee's copy of someone else's event")
            rec = m_events.from_salesforce(row, time_zone=policy.time_zone)
        elif kind == CONTACTS:
            snap = (snapshot_hint(base["id"]) if snapshot_hint else None) or {}
            rec = m_contacts.from_salesforce(row, unrelated_company=snap.get("company"))
            if snap.get("middle_name"):
                # The Contact here has no MiddleName field: Salesforce cannot say
                # anything about it, so it keeps the synced value.
                rec = dataclasses.replace(rec, middle_name=snap["middle_name"])
        else:
            rec = m_tasks.from_salesforce(row)
        return Item(
            **base,
            record=rec,
            hash=canonical_hash(rec),
            in_scope=in_scope(kind, rec, policy, now, side=SALESFORCE),
        )
    except MappingError as exc:
        return Item(**base, error=str(exc), label=item_label(SALESFORCE, kind, row, base["id"]))
    except Exception as exc:  # see outlook_item
        return _unexpected(SALESFORCE, kind, row, base, exc)


# ---------------------------------------------------------------- attendees → WhoId


def member_addresses(membership) -> frozenset[str]:
    """The member's own addresses: never the Contact an event is about."""
    from connections.selectors import connection_for

    out = {(membership.user.email or "").lower()}
    for provider in ("microsoft", "salesforce"):
        conn = connection_for(membership, provider)
        name = (getattr(conn, "account_name", "") or "").lower() if conn else ""
        if "@" in name:
            out.add(name)
    return frozenset(a for a in out if a)


def relate_event_contacts(
    sf: Any,
    records: list[Any],
    bodies: list[dict],
    *,
    own: frozenset[str],
    sf_ids: list[str | None] | None = None,
) -> list[str]:
    """Put the first attendee's matching Contact on each Event body as ``WhoId``.

    Attendees come from Outlook only (the organizer and the member left out)
    and are looked up among the member's Contacts by any of their e-mails, in
    one query for the whole batch. ``sf_ids`` (updates): an Event that already
    has a WhoId keeps it — whoever set it, we never replace or clear it.
    Returns a log note per item ("" when there is nothing to say).
    """
    wanted = [
        [a for a in getattr(rec, "attendees", ()) if a and a not in own]
        if not getattr(rec, "is_private", False)
        else []
        for rec in records
    ]
    notes = [""] * len(records)
    for i, rec in enumerate(records):
        if getattr(rec, "is_private", False) and any(
            a not in own for a in getattr(rec, "attendees", ())
        ):
            notes[i] = (
                "Private event: not related to a Contact (Salesforce relates no private events)."
            )
    emails = {a for cands in wanted for a in cands}
    if not emails:
        return notes
    found = sf.contacts_by_email(emails)
    matches = [next((found[a] for a in cands if a in found), None) for cands in wanted]
    current: dict[str, str | None] = {}
    if sf_ids is not None:
        check = [sid for sid, m in zip(sf_ids, matches, strict=True) if sid and m]
        current = sf.event_who_ids(check) if check else {}
    for i, (cands, match, body) in enumerate(zip(wanted, matches, bodies, strict=True)):
        if not cands:
            continue
        if match is None:
            shown = ", ".join(cands[:5]) + (" …" if len(cands) > 5 else "")
            notes[i] = (
                f"No Salesforce Contact with the attendee e-mail {shown}: event left unrelated."
            )
            continue
        if sf_ids is not None and current.get(sf_ids[i] or ""):
            continue  # a Contact is already related (the user's choice or ours): keep it
        body["WhoId"] = match
    return notes


# ---------------------------------------------------------------- matching


def secondary_key(kind: str, rec: Any) -> str | None:
    """A cheap identity for first-sync matching; None when the record has none."""
    if rec is None:
        return None
    if kind == CONTACTS:
        return f"email:{rec.emails[0]}" if rec.emails else None
    if kind == TASKS:
        if not rec.title:
            return None
        return f"task:{rec.title.casefold()}|{rec.due_date or ''}"
    if not rec.subject:
        return None
    s, e = (rec.start_date, rec.end_date) if rec.is_all_day else (rec.start, rec.end)
    return f"event:{rec.subject.casefold()}|{_iso(s)}|{_iso(e)}"


def _iso(v: date | datetime | None) -> str:
    return v.isoformat() if v is not None else ""


# ---------------------------------------------------------------- writing


def outlook_body(
    kind: str,
    rec: Any,
    *,
    key: str,
    create: bool,
    existing: dict | None,
    policy: EnginePolicy,
    stamp_key: bool = False,
    replaces: str = "",
) -> dict:
    """The Graph body for `rec`. `replaces`: on a create, the iCalUId of the event
    this link last had in Outlook (the user deleted it), "" on the link's first copy."""
    if kind == CALENDAR:
        body = m_events.to_graph(rec, existing=existing, time_zone=policy.time_zone)
    elif kind == CONTACTS:
        body = m_contacts.to_graph(rec, existing=existing)
    else:
        body = m_tasks.to_graph(rec, existing=existing)
    if stamp_key and not create and kind != TASKS:
        body["singleValueExtendedProperties"] = [{"id": KEY_PROPERTY_ID, "value": key}]
    if create:
        if kind == TASKS:
            body["linkedResources"] = [
                {"applicationName": LINKED_APP, "displayName": "Salesforce", "externalId": key}
            ]
        else:
            body["singleValueExtendedProperties"] = [{"id": KEY_PROPERTY_ID, "value": key}]
        if kind == CALENDAR:
            body["transactionId"] = create_transaction_id(key, replaces)
    return body


def series_horizon(policy: EnginePolicy, now: datetime | None = None) -> date:
    """The last day a series without end is written to Salesforce up to: the end of
    the calendar range (days ahead), as the organization sets it (recurrence.py)."""
    return calendar_window(policy, now or datetime.now(UTC)).end.date() - timedelta(days=1)


def create_transaction_id(key: str, replaces: str = "") -> str:
    """Graph de-duplicates a create whose transactionId it has seen, deleted events
    included: a retried create must send the same id (the link's key), and a new copy
    replacing a deleted one (modify beats delete) a new one, or Graph answers it with
    the deleted event. Derived from what it replaces, so its retries repeat it too."""
    if not replaces:
        return key
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"linkpoint:{key}:{replaces}"))


def sf_body(kind: str, rec: Any, *, key: str | None, create: bool, policy: EnginePolicy) -> dict:
    if kind == CALENDAR:
        body = m_events.to_salesforce(
            rec, time_zone=policy.time_zone, create=create, horizon=series_horizon(policy)
        )
    elif kind == CONTACTS:
        body = m_contacts.to_salesforce(rec)
    else:
        body = m_tasks.to_salesforce(rec)
    for name in _SF_UNSUPPORTED.get(kind, ()):
        body.pop(name, None)
    if create and key:
        body[SF_KEY_FIELD] = key
    return body
