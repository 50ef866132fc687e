"""Per-kind glue between remote payloads, the mapping layer and the engine.

Everything kind-specific the engine needs, in one place: which Salesforce
object and fields, where our link key sits on each side, which items are in
scope under the member's policy, the secondary match key, and the request
bodies (mapping output plus our key on creates).
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from .mapping import MappingError, canonical_hash
from .mapping import contacts as m_contacts
from .mapping import events as m_events
from .mapping import tasks as m_tasks
from .records import OUTLOOK, SALESFORCE, EnginePolicy, Item

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
        if wanted not in {str(c).casefold() for c in raw.get("categories") or ()}:
            return "category_filter"
    return ""


# ---------------------------------------------------------------- reading


def outlook_link_key(kind: str, payload: dict) -> str | None:
    if kind == TASKS:
        for res in payload.get("linkedResources") or ():
            if isinstance(res, dict) and res.get("applicationName") == LINKED_APP:
                return (res.get("externalId") or "").lower() or None
        return None
    for prop in payload.get("singleValueExtendedProperties") or ():
        if (
            isinstance(prop, dict)
            and str(prop.get("id", "")).casefold() == KEY_PROPERTY_ID.casefold()
        ):
            return (prop.get("value") or "").lower() or None
    return None


def exception_reason(payload: dict) -> str:
    """Why one changed occurrence of an Outlook series is not synced on its own.

    Salesforce event series (Recurrence2) offer no way to change one
    occurrence through the API: a changed future occurrence changes the whole
    series, the exception and exclusion flags are read-only, and a series has
    no id to address its occurrences by (api_fidelity §3.1). Copying the
    occurrence as a separate single Event would put the meeting on the
    Salesforce calendar twice (the series still holds the original slot), and
    this engine never duplicates, so the occurrence is skipped and said so.
    """
    subject = (payload.get("subject") or "").strip()[:80] or "(no subject)"
    original = (payload.get("originalStart") or "")[:16].replace("T", " ")
    when = f" originally on {original} UTC" if original else ""
    return (
        f"the occurrence of “{subject}”{when} was changed on its own in Outlook; Salesforce "
        "event series cannot hold a changed single occurrence through the API, so the "
        "Salesforce series keeps that occurrence as the series defines it"
    )


def outlook_item(
    kind: str, payload: dict, policy: EnginePolicy, now: datetime, *, container: str = ""
) -> Item:
    """Map one Graph payload (a delta entry or a GET answer) to an Item."""
    item_id = payload.get("id") or ""
    if "@removed" in payload:
        return Item(side=OUTLOOK, id=item_id, deleted=True, container=container)
    version = payload.get("changeKey") or payload.get("@odata.etag") or ""
    key = outlook_link_key(kind, payload)
    ical = payload.get("iCalUId") or ""
    try:
        if kind == CALENDAR:
            if payload.get("type") == "exception":
                # No link key: an exception carries its master's extended
                # properties, and must never be adopted as the series itself.
                return Item(
                    side=OUTLOOK,
                    id=item_id,
                    version=version,
                    error=str(MappingError("recurrence", exception_reason(payload))),
                    container=container,
                )
            if payload.get("type") == "occurrence":
                raise MappingError("recurrence", "occurrences of a series sync with the series")
            if payload.get("isCancelled"):
                return Item(
                    side=OUTLOOK,
                    id=item_id,
                    version=version,
                    deleted=True,
                    link_key=key,
                    container=container,
                )
            rec = m_events.from_graph(payload)
        elif kind == CONTACTS:
            rec = m_contacts.from_graph(payload)
        else:
            rec = m_tasks.from_graph(payload)
    except MappingError as exc:
        return Item(
            side=OUTLOOK,
            id=item_id,
            version=version,
            link_key=key,
            error=str(exc),
            ical_uid=ical,
            container=container,
        )
    return Item(
        side=OUTLOOK,
        id=item_id,
        version=version,
        link_key=key,
        record=rec,
        hash=canonical_hash(rec),
        in_scope=in_scope(kind, rec, policy, now, raw=payload),
        ical_uid=ical,
        container=container,
        raw_json=json.dumps(payload, separators=(",", ":")),
    )


def sf_item(
    kind: str,
    row: dict,
    policy: EnginePolicy,
    now: datetime,
    *,
    snapshot_hint: Callable[[str], dict | None] | None = None,
) -> Item:
    """Map one Salesforce row. `snapshot_hint(sf_id)` gives the linked item's
    last synced canonical projection, for what this org cannot store."""
    item_id = row.get("Id") or ""
    version = row.get("SystemModstamp") or ""
    key = (row.get(SF_KEY_FIELD) or "").lower() or None
    if row.get("IsDeleted"):
        return Item(side=SALESFORCE, id=item_id, version=version, link_key=key, deleted=True)
    try:
        if kind == CALENDAR:
            if row.get("IsChild"):
                raise MappingError("IsChild", "an invitee's copy of someone else's event")
            rec = m_events.from_salesforce(row, time_zone=policy.time_zone)
        elif kind == CONTACTS:
            snap = (snapshot_hint(item_id) if snapshot_hint else None) or {}
            rec = m_contacts.from_salesforce(row, unrelated_company=snap.get("company"))
            if snap.get("middle_name"):
                # The Contact here has no MiddleName field: Salesforce cannot say
                # anything about it, so it keeps the synced value.
                rec = dataclasses.replace(rec, middle_name=snap["middle_name"])
        else:
            rec = m_tasks.from_salesforce(row)
    except MappingError as exc:
        return Item(side=SALESFORCE, id=item_id, version=version, link_key=key, error=str(exc))
    return Item(
        side=SALESFORCE,
        id=item_id,
        version=version,
        link_key=key,
        record=rec,
        hash=canonical_hash(rec),
        in_scope=in_scope(kind, rec, policy, now, side=SALESFORCE),
    )


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
        body = m_events.to_salesforce(rec, time_zone=policy.time_zone, create=create)
    elif kind == CONTACTS:
        body = m_contacts.to_salesforce(rec)
    else:
        body = m_tasks.to_salesforce(rec)
    for name in _SF_UNSUPPORTED.get(kind, ()):
        body.pop(name, None)
    if create and key:
        body[SF_KEY_FIELD] = key
    return body
