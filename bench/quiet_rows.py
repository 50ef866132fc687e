"""Rows PostgreSQL reads per quiet sync run, the way the worker runs them (issue 17; prints).

usage: python bench/quiet_rows.py DB [--first] [--runs N] [--settle] [--explain]

DB (and DB_sandbox) hold a seed, e.g. `bench/scale_bench.py --db lp_rows --members 1000
--items 1 --seed-only --reuse-seed`, copied to DB (migrated). --first: every (member, kind)
runs once (the first syncs), in-process, no latency, then stop. Otherwise: N random
(member, kind) are made due and one dispatcher tick runs them with django-q2 in sync mode (the
task and django-q2's result save, as a cluster's worker and monitor do); --settle runs a tick
that claims nothing first, so the measured tick reconciles only what changed since. Prints
pg_stat_database and pg_stat_user_tables deltas per run and, with --explain, every distinct
statement's EXPLAIN (ANALYZE) scans ordered by rows read per run, with where it was sent from.
Figures: bench/results/quiet_rows-2026-12-01.txt.
"""

import json
import os
import sys
import time
import uuid

if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
    raise SystemExit(__doc__)
DB = sys.argv[1]
ROOT = str(__import__("pathlib").Path(__file__).resolve().parent.parent)
sys.path.insert(0, ROOT)
os.chdir(ROOT)
pg = "postgres://postgres@127.0.0.1:5432"
os.environ.update({
    "DATABASE_URL": f"{pg}/{DB}", "SANDBOX_DATABASE_URL": f"{pg}/{DB}_sandbox",
    "REDIS_URL": os.environ.get("QUIET_ROWS_REDIS", "redis://127.0.0.1:6379/13"), "SANDBOX_ENABLED": "1", "DEBUG": "0",
    "Q_CLUSTER_NAME": f"lp-rows-{uuid.uuid4().hex[:6]}", "SANDBOX_LATENCY_MS": "",
    "DJANGO_SETTINGS_MODULE": "linkpoint.settings",
})

import django  # noqa: E402

django.setup()
import logging  # noqa: E402

logging.disable(logging.WARNING)
import psycopg  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection, connections, transaction  # noqa: E402
from django_q.conf import Conf  # noqa: E402

settings.SANDBOX_LATENCY = None
settings.SANDBOX_LIMITS = None
Conf.SYNC = True

from syncengine.engine.run import now  # noqa: E402
from syncengine.models import SyncLease  # noqa: E402
from syncengine.tasks import dispatch_due  # noqa: E402

args = sys.argv[2:]
RUNS = int(args[args.index("--runs") + 1]) if "--runs" in args else 30
STATS = ("seq_scan", "seq_tup_read", "idx_scan", "idx_tup_fetch", "n_tup_ins", "n_tup_upd", "n_tup_del")


def stats():
    with psycopg.connect(f"{pg}/{DB}", autocommit=True) as c:
        rows = c.execute(f"SELECT relname, {', '.join(STATS)} FROM pg_stat_user_tables").fetchall()
        db = c.execute("SELECT tup_returned, tup_fetched, xact_commit FROM pg_stat_database WHERE datname = %s",
                       (DB,)).fetchone()
    return {r[0]: [x or 0 for x in r[1:]] for r in rows}, db


def flushed():
    connections.close_all()  # a backend's counters reach pg_stat_* when it goes idle / exits
    time.sleep(1.5)


def make_due(n=None):
    t = now()
    qs = SyncLease.objects.order_by("?").values_list("pk", flat=True)
    pks = list(qs[:n]) if n else list(qs)
    SyncLease.objects.filter(pk__in=pks).update(next_run_at=t, holder="", expires_at=None)
    return len(pks)


if "--first" in args:
    from django_q.models import Success
    n = make_due()
    t0 = time.time()
    done = 0
    while True:
        got = dispatch_due(200)
        done += got
        print(f"first syncs: {done}/{n} ({time.time() - t0:.0f} s)", flush=True)
        if not got:
            break
    print("Success rows:", Success.objects.count())
    sys.exit(0)

captured = []


import traceback  # noqa: E402

where = {}


def capture(execute, sql, params, many, context):
    captured.append((sql, params, many))
    if sql not in where:
        where[sql] = [f"{f.filename.replace(ROOT + '/', '')}:{f.lineno} {f.name}" for f in traceback.extract_stack()
                      if ROOT in f.filename and "/.venv/" not in f.filename and "measure.py" not in f.filename][-4:]
    return execute(sql, params, many, context)


if "--settle" in args:
    dispatch_due(0)  # a tick that claims nothing: the next one reconciles only what changes
n = make_due(RUNS)
flushed()
s0, d0 = stats()
with connection.execute_wrapper(capture):
    got = dispatch_due(RUNS)
flushed()
s1, d1 = stats()
print(f"{DB}: made {n} due, claimed and ran {got}")
print(f"pg_stat_database per run: tup_returned {(d1[0] - d0[0]) / got:.0f}, tup_fetched {(d1[1] - d0[1]) / got:.0f}, "
      f"xact_commit {(d1[2] - d0[2]) / got:.1f}")
print(f"{'table':40} " + " ".join(f"{k:>13}" for k in STATS) + "   (per run)")
tot = [0] * len(STATS)
for rel in sorted(s1):
    delta = [a - b for a, b in zip(s1[rel], s0.get(rel, [0] * len(STATS)), strict=True)]
    if any(delta):
        tot = [a + b for a, b in zip(tot, delta, strict=True)]
        print(f"{rel:40} " + " ".join(f"{x / got:13.1f}" for x in delta))
print(f"{'total':40} " + " ".join(f"{x / got:13.1f}" for x in tot))
print(f"statements captured: {len(captured)} ({len(captured) / got:.1f} per run)")

if "--explain" in args:
    # Plan every distinct statement once (first parameters seen); writes inside a rolled-back
    # transaction. Report scan nodes: relation, node type, rows read (returned + removed) x loops.
    seen = {}
    for sql, params, many in captured:
        if many or sql in seen:
            continue
        seen[sql] = params
    times = {}
    for sql, _p, _m in captured:
        times[sql] = times.get(sql, 0) + 1
    report = []
    for sql, params in seen.items():
        head = sql.lstrip().split(None, 1)[0].upper()
        if head not in ("SELECT", "UPDATE", "DELETE", "INSERT", "WITH"):
            continue
        try:
            with transaction.atomic():
                with connection.cursor() as cur:
                    cur.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, params)
                    plan = cur.fetchone()[0]
                transaction.set_rollback(True)
        except Exception as exc:  # noqa: BLE001
            report.append((0, 0, 0, sql[:200], f"explain failed: {exc}"))
            continue
        plan = plan if isinstance(plan, list) else json.loads(plan)
        nodes = []

        def walk(node, nodes=nodes):
            nt = node.get("Node Type", "")
            if "Scan" in nt and "Relation Name" in node:
                read = (node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)) * node.get("Actual Loops", 1)
                nodes.append((nt, node["Relation Name"], node.get("Index Name", ""), read))
            for child in node.get("Plans", []):
                walk(child, nodes)

        walk(plan[0]["Plan"])
        read = sum(x[3] for x in nodes)
        report.append((read * times[sql], read, times[sql], sql, nodes))
    report.sort(key=lambda r: -r[0])
    print(f"\nstatements by rows read x times run (per run: / {got})")
    for total, read, n, sql, nodes in report[:30]:
        print(f"\n{total / got:>8.0f} rows/run = {read} x {n}  {sql[:1200]}")
        print(f"          {nodes}")
        print(f"          from {where.get(sql)}")
