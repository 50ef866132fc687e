"""/healthz: what a load balancer and a monitor read, without a login and without secrets."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

pytestmark = pytest.mark.django_db


def test_healthy_after_a_dispatcher_tick(client, settings):
    from syncengine.tasks import dispatch_due

    dispatch_due()
    answer = client.get("/healthz")
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"] == "ok" and body["checks"]["broker"] == "ok"
    assert body["checks"]["scheduler"] == "ok"
    assert answer["Cache-Control"] == "no-store"
    # Nothing a stranger could use: no database name, broker address, host or version.
    text = answer.content.decode()
    for secret in (settings.DATABASES["default"]["NAME"], "redis://", "postgres", settings.SECRET_KEY):
        assert str(secret) not in text


def test_a_scheduler_that_never_ticked_or_stopped_fails_the_check(client, caplog):
    from syncengine.models import DispatcherState

    answer = client.get("/healthz")
    assert answer.status_code == 503
    assert answer.json()["checks"]["scheduler"] == "never ticked"

    DispatcherState.objects.create(name="dispatch", last_tick_at=timezone.now() - timedelta(minutes=10))
    answer = client.get("/healthz")
    assert answer.status_code == 503
    assert answer.json()["checks"]["scheduler"] == "late"
    assert answer.json()["checks"]["scheduler_last_tick_seconds_ago"] >= 600


def test_a_broker_fault_is_a_503_with_the_cause_in_the_log(client, monkeypatch, caplog):
    from django_q.brokers import get_broker

    from syncengine.tasks import dispatch_due

    dispatch_due()

    def down(self):
        raise ConnectionError("redis://:hunter2@10.0.0.5:6379 refused")

    monkeypatch.setattr(type(get_broker()), "ping", down)  # the broker in use: ORM or Redis
    answer = client.get("/healthz")
    assert answer.status_code == 503
    assert answer.json()["checks"]["broker"] == "failing"
    assert "hunter2" not in answer.content.decode()
    assert any("health check broker failed" in r.getMessage() for r in caplog.records)
