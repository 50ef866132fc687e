"""`manage.py qcluster` with a meter on each task, for bench/scale_bench.py (not product code).

The cluster is the product's own (same settings, same broker, same task functions);
before it forks its workers this wraps two task bodies in place:

- `syncengine.tasks.run_sync` (one auto run): the due time it served (the lease's
  `next_run_at` when the task starts, read before metering), wall time, CPU time of
  the worker process (`time.process_time`, every thread of the run), the part of that CPU spent inside the
  in-process sandbox emulators (which stand in for Microsoft and Salesforce and would
  not be ours in production), and the database queries it sent, per alias, counted
  with Django's `execute_wrapper` (`default` is the product's, `sandbox` the emulators');
- `syncengine.tasks.dispatch_due` (the minute tick): wall, CPU, queries, claims;
- `syncengine.dispatch._claim`: the due time each claim serves (read before it claims);
- `django_q.tasks.async_task`: when each claimed run was put into the broker.

django-q2 looks the task function up by its dotted name in the forked worker
(`pydoc.locate`), so the wrapped module attribute is what runs. Each record is one
JSON line pushed onto a Redis list of the bench's own database (`SCALE_RECORDS_URL`);
a start record is pushed before the run so a SIGKILLed run still leaves a trace.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECORDS_KEY = "lp-scale:records"


class _Meter:
    """Queries per database alias while active (installed on this thread's connections)."""

    def __init__(self):
        self.counts = {"default": 0, "sandbox": 0}

    def __enter__(self):
        from django.db import connections

        self._wrappers = []
        for alias in self.counts:
            def wrapper(execute, sql, params, many, context, _alias=alias):
                self.counts[_alias] += 1
                return execute(sql, params, many, context)

            connections[alias].execute_wrappers.append(wrapper)
            self._wrappers.append((alias, wrapper))
        return self

    def __exit__(self, *exc):
        from django.db import connections

        for alias, wrapper in self._wrappers:
            connections[alias].execute_wrappers.remove(wrapper)


_redis = {}
EMULATOR_CPU = [0.0]


def _push(record: dict) -> None:
    import redis

    pid = os.getpid()
    if pid not in _redis:  # one client per forked process
        _redis.clear()
        _redis[pid] = redis.Redis.from_url(os.environ["SCALE_RECORDS_URL"])
    record.update(pid=pid, cluster=os.environ.get("SCALE_CLUSTER", "?"))
    _redis[pid].rpush(RECORDS_KEY, json.dumps(record))


def _due(membership_id: int, kind: str):
    from syncengine.models import SyncLease

    at = SyncLease.objects.filter(membership_id=membership_id, kind=kind).values_list(
        "next_run_at", flat=True).first()
    return at.timestamp() if at else None


def _wrap_run_sync(tasks) -> None:
    real = tasks.run_sync

    def run_sync(membership_id, kind, trigger="auto", holder=None):
        from sandbox import latency

        base = {"mid": membership_id, "kind": kind, "holder": holder or ""}
        _push({"ev": "start", "t": time.time(), "due": _due(membership_id, kind), **base})
        slept0 = sum(latency.slept.values())
        emu0 = EMULATOR_CPU[0]
        t0, c0 = time.time(), time.process_time()
        result, meter = {}, _Meter()
        try:
            with meter:
                result = real(membership_id, kind, trigger, holder)
            return result
        finally:
            _push({"ev": "end", "t": time.time(), "wall": time.time() - t0, "cpu": time.process_time() - c0,
                   "emulator_cpu": EMULATOR_CPU[0] - emu0, "slept": sum(latency.slept.values()) - slept0,
                   "q_default": meter.counts["default"], "q_sandbox": meter.counts["sandbox"],
                   "run_id": (result or {}).get("run_id"), "status": str((result or {}).get("status", "")),
                   **base})

    tasks.run_sync = run_sync


def _wrap_dispatch(tasks) -> None:
    from syncengine import dispatch

    real = tasks.dispatch_due
    seen: dict = {}
    real_budget, real_queued = dispatch.tick_budget, dispatch.run_queue_size

    def tick_budget(*args, **kwargs):
        seen["budget"] = real_budget(*args, **kwargs)
        return seen["budget"]

    def run_queue_size():
        seen["queued"] = real_queued()
        return seen["queued"]

    dispatch.tick_budget, dispatch.run_queue_size = tick_budget, run_queue_size

    def dispatch_due(limit=None):
        t0, c0 = time.time(), time.process_time()
        claimed, meter = None, _Meter()
        seen.clear()
        try:
            with meter:
                claimed = real(limit)
            return claimed
        finally:
            _push({"ev": "tick", "t": t0, "wall": time.time() - t0, "cpu": time.process_time() - c0,
                   "q_default": meter.counts["default"], "claimed": claimed, **seen})

    tasks.dispatch_due = dispatch_due


def _wrap_claim() -> None:
    """The due time each claim serves, read just before the claim (which moves `next_run_at`
    to the lease's expiry); a claim of an expired lease resumes the dead claim's due time."""
    from syncengine import dispatch
    from syncengine.models import SyncLease

    real = dispatch._claim

    def _claim(pks, t, tick):
        before = {pk: (at, holder) for pk, at, holder in
                  SyncLease.objects.filter(pk__in=pks).values_list("pk", "next_run_at", "holder")}
        got = real(pks, t, tick)
        for pk in got:
            at, old = before.get(pk, (None, ""))
            _push({"ev": "due", "t": time.time(), "holder": f"dispatch-{tick}-{pk}",
                   "due": at.timestamp() if at else None, "resumes": old})
        return got

    dispatch._claim = _claim


def _wrap_enqueue() -> None:
    """When each claimed run went into the broker (the kill step needs to know what came after)."""
    import django_q.tasks as q

    real = q.async_task

    def async_task(func, *args, **kwargs):
        if func == "syncengine.tasks.run_sync" and len(args) >= 4:
            _push({"ev": "enq", "t": time.time(), "holder": args[3]})
        return real(func, *args, **kwargs)

    q.async_task = async_task


def _time_the_emulators() -> None:
    """CPU the in-process emulators spend answering (latency is slept, so it is not CPU).
    A run sends requests from several threads at once, so this is the sending thread's CPU
    (`thread_time`); the task's own figure is the whole process's (`process_time`)."""
    import threading

    from sandbox.transport import SandboxAdapter

    real = SandboxAdapter.send
    lock = threading.Lock()

    def send(adapter, request, *args, **kwargs):
        c0 = time.thread_time()
        try:
            return real(adapter, request, *args, **kwargs)
        finally:
            with lock:
                EMULATOR_CPU[0] += time.thread_time() - c0

    SandboxAdapter.send = send


def main() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "linkpoint.settings")
    import django

    django.setup()
    from django.core.management import call_command

    from syncengine import tasks

    _wrap_run_sync(tasks)
    _wrap_dispatch(tasks)
    _wrap_enqueue()
    _wrap_claim()
    _time_the_emulators()
    call_command("qcluster")


if __name__ == "__main__":
    main()
