"""Scale benchmark on the production topology (issue 17): prints, never asserts.

    python bench/scale_bench.py [--members 1000] [--cycles 2] [--cycle-minutes 15]
        [--latency-ms 150] [--clusters 2] [--workers-per-cluster 2] [--kill] [--keep]

PostgreSQL (`lp_scale` and its `lp_scale_sandbox` twin, dropped and created afresh),
the django-q2 Redis broker (db 13 by default), and `--clusters` qcluster processes
started as subprocesses (bench/scale_worker.py: the product's qcluster with a meter on
each task), with emulated latency on (SANDBOX_LATENCY_MS). The seeded members are
spread over `--orgs` organizations, each with its own Salesforce org; every member is
connected to both sandbox services through the product's OAuth pages and holds
`--items` items per kind (events, contacts, To Do tasks): 2 only in Outlook, 2 only in
Salesforce and 1 on both sides (matched, not created again), so each run of cycle 1 is
a first sync with writes on both sides and later cycles read what changed. Auto is on
for every kind, every `--cycle-minutes`; a completed sync per (member, kind) is
recorded first, since Auto waits for one ("First Auto needs a review").

The clusters' own scheduler fires the minute dispatcher; its first tick makes every
(member, kind) due at once (the worst case: a whole customer base in one minute). A
run's cycle is its rank among the due times its (member, kind) served.

Printed: runs per minute, lag from due (the lease's `next_run_at`) to start
(`SyncRun.started_at`), runs started twice, overlapping runs per (member, kind),
requests per run per kind and side (the engine's own count, `SyncRun.api_*`), worker CPU
(from /proc, every process of each cluster) and per run (the task's process time, less
the part spent in the in-process emulators), database queries per run (counted in the
task with Django's execute_wrapper, and the database's own `pg_stat_database` deltas),
the dispatcher's time and queries per tick; with `--kill`, one cluster is SIGKILLed
when half of the kill cycle's runs have started, and the pickup of its runs after their
lease expired; then duplicates on both sides and the extrapolation to 10,000 members.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
KINDS = ("calendar", "contacts", "tasks")
RECORDS_KEY = "lp-scale:records"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def say(line: str = "") -> None:
    print(line, flush=True)


# ---------------------------------------------------------------- setup


def _env(args) -> dict:
    pg = f"postgres://postgres@{args.pg_host}:5432"
    jitter = args.latency_ms / 5 if args.jitter_ms is None else args.jitter_ms
    site = f"lp-scale-{uuid.uuid4().hex[:8]}"
    env = {
        "DATABASE_URL": f"{pg}/{args.db}", "SANDBOX_DATABASE_URL": f"{pg}/{args.db}_sandbox",
        "REDIS_URL": args.redis, "SCALE_RECORDS_URL": args.redis,
        "Q_SITE_NAME": site, "Q_WORKERS": str(args.workers_per_cluster),
        "SYNC_CLUSTERS": str(args.clusters), "SANDBOX_ENABLED": "1", "DEBUG": "0",
        "SANDBOX_LATENCY_MS": f"{args.latency_ms:g},{jitter:g},{args.op_ms:g}" if args.latency_ms else "",
        # DEBUG off as in production: whitenoise's manifest, so collectstatic first (_django)
        "STATIC_ROOT": str(Path(tempfile.gettempdir()) / f"{args.db}-static"),
    }
    if args.limits:  # Graph's 4 requests in flight per mailbox, Salesforce's long-running limit
        env["SANDBOX_LIMITS"] = "on"
    if args.runs_per_worker_minute:
        env["SYNC_RUNS_PER_WORKER_MINUTE"] = str(args.runs_per_worker_minute)
    # The minute tick in a qcluster of its own (as bin/prod-local runs it), unless asked not to.
    env["SYNC_DISPATCH_CLUSTER"] = f"{site}-dispatch" if args.dispatch_cluster else ""
    return env


def _psql(args, sql: str, db: str = "postgres") -> str:
    return subprocess.run(["psql", f"postgres://postgres@{args.pg_host}:5432/{db}", "-qAtc", sql],
                          check=True, capture_output=True, text=True).stdout.strip()


def _databases(args, *, drop_only: bool = False, template: str = "") -> None:
    for suffix in ("", "_sandbox"):
        name = args.db + suffix
        _psql(args, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            _psql(args, f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}{suffix}"' if template else ""))


def _seed_signature(args) -> str:
    return f"scale_bench seed: members={args.members} orgs={args.orgs} items={args.items} every={args.cycle_minutes}"


def _saved_seed(args) -> str:
    """The name of a saved seed (databases `<db>_seed` and its sandbox twin) made with these
    parameters, or ''. Seeding 1,000 members through the OAuth pages takes many minutes here."""
    name = f"{args.db}_seed"
    comment = _psql(args, f"SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = '{name}'")
    return name if args.reuse_seed and comment == _seed_signature(args) else ""


def _save_seed(args) -> None:
    from django.db import connections

    connections.close_all()
    name = f"{args.db}_seed"
    for suffix in ("", "_sandbox"):
        _psql(args, f'DROP DATABASE IF EXISTS "{name}{suffix}" WITH (FORCE)')
        _psql(args, f'CREATE DATABASE "{name}{suffix}" TEMPLATE "{args.db}{suffix}"')
    _psql(args, f"COMMENT ON DATABASE \"{name}\" IS '{_seed_signature(args)}'")


def _django(env: dict) -> None:
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "linkpoint.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connections
    from django.db.backends.signals import connection_created

    # Seeding is not measured: no emulated latency in this process, and commits that do not
    # wait for the disk (this process's sessions only; the clusters keep PostgreSQL's defaults).
    settings.SANDBOX_LATENCY = None

    def no_fsync_wait(sender, connection, **kwargs):
        with connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit TO off")

    connection_created.connect(no_fsync_wait, weak=False)
    connections.close_all()
    call_command("migrate", verbosity=0)
    call_command("migrate", database="sandbox", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)


# ---------------------------------------------------------------- seeding


def _sf_dt(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def _sf_body(kind: str, i: int, base: dt.datetime) -> tuple[str, dict]:
    if kind == "contacts":
        return "Contact", {"FirstName": f"Given{i}", "LastName": f"Person{i}", "Email": f"p{i}@bench.test"}
    if kind == "tasks":
        return "Task", {"Subject": f"Task {i}"}
    start = base + dt.timedelta(hours=i)
    return "Event", {"Subject": f"Meeting {i}", "StartDateTime": _sf_dt(start),
                     "EndDateTime": _sf_dt(start + dt.timedelta(minutes=30)), "DurationInMinutes": 30}


def _split(n: int) -> tuple[range, range]:
    """Item numbers in Outlook and in Salesforce: a fifth (at least one) on both sides."""
    both = max(1, n // 5)
    only_o = (n - both) // 2
    return range(0, only_o + both), range(only_o, n)


def _connect(client, member) -> None:
    """Both OAuth journeys of one member through our pages and the sandbox's consent pages
    (as connections/demo.py does, without rendering the page each one ends on)."""
    import urllib.parse as up

    email, slug = member.user.email, member.organization.slug
    client.force_login(member.user, backend="django.contrib.auth.backends.ModelBackend")
    for provider in ("microsoft", "salesforce"):
        start = client.post(f"/o/{slug}/connections/{provider}/connect/")["Location"]
        if provider == "microsoft":
            answer = client.post(start, {"decision": "accept", "mailbox": email})
        else:
            form = {k: v for k, v in up.parse_qsl(up.urlsplit(start).query) if k != "login_hint"}
            answer = client.post(up.urlsplit(start).path, {**form, "username": email, "action": "allow"})
        done = client.get(answer["Location"])
        if done.status_code != 302:
            raise SystemExit(f"could not connect {email} to {provider}: HTTP {done.status_code}")


def _seed(args) -> list:
    """Orgs, connected members, their sandbox data, Auto policies and the review gate."""
    from sync_bench import outlook_item

    from accounts.models import User
    from orgs.models import Membership, Organization
    from policy.models import OrgPolicy
    from sandbox.microsoft.services import mailbox_ensure
    from sandbox.salesforce.models import SfOrg
    from sandbox.salesforce.services import sf_records_create, sf_user_ensure
    from syncengine.models import SyncRun

    base = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0) + dt.timedelta(days=1)
    in_o, in_s = _split(args.items)
    members = []
    t0 = time.monotonic()
    for o in range(args.orgs):
        org = Organization.objects.create(name=f"Scale {o + 1}", slug=f"scale-{o + 1}")
        for kind in KINDS:
            policy = OrgPolicy.with_defaults(organization_id=org.pk, kind=kind)
            policy.mode, policy.frequency_minutes = "auto", args.cycle_minutes
            policy.save()
        n = args.members // args.orgs + (1 if o < args.members % args.orgs else 0)
        users = User.objects.bulk_create([User(email=f"rep{i}@org{o + 1}.scale.test") for i in range(n)])
        members += Membership.objects.bulk_create([Membership(organization=org, user=u) for u in users])
    members = list(Membership.objects.select_related("user", "organization").filter(
        pk__in=[m.pk for m in members]).order_by("pk"))
    from django.test import Client

    client = Client()  # one for all: each new Client loads the middleware (whitenoise scans the files)
    for j, m in enumerate(members):
        email = m.user.email
        mailbox_ensure(email), sf_user_ensure(email=email)
        _connect(client, m)
        mailbox, sf_user = mailbox_ensure(email), sf_user_ensure(email=email)
        for kind in KINDS:
            for i in in_o:
                outlook_item(kind, mailbox, i, base)
            sf_records_create(user=sf_user, records=[_sf_body(kind, i, base) for i in in_s])
        if (j + 1) % 100 == 0 or j + 1 == len(members):
            say(f"  seeded {j + 1}/{len(members)} members ({time.monotonic() - t0:.0f} s)")
    # An Enterprise org's daily API allocation: 100,000 + 1,000 per user licence.
    for org in SfOrg.objects.all():
        users = org.users.count()
        org.api_daily_max = 100_000 + 1_000 * users
        org.save(update_fields=["api_daily_max"])
    t = dt.datetime.now(dt.UTC)
    SyncRun.objects.bulk_create([SyncRun(membership=m, kind=k, trigger="manual", status="succeeded",
                                         started_at=t, finished_at=t) for m in members for k in KINDS])
    from syncengine.tasks import schedule_ensure

    schedule_ensure()
    return members


# ---------------------------------------------------------------- processes


def _proc_cpu() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, CPU seconds incl. reaped children) for every process we can read."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # after the name: state ppid ... utime(14) stime(15) cutime(16) cstime(17), 1-based in stat
        out[int(name)] = (int(fields[1]), sum(int(x) for x in fields[11:15]) / CLK_TCK)
    return out


class Clusters:
    """qcluster processes, each in its own process group (killed whole)."""

    def __init__(self, env: dict, log_dir: Path):
        self.env, self.log_dir = env, log_dir
        self.procs: dict[str, subprocess.Popen] = {}
        self.cpu: dict[str, float] = {}  # last CPU seen per cluster instance (kept after a kill)

    def start(self, name: str, queue: str = "") -> None:
        """A qcluster serving the run queue, or `queue` (the dispatcher's)."""
        log = open(self.log_dir / f"qcluster-{name}.log", "wb")  # noqa: SIM115
        self.procs[name] = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "scale_worker.py")], cwd=ROOT,
            env={**os.environ, **self.env, "SCALE_CLUSTER": name, "Q_CLUSTER_NAME": queue},
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def sample(self) -> None:
        procs = _proc_cpu()
        children = defaultdict(list)
        for pid, (ppid, _) in procs.items():
            children[ppid].append(pid)
        for name, p in self.procs.items():
            if p.poll() is not None:
                continue
            total, todo = 0.0, [p.pid]
            while todo:
                pid = todo.pop()
                total += procs.get(pid, (0, 0.0))[1]
                todo += children.get(pid, [])
            self.cpu[name] = max(self.cpu.get(name, 0.0), total)

    def kill(self, name: str) -> None:
        self.sample()
        os.killpg(self.procs[name].pid, signal.SIGKILL)
        self.procs[name].wait(timeout=10)

    def stop_all(self) -> None:
        self.sample()
        for p in self.procs.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)


# ---------------------------------------------------------------- what the workers report


class Records:
    """The workers' start / end / enqueue / tick records, read incrementally from Redis."""

    def __init__(self, url: str):
        import redis

        self.r = redis.Redis.from_url(url)
        self.r.delete(RECORDS_KEY)
        self.seen = 0
        self.starts, self.ends, self.ticks, self.enq, self.claim_due = [], {}, [], {}, {}
        self.dues: dict[tuple, list] = defaultdict(list)  # (mid, kind) -> due times served, in order

    def poll(self) -> None:
        rows = self.r.lrange(RECORDS_KEY, self.seen, -1)
        self.seen += len(rows)
        for raw in rows:
            rec = json.loads(raw)
            if rec["ev"] == "due":
                # A claim of an expired lease serves the due time of the claim that died.
                self.claim_due[rec["holder"]] = self.claim_due.get(rec["resumes"], rec["due"])
            elif rec["ev"] == "start":
                key = (rec["mid"], rec["kind"])
                # The due time the claim served (the lease row's, read at task start, would
                # already be the claim's lease expiry)
                rec["due_at_start"] = rec["due"]
                rec["due"] = self.claim_due.get(rec["holder"], rec["due"])
                if rec["due"] not in self.dues[key]:
                    self.dues[key].append(rec["due"])
                rec["cycle"] = self.dues[key].index(rec["due"]) + 1
                self.starts.append(rec)
            elif rec["ev"] == "end":
                self.ends[(rec["holder"], rec["mid"], rec["kind"], rec["pid"])] = rec
            elif rec["ev"] == "tick":
                self.ticks.append(rec)
            elif rec["ev"] == "enq":
                self.enq[rec["holder"]] = rec["t"]

    def end_of(self, start: dict) -> dict | None:
        return self.ends.get((start["holder"], start["mid"], start["kind"], start["pid"]))

    def started(self, cycle: int) -> int:
        return sum(1 for s in self.starts if s["cycle"] == cycle)

    def done_pairs(self, cycle: int, dead: set[str] = frozenset()) -> int:
        """(member, kind) pairs past `cycle`: a finished run of it that was not skipped, or a run
        of it on a dead cluster after which the pair's schedule moved on (it got as far as that)."""
        later = defaultdict(int)
        for s in self.starts:
            later[(s["mid"], s["kind"])] = max(later[(s["mid"], s["kind"])], s["cycle"])
        done = set()
        for s in self.starts:
            if s["cycle"] != cycle:
                continue
            e = self.end_of(s)
            if (e and e["status"] != "skipped") or (not e and s["cluster"] in dead
                                                     and later[(s["mid"], s["kind"])] > cycle):
                done.add((s["mid"], s["kind"]))
        return len(done)

    def running(self, dead: set[str] = frozenset()) -> int:
        return sum(1 for s in self.starts if not self.end_of(s) and s["cluster"] not in dead)


def _served() -> dict:
    from sandbox.accounting import api_counts

    return {side: api_counts(side=side) for side in ("outlook", "salesforce")}


def _pg_stats(args) -> dict:
    row = _psql(args, "SELECT xact_commit, xact_rollback, tup_returned, tup_fetched, tup_inserted, tup_updated, "
                f"tup_deleted FROM pg_stat_database WHERE datname = '{args.db}'")
    names = ("xact_commit", "xact_rollback", "tup_returned", "tup_fetched", "tup_inserted", "tup_updated",
             "tup_deleted")
    return dict(zip(names, (int(x) for x in row.split("|")), strict=True))


# ---------------------------------------------------------------- the kill


class Kill:
    """SIGKILL one cluster mid-cycle; find what it held; let those leases expire; watch the pickup."""

    def __init__(self, clusters: Clusters, records: Records, victim: str):
        self.clusters, self.records, self.victim = clusters, records, victim
        self.at = self.expired_at = self.restarted_at = None
        self.lost: dict[tuple, str] = {}  # (mid, kind) -> the holder whose lease it left
        self.in_flight = 0
        self.pickup: dict[tuple, float] = {}
        self.ticks_while_held = 0

    def fire(self) -> None:
        self.at = time.time()
        self.clusters.kill(self.victim)
        self.records.poll()
        self.in_flight = sum(1 for s in self.records.starts if s["cluster"] == self.victim
                             and not self.records.end_of(s))
        say(f"  SIGKILL qcluster {self.victim} (its whole process group) with {self.in_flight} run(s) in flight")

    def step(self) -> None:
        """Called every poll after the kill."""
        if self.expired_at is None:
            self._find_lost()
            return
        for s in self.records.starts:
            key = (s["mid"], s["kind"])
            if key in self.lost and key not in self.pickup and s["t"] > self.expired_at:
                self.pickup[key] = s["t"]
        if self.restarted_at is None and len(self.pickup) == len(self.lost):
            self.clusters.start(self.victim + "b")
            self.restarted_at = time.time()
            say(f"  all {len(self.lost)} picked up; qcluster {self.victim} restarted (as its supervisor would)")

    def _find_lost(self) -> None:
        """The dead cluster's work: runs it had started, and tasks it had taken from the broker
        but not begun (lost with it: Redis hands a task out once). Known for sure once the
        surviving clusters, which take tasks first in first out, start one enqueued after the
        kill (or sit idle with nothing queued), and after two ticks have seen the leases held."""
        from django.utils import timezone
        from django_q.brokers import get_broker

        from syncengine.models import SyncLease

        recs = self.records
        ticks = [t for t in recs.ticks if t["t"] > self.at + 1]
        live = [s for s in recs.starts if s["cluster"] != self.victim]
        after = any(recs.enq.get(s["holder"], 0) > self.at for s in live)
        idle = (not any(not recs.end_of(s) for s in live) and get_broker().queue_size() == 0
                and time.time() - max([s["t"] for s in live] or [self.at]) > 15)
        if len(ticks) < 2 or not (after or idle):
            return
        self.ticks_while_held = len(ticks)
        begun = {s["holder"] for s in live} | {s["holder"] for s in recs.starts if recs.end_of(s)}
        pre_kill = {h for h, t in recs.enq.items() if t < self.at}
        held = SyncLease.objects.exclude(holder="").filter(expires_at__gt=timezone.now())
        self.lost = {(mid, kind): h for mid, kind, h in held.values_list("membership_id", "kind", "holder")
                     if h in pre_kill and h not in begun}
        say(f"  {len(ticks)} dispatcher tick(s) since the kill started none of the {len(self.lost)} (member, kind) "
            f"whose lease the dead cluster still holds ({self.in_flight} in flight, the rest taken from the broker)")
        # LEASE_TTL is 30 minutes, longer than a cycle: stand in for that time passing on exactly
        # these leases (the qcluster test does the same); the next tick claims them.
        # Both times move: the claim set next_run_at to the lease's expiry, and tick order is by it.
        SyncLease.objects.filter(holder__in=list(self.lost.values())).update(
            expires_at=timezone.now(), next_run_at=timezone.now())
        self.expired_at = time.time()
        say(f"  their leases expire now (kill + {self.expired_at - self.at:.0f} s)")


# ---------------------------------------------------------------- the figures


def _pct(values, p: float) -> float:
    values = sorted(values)
    if not values:
        return float("nan")
    return values[min(len(values) - 1, max(0, math.ceil(p / 100 * len(values)) - 1))]


def _spread(values, unit: str = "s", digits: int = 1) -> str:
    if not values:
        return "none"
    return (f"p50 {_pct(values, 50):.{digits}f} {unit}, p95 {_pct(values, 95):.{digits}f} {unit}, "
            f"max {max(values):.{digits}f} {unit} (n={len(values)})")


def _runs(records: Records, kill: Kill | None) -> list[dict]:
    """One row per run the workers began (not skipped), joined with its SyncRun row."""
    from syncengine.models import SyncRun

    rows = []
    for s in records.starts:
        e = records.end_of(s)
        if e is not None and e["status"] == "skipped":
            continue
        rows.append({**s, "end": e, "killed": e is None and kill is not None and s["cluster"] == kill.victim})
    by_id = {r.pk: r for r in SyncRun.objects.filter(pk__in=[r["end"]["run_id"] for r in rows if r["end"]])}
    for r in rows:
        r["run"] = by_id.get(r["end"]["run_id"]) if r["end"] else None
        if r["killed"]:  # the run row the killed task had begun, if it got that far
            r["run"] = (SyncRun.objects.filter(membership_id=r["mid"], kind=r["kind"], trigger="auto",
                                               started_at__gte=dt.datetime.fromtimestamp(r["t"] - 1, dt.UTC),
                                               started_at__lte=dt.datetime.fromtimestamp(kill.at, dt.UTC))
                        .order_by("started_at").first())
    return rows


def _report_cycles(args, rows, kill) -> None:
    say("\n== cycles (a run's cycle: the rank of the due time it served for its member and kind)")
    for c in sorted({r["cycle"] for r in rows}):
        done = [r for r in rows if r["cycle"] == c and r["run"]]
        if not done:
            continue
        first, last = min(r["t"] for r in done), max(r["end"]["t"] if r["end"] else kill.at for r in done)
        hit = set(kill.lost) if kill and c == args.kill_cycle else set()
        lag = [r["run"].started_at.timestamp() - r["due"] for r in done
               if r["due"] and r["run"].started_at and (r["mid"], r["kind"]) not in hit]
        lag_hit = [r["run"].started_at.timestamp() - r["due"] for r in done
                   if r["due"] and r["run"].started_at and (r["mid"], r["kind"]) in hit]
        status = Counter(r["run"].status for r in done)
        writes = sum(_writes(r["run"]) for r in done)
        say(f"cycle {c}: {len(done)} runs of {args.members * 3} due pairs; first start to last end "
            f"{(last - first) / 60:.1f} min = {len(done) / max(1e-9, (last - first) / 60):.0f} runs/min; "
            f"status {dict(status)}; writes {writes}")
        say(f"  lag due -> SyncRun.started_at: {_spread(lag)}"
            + (f"; the killed cluster's (member, kind): {_spread(lag_hit)}" if lag_hit else ""))
        say(f"  wall per run (latency included): {_spread([r['end']['wall'] for r in done if r['end']], 's', 2)}"
            + (f"; {sum(1 for r in done if r['killed'])} of these runs were on the killed cluster"
               if any(r["killed"] for r in done) else ""))
        for kind in KINDS:
            ks = [r["run"] for r in done if r["kind"] == kind and not r["killed"]]
            if ks:
                o, s = [x.api_outlook for x in ks], [x.api_salesforce for x in ks]
                say(f"  {kind:8} requests per run: Outlook mean {statistics.mean(o):.2f} (min {min(o)}, max "
                    f"{max(o)}), Salesforce mean {statistics.mean(s):.2f} (min {min(s)}, max {max(s)})")


def _writes(run) -> int:
    return sum(v.get("outlook", 0) + v.get("salesforce", 0) for k, v in (run.counts or {}).items()
               if k in ("created", "updated", "deleted") and isinstance(v, dict))


def _per_minute(rows) -> str:
    ends = Counter(int(r["end"]["t"] // 60) for r in rows if r["end"])
    if not ends:
        return "none"
    lo, hi = min(ends), max(ends)
    series = [ends.get(m, 0) for m in range(lo, hi + 1)]
    return f"mean {statistics.mean(series):.0f}, peak {max(series)}; minute by minute: {series}"


def _report_safety(rows, kill) -> None:
    say("\n== safety")
    starts = Counter((r["mid"], r["kind"], r["due"]) for r in rows if not r["killed"])
    twice = sum(n - 1 for n in starts.values() if n > 1)
    say(f"runs started twice for the same due (member, kind) (killed runs' restarts excluded): {twice}")
    early = [r for r in rows if r["due"] and r["t"] < r["due"] - 1]
    say(f"runs started before the due time they served: {len(early)}")
    overlap = 0
    by_key = defaultdict(list)
    for r in rows:
        end = r["end"]["t"] if r["end"] else (kill.at if r["killed"] else time.time())
        by_key[(r["mid"], r["kind"])].append((r["t"], end))
    for spans in by_key.values():
        spans.sort()
        overlap += sum(1 for a, b in zip(spans, spans[1:], strict=False) if b[0] < a[1])
    say(f"overlapping runs per (member, kind) (workers' start..end, a killed run ends at the kill): {overlap}")
    db_overlap = 0
    for spans in _db_spans().values():
        db_overlap += sum(1 for a, b in zip(spans, spans[1:], strict=False) if b[0] < a[1])
    say(f"overlapping runs per (member, kind) from SyncRun.started_at..finished_at (interrupted runs left out): "
        f"{db_overlap}")


def _db_spans() -> dict:
    from syncengine.engine.run import INTERRUPTED
    from syncengine.models import SyncRun

    out = defaultdict(list)
    for mid, kind, a, b, err in SyncRun.objects.filter(trigger="auto", finished_at__isnull=False).values_list(
            "membership_id", "kind", "started_at", "finished_at", "error"):
        if INTERRUPTED[:30] not in (err or "") and "killed" not in (err or ""):
            out[(mid, kind)].append((a, b))
    for spans in out.values():
        spans.sort()
    return out


def _duplicates(args, members) -> tuple[int, dict]:
    """Items that exist more than once on one side of one member, and items per side and kind."""
    from sandbox.microsoft.models import Item, Mailbox
    from sandbox.salesforce.models import SfRecord, SfUser

    mailboxes = dict(Mailbox.objects.filter(email__in=[m.user.email for m in members]).values_list("pk", "email"))
    owners = dict(SfUser.objects.filter(username__in=[m.user.email for m in members]).values_list("user_id", "username"))
    seen, per = Counter(), Counter()
    names = {"event": "subject", "todoTask": "title", "contact": "surname"}
    for mb, kind, data in Item.objects.filter(mailbox_id__in=mailboxes, deleted=False,
                                              kind__in=list(names)).values_list("mailbox_id", "kind", "data"):
        seen[("o", mb, kind, data.get(names[kind]))] += 1
        per[("Outlook", kind)] += 1
    fields = {"Event": "Subject", "Task": "Subject", "Contact": "LastName"}
    for owner, sobject, data in SfRecord.objects.filter(owner_id__in=owners, is_deleted=False,
                                                        sobject__in=list(fields)).values_list("owner_id", "sobject",
                                                                                              "fields"):
        seen[("s", owner, sobject, data.get(fields[sobject]))] += 1
        per[("Salesforce", sobject)] += 1
    return sum(n - 1 for n in seen.values() if n > 1), dict(per)


def _report_kill(kill: Kill, rows) -> None:
    from syncengine.models import SyncRun

    say("\n== the SIGKILL")
    if kill.at is None:
        say("the kill cycle was not reached")
        return
    say(f"qcluster {kill.victim} SIGKILLed at {_hms(kill.at)} with {kill.in_flight} run(s) in flight; "
        f"{len(kill.lost)} (member, kind) leases left held by it")
    if kill.expired_at:
        waits = [kill.pickup[k] - kill.expired_at for k in kill.pickup]
        say(f"leases expired (by the bench) at kill + {kill.expired_at - kill.at:.0f} s; picked up by the next tick: "
            f"{len(kill.pickup)}/{len(kill.lost)}, start after expiry {_spread(waits)}")
        again = {}
        for r in sorted(rows, key=lambda r: r["t"]):
            if (r["mid"], r["kind"]) in kill.lost and r["t"] > kill.expired_at and r["run"]:
                again.setdefault((r["mid"], r["kind"]), r)
        say(f"the first run of each after the expiry: {dict(Counter(r['run'].status for r in again.values()))}, "
            f"writes {sum(_writes(r['run']) for r in again.values())}")
        closed = SyncRun.objects.filter(trigger="auto", status="failed", error__icontains="interrupt").count()
        say(f"runs the dead cluster left 'running', closed as failed when the next run took the lease: {closed}; "
            f"still 'running': {SyncRun.objects.filter(status='running').count()}")
    if kill.restarted_at:
        say(f"qcluster {kill.victim} restarted at kill + {kill.restarted_at - kill.at:.0f} s")


def _hms(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%H:%M:%S")


def _report_cost(args, rows, records, clusters, pg0, pg1, window) -> dict:
    say("\n== cost")
    done = [r for r in rows if r["end"]]
    n = len(done)
    cpu = [r["end"]["cpu"] for r in done]
    emu = [r["end"]["emulator_cpu"] for r in done]
    product = [a - b for a, b in zip(cpu, emu, strict=True)]
    total = sum(clusters.cpu.values())
    say(f"worker CPU from /proc (every process of every qcluster, {window / 60:.1f} min): {total:.0f} s "
        f"= {total / max(1, n):.3f} s per run over {n} runs ({', '.join(f'{k}: {v:.0f} s' for k, v in clusters.cpu.items())})")
    say(f"CPU per run inside the task: {_spread(cpu, 's', 3)}; of it the in-process emulators "
        f"{statistics.mean(emu):.3f} s mean; the product's own {_spread(product, 's', 3)}, mean {statistics.mean(product):.3f} s")
    qd = [r["end"]["q_default"] for r in done]
    qs = [r["end"]["q_sandbox"] for r in done]
    say(f"database queries per run (execute_wrapper in the task): product {_spread(qd, '', 0)}, mean "
        f"{statistics.mean(qd):.1f}; emulators' own database {statistics.mean(qs):.1f} mean")
    cycles = sorted({r["cycle"] for r in done})
    for kind in KINDS:
        means = [statistics.mean(kc) if (kc := [r["end"]["q_default"] for r in done
                                                if r["kind"] == kind and r["cycle"] == c]) else float("nan")
                 for c in cycles]
        say(f"  {kind:8} queries per run, cycle {'/'.join(map(str, cycles))}: {' / '.join(f'{m:.0f}' for m in means)}")
    d = {k: pg1[k] - pg0[k] for k in pg0}
    say(f"pg_stat_database {args.db} over the window, per run (every client: tasks, dispatcher, django-q "
        f"result saves, the scheduler): " + ", ".join(f"{k} {v / max(1, n):.1f}" for k, v in d.items()))
    ticks = records.ticks
    if ticks:
        first, rest = ticks[0], ticks[1:]
        say(f"dispatcher: {len(ticks)} ticks; the first (reconciles every member once): {first['wall']:.2f} s, "
            f"{first['q_default']} queries, {first['claimed']} claimed")
        if rest:
            say(f"  later ticks: time {_spread([t['wall'] for t in rest], 's', 3)}; queries "
                f"{_spread([t['q_default'] for t in rest], '', 0)}; CPU {statistics.mean([t['cpu'] for t in rest]):.3f} s mean; "
                f"claimed per tick {_spread([t['claimed'] or 0 for t in rest], '', 0)}")
            starts = sorted(t["t"] for t in ticks)
            where = ("in the dispatcher's own qcluster" if args.dispatch_cluster
                     else "a task in the same queue as the runs")
            say(f"  time between tick starts (scheduled every minute; the tick is {where}): "
                f"{_spread([b - a for a, b in zip(starts, starts[1:], strict=False)])}")
            budgets = [t["budget"] for t in ticks if t.get("budget") is not None]
            if budgets:
                say(f"  budget per tick (measured: runs finished in the last 5 min, less the run queue): "
                    f"{_spread(budgets, '', 0)}; run queue at tick start "
                    f"{_spread([t['queued'] for t in ticks if t.get('queued') is not None], '', 0)}")
    return {"runs": n, "cpu_run": statistics.mean(product), "cpu_all_run": total / max(1, n),
            "wall_run": statistics.mean(r["end"]["wall"] for r in done),
            "queries_run": statistics.mean(qd)}


def _report_extrapolation(args, cost: dict, rows) -> None:
    say("\n== extrapolation to 10,000 members (3 kinds every 15 minutes: 30,000 runs per 15 min = 2,000 per min)")
    steady = [r for r in rows if r["end"] and r["cycle"] >= 2] or [r for r in rows if r["end"]]
    wall = statistics.mean(r["end"]["wall"] for r in steady)
    cpu = statistics.mean(r["end"]["cpu"] - r["end"]["emulator_cpu"] for r in steady)
    queries = statistics.mean(r["end"]["q_default"] for r in steady)
    per_min = 2000
    procs = math.ceil(per_min * wall / 60)
    cores = per_min * cpu / 60
    say(f"from the steady cycles (cycle >= 2, {len(steady)} runs): wall {wall:.2f} s per run with "
        f"{args.latency_ms:g} ms latency, product CPU {cpu:.3f} s per run, {queries:.0f} queries per run")
    say(f"worker processes busy at once: 2,000/min x {wall:.2f} s / 60 = {procs} "
        f"= {math.ceil(procs / args.workers_per_cluster)} qclusters of {args.workers_per_cluster} workers "
        f"(the runs wait on the network most of the time)")
    say(f"CPU: 2,000/min x {cpu:.3f} s / 60 = {cores:.1f} cores busy for the product alone "
        f"(this bench measured {cost['cpu_all_run']:.3f} s per run for everything in the clusters, emulators included)")
    say(f"PostgreSQL: {per_min * queries / 60:.0f} queries/s from the runs")
    ends = Counter(int(r["end"]["t"] // 60) for r in rows if r["end"])
    if ends:
        peak = max(ends.values())
        say(f"this machine ({os.cpu_count()} CPUs shared with other work, emulators in-process) peaked at {peak} "
            f"runs in a minute with {args.clusters} x {args.workers_per_cluster} workers: 2,000/min needs "
            f"{math.ceil(per_min / peak)} such machines")
    say(f"dispatcher budget for it: measured from the runs that finish (no setting to size; one worker does "
        f"about {60 / wall:.0f} runs a minute at this wall time); SYNC_CLUSTERS x Q_WORKERS should count the run "
        f"workers, which the budget spreads the measured run time over when they have room")
    first = [r for r in rows if r["end"] and r["cycle"] == 1]
    if first:
        fw = statistics.mean(r["end"]["wall"] for r in first)
        say(f"a first-sync cycle ({args.items} items per kind per member) costs {fw:.2f} s wall per run: "
            f"{math.ceil(per_min * fw / 60)} worker processes to keep 15 minutes")


# ---------------------------------------------------------------- main


def _parse(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--members", type=int, default=1000)
    p.add_argument("--orgs", type=int, default=2, help="organizations the members are spread over (own SF org each)")
    p.add_argument("--items", type=int, default=5, help="items per kind per member (a fifth on both sides)")
    p.add_argument("--cycles", type=int, default=2)
    p.add_argument("--cycle-minutes", type=int, default=15, help="Auto frequency of every kind")
    p.add_argument("--latency-ms", type=float, default=150)
    p.add_argument("--jitter-ms", type=float, default=None, help="uniform extra per request (latency/5)")
    p.add_argument("--op-ms", type=float, default=1.0, help="per operation inside a $batch or a collection")
    p.add_argument("--no-limits", dest="limits", action="store_false",
                   help="leave the emulators' concurrency limits off (SANDBOX_LIMITS)")
    p.add_argument("--clusters", type=int, default=2)
    p.add_argument("--workers-per-cluster", type=int, default=2)
    p.add_argument("--runs-per-worker-minute", type=int, default=0,
                   help="SYNC_RUNS_PER_WORKER_MINUTE, the dispatcher's budget before any run has finished "
                        "(0: the product's default); later budgets are measured")
    p.add_argument("--no-dispatch-cluster", dest="dispatch_cluster", action="store_false",
                   help="the minute tick in the runs' own queue, as before the dispatcher qcluster")
    p.add_argument("--kill", action="store_true", help="SIGKILL one qcluster mid-cycle")
    p.add_argument("--kill-cycle", type=int, default=0, help="the cycle to kill in (default: the last)")
    p.add_argument("--max-minutes", type=float, default=0, help="stop then even if cycles are unfinished "
                   "(default: cycles x cycle minutes + 10)")
    p.add_argument("--keep", action="store_true", help="keep the databases")
    p.add_argument("--reuse-seed", action="store_true", help="copy a saved seed of the same parameters "
                   "(<db>_seed, kept) instead of seeding; save one if there is none")
    p.add_argument("--seed-only", action="store_true", help="seed (and save with --reuse-seed), then stop")
    p.add_argument("--db", default="lp_scale")
    p.add_argument("--pg-host", default="127.0.0.1")
    p.add_argument("--redis", default="redis://127.0.0.1:6379/13")
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = _parse(argv)
    args.kill_cycle = args.kill_cycle or args.cycles
    cap = (args.max_minutes or args.cycles * args.cycle_minutes + 10) * 60
    env = _env(args)
    say(f"scale_bench {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC: {args.members} members in {args.orgs} orgs, "
        f"{args.items} items per kind each, Auto every {args.cycle_minutes} min, {args.cycles} cycles, latency "
        f"{env['SANDBOX_LATENCY_MS'] or 'off'} ms (request, jitter, per inner op), limits "
        f"{'on' if args.limits else 'off'}, SYNC_CONCURRENCY {os.environ.get('SYNC_CONCURRENCY', '4,4')}, {args.clusters} qclusters x "
        f"{args.workers_per_cluster} workers, SYNC_RUNS_PER_WORKER_MINUTE "
        f"{args.runs_per_worker_minute or 'default (6)'} (first tick only), tick in "
        f"{'a dispatcher qcluster' if args.dispatch_cluster else 'the run queue'}"
        f"{f', kill in cycle {args.kill_cycle}' if args.kill else ''}; "
        f"machine: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    saved = _saved_seed(args)
    _databases(args, template=saved)
    t0 = time.monotonic()
    _django(env)
    import logging

    logging.disable(logging.WARNING)
    if saved:
        from orgs.models import Membership

        members = list(Membership.objects.select_related("user"))
        say(f"== the saved seed {saved} ({_seed_signature(args)}) copied in {time.monotonic() - t0:.0f} s")
    else:
        say("== seeding")
        members = _seed(args)
        say(f"seeded in {time.monotonic() - t0:.0f} s (OAuth journeys for both services, items through the "
            f"emulators' services)")
        if args.reuse_seed:
            _save_seed(args)
            say(f"saved as {args.db}_seed for --reuse-seed")

    if args.seed_only:
        return
    log_dir = Path(tempfile.mkdtemp(prefix="lp-scale-"))
    records = Records(args.redis)
    from django_q.brokers import get_broker

    get_broker().purge_queue()
    clusters = Clusters(env, log_dir)
    kill = Kill(clusters, records, "1") if args.kill else None
    pg0, served0 = _pg_stats(args), _served()
    start = time.time()
    for i in range(args.clusters):
        clusters.start(str(i + 1))
    if env["SYNC_DISPATCH_CLUSTER"]:
        clusters.start("dispatch", env["SYNC_DISPATCH_CLUSTER"])
    say(f"== {args.clusters} qclusters started at {_hms(start)}"
        f"{' with a dispatcher qcluster (1 worker, the tick only)' if env['SYNC_DISPATCH_CLUSTER'] else ''} "
        f"(logs in {log_dir})")
    last_line = 0.0
    try:
        while time.time() - start < cap:
            time.sleep(3)
            records.poll()
            clusters.sample()
            if kill and kill.at is None and records.started(args.kill_cycle) >= args.members * 3 // 2:
                kill.fire()
            elif kill and kill.at is not None:
                kill.step()
            dead = {kill.victim} if kill and kill.at else set()
            if time.time() - last_line >= 60:
                last_line = time.time()
                running = records.running(dead)
                say(f"  {_hms(time.time())} +{(time.time() - start) / 60:4.1f} min: started "
                    + ", ".join(f"c{c} {records.started(c)}" for c in range(1, args.cycles + 1))
                    + f"; running {running}; queued {get_broker().queue_size()}; ticks {len(records.ticks)}; "
                    f"load {os.getloadavg()[0]:.1f}")
            dead = {kill.victim} if kill and kill.at else set()
            if all(records.done_pairs(c, dead) >= args.members * 3 for c in range(1, args.cycles + 1)) and (
                    not kill or kill.restarted_at):
                break
        else:
            say(f"  stopped at the cap of {cap / 60:.0f} min with cycles unfinished")
        window = time.time() - start
        records.poll()
    finally:
        clusters.stop_all()
    records.poll()
    pg1, served1 = _pg_stats(args), _served()
    rows = _runs(records, kill)
    say(f"\n== runs per minute (finished, over {window / 60:.1f} min): {_per_minute(rows)}")
    _report_cycles(args, rows, kill)
    counted = {side: sum(getattr(r["run"], f"api_{side}") for r in rows if r["run"]) for side in served0}
    say("  the sandbox's own request accounting over the window: " + ", ".join(
        f"{side} {served1[side] - served0[side]} served, {counted[side]} counted by the runs" for side in served0)
        + " (the difference: sign-ins and token refreshes, and the killed runs' requests)")
    _report_safety(rows, kill)
    if kill:
        _report_kill(kill, rows)
    dups, per = _duplicates(args, members)
    expected = args.members * args.items
    say(f"\nduplicates (an item twice on one side of one member): {dups}; items per side and kind "
        f"(expected {expected} each once every first sync is done): {per}")
    cost = _report_cost(args, rows, records, clusters, pg0, pg1, window)
    _report_extrapolation(args, cost, rows)
    if not args.keep:
        from django.db import connections

        connections.close_all()
        _databases(args, drop_only=True)


if __name__ == "__main__":
    main()
