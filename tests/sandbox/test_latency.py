"""Emulated latency: off by default; per request, plus per operation inside a batch; the delay is
the service's whole response time, the emulator's own work included."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from sandbox import latency
from sandbox.latency import delay_for, inner_operations
from sandbox.limits import mailbox_slots
from sandbox.microsoft.models import AccessToken
from sandbox.microsoft.services import access_token_issue, mailbox_ensure, token_hash
from sandbox.transport import sandbox_session


def test_off_by_default(settings):
    settings.SANDBOX_LATENCY = None
    assert delay_for("outlook", "GET", "/v1.0/me/contacts", b"") == 0.0


def test_a_fuller_batch_takes_longer(settings):
    settings.SANDBOX_LATENCY = {"outlook": {"request_ms": 150, "jitter_ms": 0, "op_ms": 2},
                                "salesforce": {"request_ms": 100, "jitter_ms": 50, "op_ms": 1}}
    batch = json.dumps({"requests": [{"id": str(i)} for i in range(20)]}).encode()
    assert delay_for("outlook", "POST", "/v1.0/$batch", batch) == (150 + 2 * 20) / 1000
    records = json.dumps({"allOrNone": False, "records": [{}] * 200}).encode()
    assert inner_operations("POST", "/services/data/v62.0/composite/sobjects", records) == 200
    assert inner_operations("DELETE", "/services/data/v62.0/composite/sobjects?ids=a,b,c", b"") == 3
    one = delay_for("salesforce", "GET", "/services/data/v62.0/query?q=x", b"")
    assert 0.101 <= one <= 0.151  # fixed + jitter + one operation


# --- the delay is the service's response time: the emulator's own work is part of it -----------

GRAPH = "https://graph.sandbox.test/v1.0"


@pytest.fixture
def slow_emulator(monkeypatch):
    """The emulator takes `work[0]` seconds to build each answer (as a bigger batch or a slower
    machine would); the rest of the delay is what the transport still sleeps."""
    import sandbox.transport

    work = [0.0]
    real = sandbox.transport.SandboxAdapter._dispatch

    def dispatch(django_request, match, host):
        time.sleep(work[0])
        return real(django_request, match, host)

    monkeypatch.setattr(sandbox.transport.SandboxAdapter, "_dispatch", staticmethod(dispatch))
    return work


def _outlook(settings, ms: float):
    settings.SANDBOX_LATENCY = {"outlook": {"request_ms": ms, "jitter_ms": 0, "op_ms": 0}}
    latency.slept_reset()


@pytest.mark.django_db(databases=["default", "sandbox"])
def test_the_emulators_work_is_inside_the_response_time_not_added_to_it(settings, slow_emulator):
    _outlook(settings, 500)
    slow_emulator[0] = 0.2
    t0 = time.perf_counter()
    answer = sandbox_session().get(f"{GRAPH}/nowhere")
    elapsed = time.perf_counter() - t0
    assert answer.status_code == 404
    assert elapsed >= 0.5  # never sooner than the service's response time
    # Only what the 0.2 s of work left of the 0.5 s is slept (loosely: a busy machine works longer).
    assert 0.1 <= latency.slept["outlook"] <= 0.3 + 0.005
    assert latency.modelled["outlook"] == pytest.approx(0.5)
    assert latency.late["outlook"] == 0


@pytest.mark.django_db(databases=["default", "sandbox"])
def test_an_emulator_slower_than_the_delay_answers_late_and_sleeps_nothing(settings, slow_emulator):
    _outlook(settings, 100)
    slow_emulator[0] = 0.25
    t0 = time.perf_counter()
    sandbox_session().get(f"{GRAPH}/nowhere")
    assert time.perf_counter() - t0 >= 0.25
    assert latency.slept["outlook"] == 0
    assert latency.late["outlook"] >= 0.15 - 0.005  # 0.25 s of work against 0.1 s of delay


@pytest.mark.django_db(databases=["default", "sandbox"])
def test_the_limits_slot_is_held_until_the_answer_leaves_sleep_included(settings, monkeypatch, slow_emulator):
    """A request's mailbox slot is still taken while the rest of its response time is slept:
    after the work, Graph's 4 concurrent requests still count this one."""
    settings.SANDBOX_LIMITS = {"outlook": {"concurrent_per_mailbox": 4},
                               "namespace": f"lat-{uuid.uuid4().hex[:10]}", "slot_ttl_seconds": 1}
    _outlook(settings, 300)
    slow_emulator[0] = 0.05
    token = access_token_issue(mailbox_ensure("dana@contoso.test", "Dana Scully"))
    row = AccessToken.objects.get(token_hash=token_hash(token))
    slots = mailbox_slots(row.client_id, row.mailbox_id)
    seen = []
    real_pause = latency.pause

    def pause(side, seconds):
        seen.append((seconds, slots.occupied()))
        return real_pause(side, seconds)

    monkeypatch.setattr(latency, "pause", pause)
    answer = sandbox_session().get(f"{GRAPH}/me/contacts", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200
    assert len(seen) == 1 and 0 < seen[0][0] <= 0.25 + 0.005 and seen[0][1] == 1
    assert slots.occupied() == 0  # given back once answered
