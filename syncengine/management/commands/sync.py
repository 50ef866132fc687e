"""`manage.py sync --user EMAIL --kind contacts|tasks|calendar [--dry-run] [--plan] [--apply-plan N] [--json]`.

A sync, a plan (`--plan`) and the application of a reviewed plan go through the
same service and task as the My sync page (`sync_start_queued` + `run_queued`),
run inline here instead of on a worker.
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from syncengine import services
from syncengine.engine.kinds import KINDS
from syncengine.models import PlannedChange, SyncRun
from syncengine.selectors import membership_for_email, plan_changes, run_skipped_items
from syncengine.tasks import run_queued


class Command(BaseCommand):
    help = "Run one sync for one member and kind and print what it did."

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True)
        parser.add_argument("--org", default=None, help="org slug, when the user is in several")
        parser.add_argument("--kind", required=True, choices=KINDS)
        parser.add_argument("--dry-run", action="store_true", help="decide and show, write nothing")
        parser.add_argument("--plan", action="store_true", help="store a plan for review (Manual mode)")
        parser.add_argument("--apply-plan", type=int, default=None, metavar="RUN_ID",
                            help="apply a stored plan exactly as reviewed")
        parser.add_argument("--exclude", default="", help="comma-separated plan item numbers to leave out")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **o):
        m = membership_for_email(o["user"], org_slug=o["org"])
        if o["dry_run"]:
            data = services.sync_run(membership=m, kind=o["kind"], trigger="manual", dry_run=True).as_dict()
        else:
            data = self._through_the_task(m, o)
        data["skipped_items"] = run_skipped_items(run_id=data["run_id"]) if data.get("run_id") else []
        if o["json"]:
            self.stdout.write(json.dumps(data, sort_keys=True, default=str))
        else:
            self._summary(data)
            if o["plan"] or o["dry_run"]:
                for p in plan_changes(membership=m, run_id=data["run_id"]):
                    self.stdout.write(f"  {p.seq:>4}  {p.action:<10} {p.side or '-':<40} {p.title}")
                if o["plan"]:
                    self.stdout.write(f"Apply with: sync --user {o['user']} --kind {o['kind']} "
                                      f"--apply-plan {data['run_id']} [--exclude 3,7]")
        if data["status"] in ("failed", "stopped"):
            raise CommandError(data["message"] or data["status"])

    def _through_the_task(self, m, o) -> dict:
        purpose, plan_id = ("preview", None) if o["plan"] else ("sync", None)
        try:
            if o["apply_plan"] is not None:
                purpose, plan_id = "apply_plan", o["apply_plan"]
                seqs = [int(x) for x in o["exclude"].split(",") if x.strip()]
                if seqs:
                    ids = list(PlannedChange.objects.filter(run_id=plan_id, run__membership=m, seq__in=seqs)
                               .values_list("pk", flat=True))
                    services.plan_set_included(membership=m, run_id=plan_id, change_ids=ids, included=False)
            run = services.sync_start_queued(membership=m, kind=o["kind"], purpose=purpose, plan_run_id=plan_id)
        except services.SyncRefused as refused:
            raise CommandError(refused.message) from None
        if run.purpose != purpose:
            self.stderr.write(f"Run {run.pk} ({run.purpose}) was already waiting for this member and kind; "
                              "it runs now instead.")
        out = run_queued(run.pk)
        run = SyncRun.objects.get(pk=run.pk)
        return out if "created" in out else _from_row(run)

    def _summary(self, d: dict) -> None:
        w = self.stdout.write
        w(f"Run {d['run_id']}: {d['status']}" + (f" — {d['message']}" if d["message"] else ""))
        for name in ("created", "updated", "deleted", "errors"):
            w(f"  {name:<10} Outlook {d[name]['outlook']:>6}   Salesforce {d[name]['salesforce']:>6}")
        w(f"  linked {d['linked']}, conflicts {d['conflicts']}, out of range {d['out_of_scope']}, "
          f"closed {d['tombstoned']}")
        w(f"  API requests: Outlook {d['api_requests']['outlook']}, Salesforce {d['api_requests']['salesforce']}")
        for item in d.get("skipped_items", [])[:50]:
            w(f"  {item['action']:<6} {item['title'] or '-'}: {item['reason']}")


def _from_row(run: SyncRun) -> dict:
    """The run's result as `RunResult.as_dict` shapes it, read back from its row."""
    zero = {"outlook": 0, "salesforce": 0}
    c = run.counts or {}
    return {
        "run_id": run.pk,
        "status": run.status,
        **{k: c.get(k, dict(zero)) for k in ("created", "updated", "deleted", "errors")},
        **{k: c.get(k, 0) for k in ("linked", "conflicts", "out_of_scope", "tombstoned", "skipped")},
        "api_requests": {"outlook": run.api_outlook, "salesforce": run.api_salesforce},
        "message": run.error,
    }
