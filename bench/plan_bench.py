"""Reviewed-plan benchmark against the sandbox: prints, never asserts.

    python bench/plan_bench.py --items N [--kind tasks|contacts|calendar] [--exclude-percent P]

Seeds N items of one kind in Outlook only (every one a create in Salesforce),
then goes the My sync page's way, through `sync_start` and the `run_queued`
task body run inline:
- "preview": read both sides, decide and store the N-item plan (PlannedChange rows);
- "review": leave P% of the creates out with one `plan_set_included` call (ids, as a
  page's "select" posts them) and flip nothing else;
- "apply": apply the reviewed plan exactly as reviewed.
One JSON object per line and phase: wall_s (emulator_s of it spent in the in-process
emulators answering, plan_store_s in writing the PlannedChange rows), planned / applied items, API requests
per side, progress writes (UPDATEs of the run row), product queries and peak RSS.
Uses a throw-away SQLite database pair (see sync_bench.py).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sync_bench as sb  # noqa: E402


def _seed_outlook(kind: str, n: int, mailbox) -> None:
    import datetime as dt

    base = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0) + dt.timedelta(days=1)
    for i in range(n):
        sb.outlook_item(kind, mailbox, i, base)


class _Queries:
    """Counts the product database's statements, and the progress UPDATEs among them."""

    def __init__(self):
        self.total = self.progress = 0

    def __call__(self, execute, sql, params, many, context):
        self.total += 1
        if sql.startswith("UPDATE") and "syncengine_syncrun" in sql and "progress" in sql:
            self.progress += 1
        return execute(sql, params, many, context)


_STORE = [0.0]


def _time_plan_storing() -> None:
    """Measure the engine's plan writes apart (bench instrumentation only)."""
    from syncengine.engine import run as run_mod

    real = run_mod._Run._store_plan

    def timed(self, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return real(self, *args, **kwargs)
        finally:
            _STORE[0] += time.perf_counter() - t0

    run_mod._Run._store_plan = timed


def _phase(name: str, fn, extra) -> object:
    from django.db import connection

    from sandbox.accounting import api_counts_reset

    api_counts_reset()
    sb._rss_reset()
    sb._EMULATOR[0] = _STORE[0] = 0.0
    q = _Queries()
    t0 = time.perf_counter()
    with connection.execute_wrapper(q):
        out = fn()
    wall = time.perf_counter() - t0
    print(json.dumps({"phase": name, "wall_s": round(wall, 3), "emulator_s": round(sb._EMULATOR[0], 3),
                      "plan_store_s": round(_STORE[0], 3), "queries": q.total,
                      "progress_writes": q.progress, "peak_rss_mb": sb._rss_mb(), **extra(out)}), flush=True)
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=10000)
    parser.add_argument("--kind", default="tasks", choices=("tasks", "contacts", "calendar"))
    parser.add_argument("--exclude-percent", type=int, default=10)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="lpbench-plan-") as tmp:
        sb._setup(tmp)
        sb._start_clock_early_in_the_day()
        sb._time_the_emulators()
        _time_plan_storing()
        logging.disable(logging.INFO)
        from django.conf import settings

        from syncengine import services
        from syncengine.models import PlannedChange, SyncRun
        from syncengine.tasks import run_queued

        # The test client's host: the sandbox accepts only registered redirect URIs.
        settings.SANDBOX_OAUTH_REDIRECT_URIS = [
            f"http://testserver/connections/callback/{p}/" for p in ("microsoft", "salesforce")]
        membership, mailbox, _sf_user = sb._member()
        kind, n = args.kind, args.items
        t0 = time.perf_counter()
        _seed_outlook(kind, n, mailbox)
        print(json.dumps({"phase": "seed", "kind": kind, "items": n,
                          "wall_s": round(time.perf_counter() - t0, 2)}), flush=True)

        def run(purpose: str, **kw) -> SyncRun:
            queued = services.sync_start(membership=membership, kind=kind, purpose=purpose, **kw)
            run_queued(queued.pk)
            return SyncRun.objects.get(pk=queued.pk)

        def counts(r: SyncRun) -> dict:
            return {"kind": kind, "items": n, "status": r.status, "progress": r.progress,
                    "api_requests": {"outlook": r.api_outlook, "salesforce": r.api_salesforce}}

        plan = _phase("preview (read, decide, store the plan)", lambda: run("preview"),
                      extra=lambda r: {**counts(r), "planned": PlannedChange.objects.filter(run=r).count()})
        ids = list(PlannedChange.objects.filter(run=plan).order_by("seq").values_list("pk", flat=True))
        left_out = ids[: len(ids) * args.exclude_percent // 100]
        _phase("review (leave items out)", lambda: services.plan_set_included(
            membership=membership, run_id=plan.pk, change_ids=left_out, included=False),
            extra=lambda changed: {"kind": kind, "items": n, "left_out": changed})
        _phase("apply (the reviewed plan)", lambda: run("apply_plan", plan_run_id=plan.pk),
               extra=lambda r: {**counts(r), "created": (r.counts.get("created") or {}),
                                "applied_items": PlannedChange.objects.filter(run=plan, status="applied").count()})


if __name__ == "__main__":
    main()
