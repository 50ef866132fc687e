from __future__ import annotations

import uuid

from django.db import models
from django.db.models.functions import Lower, Substr, Upper
from django.views.decorators.debug import sensitive_variables

from orgs.models import Membership, Organization

from . import crypto


class Provider(models.TextChoices):
    MICROSOFT = "microsoft", "Microsoft 365 (Outlook)"
    SALESFORCE = "salesforce", "Salesforce"


class Status(models.TextChoices):
    CONNECTED = "connected", "Connected"
    NEEDS_REAUTH = "needs_reauth", "Reconnect needed"
    # Signed in, but a permission LinkPoint needs is not granted: only consenting again helps.
    NEEDS_CONSENT = "needs_consent", "Permission missing: re-consent"
    REVOKED = "revoked", "Disconnected"
    ERROR = "error", "Error"


class Connection(models.Model):
    """One member's link to one remote account.

    `token_blob` is Fernet ciphertext (see crypto.py): Microsoft keeps msal's
    serialized token cache, Salesforce its access and refresh token. Nothing
    else on this row is secret, and nothing secret is ever shown: `__str__`,
    the admin and audit entries use the identity fields only.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="connections")
    provider = models.CharField(max_length=12, choices=Provider.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.CONNECTED)

    # Remote identity. Microsoft: UPN, tenant id, object id. Salesforce: username,
    # user id, org id, instance URL.
    account_name = models.CharField(max_length=255, blank=True)
    ms_tenant_id = models.CharField(max_length=64, blank=True)
    ms_object_id = models.CharField(max_length=64, blank=True)
    ms_home_account_id = models.CharField(max_length=160, blank=True)
    sf_user_id = models.CharField(max_length=18, blank=True)
    sf_org_id = models.CharField(max_length=18, blank=True)
    sf_instance_url = models.URLField(blank=True)

    scopes = models.TextField(blank=True)
    access_expires_at = models.DateTimeField(null=True, blank=True)
    token_blob = models.TextField(blank=True, editable=False)

    last_error = models.CharField(max_length=500, blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    connected_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["membership", "provider"]
        constraints = [
            models.UniqueConstraint(fields=["membership", "provider"], name="connection_one_per_provider")
        ]
        # "One remote account, one member" (selectors.py) looks every run up by the remote
        # identity: without these each lookup read every connection of every org.
        indexes = [
            models.Index(fields=["ms_object_id", "ms_tenant_id"], name="connection_ms_object"),
            # iexact compares UPPER(); connections_shared compares LOWER()
            models.Index(Upper("account_name"), name="connection_account_upper"),
            models.Index(Lower("account_name"), name="connection_account_lower"),
            # startswith (LIKE 'prefix%') needs the pattern operator class on PostgreSQL
            models.Index(fields=["sf_user_id"], name="connection_sf_user",
                         opclasses=["varchar_pattern_ops"]),
            models.Index(Substr("sf_user_id", 1, 15), name="connection_sf_user15"),
        ]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} connection of {self.membership_id} ({self.status})"

    def __repr__(self) -> str:
        return f"<Connection {self.pk} {self.provider} {self.status}>"

    @property
    def is_usable(self) -> bool:
        return self.status == Status.CONNECTED and bool(self.token_blob)

    # Tokens go in and out only through these two methods.
    def read_tokens(self) -> dict:
        return crypto.decrypt_json(self.token_blob)

    @sensitive_variables("data")
    def write_tokens(self, data: dict) -> None:
        self.token_blob = crypto.encrypt_json(data) if data else ""


class SalesforceUsage(models.Model):
    """Daily API usage of a Salesforce org as last reported by `Sforce-Limit-Info`."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="salesforce_usage"
    )
    sf_org_id = models.CharField(max_length=18)
    used = models.PositiveIntegerField(default=0)
    limit = models.PositiveIntegerField(default=0)
    recorded_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "sf_org_id"], name="sf_usage_one_per_org")
        ]

    def __str__(self) -> str:
        return f"{self.sf_org_id}: {self.used}/{self.limit}"

    @property
    def percent(self) -> int:
        return round(100 * self.used / self.limit) if self.limit else 0


class SalesforceRequestsDay(models.Model):
    """Salesforce API requests LinkPoint's runs of an organization sent, per UTC day of the
    runs' start: what the budget governor (syncengine/governor.py) reads. Each finished run
    adds its count, so reading the day's use is one row whatever the number of runs."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    requests = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "day"], name="sf_requests_one_per_day")
        ]

    def __str__(self) -> str:
        return f"{self.organization_id} {self.day}: {self.requests}"
