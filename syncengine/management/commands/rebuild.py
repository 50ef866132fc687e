"""`manage.py rebuild --user EMAIL --kind ... [--apply]`: forget links and re-match (previewed)."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from syncengine import services
from syncengine.engine.kinds import KINDS
from syncengine.selectors import membership_for_email


class Command(BaseCommand):
    help = "Forget a member's links and cursors for one kind and match both sides again."

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True)
        parser.add_argument("--org", default=None)
        parser.add_argument("--kind", required=True, choices=KINDS)
        parser.add_argument("--apply", action="store_true", help="without it, only a preview")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **o):
        m = membership_for_email(o["user"], org_slug=o["org"])
        result = services.sync_rebuild(membership=m, kind=o["kind"], apply=o["apply"])
        d = result.as_dict()
        if o["json"]:
            self.stdout.write(json.dumps(d, sort_keys=True))
        else:
            verb = "Rebuilt" if o["apply"] else "Preview (nothing changed; add --apply)"
            self.stdout.write(f"{verb}: run {d['run_id']} {d['status']} {d['message']}")
            self.stdout.write(f"  would link/linked {d['linked']}; create Outlook {d['created']['outlook']}, "
                              f"Salesforce {d['created']['salesforce']}; update Outlook {d['updated']['outlook']}, "
                              f"Salesforce {d['updated']['salesforce']}")
        if result.status in ("failed", "stopped"):
            raise CommandError(result.message or result.status)
