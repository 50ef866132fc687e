"""Who may use the Django admin: active staff whose session passed a second factor.

The admin reaches every organization's data, so a password alone never opens it: a staff
member without an authenticator is sent to set one up, one with an authenticator whose
session did not use it (an old session, a session opened another way) is asked for a code.
Org pages ask the same only where the org requires it (orgs/access.py); the admin is the
platform's own door and always asks.
"""

from __future__ import annotations

from urllib.parse import urlencode

from allauth.mfa.models import Authenticator
from django.contrib import messages
from django.shortcuts import redirect
from django.urls import reverse

from orgs.access import session_passed_mfa


def _is_staff(user) -> bool:
    return bool(user.is_authenticated and user.is_active and user.is_staff)


def staff_session_passed_mfa(request) -> bool:
    return _is_staff(request.user) and session_passed_mfa(request, request.user)


def _mfa_step(request):
    if Authenticator.objects.filter(user=request.user, type=Authenticator.Type.TOTP).exists():
        messages.warning(request, "The admin needs your second factor: enter the code from your authenticator app.")
        back = request.GET.get("next") or reverse("admin:index")
        if not back.startswith("/") or back.startswith("//"):
            back = reverse("admin:index")
        return redirect(f"{reverse('mfa_reauthenticate')}?{urlencode({'next': back})}")
    messages.warning(
        request,
        "The admin needs two-factor authentication: set up an authenticator app, then open the admin again.",
    )
    return redirect(reverse("mfa_activate_totp"))


def install(site, login_view) -> None:
    """Gate `site` (an AdminSite): permission needs the second factor; its login page sends
    a signed-in staff member who has not given one to the step that is missing."""
    base_permission = site.has_permission

    def has_permission(request) -> bool:
        return base_permission(request) and session_passed_mfa(request, request.user)

    def login(request, *args, **kwargs):
        if _is_staff(request.user) and not session_passed_mfa(request, request.user):
            return _mfa_step(request)
        return login_view(request, *args, **kwargs)

    site.has_permission = has_permission
    site.login = login
