"""The django-q2 side: the minute dispatcher claims due auto syncs once and runs them."""

from __future__ import annotations

import pytest

from syncengine.models import SyncLease, SyncRun

from .conftest import SANDBOX_DBS

pytestmark = pytest.mark.django_db(databases=SANDBOX_DBS, transaction=True)


@pytest.fixture
def inline_q(monkeypatch):
    # django-q2 reads Q_CLUSTER once at import; run enqueued tasks inline here.
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)


def test_dispatcher_runs_due_auto_syncs_once_and_schedules_the_next(member, inline_q):
    from policy.models import UserPolicy
    from sandbox.microsoft.services import todo_task_create
    from syncengine.engine.run import run_sync
    from syncengine.tasks import dispatch_due

    run_sync(member.membership, "tasks", "manual")  # a first reviewed sync (see test_my_sync)
    UserPolicy.objects.create(membership=member.membership, kind="tasks", mode="auto", frequency_minutes=15)
    todo_task_create(member.mailbox, {"title": "Call Ada"})

    dispatch_due()  # calendar is due too: its default mode, SnapRecord, follows recorded events
    assert [r["Subject"] for r in member.sf("Task")] == ["Call Ada"]
    run = SyncRun.objects.get(kind="tasks", trigger="auto")
    assert run.status == "succeeded"
    lease = SyncLease.objects.get(membership=member.membership, kind="tasks")
    assert lease.holder == "" and lease.next_run_at > run.started_at
    # Not due again until its next time: nothing is claimed twice.
    dispatch_due()
    assert SyncRun.objects.filter(kind="tasks", trigger="auto").count() == 1


def test_dispatcher_skips_a_member_whose_lease_is_held(member, inline_q):
    from policy.models import UserPolicy
    from syncengine.engine.run import lease_acquire, run_sync
    from syncengine.tasks import dispatch_due

    run_sync(member.membership, "contacts", "manual")  # reviewed once: Auto may start
    UserPolicy.objects.create(membership=member.membership, kind="contacts", mode="auto")
    assert lease_acquire(member.membership, "contacts", "a-running-sync")
    dispatch_due()
    assert not SyncRun.objects.filter(kind="contacts", trigger="auto").exists()
    assert SyncRun.objects.get(kind="calendar").trigger == "snaprecord"


def test_schedule_is_created_once_by_name(db):
    from django_q.models import Schedule

    from syncengine.tasks import DISPATCH_SCHEDULE, schedule_ensure

    schedule_ensure()
    schedule_ensure()
    assert Schedule.objects.filter(name=DISPATCH_SCHEDULE).count() == 1
