"""The sandbox emulators in a process of their own, for `sync_bench.py --emulators process`.

    gunicorn -k gthread --threads 16 -w 1 --chdir bench sandbox_server:application

(sync_bench starts and stops it itself, with the environment of its throw-away databases:
DATABASE_URL, SANDBOX_ENABLED=1, SANDBOX_LATENCY_MS, SANDBOX_LIMITS.) Every sandbox host
(graph., login., <org>.my.salesforce. …sandbox.test, chosen by the Host header) is answered by
`sandbox.transport.hosts_application`: the same pipeline as in-process (counting, limits,
response time) in this process, so the emulators' CPU is no longer the product's and the two
run on two CPUs. One worker process: the limits' slots live in its cache (locmem; several
workers would need the Redis cache, as sandbox/limits.py describes), and the figures below
are its own.

The benchmark's own control, on any host that is not a sandbox host, under /__bench__/:
`POST clock?offset=<s>` moves this process's "now" to the bench's (runs are simulated minutes
apart), `POST reset` starts a phase's figures, `GET stats` returns them: the time spent
answering (emulator_s), each request's side, mailbox slots and response time (the floor),
seconds slept and late per side, the limits' refusals and this process's CPU seconds.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import sys
import time
import urllib.parse as up
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "linkpoint.settings")

import django  # noqa: E402

django.setup()

import sync_bench  # noqa: E402
from django.db import connections  # noqa: E402

from sandbox import latency, limits, transport  # noqa: E402
from sandbox.transport import host_for, hosts_application  # noqa: E402

sync_bench._time_the_emulators()
logging.disable(logging.INFO)
if connections["sandbox"].vendor == "postgresql":
    # In-process, one lock serialises the emulators' database work (they share the run thread's
    # connection). Here each of gunicorn's threads has a connection of its own and PostgreSQL
    # serialises what must be (the emulators take their row locks, as under many qcluster
    # processes), so Graph's answers never wait behind a Salesforce collection's transaction:
    # two services, as the real ones are. On SQLite the lock stays (one writer per file).
    transport._emulator_db = contextlib.nullcontext
# Graph and Salesforce are two services; here they share one interpreter. With the default
# 5 ms switch interval a Graph $batch thread that wakes from its modelled sleep waits behind a
# Salesforce thread building 200 records (and the other way round) in 5 ms slices; 0.5 ms
# lets each answer leave close to its response time, as two real services' would.
sys.setswitchinterval(0.0005)
_CPU0 = [time.process_time()]


def _json(start_response, data, status="200 OK"):
    body = json.dumps(data).encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


def _control(environ, start_response):
    path = environ.get("PATH_INFO", "")
    query = dict(up.parse_qsl(environ.get("QUERY_STRING", "")))
    if path == "/__bench__/clock":
        offset = dt.timedelta(seconds=float(query["offset"]))
        sync_bench._advance_clock(offset - sync_bench._OFFSET[0])
        return _json(start_response, {"offset_s": sync_bench._OFFSET[0].total_seconds()})
    if path == "/__bench__/reset":
        sync_bench._EMULATOR[0] = 0.0
        sync_bench._HELD.clear()
        latency.slept_reset()
        limits.refused_reset()
        _CPU0[0] = time.process_time()
        return _json(start_response, {"reset": True})
    if path == "/__bench__/stats":
        return _json(
            start_response,
            {
                "emulator_s": sync_bench._EMULATOR[0],
                "held": list(sync_bench._HELD),
                "slept": dict(latency.slept),
                "late": dict(latency.late),
                "refused": dict(limits.refused),
                "cpu_s": time.process_time() - _CPU0[0],
                "pid": os.getpid(),
            },
        )
    return _json(start_response, {"error": "unknown"}, "404 Not Found")


def application(environ, start_response):
    hostname = environ.get("HTTP_HOST", "").split(":")[0]
    if host_for(hostname) is None and environ.get("PATH_INFO", "").startswith("/__bench__/"):
        return _control(environ, start_response)
    return hosts_application(environ, start_response)
