"""What a quiet auto run reads from PostgreSQL does not grow with the customer base.

The run goes the way a worker runs it: the django-q2 task (`syncengine.tasks.run_sync`, with
django-q2's own result save), the engine, the budget governor, the alerts check. Every
statement it sent to the product's database is planned again with sequential scans
disabled: a Seq Scan that remains is a table with no index for that statement, and the rows
the plans read (EXPLAIN ANALYZE: returned plus removed by a filter) must be the same whether
the organizations hold 1 member or 240 with a day of runs each. Counted rows, not time:
bench/results/scale_bench-2026-12-01.txt measured 10,600 rows read per run at 1,000 members
(the governor summed the org's runs of the day; each run looked its remote identities up
through every connection; django-q2 read its 250 kept results after every task).
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from tests.conftest import skip_or_fail

from .conftest import SANDBOX_DBS

pytestmark = pytest.mark.django_db(databases=SANDBOX_DBS, transaction=True)

# Tables whose size follows the number of members or the history (small fixed tables like
# orgs_organization or a policy per org and kind may be scanned).
GROWING = {
    "accounts_user", "orgs_membership", "connections_connection", "connections_salesforcerequestsday",
    "syncengine_syncrun", "syncengine_synclogentry", "syncengine_synclink", "syncengine_synclease",
    "syncengine_synccursor", "syncengine_syncoccurrence", "syncengine_syncalert",
    "syncengine_plannedchange", "policy_userpolicy", "django_q_task",
}


@pytest.fixture
def inline_q(monkeypatch):
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)  # the task and its result save, in this process


def _scans(plan: dict, out: list) -> None:
    if "Relation Name" in plan:
        read = (plan.get("Actual Rows", 0) + plan.get("Rows Removed by Filter", 0)) * plan.get("Actual Loops", 1)
        out.append((plan["Node Type"], plan["Relation Name"], read))
    for child in plan.get("Plans", []):
        _scans(child, out)


def _quiet_run(member, kind: str) -> tuple[dict[str, int], list[str]]:
    """Run one auto sync as the worker does; (rows read per growing table, seq scans)."""
    from django_q.tasks import async_task

    sent = []

    def capture(execute, sql, params, many, context):
        sent.append((sql, params, many))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        async_task("syncengine.tasks.run_sync", member.membership.pk, kind, "auto")
    reads: dict[str, int] = {}
    seq = []
    for sql, params, many in sent:
        if many or sql.lstrip().split(None, 1)[0].upper() not in ("SELECT", "UPDATE", "DELETE"):
            continue
        with transaction.atomic():  # writes are planned and undone
            with connection.cursor() as cur:
                cur.execute("SET LOCAL enable_seqscan = off")
                cur.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
                plan = cur.fetchone()[0]
            transaction.set_rollback(True)
        plan = json.loads(plan) if isinstance(plan, str) else plan
        nodes: list = []
        _scans(plan[0]["Plan"], nodes)
        for node_type, table, read in nodes:
            if table in GROWING:
                reads[table] = reads.get(table, 0) + read
                if node_type == "Seq Scan":
                    seq.append(f"{table}: {sql[:160]}")
    return reads, seq


def _analyze() -> None:
    with connection.cursor() as cur:
        cur.execute("ANALYZE")


def _crowd(orgs, n: int) -> None:
    """`n` more connected members spread over `orgs`, each with a day of finished runs, their
    leases and log entries (what a customer base of their size leaves in the tables)."""
    from django_q.models import Task

    from accounts.models import User
    from connections.models import Connection
    from orgs.models import Membership
    from syncengine.models import SyncLease, SyncLogEntry, SyncRun

    t = timezone.now()
    tag = uuid.uuid4().hex[:6]
    users = User.objects.bulk_create([User(email=f"crowd{i}-{tag}@scale.test") for i in range(n)])
    members = Membership.objects.bulk_create(
        [Membership(organization=orgs[i % len(orgs)], user=u) for i, u in enumerate(users)])
    Connection.objects.bulk_create([
        c for i, m in enumerate(members) for c in (
            Connection(membership=m, provider="microsoft", account_name=f"crowd{i}-{tag}@scale.test",
                       ms_tenant_id="tenant-crowd", ms_object_id=f"oid-{tag}-{i}"),
            Connection(membership=m, provider="salesforce", account_name=f"crowd{i}-{tag}@scale.test",
                       sf_org_id="00Dcrowd0000001", sf_user_id=f"005{tag}{i:06d}"[:15]))])
    kinds = ("calendar", "contacts", "tasks")
    SyncLease.objects.bulk_create([SyncLease(membership=m, kind=k, next_run_at=t + timedelta(minutes=15))
                                   for m in members for k in kinds])
    runs = SyncRun.objects.bulk_create([
        SyncRun(membership=m, kind=k, trigger="auto", status="succeeded", api_salesforce=1, api_outlook=1,
                started_at=t - timedelta(minutes=15 * j + 1), finished_at=t - timedelta(minutes=15 * j))
        for m in members for k in kinds for j in range(4)])
    SyncLogEntry.objects.bulk_create([
        SyncLogEntry(run=r, organization_id=r.membership.organization_id, membership=r.membership,
                     kind=r.kind, level="info", action="run", message="quiet") for r in runs[::4]])
    # django-q2's kept task results of a busy site (its default keeps the last 250)
    Task.objects.bulk_create([
        Task(id=uuid.uuid4().hex, name=f"sync-{i}", func="syncengine.tasks.run_sync", started=t, stopped=t,
             success=True) for i in range(250)])


def test_a_quiet_runs_reads_use_indexes_and_do_not_grow_with_members_or_their_history(
        member, org_b, inline_q, settings):
    if connection.vendor != "postgresql":
        skip_or_fail("the plans are PostgreSQL's")
    from policy.models import UserPolicy
    from syncengine.engine.run import run_sync

    member.sf_create("Contact", FirstName="Ada", LastName="Lovelace", Email="ada@example.com")
    run_sync(member.membership, "contacts", "manual")  # the first, reviewed sync
    UserPolicy.objects.create(membership=member.membership, kind="contacts", mode="auto", frequency_minutes=15)
    _quiet_run(member, "contacts")  # first auto run: the state a quiet run starts from

    _analyze()
    alone, seq_alone = _quiet_run(member, "contacts")
    _crowd([member.membership.organization, org_b], 240)
    _analyze()  # the planner knows the tables' sizes, as it does in production
    crowded, seq_crowded = _quiet_run(member, "contacts")

    print(f"rows read by a quiet run, alone: {alone}; among 240 more members: {crowded}")
    assert seq_alone == [] and seq_crowded == []
    # The same reads, give or take the plans' choices and the member's own one more run (a read
    # that follows the other members or their runs adds hundreds here: 960 runs today, 480
    # connections, 250 kept task results).
    assert sum(crowded.values()) <= sum(alone.values()) + 10, (alone, crowded)


def _history(member, first: int, last: int) -> None:
    """The member's runs of every kind, 15 minutes apart, `first`..`last` runs before its
    oldest; every 50th failed."""
    from syncengine.models import SyncRun

    oldest = SyncRun.objects.filter(membership=member.membership).order_by("started_at").first().started_at
    SyncRun.objects.bulk_create([
        SyncRun(membership=member.membership, kind=kind, trigger="auto",
                status="failed" if j % 50 == 0 else "succeeded", api_salesforce=1, api_outlook=1,
                started_at=oldest - timedelta(minutes=15 * j + 1), finished_at=oldest - timedelta(minutes=15 * j))
        for kind in ("calendar", "contacts", "tasks") for j in range(first, last + 1)])


def test_a_quiet_runs_reads_do_not_grow_with_the_members_own_run_history(member, inline_q, settings):
    """A month of one member's runs of every kind (every 15 minutes, a failure now and then):
    what its next quiet run reads is what it read after a day. The alerts check after each run
    used to aggregate the member's whole history (its last run, its last success), and the
    lease holder looked for interrupted runs among all of them."""
    if connection.vendor != "postgresql":
        skip_or_fail("the plans are PostgreSQL's")
    from policy.models import UserPolicy
    from syncengine.engine.run import run_sync

    member.sf_create("Contact", FirstName="Ada", LastName="Lovelace", Email="ada@example.com")
    run_sync(member.membership, "contacts", "manual")
    UserPolicy.objects.create(membership=member.membership, kind="contacts", mode="auto", frequency_minutes=15)
    _quiet_run(member, "contacts")
    _history(member, 1, 96)  # a day
    _analyze()
    day, _ = _quiet_run(member, "contacts")
    _history(member, 1, 2_880)  # a month more
    _analyze()
    month, seq = _quiet_run(member, "contacts")

    print(f"rows read by a quiet run after a day of runs: {day}; after a month: {month}")
    assert seq == []
    assert sum(month.values()) <= sum(day.values()) + 10, (day, month)
