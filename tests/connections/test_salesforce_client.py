"""SalesforceClient through the sandbox with real simple-salesforce."""

from __future__ import annotations

import pytest
import simple_salesforce
from simple_salesforce.exceptions import SalesforceExpiredSession

from connections import errors
from connections.clients import RequestCounter
from connections.http import MAX_ATTEMPTS
from connections.models import Connection, SalesforceUsage
from connections.selectors import salesforce_client_for
from orgs.models import Membership
from sandbox.accounting import api_counts, api_counts_reset
from sandbox.faults import fault_add
from sandbox.salesforce.services import sf_session_expire
from sandbox.transport import sandbox_session

from .conftest import DBS

pytestmark = pytest.mark.django_db(databases=DBS)


@pytest.fixture
def carol_sf(connected, carol):
    connected(carol, providers=("salesforce",))
    return Membership.objects.get(user=carol)


def _client(membership, waits=None, counter=None):
    kw = {"sleep": waits.append} if waits is not None else {}
    return salesforce_client_for(membership, counter=counter, **kw)


def _tokens(membership) -> dict:
    return Connection.objects.get(membership=membership, provider="salesforce").read_tokens()


def test_crud_and_usage_recorded_for_the_org(carol_sf, org_a):
    counter = RequestCounter()
    client = _client(carol_sf, counter=counter)
    record_id = client.create("Contact", {"LastName": "Lovelace", "Email": "ada@example.test"})
    client.update("Contact", record_id, {"FirstName": "Ada"})
    assert client.get("Contact", record_id)["FirstName"] == "Ada"
    client.delete("Contact", record_id)
    with pytest.raises(errors.NotFound):
        client.get("Contact", record_id)
    assert counter.salesforce == 5 and counter.outlook == 0
    usage = SalesforceUsage.objects.get(organization=org_a)
    assert usage.sf_org_id == Connection.objects.get(provider="salesforce").sf_org_id
    assert usage.used >= 5 and usage.limit > usage.used
    assert client.limits()["DailyApiRequests"]["Max"] == usage.limit


def test_collections_chunk_by_200_and_query_pages(carol_sf):
    client = _client(carol_sf)
    api_counts_reset()
    created = client.collection_create("Contact", [{"LastName": f"Person {i:03d}"} for i in range(450)])
    assert api_counts(family="sf-collections") == 3  # 200 + 200 + 50
    assert len(created) == 450 and all(r.success and r.id for r in created)

    updated = client.collection_update("Contact", [{"Id": r.id, "FirstName": "X"} for r in created])
    assert len(updated) == 450 and all(r.success for r in updated)
    assert api_counts(family="sf-collections") == 6

    got = client.collection_get("Contact", [r.id for r in created[:250]], ["Id", "FirstName"])
    assert [g["Id"] for g in got] == [r.id for r in created[:250]]

    rows = [row for page in client.query_pages("SELECT Id, LastName FROM Contact") for row in page]
    assert len(rows) == 450

    deleted = client.collection_delete([r.id for r in created])
    assert len(deleted) == 450 and all(r.success for r in deleted)
    gone = [row for page in client.query_pages("SELECT Id FROM Contact WHERE IsDeleted = true",
                                               include_deleted=True) for row in page]
    assert len(gone) == 450


def test_validation_errors_are_typed_with_fields(carol_sf):
    with pytest.raises(errors.ValidationFailed) as caught:
        _client(carol_sf).create("Contact", {"FirstName": "No last name"})
    assert caught.value.code == "REQUIRED_FIELD_MISSING" and "LastName" in caught.value.fields
    results = _client(carol_sf).collection_create("Contact", [{"LastName": "Ok"}, {"FirstName": "Bad"}])
    assert [r.success for r in results] == [True, False]
    assert results[1].errors[0]["statusCode"] == "REQUIRED_FIELD_MISSING"


def test_invalid_session_refreshes_once_and_retries(carol_sf):
    old = _tokens(carol_sf)
    sf_session_expire(token=old["access_token"])
    api_counts_reset()
    client = _client(carol_sf)
    assert client.create("Contact", {"LastName": "After refresh"})
    assert api_counts(family="sf-oauth-token") == 1
    new = _tokens(carol_sf)
    assert new["access_token"] != old["access_token"] and new["refresh_token"] == old["refresh_token"]


def test_refused_refresh_sets_needs_reauth(carol_sf):
    sf_session_expire(token=_tokens(carol_sf)["access_token"])
    fault_add(side="salesforce", kind="revoked_refresh_token", path_pattern="/services/oauth2/token", count=None)
    with pytest.raises(errors.AuthError):
        list(_client(carol_sf).query_pages("SELECT Id FROM Contact"))
    conn = Connection.objects.get(provider="salesforce")
    assert conn.status == "needs_reauth" and "invalid_grant" in conn.last_error
    assert conn.read_tokens()["refresh_token"]  # kept: links and history stay, a reconnect replaces it


def test_retry_after_and_rate_limited(carol_sf):
    fault_add(side="salesforce", kind="http_429", path_pattern="/query", count=2, retry_after=7)
    waits: list[float] = []
    assert list(_client(carol_sf, waits).query_pages("SELECT Id FROM Contact")) == [[]]
    assert len(waits) == 2 and all(7 <= w <= 7 + 2**i for i, w in enumerate(waits))

    fault_add(side="salesforce", kind="http_429", path_pattern="/query", count=None, retry_after=7)
    waits.clear()
    with pytest.raises(errors.RateLimited) as caught:
        list(_client(carol_sf, waits).query_pages("SELECT Id FROM Contact"))
    assert caught.value.retry_after == 7 and len(waits) == MAX_ATTEMPTS - 1


def test_daily_limit_and_server_errors(carol_sf):
    fault_add(side="salesforce", kind="request_limit_exceeded", path_pattern="/query", count=1)
    with pytest.raises(errors.RequestLimitExceeded):
        list(_client(carol_sf).query_pages("SELECT Id FROM Contact"))
    fault_add(side="salesforce", kind="http_500", path_pattern="/composite/sobjects", method="POST", count=None)
    waits: list[float] = []
    with pytest.raises(errors.TransientError):
        _client(carol_sf, waits).collection_create("Contact", [{"LastName": "X"}])
    assert waits == []  # a create that may have happened is not repeated blindly
    fault_add(side="salesforce", kind="timeout", path_pattern="/query", count=None)
    with pytest.raises(errors.TransientError):
        list(_client(carol_sf, waits).query_pages("SELECT Id FROM Contact"))
    assert len(waits) == MAX_ATTEMPTS - 1


def test_disconnect_revokes_the_salesforce_grant(carol_sf, client_for, carol):
    old = _tokens(carol_sf)
    conn = Connection.objects.get(provider="salesforce")
    api_counts_reset()
    response = client_for(carol).post("/o/acme/connections/salesforce/disconnect/", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert b"access was revoked" in response.content and b"Connect Salesforce" in response.content
    assert api_counts(family="sf-oauth-revoke") == 1
    conn.refresh_from_db()
    assert conn.status == "revoked" and conn.token_blob == ""
    # The old session no longer works at Salesforce.
    sf = simple_salesforce.Salesforce(instance_url=conn.sf_instance_url, session_id=old["access_token"],
                                      session=sandbox_session(), version="62.0")
    with pytest.raises(SalesforceExpiredSession):
        sf.query("SELECT Id FROM Contact")
    with pytest.raises(errors.AuthError):
        salesforce_client_for(carol_sf)
