"""The one place tenancy is resolved.

Every org-scoped view is decorated with `org_view(min_role=...)`. It resolves
`/o/<org_slug>/...` to the organization and the caller's standing in it:

- an outsider (no active membership, not staff) gets 404, exactly like a slug
  that does not exist, so org names cannot be probed;
- a member whose role is below `min_role` gets 403;
- platform staff without a membership act as Professional Services with the
  rights of an owner; `request.org_ctx.acting_as_staff` is set and every write
  they make is audited under their own name;
- when the org requires MFA for admins, an owner/admin (or staff acting as
  owner) must have passed MFA *in this session* (allauth records the methods a
  session authenticated with): without an authenticator app they are sent to
  enrol, with one they are asked for a code. An authenticator existing proves
  nothing about a session that signed in some other way.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from allauth.account.authentication import get_authentication_records
from allauth.mfa.models import Authenticator
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode
from django_htmx.http import HttpResponseClientRedirect

from .models import ROLE_RANK, Membership, Organization, Role


@dataclass(frozen=True)
class OrgContext:
    org: Organization
    user: object
    membership: Membership | None
    role: str
    acting_as_staff: bool

    @property
    def rank(self) -> int:
        return ROLE_RANK[self.role]

    def has_role(self, min_role: str) -> bool:
        return self.rank >= ROLE_RANK[min_role]

    @property
    def is_admin(self) -> bool:
        return self.has_role(Role.ADMIN)


def resolve_org_context(user, org_slug: str) -> OrgContext:
    """Return the caller's context in the org, or raise Http404 for outsiders."""
    if not user.is_authenticated:
        raise Http404
    membership = (
        Membership.objects.select_related("organization")
        .filter(organization__slug=org_slug, user=user, is_active=True)
        .first()
    )
    if membership is not None:
        return OrgContext(
            org=membership.organization,
            user=user,
            membership=membership,
            role=membership.role,
            acting_as_staff=False,
        )
    if user.is_staff and user.is_active:
        org = Organization.objects.filter(slug=org_slug).first()
        if org is not None:
            return OrgContext(
                org=org, user=user, membership=None, role=Role.OWNER, acting_as_staff=True
            )
    raise Http404


def session_passed_mfa(request, user) -> bool:
    """True when this very session completed a second factor for `user`."""
    return any(
        record.get("method") == "mfa" for record in get_authentication_records(request, user)
    )


def mfa_step_required(request, ctx: OrgContext) -> str | None:
    """What the caller must do before this org's pages: "enrol", "verify" or nothing."""
    if not (ctx.org.require_mfa_for_admins and ctx.is_admin):
        return None
    if session_passed_mfa(request, ctx.user):
        return None
    has_totp = Authenticator.objects.filter(user=ctx.user, type=Authenticator.Type.TOTP).exists()
    return "verify" if has_totp else "enrol"


def _send_to_mfa(request, ctx: OrgContext, step: str):
    if step == "enrol":
        messages.warning(
            request,
            f"{ctx.org.name} requires owners and admins to use two-factor authentication. "
            "Set up an authenticator app to continue.",
        )
        url = reverse("mfa_activate_totp")
    else:
        messages.warning(
            request,
            f"{ctx.org.name} requires owners and admins to use two-factor authentication. "
            "Enter the code from your authenticator app to continue.",
        )
        # A fragment or a form post cannot be replayed by a redirect; come back to the org instead.
        plain_get = request.method == "GET" and not getattr(request, "htmx", False)
        back = request.get_full_path() if plain_get else reverse("orgs:home", args=[ctx.org.slug])
        url = f"{reverse('mfa_reauthenticate')}?{urlencode({'next': back})}"
    if getattr(request, "htmx", False):
        # A plain redirect would be swapped into the page fragment.
        return HttpResponseClientRedirect(url)
    return redirect(url)


def org_view(min_role: str = Role.MEMBER):
    """Decorate a view taking `org_slug`; sets `request.org_ctx` and checks the role."""

    def decorator(view):
        @login_required
        @functools.wraps(view)
        def wrapper(request, org_slug: str, *args, **kwargs):
            ctx = resolve_org_context(request.user, org_slug)
            if not ctx.has_role(min_role):
                raise PermissionDenied("Your role in this organization does not allow this.")
            step = mfa_step_required(request, ctx)
            if step is not None:
                return _send_to_mfa(request, ctx, step)
            request.org_ctx = ctx
            return view(request, *args, **kwargs)

        wrapper.org_min_role = min_role
        return wrapper

    return decorator
