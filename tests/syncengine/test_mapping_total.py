"""Mapping is total: any JSON a remote service sends gives a record or an item error.

Issue 10: one contact whose `businessAddress` was a string made the mapper raise
a TypeError, the run died, and every later run died on the same item. Here every
field the mappers (and the engine's readers of ids, versions, keys and deletion
flags) look at, on both sides and for every kind, is replaced by arbitrary JSON:
wrong types, nulls, missing keys, huge strings, NUL and lone surrogates, nested
junk. The mapper must return a record or raise `MappingError` naming a field;
the engine's reader must return an `Item`, and never a deletion the payload did
not state.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from syncengine.engine.kinds import CALENDAR, CONTACTS, SF_FIELDS, TASKS, outlook_item, sf_item
from syncengine.engine.mapping import MappingError, canonical_hash, contacts, events, tasks
from syncengine.engine.records import EnginePolicy

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
KEY_PROP = "String {8a3f2c61-5d0b-4e8e-9c47-1b6d2e9f4a10} Name LinkPointKey"

TOTAL = settings(
    max_examples=int(os.environ.get("TOTAL_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.large_base_example],
    database=None,
)

# ---------------------------------------------------------------- arbitrary JSON

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(
        [
            "",
            " ",
            "\x00",
            "a\x00b",
            "\ud800",
            "abc",
            "true",
            "false",
            "0",
            "-1",
            "15",
            "9" * 400,
            "2024-05-01T10:00:00",
            "2024-05-01T10:00:00.0000000",
            "2024-05-01",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
            "9999-12-31T23:59:59+14:00",
            "UTC",
            "Pacific Standard Time",
            "tzone://Microsoft/Custom",
            "../../etc/passwd",
            "zone.tab",
            "<b>bold</b><p>para",
            "<" * 50,
            "RRULE:FREQ=DAILY;COUNT=3",
            "busy",
            "completed",
            "high",
            "private",
        ]
    ),
)
_huge = st.sampled_from(["x" * 100_000, "<div>" * 20_000, "é\x00" * 30_000])
junk = st.recursive(
    st.one_of(_scalars, _huge),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(["dateTime", "timeZone", "address", "content",
                                         "contentType", "displayName", "type", "id", "value",
                                         "emailAddress", "Name", "x"]), inner, max_size=4),
    ),
    max_leaves=12,
)
MISSING = object()


def _set(payload: dict, path: str, value) -> None:
    """Put `value` at a dotted path (creating objects on the way); MISSING deletes it."""
    parts = path.split(".")
    cur = payload
    for part in parts[:-1]:
        nxt = cur.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            cur[part] = nxt
        cur = nxt
    if value is MISSING:
        cur.pop(parts[-1], None)
    else:
        cur[parts[-1]] = value


def mutated(base: dict, paths: list[str]):
    """`base` with some of `paths` replaced by arbitrary JSON or removed."""
    changes = st.dictionaries(
        st.sampled_from(paths), st.one_of(junk, st.just(MISSING)), min_size=1, max_size=6
    )

    def build(ch):
        payload = json.loads(json.dumps(base))
        for path, value in ch.items():
            _set(payload, path, value)
        return payload

    return changes.map(build)


# ---------------------------------------------------------------- valid bases + their fields


def _wall(day: str, hh: int) -> dict:
    return {"dateTime": f"{day}T{hh:02d}:00:00.0000000", "timeZone": "W. Europe Standard Time"}


GRAPH_EVENT = {
    "id": "AAMkEvent=",
    "changeKey": "ck1",
    "@odata.etag": 'W/"ck1"',
    "iCalUId": "040000008200E00074C5B7101A82E008",
    "type": "seriesMaster",
    "subject": "Quarterly review",
    "body": {"contentType": "html", "content": "<p>Agenda</p>"},
    "location": {"displayName": "Room 1"},
    "isAllDay": False,
    "start": _wall("2024-05-06", 9),
    "end": _wall("2024-05-06", 10),
    "originalStartTimeZone": "W. Europe Standard Time",
    "showAs": "busy",
    "sensitivity": "normal",
    "isReminderOn": True,
    "reminderMinutesBeforeStart": 15,
    "isCancelled": False,
    "categories": ["Customer"],
    "recurrence": {
        "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"],
                    "firstDayOfWeek": "sunday", "dayOfMonth": 0, "month": 0, "index": "first"},
        "range": {"type": "endDate", "startDate": "2024-05-06", "endDate": "2024-12-30",
                  "numberOfOccurrences": 0},
    },
    "attendees": [{"emailAddress": {"address": "ada@example.com", "name": "Ada"}}],
    "organizer": {"emailAddress": {"address": "carol@acme.test"}},
    "singleValueExtendedProperties": [{"id": KEY_PROP, "value": "3f0c2a9e-0000-4000-8000-000000000001"}],
}
GRAPH_EVENT_PATHS = [
    "id", "changeKey", "@odata.etag", "iCalUId", "type", "seriesMasterId", "@removed",
    "subject", "body", "body.content", "body.contentType", "location", "location.displayName",
    "isAllDay", "start", "start.dateTime", "start.timeZone", "end", "end.dateTime",
    "end.timeZone", "originalStartTimeZone", "showAs", "sensitivity", "isReminderOn",
    "reminderMinutesBeforeStart", "isCancelled", "categories", "recurrence",
    "recurrence.pattern", "recurrence.pattern.type", "recurrence.pattern.interval",
    "recurrence.pattern.daysOfWeek", "recurrence.pattern.dayOfMonth", "recurrence.pattern.month",
    "recurrence.pattern.index", "recurrence.pattern.firstDayOfWeek", "recurrence.range",
    "recurrence.range.type", "recurrence.range.endDate", "recurrence.range.numberOfOccurrences",
    "attendees", "organizer", "organizer.emailAddress", "organizer.emailAddress.address",
    "singleValueExtendedProperties", "originalStart",
]
GRAPH_CONTACT = {
    "id": "AAMkContact=",
    "changeKey": "ck1",
    "givenName": "Ada",
    "middleName": "King",
    "surname": "Lovelace",
    "displayName": "Ada Lovelace",
    "emailAddresses": [{"address": "ada@example.com", "name": "Ada"}],
    "businessPhones": ["+44 1"],
    "homePhones": ["+44 2"],
    "mobilePhone": "+44 3",
    "jobTitle": "Countess",
    "department": "Analytics",
    "companyName": "Engines Ltd",
    "businessAddress": {"street": "1 Main St", "city": "London", "state": "", "postalCode": "N1",
                        "countryOrRegion": "UK"},
    "categories": [],
    "singleValueExtendedProperties": [{"id": KEY_PROP, "value": "3f0c2a9e-0000-4000-8000-000000000002"}],
}
GRAPH_CONTACT_PATHS = [
    "id", "changeKey", "@odata.etag", "@removed", "givenName", "middleName", "surname",
    "displayName", "emailAddresses", "businessPhones", "homePhones", "mobilePhone", "jobTitle",
    "department", "companyName", "businessAddress", "businessAddress.street",
    "businessAddress.city", "businessAddress.state", "businessAddress.postalCode",
    "businessAddress.countryOrRegion", "categories", "singleValueExtendedProperties",
]
GRAPH_TASK = {
    "id": "AAMkTask=",
    "@odata.etag": 'W/"ck1"',
    "title": "Call Ada",
    "body": {"contentType": "text", "content": "About the engine"},
    "status": "inProgress",
    "importance": "high",
    "dueDateTime": {"dateTime": "2024-05-03T00:00:00.0000000", "timeZone": "Tokyo Standard Time"},
    "isReminderOn": True,
    "reminderDateTime": {"dateTime": "2024-05-02T08:00:00.0000000", "timeZone": "UTC"},
    "completedDateTime": None,
    "linkedResources": [{"applicationName": "LinkPoint", "externalId": "3f0c2a9e-0000-4000-8000-000000000003"}],
}
GRAPH_TASK_PATHS = [
    "id", "changeKey", "@odata.etag", "@removed", "title", "body", "body.content",
    "body.contentType", "status", "importance", "dueDateTime", "dueDateTime.dateTime",
    "dueDateTime.timeZone", "isReminderOn", "reminderDateTime", "reminderDateTime.dateTime",
    "reminderDateTime.timeZone", "completedDateTime", "completedDateTime.dateTime",
    "linkedResources", "categories",
]

SF_EVENT = {
    "Id": "00U000000000001AAA",
    "SystemModstamp": "2024-05-01T10:00:00.000+0000",
    "IsDeleted": False,
    "OwnerId": "005000000000001AAA",
    "LinkPoint_Key__c": "3f0c2a9e-0000-4000-8000-000000000004",
    "Subject": "Quarterly review",
    "Description": "Agenda",
    "Location": "Room 1",
    "IsAllDayEvent": False,
    "StartDateTime": "2024-05-06T07:00:00.000+0000",
    "EndDateTime": "2024-05-06T08:00:00.000+0000",
    "ActivityDate": "2024-05-06",
    "ActivityDateTime": "2024-05-06T07:00:00.000+0000",
    "DurationInMinutes": 60,
    "ShowAs": "Busy",
    "IsPrivate": False,
    "IsReminderSet": True,
    "ReminderDateTime": "2024-05-06T06:45:00.000+0000",
    "IsRecurrence": False,
    "IsRecurrence2": True,
    "Recurrence2PatternText": "RRULE:FREQ=WEEKLY;BYDAY=MO;WKST=SU;INTERVAL=1;COUNT=10",
    "Recurrence2PatternTimeZone": "Europe/Berlin",
    "IsChild": False,
}
SF_CONTACT = {
    "Id": "003000000000001AAA",
    "SystemModstamp": "2024-05-01T10:00:00.000+0000",
    "IsDeleted": False,
    "OwnerId": "005000000000001AAA",
    "LinkPoint_Key__c": "3f0c2a9e-0000-4000-8000-000000000005",
    "AccountId": "001000000000001AAA",
    "Account": {"Name": "Engines Ltd"},
    "FirstName": "Ada",
    "LastName": "Lovelace",
    "Email": "ada@example.com",
    "LinkPoint_Email2__c": None,
    "LinkPoint_Email3__c": None,
    "Phone": "+44 1",
    "OtherPhone": None,
    "MobilePhone": "+44 3",
    "HomePhone": None,
    "Title": "Countess",
    "Department": "Analytics",
    "MailingStreet": "1 Main St",
    "MailingCity": "London",
    "MailingState": None,
    "MailingPostalCode": "N1",
    "MailingCountry": "UK",
}
SF_TASK = {
    "Id": "00T000000000001AAA",
    "SystemModstamp": "2024-05-01T10:00:00.000+0000",
    "IsDeleted": False,
    "OwnerId": "005000000000001AAA",
    "LinkPoint_Key__c": "3f0c2a9e-0000-4000-8000-000000000006",
    "Subject": "Call Ada",
    "Description": "About the engine",
    "Status": "In Progress",
    "Priority": "High",
    "ActivityDate": "2024-05-03",
    "IsReminderSet": True,
    "ReminderDateTime": "2024-05-02T08:00:00.000+0000",
    "CompletedDateTime": None,
    "IsClosed": False,
}


def _sf_paths(kind: str) -> list[str]:
    # Every field the engine queries (so every field a mapper may read), plus the
    # relationship object itself.
    return [f for f in SF_FIELDS[kind]] + (["Account"] if kind == CONTACTS else [])


GRAPH = {
    CALENDAR: (events, GRAPH_EVENT, GRAPH_EVENT_PATHS),
    CONTACTS: (contacts, GRAPH_CONTACT, GRAPH_CONTACT_PATHS),
    TASKS: (tasks, GRAPH_TASK, GRAPH_TASK_PATHS),
}
SF = {
    CALENDAR: (events, SF_EVENT, _sf_paths(CALENDAR)),
    CONTACTS: (contacts, SF_CONTACT, _sf_paths(CONTACTS)),
    TASKS: (tasks, SF_TASK, _sf_paths(TASKS)),
}
POLICY = {k: EnginePolicy(kind=k, outlook_category_filter="", time_zone="Europe/Berlin")
          for k in (CALENDAR, CONTACTS, TASKS)}


def _from_salesforce(module, kind, row):
    if kind == CALENDAR:
        return module.from_salesforce(row, time_zone="Europe/Berlin")
    if kind == CONTACTS:
        return module.from_salesforce(row, unrelated_company="Engines Ltd")
    return module.from_salesforce(row)


def _usable(rec) -> None:
    """A record the mapper returned must survive what the engine does with it next."""
    canonical_hash(rec)
    json.dumps(rec.projection(), ensure_ascii=False).encode("utf-8")


def _graph_total(kind: str, payload) -> None:
    module = GRAPH[kind][0]
    try:
        rec = module.from_graph(payload)
    except MappingError as exc:
        assert exc.field and exc.reason
        return
    _usable(rec)
    # The write path reads the stored payload again (what is kept in Outlook), and
    # writes the record to the other side.
    kw = {"time_zone": "Europe/Berlin"} if kind == CALENDAR else {}
    module.to_graph(rec, existing=payload, **kw)
    module.to_salesforce(rec, **kw)


def _sf_total(kind: str, row) -> None:
    module = SF[kind][0]
    try:
        rec = _from_salesforce(module, kind, row)
    except MappingError as exc:
        assert exc.field and exc.reason
        return
    _usable(rec)
    kw = {"time_zone": "Europe/Berlin"} if kind == CALENDAR else {}
    module.to_graph(rec, **kw)


def _reader_total(side: str, kind: str, payload) -> None:
    if side == "outlook":
        it = outlook_item(kind, payload, POLICY[kind], NOW)
        said_deleted = isinstance(payload, dict) and (
            "@removed" in payload or (kind == CALENDAR and payload.get("isCancelled") is True)
        )
    else:
        it = sf_item(kind, payload, POLICY[kind], NOW)
        said_deleted = isinstance(payload, dict) and payload.get("IsDeleted") is True
    assert isinstance(it.id, str)
    assert it.record is not None or it.error or it.deleted
    # The readers' last-resort net (an unforeseen exception) never has to catch anything.
    assert "could not be read" not in it.error, it.error
    # Never a deletion the payload did not state (the engine confirms those it did).
    assert not it.deleted or said_deleted, (payload, it)
    if it.error:
        assert it.record is None


# ---------------------------------------------------------------- the bases are valid


@pytest.mark.parametrize("kind", [CALENDAR, CONTACTS, TASKS])
def test_the_unmutated_payloads_map_to_records(kind):
    module, base, _ = GRAPH[kind]
    assert module.from_graph(base) is not None
    assert outlook_item(kind, base, POLICY[kind], NOW).record is not None
    module, base, _ = SF[kind]
    assert _from_salesforce(module, kind, base) is not None
    assert sf_item(kind, base, POLICY[kind], NOW).record is not None


# ---------------------------------------------------------------- the items


@pytest.mark.parametrize(
    ("kind", "path", "value", "field"),
    [
        (CONTACTS, "businessAddress", "1 Main St, London", "businessAddress"),
        (CALENDAR, "location", "Room 1", "location"),
        (CALENDAR, "reminderMinutesBeforeStart", "abc", "reminderMinutesBeforeStart"),
        (CONTACTS, "emailAddresses", "ada@example.com", "emailAddresses"),
        (TASKS, "status", {"value": "completed"}, "status"),
        (CALENDAR, "showAs", ["busy"], "showAs"),
        (CALENDAR, "start.timeZone", ["UTC"], "time_zone"),
    ],
)
def test_a_malformed_graph_field_is_an_item_error_naming_it(kind, path, value, field):
    module, base, _ = GRAPH[kind]
    payload = json.loads(json.dumps(base))
    _set(payload, path, value)
    with pytest.raises(MappingError) as err:
        module.from_graph(payload)
    assert err.value.field == field
    it = outlook_item(kind, payload, POLICY[kind], NOW)
    assert it.error.startswith(field) and not it.deleted and it.record is None
    assert it.id == base["id"] and it.label


def test_the_error_reads_as_a_sentence_for_support():
    payload = {**GRAPH_CONTACT, "businessAddress": "1 Main St"}
    it = outlook_item(CONTACTS, payload, POLICY[CONTACTS], NOW)
    assert it.label == "Outlook contact “Ada Lovelace”"
    assert it.error == "businessAddress is not an address object (it is text)"


@pytest.mark.parametrize(
    ("kind", "field", "value"),
    [
        (CONTACTS, "Account", "Engines Ltd"),
        (CALENDAR, "DurationInMinutes", "sixty"),
        (CALENDAR, "IsPrivate", "false"),
        (TASKS, "Status", 3),
        (CONTACTS, "LastName", {"value": "Lovelace"}),
    ],
)
def test_a_malformed_salesforce_field_is_an_item_error_naming_it(kind, field, value):
    row = {**SF[kind][1], field: value}
    it = sf_item(kind, row, POLICY[kind], NOW)
    assert it.error.startswith(field) and not it.deleted and it.record is None
    assert it.label.startswith("Salesforce ")


@pytest.mark.parametrize("flag", ["true", 1, "yes", {"x": 1}])
def test_an_unreadable_deletion_flag_is_an_error_not_a_deletion(flag):
    it = sf_item(CONTACTS, {**SF_CONTACT, "IsDeleted": flag}, POLICY[CONTACTS], NOW)
    assert not it.deleted and it.error.startswith("IsDeleted")
    it = outlook_item(CALENDAR, {**GRAPH_EVENT, "isCancelled": flag}, POLICY[CALENDAR], NOW)
    assert not it.deleted and it.error.startswith("isCancelled")


# ---------------------------------------------------------------- properties


@pytest.mark.parametrize("kind", [CALENDAR, CONTACTS, TASKS])
@given(data=st.data())
@TOTAL
def test_graph_mappers_are_total(kind, data):
    _, base, paths = GRAPH[kind]
    payload = data.draw(mutated(base, paths))
    _graph_total(kind, payload)
    _reader_total("outlook", kind, payload)


@pytest.mark.parametrize("kind", [CALENDAR, CONTACTS, TASKS])
@given(data=st.data())
@TOTAL
def test_salesforce_mappers_are_total(kind, data):
    _, base, paths = SF[kind]
    row = data.draw(mutated(base, paths))
    _sf_total(kind, row)
    _reader_total("salesforce", kind, row)


@pytest.mark.parametrize("kind", [CALENDAR, CONTACTS, TASKS])
@given(payload=junk)
@example(payload="a string where an object belongs")
@example(payload=[{"id": "x"}])
@TOTAL
def test_a_payload_of_any_shape_is_an_item_error(kind, payload):
    _graph_total(kind, payload) if isinstance(payload, dict) else None
    _reader_total("outlook", kind, payload)
    _reader_total("salesforce", kind, payload)
