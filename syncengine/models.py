"""The link store, cursors, leases, runs, log entries and stored plans.

The business data lives in Outlook and Salesforce; these rows only hold
identity, versions, the canonical snapshot of the last synced content and the
state of each item (DESIGN §6). Database constraints carry the "no item twice"
invariant: one link per link_key, per Outlook id and per Salesforce id.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q

from orgs.models import Membership

KIND_CHOICES = [("calendar", "Calendar"), ("contacts", "Contacts"), ("tasks", "Tasks")]
SIDE_CHOICES = [("outlook", "Outlook"), ("salesforce", "Salesforce")]


class LinkState(models.TextChoices):
    SYNCED = "synced", "Synced"
    PENDING_CREATE_OUTLOOK = "pending_create_outlook", "Creating in Outlook"
    PENDING_CREATE_SALESFORCE = "pending_create_salesforce", "Creating in Salesforce"
    PENDING_UPDATE_OUTLOOK = "pending_update_outlook", "Updating Outlook"
    PENDING_UPDATE_SALESFORCE = "pending_update_salesforce", "Updating Salesforce"
    PENDING_DELETE_OUTLOOK = "pending_delete_outlook", "Deleting in Outlook"
    PENDING_DELETE_SALESFORCE = "pending_delete_salesforce", "Deleting in Salesforce"
    CONFLICT = "conflict", "Conflict"
    TOMBSTONED = "tombstoned", "Deleted"
    OUT_OF_SCOPE = "out_of_scope", "Out of range"
    ERROR = "error", "Error"


PENDING_STATES = frozenset(s for s in LinkState.values if s.startswith("pending_")) | {
    LinkState.ERROR
}


class SyncLink(models.Model):
    """One Outlook item and one Salesforce record that are the same thing."""

    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="sync_links")
    kind = models.CharField(max_length=16, choices=KIND_CHOICES)
    # Our identity, also written on both remote items so a lost local commit
    # (or a forgotten link table) can be re-attached instead of re-created.
    link_key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    outlook_id = models.CharField(max_length=512, null=True, blank=True)
    outlook_ical_uid = models.CharField(max_length=512, blank=True, default="")
    outlook_change_key = models.CharField(max_length=128, blank=True, default="")
    # To Do tasks live in a list; their id is only addressable through it.
    outlook_container = models.CharField(max_length=512, blank=True, default="")
    sf_id = models.CharField(max_length=18, null=True, blank=True)
    sf_modstamp = models.CharField(max_length=40, blank=True, default="")
    snapshot = models.JSONField(null=True, blank=True)
    snapshot_hash = models.CharField(max_length=64, blank=True, default="")
    state = models.CharField(max_length=32, choices=LinkState.choices, default=LinkState.SYNCED)
    # Set for SnapRecord links: changes flow from this side only.
    one_way_from = models.CharField(max_length=16, choices=SIDE_CHOICES, blank=True, default="")
    # The member related this event in the Relate panel: the engine's attendee WhoId leaves it alone.
    relation_by_member = models.BooleanField(default=False)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True, default="")
    # A remote change of several steps under way, saved before its first step so a run
    # that dies half-way carries on (a Salesforce series re-created for a pattern
    # change: engine.series.Repattern); None when nothing is under way.
    resume = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["membership", "kind", "outlook_id"],
                condition=Q(outlook_id__isnull=False),
                name="synclink_unique_outlook_id",
            ),
            models.UniqueConstraint(
                fields=["membership", "kind", "sf_id"],
                condition=Q(sf_id__isnull=False),
                name="synclink_unique_sf_id",
            ),
        ]
        indexes = [models.Index(fields=["membership", "kind", "state"], name="synclink_state_idx")]

    def __str__(self) -> str:
        return f"{self.kind} link {self.link_key} ({self.state})"


class OccurrenceState(models.TextChoices):
    """An occurrence that no longer follows its series, as both sides last agreed."""

    CHANGED = "changed", "Changed on its own"
    CANCELLED = "cancelled", "Cancelled"
    # Outlook cancelled it, Salesforce keeps it (the series' first occurrence names the
    # series there); not tried again, the item trace says why.
    KEPT = "kept", "Kept in Salesforce"
    # Written to the other side, answer not recorded yet: the next run reads both again.
    PENDING = "pending", "Being written"


class SyncOccurrence(models.Model):
    """One occurrence of a linked series that differs from its pattern, keyed by the
    series link and the occurrence's original start (engine.series). Occurrences that
    follow the pattern have no row: the series link holds them."""

    link = models.ForeignKey(SyncLink, on_delete=models.CASCADE, related_name="occurrences")
    # "YYYY-MM-DDTHH:MM" in UTC, or "YYYY-MM-DD" for an all-day series (engine.series.occ_key).
    original_start = models.CharField(max_length=16)
    state = models.CharField(max_length=16, choices=OccurrenceState.choices)
    outlook_id = models.CharField(max_length=512, blank=True, default="")
    sf_id = models.CharField(max_length=18, blank=True, default="")
    # What differs from the pattern (start, end, subject, location), as both sides hold it.
    content = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["link", "original_start"], name="syncoccurrence_unique_original"
            )
        ]

    def __str__(self) -> str:
        return f"occurrence {self.original_start} of {self.link_id} ({self.state})"


class SyncCursor(models.Model):
    """Where each side's change feed stopped for one member and kind."""

    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="sync_cursors")
    kind = models.CharField(max_length=16, choices=KIND_CHOICES)
    outlook_delta_link = models.TextField(blank=True, default="")
    outlook_window_start = models.DateTimeField(null=True, blank=True)
    outlook_window_end = models.DateTimeField(null=True, blank=True)
    outlook_container = models.CharField(max_length=512, blank=True, default="")
    sf_high_water = models.DateTimeField(null=True, blank=True)
    last_full_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["membership", "kind"], name="synccursor_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} cursor of membership {self.membership_id}"


class SyncLease(models.Model):
    """One run at a time per member and kind; also the scheduler's due row.

    Claimed by a conditional UPDATE (holder empty or expired), so two workers
    can never both believe they hold it.
    """

    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="sync_leases")
    kind = models.CharField(max_length=16, choices=KIND_CHOICES)
    holder = models.CharField(max_length=64, blank=True, default="")
    expires_at = models.DateTimeField(null=True, blank=True)
    next_run_at = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    # The member paused Auto sync for this kind: the dispatcher leaves the row alone.
    auto_paused = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["membership", "kind"], name="synclease_unique"),
        ]
        indexes = [models.Index(fields=["next_run_at"], name="synclease_due_idx")]

    def __str__(self) -> str:
        return f"{self.kind} lease of membership {self.membership_id}"


class DispatcherState(models.Model):
    """The minute dispatcher's bookkeeping, one row, shared by every process and machine.

    `last_tick_at` is what the health endpoint reads; `reconciled_until` is how far
    the dispatcher has looked at changed policies and memberships (DESIGN §7).
    """

    name = models.CharField(max_length=32, unique=True)
    last_tick_at = models.DateTimeField(null=True, blank=True)
    reconciled_until = models.DateTimeField(null=True, blank=True)
    last_claimed = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"dispatcher {self.name}"


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Waiting to start"
    RUNNING = "running", "Running"
    PLANNED = "planned", "Planned, waiting for review"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    STOPPED = "stopped", "Stopped, needs attention"


class Trigger(models.TextChoices):
    MANUAL = "manual", "Manual"
    AUTO = "auto", "Auto"
    SNAPRECORD = "snaprecord", "SnapRecord"
    REBUILD = "rebuild", "Rebuild"


class RunPurpose(models.TextChoices):
    SYNC = "sync", "Sync"
    PREVIEW = "preview", "Preview"
    REBUILD_PREVIEW = "rebuild_preview", "Rebuild preview"
    REBUILD = "rebuild", "Rebuild"
    APPLY_PLAN = "apply_plan", "Run selected"
    SETTINGS_PREVIEW = "settings_preview", "What a settings change would do"


# The purposes whose run stores a plan a member can review.
PLAN_PURPOSES = frozenset(
    {RunPurpose.PREVIEW, RunPurpose.REBUILD_PREVIEW, RunPurpose.SETTINGS_PREVIEW}
)


class SyncRun(models.Model):
    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="sync_runs")
    kind = models.CharField(max_length=16, choices=KIND_CHOICES)
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.RUNNING)
    dry_run = models.BooleanField(default=False)
    # {"created": {"outlook": n, "salesforce": n}, "updated": {...}, ...}
    counts = models.JSONField(default=dict, blank=True)
    api_outlook = models.PositiveIntegerField(default=0)
    api_salesforce = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=1000, blank=True, default="")
    purpose = models.CharField(max_length=20, choices=RunPurpose.choices, default=RunPurpose.SYNC)
    # {"phase": "queued|reading|deciding|applying|done", "read": {"outlook": n,
    # "salesforce": n}, "decided": n, "applied": n, "total": n or null}, written by
    # the engine every block (one UPDATE of this row) so pages can poll it.
    progress = models.JSONField(default=dict, blank=True)
    # A stored plan can be applied until then (settings.SYNC_PLAN_TTL); a
    # scheduled task removes expired plans' items.
    plan_expires_at = models.DateTimeField(null=True, blank=True)
    # The run that applied (or is applying) this plan: set once, under a conditional
    # UPDATE, so a plan is never applied twice.
    applied_run = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="applied_plans"
    )
    # Proposed raw settings a settings preview was computed under ({field: value}).
    policy_overrides = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["membership", "kind", "-started_at"], name="syncrun_recent_idx"),
            # The runs left running (a killed worker's), closed by the next lease holder: a few
            # rows, never the member's whole history.
            models.Index(fields=["membership", "kind"], condition=Q(status="running"),
                         name="syncrun_running_idx"),
            # The dispatcher's reconciliation reads the runs finished since its last tick.
            models.Index(fields=["finished_at"], name="syncrun_finished_idx"),
            models.Index(
                fields=["plan_expires_at"],
                condition=Q(plan_expires_at__isnull=False),
                name="syncrun_plan_expiry_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} run {self.pk} ({self.status})"


class LogLevel(models.TextChoices):
    DEBUG = "debug", "Debug"
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    ERROR = "error", "Error"


class SyncLogEntryManager(models.Manager):
    def bulk_create(self, objs, *args, **kwargs):
        objs = list(objs)
        for obj in objs:
            obj.fill_from_run()
        return super().bulk_create(objs, *args, **kwargs)


class SyncLogEntry(models.Model):
    """One line of a run's log. Never a token and never a full item body.

    `organization`, `membership`, `kind` and `search_text` repeat what the run
    and the item already say, so each filter of the log viewer is one index
    range scan on this table (no join to runs or memberships at 1,000,000 rows).
    They are filled from `run` on save and bulk_create, whoever writes the entry.
    """

    run = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="log_entries")
    # No single-column indexes: the composite indexes below lead with these columns.
    organization = models.ForeignKey(
        "orgs.Organization", on_delete=models.CASCADE, related_name="+", null=True, blank=True,
        db_index=False,
    )
    membership = models.ForeignKey(
        Membership, on_delete=models.CASCADE, related_name="+", null=True, blank=True,
        db_index=False,
    )
    kind = models.CharField(max_length=16, choices=KIND_CHOICES, blank=True, default="")
    # Lower-cased message, item title and e-mail addresses: what free text searches.
    search_text = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    level = models.CharField(max_length=8, choices=LogLevel.choices, default=LogLevel.INFO)
    action = models.CharField(max_length=32, blank=True, default="")
    side = models.CharField(max_length=100, blank=True, default="")
    outlook_id = models.CharField(max_length=512, blank=True, default="")
    sf_id = models.CharField(max_length=18, blank=True, default="")
    link_key = models.UUIDField(null=True, blank=True)
    message = models.CharField(max_length=500)
    detail = models.JSONField(default=dict, blank=True)

    objects = SyncLogEntryManager()

    class Meta:
        # One index per filter shape the log viewer pages by (newest first, keyset on
        # created_at, id); kind and free text filter within these scans (or the
        # PostgreSQL-only trigram index on search_text, see migration 0004).
        indexes = [
            models.Index(fields=["run", "id"], name="synclog_run_idx"),
            models.Index(fields=["organization", "-created_at", "-id"], name="synclog_org_time"),
            models.Index(fields=["membership", "-created_at", "-id"], name="synclog_member_time"),
            models.Index(
                fields=["membership", "level", "-created_at", "-id"], name="synclog_member_level"
            ),
            models.Index(
                fields=["organization", "level", "-created_at", "-id"], name="synclog_org_level"
            ),
            models.Index(
                fields=["organization", "action", "-created_at", "-id"], name="synclog_org_action"
            ),
            models.Index(
                fields=["organization", "link_key"],
                condition=Q(link_key__isnull=False),
                name="synclog_item_key",
            ),
            models.Index(
                fields=["organization", "sf_id"], condition=~Q(sf_id=""), name="synclog_item_sf"
            ),
            models.Index(
                fields=["organization", "outlook_id"],
                condition=~Q(outlook_id=""),
                name="synclog_item_outlook",
            ),
        ]

    def __str__(self) -> str:
        return f"[{self.level}] {self.message}"

    def save(self, *args, **kwargs):
        self.fill_from_run()
        super().save(*args, **kwargs)

    def fill_from_run(self) -> None:
        """Copy the run's tenant columns and build the search text (no query: the run is
        the object the engine holds, or is loaded once)."""
        run = self.run
        if self.membership_id is None:
            self.membership_id = run.membership_id
        if self.organization_id is None:
            membership = run.membership if self.membership_id == run.membership_id else None
            self.organization_id = (
                membership.organization_id
                if membership is not None
                else Membership.objects.values_list("organization_id", flat=True).get(
                    pk=self.membership_id
                )
            )
        if not self.kind:
            self.kind = run.kind
        if not self.search_text:
            self.search_text = log_search_text(self.message, self.detail)


def log_search_text(message: str, detail: dict | None) -> str:
    detail = detail or {}
    parts = [message or "", str(detail.get("title") or "")]
    parts += [str(e) for e in detail.get("emails") or ()]
    return " | ".join(p for p in parts if p).lower()[:2000]


class PlanStatus(models.TextChoices):
    PLANNED = "planned", "Planned"
    APPLIED = "applied", "Applied"
    FAILED = "failed", "Failed"
    STALE = "stale", "Changed since preview"
    SKIPPED = "skipped", "Left out"


class PlannedChange(models.Model):
    """One decided action, stored so Manual mode can show it and apply it as reviewed."""

    run = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="planned_changes")
    seq = models.PositiveIntegerField()
    action = models.CharField(max_length=32)
    side = models.CharField(max_length=100, blank=True, default="")
    link_key = models.UUIDField(null=True, blank=True)
    outlook_id = models.CharField(max_length=512, blank=True, default="")
    sf_id = models.CharField(max_length=18, blank=True, default="")
    # The versions the decision was made on: a later edit invalidates the item.
    outlook_version = models.CharField(max_length=128, blank=True, default="")
    sf_version = models.CharField(max_length=40, blank=True, default="")
    title = models.CharField(max_length=255, blank=True, default="")
    fields = models.JSONField(default=list, blank=True)
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)
    conflicts = models.JSONField(default=list, blank=True)
    included = models.BooleanField(default=True)
    status = models.CharField(max_length=16, choices=PlanStatus.choices, default=PlanStatus.PLANNED)
    # A conflict's winner chosen on the review page ("" = the policy's winner).
    winner = models.CharField(max_length=16, choices=SIDE_CHOICES, blank=True, default="")
    # Why the item is skipped or errored (or how a pair matched), in a member's words.
    reason = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["run", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["run", "seq"], name="plannedchange_unique_seq"),
        ]
        # The review page pages each action group by seq, and counts each group (and
        # its left-out items) from the second index alone: the rows are wide (JSON).
        indexes = [
            models.Index(fields=["run", "action", "seq"], name="plannedchange_group_idx"),
            models.Index(fields=["run", "action", "side", "included"], name="plannedchange_counts_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.side} ({self.status})"


# ---------------------------------------------------------------- org dashboard (issue 14)


class AlertDelivery(models.TextChoices):
    IMMEDIATE = "immediate", "Immediately, one e-mail per alert"
    DIGEST = "digest", "Once a day, in a digest"


class SalesforceRefreshPolicy(models.TextChoices):
    # "" = the deployment's default (settings.SALESFORCE_REFRESH_TOKEN_POLICY).
    DEFAULT = "", "The deployment's default"
    UNTIL_REVOKED = "until_revoked", "Valid until revoked"
    IDLE = "idle", "Expires if not used for N days"
    ABSOLUTE = "absolute", "Expires N days after it was issued"


class OrgSyncSettings(models.Model):
    """Sync-specific org settings the admin dashboard edits (one row per org, made on save).

    `api_share_percent`: the share of the Salesforce org's daily API limit LinkPoint may
    use (the governor). `sf_refresh_*`: the connected app's refresh token policy, which
    only the customer's Salesforce admin can see, so the forecast asks for it here.
    """

    organization = models.OneToOneField(
        "orgs.Organization", on_delete=models.CASCADE, related_name="sync_settings"
    )
    api_share_percent = models.PositiveSmallIntegerField(default=20)
    alert_delivery = models.CharField(
        max_length=12, choices=AlertDelivery.choices, default=AlertDelivery.IMMEDIATE
    )
    sf_refresh_policy = models.CharField(
        max_length=16, choices=SalesforceRefreshPolicy.choices, blank=True, default=""
    )
    sf_refresh_days = models.PositiveSmallIntegerField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(api_share_percent__gte=1, api_share_percent__lte=100),
                name="orgsyncsettings_share_1_100",
            ),
        ]

    def __str__(self) -> str:
        return f"sync settings of org {self.organization_id}"


class AlertCause(models.TextChoices):
    RECONNECT = "reconnect", "Needs to reconnect"
    FAILING = "failing", "Failed several times in a row"


class SyncAlert(models.Model):
    """One alert per member, cause, kind (or provider) and day: the unique constraint is
    what keeps a second e-mail for the same cause from going out the same day."""

    organization = models.ForeignKey(
        "orgs.Organization", on_delete=models.CASCADE, related_name="sync_alerts"
    )
    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="sync_alerts")
    cause = models.CharField(max_length=16, choices=AlertCause.choices)
    # The kind that fails, or the provider to reconnect.
    subject = models.CharField(max_length=16)
    day = models.DateField()
    message = models.CharField(max_length=500)
    created_at = models.DateTimeField(auto_now_add=True)
    member_emailed_at = models.DateTimeField(null=True, blank=True)
    admins_emailed_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["membership", "cause", "subject", "day"], name="syncalert_one_per_day"
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "resolved_at", "-created_at"], name="syncalert_open_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.cause} alert ({self.subject}) of membership {self.membership_id} on {self.day}"


class SnapRelation(models.Model):
    """What a member related a calendar link to in the Relate panel (labels for the calendar page).

    The Salesforce Event holds the truth (WhoId, WhatId, EventRelation rows); this row remembers
    the names the member picked so the page shows them without asking Salesforce again.
    """

    link = models.OneToOneField(SyncLink, on_delete=models.CASCADE, related_name="relation")
    who_id = models.CharField(max_length=18, blank=True, default="")
    who_label = models.CharField(max_length=255, blank=True, default="")
    what_id = models.CharField(max_length=18, blank=True, default="")
    what_label = models.CharField(max_length=255, blank=True, default="")
    # Further Contacts/Leads as [{"id", "label"}] (EventRelation IsParent, Shared Activities orgs).
    others = models.JSONField(default=list, blank=True)
    # SnapField values written with the relation: {"Meeting_Type__c": "Demo"}.
    values = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"relation of link {self.link_id}"


class SnapField(models.Model):
    """An extra Salesforce Event field an org admin shows when members record or relate events.

    Picked from the Event describe (type, label and picklist values copied at pick time);
    `locked` keeps the default for everyone. `problem` records a describe change found later
    (field removed, a default's picklist value retired): shown to the admin, the field is then
    left out of writes instead of failing them.
    """

    TYPES = [("picklist", "Picklist"), ("boolean", "Checkbox"), ("string", "Text"),
             ("textarea", "Long text"), ("date", "Date")]
    organization = models.ForeignKey("orgs.Organization", on_delete=models.CASCADE, related_name="snap_fields")
    name = models.CharField(max_length=80)  # API name, e.g. Meeting_Type__c
    label = models.CharField(max_length=120)
    type = models.CharField(max_length=16, choices=TYPES)
    picklist = models.JSONField(default=list, blank=True)
    length = models.PositiveIntegerField(default=0)
    required = models.BooleanField(default=False)
    default = models.CharField(max_length=255, blank=True, default="")
    locked = models.BooleanField(default=False)
    position = models.PositiveSmallIntegerField(default=0)
    problem = models.CharField(max_length=300, blank=True, default="")
    checked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["position", "id"]
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="snapfield_unique")]

    def __str__(self) -> str:
        return f"SnapField {self.name} of org {self.organization_id}"

