"""`manage.py sync --user EMAIL --kind contacts|tasks|calendar [--dry-run] [--json]`."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from syncengine import services
from syncengine.engine.kinds import KINDS
from syncengine.selectors import membership_for_email, plan_changes


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
        if o["apply_plan"] is not None:
            exclude = frozenset(int(x) for x in o["exclude"].split(",") if x.strip())
            result = services.sync_plan_apply(membership=m, plan_run_id=o["apply_plan"], exclude=exclude)
        else:
            result = services.sync_run(membership=m, kind=o["kind"], trigger="manual",
                                       dry_run=o["dry_run"], plan_only=o["plan"])
        data = result.as_dict()
        if o["json"]:
            self.stdout.write(json.dumps(data, sort_keys=True))
        else:
            self._summary(data)
            if o["plan"] or o["dry_run"]:
                for p in plan_changes(membership=m, run_id=result.run_id):
                    self.stdout.write(f"  {p.seq:>4}  {p.action:<10} {p.side or '-':<40} {p.title}")
                if o["plan"]:
                    self.stdout.write(f"Apply with: sync --user {o['user']} --kind {o['kind']} "
                                      f"--apply-plan {result.run_id} [--exclude 3,7]")
        if result.status in ("failed", "stopped"):
            raise CommandError(result.message or result.status)

    def _summary(self, d: dict) -> None:
        w = self.stdout.write
        w(f"Run {d['run_id']}: {d['status']}" + (f" — {d['message']}" if d["message"] else ""))
        for name in ("created", "updated", "deleted", "errors"):
            w(f"  {name:<10} Outlook {d[name]['outlook']:>6}   Salesforce {d[name]['salesforce']:>6}")
        w(f"  linked {d['linked']}, conflicts {d['conflicts']}, out of range {d['out_of_scope']}, "
          f"closed {d['tombstoned']}")
        w(f"  API requests: Outlook {d['api_requests']['outlook']}, Salesforce {d['api_requests']['salesforce']}")
