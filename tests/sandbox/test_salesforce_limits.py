"""API allocation, Sforce-Limit-Info, exact counters, and each injected fault kind as the client sees it."""

import datetime as dt
from unittest import mock

import pytest
import requests
from django.utils import timezone
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
)

from sandbox.accounting import api_counts, api_counts_reset
from sandbox.faults import fault_add
from sandbox.salesforce.models import SfOrg
from sandbox.salesforce.services import sf_session_expire, sf_session_issue, sf_user_ensure
from sandbox.salesforce.testing import sf_client

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])


@pytest.fixture
def rep():
    return sf_user_ensure(email="lena@vandelay.test")


def test_every_response_carries_the_org_usage_and_limits_agree(rep):
    sf = sf_client(rep)
    sf.query("SELECT Id FROM Contact")
    assert sf.api_usage["api-usage"].used == 1 and sf.api_usage["api-usage"].total == 15000
    with pytest.raises(SalesforceMalformedRequest):
        sf.query("SELECT Nope FROM Contact")  # errors count too (simple-salesforce reads the header on success)
    limits = sf.limits()
    assert limits["DailyApiRequests"] == {"Max": 15000, "Remaining": 15000 - 3}
    assert sf.api_usage["api-usage"].used == 3


def test_usage_is_per_org_and_resets_each_day(rep):
    other = sf_client(sf_user_ensure(email="art@kramerica.test"))
    sf = sf_client(rep)
    sf.query("SELECT Id FROM Contact")
    other.query("SELECT Id FROM Contact")
    assert sf.api_usage["api-usage"].used == 1
    with mock.patch("django.utils.timezone.now", return_value=timezone.now() + dt.timedelta(days=1)):
        tomorrow = sf_client(rep)  # yesterday's session has timed out
        tomorrow.query("SELECT Id FROM Contact")
    assert tomorrow.api_usage["api-usage"].used == 1


def test_exhausted_allocation_answers_request_limit_exceeded(rep):
    SfOrg.objects.filter(pk=rep.org_id).update(api_daily_max=2)
    sf = sf_client(rep)
    sf.query("SELECT Id FROM Contact")
    sf.query("SELECT Id FROM Contact")
    with pytest.raises(SalesforceRefusedRequest) as caught:
        sf.query("SELECT Id FROM Contact")
    assert caught.value.status == 403
    assert caught.value.content[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"


def test_counters_are_exact_per_family_and_token(rep):
    token = sf_session_issue(user=rep)
    sf = sf_client(rep, token)
    api_counts_reset()
    cid = sf.Contact.create({"LastName": "Count"})["id"]
    sf.Contact.update(cid, {"Title": "x"})
    sf.Contact.get(cid)
    sf.query("SELECT Id FROM Contact")
    sf.restful("composite/sobjects", method="POST", json={"records": [{"attributes": {"type": "Task"},
                                                                        "Subject": "t"}]})
    assert api_counts(side="salesforce", family="sf-sobject") == 3
    assert api_counts(side="salesforce", family="sf-query") == 1
    assert api_counts(side="salesforce", family="sf-collections") == 1
    assert api_counts(side="salesforce", token=token) == 5
    assert api_counts(side="salesforce") == 5


def test_expired_and_unknown_sessions_map_to_expired_session(rep):
    token = sf_session_issue(user=rep)
    sf = sf_client(rep, token)
    sf_session_expire(token=token)
    with pytest.raises(SalesforceExpiredSession) as caught:
        sf.Contact.create({"LastName": "Late"})
    assert caught.value.content == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    with pytest.raises(SalesforceExpiredSession):
        sf_client(rep, "00Dxx!not-a-token").query("SELECT Id FROM Contact")


@pytest.mark.parametrize(("kind", "exception", "status"), [
    ("http_500", SalesforceGeneralError, 500),
    ("http_503", SalesforceGeneralError, 503),
    ("http_429", SalesforceError, 429),
    ("expired_token", SalesforceExpiredSession, 401),
    ("request_limit_exceeded", SalesforceRefusedRequest, 403),
])
def test_injected_faults_reach_simple_salesforce_as_the_real_errors(rep, kind, exception, status):
    sf = sf_client(rep)
    fault_add(side="salesforce", kind=kind, path_pattern="/query", count=1)
    with pytest.raises(exception) as caught:
        sf.query("SELECT Id FROM Contact")
    assert caught.value.status == status
    assert sf.query("SELECT Id FROM Contact")["totalSize"] == 0  # the rule fired once


def test_timeout_fault_raises_before_the_server_acts(rep):
    sf = sf_client(rep)
    fault_add(side="salesforce", kind="timeout", path_pattern="/sobjects/Contact", count=1)
    with pytest.raises(requests.exceptions.ReadTimeout):
        sf.Contact.create({"LastName": "Never"})
    assert sf.query("SELECT COUNT() FROM Contact")["totalSize"] == 0


def test_lost_response_commits_the_write(rep):
    sf = sf_client(rep)
    fault_add(side="salesforce", kind="lost_response", path_pattern="/composite/sobjects", count=1)
    with pytest.raises(requests.exceptions.ConnectionError):
        sf.restful("composite/sobjects", method="POST", json={"records": [
            {"attributes": {"type": "Contact"}, "LastName": "Ghost", "LinkPoint_Key__c": "g-1"}]})
    rows = sf.query("SELECT LastName FROM Contact WHERE LinkPoint_Key__c = 'g-1'")["records"]
    assert [r["LastName"] for r in rows] == ["Ghost"]


def test_revoked_refresh_token_fault_on_the_token_endpoint(rep):
    from django.conf import settings

    from sandbox.transport import sandbox_session

    fault_add(side="salesforce", kind="revoked_refresh_token", path_pattern="/services/oauth2/token", count=1)
    answer = sandbox_session().post("https://login.salesforce.sandbox.test/services/oauth2/token", data={
        "grant_type": "refresh_token", "refresh_token": "whatever", "client_id": settings.SALESFORCE_CLIENT_ID,
        "client_secret": settings.SALESFORCE_CLIENT_SECRET})
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"


def test_a_session_is_bound_to_its_org_instance(rep):
    other = sf_user_ensure(email="jerry@pendant.test")
    token = sf_session_issue(user=rep)
    from simple_salesforce import Salesforce

    from sandbox.transport import sandbox_session

    wrong_host = Salesforce(instance_url=other.org.instance_url, session_id=token, session=sandbox_session(),
                            version="62.0")
    with pytest.raises(SalesforceExpiredSession):
        wrong_host.query("SELECT Id FROM Contact")


def test_versions_list_names_the_pinned_version(rep):
    from sandbox.transport import sandbox_session

    versions = sandbox_session().get(f"{rep.org.instance_url}/services/data/").json()
    assert versions[-1] == {"label": "Winter '25", "url": "/services/data/v62.0", "version": "62.0"}


def test_rest_answers_over_the_dev_server_path_too(client, rep):
    token = sf_session_issue(user=rep)
    answer = client.get("/sandbox/salesforce/services/data/v62.0/query/", {"q": "SELECT Id, Username FROM User"},
                        HTTP_AUTHORIZATION=f"Bearer {token}")
    assert answer.status_code == 200
    assert answer.json()["records"][0]["Username"] == rep.username
    assert answer["Sforce-Limit-Info"] == "api-usage=1/15000"
    created = client.post("/sandbox/salesforce/services/data/v62.0/sobjects/Contact/", {"LastName": "Dev"},
                          content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert created.status_code == 201 and created.json()["success"] is True
