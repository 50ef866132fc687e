"""State of the emulated Salesforce: orgs, users, OAuth grants, records, query cursors.

Lives in the `sandbox` database (sandbox/router.py), shared by every process.
"""

from __future__ import annotations

from django.db import models


class SfOrg(models.Model):
    org_id = models.CharField(max_length=18, unique=True)  # 00D…
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, unique=True)  # <slug>.my.salesforce.sandbox.test
    domain = models.CharField(max_length=120, unique=True)  # the e-mail domain it was derived from
    api_daily_max = models.PositiveIntegerField(default=15000)
    api_used = models.PositiveIntegerField(default=0)
    api_day = models.DateField(null=True, blank=True)  # the UTC day api_used counts
    session_timeout_minutes = models.PositiveIntegerField(default=120)
    id_serial = models.PositiveBigIntegerField(default=0)  # last serial handed to a new record id
    # Strictly increasing across the org's writes, so `SystemModstamp > :mark` never skips one.
    last_modstamp = models.DateTimeField(null=True, blank=True)
    # Shared Activities: an Event relates to several Contacts/Leads through EventRelation.IsParent.
    shared_activities = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.org_id})"

    @property
    def instance_host(self) -> str:
        return f"{self.slug}.my.salesforce.sandbox.test"

    @property
    def instance_url(self) -> str:
        return f"https://{self.instance_host}"


class SfUser(models.Model):
    org = models.ForeignKey(SfOrg, on_delete=models.CASCADE, related_name="users")
    user_id = models.CharField(max_length=18, unique=True)  # 005…, also the User record's Id
    username = models.CharField(max_length=120, unique=True)  # an e-mail, as Salesforce usernames are
    email = models.EmailField()
    first_name = models.CharField(max_length=40, blank=True)
    last_name = models.CharField(max_length=80)
    time_zone = models.CharField(max_length=40, default="America/Los_Angeles")

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.username

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class SfAuthCode(models.Model):
    code_hash = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(SfUser, on_delete=models.CASCADE)
    client_id = models.CharField(max_length=200)
    redirect_uri = models.CharField(max_length=1000)
    code_challenge = models.CharField(max_length=200, blank=True)
    code_challenge_method = models.CharField(max_length=10, blank=True)
    scope = models.CharField(max_length=300, blank=True)
    expires_at = models.DateTimeField()
    used = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"code for {self.user_id}"


class SfRefreshToken(models.Model):
    token_hash = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(SfUser, on_delete=models.CASCADE)
    client_id = models.CharField(max_length=200)
    scope = models.CharField(max_length=300, blank=True)
    issued_at = models.DateTimeField()
    revoked = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"refresh token of {self.user_id}"


class SfAccessToken(models.Model):
    token_hash = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(SfUser, on_delete=models.CASCADE)
    refresh_token = models.ForeignKey(SfRefreshToken, null=True, blank=True, on_delete=models.CASCADE)
    issued_at = models.DateTimeField()
    # Sessions time out after inactivity: a use past half the timeout pushes this out again.
    expires_at = models.DateTimeField()
    revoked = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"session of {self.user_id}"


class SfRecord(models.Model):
    org = models.ForeignKey(SfOrg, on_delete=models.CASCADE, related_name="records")
    sobject = models.CharField(max_length=40)
    sf_id = models.CharField(max_length=18, unique=True)
    # Every non-system field in API form (datetimes as `….000+0000`, dates as YYYY-MM-DD).
    fields = models.JSONField(default=dict)
    is_deleted = models.BooleanField(default=False)
    deleted_at = models.DateTimeField(null=True, blank=True)
    created_date = models.DateTimeField()
    last_modified_date = models.DateTimeField()
    system_modstamp = models.DateTimeField()
    owner_id = models.CharField(max_length=18, blank=True)
    created_by_id = models.CharField(max_length=18)
    last_modified_by_id = models.CharField(max_length=18)
    # Copy of fields["LinkPoint_Key__c"], indexed for SOQL filters and upserts.
    link_key = models.CharField(max_length=36, null=True, blank=True)

    class Meta:
        ordering = ["sf_id"]
        indexes = [
            models.Index(fields=["org", "sobject", "system_modstamp"], name="sfrecord_modstamp"),
            models.Index(fields=["org", "sobject", "link_key"], name="sfrecord_link_key"),
            models.Index(fields=["org", "sobject", "is_deleted", "sf_id"], name="sfrecord_live"),
        ]
        constraints = [
            # The external id is unique among live records (a deleted one sits in the recycle bin).
            models.UniqueConstraint(
                fields=["org", "sobject", "link_key"],
                condition=models.Q(is_deleted=False, link_key__isnull=False),
                name="sfrecord_link_key_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.sobject} {self.sf_id}"


class SfCustomField(models.Model):
    """A custom field an org's admin added to an object (Setup → Object Manager), e.g. Meeting_Type__c.

    `picklist` is [{"value": ..., "active": bool}]: a retired value stays on stored records but the
    describe no longer lists it and a write of it is refused. `deleted` removes the field from describe.
    """

    TYPES = ("string", "textarea", "picklist", "checkbox", "date", "datetime", "double")
    org = models.ForeignKey(SfOrg, on_delete=models.CASCADE, related_name="custom_fields")
    sobject = models.CharField(max_length=40)
    name = models.CharField(max_length=80)  # API name ending in __c
    label = models.CharField(max_length=80)
    type = models.CharField(max_length=16, choices=[(t, t) for t in TYPES])
    length = models.PositiveIntegerField(default=0)
    required = models.BooleanField(default=False)
    default = models.CharField(max_length=255, blank=True)
    picklist = models.JSONField(default=list, blank=True)
    deleted = models.BooleanField(default=False)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["org", "sobject", "name"], name="sfcustomfield_unique")]

    def __str__(self) -> str:
        return f"{self.sobject}.{self.name}"


class SfQueryCursor(models.Model):
    """A query locator: the snapshot of matching rows a nextRecordsUrl pages through."""

    locator = models.CharField(max_length=18, unique=True)  # 01g…
    org = models.ForeignKey(SfOrg, on_delete=models.CASCADE)
    query = models.TextField()
    include_deleted = models.BooleanField(default=False)
    record_pks = models.JSONField(default=list)
    batch_size = models.PositiveIntegerField(default=2000)
    total_size = models.PositiveIntegerField(default=0)
    last_used = models.DateTimeField()

    def __str__(self) -> str:
        return self.locator
