"""State of the emulated Microsoft cloud: tenants, mailboxes, OAuth grants, Graph items.

Lives in the `sandbox` database (sandbox/router.py), shared by every process.
Graph items of every kind share one table so a mailbox has one change sequence:
each write stamps the item with the mailbox's next `seq`, and every delta query
is a keyset scan over (mailbox, kind, seq) — fast at 10,000 items.
"""

from __future__ import annotations

import uuid

from django.db import models


class Tenant(models.Model):
    tenant_id = models.UUIDField(default=uuid.uuid4, unique=True)
    name = models.CharField(max_length=120)
    domain = models.CharField(max_length=120, unique=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.domain})"


class Mailbox(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="mailboxes")
    email = models.CharField(max_length=254, unique=True)  # the UPN, lower-cased
    display_name = models.CharField(max_length=200, blank=True)
    object_id = models.UUIDField(default=uuid.uuid4, unique=True)
    # Last change sequence number handed out; delta tokens carry one.
    change_seq = models.PositiveBigIntegerField(default=0)
    # Bumped to invalidate every outstanding delta token (→ 410 syncStateNotFound).
    sync_generation = models.PositiveIntegerField(default=1)
    # Graph's request budget per app and mailbox is counted in the cache (sandbox/limits.py).

    def __str__(self) -> str:
        return self.email


class AuthCode(models.Model):
    code_hash = models.CharField(max_length=64, unique=True)
    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE)
    client_id = models.CharField(max_length=200)
    redirect_uri = models.CharField(max_length=1000)
    scope = models.CharField(max_length=1000)
    nonce = models.CharField(max_length=200, blank=True)
    code_challenge = models.CharField(max_length=200, blank=True)
    code_challenge_method = models.CharField(max_length=10, blank=True)
    expires_at = models.DateTimeField()
    used = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"code for {self.mailbox_id}"


class AccessToken(models.Model):
    token_hash = models.CharField(max_length=64, unique=True)  # the token itself is never stored
    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE)
    client_id = models.CharField(max_length=200)
    scopes = models.CharField(max_length=1000)
    expires_at = models.DateTimeField()
    revoked = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"access token for {self.mailbox_id}"


class RefreshToken(models.Model):
    token_hash = models.CharField(max_length=64, unique=True)
    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE)
    client_id = models.CharField(max_length=200)
    scopes = models.CharField(max_length=1000)
    issued_at = models.DateTimeField()
    revoked = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"refresh token for {self.mailbox_id}"


class ItemKind(models.TextChoices):
    EVENT = "event"
    CONTACT = "contact"
    TODO_LIST = "todoList"
    TODO_TASK = "todoTask"


class Item(models.Model):
    """One Graph item: an event (single, series master or exception), contact, To Do list or task.

    `data` holds the resource's own JSON fields as the server would return them
    (start/end with their original zone, recurrence, body…); the identity and
    bookkeeping fields (id, changeKey, timestamps, type, seriesMasterId) are
    columns and are merged in when serialised.
    """

    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="items")
    kind = models.CharField(max_length=16, choices=ItemKind.choices)
    graph_id = models.CharField(max_length=200, unique=True)
    # Task → its list; exception → its series master.
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="children")
    seq = models.PositiveBigIntegerField(default=0)
    change_key = models.CharField(max_length=64)
    created = models.DateTimeField()
    modified = models.DateTimeField()
    deleted = models.BooleanField(default=False)
    data = models.JSONField(default=dict)
    ext_props = models.JSONField(default=dict)  # singleValueExtendedProperties: id → value
    transaction_id = models.CharField(max_length=200, null=True, blank=True)
    ical_uid = models.CharField(max_length=200, blank=True)
    # Events only: singleInstance | seriesMaster | exception.
    event_type = models.CharField(max_length=16, blank=True)
    start_utc = models.DateTimeField(null=True, blank=True)
    end_utc = models.DateTimeField(null=True, blank=True)  # for a master: end of its last occurrence, null = no end
    original_start = models.DateTimeField(null=True, blank=True)  # exceptions: the occurrence they replace
    cancelled = models.BooleanField(default=False)  # exceptions: a deleted occurrence

    class Meta:
        indexes = [
            models.Index(fields=["mailbox", "kind", "seq"], name="sbx_ms_item_delta"),
            models.Index(fields=["mailbox", "kind", "start_utc"], name="sbx_ms_item_window"),
            models.Index(fields=["parent", "original_start"], name="sbx_ms_item_exception"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["mailbox", "transaction_id"],
                condition=models.Q(transaction_id__isnull=False),
                name="sbx_ms_item_transaction_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.graph_id}"


class ExtendedProperty(models.Model):
    """Search index of singleValueExtendedProperties, so `$filter=…/Any(ep: …)` is one indexed join.

    The item's `ext_props` JSON stays the copy that is served; this table mirrors it.
    """

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="extended_properties")
    prop_id = models.CharField(max_length=300)
    value_ci = models.CharField(max_length=400)  # lower-cased: Graph matches values case-insensitively

    class Meta:
        indexes = [models.Index(fields=["prop_id", "value_ci"], name="sbx_ms_extprop_lookup")]

    def __str__(self) -> str:
        return self.prop_id
