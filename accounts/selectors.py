from allauth.account.models import EmailAddress


def email_is_verified(*, user, email: str) -> bool:
    """True when `user` proved, through allauth's e-mail verification, that they own `email`."""
    return EmailAddress.objects.filter(user=user, email__iexact=email.strip(), verified=True).exists()
