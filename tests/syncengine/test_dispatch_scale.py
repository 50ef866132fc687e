"""The minute dispatcher costs what is due, not the customer base; claims are exclusive and fair."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.conftest import skip_or_fail

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def enqueued(monkeypatch):
    """The django-q2 queue, seen from the dispatcher: what it enqueued, nothing run."""
    import django_q.tasks

    calls = []
    lock = threading.Lock()

    def record(func, *args, **kwargs):
        with lock:
            calls.append((func, args))

    monkeypatch.setattr(django_q.tasks, "async_task", record)
    return calls


def _org_with_members(slug: str, n: int, *, due: int, created_ago=timedelta(days=1)):
    """`n` members, all SnapRecord for calendar (the default); `due` of them due now, the
    rest next hour; the dispatcher already reconciled them on an earlier tick."""
    from accounts.models import User
    from connections.models import Connection
    from orgs.models import Membership, Organization
    from syncengine.dispatch import STATE_NAME
    from syncengine.models import DispatcherState, SyncLease

    t = timezone.now()
    org = Organization.objects.create(name=slug.title(), slug=slug)
    users = User.objects.bulk_create([User(email=f"m{i}@{slug}.test") for i in range(n)])
    members = Membership.objects.bulk_create([Membership(organization=org, user=u) for u in users])
    Membership.objects.filter(organization=org).update(created_at=t - created_ago)
    # Both accounts connected: the dispatcher starts nobody who never connected.
    Connection.objects.bulk_create([Connection(membership=m, provider=p, account_name=f"{p}:{m.pk}")
                                    for m in members for p in ("microsoft", "salesforce")])
    Connection.objects.filter(membership__organization=org).update(updated_at=t - created_ago)
    SyncLease.objects.bulk_create([
        SyncLease(membership=m, kind="calendar",
                  next_run_at=t - timedelta(minutes=1) if i < due else t + timedelta(hours=1))
        for i, m in enumerate(members)])
    DispatcherState.objects.update_or_create(name=STATE_NAME, defaults={"reconciled_until": t})
    return org, members


def _tick_queries(enqueued, n: int, slug: str) -> tuple[int, int]:
    from syncengine.tasks import dispatch_due

    _org_with_members(slug, n, due=5)
    with CaptureQueriesContext(connection) as ctx:
        claimed = dispatch_due(limit=50)  # the budget is its own test; the broker is shared
    assert claimed == 5 and len(enqueued) == 5
    return len(ctx.captured_queries), claimed


def test_queries_per_tick_do_not_grow_with_the_members_when_5_are_due(enqueued):
    from orgs.models import Organization

    small, _ = _tick_queries(enqueued, 10, "small")
    # Start over with 100 times the members, the same 5 due.
    Organization.objects.all().delete()
    enqueued.clear()
    large, _ = _tick_queries(enqueued, 1000, "large")
    print(f"dispatcher queries per tick: 10 members {small}, 1,000 members {large}")
    assert small == large


def test_a_claimed_run_is_not_claimed_again_until_its_lease_expires(enqueued):
    from syncengine.models import SyncLease
    from syncengine.tasks import dispatch_due

    _org_with_members("acme", 3, due=3)
    assert dispatch_due(limit=20) == 3
    assert dispatch_due(limit=20) == 0  # held by the first tick's tasks (not run here)
    # A worker killed mid-run never releases; once the lease expires the run is claimed again.
    SyncLease.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert dispatch_due(limit=20) == 3
    holders = [args[3] for _func, args in enqueued]
    assert len(set(holders)) == 6


def test_a_finished_run_is_not_started_again_before_its_next_due_time_is_written(enqueued):
    """A run releases its lease when it ends; its task writes the next due time just after.
    A tick in between must not start the same run again (bench/scale_bench.py saw that: on a
    busy machine a second run straight after the first, before its due time)."""
    from orgs.models import Membership
    from syncengine.engine.run import lease_acquire, lease_release
    from syncengine.tasks import dispatch_due

    _org_with_members("acme", 3, due=3)
    assert dispatch_due(limit=20) == 3
    for _func, (mid, kind, _trigger, holder) in list(enqueued):
        member = Membership.objects.get(pk=mid)
        assert lease_acquire(member, kind, holder)  # the claimed task's run, under the claim
        lease_release(member, kind, holder)  # ... has ended; sync_schedule_next comes next
    assert dispatch_due(limit=20) == 0
    assert len(enqueued) == 3


def test_one_big_org_does_not_starve_a_small_one(enqueued):
    from syncengine.tasks import dispatch_due

    _org_with_members("big", 60, due=60)
    _, small = _org_with_members("small", 3, due=3)
    dispatch_due(limit=10)
    started = {args[0] for _func, args in enqueued}
    assert {m.pk for m in small} <= started and len(started) == 10


def test_policy_changes_reach_the_schedule_without_a_full_scan(enqueued):
    from policy.models import UserPolicy
    from syncengine.models import SyncLease
    from syncengine.tasks import dispatch_due

    _, members = _org_with_members("acme", 4, due=0)
    off = members[0]
    UserPolicy.objects.create(membership=off, kind="calendar", mode="off")
    dispatch_due()
    assert SyncLease.objects.get(membership=off, kind="calendar").next_run_at is None
    # Auto for a kind never synced waits for a first reviewed sync: not scheduled at all.
    UserPolicy.objects.create(membership=members[1], kind="tasks", mode="auto")
    dispatch_due()
    assert not SyncLease.objects.filter(membership=members[1], kind="tasks",
                                        next_run_at__isnull=False).exists()
    # Back to SnapRecord: due at once.
    UserPolicy.objects.filter(membership=off, kind="calendar").update(mode=None,
                                                                       updated_at=timezone.now())
    assert dispatch_due(limit=20) == 1
    assert enqueued[-1][1][:3] == (off.pk, "calendar", "snaprecord")


def test_a_member_without_both_accounts_is_not_started_until_they_connect(enqueued):
    """SnapRecord is the calendar default, so every member is 'due': one who never
    connected (or disconnected) got a stopped run each interval and a 'needs your
    attention' box for a sync they never asked for."""
    from connections.models import Connection
    from syncengine.models import SyncLease
    from syncengine.tasks import dispatch_due

    _, members = _org_with_members("acme", 3, due=3)
    lone = members[0]
    Connection.objects.filter(membership=lone, provider="salesforce").delete()
    Connection.objects.filter(membership=members[1], provider="microsoft").update(status="revoked")

    assert dispatch_due(limit=20) == 1
    assert [c[1][0] for c in enqueued] == [members[2].pk]
    assert SyncLease.objects.get(membership=lone, kind="calendar").next_run_at is None

    # Connecting Salesforce reaches the schedule on the next tick.
    Connection.objects.create(membership=lone, provider="salesforce", account_name="sf")
    enqueued.clear()
    assert dispatch_due(limit=20) == 1
    assert enqueued[0][1][:3] == (lone.pk, "calendar", "snaprecord")


def test_concurrent_dispatchers_never_start_the_same_run_twice(enqueued):
    from syncengine.tasks import dispatch_due

    if connection.vendor != "postgresql":
        skip_or_fail("FOR UPDATE SKIP LOCKED between dispatchers needs PostgreSQL")
    _org_with_members("acme", 50, due=50)
    claims, errors = [], []
    barrier = threading.Barrier(4)

    def tick():
        try:
            barrier.wait()
            claims.append(dispatch_due(limit=100))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=tick) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert not errors, errors
    started = [args[0] for _func, args in enqueued]
    print(f"4 concurrent dispatchers claimed {claims}")
    assert sum(claims) == 50 and len(started) == 50 and len(set(started)) == 50


def test_without_history_the_budget_is_the_setting_less_the_backlog_never_nothing(settings, monkeypatch):
    from django_q.brokers import get_broker

    from syncengine.dispatch import tick_budget

    settings.SYNC_DISPATCH_CAPACITY = 0
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "workers": 4}
    settings.SYNC_CLUSTERS, settings.SYNC_RUNS_PER_WORKER_MINUTE = 3, 5
    broker = type(get_broker())
    monkeypatch.setattr(broker, "queue_size", lambda self: 0)
    assert tick_budget() == 60
    monkeypatch.setattr(broker, "queue_size", lambda self: 50)
    assert tick_budget() == 15  # a backlog slows the schedule, never stops it
    settings.SYNC_DISPATCH_CAPACITY = 8
    assert tick_budget() == 2


@pytest.fixture
def run_queue(monkeypatch):
    """The site's run queue on the configured broker (Redis in CI, the ORM elsewhere), under a
    name of this test's own; `put(n)` leaves n tasks waiting in it, as a backlog would."""
    import uuid

    from django_q.brokers import get_broker
    from django_q.conf import Conf
    from django_q.tasks import async_task

    name = f"lp-test-{uuid.uuid4().hex[:12]}"
    monkeypatch.setattr(Conf, "PREFIX", name)
    monkeypatch.setattr(Conf, "SYNC", False)

    class Queue:
        def put(self, n: int) -> None:
            for _ in range(n):
                async_task("math.floor", 1.5, cluster=name)

    yield Queue()
    get_broker(name).purge_queue()


def _finished(member, n: int, *, over: timedelta, run_seconds: float) -> None:
    """`n` runs that finished evenly over the last `over`, each `run_seconds` long."""
    from syncengine.models import SyncRun

    t = timezone.now()
    ends = [t - over * (i + 0.5) / n for i in range(n)]
    SyncRun.objects.bulk_create([
        SyncRun(membership=member, kind="calendar", trigger="auto", status="succeeded",
                started_at=end - timedelta(seconds=run_seconds), finished_at=end) for end in ends])


def _workers(settings, q_workers: int, clusters: int) -> None:
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "workers": q_workers}
    settings.SYNC_CLUSTERS = clusters


def test_the_budget_follows_the_runs_that_finished_not_the_setting(settings, run_queue):
    """bench/results/scale_bench-2026-12-01.txt: the setting said 30 runs a worker-minute, the
    workers did ~10, the queue grew from the first tick. Two workers busy for five minutes
    finished 50 runs (10 a minute): the budget is 10 a minute, less what waits."""
    from syncengine.dispatch import tick_budget

    _, (member,) = _org_with_members("acme", 1, due=0)
    settings.SYNC_DISPATCH_CAPACITY = 500  # a guess; the history overrules it
    _workers(settings, 2, 1)
    _finished(member, 50, over=timedelta(minutes=5), run_seconds=12)
    assert tick_budget() == 10
    run_queue.put(6)
    assert tick_budget() == 4  # the queue holds about a minute of work, not more
    run_queue.put(20)
    assert tick_budget() == 2  # a quarter: a backlog slows the schedule, never stops it


def test_more_workers_than_configured_are_seen_in_what_they_finish(settings, run_queue):
    """Four workers did the work while the settings count two: the 80 runs they finished in
    five minutes, 16 a minute, are the capacity."""
    from syncengine.dispatch import tick_budget

    _, (member,) = _org_with_members("acme", 1, due=0)
    _workers(settings, 2, 1)
    _finished(member, 80, over=timedelta(minutes=5), run_seconds=15)
    assert tick_budget() == 16


def test_after_a_quiet_spell_the_budget_is_the_workers_pace(settings, run_queue):
    """Five quick runs in five minutes say little about what four workers can do: each took
    6 s, so together they can do 40 a minute; a crowd coming due gets that, not 1 a minute."""
    from syncengine.dispatch import tick_budget

    _, (member,) = _org_with_members("acme", 1, due=0)
    settings.SYNC_DISPATCH_CAPACITY = 0
    _workers(settings, 2, 2)
    _finished(member, 5, over=timedelta(minutes=5), run_seconds=6)
    assert tick_budget() == 40
    run_queue.put(15)
    assert tick_budget() == 25


def test_a_young_site_measures_over_its_own_history(settings, run_queue):
    """A cluster that came up two minutes ago and finished 30 runs does 15 a minute, not the
    6 that 30 runs over the whole five-minute window would say."""
    from syncengine.dispatch import tick_budget

    _, (member,) = _org_with_members("acme", 1, due=0)
    _workers(settings, 1, 1)
    _finished(member, 30, over=timedelta(minutes=2), run_seconds=4)
    assert tick_budget() == 15


def test_history_written_in_one_instant_is_not_throughput(settings, run_queue):
    """Rows that finished the moment they started (an import, a seed of reviewed syncs) took
    no worker: 600 of them are not 600 runs a minute."""
    from syncengine.dispatch import tick_budget

    _, (member,) = _org_with_members("acme", 1, due=0)
    settings.SYNC_DISPATCH_CAPACITY = 0
    _workers(settings, 2, 1)
    settings.SYNC_RUNS_PER_WORKER_MINUTE = 6
    _finished(member, 600, over=timedelta(seconds=30), run_seconds=0)
    assert tick_budget() == 12  # the setting: no measured run yet


def test_the_dispatcher_uses_the_measured_budget(settings, run_queue, enqueued):
    """One tick claims what the measured budget allows; the rest waits for the next tick."""
    from syncengine.tasks import dispatch_due

    _, members = _org_with_members("acme", 30, due=30)
    settings.SYNC_DISPATCH_CAPACITY = 500
    _workers(settings, 1, 1)
    _finished(members[0], 50, over=timedelta(minutes=5), run_seconds=6)  # 10 a minute
    run_queue.put(3)
    assert dispatch_due() == 7
    assert len(enqueued) == 7
