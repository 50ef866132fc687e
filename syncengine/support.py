"""Writes of the support pages: the staff-view audit, the retention purge (a daily
django-q2 task) and the support bundle.

The bundle is what a member or admin sends to support: runs, log entries, the
effective policy with each value's source, connection states (never a token),
the product version and the settings that matter. Item bodies never reach the
log (engine/why.py), and e-mail addresses and titles can be masked on request.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import zipfile
from datetime import datetime, timedelta
from importlib import metadata
from tempfile import SpooledTemporaryFile

import django
from django.conf import settings
from django.db import connection
from django.utils import timezone

from orgs.access import OrgContext
from orgs.audit import audit_record
from orgs.models import Membership, Organization

from .models import KIND_CHOICES, SyncLogEntry, SyncRun

log = logging.getLogger(__name__)

RETENTION_SCHEDULE = "syncengine.log_retention"
PURGE_BATCH = 5000
BUNDLE_MAX_ENTRIES = 200_000
EMAIL = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
QUOTED = re.compile(r"“[^”]*”")
# Canonical fields that name an item (masked with its title).
TITLE_FIELDS = frozenset({"subject", "title", "first_name", "middle_name", "last_name", "company"})


# ---------------------------------------------------------------- staff audit


def support_view_record(*, ctx: OrgContext, page: str, membership: Membership | None,
                        filters: dict | None = None) -> None:
    """Platform staff reading a member's logs lands in the org's audit log (DESIGN §3).

    Members and admins reading their own org's logs are not audited: it is their data.
    """
    if not ctx.acting_as_staff:
        return
    target = membership.user.email if membership is not None else "all members"
    audit_record(ctx=ctx, action=f"support.{page}", target=target,
                 after={k: str(v) for k, v in (filters or {}).items() if v not in (None, "")})


# ---------------------------------------------------------------- retention


def log_retention_purge(*, now: datetime | None = None, batch: int = PURGE_BATCH) -> dict:
    """Delete each org's runs and entries older than its retention, `batch` rows per
    statement (short transactions: a purge of a million rows never locks the table)."""
    now = now or timezone.now()
    removed = {"entries": 0, "runs": 0}
    for org_id, days in Organization.objects.values_list("pk", "log_retention_days"):
        cutoff = now - timedelta(days=days or 30)
        removed["entries"] += _purge(
            SyncLogEntry.objects.filter(organization_id=org_id, created_at__lt=cutoff), batch
        )
        # A queued or running run is kept whatever its age: its worker still writes to it.
        old_runs = SyncRun.objects.filter(
            membership__organization_id=org_id, started_at__lt=cutoff
        ).exclude(status__in=("queued", "running"))
        removed["runs"] += _purge(old_runs, batch)
    if removed["entries"] or removed["runs"]:
        log.info("log retention purge removed %(entries)s entries and %(runs)s runs", removed)
    return removed


def _purge(qs, batch: int) -> int:
    total = 0
    while True:
        ids = list(qs.order_by().values_list("pk", flat=True)[:batch])
        if not ids:
            return total
        # Delete by pk: the batch is exactly what was selected (a runs' delete also
        # removes its remaining entries and plan rows by cascade).
        qs.model.objects.filter(pk__in=ids).delete()
        total += len(ids)


def log_retention_task() -> dict:
    """django-q2 entry point (scheduled daily by name)."""
    return log_retention_purge()


def retention_schedule_ensure() -> None:
    """Create (or repair) the daily purge schedule; idempotent by name."""
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name=RETENTION_SCHEDULE,
        defaults={"func": "syncengine.support.log_retention_task", "schedule_type": Schedule.DAILY,
                  "repeats": -1},
    )


def retention_start(*, org: Organization, now: datetime | None = None) -> datetime:
    """The oldest moment the viewer can still show for `org`."""
    return (now or timezone.now()) - timedelta(days=org.log_retention_days or 30)


# ---------------------------------------------------------------- bundle


class Redactor:
    def __init__(self, *, emails: bool, titles: bool):
        self.emails, self.titles = emails, titles

    def text(self, value: str, title: str = "") -> str:
        if not value:
            return value
        if self.titles:
            if title:
                value = value.replace(title, "[title]")
            value = QUOTED.sub("“[title]”", value)
        if self.emails:
            value = EMAIL.sub("[e-mail]", value)
        return value

    def detail(self, detail: dict, title: str = "") -> dict:
        out = {}
        for key, value in (detail or {}).items():
            if key == "title" and self.titles:
                out[key] = "[title]" if value else ""
            elif key in ("emails", "match_key") and (self.emails or self.titles):
                out[key] = "[redacted]"
            else:
                out[key] = self._value(key, value, title)
        return out

    def _value(self, key: str, value, title: str):
        if isinstance(value, dict):
            return {k: self._value(k, v, title) for k, v in value.items()}
        if isinstance(value, list):
            if self.titles and key in TITLE_FIELDS:
                return ["[title]" for _ in value]
            return [self._value(key, v, title) for v in value]
        if isinstance(value, str):
            if self.titles and key in TITLE_FIELDS:
                return "[title]" if value else ""
            return self.text(value, title)
        return value

    def row(self, row: dict) -> dict:
        """A changes row {field, before, after}: a name field's values are its title."""
        if self.titles and row.get("field") in TITLE_FIELDS:
            return {**row, "before": "[title]", "after": "[title]"}
        return row


def _csv_bytes(header: list[str], rows) -> io.BytesIO:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue().encode()


def _policy_sources(membership: Membership) -> dict:
    from policy.selectors import policy_effective_for

    out = {}
    for kind, _label in KIND_CHOICES:
        eff = policy_effective_for(membership, kind)
        out[kind] = {
            name: {"value": r.value if isinstance(r.value, str | int | float | bool | None)
                   else str(r.value), "source": r.source, "note": r.note}
            for name, r in eff.items() if r is not None
        }
    return out


def _connections(membership: Membership, red: Redactor) -> list[dict]:
    from connections.models import Connection

    rows = []
    # Explicit columns: the token blob is never read, let alone written out.
    for c in Connection.objects.filter(membership=membership).values(
        "provider", "status", "account_name", "scopes", "access_expires_at", "last_error",
        "last_error_at", "last_used_at", "connected_at", "sf_instance_url", "sf_org_id",
        "ms_tenant_id",
    ):
        c["account_name"] = red.text(c["account_name"])
        c["last_error"] = red.text(c["last_error"])
        rows.append({k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in c.items()})
    return rows


def _version() -> dict:
    try:
        version = metadata.version("linkpoint")
    except metadata.PackageNotFoundError:
        version = "unknown"
    q = getattr(settings, "Q_CLUSTER", {})
    return {
        "product": "LinkPoint",
        "version": version,
        "django": django.get_version(),
        "database": connection.vendor,
        "broker": "redis" if "redis" in q else "orm",
        "time_zone": settings.TIME_ZONE,
        "debug": settings.DEBUG,
        "sandbox": bool(getattr(settings, "SANDBOX_ENABLED", False)),
        "graph_url": getattr(settings, "MICROSOFT_GRAPH_URL", ""),
        "salesforce_api_version": getattr(settings, "SALESFORCE_API_VERSION", ""),
        "plan_ttl": str(getattr(settings, "SYNC_PLAN_TTL", "")),
        "generated_at": timezone.now().isoformat(),
    }


def support_bundle(*, ctx: OrgContext, membership: Membership, since: datetime, until: datetime,
                   redact_emails: bool, redact_titles: bool) -> SpooledTemporaryFile:
    """The ZIP of one member's runs and entries in [since, until); audited."""
    red = Redactor(emails=redact_emails, titles=redact_titles)
    # Returned open to FileResponse, which closes it once sent.
    out = SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115
    runs = SyncRun.objects.filter(membership=membership, started_at__gte=since,
                                  started_at__lt=until).order_by("started_at", "id")
    entries = SyncLogEntry.objects.filter(membership=membership, created_at__gte=since,
                                          created_at__lt=until).order_by("created_at", "id")[
        :BUNDLE_MAX_ENTRIES
    ]
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("runs.csv", _csv_bytes(
            ["id", "kind", "trigger", "status", "started_at", "finished_at", "counts",
             "api_outlook", "api_salesforce", "error"],
            ([r.pk, r.kind, r.trigger, r.status, r.started_at.isoformat(),
              r.finished_at.isoformat() if r.finished_at else "", json.dumps(r.counts),
              r.api_outlook, r.api_salesforce, red.text(r.error)] for r in runs.iterator()),
        ))
        with zf.open("entries.csv", "w") as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
            writer = csv.writer(text)
            writer.writerow(["id", "created_at", "run", "kind", "level", "action", "side",
                             "outlook_id", "sf_id", "link_key", "message", "detail"])
            for e in entries.iterator(chunk_size=2000):
                title = (e.detail or {}).get("title", "")
                detail = red.detail(e.detail, title)
                for side, rows in (detail.get("changes") or {}).items():
                    detail["changes"][side] = [red.row(r) for r in rows]
                writer.writerow([e.pk, e.created_at.isoformat(), e.run_id, e.kind, e.level,
                                 e.action, e.side, e.outlook_id, e.sf_id, e.link_key or "",
                                 red.text(e.message, title), json.dumps(detail, default=str)])
            text.flush()
            text.detach()
        zf.writestr("policy.json", json.dumps(_policy_sources(membership), indent=2, default=str))
        zf.writestr("connections.json", json.dumps(_connections(membership, red), indent=2))
        zf.writestr("version.json", json.dumps(_version(), indent=2))
        zf.writestr("README.txt", (
            "LinkPoint support bundle\n"
            f"member: {red.text(membership.user.email)}\n"
            f"from {since.isoformat()} to {until.isoformat()}\n"
            f"e-mail addresses hidden: {redact_emails}; titles hidden: {redact_titles}\n"
            "No tokens, secrets or item bodies are included.\n"
        ))
    audit_record(ctx=ctx, action="support.bundle", target=membership.user.email,
                 after={"since": since.date().isoformat(), "until": until.date().isoformat(),
                        "redact_emails": redact_emails, "redact_titles": redact_titles})
    out.seek(0)
    return out
