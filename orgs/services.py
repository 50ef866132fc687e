"""Writes to an organization's people and settings.

Every service is keyword-only, runs in one transaction, records one audit entry
and refuses a rule breach with `OrgRuleError` before it changes anything. The
acting user arrives as an `OrgContext` (from `org_view`), so staff acting as
Professional Services are audited under their own name.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.selectors import email_is_verified

from .access import OrgContext
from .audit import audit_record
from .exceptions import OrgRuleError
from .models import ROLE_RANK, Invitation, Membership, Organization, Role

INVITATION_LIFETIME = timedelta(days=7)
# Resending mails the invitee: at most once per cooldown and a few times a day per invitation,
# so an admin (or a stolen admin session) cannot flood a mailbox from our domain.
RESEND_COOLDOWN = timedelta(minutes=5)
RESEND_DAILY_CAP = 5


# --- rules -------------------------------------------------------------------------


def _require_manager(ctx: OrgContext) -> None:
    if not ctx.is_admin:
        raise OrgRuleError("Only owners and admins can manage members.")


def _require_role_within_reach(ctx: OrgContext, role: str, verb: str) -> None:
    if role not in ROLE_RANK:
        raise OrgRuleError(f"“{role}” is not a role.")
    if ROLE_RANK[role] > ctx.rank:
        raise OrgRuleError(f"You cannot {verb} someone as {Role(role).label.lower()}: it is above your own role.")


def _require_target_within_reach(ctx: OrgContext, membership: Membership) -> None:
    # An admin must not be able to demote, deactivate or remove an owner.
    if membership.rank > ctx.rank:
        raise OrgRuleError(f"{membership.user.email} has a higher role than yours.")


def _require_not_last_owner(membership: Membership, verb: str) -> None:
    if membership.role != Role.OWNER or not membership.is_active:
        return
    # Lock the org's owner rows so two concurrent demotions cannot both pass this check.
    owners = (
        Membership.objects.select_for_update()
        .filter(organization_id=membership.organization_id, role=Role.OWNER, is_active=True)
        .values_list("pk", flat=True)
    )
    if list(owners) == [membership.pk]:
        raise OrgRuleError(
            f"You cannot {verb} the last active owner. Make someone else an owner first."
        )


def _membership_state(m: Membership) -> dict:
    return {"email": m.user.email, "role": m.role, "is_active": m.is_active}


# --- invitations -------------------------------------------------------------------


def _send_invitation_email(invitation: Invitation) -> None:
    url = settings.SITE_URL + reverse("orgs:invitation-accept", args=[invitation.token])
    context = {"invitation": invitation, "url": url, "org": invitation.organization}
    send_mail(
        subject=f"[LinkPoint] You are invited to {invitation.organization.name}",
        message=render_to_string("orgs/email/invitation.txt", context),
        from_email=None,
        recipient_list=[invitation.email],
    )


def _normalize_email(email: str) -> str:
    return (email or "").strip().lower()


@transaction.atomic
def invitation_create(*, ctx: OrgContext, email: str, role: str) -> Invitation:
    _require_manager(ctx)
    _require_role_within_reach(ctx, role, "invite")
    email = _normalize_email(email)
    if not email:
        raise OrgRuleError("Enter an e-mail address.")
    if Membership.objects.filter(organization=ctx.org, user__email__iexact=email).exists():
        raise OrgRuleError(f"{email} is already a member of {ctx.org.name}.")
    if Invitation.objects.filter(
        organization=ctx.org, email__iexact=email, accepted_at__isnull=True, revoked_at__isnull=True
    ).exists():
        raise OrgRuleError(f"{email} already has an open invitation. Resend it instead.")
    try:
        # A savepoint, so a lost race on the unique constraint leaves the outer transaction usable.
        with transaction.atomic():
            invitation = Invitation.objects.create(
                organization=ctx.org,
                email=email,
                role=role,
                invited_by=ctx.user,
                expires_at=timezone.now() + INVITATION_LIFETIME,
            )
    except IntegrityError as exc:
        raise OrgRuleError(f"{email} already has an open invitation. Resend it instead.") from exc
    audit_record(ctx=ctx, action="invitation.create", target=email, after={"role": role})
    # Mail only once the row is committed: a rolled-back invitation must not reach an inbox.
    transaction.on_commit(lambda: _send_invitation_email(invitation))
    return invitation


def _require_open(invitation: Invitation) -> None:
    if invitation.revoked_at is not None:
        raise OrgRuleError("This invitation was revoked.")
    if invitation.accepted_at is not None:
        raise OrgRuleError("This invitation was already used.")


def _claim_resend(invitation: Invitation) -> None:
    """Count one resend of this invitation, or refuse it (cooldown, daily cap).

    The counters live in the shared cache (Redis in production), so every web
    process sees them; `add` and `incr` are atomic there, so two clicks racing
    cannot both pass.
    """
    key = f"orgs:invitation-resend:{invitation.public_id}"
    now = timezone.now()
    if not cache.add(f"{key}:last", now.timestamp(), timeout=int(RESEND_COOLDOWN.total_seconds())):
        last = cache.get(f"{key}:last") or now.timestamp()
        wait = max(1, round((last + RESEND_COOLDOWN.total_seconds() - now.timestamp()) / 60))
        raise OrgRuleError(
            f"This invitation was sent a moment ago. You can send it again in about {wait} "
            f"minute{'s' if wait != 1 else ''}."
        )
    cache.add(f"{key}:day", 0, timeout=24 * 3600)
    try:
        sent_today = cache.incr(f"{key}:day")
    except ValueError:  # the day's counter expired between add and incr
        cache.set(f"{key}:day", 1, timeout=24 * 3600)
        sent_today = 1
    if sent_today > RESEND_DAILY_CAP:
        raise OrgRuleError(
            f"This invitation was already sent again {RESEND_DAILY_CAP} times in the last 24 hours. "
            f"Ask {invitation.email} to check their spam folder, or try again tomorrow."
        )


@transaction.atomic
def invitation_resend(*, ctx: OrgContext, invitation: Invitation) -> Invitation:
    """Send the same link again and give it a fresh lifetime (throttled per invitation)."""
    _require_manager(ctx)
    _require_role_within_reach(ctx, invitation.role, "invite")
    _require_open(invitation)
    _claim_resend(invitation)
    invitation.expires_at = timezone.now() + INVITATION_LIFETIME
    invitation.save(update_fields=["expires_at"])
    audit_record(ctx=ctx, action="invitation.resend", target=invitation.email)
    transaction.on_commit(lambda: _send_invitation_email(invitation))
    return invitation


@transaction.atomic
def invitation_revoke(*, ctx: OrgContext, invitation: Invitation) -> Invitation:
    _require_manager(ctx)
    _require_open(invitation)
    invitation.revoked_at = timezone.now()
    invitation.save(update_fields=["revoked_at"])
    audit_record(ctx=ctx, action="invitation.revoke", target=invitation.email)
    return invitation


@transaction.atomic
def invitation_accept(*, token: str, user) -> Membership:
    """Turn an invitation into a membership of the signed-in user.

    The invited address must be the user's, verified through allauth's e-mail
    verification: the link is a bearer secret, and a forwarded link must not let
    someone else into the organization (nor let them sign up with the address).
    """
    invitation = (
        Invitation.objects.select_for_update().select_related("organization").filter(token=token).first()
    )
    if invitation is None:
        raise OrgRuleError("This invitation link is not valid.")
    _require_open(invitation)
    if invitation.is_expired:
        raise OrgRuleError("This invitation has expired. Ask an admin to send a new one.")
    if _normalize_email(user.email) != _normalize_email(invitation.email):
        raise OrgRuleError("This invitation was sent to another e-mail address.")
    if not email_is_verified(user=user, email=invitation.email):
        # Holding the link proves nothing (it may have been forwarded); owning the mailbox does.
        raise OrgRuleError(
            f"Confirm that {invitation.email} is your address before you join: open the link in "
            "the verification e-mail LinkPoint sent to it."
        )
    org = invitation.organization
    existing = Membership.objects.filter(organization=org, user=user).first()
    if existing is not None:
        if existing.is_active:
            raise OrgRuleError(f"You are already a member of {org.name}.")
        raise OrgRuleError(
            f"Your membership of {org.name} is deactivated. Ask an admin to reactivate it."
        )
    membership = Membership.objects.create(organization=org, user=user, role=invitation.role)
    invitation.accepted_at = timezone.now()
    invitation.save(update_fields=["accepted_at"])
    ctx = OrgContext(org=org, user=user, membership=membership, role=membership.role, acting_as_staff=False)
    audit_record(ctx=ctx, action="invitation.accept", target=user.email, after={"role": membership.role})
    return membership


# --- memberships -------------------------------------------------------------------


@transaction.atomic
def membership_change_role(*, ctx: OrgContext, membership: Membership, role: str) -> Membership:
    _require_manager(ctx)
    _require_target_within_reach(ctx, membership)
    _require_role_within_reach(ctx, role, "make")
    if membership.role == role:
        return membership
    if role != Role.OWNER:
        _require_not_last_owner(membership, "demote")
    before = _membership_state(membership)
    membership.role = role
    membership.save(update_fields=["role"])
    audit_record(
        ctx=ctx, action="membership.change_role", target=membership.user.email,
        before={"role": before["role"]}, after={"role": role},
    )
    return membership


@transaction.atomic
def membership_deactivate(*, ctx: OrgContext, membership: Membership) -> Membership:
    _require_manager(ctx)
    _require_target_within_reach(ctx, membership)
    if not membership.is_active:
        return membership
    _require_not_last_owner(membership, "deactivate")
    membership.is_active = False
    membership.save(update_fields=["is_active"])
    audit_record(
        ctx=ctx, action="membership.deactivate", target=membership.user.email,
        before={"is_active": True}, after={"is_active": False},
    )
    return membership


@transaction.atomic
def membership_reactivate(*, ctx: OrgContext, membership: Membership) -> Membership:
    _require_manager(ctx)
    _require_target_within_reach(ctx, membership)
    if membership.is_active:
        return membership
    membership.is_active = True
    membership.save(update_fields=["is_active"])
    audit_record(
        ctx=ctx, action="membership.reactivate", target=membership.user.email,
        before={"is_active": False}, after={"is_active": True},
    )
    return membership


@transaction.atomic
def membership_remove(*, ctx: OrgContext, membership: Membership) -> None:
    _require_manager(ctx)
    _require_target_within_reach(ctx, membership)
    _require_not_last_owner(membership, "remove")
    before = _membership_state(membership)
    membership.delete()
    audit_record(ctx=ctx, action="membership.remove", target=before["email"], before=before)


# --- organization ------------------------------------------------------------------

ORGANIZATION_FIELDS = (
    "name",
    "require_mfa_for_admins",
    "allowed_salesforce_org_id",
    "log_retention_days",
)


@transaction.atomic
def organization_update(*, ctx: OrgContext, **changes) -> Organization:
    """Change the org's own settings; only the named fields, each audited with its old value."""
    _require_manager(ctx)
    unknown = set(changes) - set(ORGANIZATION_FIELDS)
    if unknown:
        raise OrgRuleError(f"Unknown organization setting(s): {', '.join(sorted(unknown))}.")
    if "name" in changes and not str(changes["name"]).strip():
        raise OrgRuleError("The organization needs a name.")
    org = ctx.org
    before, after = {}, {}
    for field, value in changes.items():
        if getattr(org, field) != value:
            before[field], after[field] = getattr(org, field), value
            setattr(org, field, value)
    if not after:
        return org
    org.full_clean()
    org.save(update_fields=list(after))
    audit_record(ctx=ctx, action="organization.update", target=org.slug, before=before, after=after)
    return org

