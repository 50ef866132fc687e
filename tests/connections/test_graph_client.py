"""GraphClient against the sandbox with real msal: refresh, retries, paging, batching, errors."""

from __future__ import annotations

import pytest

from connections import errors
from connections.clients import BatchRequest, GraphClient, RequestCounter
from connections.http import BACKOFF_BASE, MAX_ATTEMPTS
from connections.models import Connection
from connections.selectors import graph_client_for
from orgs.models import Membership
from sandbox.accounting import api_counts, api_counts_reset
from sandbox.faults import fault_add

from .conftest import DBS

pytestmark = pytest.mark.django_db(databases=DBS)


@pytest.fixture
def carol_ms(connected, carol):
    connected(carol, providers=("microsoft",))
    return Membership.objects.get(user=carol)


def _client(membership, waits=None, counter=None):
    return graph_client_for(membership, counter=counter, sleep=(waits.append if waits is not None else None))


def test_a_fresh_token_is_used_without_asking_microsoft(carol_ms):
    counter = RequestCounter()
    client = graph_client_for(carol_ms, counter=counter)
    api_counts_reset()
    assert client.request("GET", "/me")["userPrincipalName"] == "carol@acme.test"
    client.request("GET", "/me")
    assert api_counts(family="identity-token") == 0
    # The stored token is still good: no msal app, so no OIDC metadata read either;
    # only the two Graph calls are counted.
    assert api_counts(family="identity-discovery") == 0
    assert counter.outlook == 2


def test_silent_refresh_when_the_token_is_expiring(carol_ms, clock):
    before = Connection.objects.get(membership=carol_ms, provider="microsoft")
    clock.advance(hours=2)  # the sandbox's token (1 h) and our record of it have both expired
    api_counts_reset()
    counter = RequestCounter()
    client = graph_client_for(carol_ms, counter=counter)
    assert client.request("GET", "/me")["userPrincipalName"] == "carol@acme.test"
    assert api_counts(family="identity-token") == 1
    after = Connection.objects.get(pk=before.pk)
    assert after.access_expires_at > before.access_expires_at
    assert after.token_blob != before.token_blob and after.status == "connected"
    assert counter.outlook == 3  # metadata, refresh, /me


def test_refresh_is_single_flight(carol_ms, clock):
    clock.advance(hours=2)
    stale_a = Connection.objects.get(membership=carol_ms, provider="microsoft")
    stale_b = Connection.objects.get(membership=carol_ms, provider="microsoft")
    api_counts_reset()
    GraphClient(stale_a).request("GET", "/me")
    # B loaded the row before A refreshed; under the row lock it sees A's fresh token.
    GraphClient(stale_b).request("GET", "/me")
    assert api_counts(family="identity-token") == 1


def test_a_401_refreshes_once_and_retries(carol_ms):
    fault_add(side="outlook", kind="expired_token", path_pattern=r"/v1\.0/me$", count=1)
    api_counts_reset()
    assert _client(carol_ms).request("GET", "/me")["userPrincipalName"] == "carol@acme.test"
    assert api_counts(family="identity-token") == 1


def test_refused_refresh_token_sets_needs_reauth_and_keeps_the_tokens(carol_ms, clock, client_for, carol):
    fault_add(side="outlook", kind="revoked_refresh_token", path_pattern="/token", count=None)
    clock.advance(hours=2)
    with pytest.raises(errors.AuthError):
        _client(carol_ms).request("GET", "/me")
    conn = Connection.objects.get(membership=carol_ms, provider="microsoft")
    assert conn.status == "needs_reauth"
    assert "reconnect" in conn.last_error.lower() and "invalid_grant" in conn.last_error
    assert conn.token_blob  # nothing is thrown away; a reconnect replaces it
    page = client_for(carol).get("/o/acme/connections/")
    assert b"Reconnect needed" in page.content
    # and the engine's next run stops at once
    with pytest.raises(errors.AuthError):
        graph_client_for(carol_ms)


def test_backoff_honours_retry_after(carol_ms):
    fault_add(side="outlook", kind="http_429", path_pattern=r"/v1\.0/me$", count=2, retry_after=7)
    waits: list[float] = []
    assert _client(carol_ms, waits).request("GET", "/me")["userPrincipalName"] == "carol@acme.test"
    assert len(waits) == 2
    for attempt, wait in enumerate(waits):
        assert 7 <= wait <= 7 + BACKOFF_BASE * 2**attempt


def test_a_429_storm_ends_in_rate_limited(carol_ms):
    fault_add(side="outlook", kind="http_429", path_pattern=r"/v1\.0/me$", count=None, retry_after=7)
    waits: list[float] = []
    with pytest.raises(errors.RateLimited) as caught:
        _client(carol_ms, waits).request("GET", "/me")
    assert caught.value.retry_after == 7 and caught.value.status == 429
    assert len(waits) == MAX_ATTEMPTS - 1 and all(w >= 7 for w in waits)


def test_a_huge_retry_after_is_not_slept_through(carol_ms):
    fault_add(side="outlook", kind="http_429", path_pattern=r"/v1\.0/me$", count=None, retry_after=3600)
    waits: list[float] = []
    with pytest.raises(errors.RateLimited) as caught:
        _client(carol_ms, waits).request("GET", "/me")
    assert caught.value.retry_after == 3600 and waits == []


def test_jitter_without_retry_after_stays_within_the_exponential_bound(carol_ms):
    fault_add(side="outlook", kind="http_503", path_pattern=r"/v1\.0/me$", count=None, retry_after=0)
    waits: list[float] = []
    with pytest.raises(errors.TransientError):
        _client(carol_ms, waits).request("GET", "/me")
    assert len(waits) == MAX_ATTEMPTS - 1
    assert all(0 <= w <= BACKOFF_BASE * 2**i for i, w in enumerate(waits))


def test_timeouts_on_reads_are_retried_then_transient(carol_ms):
    fault_add(side="outlook", kind="timeout", path_pattern=r"/v1\.0/me$", count=None)
    waits: list[float] = []
    with pytest.raises(errors.TransientError) as caught:
        _client(carol_ms, waits).request("GET", "/me")
    assert caught.value.code == "timeout" and len(waits) == MAX_ATTEMPTS - 1


def test_a_500_on_a_write_is_not_repeated(carol_ms):
    fault_add(side="outlook", kind="http_500", path_pattern=r"/v1\.0/me/events$", method="POST", count=None)
    waits: list[float] = []
    with pytest.raises(errors.TransientError) as caught:
        _client(carol_ms, waits).request("POST", "/me/events", json={"subject": "x"})
    assert caught.value.status == 500 and waits == []


def test_a_lost_answer_to_a_write_is_transient_not_retried(carol_ms):
    fault_add(side="outlook", kind="lost_response", path_pattern=r"/v1\.0/me/events$", method="POST", count=1)
    waits: list[float] = []
    with pytest.raises(errors.TransientError):
        _client(carol_ms, waits).request("POST", "/me/events", json={
            "subject": "Lost", "start": {"dateTime": "2030-01-01T10:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2030-01-01T11:00:00", "timeZone": "UTC"}})
    assert waits == []


def test_typed_errors(carol_ms):
    client = _client(carol_ms)
    gone = client.request("POST", "/me/events", json=_event(1))["id"]
    assert client.request("DELETE", f"/me/events/{gone}") is None
    with pytest.raises(errors.NotFound):
        client.request("GET", f"/me/events/{gone}")
    fault_add(side="outlook", kind="graph_410", path_pattern="delta", count=1)
    with pytest.raises(errors.SyncStateGone):
        list(client.iter_pages("/me/contacts/delta"))


def _event(i: int) -> dict:
    return {"subject": f"Batch {i}", "start": {"dateTime": f"2030-01-{1 + i % 28:02d}T10:00:00", "timeZone": "UTC"},
            "end": {"dateTime": f"2030-01-{1 + i % 28:02d}T11:00:00", "timeZone": "UTC"}}


def test_batches_of_twenty_in_input_order(carol_ms):
    client = _client(carol_ms)
    creates = [BatchRequest(id=f"c{i}", method="POST", url="/me/events", body=_event(i)) for i in range(45)]
    api_counts_reset()
    answers = client.batch(creates)
    assert api_counts(family="graph-batch") == 3  # 20 + 20 + 5
    assert [a.id for a in answers] == [r.id for r in creates]
    assert all(a.status == 201 for a in answers)
    assert [a.body["subject"] for a in answers] == [f"Batch {i}" for i in range(45)]

    gets = [BatchRequest(id=str(i), method="GET", url=f"/me/events/{a.body['id']}") for i, a in enumerate(answers)]
    client.request("DELETE", f"/me/events/{answers[0].body['id']}")
    results = client.batch(gets)
    assert results[0].status == 404  # a per-item error is an answer, not an exception
    assert [r.body["subject"] for r in results[1:]] == [f"Batch {i}" for i in range(1, 45)]


def test_paging_and_delta_links(carol_ms):
    client = _client(carol_ms)
    client.batch([BatchRequest(id=str(i), method="POST", url="/me/events", body=_event(i)) for i in range(25)])
    pages = list(client.iter_pages("/me/events", max_page_size=10))
    assert [len(p.items) for p in pages] == [10, 10, 5]
    assert pages[-1].next_link is None

    params = {"startDateTime": "2029-12-01T00:00:00Z", "endDateTime": "2030-03-01T00:00:00Z"}
    rounds = list(client.iter_pages("/me/calendarView/delta", params=params, max_page_size=10))
    assert sum(len(p.items) for p in rounds) == 25
    assert rounds[-1].delta_link and all(p.delta_link is None for p in rounds[:-1])
    again = list(client.iter_pages(rounds[-1].delta_link))
    assert sum(len(p.items) for p in again) == 0 and again[-1].delta_link
