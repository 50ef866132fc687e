import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError


def _deploy_check():
    call_command("check", deploy=True, fail_level="ERROR")


def test_production_settings_pass_the_deploy_check(settings):
    settings.SECRET_KEY = "a-real-production-secret-" + "k" * 40
    settings.TOKEN_ENCRYPTION_KEYS = ["8yPzBWx4e7nI4y0rJb7UqGv2cY0Q2kXo3VfZsJ1Tq2U="]
    settings.SANDBOX_ENABLED = False
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = ["app.linkpoint.example"]
    settings.SECURE_SSL_REDIRECT = True
    settings.SESSION_COOKIE_SECURE = True
    settings.CSRF_COOKIE_SECURE = True
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_HSTS_PRELOAD = True
    _deploy_check()


@pytest.mark.parametrize(
    ("name", "value", "code"),
    [
        ("SECRET_KEY", "dev-only-insecure-key-change-me-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "linkpoint.E001"),
        ("TOKEN_ENCRYPTION_KEYS", [], "linkpoint.E002"),
        ("SANDBOX_ENABLED", True, "linkpoint.E003"),
    ],
)
def test_unsafe_production_settings_are_refused(settings, name, value, code):
    settings.SECRET_KEY = "a-real-production-secret-" + "k" * 40
    settings.TOKEN_ENCRYPTION_KEYS = ["8yPzBWx4e7nI4y0rJb7UqGv2cY0Q2kXo3VfZsJ1Tq2U="]
    settings.SANDBOX_ENABLED = False
    setattr(settings, name, value)
    with pytest.raises(SystemCheckError, match=code):
        _deploy_check()


@pytest.mark.django_db
def test_sandbox_pages_do_not_exist_unless_enabled(client, settings):
    settings.SANDBOX_ENABLED = False
    url = "/sandbox/login/common/v2.0/.well-known/openid-configuration"
    assert client.get(url).status_code == 404
    settings.SANDBOX_ENABLED = True
    assert client.get(url).status_code == 200
