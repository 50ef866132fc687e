"""Reads of the SnapRecord calendar page, the Relate panel and the SnapFields settings.

Remote reads go through the product's clients only. The week's events are one
Graph `calendarView` page, kept in Django's cache (shared by every process and
worker, never one process's memory) for WEEK_CACHE_SECONDS under a key made of
the membership and the exact range, so paging back and forth or a Record click
re-renders without asking Graph again, and an Outlook edit shows within a
minute. Each event's state comes from our links (one query) and, when any
event on screen is linked, one SOQL (`queryAll`) that sees Events deleted in
Salesforce. Describe metadata is cached per Salesforce org for DESCRIBE_SECONDS.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import zoneinfo
from dataclasses import dataclass, field

from django.core.cache import cache
from django.utils import timezone

from .models import LinkState, SnapField, SyncLink, SyncRun

log = logging.getLogger(__name__)

CALENDAR = "calendar"
WEEK_CACHE_SECONDS = 60
DESCRIBE_SECONDS = 600
PAGE_SIZE = 250  # one calendarView page per screen; a busier week says so
SOSL_RESERVED = set("?&|!{}[]()^~*:\\\"'+-")
WHO_TYPES = {"003": "Contact", "00Q": "Lead"}
WHAT_TYPES = {"001": "Account", "006": "Opportunity", "500": "Case"}
SEARCH_TYPES = ("Contact", "Lead", "Account", "Opportunity", "Case")
ID_RE = re.compile(r"^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$")
# Event fields a SnapField may not be: the engine or the Relate panel owns them.
NOT_SNAPFIELDS = {
    "Id", "OwnerId", "WhoId", "WhatId", "Subject", "StartDateTime", "EndDateTime", "ActivityDateTime",
    "ActivityDate", "DurationInMinutes", "IsAllDayEvent", "Location", "Description", "ShowAs", "IsPrivate",
    "IsReminderSet", "ReminderDateTime", "LinkPoint_Key__c",
}
SNAP_TYPES = {"picklist": "picklist", "boolean": "boolean", "string": "string", "textarea": "string",
              "date": "date"}


class RemoteUnavailable(Exception):
    """A remote read failed; the message is for the member."""


def sosl_escape(text: str) -> str:
    """Backslash before every SOSL reserved character (SOSL reference: FIND clause)."""
    return "".join("\\" + c if c in SOSL_RESERVED else c for c in text)


def kind_of_id(record_id: str) -> str | None:
    return {**WHO_TYPES, **WHAT_TYPES}.get(record_id[:3]) if record_id else None


# ---------------------------------------------------------------- the week


@dataclass(frozen=True)
class AgendaEvent:
    id: str
    subject: str
    start: dt.datetime | None
    end: dt.datetime | None
    all_day: bool
    location: str
    attendees: tuple[str, ...]
    private: bool
    state: str  # recorded, synced, skipped, not_recorded, error, deleted_in_salesforce
    why: str
    link: SyncLink | None
    sf_url: str
    missing_fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class AgendaDay:
    date: dt.date
    events: list[AgendaEvent]


@dataclass
class CalendarWeek:
    start: dt.date
    end: dt.date
    tz: str
    days: list[AgendaDay] = field(default_factory=list)
    q: str = ""
    mode: str = ""
    problem: str = ""
    truncated: bool = False
    last_followed: SyncRun | None = None
    total: int = 0

    @property
    def prev_week(self) -> dt.date:
        return self.start - dt.timedelta(days=7)

    @property
    def next_week(self) -> dt.date:
        return self.start + dt.timedelta(days=7)


def week_start(raw: str, today: dt.date) -> dt.date:
    """Monday of the week holding `raw` (YYYY-MM-DD); this week for anything else."""
    try:
        day = dt.date.fromisoformat((raw or "")[:10])
    except ValueError:
        day = today
    if not dt.date(1900, 1, 1) <= day <= dt.date(2999, 12, 1):
        day = today
    return day - dt.timedelta(days=day.weekday())


def member_zone(membership) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(membership.user.time_zone or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def _week_cache_key(membership, start: dt.datetime, end: dt.datetime) -> str:
    return f"snaprecord:week:{membership.pk}:{start:%Y%m%dT%H%M}:{end:%Y%m%dT%H%M}"


SELECT = "id,subject,start,end,isAllDay,location,attendees,organizer,sensitivity,isCancelled,type,seriesMasterId"


def outlook_week(membership, start: dt.datetime, end: dt.datetime, *, counter=None) -> dict:
    """One calendarView page for [start, end) in UTC: {"value": [...], "more": bool} (cached briefly)."""
    from connections import errors
    from connections.selectors import graph_client_for

    key = _week_cache_key(membership, start, end)
    hit = cache.get(key)
    if hit is not None:
        return hit
    try:
        graph = graph_client_for(membership, counter=counter)
        body = graph.request("GET", "/me/calendarView", params={
            "startDateTime": start.strftime("%Y-%m-%dT%H:%M:%SZ"), "endDateTime": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "$select": SELECT, "$orderby": "start/dateTime", "$top": str(PAGE_SIZE),
        }, headers={"Prefer": 'outlook.timezone="UTC"'}) or {}
    except errors.RemoteError as exc:
        log.warning("calendar page: Outlook read failed for membership %s: %s", membership.pk, exc)
        raise RemoteUnavailable(f"Outlook did not answer ({exc}). Try again in a moment.") from None
    page = {"value": list(body.get("value") or []), "more": bool(body.get("@odata.nextLink"))}
    cache.set(key, page, WEEK_CACHE_SECONDS)
    return page


def _instant(part: dict | None) -> dt.datetime | None:
    raw = (part or {}).get("dateTime") or ""
    try:
        value = dt.datetime.fromisoformat(raw[:26])
    except ValueError:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


def _emails(ev: dict) -> tuple[str, ...]:
    out = []
    for a in ev.get("attendees") or ():
        addr = ((a or {}).get("emailAddress") or {}).get("address") or ""
        if addr and addr.lower() not in out:
            out.append(addr.lower())
    return tuple(out)


def _sf_states(membership, sf_ids: list[str], *, counter=None) -> dict[str, bool]:
    """sf_id → deleted in Salesforce (one queryAll); {} when Salesforce cannot be read."""
    from connections import errors
    from connections.selectors import salesforce_client_for

    if not sf_ids:
        return {}
    quoted = ", ".join(f"'{i}'" for i in sf_ids)
    try:
        sfc = salesforce_client_for(membership, counter=counter)
        rows = [r for page in sfc.query_pages(f"SELECT Id, IsDeleted FROM Event WHERE Id IN ({quoted})",  # noqa: S608
                                               include_deleted=True) for r in page]
    except errors.RemoteError as exc:
        log.warning("calendar page: Salesforce state read failed for membership %s: %s", membership.pk, exc)
        return {}
    seen = {r.get("Id"): bool(r.get("IsDeleted")) for r in rows}
    return {i: seen.get(i, True) for i in sf_ids}


def calendar_week(*, membership, raw_week: str = "", q: str = "", counter=None) -> CalendarWeek:
    """The member's week as an agenda, each event with its state (see the module docstring)."""
    from connections.selectors import connection_for
    from policy.selectors import policy_effective_for

    tz = member_zone(membership)
    today = timezone.now().astimezone(tz).date()
    start = week_start(raw_week, today)
    week = CalendarWeek(start=start, end=start + dt.timedelta(days=6), tz=str(tz), q=q)
    policy = policy_effective_for(membership, CALENDAR)
    week.mode = policy.mode.value
    ms, sf = connection_for(membership, "microsoft"), connection_for(membership, "salesforce")
    if ms is None or ms.status != "connected":
        week.problem = "connect_outlook"
        return week
    lo = dt.datetime.combine(start, dt.time(), tz).astimezone(dt.UTC)
    hi = dt.datetime.combine(start + dt.timedelta(days=7), dt.time(), tz).astimezone(dt.UTC)
    try:
        page = outlook_week(membership, lo, hi, counter=counter)
    except RemoteUnavailable as exc:
        week.problem = str(exc)
        return week
    rows = [e for e in page["value"] if not e.get("isCancelled")]
    week.truncated = page["more"]
    if q:
        needle = q.casefold()
        rows = [e for e in rows if needle in " ".join(
            [e.get("subject") or "", (e.get("location") or {}).get("displayName") or "", *_emails(e)]).casefold()]
    week.total = len(rows)
    links = {
        lk.outlook_id: lk
        for lk in SyncLink.objects.filter(
            membership=membership, kind=CALENDAR, outlook_id__in=[e.get("id") for e in rows]
        ).select_related("relation")
    } if rows else {}
    live = [lk.sf_id for lk in links.values() if lk.sf_id and lk.state != LinkState.TOMBSTONED]
    deleted = _sf_states(membership, live, counter=counter) if sf is not None and sf.status == "connected" else {}
    required = [f for f in snapfields_for(membership.organization_id) if f.required and not f.problem]
    include_private = bool(policy.include_private.value)
    base = (sf.sf_instance_url if sf else "").rstrip("/")
    by_day: dict[dt.date, list[AgendaEvent]] = {}
    for ev in rows:
        s, e = _instant(ev.get("start")), _instant(ev.get("end"))
        all_day = bool(ev.get("isAllDay"))
        s_local = s.astimezone(tz) if s and not all_day else s
        e_local = e.astimezone(tz) if e and not all_day else e
        private = (ev.get("sensitivity") or "normal") in ("private", "confidential")
        link = links.get(ev.get("id"))
        item = _agenda_item(ev, s_local, e_local, all_day, private, link, include_private, deleted, base, required)
        day = (s_local.date() if s_local else start)
        by_day.setdefault(max(day, start), []).append(item)
    week.days = [AgendaDay(date=d, events=by_day[d]) for d in sorted(by_day)]
    week.last_followed = (
        SyncRun.objects.filter(membership=membership, kind=CALENDAR, trigger__in=("auto", "snaprecord"),
                               finished_at__isnull=False).order_by("-finished_at").only(
            "pk", "finished_at", "status", "trigger").first()
    )
    return week


def _agenda_item(ev, s, e, all_day, private, link, include_private, deleted, base, required) -> AgendaEvent:
    state, why, sf_url, missing = "not_recorded", "", "", ()
    if link is not None and link.state != LinkState.TOMBSTONED:
        sf_url = f"{base}/lightning/r/Event/{link.sf_id}/view" if link.sf_id and base else ""
        if link.sf_id and deleted.get(link.sf_id):
            state, why = "deleted_in_salesforce", "The Salesforce Event was deleted; Unrecord, then record again."
        elif link.state == LinkState.ERROR:
            state, why = "error", link.last_error or "The last follow-up failed; it is retried on the next run."
        elif link.one_way_from:
            state = "recorded"
        else:
            state = "synced"
        values = getattr(getattr(link, "relation", None), "values", None) or {}
        missing = tuple(f.label for f in required if f.default == "" and values.get(f.name) in (None, ""))
    elif private and not include_private:
        state, why = "skipped", "Private event: your organization's policy keeps private events out of Salesforce."
    elif ev.get("type") == "occurrence" or ev.get("seriesMasterId"):
        state, why = "skipped", "One meeting of a series: a series is synced whole by Manual or Auto sync."
    return AgendaEvent(
        id=ev.get("id") or "", subject=ev.get("subject") or "(no subject)", start=s, end=e, all_day=all_day,
        location=(ev.get("location") or {}).get("displayName") or "", attendees=_emails(ev), private=private,
        state=state, why=why, link=link if state != "not_recorded" else None, sf_url=sf_url, missing_fields=missing,
    )


def recorded_link(*, membership, link_id: int) -> SyncLink:
    """A calendar link of this member that has a Salesforce Event; DoesNotExist for anything else."""
    return SyncLink.objects.select_related("relation").get(
        pk=link_id, membership=membership, kind=CALENDAR, sf_id__isnull=False,
        state__in=[s for s in LinkState.values if s != LinkState.TOMBSTONED],
    )


# ---------------------------------------------------------------- Relate panel


@dataclass(frozen=True)
class Found:
    id: str
    type: str
    label: str
    detail: str = ""


def relate_search(*, membership, q: str, counter=None) -> tuple[list[Found], str]:
    """Typeahead over Contacts, Leads, Accounts, Opportunities and Cases: (hits, message)."""
    from connections import errors
    from connections.selectors import salesforce_client_for

    q = " ".join(q.split())[:80]
    if sum(c.isalnum() for c in q) < 2:
        return [], "Type at least two letters."
    terms = " ".join(sosl_escape(w) + "*" for w in q.split())
    sosl = (f"FIND {{{terms}}} IN NAME FIELDS RETURNING Contact(Id, Name, Email LIMIT 5), "
            "Lead(Id, Name, Company LIMIT 5), Account(Id, Name LIMIT 5), "
            "Opportunity(Id, Name, StageName LIMIT 5), Case(Id, CaseNumber, Subject LIMIT 5)")
    try:
        rows = salesforce_client_for(membership, counter=counter).search(sosl)
    except errors.ValidationFailed as exc:
        log.info("relate search refused for membership %s: %s", membership.pk, exc)
        return [], "Salesforce could not search for that text; try other words."
    except errors.RemoteError as exc:
        log.warning("relate search failed for membership %s: %s", membership.pk, exc)
        return [], "Salesforce did not answer the search; try again in a moment."
    return [_found(r) for r in rows], "" if rows else "Nothing in Salesforce matches."


def _found(row: dict) -> Found:
    kind = (row.get("attributes") or {}).get("type", "")
    if kind == "Case":
        return Found(row.get("Id", ""), kind, f"Case {row.get('CaseNumber') or ''}".strip(), row.get("Subject") or "")
    detail = row.get("Email") or row.get("Company") or row.get("StageName") or ""
    return Found(row.get("Id", ""), kind, row.get("Name") or row.get("Id", ""), detail)


def attendee_suggestions(*, membership, emails: tuple[str, ...], counter=None) -> list[Found]:
    """Contacts and Leads whose e-mail is one of the attendees' (one SOQL per object)."""
    from connections import errors
    from connections.selectors import salesforce_client_for

    from .engine.kinds import member_addresses

    own = member_addresses(membership)
    wanted = sorted({e for e in emails if e and e not in own and "'" not in e and "\\" not in e})[:50]
    if not wanted:
        return []
    quoted = ", ".join(f"'{e}'" for e in wanted)
    out: list[Found] = []
    try:
        sfc = salesforce_client_for(membership, counter=counter)
        for obj in ("Contact", "Lead"):
            soql = f"SELECT Id, Name, Email FROM {obj} WHERE Email IN ({quoted}) ORDER BY Name LIMIT 20"  # noqa: S608
            for page in sfc.query_pages(soql):
                out += [Found(r["Id"], obj, r.get("Name") or r["Id"], r.get("Email") or "") for r in page]
    except errors.RemoteError as exc:
        log.warning("attendee suggestions failed for membership %s: %s", membership.pk, exc)
    return out


def event_attendees(*, membership, outlook_id: str, counter=None) -> tuple[str, ...]:
    from connections import errors
    from connections.selectors import graph_client_for

    try:
        body = graph_client_for(membership, counter=counter).request(
            "GET", f"/me/events/{outlook_id}", params={"$select": "attendees"}) or {}
    except errors.RemoteError:
        return ()
    return _emails(body)


def lookup_ids(*, membership, ids: dict[str, list[str]], counter=None) -> dict[str, Found]:
    """The live records of these ids by type ({"Contact": [...], ...}) in this Salesforce org (SOQL)."""
    from connections.selectors import salesforce_client_for

    out: dict[str, Found] = {}
    sfc = None
    for obj, wanted in ids.items():
        wanted = [i for i in wanted if ID_RE.match(i)]
        if not wanted:
            continue
        sfc = sfc or salesforce_client_for(membership, counter=counter)
        name = "CaseNumber" if obj == "Case" else "Name"
        soql = f"SELECT Id, {name} FROM {obj} WHERE Id IN ({', '.join(repr(str(i)) for i in wanted)})"  # noqa: S608
        for page in sfc.query_pages(soql.replace('"', "'")):
            for r in page:
                label = f"Case {r.get('CaseNumber')}" if obj == "Case" else r.get("Name") or r["Id"]
                found = Found(r["Id"], obj, label)
                out[r["Id"]] = found
                out[r["Id"][:15]] = found
    return out


def shared_activities(*, membership, counter=None) -> bool:
    """Shared Activities is on when EventRelation has IsParent (describe, cached per Salesforce org)."""
    d = describe_cached(membership=membership, sobject="EventRelation", counter=counter)
    return any(f.get("name") == "IsParent" for f in d.get("fields") or ())


def describe_cached(*, membership, sobject: str, counter=None, fresh: bool = False) -> dict:
    from connections.selectors import connection_for, salesforce_client_for

    conn = connection_for(membership, "salesforce")
    key = f"snaprecord:describe:{getattr(conn, 'sf_org_id', '') or membership.pk}:{sobject}"
    hit = None if fresh else cache.get(key)
    if hit is None:
        hit = salesforce_client_for(membership, counter=counter).describe(sobject)
        cache.set(key, hit, DESCRIBE_SECONDS)
    return hit


# ---------------------------------------------------------------- SnapFields


def snapfields_for(org_id: int) -> list[SnapField]:
    return list(SnapField.objects.filter(organization_id=org_id))


def snapfield_candidates(describe: dict, taken: set[str]) -> list[dict]:
    """Event fields an admin may pick: creatable and updatable, of a type the page can show."""
    out = []
    for f in describe.get("fields") or ():
        if (f.get("name") in NOT_SNAPFIELDS or f.get("name") in taken or not f.get("createable")
                or not f.get("updateable") or f.get("type") not in SNAP_TYPES):
            continue
        out.append(f)
    return sorted(out, key=lambda f: (not f.get("custom"), f.get("label") or f["name"]))


def picklist_values(f: dict) -> list[str]:
    return [v["value"] for v in f.get("picklistValues") or () if v.get("active", True)]
