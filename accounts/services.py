from allauth.account.internal.flows.email_verification import send_verification_email_to_address
from allauth.account.models import EmailAddress
from django.db import transaction

from .models import User

# Where allauth sends someone after they verify an address (e.g. back to an invitation).
AFTER_VERIFICATION_KEY = "accounts_after_verification"


@transaction.atomic
def user_update_profile(*, user: User, full_name: str, time_zone: str) -> User:
    user.full_name = full_name.strip()
    user.time_zone = time_zone
    user.save(update_fields=["full_name", "time_zone"])
    return user


def email_verification_send(*, request, user: User, email: str) -> bool:
    """Mail allauth's verification link for `email` (one of the user's addresses).

    False when nothing was sent: the address is verified already, or allauth's
    `confirm_email` rate limit holds (one mail per address every few minutes; the
    earlier link still works). allauth itself says "Confirmation e-mail sent" on success.
    """
    address = EmailAddress.objects.filter(user=user, email__iexact=email).first()
    if address is None:
        # Users made outside allauth (createsuperuser, the admin) have no address row yet.
        has_primary = EmailAddress.objects.filter(user=user, primary=True).exists()
        address = EmailAddress.objects.create(
            user=user, email=email.strip().lower(), primary=not has_primary, verified=False
        )
    if address.verified:
        return False
    # allauth's own flow (internal module: it carries the rate limit and the message).
    return send_verification_email_to_address(request, address)


def after_verification_remember(*, request, url: str) -> None:
    """Send the user to `url` (a local path) once they have verified an address."""
    request.session[AFTER_VERIFICATION_KEY] = url
