"""The emulators' concurrency limits as a client meets them: Graph's 4 requests in flight per app and
mailbox (429 + Retry-After, also inside a $batch), Salesforce's long-running request limit, shared by
every process on one Redis, a killed holder's slots freed by their expiry, and nothing at all when off."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.db import connections
from simple_salesforce.exceptions import SalesforceRefusedRequest

from sandbox import limits as sandbox_limits
from sandbox.limits import long_running_slots, mailbox_slots
from sandbox.microsoft.models import AccessToken
from sandbox.microsoft.services import access_token_issue, mailbox_ensure, token_hash
from sandbox.salesforce.services import sf_session_issue, sf_user_ensure
from sandbox.salesforce.testing import sf_client
from sandbox.transport import sandbox_session
from tests.conftest import skip_or_fail

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "sandbox"])

GRAPH = "https://graph.sandbox.test/v1.0"
HOLD_MS = 600  # long enough that requests started together are all still in flight


@pytest.fixture(autouse=True)
def _one_writer_at_a_time_on_sqlite(monkeypatch):
    """SQLite's in-memory test database (shared cache) answers a second writer at the same instant
    with "database table is locked" instead of waiting for it, as PostgreSQL or a file would. On
    SQLite the emulators' few milliseconds in the database take turns here; the latency sleep and
    the slots, which are what these tests are about, stay concurrent."""
    if connections["sandbox"].vendor != "sqlite":
        return
    import sandbox.limits
    import sandbox.transport

    lock = threading.RLock()

    def one_at_a_time(func):
        def wrapper(*args, **kwargs):
            with lock:
                return func(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(sandbox.transport, "api_count_record", one_at_a_time(sandbox.transport.api_count_record))
    monkeypatch.setattr(sandbox.limits, "_graph_identity", one_at_a_time(sandbox.limits._graph_identity))
    monkeypatch.setattr(sandbox.transport.SandboxAdapter, "_serve",
                        one_at_a_time(sandbox.transport.SandboxAdapter._serve))


@pytest.fixture
def limits(settings):
    """Limits on with a namespace of this test's own, and latency so that requests overlap."""
    conf = {"outlook": {"concurrent_per_mailbox": 4, "retry_after_seconds": 1},
            "namespace": f"lim-{uuid.uuid4().hex[:10]}", "slot_ttl_seconds": 1}
    settings.SANDBOX_LIMITS = conf
    settings.SANDBOX_LATENCY = {side: {"request_ms": HOLD_MS, "jitter_ms": 0, "op_ms": 0}
                                for side in ("outlook", "salesforce")}
    return conf


def _session(token: str):
    session = sandbox_session()
    session.headers["Authorization"] = f"Bearer {token}"
    return session


def _wait_until(check, timeout: float = 5.0) -> float:
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < timeout, "timed out"
        time.sleep(0.01)
    return time.monotonic() - start


def _slots(token: str):
    row = AccessToken.objects.get(token_hash=token_hash(token))
    return mailbox_slots(row.client_id, row.mailbox_id)


def _start(call, results: list, i: int) -> threading.Thread:
    def run():
        try:
            results[i] = call()
        except Exception as exc:  # noqa: BLE001 - the test reads it
            results[i] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _in_threads(calls):
    """Start the calls together, each in its own thread; their answers in call order."""
    results: list = [None] * len(calls)
    threads = [_start(call, results, i) for i, call in enumerate(calls)]
    for t in threads:
        t.join()
    return results


@contextmanager
def _holding(token: str, n: int):
    """n of the mailbox's slots taken by requests elsewhere for the duration of the block."""
    slots = _slots(token)
    held = slots.acquire(n, ttl=30)
    assert len(held) == n
    try:
        yield
    finally:
        slots.release(held)


def _contacts(token):
    return lambda: _session(token).get(f"{GRAPH}/me/contacts")


@pytest.fixture
def token():
    return access_token_issue(mailbox_ensure("fox@contoso.test", "Fox Mulder"))


def test_a_fifth_request_in_flight_on_one_mailbox_gets_graphs_429_and_limits_off_change_nothing(
        settings, limits, token):
    settings.SANDBOX_LIMITS = None
    assert [r.status_code for r in _in_threads([_contacts(token)] * 5)] == [200] * 5

    settings.SANDBOX_LIMITS = limits
    sandbox_limits.refused_reset()
    answers = _in_threads([_contacts(token)] * 5)
    assert sorted(r.status_code for r in answers) == [200, 200, 200, 200, 429]
    assert sandbox_limits.refused["outlook"] == 1  # what a benchmark prints
    refused = next(r for r in answers if r.status_code == 429)
    assert refused.headers["Retry-After"] == "1"
    error = refused.json()["error"]
    assert error["code"] == "ApplicationThrottled"
    assert error["message"] == "Application is over its MailboxConcurrency limit."
    assert error["innerError"]["request-id"] and error["innerError"]["date"]
    # The slots were given back with the answers: the mailbox takes four again.
    assert _slots(token).occupied() == 0
    assert [r.status_code for r in _in_threads([_contacts(token)] * 4)] == [200] * 4


def test_the_limit_is_per_app_and_mailbox(limits, token):
    other_mailbox = access_token_issue(mailbox_ensure("dana@contoso.test", "Dana Scully"))
    mailbox = AccessToken.objects.get(token_hash=token_hash(token)).mailbox
    other_app = access_token_issue(mailbox, client_id="another-app")
    answers = _in_threads([_contacts(token)] * 4 + [_contacts(other_mailbox)] * 4
                          + [_contacts(other_app)] * 4)
    assert [r.status_code for r in answers] == [200] * 12
    with _holding(token, 4):
        assert _session(token).get(f"{GRAPH}/me/contacts").status_code == 429
        assert _session(other_mailbox).get(f"{GRAPH}/me/contacts").status_code == 200
        assert _session(other_app).get(f"{GRAPH}/me/contacts").status_code == 200


def _batch(n, *, chained=False):
    requests_ = [{"id": str(i + 1), "method": "GET", "url": "/me/contacts"} for i in range(n)]
    if chained:
        for prev, r in zip(requests_, requests_[1:], strict=False):
            r["dependsOn"] = [prev["id"]]
    return {"requests": requests_}


def test_batch_requests_count_against_the_mailbox_and_are_throttled_one_by_one(limits, token):
    graph = _session(token)
    answers = [None]
    in_flight = _start(lambda: graph.post(f"{GRAPH}/$batch", json=_batch(8)), answers, 0)
    _wait_until(lambda: _slots(token).occupied() == 4)  # Graph sends Outlook 4 of them at a time
    assert _session(token).get(f"{GRAPH}/me/contacts").status_code == 429
    in_flight.join()
    assert answers[0].status_code == 200
    assert [r["status"] for r in answers[0].json()["responses"]] == [200] * 8  # a batch alone is within

    with _holding(token, 3):  # one slot left: the batch runs one lane of its four
        crowded = graph.post(f"{GRAPH}/$batch", json=_batch(8))
    assert crowded.status_code == 200
    responses = crowded.json()["responses"]
    assert [r["id"] for r in responses] == [str(i) for i in range(1, 9)]
    assert {r["id"]: r["status"] for r in responses if r["status"] == 200} == {"1": 200, "5": 200}
    throttled = [r for r in responses if r["status"] == 429]
    assert len(throttled) == 6
    assert all(r["headers"]["Retry-After"] == "1" for r in throttled)
    assert all(r["body"]["error"]["code"] == "ApplicationThrottled" for r in throttled)

    with _holding(token, 3):  # a dependsOn batch goes one request at a time: one slot is enough
        chained = graph.post(f"{GRAPH}/$batch", json=_batch(3, chained=True))
    assert [r["status"] for r in chained.json()["responses"]] == [200, 200, 200]

    with _holding(token, 4):  # no slot at all: every request 429, the batch itself 200
        full = graph.post(f"{GRAPH}/$batch", json=_batch(2))
    assert full.status_code == 200
    assert [r["status"] for r in full.json()["responses"]] == [429, 429]


def _redis_url() -> str:
    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/11"
    try:
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except Exception:  # noqa: BLE001
        skip_or_fail(f"Redis is not reachable at {url}")
    return url


HOLDER = """
import os, sys, time
import django
django.setup()
from sandbox.limits import mailbox_slots
held = mailbox_slots(sys.argv[1], int(sys.argv[2])).acquire(3, ttl=1)
print(len(held), flush=True)
time.sleep(120)
"""


def test_processes_sharing_redis_see_each_others_slots_and_a_killed_holders_slots_expire(
        settings, limits, token):
    url = _redis_url()
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": url, "KEY_PREFIX": ""}}
    row = AccessToken.objects.get(token_hash=token_hash(token))
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "linkpoint.settings", "REDIS_URL": url,
           "SANDBOX_LIMITS": json.dumps(limits)}
    env.pop("PYTEST_XDIST_WORKER", None)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, row.client_id, str(row.mailbox_id)],
                              cwd=Path(__file__).resolve().parents[2], env=env, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "3"  # another process holds three of the four
        answers = [None]
        in_flight = _start(_contacts(token), answers, 0)  # this process's request takes the fourth
        _wait_until(lambda: _slots(token).occupied() == 4)
        assert _session(token).get(f"{GRAPH}/me/contacts").status_code == 429
        in_flight.join()
        assert answers[0].status_code == 200
    finally:
        holder.kill()  # SIGKILL: it never gives its slots back
        holder.wait()
    freed_after = _wait_until(lambda: _slots(token).occupied() == 0, timeout=5)
    assert freed_after < 3
    assert [r.status_code for r in _in_threads([_contacts(token)] * 4)] == [200] * 4


@pytest.fixture
def budget(settings):
    """Graph's request budget at 5 requests per 10 minutes (a namespace of this test's own);
    no latency, and the concurrency limit is never reached by requests one after another."""
    conf = {"outlook": {"requests_per_window": 5, "window_seconds": 600},
            "namespace": f"lim-{uuid.uuid4().hex[:10]}"}
    settings.SANDBOX_LIMITS = conf
    left = 600 - time.time() % 600  # windows are aligned on multiples of their length
    if left < 20:  # don't let a window turn in the middle of the test
        time.sleep(left)
    return conf


def _statuses(token: str, n: int) -> list[int]:
    graph = _session(token)
    return [graph.get(f"{GRAPH}/me/contacts").status_code for _ in range(n)]


def test_two_apps_on_one_mailbox_each_have_their_own_request_budget_and_over_it_graph_answers_429(
        budget, token):
    mailbox = AccessToken.objects.get(token_hash=token_hash(token)).mailbox
    other_app = access_token_issue(mailbox, client_id="another-app")
    other_mailbox = access_token_issue(mailbox_ensure("dana@contoso.test", "Dana Scully"))

    assert _statuses(token, 5) == [200] * 5
    over = _session(token).get(f"{GRAPH}/me/contacts")
    assert over.status_code == 429
    assert over.json()["error"]["code"] == "ApplicationThrottled"
    assert 1 <= int(over.headers["Retry-After"]) <= 600  # the end of the 10-minute window
    # Another app on the same mailbox, and the same app on another mailbox, have budgets of their own.
    assert _statuses(other_app, 5) == [200] * 5
    assert _statuses(other_mailbox, 5) == [200] * 5
    assert _statuses(other_app, 1) == [429]
    assert _statuses(token, 2) == [429, 429]  # a refused request counts too: still over


def test_each_request_of_a_batch_counts_against_the_apps_budget(budget, token):
    answer = _session(token).post(f"{GRAPH}/$batch", json=_batch(7))
    assert answer.status_code == 200
    responses = answer.json()["responses"]
    assert [r["status"] for r in responses] == [200] * 5 + [429] * 2
    assert all(1 <= int(r["headers"]["Retry-After"]) <= 600 for r in responses[5:])
    assert _statuses(token, 1) == [429]


def test_the_budget_is_on_without_the_limits_and_a_new_window_starts_afresh(settings, monkeypatch, token):
    assert (sandbox_limits.DEFAULT_LIMITS["outlook"]["requests_per_window"],
            sandbox_limits.DEFAULT_LIMITS["outlook"]["window_seconds"]) == (10_000, 600)  # Graph's figures
    settings.SANDBOX_LIMITS = None
    monkeypatch.setitem(sandbox_limits.DEFAULT_LIMITS, "namespace", f"lim-{uuid.uuid4().hex[:10]}")
    monkeypatch.setitem(sandbox_limits.DEFAULT_LIMITS["outlook"], "requests_per_window", 3)
    monkeypatch.setitem(sandbox_limits.DEFAULT_LIMITS["outlook"], "window_seconds", 2)
    statuses = _statuses(token, 4)
    if statuses != [200, 200, 200, 429]:  # the 2-second window turned between two requests
        time.sleep(2)
        statuses = _statuses(token, 4)
    assert statuses == [200, 200, 200, 429]
    over = _session(token).get(f"{GRAPH}/me/contacts")
    assert over.status_code == 429
    time.sleep(int(over.headers["Retry-After"]))  # as a client is told to
    assert _statuses(token, 1) == [200]


SPENDER = """
import sys
import django
django.setup()
from sandbox.limits import graph_request_budget
print([graph_request_budget(sys.argv[1], sys.argv[2]) for _ in range(int(sys.argv[3]))], flush=True)
"""


def test_processes_sharing_redis_share_the_request_budget(settings, budget, token):
    url = _redis_url()
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": url, "KEY_PREFIX": ""}}
    row = AccessToken.objects.select_related("mailbox").get(token_hash=token_hash(token))
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "linkpoint.settings", "REDIS_URL": url,
           "SANDBOX_LIMITS": json.dumps(budget)}
    env.pop("PYTEST_XDIST_WORKER", None)
    out = subprocess.run([sys.executable, "-c", SPENDER, row.client_id, str(row.mailbox.object_id), "3"],
                         cwd=Path(__file__).resolve().parents[2], env=env, capture_output=True, text=True,
                         timeout=60, check=True)
    assert out.stdout.strip() == "[None, None, None]"  # another process served three of the five
    assert _statuses(token, 3) == [200, 200, 429]


def test_salesforce_refuses_new_requests_while_the_org_has_its_limit_of_long_running_ones(settings, limits):
    settings.SANDBOX_LIMITS = {**limits, "salesforce": {"long_running_seconds": 0.2,
                                                        "concurrent_long_running": 2}}
    rep = sf_user_ensure(email="lena@vandelay.test")
    tokens = [sf_session_issue(user=rep) for _ in range(4)]
    long_ones = long_running_slots(rep.org.instance_host)

    def query(i):
        return lambda: sf_client(rep, tokens[i]).query("SELECT Id FROM Contact")["totalSize"]

    # Three started together: none was long-running when it started, so all three are served.
    assert _in_threads([query(i) for i in range(3)]) == [0, 0, 0]

    results: list = [None, None]
    threads = [_start(query(i), results, i) for i in range(2)]
    _wait_until(lambda: long_ones.occupied() == 2)  # both have now run 0.2 s
    with pytest.raises(SalesforceRefusedRequest) as caught:
        sf_client(rep, tokens[3]).query("SELECT Id FROM Contact")
    for t in threads:
        t.join()
    assert caught.value.status == 403
    assert caught.value.content == [{"message": "ConcurrentRequests (Concurrent API Requests) Limit exceeded.",
                                     "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    assert results == [0, 0]
    assert long_ones.occupied() == 0  # given back when they answered
    assert sf_client(rep, tokens[3]).query("SELECT Id FROM Contact")["totalSize"] == 0


@pytest.mark.parametrize(("env", "expected"), [
    ("", "None"),
    ("on", "4 25 20"),
    ('{"outlook": {"concurrent_per_mailbox": 2}}', "2 None None"),
])
def test_the_environment_turns_the_limits_on_for_any_process(env, expected):
    script = ("import django; django.setup()\n"
              "from sandbox.limits import limits_config\n"
              "c = limits_config()\n"
              "print('None' if c is None else ' '.join(str((c.get(s) or {}).get(k)) for s, k in ("
              "('outlook', 'concurrent_per_mailbox'), ('salesforce', 'concurrent_long_running'),"
              " ('salesforce', 'long_running_seconds'))))\n")
    env_vars = {**os.environ, "DJANGO_SETTINGS_MODULE": "linkpoint.settings", "SANDBOX_LIMITS": env}
    out = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).resolve().parents[2], env=env_vars,
                         capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == expected
