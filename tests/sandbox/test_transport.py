import pytest
import requests

from sandbox.accounting import api_counts, api_counts_reset
from sandbox.faults import fault_add
from sandbox.transport import sandbox_session

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])


def test_hosts_outside_the_sandbox_never_reach_the_network():
    with pytest.raises(requests.exceptions.ConnectionError, match="not a sandbox host"):
        sandbox_session().get("https://graph.microsoft.com/v1.0/me")


def test_unknown_paths_answer_in_each_services_own_error_shape():
    session = sandbox_session()
    graph = session.get("https://graph.sandbox.test/v1.0/nowhere")
    assert graph.status_code == 404
    assert graph.json()["error"]["innerError"]["request-id"]
    sf = session.get("https://acme.my.salesforce.sandbox.test/services/data/v62.0/nowhere")
    assert sf.status_code == 404
    assert sf.json()[0]["errorCode"] == "NOT_FOUND"


def test_every_request_is_counted_per_side_and_token():
    api_counts_reset()
    session = sandbox_session()
    for _ in range(3):
        session.get("https://graph.sandbox.test/v1.0/x", headers={"Authorization": "Bearer AAA"})
    session.get("https://graph.sandbox.test/v1.0/x", headers={"Authorization": "Bearer BBB"})
    session.get("https://acme.my.salesforce.sandbox.test/services/data/v62.0/x")
    assert api_counts(side="outlook") == 4
    assert api_counts(side="outlook", token="AAA") == 3
    assert api_counts(side="salesforce") == 1
    assert api_counts() == 5


def test_fault_rules_fire_the_given_number_of_times_then_stop():
    fault_add(side="outlook", kind="http_429", path_pattern="/me/events", count=2, retry_after=7)
    session = sandbox_session()
    first = session.get("https://graph.sandbox.test/v1.0/me/events")
    assert first.status_code == 429
    assert first.headers["Retry-After"] == "7"
    assert first.json()["error"]["code"] == "TooManyRequests"
    assert session.get("https://graph.sandbox.test/v1.0/me/events").status_code == 429
    # The rule is spent: the request reaches Graph, which wants a bearer token (401, as the real one).
    assert session.get("https://graph.sandbox.test/v1.0/me/events").status_code == 401
    assert session.get("https://graph.sandbox.test/v1.0/me/contacts").status_code == 401


def test_timeout_and_request_limit_faults():
    fault_add(side="salesforce", kind="timeout", count=1)
    fault_add(side="salesforce", kind="request_limit_exceeded", count=1)
    session = sandbox_session()
    url = "https://acme.my.salesforce.sandbox.test/services/data/v62.0/limits/"
    with pytest.raises(requests.exceptions.ReadTimeout):
        session.get(url)
    limited = session.get(url)
    assert limited.status_code == 403
    assert limited.json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"


def test_probabilistic_faults_repeat_with_the_same_seed():
    def pattern(seed):
        from sandbox.faults import faults_clear

        faults_clear()
        fault_add(side="outlook", kind="http_503", count=None, probability=0.5, seed=seed)
        session = sandbox_session()
        return [session.get("https://graph.sandbox.test/v1.0/x").status_code for _ in range(12)]

    first = pattern(42)
    assert first == pattern(42)
    assert 503 in first and 404 in first
