"""Deployment checks: `manage.py check --deploy` refuses unsafe production settings."""

from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.security, deploy=True)
def linkpoint_deploy_checks(app_configs, **kwargs):
    errors = []
    if settings.SECRET_KEY.startswith("dev-only-insecure-key"):
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
    return errors
