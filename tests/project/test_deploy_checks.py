import runpy
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from linkpoint.dev_defaults import DEV_OAUTH_CLIENT

SETTINGS_FILE = Path(__file__).resolve().parents[2] / "linkpoint" / "settings.py"


def _deploy_check():
    call_command("check", deploy=True, fail_level="ERROR")


@pytest.fixture
def production(settings):
    """Settings a real deployment would have; each test then spoils one of them."""
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
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.MICROSOFT_CLIENT_ID = "0b7a4c1e-2f3d-4e5a-9b8c-7d6e5f4a3b2c"
    settings.MICROSOFT_CLIENT_SECRET = "prod~ms~" + "s" * 32
    settings.SALESFORCE_CLIENT_ID = "3MVG9prod" + "c" * 40
    settings.SALESFORCE_CLIENT_SECRET = "F" * 64
    return settings


def test_production_settings_pass_the_deploy_check(production):
    _deploy_check()


@pytest.mark.parametrize(
    ("name", "value", "code"),
    [
        (
            "SECRET_KEY",
            "dev-only-insecure-key-change-me-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            "linkpoint.E001",
        ),
        ("TOKEN_ENCRYPTION_KEYS", [], "linkpoint.E002"),
        ("SANDBOX_ENABLED", True, "linkpoint.E003"),
        ("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend", "linkpoint.E004"),
        ("EMAIL_BACKEND", "django.core.mail.backends.locmem.EmailBackend", "linkpoint.E004"),
        ("EMAIL_BACKEND", "django.core.mail.backends.dummy.EmailBackend", "linkpoint.E004"),
        *[(name, value, "linkpoint.E005") for name, value in DEV_OAUTH_CLIENT.items()],
        ("MICROSOFT_CLIENT_SECRET", "", "linkpoint.E005"),
        ("SALESFORCE_CLIENT_ID", "  ", "linkpoint.E005"),
    ],
)
def test_unsafe_production_settings_are_refused(production, name, value, code):
    setattr(production, name, value)
    with pytest.raises(SystemCheckError, match=code) as refused:
        _deploy_check()
    assert name in str(refused.value)
    # The development values never appear in the message (secrets stay out of logs).
    assert "linkpoint-dev-consumer-secret" not in str(refused.value)


def test_the_development_defaults_are_what_a_bare_environment_gets(monkeypatch):
    for name in DEV_OAUTH_CLIENT:
        monkeypatch.delenv(name, raising=False)
    loaded = runpy.run_path(str(SETTINGS_FILE))
    assert {name: loaded[name] for name in DEV_OAUTH_CLIENT} == DEV_OAUTH_CLIENT


def test_static_root_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("STATIC_ROOT", raising=False)
    assert (
        Path(runpy.run_path(str(SETTINGS_FILE))["STATIC_ROOT"])
        == SETTINGS_FILE.parents[1] / "staticfiles"
    )
    monkeypatch.setenv("STATIC_ROOT", str(tmp_path / "collected"))
    assert Path(runpy.run_path(str(SETTINGS_FILE))["STATIC_ROOT"]) == tmp_path / "collected"


@pytest.mark.django_db
def test_sandbox_pages_do_not_exist_unless_enabled(client, settings):
    settings.SANDBOX_ENABLED = False
    url = "/sandbox/login/common/v2.0/.well-known/openid-configuration"
    assert client.get(url).status_code == 404
    settings.SANDBOX_ENABLED = True
    assert client.get(url).status_code == 200
