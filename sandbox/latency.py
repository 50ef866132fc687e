"""Emulated network and server time (off by default; the benchmarks turn it on).

`settings.SANDBOX_LATENCY` is `{side: {"request_ms": fixed, "jitter_ms": uniform extra,
"op_ms": per inner operation}}` for `outlook` and `salesforce`. An inner operation is
one request inside a Graph `$batch`, one record of an sObject Collection or one
subrequest of a `composite`: the real services take longer for a fuller batch.

The delay is the service's whole *response time*, as a client measures it: the real
APIs' 100–400 ms already include their own server work. So the emulator builds its
answer first and the transport then sleeps only what is left of the delay
(`respond_by`): a request whose emulator work took X answers after max(delay, X).
The clock starts when the transport takes the request (the emulators' bookkeeping,
the limits' admission and the wait for the in-process emulator lock count as server
time); the limits' slot is held until the answer leaves, sleep included. Where
the emulator takes longer than the delay (a slow machine, a huge batch) the answer
is late by the difference: `late` adds that up per side, so a benchmark can tell a
latency-bound run from one that waited on the emulators.

Per side, `slept` adds up the seconds actually slept (the part of the response times
the emulators did not fill with work), `modelled` the response times themselves.
"""

from __future__ import annotations

import json
import random
import threading
import time
import urllib.parse as up

from django.conf import settings

_lock = threading.Lock()
slept = {"outlook": 0.0, "salesforce": 0.0}
modelled = {"outlook": 0.0, "salesforce": 0.0}
late = {"outlook": 0.0, "salesforce": 0.0}


def inner_operations(method: str, path: str, body: bytes) -> int:
    """How many operations one request carries (1 for a plain request)."""
    if "$batch" in path or "/composite" in path:
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            return 1
        if not isinstance(data, dict):
            return 1
        for key in ("requests", "records", "compositeRequest"):
            if isinstance(data.get(key), list):
                return max(1, len(data[key]))
        if method.upper() == "DELETE":
            ids = up.parse_qs(up.urlsplit(path).query).get("ids", [""])[0]
            return max(1, len([i for i in ids.split(",") if i]))
    return 1


def delay_for(side: str, method: str, path: str, body: bytes) -> float:
    conf = (getattr(settings, "SANDBOX_LATENCY", None) or {}).get(side)
    if not conf:
        return 0.0
    ms = float(conf.get("request_ms", 0)) + random.uniform(0, float(conf.get("jitter_ms", 0)))
    ms += float(conf.get("op_ms", 0)) * inner_operations(method, path, body)
    return ms / 1000.0


def emulate(side: str, method: str, path: str, body: bytes) -> None:
    pause(side, delay_for(side, method, path, body))


def pause(side: str, seconds: float) -> None:
    """Sleep a delay worked out beforehand (the limits size a slot's expiry by it)."""
    if seconds > 0:
        time.sleep(seconds)
        with _lock:
            slept[side] += seconds


def respond_by(side: str, seconds: float, started: float) -> float:
    """Sleep what is left of a response time of `seconds` that began at `started`
    (`time.perf_counter()`), never less than 0; returns the seconds slept."""
    if seconds <= 0:
        return 0.0
    rest = seconds - (time.perf_counter() - started)
    with _lock:
        modelled[side] += seconds
        if rest < 0:
            late[side] -= rest
    if rest <= 0:
        return 0.0
    pause(side, rest)
    return rest


def slept_reset() -> None:
    with _lock:
        for figures in (slept, modelled, late):
            for side in figures:
                figures[side] = 0.0
