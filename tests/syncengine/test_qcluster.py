"""Real django-q2 clusters on PostgreSQL + Redis: due runs happen once, a killed worker's run resumes.

The clusters are `manage.py qcluster` processes on this test's databases and a
broker queue of their own; the remote services are the sandbox.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from tests.conftest import skip_or_fail

from .conftest import SANDBOX_DBS

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(databases=SANDBOX_DBS, transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/15"


@pytest.fixture
def cluster_env():
    if connection.vendor != "postgresql":
        skip_or_fail("qcluster processes share the test database only on PostgreSQL (DATABASE_URL)")
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception:
        skip_or_fail(f"Redis is not reachable at {REDIS_URL}")

    def url(alias):
        db = settings.DATABASES[alias]
        return f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"

    from syncengine.tasks import schedule_ensure

    schedule_ensure()  # a transactional test's flush removed the migration's schedule rows
    env = {**os.environ, "DATABASE_URL": url("default"), "SANDBOX_DATABASE_URL": url("sandbox"),
           "REDIS_URL": REDIS_URL, "Q_SITE_NAME": f"lp-test-{uuid.uuid4().hex[:12]}",
           "Q_WORKERS": "1", "SANDBOX_ENABLED": "1", "SYNC_DISPATCH_CAPACITY": "100"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.pop("Q_CLUSTER_NAME", None)  # the site's run queue
    env.pop("SYNC_DISPATCH_CLUSTER", None)  # the run cluster ticks (dispatch_now() here)
    return env


class Clusters:
    def __init__(self, env, log_dir: Path):
        self.env, self.log_dir, self.procs = env, log_dir, []

    def start(self, n: int = 1) -> None:
        for _ in range(n):
            log = open(self.log_dir / f"qcluster-{len(self.procs)}.log", "wb")  # noqa: SIM115
            # Its own process group: the cluster's workers are stopped (or killed) with it.
            self.procs.append(subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=ROOT,
                                               env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                               start_new_session=True))

    def signal_all(self, sig, wait: float = 5) -> None:
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, sig)
        for p in self.procs:
            try:
                p.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)
        self.procs = []

    def logs(self) -> str:
        return "\n".join(f.read_text(errors="replace")[-3000:] for f in sorted(self.log_dir.glob("*.log")))


@pytest.fixture
def clusters(cluster_env, tmp_path, monkeypatch):
    # This process enqueues into the clusters' Redis queue (same name, same signing salt), so a
    # dispatcher tick starts now rather than at the clusters' first scheduler pass (~30 s).
    from django_q.conf import Conf

    for attr, value in (("PREFIX", cluster_env["Q_SITE_NAME"]), ("CLUSTER_NAME", cluster_env["Q_SITE_NAME"]),
                        ("REDIS", REDIS_URL), ("ORM", None), ("BROKER_CLASS", None), ("SYNC", False)):
        monkeypatch.setattr(Conf, attr, value)
    c = Clusters(cluster_env, tmp_path)
    yield c
    c.signal_all(signal.SIGKILL)  # the test is over; nothing of theirs needs a clean stop


def dispatch_now(times: int = 1) -> None:
    """Enqueue `times` dispatcher ticks at once (as several schedulers firing together would)."""
    from django_q.tasks import async_task

    for _ in range(times):
        async_task("syncengine.tasks.dispatch_due")


def wait_for(check, timeout: float, clusters: Clusters, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}; cluster logs:\n{clusters.logs()}")


def _connected_members(org, n: int):
    """`n` members connected to their own sandbox mailbox and Salesforce user (OAuth pages)."""
    from accounts.models import User
    from connections.demo import demo_connect
    from orgs.models import Membership

    users = User.objects.bulk_create([User(email=f"rep{i}@acme.test") for i in range(n)])  # no hashing
    members = Membership.objects.bulk_create([Membership(organization=org, user=u) for u in users])
    for u in users:
        demo_connect(email=u.email, org_slug=org.slug)
    return members


def _reviewed(members, kind: str) -> None:
    """Each member completed a sync of `kind` before (the gate Auto waits for)."""
    from syncengine.models import SyncRun

    t = timezone.now()
    SyncRun.objects.bulk_create([SyncRun(membership=m, kind=kind, trigger="manual", status="succeeded",
                                         started_at=t, finished_at=t) for m in members])


def test_two_clusters_start_50_due_runs_each_exactly_once(org_a, clusters):
    """25 members due for calendar (SnapRecord, the default) and tasks (Auto): 50 runs. Two
    clusters, four dispatcher ticks at once."""
    from policy.models import UserPolicy
    from syncengine.models import SyncLease, SyncRun

    members = _connected_members(org_a, 25)
    _reviewed(members, "tasks")
    UserPolicy.objects.bulk_create([UserPolicy(membership=m, kind="tasks", mode="auto") for m in members])
    ids = {m.pk for m in members}
    t0 = time.monotonic()
    clusters.start(2)
    dispatch_now(4)

    auto = SyncRun.objects.filter(membership_id__in=ids, trigger__in=("snaprecord", "auto"))

    def finished():
        return (auto.filter(finished_at__isnull=False).count() >= 50
                and not SyncLease.objects.exclude(holder="").exists())

    wait_for(finished, 90, clusters, "50 finished runs")
    time.sleep(2)  # a duplicate, if any, has had time to start
    runs = list(auto.values_list("membership_id", "kind", "status"))
    print(f"50 runs on 2 clusters in {time.monotonic() - t0:.1f} s")
    # Each (member, kind) exactly once, and each succeeded.
    assert sorted((r[0], r[1]) for r in runs) == sorted((mid, k) for mid in ids for k in ("calendar", "tasks"))
    assert {r[2] for r in runs} == {"succeeded"}, runs
    leases = SyncLease.objects.filter(membership_id__in=ids, kind__in=("calendar", "tasks"))
    assert len(leases) == 50 and all(lease.next_run_at > timezone.now() for lease in leases)


def test_a_killed_workers_run_is_picked_up_after_its_lease_and_creates_nothing_twice(
        org_a, clusters):
    from policy.models import UserPolicy
    from sandbox.faults import fault_add, faults_clear
    from sandbox.microsoft.services import mailbox_ensure, todo_task_create
    from sandbox.salesforce.services import sf_records, sf_user_ensure
    from syncengine.engine.run import run_sync
    from syncengine.models import SyncLease, SyncRun

    (m,) = _connected_members(org_a, 1)
    run_sync(m, "tasks", "manual")  # the first reviewed sync Auto waits for
    UserPolicy.objects.create(membership=m, kind="tasks", mode="auto", frequency_minutes=15)
    UserPolicy.objects.create(membership=m, kind="calendar", mode="off")
    mailbox = mailbox_ensure(m.user.email)
    for title in ("Call Ada", "Send the quote"):
        todo_task_create(mailbox, {"title": title})
    # Salesforce answers the run's write with "come back in a minute": the worker sleeps in it.
    fault_add(side="salesforce", kind="http_429", method="POST", path_pattern="composite/sobjects",
              count=1, retry_after=60)
    t0 = time.monotonic()
    clusters.start(1)
    dispatch_now()
    wait_for(lambda: SyncRun.objects.filter(kind="tasks", trigger="auto", status="running",
                                            progress__phase="applying").exists(),
             60, clusters, "the auto run to reach its writes")
    print(f"run reached its writes after {time.monotonic() - t0:.1f} s")
    clusters.signal_all(signal.SIGKILL)  # the whole cluster, mid-run
    lease = SyncLease.objects.get(membership=m, kind="tasks")
    assert lease.holder and lease.expires_at > timezone.now()  # left behind, still held

    faults_clear()
    clusters.start(1)
    dispatch_now()
    time.sleep(4)  # a tick while the lease holds starts nothing
    assert SyncRun.objects.filter(kind="tasks", trigger="auto").count() == 1
    # Time passes: the lease expires (LEASE_TTL) and the next tick claims the run again.
    SyncLease.objects.filter(pk=lease.pk).update(expires_at=timezone.now())
    dispatch_now()  # the next minute's tick
    wait_for(lambda: SyncRun.objects.filter(kind="tasks", trigger="auto", status="succeeded").exists(),
             60, clusters, "the resumed auto run")
    print(f"resumed run succeeded after {time.monotonic() - t0:.1f} s")
    sf_org = sf_user_ensure(email=m.user.email).org
    subjects = sorted(r["Subject"] for r in sf_records(org=sf_org, sobject="Task"))
    assert subjects == ["Call Ada", "Send the quote"]  # each once: the intent protocol held
