"""Org defaults with locks, per-member overrides, and lock notices.

The setting columns are not written out here: they are added from
`policy.registry.SETTINGS`, so a setting is declared exactly once. OrgPolicy
columns are NOT NULL (the org always has a value); UserPolicy columns are
nullable, NULL meaning "inherit from the organization".
"""

from __future__ import annotations

import uuid

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from orgs.models import Membership, Organization

from . import registry

KIND_CHOICES = [(k, registry.KIND_LABELS[k]) for k in registry.KINDS]


def _column(setting: registry.Setting, *, nullable: bool) -> models.Field:
    kwargs: dict = {"verbose_name": setting.label, "help_text": setting.help}
    if nullable:
        kwargs.update(null=True, blank=True, default=None)
    elif setting.column_default is not None:
        kwargs["default"] = setting.column_default
    if setting.type == registry.CHOICE:
        return models.CharField(max_length=32, choices=setting.all_choices, **kwargs)
    if setting.type == registry.INT:
        return models.PositiveIntegerField(
            validators=[MinValueValidator(setting.min), MaxValueValidator(setting.max)], **kwargs
        )
    if setting.type == registry.BOOL:
        return models.BooleanField(**kwargs)
    if setting.type == registry.TIME:
        return models.TimeField(**kwargs)
    if setting.type == registry.TEXT:
        kwargs["blank"] = True
        return models.CharField(max_length=setting.max_length, **kwargs)
    raise AssertionError(setting.type)


def _choice_constraints(prefix: str, *, nullable: bool) -> list[models.CheckConstraint]:
    """A kind's choice columns only hold that kind's choices (no SnapRecord for contacts)."""
    constraints = []
    for s in registry.SETTINGS:
        if s.type != registry.CHOICE:
            continue
        allowed = models.Q()
        for kind in (k for k in registry.KINDS if k in s.kinds):  # stable order for migrations
            allowed |= models.Q(kind=kind, **{f"{s.name}__in": [v for v, _ in s.choices_for(kind)]})
        # Columns of kinds the setting does not apply to are never read.
        allowed |= ~models.Q(kind__in=sorted(s.kinds))
        if nullable:
            allowed |= models.Q(**{f"{s.name}__isnull": True})
        constraints.append(
            models.CheckConstraint(condition=allowed, name=f"{prefix}_{s.name}_valid")
        )
    return constraints


class OrgPolicy(models.Model):
    """The organization's settings for one kind; `locked_fields` members cannot override."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="sync_policies"
    )
    kind = models.CharField(max_length=16, choices=KIND_CHOICES)
    locked_fields = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["organization", "kind"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "kind"], name="orgpolicy_unique"),
            *_choice_constraints("orgpolicy", nullable=False),
        ]

    def __str__(self) -> str:
        return f"{self.organization} {self.kind} policy"

    @classmethod
    def with_defaults(cls, *, organization_id: int, kind: str) -> OrgPolicy:
        """An unsaved row holding LinkPoint's defaults for `kind`."""
        policy = cls(organization_id=organization_id, kind=kind, locked_fields=[])
        for name, value in registry.defaults_for(kind).items():
            setattr(policy, name, value)
        return policy

    def values(self) -> dict:
        return {s.name: getattr(self, s.name) for s in registry.settings_for(self.kind)}

    @property
    def locked(self) -> frozenset[str]:
        return frozenset(self.locked_fields or ())


class UserPolicy(models.Model):
    """One member's overrides for one kind. NULL means "use the organization's value"."""

    membership = models.ForeignKey(
        Membership, on_delete=models.CASCADE, related_name="sync_policies"
    )
    kind = models.CharField(max_length=16, choices=KIND_CHOICES)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["membership", "kind"]
        constraints = [
            models.UniqueConstraint(fields=["membership", "kind"], name="userpolicy_unique"),
            *_choice_constraints("userpolicy", nullable=True),
        ]

    def __str__(self) -> str:
        return f"{self.membership} {self.kind} overrides"

    def overrides(self) -> dict:
        """Only the fields this member actually set."""
        return {
            s.name: getattr(self, s.name)
            for s in registry.settings_for(self.kind)
            if getattr(self, s.name) is not None
        }


for _setting in registry.SETTINGS:
    OrgPolicy.add_to_class(_setting.name, _column(_setting, nullable=False))
    UserPolicy.add_to_class(_setting.name, _column(_setting, nullable=True))


class PolicyNoticeQuerySet(models.QuerySet):
    def open(self):
        return self.filter(dismissed_at__isnull=True)


class PolicyNotice(models.Model):
    """Tells a member that the org locked fields they had set, so their own value is gone.

    LinkPoint Cloud overwrites a user's settings silently when locks change
    (anchors_features.md §1.3); we say so on the member's settings page.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    membership = models.ForeignKey(
        Membership, on_delete=models.CASCADE, related_name="policy_notices"
    )
    kind = models.CharField(max_length=16, choices=KIND_CHOICES)
    fields = models.JSONField(default=list)
    # What the member had set, so the notice can say what changed.
    cleared_values = models.JSONField(default=dict, blank=True)
    message = models.CharField(max_length=500)
    created_at = models.DateTimeField(default=timezone.now)
    dismissed_at = models.DateTimeField(null=True, blank=True)

    objects = PolicyNoticeQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["membership", "dismissed_at"])]

    def __str__(self) -> str:
        return self.message
