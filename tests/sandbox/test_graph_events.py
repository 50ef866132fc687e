# ruff: noqa: F811  (pytest fixtures imported from graph_helpers)
"""Graph events through requests: CRUD, idempotency, concurrency, recurrence, extended properties."""

import pytest

from sandbox.microsoft.models import Item
from sandbox.microsoft.services import access_token_issue, event_touch

from .graph_helpers import GRAPH, event_body, graph, mailbox, token  # noqa: F401

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])
PROP = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name LinkPointSfId"


def test_create_read_update_delete(graph):
    created = graph.post(f"{GRAPH}/me/events", json=event_body())
    assert created.status_code == 201
    event = created.json()
    assert event["type"] == "singleInstance"
    assert event["start"] == {"dateTime": "2030-03-04T08:00:00.0000000", "timeZone": "UTC"}
    assert event["originalStartTimeZone"] == "W. Europe Standard Time"
    assert event["@odata.etag"] == f'W/"{event["changeKey"]}"'
    assert event["lastModifiedDateTime"].endswith("Z")

    local = graph.get(f"{GRAPH}/me/events/{event['id']}",
                      headers={"Prefer": 'outlook.timezone="Pacific Standard Time"'})
    assert local.headers["Preference-Applied"] == 'outlook.timezone="Pacific Standard Time"'
    assert local.json()["start"] == {"dateTime": "2030-03-04T00:00:00.0000000", "timeZone": "Pacific Standard Time"}

    patched = graph.patch(f"{GRAPH}/me/events/{event['id']}", json={"subject": "Renamed"})
    assert patched.status_code == 200
    assert patched.json()["subject"] == "Renamed"
    assert patched.json()["changeKey"] != event["changeKey"]

    assert graph.delete(f"{GRAPH}/me/events/{event['id']}").status_code == 204
    gone = graph.get(f"{GRAPH}/me/events/{event['id']}")
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "ErrorItemNotFound"


def test_malformed_ids_unknown_fields_and_bad_zones_are_400(graph):
    assert graph.get(f"{GRAPH}/me/events/not-an-id").json()["error"]["code"] == "ErrorInvalidIdMalformed"
    unknown = graph.post(f"{GRAPH}/me/events", json=event_body(subjekt="typo"))
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "RequestBodyRead"
    bad_tz = graph.post(f"{GRAPH}/me/events", json=event_body(tz="Mars/Olympus"))
    assert bad_tz.status_code == 400
    assert bad_tz.json()["error"]["code"] == "TimeZoneNotSupportedException"
    iana = graph.post(f"{GRAPH}/me/events", json=event_body(tz="America/New_York"))
    assert iana.json()["start"]["dateTime"] == "2030-03-04T14:00:00.0000000"


def test_transaction_id_makes_create_idempotent(graph, mailbox):
    body = event_body(transactionId="lp-7f1c2f0e")
    first = graph.post(f"{GRAPH}/me/events", json=body)
    second = graph.post(f"{GRAPH}/me/events", json=body)
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    assert second.json()["transactionId"] == "lp-7f1c2f0e"
    assert Item.objects.filter(mailbox=mailbox, kind="event").count() == 1


def test_if_match_with_a_stale_etag_is_412(graph, mailbox):
    event = graph.post(f"{GRAPH}/me/events", json=event_body()).json()
    event_touch(Item.objects.get(graph_id=event["id"]))  # Exchange changed it behind our back
    stale = graph.patch(f"{GRAPH}/me/events/{event['id']}", json={"subject": "Mine"},
                        headers={"If-Match": event["@odata.etag"]})
    assert stale.status_code == 412
    assert "innerError" in stale.json()["error"]
    fresh = graph.get(f"{GRAPH}/me/events/{event['id']}").json()
    assert fresh["subject"] == event["subject"]
    assert fresh["changeKey"] != event["changeKey"]
    ok = graph.patch(f"{GRAPH}/me/events/{event['id']}", json={"subject": "Mine"},
                     headers={"If-Match": fresh["@odata.etag"]})
    assert ok.status_code == 200
    assert graph.delete(f"{GRAPH}/me/events/{event['id']}", headers={"If-Match": fresh["@odata.etag"]}).status_code == 412


def test_extended_property_filter_and_expand(graph):
    tagged = graph.post(f"{GRAPH}/me/events", json=event_body(
        singleValueExtendedProperties=[{"id": PROP, "value": "00UAB000001xYzQ"}])).json()
    graph.post(f"{GRAPH}/me/events", json=event_body(subject="Other"))
    assert "singleValueExtendedProperties" not in tagged
    found = graph.get(f"{GRAPH}/me/events", params={
        "$filter": f"singleValueExtendedProperties/Any(ep: ep/id eq '{PROP}' and ep/value eq '00uab000001xyzq')",
        "$expand": f"singleValueExtendedProperties($filter=id eq '{PROP}')",
    }).json()["value"]
    assert [e["id"] for e in found] == [tagged["id"]]
    assert found[0]["singleValueExtendedProperties"] == [{"id": PROP, "value": "00UAB000001xYzQ"}]


def test_expired_and_unknown_tokens_are_401(graph, mailbox):
    expired = access_token_issue(mailbox, lifetime=-1)
    for bearer in (expired, "garbage"):
        answer = graph.get(f"{GRAPH}/me/events", headers={"Authorization": f"Bearer {bearer}"})
        assert answer.status_code == 401
        assert answer.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_series_occurrences_and_exceptions(graph):
    master = graph.post(f"{GRAPH}/me/events", json=event_body(
        subject="Weekly 1:1", start="2030-03-04T09:00:00", end="2030-03-04T09:30:00",
        recurrence={"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"], "firstDayOfWeek": "sunday"},
                    "range": {"type": "numbered", "startDate": "2030-03-04", "numberOfOccurrences": 6}})).json()
    assert master["type"] == "seriesMaster"
    window = {"startDateTime": "2030-03-01T00:00:00Z", "endDateTime": "2030-04-30T00:00:00Z"}
    view = graph.get(f"{GRAPH}/me/calendarView", params={**window, "$top": 50}).json()["value"]
    assert len(view) == 6
    assert {o["type"] for o in view} == {"occurrence"}
    assert {o["seriesMasterId"] for o in view} == {master["id"]}
    # Daylight saving starts in Europe on 31 March: the wall time stays 09:00, UTC moves.
    assert view[0]["start"]["dateTime"] == "2030-03-04T08:00:00.0000000"
    assert view[-1]["start"]["dateTime"] == "2030-04-08T07:00:00.0000000"

    second = view[1]
    moved = graph.patch(f"{GRAPH}/me/events/{second['id']}", json={"subject": "Moved 1:1"}).json()
    assert moved["type"] == "exception" and moved["id"] == second["id"]
    assert moved["originalStart"] == second["originalStart"]
    assert graph.delete(f"{GRAPH}/me/events/{view[2]['id']}").status_code == 204
    after = graph.get(f"{GRAPH}/me/calendarView", params={**window, "$top": 50}).json()["value"]
    assert len(after) == 5
    assert [o["type"] for o in after].count("exception") == 1
    listing = graph.get(f"{GRAPH}/me/events").json()["value"]
    assert [e["type"] for e in listing] == ["seriesMaster"]


def test_calendar_view_needs_a_window(graph):
    answer = graph.get(f"{GRAPH}/me/calendarView")
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "ErrorInvalidParameter"
    plus_as_space = graph.get(f"{GRAPH}/me/calendarView?startDateTime=2030-01-01T00:00:00+05:30&endDateTime=2030-02-01T00:00:00Z")
    assert plus_as_space.status_code == 400
