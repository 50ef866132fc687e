"""Receivers for allauth's signals (kept here so allauth stays the one auth flow)."""

from allauth.account.internal.flows.login import record_authentication
from allauth.mfa.models import Authenticator
from allauth.mfa.signals import authenticator_added
from django.dispatch import receiver


@receiver(authenticator_added)
def record_mfa_on_totp_activation(sender, request, user, authenticator, **kwargs):
    """Activating TOTP checks a code from the new app: this session has passed MFA.

    Without this record an org that requires MFA would ask the admin who just
    enrolled for a second code straight away. allauth has no public way to add a
    record, hence its internal helper (allauth is pinned below 66 in pyproject).
    """
    if request is None or authenticator.type != Authenticator.Type.TOTP:
        return
    record_authentication(request, user, "mfa", id=authenticator.pk, type=authenticator.type,
                          enrolled=True)
