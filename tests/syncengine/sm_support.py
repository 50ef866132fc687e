"""The state machine's hands and eyes on the sandbox (tests/syncengine/test_state_machine.py).

"Hands": a user creating, editing, deleting items on either side and the
servers touching them, always through the sandbox services (what the Outlook
and Salesforce UIs would do). "Eyes": every live record of a side, read back
straight from the sandbox tables and projected through the product's mapping
module, so both sides are compared in the canonical domain.

Identity of a logical item in the test is independent of the engine: every
item carries a marker ``~N`` at the end of its title / surname / subject, and
user edits keep it. The engine never sees the marker as anything but text.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

from syncengine.engine.kinds import KEY_PROPERTY_ID, LINKED_APP, SF_KEY_FIELD
from syncengine.engine.mapping import contacts as m_contacts
from syncengine.engine.mapping import events as m_events
from syncengine.engine.mapping import tasks as m_tasks

OUTLOOK, SALESFORCE = "outlook", "salesforce"
SIDES = (OUTLOOK, SALESFORCE)
KINDS = ("contacts", "tasks", "calendar")
SOBJECT = {"contacts": "Contact", "tasks": "Task", "calendar": "Event"}
GRAPH_KIND = {"contacts": "contact", "tasks": "todoTask", "calendar": "event"}
# The canonical field that carries the marker, per kind.
MARKED = {"contacts": "last_name", "tasks": "title", "calendar": "subject"}
MARKER = re.compile(r"~(\d+)$")
DELETED = "deleted"

# Windows zone names the mailbox may use, with their IANA equivalents (for the
# wall time the user types; the canonical record is UTC either way).
ZONES = {
    "UTC": "UTC",
    "Pacific Standard Time": "America/Los_Angeles",
    "W. Europe Standard Time": "Europe/Berlin",
    "Asia/Kolkata": "Asia/Kolkata",
    "America/St_Johns": "America/St_Johns",
}

# ---------------------------------------------------------------- abstract fields
# A user's edit is a dict of abstract field → value; the value strategies are
# small on purpose so both sides often touch the same field (conflicts) and
# sometimes write the same value (equal content, no conflict).
_names = st.sampled_from(["Lovelace", "Hopper", "Turing", "Noether"])
_words = st.sampled_from(["Call", "Quote", "Review", "Ship", "Plan"])
FIELDS = {
    "contacts": {
        "first": st.sampled_from(["", "Ada", "Grace", "Émilie"]),
        "last": _names,
        "job": st.sampled_from(["", "Engineer", "CTO"]),
        "dept": st.sampled_from(["", "Sales", "R&D"]),
        "mobile": st.sampled_from(["", "+1 555 0100", "+44 20 7946 0000"]),
        "email2": st.sampled_from(["", "alt1@example.org", "alt2@example.org"]),
        "city": st.sampled_from(["", "Paris", "Lima"]),
    },
    "tasks": {
        "title": _words,
        "body": st.sampled_from(["", "Ring back", "Line one\nLine two"]),
        "status": st.sampled_from(["notStarted", "inProgress", "completed", "waitingOnOthers", "deferred"]),
        "importance": st.sampled_from(["low", "normal", "high"]),
        "due": st.sampled_from([None, 1, 5, 12]),
    },
    "calendar": {
        "subject": _words,
        "location": st.sampled_from(["", "Room 1", "Café ☕"]),
        # (hours after the example's base time, minutes long): moved together.
        "when": st.tuples(st.integers(24, 240), st.sampled_from([30, 60, 90])),
    },
}


def edits(kind: str, *, full: bool = False):
    """One or several fields (or all of them, for a create)."""
    specs = FIELDS[kind]
    if full:
        return st.fixed_dictionaries(specs)
    return st.dictionaries(st.sampled_from(sorted(specs)), st.none(), min_size=1, max_size=3).flatmap(
        lambda chosen: st.fixed_dictionaries({k: specs[k] for k in chosen})
    )


def event_zones():
    return st.sampled_from(sorted(ZONES))


# ---------------------------------------------------------------- payloads


def _graph_wall(moment: dt.datetime, zone: str) -> dict:
    local = moment.astimezone(ZoneInfo(ZONES[zone]))
    return {"dateTime": local.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": zone}


def _sf_dt(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


@dataclass
class Ctx:
    """What a payload needs besides the edit: the marker, the example's base time, zone."""

    n: int
    base: dt.datetime
    zone: str = "UTC"

    def mark(self, text: str) -> str:
        return f"{text} ~{self.n}"

    def email(self) -> str:
        return f"p{self.n}@example.com"


def graph_payload(kind: str, e: dict, ctx: Ctx, current: dict | None) -> dict:
    """The Graph body a user's client would send for this edit (PATCH semantics)."""
    p: dict = {}
    if kind == "contacts":
        names = {"first": "givenName", "job": "jobTitle", "dept": "department", "mobile": "mobilePhone"}
        for k, g in names.items():
            if k in e:
                p[g] = e[k] or None
        if "last" in e:
            p["surname"] = ctx.mark(e["last"])
        if current is None or "email2" in e:
            emails = [{"address": ctx.email(), "name": ctx.email()}]
            if e.get("email2"):
                emails.append({"address": e["email2"], "name": e["email2"]})
            p["emailAddresses"] = emails
        if "city" in e:
            p["businessAddress"] = {**((current or {}).get("businessAddress") or {}), "city": e["city"] or None}
        return p
    if kind == "tasks":
        if "title" in e:
            p["title"] = ctx.mark(e["title"])
        if "body" in e:
            p["body"] = {"contentType": "text", "content": e["body"]}
        for k in ("status", "importance"):
            if k in e:
                p[k] = e[k]
        if "due" in e:
            day = (ctx.base.date() + dt.timedelta(days=e["due"])) if e["due"] is not None else None
            p["dueDateTime"] = {"dateTime": f"{day.isoformat()}T00:00:00.0000000", "timeZone": "UTC"} if day else None
        return p
    if "subject" in e:
        p["subject"] = ctx.mark(e["subject"])
    if "location" in e:
        p["location"] = {"displayName": e["location"]}
    if "when" in e:
        hours, minutes = e["when"]
        start = ctx.base + dt.timedelta(hours=hours)
        p["start"] = _graph_wall(start, ctx.zone)
        p["end"] = _graph_wall(start + dt.timedelta(minutes=minutes), ctx.zone)
    return p


def sf_fields(kind: str, e: dict, ctx: Ctx, *, create: bool) -> dict:
    """The Salesforce fields a user's edit page would save."""
    f: dict = {}
    if kind == "contacts":
        names = {"first": "FirstName", "job": "Title", "dept": "Department", "mobile": "MobilePhone",
                 "email2": "LinkPoint_Email2__c", "city": "MailingCity"}
        for k, s in names.items():
            if k in e:
                f[s] = e[k] or None
        if "last" in e:
            f["LastName"] = ctx.mark(e["last"])
        if create:
            f["Email"] = ctx.email()
        return f
    if kind == "tasks":
        if "title" in e:
            f["Subject"] = ctx.mark(e["title"])
        if "body" in e:
            f["Description"] = e["body"] or None
        if "status" in e:
            f["Status"] = m_tasks.STATUS_TO_SF[e["status"]]
        if "importance" in e:
            f["Priority"] = m_tasks.IMPORTANCE_TO_SF[e["importance"]]
        if "due" in e:
            f["ActivityDate"] = (
                (ctx.base.date() + dt.timedelta(days=e["due"])).isoformat() if e["due"] is not None else None
            )
        return f
    if "subject" in e:
        f["Subject"] = ctx.mark(e["subject"])
    if "location" in e:
        f["Location"] = e["location"] or None
    if "when" in e:
        hours, minutes = e["when"]
        start = ctx.base + dt.timedelta(hours=hours)
        f["StartDateTime"] = _sf_dt(start)
        f["EndDateTime"] = _sf_dt(start + dt.timedelta(minutes=minutes))
    return f


# ---------------------------------------------------------------- reading


def o_key(kind: str, item) -> str | None:
    if kind == "tasks":
        for res in item.data.get("linkedResources") or ():
            if res.get("applicationName") == LINKED_APP:
                return (res.get("externalId") or "").lower() or None
        return None
    for pid, value in (item.ext_props or {}).items():
        if pid.casefold() == KEY_PROPERTY_ID.casefold():
            return (value or "").lower() or None
    return None


def _view():
    from sandbox.microsoft.resources import View

    return View(base="https://graph.sandbox.test/v1.0", expand_linked=True)


def o_project(kind: str, data: dict) -> dict:
    mod = {"contacts": m_contacts, "tasks": m_tasks, "calendar": m_events}[kind]
    return mod.from_graph(data).projection()


def s_project(kind: str, row: dict) -> dict:
    if kind == "contacts":
        return m_contacts.from_salesforce(row).projection()
    if kind == "tasks":
        return m_tasks.from_salesforce(row).projection()
    return m_events.from_salesforce(row, time_zone="UTC").projection()


def marker(kind: str, proj: dict) -> int | None:
    m = MARKER.search(proj.get(MARKED[kind]) or "")
    return int(m.group(1)) if m else None


@dataclass(frozen=True)
class Rec:
    """One live record of one side: id, our key if it carries one, canonical projection, marker."""

    side: str
    id: str
    key: str | None
    proj: dict
    n: int | None
    raw: object = None


def o_records(mailbox, kind: str, *, deleted: bool = False) -> list[Rec]:
    """Live (or deleted) Outlook items as Graph would answer a GET for them."""
    from sandbox.microsoft.models import Item
    from sandbox.microsoft.resources import item_json

    out = []
    rows = Item.objects.filter(mailbox=mailbox, kind=GRAPH_KIND[kind], deleted=deleted).order_by("pk")
    for item in rows:
        if kind == "calendar" and (
            item.data.get("seriesMasterId") or item.parent_id or item.event_type == "seriesMaster"
        ):
            continue  # series have their own eyes (series_view)
        proj = o_project(kind, item_json(item, _view()))
        out.append(Rec(OUTLOOK, item.graph_id, o_key(kind, item), proj, marker(kind, proj), item))
    return out


def s_records(sf_user, kind: str, *, deleted: bool = False) -> list[Rec]:
    from sandbox.salesforce.services import sf_records

    out = []
    for row in sf_records(org=sf_user.org, sobject=SOBJECT[kind], include_deleted=deleted):
        if row.get("OwnerId") != sf_user.user_id or bool(row.get("IsDeleted")) != deleted:
            continue
        if kind == "calendar" and row.get("IsRecurrence2"):
            continue  # occurrences of a series (series_view)
        proj = s_project(kind, row)
        out.append(Rec(SALESFORCE, row["Id"], (row.get(SF_KEY_FIELD) or "").lower() or None, proj,
                       marker(kind, proj), row))
    return out


# ---------------------------------------------------------------- the oracle's merge


def merge_groups(kind: str) -> list[tuple[str, ...]]:
    """The merge units the design promises (DESIGN §6 step 3): declared per record class."""
    from syncengine.engine.mapping.common import synced_fields

    cls = {"contacts": m_contacts.CanonicalContact, "tasks": m_tasks.CanonicalTask,
           "calendar": m_events.CanonicalEvent}[kind]
    grouped = {n for g in cls.MERGE_GROUPS for n in g}
    return list(cls.MERGE_GROUPS) + [(n,) for n in synced_fields(cls) if n not in grouped]


def expected_merge(kind: str, base: dict, o: dict, s: dict, winner: str) -> tuple[dict, list[dict]]:
    """Field-level three-way merge, written from the spec (not the engine's code):
    one side changed → that side; both changed equally → that value; both
    changed differently → the winner, the loser's values are owed to the log."""
    out, lost = {}, []
    for g in merge_groups(kind):
        b = {k: base.get(k) for k in g}
        ov = {k: o.get(k) for k in g}
        sv = {k: s.get(k) for k in g}
        if ov == sv or sv == b:
            out.update(ov)
        elif ov == b:
            out.update(sv)
        else:
            out.update(ov if winner == OUTLOOK else sv)
            lost.append(sv if winner == OUTLOOK else ov)
    return out, lost


# ---------------------------------------------------------------- series (issue 12)
# A series is judged by its occurrences, read independently of the engine: Outlook's
# generated occurrences and exceptions (the sandbox's calendar view), Salesforce's
# occurrence records. Each side's view: {slot: ("normal"|"changed"|"cancelled", subject)}
# keyed by the original start (only subjects change in the machine, so an occurrence
# record keeps its slot's start).

def slot_key(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M")


def series_outlook(mailbox, n: int) -> list[tuple[object, dict]]:
    """The Outlook series masters carrying marker n, each with its occurrences by slot."""
    from sandbox.microsoft import feeds
    from sandbox.microsoft.models import Item

    out = []
    for master in Item.objects.filter(mailbox=mailbox, kind="event", deleted=False, event_type="seriesMaster"):
        if marker("calendar", {"subject": master.data.get("subject")}) != n:
            continue
        window = (master.start_utc - dt.timedelta(days=1), master.start_utc + dt.timedelta(days=60))
        occ = {}
        for e in feeds.calendar_view(mailbox, window, _view()):
            if e.get("seriesMasterId") == master.graph_id:
                occ[e["originalStart"][:16]] = e["subject"]
        out.append((master, occ))
    return out


def series_salesforce(sf_user, n: int) -> dict[tuple, dict]:
    """Salesforce occurrence records carrying marker n, grouped by series (pattern fields)."""
    from sandbox.salesforce.services import sf_records

    groups: dict[tuple, dict] = {}
    for row in sf_records(org=sf_user.org, sobject="Event"):
        if row.get("OwnerId") != sf_user.user_id or not row.get("IsRecurrence2") or row.get("IsDeleted"):
            continue
        if marker("calendar", {"subject": row.get("Subject")}) != n:
            continue
        key = (row["Recurrence2PatternStartDate"], row["Recurrence2PatternText"], row["Recurrence2PatternTimeZone"])
        start = dt.datetime.fromisoformat(row["StartDateTime"].replace("+0000", "+00:00"))
        groups.setdefault(key, {})[slot_key(start)] = row
    return groups
