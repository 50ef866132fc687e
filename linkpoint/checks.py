"""Deployment checks: `manage.py check --deploy` refuses unsafe production settings."""

from django.conf import settings
from django.core.checks import Error, Tags, register

from linkpoint.dev_defaults import DEV_OAUTH_CLIENT, DEV_SECRET_KEY_PREFIX

# Backends that print, keep or drop mail: invitations and verification mails never arrive.
DEVELOPMENT_EMAIL_BACKENDS = {
    "django.core.mail.backends.console.EmailBackend",
    "django.core.mail.backends.locmem.EmailBackend",
    "django.core.mail.backends.dummy.EmailBackend",
}


@register(Tags.security, deploy=True)
def linkpoint_deploy_checks(app_configs, **kwargs):
    errors = []
    if settings.SECRET_KEY.startswith(DEV_SECRET_KEY_PREFIX):
        errors.append(
            Error("SECRET_KEY is the development key.", hint="Set SECRET_KEY.", id="linkpoint.E001")
        )
    if not settings.TOKEN_ENCRYPTION_KEYS:
        errors.append(
            Error(
                "TOKEN_ENCRYPTION_KEYS is empty: OAuth tokens would be encrypted with a key "
                "derived from SECRET_KEY.",
                hint="Set TOKEN_ENCRYPTION_KEYS to one or more Fernet keys (first encrypts).",
                id="linkpoint.E002",
            )
        )
    if settings.SANDBOX_ENABLED:
        errors.append(
            Error(
                "SANDBOX_ENABLED is on: the Microsoft/Salesforce emulators must never run in production.",
                id="linkpoint.E003",
            )
        )
    if settings.EMAIL_BACKEND in DEVELOPMENT_EMAIL_BACKENDS:
        errors.append(
            Error(
                f"EMAIL_BACKEND is {settings.EMAIL_BACKEND}: invitation and verification "
                "e-mails would never reach anyone.",
                hint="Set EMAIL_BACKEND (e.g. django.core.mail.backends.smtp.EmailBackend) "
                "and EMAIL_HOST.",
                id="linkpoint.E004",
            )
        )
    unset_or_dev = [
        name
        for name, dev_value in DEV_OAUTH_CLIENT.items()
        if not str(getattr(settings, name, "")).strip() or getattr(settings, name) == dev_value
    ]
    if unset_or_dev:
        # Names only: the values are secrets (or the sandbox's, which is no better).
        errors.append(
            Error(
                f"{', '.join(unset_or_dev)}: unset or the development client's value.",
                hint="Set them to the client id and secret of your app registration in "
                "Microsoft Entra and of your Salesforce connected app.",
                id="linkpoint.E005",
            )
        )
    return errors
