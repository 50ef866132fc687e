"""The emulators answer bad input as the real services do: a 4xx in their own envelope, nothing half-stored.

Issue 10: a Graph create with wrong types (a string `location`, `body` or `businessAddress`,
"abc" minutes) either stored the item and then failed to render it (500, item kept, and
every later read of the mailbox broken) or raised straight through the in-process
transport into the product. Hypothesis posts wrong-typed, null, huge, NUL and non-UTF-8
bodies to the create and update endpoints of events, contacts and To Do tasks (Graph)
and of Event, Contact and Task (Salesforce, single sObject and sObject Collections).
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sandbox.microsoft.models import Item
from sandbox.microsoft.services import (
    access_token_issue,
    contact_create,
    event_create,
    mailbox_ensure,
    todo_default_list,
    todo_task_create,
)
from sandbox.salesforce.models import SfRecord
from sandbox.salesforce.services import sf_record_create, sf_session_issue, sf_user_ensure
from sandbox.transport import sandbox_session

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])

GRAPH = "https://graph.sandbox.test/v1.0"
HYPOTHESIS = settings(max_examples=120, deadline=None, derandomize=True,
                      suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

HUGE = "x" * 100_000
JSON_SCALARS = st.one_of(st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12))
JSON_VALUES = st.recursive(st.one_of(st.none(), JSON_SCALARS),
                           lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                   st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                           max_leaves=6)
UNSTORABLE = st.one_of(st.text(max_size=8).map(lambda s: s + "\x00" + s), st.just("ab\ud800cd"),
                       st.just("\x00"))
# Values at the calendar's and the integers' edges (they once overflowed into a 500).
EXTREMES = st.sampled_from([
    "9999-12-31T23:59:59", "0001-01-01T00:00:00", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-14:00",
    "9999-12-31", "0001-01-01", "1699-12-31", "4001-01-01T00:00:00Z", 2**31, -(2**31) - 1, 2**40, 2**62,
])
RAW_BODIES = st.one_of(
    st.binary(min_size=1, max_size=40).filter(lambda b: not _utf8(b)),  # not UTF-8
    st.sampled_from([b"\xff\xfe{}", b'{"subject": "caf\xe9"}', b"{", b"[" * 5000 + b"]" * 5000,
                     b'{"a": NaN}', b'{"a": Infinity}', b'{"a": 1e999}', b"[]", b'"text"', b"42", b"null",
                     b'{"a": ' + b"9" * 5000 + b"}"]),
)


def _utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _not(expected: str):
    """JSON values of any other type than `expected` (null excluded: most properties are nullable)."""
    checks = {
        "str": lambda v: isinstance(v, str),
        "bool": lambda v: isinstance(v, bool),
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool) and -(2**31) <= v < 2**31,
        "object": lambda v: isinstance(v, dict),
        "list": lambda v: isinstance(v, list),
    }
    return JSON_VALUES.filter(lambda v: v is not None and not checks[expected](v))


# --- Graph --------------------------------------------------------------------------------------

# Property types from the Graph v1.0 reference (event, contact, todoTask); nested paths with dots.
GRAPH_TYPES = {
    "event": {"subject": "str", "body": "object", "body.content": "str", "start": "object",
              "start.dateTime": "str", "start.timeZone": "str", "end": "object", "isAllDay": "bool",
              "location": "object", "location.displayName": "str", "locations": "list",
              "reminderMinutesBeforeStart": "int", "isReminderOn": "bool", "categories": "list",
              "attendees": "list", "recurrence": "object", "organizer": "object", "transactionId": "str",
              "singleValueExtendedProperties": "list", "sensitivity": "str", "showAs": "str"},
    "contact": {"givenName": "str", "surname": "str", "displayName": "str", "companyName": "str",
                "jobTitle": "str", "emailAddresses": "list", "businessPhones": "list", "mobilePhone": "str",
                "businessAddress": "object", "businessAddress.city": "str", "homeAddress": "object",
                "categories": "list", "personalNotes": "str", "singleValueExtendedProperties": "list"},
    "task": {"title": "str", "body": "object", "body.content": "str", "importance": "str", "status": "str",
             "isReminderOn": "bool", "dueDateTime": "object", "dueDateTime.dateTime": "str",
             "categories": "list", "linkedResources": "list", "checklistItems": "list", "recurrence": "object"},
}
ENUM_FIELDS = {"sensitivity", "showAs", "importance", "status"}


def _graph_base(kind: str) -> dict:
    if kind == "event":
        return {"subject": "Review", "body": {"contentType": "text", "content": "agenda"},
                "start": {"dateTime": "2030-03-04T09:00:00", "timeZone": "UTC"},
                "end": {"dateTime": "2030-03-04T10:00:00", "timeZone": "UTC"},
                "location": {"displayName": "Room 1"}}
    if kind == "contact":
        return {"givenName": "Ada", "surname": "Lovelace", "businessAddress": {"city": "London"},
                "emailAddresses": [{"address": "ada@example.test", "name": "Ada"}]}
    return {"title": "Call back", "body": {"contentType": "text", "content": "x"},
            "dueDateTime": {"dateTime": "2030-03-04T00:00:00", "timeZone": "UTC"}}


def _set(body: dict, path: str, value) -> dict:
    out = json.loads(json.dumps(body))
    node = out
    *parents, last = path.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return out


@pytest.fixture
def graph_env():
    mailbox = mailbox_ensure("hostile@contoso.test")
    session = sandbox_session()
    session.headers["Authorization"] = f"Bearer {access_token_issue(mailbox)}"
    todo = todo_default_list(mailbox)
    event, _ = event_create(mailbox, _graph_base("event"))
    contact = contact_create(mailbox, _graph_base("contact"))
    task = todo_task_create(mailbox, _graph_base("task"), todo)
    urls = {
        "event": ("/me/events", f"/me/events/{event.graph_id}"),
        "contact": ("/me/contacts", f"/me/contacts/{contact.graph_id}"),
        "task": (f"/me/todo/lists/{todo.graph_id}/tasks", f"/me/todo/lists/{todo.graph_id}/tasks/{task.graph_id}"),
    }
    return mailbox, session, urls


def _mailbox_state(mailbox) -> list:
    return list(Item.objects.filter(mailbox=mailbox).order_by("pk").values_list("graph_id", "change_key", "deleted",
                                                                                 "data"))


def _graph_send(env, kind: str, op: str, raw: bytes):
    """Send; assert the answer is a well-formed Graph one and nothing was half-stored. Returns the status."""
    mailbox, session, urls = env
    before = _mailbox_state(mailbox)
    url = GRAPH + urls[kind][0 if op == "create" else 1]
    # The transport must answer, never raise the emulator's exception into the caller.
    response = session.request("POST" if op == "create" else "PATCH", url, data=raw,
                               headers={"Content-Type": "application/json"})
    assert response.status_code < 500, response.text[:300]
    if response.status_code >= 400:
        error = response.json()["error"]
        assert isinstance(error["code"], str) and error["code"]
        assert isinstance(error["message"], str) and error["message"]
        assert _mailbox_state(mailbox) == before, "a refused request changed the mailbox"
    else:
        # Whatever was accepted is whole: it reads back, and the listing still renders.
        item_id = response.json()["id"]
        item_url = url if op == "update" else f"{url}/{item_id}"
        assert session.get(item_url).status_code == 200
        assert session.get(GRAPH + urls[kind][0]).status_code == 200
    return response.status_code


GRAPH_CASES = st.sampled_from([(k, f, t) for k, fields in GRAPH_TYPES.items() for f, t in fields.items()])


@HYPOTHESIS
@given(case=GRAPH_CASES, op=st.sampled_from(["create", "update"]), data=st.data())
@example(case=("event", "location", "object"), op="create", data=None)
def test_graph_refuses_wrong_types_with_400_and_stores_nothing(graph_env, case, op, data):
    kind, path, expected = case
    if data is None:  # the issue's example: a string location
        value = "Room 1"
    elif path in ENUM_FIELDS:
        value = data.draw(JSON_VALUES.filter(lambda v: v is not None and v not in (
            "low", "normal", "high", "notStarted", "inProgress", "completed", "waitingOnOthers", "deferred",
            "personal", "private", "confidential", "free", "tentative", "busy", "oof", "workingElsewhere",
            "unknown")))
    else:
        value = data.draw(_not(expected))
    body = _set(_graph_base(kind), path, value)
    assert 400 <= _graph_send(graph_env, kind, op, json.dumps(body).encode()) < 500


@HYPOTHESIS
@given(case=GRAPH_CASES.filter(lambda c: c[2] == "str"), op=st.sampled_from(["create", "update"]),
       value=st.one_of(UNSTORABLE, st.just(HUGE), st.none()))
@example(case=("event", "transactionId", "str"), op="create", value="ab\ud800cd")  # once a 500
def test_graph_nul_huge_and_null_values_are_whole_or_refused(graph_env, case, op, value):
    kind, path, _ = case
    body = _set(_graph_base(kind), path, value)
    status = _graph_send(graph_env, kind, op, json.dumps(body).encode())
    if isinstance(value, str) and value != HUGE:
        assert 400 <= status < 500  # U+0000 / a lone surrogate cannot be stored


@HYPOTHESIS
@given(kind=st.sampled_from(list(GRAPH_TYPES)), op=st.sampled_from(["create", "update"]), raw=RAW_BODIES)
def test_graph_refuses_bodies_that_are_not_a_json_object_in_utf8(graph_env, kind, op, raw):
    status = _graph_send(graph_env, kind, op, raw)
    assert 400 <= status < 500


@pytest.mark.parametrize(("kind", "path", "value"), [
    ("event", "location", "Room 1"), ("event", "reminderMinutesBeforeStart", "abc"),
    ("event", "body", "agenda"), ("contact", "businessAddress", "1 Main St"), ("contact", "givenName", 5),
    ("task", "body", "x"), ("task", "title", 5),
])
def test_the_issues_examples_answer_400_in_graphs_envelope(graph_env, kind, path, value):
    mailbox, session, urls = graph_env
    before = Item.objects.filter(mailbox=mailbox).count()
    response = session.post(GRAPH + urls[kind][0], json=_set(_graph_base(kind), path, value))
    assert response.status_code == 400
    assert response.json()["error"]["code"] in ("RequestBodyRead", "BadRequest", "ErrorInvalidRequest")
    assert path in response.json()["error"]["message"]
    assert Item.objects.filter(mailbox=mailbox).count() == before


def test_a_batch_with_hostile_inner_bodies_answers_each_in_graphs_envelope(graph_env):
    mailbox, session, urls = graph_env
    before = Item.objects.filter(mailbox=mailbox).count()
    requests_ = [{"id": str(i), "method": "POST", "url": urls["contact"][0], "body": body,
                  "headers": {"Content-Type": "application/json"}}
                 for i, body in enumerate([{"givenName": ["x"]}, {"businessAddress": "x"}, {"givenName": "ok"}])]
    answer = session.post(f"{GRAPH}/$batch", json={"requests": requests_})
    assert answer.status_code == 200
    statuses = {r["id"]: r["status"] for r in answer.json()["responses"]}
    assert statuses == {"0": 400, "1": 400, "2": 201}
    assert Item.objects.filter(mailbox=mailbox).count() == before + 1
    assert session.post(f"{GRAPH}/$batch", data=b"\xff{", headers={"Content-Type": "application/json"}
                        ).status_code == 400


# --- Salesforce --------------------------------------------------------------------------------

SF_TYPES = {
    "Event": {"Subject": "string", "Location": "string", "Description": "string", "StartDateTime": "datetime",
              "EndDateTime": "datetime", "IsAllDayEvent": "boolean", "DurationInMinutes": "int",
              "ShowAs": "picklist", "ActivityDate": "date", "LinkPoint_Key__c": "string"},
    "Contact": {"FirstName": "string", "LastName": "string", "Email": "string", "Phone": "string",
                "Title": "string", "Birthdate": "date", "Description": "string", "MailingCity": "string"},
    "Task": {"Subject": "string", "ActivityDate": "date", "Status": "picklist", "Priority": "picklist",
             "Description": "string", "IsReminderSet": "boolean", "ReminderDateTime": "datetime"},
}


def _sf_wrong(expected: str):
    """Values Salesforce's reader cannot turn into the field's type."""
    if expected == "string":  # numbers and booleans are read as their text, as Salesforce does
        return JSON_VALUES.filter(lambda v: isinstance(v, (list, dict)))
    if expected == "boolean":
        return JSON_VALUES.filter(lambda v: v is not None and not isinstance(v, bool)
                                  and str(v).lower() not in ("true", "false"))
    if expected == "int":
        return JSON_VALUES.filter(lambda v: v is not None and (isinstance(v, (bool, list, dict)) or (
            isinstance(v, float) and not v.is_integer()) or (isinstance(v, str) and not v.strip().lstrip("-")
                                                              .isdigit())))
    if expected == "picklist":
        return JSON_VALUES.filter(lambda v: v is not None and not (isinstance(v, str) and v in (
            "Busy", "OutOfOffice", "Free", "Not Started", "In Progress", "Completed", "Waiting on someone else",
            "Deferred", "High", "Normal", "Low")))
    return JSON_VALUES.filter(lambda v: v is not None and not isinstance(v, str)) | st.sampled_from(
        ["soon", "2030-13-45", "yesterday 5pm", "31/12/2030"])


def _sf_base(sobject: str) -> dict:
    if sobject == "Event":
        return {"Subject": "Review", "StartDateTime": "2030-03-04T09:00:00Z", "EndDateTime": "2030-03-04T10:00:00Z"}
    if sobject == "Contact":
        return {"FirstName": "Ada", "LastName": "Lovelace", "Email": "ada@example.test"}
    return {"Subject": "Call back", "ActivityDate": "2030-03-04", "Status": "Not Started", "Priority": "Normal"}


@pytest.fixture
def sf_env():
    user = sf_user_ensure(email="hostile@initech.test")
    session = sandbox_session()
    session.headers["Authorization"] = f"Bearer {sf_session_issue(user=user)}"
    base = f"{user.org.instance_url}/services/data/v62.0"
    ids = {name: sf_record_create(user=user, sobject=name, fields=_sf_base(name))["Id"] for name in SF_TYPES}
    return user, session, base, ids


def _org_state(org) -> list:
    return list(SfRecord.objects.filter(org=org).order_by("pk").values_list("sf_id", "system_modstamp", "is_deleted",
                                                                            "fields"))


def _sf_send(env, sobject: str, op: str, raw: bytes) -> list[bool]:
    """Send; assert a well-formed answer and nothing half-stored. Returns per-record success."""
    user, session, base, ids = env
    before = _org_state(user.org)
    count_before = len(before)
    if op == "create":
        response = session.post(f"{base}/sobjects/{sobject}/", data=raw, headers={"Content-Type": "application/json"})
    elif op == "update":
        response = session.patch(f"{base}/sobjects/{sobject}/{ids[sobject]}", data=raw,
                                 headers={"Content-Type": "application/json"})
    else:
        response = session.request("POST" if op == "collection-create" else "PATCH", f"{base}/composite/sobjects",
                                   data=raw, headers={"Content-Type": "application/json"})
    assert response.status_code < 500, response.text[:300]
    if response.status_code >= 400:
        errors = response.json()
        assert isinstance(errors, list) and errors
        assert all(isinstance(e["message"], str) and isinstance(e["errorCode"], str) and e["errorCode"]
                   for e in errors)
        assert _org_state(user.org) == before, "a refused request changed the org"
        return [False]
    if op in ("create", "update"):
        return [True]
    results = response.json()
    assert isinstance(results, list)
    for r in results:
        assert isinstance(r["success"], bool)
        if not r["success"]:
            assert r["errors"] and all(isinstance(e["statusCode"], str) and isinstance(e["message"], str)
                                       for e in r["errors"])
    after = _org_state(user.org)
    created = len(after) - count_before
    assert created == (sum(r["success"] for r in results) if op == "collection-create" else 0)
    if not any(r["success"] for r in results):
        assert after == before
    return [r["success"] for r in results]


def _sf_body(env, sobject: str, op: str, fields: dict) -> bytes:
    ids = env[3]
    if op in ("create", "update"):
        return json.dumps(fields).encode()
    record = {"attributes": {"type": sobject}, **fields}
    if op == "collection-update":
        record["Id"] = ids[sobject]
    return json.dumps({"allOrNone": False, "records": [record]}).encode()


SF_CASES = st.sampled_from([(s, f, t) for s, fields in SF_TYPES.items() for f, t in fields.items()])
SF_OPS = st.sampled_from(["create", "update", "collection-create", "collection-update"])


@HYPOTHESIS
@given(case=SF_CASES, op=SF_OPS, data=st.data())
def test_salesforce_refuses_wrong_types_and_stores_nothing(sf_env, case, op, data):
    sobject, field, expected = case
    value = data.draw(_sf_wrong(expected))
    outcome = _sf_send(sf_env, sobject, op, _sf_body(sf_env, sobject, op, {**_sf_base(sobject), field: value}))
    assert outcome == [False]


@HYPOTHESIS
@given(case=SF_CASES, op=SF_OPS, value=st.one_of(UNSTORABLE, st.just(HUGE), st.none(), JSON_SCALARS, EXTREMES))
def test_salesforce_nul_huge_null_and_odd_values_are_whole_or_refused(sf_env, case, op, value):
    sobject, field, expected = case
    outcome = _sf_send(sf_env, sobject, op, _sf_body(sf_env, sobject, op, {**_sf_base(sobject), field: value}))
    if isinstance(value, str) and value != HUGE and ("\x00" in value or "\ud800" in value):
        assert outcome == [False]


@HYPOTHESIS
@given(sobject=st.sampled_from(list(SF_TYPES)), op=SF_OPS, raw=RAW_BODIES)
def test_salesforce_refuses_bodies_that_are_not_json_in_utf8(sf_env, sobject, op, raw):
    assert _sf_send(sf_env, sobject, op, raw) == [False]


@pytest.mark.parametrize(("sobject", "fields"), [
    ("Event", {"Subject": "x", "StartDateTime": "2030-01-01T00:00:00Z", "DurationInMinutes": 2**40}),
    ("Event", {"Subject": "x", "StartDateTime": "9999-12-31T23:59:00Z", "DurationInMinutes": 60}),
    ("Event", {"Subject": "x", "IsAllDayEvent": True, "ActivityDate": "9999-12-31", "DurationInMinutes": 2880}),
    ("Event", {"Subject": "x", "IsAllDayEvent": True, "ActivityDate": "2030-01-01",
               "EndDateTime": "0001-01-01T00:00:00Z"}),
    ("Event", {"Subject": "x", "StartDateTime": "0001-01-01T00:00:00+01:00", "DurationInMinutes": 60}),
    ("Contact", {"LastName": "x", "Email": "a\x00@b.test"}),
])
@pytest.mark.parametrize("op", ["create", "update", "collection-create", "collection-update"])
def test_salesforce_edges_that_once_answered_500(sf_env, sobject, fields, op):
    assert _sf_send(sf_env, sobject, op, _sf_body(sf_env, sobject, op, fields)) == [False]


@pytest.mark.parametrize(("path", "value"), [
    ("end", {"dateTime": "9999-12-31T23:59:59", "timeZone": "Dateline Standard Time"}),
    ("recurrence", {"pattern": {"type": "absoluteYearly", "interval": 1, "month": 13, "dayOfMonth": 4},
                    "range": {"type": "noEnd", "startDate": "2030-03-04"}}),
    ("recurrence", {"pattern": {"type": "daily", "interval": 2**31 - 1}, "range": {"type": "noEnd",
                                                                                  "startDate": "2030-03-04"}}),
    ("recurrence", {"pattern": {"type": "daily", "interval": 1},
                    "range": {"type": "numbered", "startDate": "2030-03-04", "numberOfOccurrences": -5}}),
    ("recurrence", {"pattern": {"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["monday"],
                                "index": "fifth"}, "range": {"type": "noEnd", "startDate": "2030-03-04"}}),
])
@pytest.mark.parametrize("op", ["create", "update"])
def test_graph_event_edges_that_once_answered_500_or_broke_the_series(graph_env, path, value, op):
    assert 400 <= _graph_send(graph_env, "event", op, json.dumps(_set(_graph_base("event"), path, value)).encode()) < 500
    # ...and the event is still readable and updatable afterwards.
    assert _graph_send(graph_env, "event", "update", json.dumps({"subject": "Still fine"}).encode()) == 200


def test_the_transport_turns_an_emulator_crash_into_a_500_in_the_services_shape(graph_env, sf_env, monkeypatch):
    from sandbox.microsoft import views_graph
    from sandbox.salesforce import views

    def boom(*args, **kwargs):
        raise RuntimeError("emulator bug")

    monkeypatch.setattr(views_graph, "_listing", boom)
    mailbox, session, urls = graph_env
    answer = session.get(GRAPH + urls["contact"][0])
    assert answer.status_code == 500 and answer.json()["error"]["code"] == "InternalServerError"
    monkeypatch.setattr(views, "record_api", boom)
    user, sf_session, base, ids = sf_env
    answer = sf_session.get(f"{base}/sobjects/Contact/{ids['Contact']}")
    assert answer.status_code == 500 and answer.json()[0]["errorCode"] == "UNKNOWN_EXCEPTION"
