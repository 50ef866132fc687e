"""Emulated network and server time (off by default; the benchmarks turn it on).

`settings.SANDBOX_LATENCY` is `{side: {"request_ms": fixed, "jitter_ms": uniform extra,
"op_ms": per inner operation}}` for `outlook` and `salesforce`. An inner operation is
one request inside a Graph `$batch`, one record of an sObject Collection or one
subrequest of a `composite`: the real services take longer for a fuller batch.
The time is slept in the transport before the emulator answers, outside its
transaction, and added up per side so a benchmark can print it.
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


def slept_reset() -> None:
    with _lock:
        for side in slept:
            slept[side] = 0.0
