"""Bulk rows for the review page: a stored plan of any size without running the engine.

The engine's own tests (and the page tests that run a real preview through the
sandbox) prove the plan's content; these rows only need its shape.
"""

from __future__ import annotations

import datetime as dt
import uuid

from django.utils import timezone

from syncengine.models import PlannedChange, SyncRun

# Shape of each action as the engine stores it (side = "<side>:<op>,...").
SHAPES = [
    ("create", "salesforce:create"),
    ("create", "outlook:create"),
    ("update", "salesforce:update"),
    ("delete", "outlook:delete"),
    ("link", "outlook:update,salesforce:update"),
    ("conflict", "outlook:update,salesforce:update"),
    ("skip", ""),
    ("error", ""),
]


def plan_make(membership, n: int, *, kind: str = "contacts", purpose: str = "preview",
              expires_in: dt.timedelta = dt.timedelta(hours=24), shapes=SHAPES) -> SyncRun:
    t = timezone.now()
    run = SyncRun.objects.create(
        membership=membership, kind=kind, trigger="manual", purpose=purpose, status="planned",
        dry_run=True, started_at=t, finished_at=t, plan_expires_at=t + expires_in,
        counts={"created": {"outlook": 0, "salesforce": n}},
        progress={"phase": "done", "read": {"outlook": n, "salesforce": n}, "decided": n, "applied": 0,
                  "total": n},
    )
    rows = []
    for i in range(n):
        action, side = shapes[i % len(shapes)]
        record = {"first_name": "Ada", "last_name": f"Person {i:05d}", "emails": [f"p{i}@example.com"],
                  "company": "Acme"}
        before = dict(record, company="Old Co") if action in ("update", "conflict", "delete") else {}
        rows.append(PlannedChange(
            run=run, seq=i + 1, action=action, side=side, link_key=uuid.uuid4(),
            outlook_id=f"AAMk{i:06d}", sf_id=f"003{i:015d}"[:18], title=f"Ada Person {i:05d}",
            fields=["company"] if before else [], before=before,
            after={"hash": f"h{i}", "record": record},
            conflicts=[{"fields": ["company"], "kept": {"company": "Acme"}, "lost": {"company": "Globex"}}]
            if action == "conflict" else [],
            reason={"skip": "Skipped: the series pattern cannot be held by Salesforce.",
                    "error": "Outlook contact: businessAddress is not an address object.",
                    "link": "Matched by e-mail."}.get(action, ""),
        ))
    PlannedChange.objects.bulk_create(rows, batch_size=500)
    return run
