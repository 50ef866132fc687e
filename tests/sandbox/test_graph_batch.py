# ruff: noqa: F811  (pytest fixtures imported from graph_helpers)
"""$batch, fault injection on the Graph side, throttling and exact API counters."""

import pytest
import requests

from sandbox.accounting import api_counts, api_counts_reset
from sandbox.faults import fault_add
from sandbox.microsoft.models import Item
from sandbox.transport import sandbox_session

from .graph_helpers import GRAPH, event_body, graph, mailbox, token  # noqa: F401

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])
JSON = {"Content-Type": "application/json"}


def test_batch_runs_inner_requests_with_depends_on_and_424(graph, mailbox):
    api_counts_reset()
    answer = graph.post(f"{GRAPH}/$batch", json={"requests": [
        {"id": "1", "method": "POST", "url": "/me/events", "headers": JSON, "body": event_body(subject="A")},
        {"id": "2", "method": "POST", "url": "/me/events", "headers": JSON, "body": event_body(subjekt="bad")},
        {"id": "3", "method": "GET", "url": "/me/events?$top=5", "dependsOn": ["1"]},
        {"id": "4", "method": "DELETE", "url": "/me/events/AAMkAQAAAAAAAAAAAAAAAAAAAAAAAAA=", "dependsOn": ["2"]},
    ]})
    assert answer.status_code == 200
    by_id = {r["id"]: r for r in answer.json()["responses"]}
    assert by_id["1"]["status"] == 201 and by_id["1"]["body"]["subject"] == "A"
    assert by_id["2"]["status"] == 400 and by_id["2"]["body"]["error"]["code"] == "RequestBodyRead"
    assert by_id["3"]["status"] == 200 and len(by_id["3"]["body"]["value"]) == 1
    assert by_id["4"]["status"] == 424
    assert Item.objects.filter(mailbox=mailbox, kind="event").count() == 1
    assert api_counts(side="outlook") == 1  # one HTTP request on the wire
    assert api_counts(side="outlook", family="graph-batch") == 1


def test_batch_limit_is_20(graph):
    too_many = [{"id": str(i), "method": "GET", "url": "/me"} for i in range(21)]
    answer = graph.post(f"{GRAPH}/$batch", json={"requests": too_many})
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "BadRequest"
    assert graph.post(f"{GRAPH}/$batch", json={"requests": too_many[:20]}).status_code == 200


@pytest.mark.parametrize(("kind", "status", "code"), [
    ("http_429", 429, "TooManyRequests"),
    ("http_500", 500, "InternalServerError"),
    ("http_503", 503, "ServiceNotAvailable"),
    ("expired_token", 401, "InvalidAuthenticationToken"),
    ("graph_410", 410, "SyncStateNotFound"),
])
def test_fault_kinds_answer_in_graph_shape(graph, kind, status, code):
    fault_add(side="outlook", kind=kind, path_pattern="/me/events", count=1, retry_after=3)
    hit = graph.get(f"{GRAPH}/me/events")
    assert hit.status_code == status
    assert hit.json()["error"]["code"] == code
    if status in (429, 503):
        assert hit.headers["Retry-After"] == "3"
    assert graph.get(f"{GRAPH}/me/events").status_code == 200


def test_timeout_and_lost_response(graph, mailbox):
    fault_add(side="outlook", kind="timeout", method="POST", path_pattern="/me/events", count=1)
    with pytest.raises(requests.exceptions.ReadTimeout):
        graph.post(f"{GRAPH}/me/events", json=event_body(subject="Never arrives"))
    assert not Item.objects.filter(mailbox=mailbox, kind="event").exists()
    fault_add(side="outlook", kind="lost_response", method="POST", path_pattern="/me/events", count=1)
    with pytest.raises(requests.exceptions.ConnectionError):
        graph.post(f"{GRAPH}/me/events", json=event_body(subject="Committed", transactionId="tx-1"))
    # The write happened: retrying with the same transactionId finds it instead of duplicating.
    retry = graph.post(f"{GRAPH}/me/events", json=event_body(subject="Committed", transactionId="tx-1"))
    assert retry.status_code == 201
    assert Item.objects.filter(mailbox=mailbox, kind="event").count() == 1


def test_revoked_refresh_token_fault_on_the_token_endpoint(settings):
    fault_add(side="outlook", kind="revoked_refresh_token", path_pattern="/token", count=1)
    answer = sandbox_session().post("https://login.sandbox.test/common/oauth2/v2.0/token", data={
        "client_id": settings.MICROSOFT_CLIENT_ID, "client_secret": settings.MICROSOFT_CLIENT_SECRET,
        "grant_type": "refresh_token", "refresh_token": "x"})
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant" and 70008 in answer.json()["error_codes"]


def test_api_counters_are_exact_per_family_and_token(graph, token):
    api_counts_reset()
    graph.post(f"{GRAPH}/me/events", json=event_body())
    graph.get(f"{GRAPH}/me/events")
    graph.get(f"{GRAPH}/me/calendarView/delta", params={"startDateTime": "2030-01-01T00:00:00Z",
                                                       "endDateTime": "2030-12-31T00:00:00Z"})
    graph.get(f"{GRAPH}/me/contacts")
    assert api_counts(side="outlook", family="graph-events") == 2
    assert api_counts(side="outlook", family="graph-calendarview-delta") == 1
    assert api_counts(side="outlook", family="graph-contacts") == 1
    assert api_counts(side="outlook", token=token) == 4
    assert api_counts(side="salesforce") == 0
