"""The minute tick runs in a qcluster of its own, so a backlog of runs never delays it.

bench/results/scale_bench-2026-12-01.txt: with the tick a task in the runs' own queue, ticks
were up to 648 s apart under a backlog. With `SYNC_DISPATCH_CLUSTER` the tick's schedule
targets a dispatcher cluster whose queue holds only ticks; the runs it claims go to the
site's run queue. Without it (`make run`, one qcluster) the run cluster ticks as before.
"""

from __future__ import annotations

import signal
import time
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from .conftest import SANDBOX_DBS
from .test_dispatch_scale import _org_with_members
from .test_qcluster import REDIS_URL, Clusters, _connected_members, cluster_env, wait_for  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def site(monkeypatch, settings):
    """A site (run queue) and a dispatcher cluster of this test's own, on the configured broker."""
    from django_q.brokers import get_broker
    from django_q.conf import Conf

    name = f"lp-test-{uuid.uuid4().hex[:12]}"
    monkeypatch.setattr(Conf, "PREFIX", name)
    monkeypatch.setattr(Conf, "CLUSTER_NAME", name)
    monkeypatch.setattr(Conf, "SYNC", False)
    yield name
    for queue in (name, f"{name}-dispatch"):
        get_broker(queue).purge_queue()


def _as_cluster(monkeypatch, name: str) -> None:
    """This process now acts as the qcluster serving queue `name` (django-q2's Conf)."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "CLUSTER_NAME", name)


def _funcs(queue: str) -> list[str]:
    """The functions of the tasks waiting in `queue`, taken out of it in order."""
    from django_q.brokers import get_broker
    from django_q.signing import SignedPackage

    broker, out = get_broker(queue), []
    while broker.queue_size():
        for _ack, pack in broker.dequeue() or []:
            out.append(SignedPackage.loads(pack)["func"])
    return out


def _tick_due_now() -> None:
    from django_q.models import Schedule

    from syncengine.tasks import DISPATCH_SCHEDULE, schedule_ensure

    schedule_ensure()
    Schedule.objects.filter(name=DISPATCH_SCHEDULE).update(next_run=timezone.now() - timedelta(seconds=1))


def _backlog(queue: str, n: int) -> None:
    from django_q.tasks import async_task

    for _ in range(n):
        async_task("time.sleep", 30, cluster=queue)


def test_the_tick_goes_to_the_dispatcher_queue_not_behind_the_runs(site, settings, monkeypatch):
    from django_q.brokers import get_broker
    from django_q.scheduler import scheduler

    settings.SYNC_DISPATCH_CLUSTER = f"{site}-dispatch"
    _tick_due_now()
    _backlog(site, 100)  # a hundred tasks wait: most of an hour of work for a few workers

    scheduler(broker=get_broker(site))  # the run clusters' scheduler leaves the tick alone
    assert get_broker(f"{site}-dispatch").queue_size() == 0
    _as_cluster(monkeypatch, f"{site}-dispatch")
    scheduler(broker=get_broker(f"{site}-dispatch"))  # the dispatcher cluster's takes it

    # The dispatcher cluster's next task is the tick, whatever waits in the run queue.
    assert _funcs(f"{site}-dispatch") == ["syncengine.tasks.dispatch_due"]
    assert "syncengine.tasks.dispatch_due" not in _funcs(site)


def test_the_dispatcher_cluster_enqueues_the_runs_in_the_run_queue(site, settings, monkeypatch):
    """The tick runs in the dispatcher cluster, whose default queue is its own: the runs it
    claims must go to the site's run queue, or the dispatcher cluster would run them itself."""
    from syncengine.tasks import dispatch_due

    settings.SYNC_DISPATCH_CLUSTER = f"{site}-dispatch"
    _, members = _org_with_members("acme", 3, due=3)
    _as_cluster(monkeypatch, f"{site}-dispatch")
    assert dispatch_due() == 3
    assert _funcs(site) == ["syncengine.tasks.run_sync"] * 3
    assert _funcs(f"{site}-dispatch") == []


def test_without_a_dispatcher_cluster_the_run_cluster_ticks(site, settings, monkeypatch):
    """`make run`: one qcluster, no SYNC_DISPATCH_CLUSTER. Its scheduler runs the tick, and
    the tick claims the due runs (run inline here, as the worker would)."""
    from django_q.brokers import get_broker
    from django_q.conf import Conf
    from django_q.models import Schedule
    from django_q.scheduler import scheduler

    from syncengine.dispatch import STATE_NAME
    from syncengine.models import DispatcherState, SyncLease
    from syncengine.tasks import DISPATCH_SCHEDULE

    settings.SYNC_DISPATCH_CLUSTER = ""
    _org_with_members("acme", 2, due=2)
    _tick_due_now()
    assert Schedule.objects.get(name=DISPATCH_SCHEDULE).cluster is None
    scheduler(broker=get_broker(site))
    assert "syncengine.tasks.dispatch_due" in _funcs(site)

    # The same schedule again, with the worker inline: the tick happens and claims both.
    _tick_due_now()
    monkeypatch.setattr(Conf, "SYNC", True)
    import django_q.tasks

    started = []
    real = django_q.tasks.async_task

    def run_inline_but_record_runs(func, *args, **kwargs):
        if func == "syncengine.tasks.run_sync":
            started.append(args[0])
            return None
        return real(func, *args, **kwargs)

    monkeypatch.setattr(django_q.tasks, "async_task", run_inline_but_record_runs)
    scheduler(broker=get_broker(site))
    assert len(started) == 2
    assert DispatcherState.objects.get(name=STATE_NAME).last_tick_at is not None
    assert SyncLease.objects.filter(holder__startswith="dispatch-").count() == 2


def test_switching_the_dispatcher_cluster_on_and_off_moves_the_schedule(settings, db):
    from django_q.models import Schedule

    from syncengine.tasks import DISPATCH_SCHEDULE, schedule_ensure

    settings.SYNC_DISPATCH_CLUSTER = "linkpoint-dispatch"
    schedule_ensure()
    assert Schedule.objects.get(name=DISPATCH_SCHEDULE).cluster == "linkpoint-dispatch"
    settings.SYNC_DISPATCH_CLUSTER = ""
    schedule_ensure()
    assert Schedule.objects.get(name=DISPATCH_SCHEDULE).cluster is None


# ---------------------------------------------------------------- real qclusters


@pytest.mark.postgres
@pytest.mark.django_db(databases=SANDBOX_DBS, transaction=True)
def test_a_full_run_queue_does_not_hold_the_tick(org_a, cluster_env, tmp_path, monkeypatch, settings, client):  # noqa: F811
    """One run cluster (one worker) with ten 30-second tasks queued, and a dispatcher cluster:
    the tick comes at the dispatcher's first scheduler pass (~30 s), not after the backlog
    (300 s); the run it claims waits in the run queue rather than being run by the
    dispatcher; /healthz reports the tick."""
    from django_q.conf import Conf

    from syncengine.dispatch import STATE_NAME
    from syncengine.models import DispatcherState, SyncLease, SyncRun

    site = f"lp-test-{uuid.uuid4().hex[:12]}"
    dispatch = f"{site}-dispatch"
    env = {**cluster_env, "Q_SITE_NAME": site, "SYNC_DISPATCH_CLUSTER": dispatch}
    for attr, value in (("PREFIX", site), ("CLUSTER_NAME", site), ("REDIS", REDIS_URL), ("ORM", None),
                        ("BROKER_CLASS", None), ("SYNC", False)):
        monkeypatch.setattr(Conf, attr, value)
    settings.SYNC_DISPATCH_CLUSTER = dispatch
    (member,) = _connected_members(org_a, 1)  # calendar: SnapRecord, the default, due at once
    _tick_due_now()
    _backlog(site, 10)

    (tmp_path / "runs").mkdir()
    (tmp_path / "dispatch").mkdir()
    runs = Clusters(env, tmp_path / "runs")
    dispatcher = Clusters({**env, "Q_CLUSTER_NAME": dispatch}, tmp_path / "dispatch")
    t0 = time.monotonic()
    try:
        runs.start(1)
        dispatcher.start(1)
        state = wait_for(lambda: DispatcherState.objects.filter(name=STATE_NAME, last_tick_at__isnull=False).first(),
                         130, runs, "the dispatcher's first tick")
        waited = time.monotonic() - t0
        print(f"first tick {waited:.0f} s after the clusters started, 10 x 30 s tasks ahead of the runs")
        assert waited < 120  # the backlog alone is 300 s of work for the one run worker
        assert state.last_claimed == 1
        lease = SyncLease.objects.get(membership=member, kind="calendar")
        assert lease.holder.startswith("dispatch-")
        time.sleep(3)
        # Claimed, queued behind the backlog in the run queue: not run by the dispatcher cluster.
        assert not SyncRun.objects.filter(membership=member, trigger="snaprecord").exists()
        health = client.get("/healthz").json()
        assert health["checks"]["scheduler"] == "ok", health
    finally:
        runs.signal_all(signal.SIGKILL)
        dispatcher.signal_all(signal.SIGKILL)
        from django_q.brokers import get_broker

        for queue in (site, dispatch):
            get_broker(queue).purge_queue()
