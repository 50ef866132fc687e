"""Sync engine benchmark against the sandbox: prints, never asserts.

    python bench/sync_bench.py --items N [--kinds contacts,tasks,calendar]

Seeds N items per kind (about half in Outlook, half in Salesforce, a tenth of
them on both sides so the first sync has pairs to match), then runs per kind:
a first sync, a quiet incremental sync, and a sync after changing 1% of the
items on each side. One JSON object per line, per phase and kind:
phase, kind, items, wall_s (emulator_s of it spent in the in-process
emulators answering, latency included; requests in flight together add up),
cpu_s (the process's CPU time: engine and in-process emulators; with the GIL a wall
below it is impossible), api_requests {outlook, salesforce}, floor
{outlook, salesforce} (the fewest requests that phase could take: read pages
at the largest page size each API allows, ⌈writes/20⌉ Graph `$batch`
requests, ⌈records/200⌉ Salesforce collection requests per operation plus
the precondition read of updates and deletes (see `_floor`), one change
query per side when quiet), sign_in_requests (token refreshes, apart from the API
requests) and peak_rss_mb (the process's peak resident set during
the phase, sandbox emulators included: they answer in-process; rss_before_mb
is where the phase started, memory earlier phases left behind). Uses a
throw-away SQLite database pair.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import logging
import math
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GRAPH_PAGE = 1000
SF_PAGE = 2000
GRAPH_BATCH = 20
SF_COLLECTION = 200


def _setup(tmp: str, sandbox_pg: str = "") -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["DATABASE_URL"] = f"sqlite:///{tmp}/bench.sqlite3"
    os.environ["SANDBOX_ENABLED"] = "1"
    if sandbox_pg:
        _fresh_pg(sandbox_pg)
        os.environ["SANDBOX_DATABASE_URL"] = sandbox_pg
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "linkpoint.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("migrate", database="sandbox", verbosity=0)


_OFFSET = [dt.timedelta(0)]


def _advance_clock(by: dt.timedelta) -> None:
    """Move "now" forward for the product and the sandbox alike (both read timezone.now)."""
    from django.utils import timezone

    if not hasattr(timezone, "_bench_real_now"):
        timezone._bench_real_now = timezone.now
        timezone.now = lambda: timezone._bench_real_now() + _OFFSET[0]
    _OFFSET[0] += by


def _rss_reset() -> None:
    """Start a new peak: on Linux the resident high-water mark can be reset per phase."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _rss_mb() -> float:
    """The peak resident set since `_rss_reset` (Linux VmHWM); elsewhere the process's peak."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _member(name: str = "bench"):
    """A member connected to both sandbox services through the product's real OAuth flows
    (`name` names the user: each has a mailbox and a Salesforce user of their own)."""
    from django.conf import settings
    from django.test import Client

    from accounts.models import User
    from orgs.models import Membership, Organization
    from sandbox.microsoft.services import mailbox_ensure
    from sandbox.salesforce.services import sf_user_ensure

    # The test client's host: the sandbox sends sign-ins back only to a registered
    # redirect URI, which it derives from ALLOWED_HOSTS (sandbox/registration.py).
    settings.ALLOWED_HOSTS = ["testserver"]
    org, _ = Organization.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    user = User.objects.create_user(email=f"{name}@bench.test", password="x" * 20)
    m = Membership.objects.create(organization=org, user=user, role="member")
    mailbox = mailbox_ensure(user.email, "Bench User")
    sf_user = sf_user_ensure(email=user.email, org_name="Bench", time_zone="UTC")
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    _connect(client, "microsoft", user.email)
    _connect(client, "salesforce", user.email)
    return m, mailbox, sf_user


def _connect(client, provider: str, email: str) -> None:
    import urllib.parse as up

    start = client.post(f"/o/bench/connections/{provider}/connect/")["Location"]
    if provider == "microsoft":
        answer = client.post(start, {"decision": "accept", "mailbox": email})
    else:
        form = {k: v for k, v in up.parse_qsl(up.urlsplit(start).query) if k != "login_hint"}
        form.update({"username": email, "action": "allow"})
        answer = client.post("/sandbox/salesforce/services/oauth2/authorize", form)
    done = client.get(answer["Location"])
    if done.status_code != 302:
        raise SystemExit(f"could not connect {provider}: {done.status_code}")


def outlook_item(kind: str, mailbox, i: int, base: dt.datetime) -> None:
    """Item i of the bench's Outlook side (the plan bench seeds the same items)."""
    from sandbox.microsoft import services as ms

    if kind == "contacts":
        ms.contact_create(mailbox, {"givenName": f"Given{i}", "surname": f"Person{i}",
                                    "emailAddresses": [{"address": f"p{i}@bench.test", "name": f"P {i}"}]})
    elif kind == "tasks":
        ms.todo_task_create(mailbox, {"title": f"Task {i}"})
    else:
        start = base + dt.timedelta(hours=i % 5000)
        ms.event_create(mailbox, {
            "subject": f"Meeting {i}",
            "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
            "end": {"dateTime": (start + dt.timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%S"),
                    "timeZone": "UTC"},
        })


def _seed(kind: str, n: int, mailbox, sf_user) -> tuple[int, int]:
    """Create the items; returns (outlook count, salesforce count)."""
    from sandbox.salesforce.services import sf_records_create

    both = n // 10
    only_o = (n - both) // 2
    only_s = n - both - only_o
    base = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0) + dt.timedelta(days=1)

    def outlook(i: int) -> None:
        outlook_item(kind, mailbox, i, base)

    def salesforce(i: int) -> tuple[str, dict]:
        if kind == "contacts":
            return "Contact", {"FirstName": f"Given{i}", "LastName": f"Person{i}", "Email": f"p{i}@bench.test"}
        if kind == "tasks":
            return "Task", {"Subject": f"Task {i}"}
        start = base + dt.timedelta(hours=i % 5000)
        return "Event", {"Subject": f"Meeting {i}", "StartDateTime": _sf_dt(start),
                         "EndDateTime": _sf_dt(start + dt.timedelta(minutes=30)), "DurationInMinutes": 30}

    for i in range(only_o + both):
        outlook(i)
    ids = list(range(only_o, only_o + both + only_s))
    for j in range(0, len(ids), 500):
        sf_records_create(user=sf_user, records=[salesforce(i) for i in ids[j : j + 500]])
    return only_o + both, both + only_s


def _sf_dt(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def _change_one_percent(kind: str, mailbox, sf_user) -> None:
    from sandbox.microsoft.models import Item
    from sandbox.microsoft.services import item_update
    from sandbox.salesforce.models import SfRecord
    from sandbox.salesforce.services import sf_records_update

    graph_kind = {"contacts": "contact", "tasks": "todoTask", "calendar": "event"}[kind]
    items = list(Item.objects.filter(mailbox=mailbox, kind=graph_kind, deleted=False).order_by("pk"))
    for it in items[: max(1, len(items) // 100)]:
        field = {"contacts": "jobTitle", "tasks": "title", "calendar": "subject"}[kind]
        item_update(it, {field: f"changed in Outlook {it.pk}"})
    sobject = {"contacts": "Contact", "tasks": "Task", "calendar": "Event"}[kind]
    rows = list(SfRecord.objects.filter(org=sf_user.org, sobject=sobject, is_deleted=False).order_by("pk"))
    field = {"contacts": "Title", "tasks": "Subject", "calendar": "Subject"}[kind]
    changes = [(sobject, r.sf_id, {field: f"changed in Salesforce {r.pk}"}) for r in rows[-max(1, len(rows) // 100):]]
    sf_records_update(user=sf_user, records=changes)


def _floor(kind: str, phase: str, result, read_o: int, read_s: int) -> dict:
    """The fewest requests the phase could take, request kinds as each API allows.

    Graph: read pages plus ⌈writes/20⌉ `$batch` requests (a batch mixes operations).
    Salesforce: read pages plus, per operation, ⌈records/200⌉ sObject Collections
    requests (one request carries one operation: POST creates, PATCH updates,
    DELETE deletes; the upsert form keys on external ids only, so it cannot stamp
    our key on an existing record), plus the precondition read of updates and
    deletes: collections have no If-Match, and a write must not overwrite an
    edit made since the run read the record.
    """
    c = result.counts
    writes_o = c.created["outlook"] + c.updated["outlook"] + c.deleted["outlook"]
    extra_o = 1 if (kind == "tasks" and phase == "first") else 0  # find the To Do list once
    sf_ops = (c.created["salesforce"], c.updated["salesforce"], c.deleted["salesforce"])
    checked = c.updated["salesforce"] + c.deleted["salesforce"]
    return {
        "outlook": max(1, math.ceil(read_o / GRAPH_PAGE)) + extra_o + math.ceil(writes_o / GRAPH_BATCH),
        "salesforce": max(1, math.ceil(read_s / SF_PAGE))
        + sum(math.ceil(n / SF_COLLECTION) for n in sf_ops)
        + math.ceil(checked / SF_COLLECTION),
    }


_EMULATOR = [0.0]
# Per request: (side, the share of the API's concurrency it holds, seconds of emulated latency).
def _pg_admin(url: str):
    """A connection to the server's `postgres` database, for creating and dropping `url`'s."""
    import urllib.parse as up

    import psycopg

    parts = up.urlsplit(url)
    admin = up.urlunsplit(parts._replace(path="/postgres"))
    return psycopg.connect(admin, autocommit=True), parts.path.lstrip("/")


def _fresh_pg(url: str) -> None:
    from psycopg import sql

    conn, name = _pg_admin(url)
    with conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def _drop_pg(url: str) -> None:
    from django.db import connections
    from psycopg import sql

    connections.close_all()
    conn, name = _pg_admin(url)
    with conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


_HELD: list[tuple[str, int, float]] = []


def _time_the_emulators() -> None:
    """Add up the time the in-process emulators spend answering (the product's own
    time is wall_s minus emulator_s; against the real services that part is theirs),
    and note each request's emulated latency and the concurrency it holds meanwhile.
    A run sends from several threads: emulator_s then adds up overlapping answers."""
    import json as json_
    import threading

    import sandbox.transport as transport
    from sandbox.transport import SandboxAdapter

    real, real_respond_by = SandboxAdapter.send, transport.respond_by
    mine = threading.local()

    def respond_by(side, seconds, started):
        # The request's whole emulated response time, whatever part of it the emulator's
        # own work filled (sandbox/latency.py): the floor is made of these.
        mine.seconds = getattr(mine, "seconds", 0.0) + max(0.0, seconds)
        return real_respond_by(side, seconds, started)

    def send(adapter, request, *args, **kwargs):
        t0 = time.perf_counter()
        mine.seconds = 0.0
        try:
            return real(adapter, request, *args, **kwargs)
        finally:
            _EMULATOR[0] += time.perf_counter() - t0
            side = "outlook" if "graph." in request.url else "salesforce"
            slots = 1
            if side == "outlook" and request.url.split("?")[0].endswith("$batch"):
                # Graph runs up to 4 requests of a $batch at once against the mailbox's 4.
                reqs = (json_.loads(request.body or b"{}") or {}).get("requests") or []
                slots = 1 if any(r.get("dependsOn") for r in reqs) else max(1, min(4, len(reqs)))
            _HELD.append((side, slots, mine.seconds))

    transport.respond_by = respond_by
    SandboxAdapter.send = send


# (start, end, side, is a Graph $batch) of every request the product sent, from its side.
_TIMELINE: list[tuple[float, float, str, bool]] = []


def _time_the_requests() -> None:
    """Note when each of the product's requests leaves and its answer arrives (the product's
    view, in-process or over HTTP), for `where`: what the wall is made of."""
    from sandbox.transport import SandboxAdapter, SandboxServerAdapter

    for cls in (SandboxAdapter, SandboxServerAdapter):
        real = cls.send

        def send(adapter, request, *args, _real=real, **kwargs):
            t0 = time.perf_counter()
            try:
                return _real(adapter, request, *args, **kwargs)
            finally:
                side = "outlook" if "graph." in request.url else "salesforce"
                _TIMELINE.append((t0, time.perf_counter(), side, request.url.split("?")[0].endswith("$batch")))

        cls.send = send


def _where(t0: float, t1: float) -> dict:
    """The run's wall in parts: before Outlook's first $batch (reads, the plan, the first
    intents), the span of Outlook's $batch requests and how long in it none was in flight
    (what the engine did not have ready, or Salesforce's turn), and after the last one."""
    batches = sorted((a, b) for a, b, side, batch in _TIMELINE if side == "outlook" and batch and a >= t0)
    if not batches:
        return {}
    busy, end = 0.0, batches[0][0]
    for a, b in batches:
        if b > end:
            busy += b - max(a, end)
            end = b
    span = batches[-1][1] - batches[0][0]
    return {"before_first_batch_s": round(batches[0][0] - t0, 2), "batch_span_s": round(span, 2),
            "no_batch_in_flight_s": round(span - busy, 2), "after_last_batch_s": round(t1 - end, 2)}


def _sign_in_requests() -> dict:
    """Token refreshes (and msal's one-time metadata read per process) since the phase
    began: the identity endpoints, not the APIs, reported apart from `api_requests`."""
    from sandbox.accounting import api_counts_by_family

    out = {"outlook": 0, "salesforce": 0}
    for (side, family), n in api_counts_by_family().items():
        if family.startswith(("identity-", "sf-oauth-")) or family == "sf-identity":
            out[side] += n
    return out


def _start_clock_early_in_the_day() -> None:
    """Runs are six simulated minutes apart: start at 01:00 UTC so a whole bench never
    crosses midnight (the calendar window moves by whole days, and a moved window is
    a new full read, which is not what the phases measure)."""
    now = dt.datetime.now(dt.UTC)
    _advance_clock(now.replace(hour=1, minute=0, second=0, microsecond=0) - now)


# Concurrent requests each API allows one user: Graph answers a 5th in flight per mailbox
# with 429 (a $batch holds up to 4 of those slots); Salesforce allows 25 long-running
# requests per org (a sync's are short).
CONCURRENCY = {"outlook": 4, "salesforce": 25}


def _latency_figures(args, api: dict, wall: float, slept: dict, late: dict) -> dict:
    """The latency floor: per API, its requests × their latency ÷ the concurrency it allows
    (each request weighted by the slots it holds: a $batch of ≥ 4 takes all four of a
    mailbox, so full batches go one at a time), the larger of the two sides; the
    sequential floor is every request's latency one after another (a run at concurrency 1)."""
    held = {side: sum(n * s for x, n, s in _HELD if x == side) for side in CONCURRENCY}
    per_side = {side: held[side] / CONCURRENCY[side] for side in CONCURRENCY}
    floor = max(per_side.values())
    from django.conf import settings

    return {"latency_ms": args.latency_ms, "concurrency": dict(settings.SYNC_CONCURRENCY),
            "latency_floor_s": round(floor, 2),
            "floor_per_side_s": {side: round(v, 2) for side, v in per_side.items()},
            "sequential_floor_s": round(sum(s for _, _, s in _HELD), 2),
            "latency_slept_s": {side: round(v, 2) for side, v in slept.items()},
            "late_s": {side: round(v, 2) for side, v in late.items()},
            "wall_over_floor": round(wall / floor, 2) if floor else None}


class _InProcess:
    """The emulators answer in this process (sandbox/transport.py): their figures are here."""

    name = "in-process"

    def __init__(self, args):
        _time_the_emulators()

    def clock(self) -> None:
        pass

    def reset(self) -> None:
        from sandbox.latency import slept_reset
        from sandbox.limits import refused_reset

        _EMULATOR[0] = 0.0
        _HELD.clear()
        slept_reset()
        refused_reset()

    def stats(self) -> dict:
        from sandbox.latency import late, slept
        from sandbox.limits import refused

        return {"emulator_s": _EMULATOR[0], "slept": dict(slept), "late": dict(late), "refused": dict(refused)}

    def close(self) -> None:
        pass


class _Process:
    """The emulators in gunicorn processes of their own (bench/sandbox_server.py), reached over
    HTTP on 127.0.0.1 by the product's unchanged clients (sandbox.transport.sandbox_http_session):
    the product and the emulators no longer share a GIL, so on two CPUs they run in parallel.

    `process`: one server for both services, on the throw-away SQLite files (the emulators'
    database work one request at a time, Graph's behind Salesforce's and the other way round).
    `services`: a server per service, as Graph and Salesforce are two services, on a throw-away
    PostgreSQL sandbox database (see `_setup`), whose row locks let each server's threads work
    at once. The figures are the servers' own, added up."""

    def __init__(self, args):
        import subprocess
        import urllib.request

        from django.conf import settings

        self.name = args.emulators
        sides = ("outlook", "salesforce") if args.emulators == "services" else ("both",)
        jitter = args.latency_ms / 5 if args.jitter_ms is None else args.jitter_ms
        env = {**os.environ, "SANDBOX_ENABLED": "1", "SANDBOX_SERVER_URL": "", "PYTHONUNBUFFERED": "1",
               "SANDBOX_LATENCY_MS": f"{args.latency_ms},{jitter},{args.op_ms}" if args.latency_ms else "",
               "SANDBOX_LIMITS": "on" if args.latency_ms and not args.no_limits else ""}
        # Each server's locmem cache holds its own service's limits (a service's requests all
        # go to one server).
        env.pop("REDIS_URL", None)
        self._urlopen = urllib.request.urlopen
        self._request = urllib.request.Request
        self.urls: dict[str, str] = {}
        self.procs = []
        for side in sides:
            port = _free_port()
            self.urls[side] = f"http://127.0.0.1:{port}"
            self.procs.append(subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-k", "gthread", "--threads", "16", "-w", "1",
                 "--keep-alive", "30", "--timeout", "600", "--log-level", "warning",
                 # Salesforce takes URIs up to 16,384 characters (a SOQL of 200 ids in the URL);
                 # gunicorn's default request line is 4,094 and anything but 0 (no limit) caps at 8,190.
                 "--limit-request-line", "0", "--chdir", str(ROOT / "bench"),
                 "-b", f"127.0.0.1:{port}", "sandbox_server:application"], env=env))
        for url, proc in zip(self.urls.values(), self.procs, strict=True):
            for _ in range(300):
                try:
                    self._call_one(url, "GET", "stats")
                    break
                except OSError:
                    if proc.poll() is not None:
                        raise SystemExit("the sandbox server did not start") from None
                    time.sleep(0.1)
        settings.SANDBOX_SERVER_URL = (self.urls["both"] if "both" in self.urls
                                       else ",".join(f"{side}={url}" for side, url in self.urls.items()))
        settings.HTTP_SESSION_FACTORY = "sandbox.transport.sandbox_http_session"
        self.clock()

    def _call_one(self, url: str, method: str, what: str, query: str = "") -> dict:
        req = self._request(f"{url}/__bench__/{what}{query}", method=method, data=b"" if method == "POST" else None)
        with self._urlopen(req, timeout=30) as answer:
            return json.loads(answer.read())

    def _call(self, method: str, what: str, query: str = "") -> list[dict]:
        return [self._call_one(url, method, what, query) for url in self.urls.values()]

    def clock(self) -> None:
        self._call("POST", "clock", f"?offset={_OFFSET[0].total_seconds()}")

    def reset(self) -> None:
        self._call("POST", "reset")

    def stats(self) -> dict:
        parts = self._call("GET", "stats")
        data = {"emulator_s": sum(p["emulator_s"] for p in parts), "cpu_s": sum(p["cpu_s"] for p in parts),
                "held": [x for p in parts for x in p["held"]]}
        for figure in ("slept", "late", "refused"):
            data[figure] = {side: sum(p[figure].get(side, 0) for p in parts) for side in parts[0][figure]}
        _HELD[:] = [tuple(x) for x in data["held"]]
        return data

    def close(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except Exception:
                proc.kill()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--kinds", default="contacts,tasks,calendar")
    parser.add_argument("--latency-ms", type=float, default=0,
                        help="emulated response time per request on each side (off by default)")
    parser.add_argument("--jitter-ms", type=float, default=None, help="uniform extra per request (latency/5)")
    parser.add_argument("--op-ms", type=float, default=1.0,
                        help="per request inside a $batch / record of a collection, with --latency-ms")
    parser.add_argument("--concurrency", default="",
                        help="requests in flight per side, 'outlook,salesforce' (settings.SYNC_CONCURRENCY; "
                             "1,1 = one after another)")
    parser.add_argument("--no-limits", action="store_true",
                        help="with --latency-ms, leave the emulators' concurrency limits off (sandbox/limits.py)")
    parser.add_argument("--emulators", choices=("in-process", "process", "services"), default="in-process",
                        help="where the sandbox answers: in this process (the transport adapter), in a "
                             "gunicorn process of its own over HTTP on 127.0.0.1 (bench/sandbox_server.py), "
                             "or in one such process per service with the sandbox database on PostgreSQL "
                             "(--sandbox-pg)")
    parser.add_argument("--sandbox-pg", default="postgres://postgres@127.0.0.1:5432/lp_bench_sandbox",
                        help="with --emulators services: the throw-away PostgreSQL database (dropped and "
                             "created afresh, dropped at the end)")
    parser.add_argument("--timeline", default="",
                        help="write each phase's requests (start, end, side, $batch; seconds from the run's "
                             "start) to this file, one JSON line per phase")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="lpbench-") as tmp:
        sandbox_pg = args.sandbox_pg if args.emulators == "services" else ""
        _setup(tmp, sandbox_pg)
        if args.concurrency:
            from django.conf import settings

            conc = [int(x) for x in args.concurrency.split(",")]
            settings.SYNC_CONCURRENCY = {"outlook": conc[0], "salesforce": conc[-1]}
        if args.latency_ms and args.emulators == "in-process":
            from django.conf import settings

            jitter = args.latency_ms / 5 if args.jitter_ms is None else args.jitter_ms
            settings.SANDBOX_LATENCY = {side: {"request_ms": args.latency_ms, "jitter_ms": jitter,
                                               "op_ms": args.op_ms} for side in ("outlook", "salesforce")}
            settings.SANDBOX_LIMITS = None if args.no_limits else True  # Graph 4 per mailbox, Salesforce 25
        _start_clock_early_in_the_day()
        emulators = (_InProcess if args.emulators == "in-process" else _Process)(args)
        _time_the_requests()
        try:
            _phases(args, emulators)
        finally:
            emulators.close()
            if sandbox_pg:
                _drop_pg(sandbox_pg)


def _phases(args, emulators) -> None:
    logging.disable(logging.INFO)
    from sandbox.accounting import api_counts_reset
    from syncengine.engine.run import run_sync

    for kind in [k.strip() for k in args.kinds.split(",") if k.strip()]:
        # Each kind on a mailbox of its own: Graph allows an app 10,000 requests per mailbox in
        # 10 minutes, and the first syncs of two kinds of 10,000 items on one mailbox pass that
        # (the run then stops and resumes after the window: tests/syncengine/test_throttled.py).
        membership, mailbox, sf_user = _member(f"bench-{kind}")
        t0 = time.perf_counter()
        n_o, n_s = _seed(kind, args.items, mailbox, sf_user)
        print(json.dumps({"phase": "seed", "kind": kind, "items": args.items, "wall_s": round(time.perf_counter() - t0, 2),
                          "outlook_items": n_o, "salesforce_items": n_s}), flush=True)
        # "second" reads back the echoes of the first sync's own writes (no writes of its
        # own); "quiet" is the run after it, with nothing changed anywhere.
        for phase in ("first", "second", "quiet", "changed-1%"):
            # Runs are at least the shortest auto interval apart, so the
            # Salesforce overlap window no longer covers the previous run.
            _advance_clock(dt.timedelta(minutes=6))
            emulators.clock()
            if phase == "changed-1%":
                _change_one_percent(kind, mailbox, sf_user)
            gc.collect()
            api_counts_reset()
            _rss_reset()
            rss_before = _rss_mb()
            emulators.reset()
            _TIMELINE.clear()
            t0, cpu0 = time.perf_counter(), time.process_time()
            result = run_sync(membership, kind, "manual")
            t1 = time.perf_counter()
            wall, cpu = t1 - t0, time.process_time() - cpu0
            if args.timeline:
                with open(args.timeline, "a") as out:
                    out.write(json.dumps({"phase": phase, "kind": kind, "wall_s": wall, "requests": [
                        (round(a - t0, 4), round(b - t0, 4), side, batch) for a, b, side, batch in _TIMELINE]}) + "\n")
            seen = emulators.stats()
            if phase == "first":
                first_counts = result.counts.as_dict()
            if phase == "first":
                read_o, read_s = n_o, n_s
            elif phase == "second":
                c = first_counts
                read_o = sum(c[x]["outlook"] for x in ("created", "updated"))
                read_s = sum(c[x]["salesforce"] for x in ("created", "updated"))
            elif phase == "quiet":
                read_o = read_s = 0
            else:
                read_o, read_s = max(1, n_o // 100), max(1, n_s // 100)
            sign_in = _sign_in_requests()
            api = {side: result.api_requests[side] - sign_in[side] for side in sign_in}
            print(json.dumps({
                "phase": phase, "kind": kind, "items": args.items, "emulators": emulators.name,
                "wall_s": round(wall, 2), "emulator_s": round(seen["emulator_s"], 2), "cpu_s": round(cpu, 2),
                **({"emulator_cpu_s": round(seen["cpu_s"], 2)} if "cpu_s" in seen else {}),
                "api_requests": api, "floor": _floor(kind, phase, result, read_o, read_s),
                "sign_in_requests": sign_in,
                **(_latency_figures(args, api, wall, seen["slept"], seen["late"]) if args.latency_ms else {}),
                **({"limits_refused": seen["refused"]} if args.latency_ms else {}),
                **({"where": _where(t0, t1)} if args.latency_ms else {}),
                "peak_rss_mb": _rss_mb(), "rss_before_mb": rss_before, "status": str(result.status), "writes": result.counts.writes,
                **({"message": result.message} if result.message else {}),
            }), flush=True)


if __name__ == "__main__":
    main()
