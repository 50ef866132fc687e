"""Shared fixtures: the personas every test speaks of, and skip rules.

Personas (healthchecks style):
- alice: owner of org A ("acme")      - bob: admin of org A
- carol: member of org A              - charlie: member of org B ("globex"), the outsider
- pat: platform staff (Professional Services), no membership anywhere
"""

from __future__ import annotations

import os
import shutil

import pytest

REQUIRE_ALL = os.environ.get("LINKPOINT_REQUIRE_ALL") == "1"
PASSWORD = "correct-horse-battery-staple"


def skip_or_fail(reason: str):
    """Skip on a bare machine; fail in CI, where every dependency must be present."""
    if REQUIRE_ALL:
        pytest.fail(f"required in CI (LINKPOINT_REQUIRE_ALL=1): {reason}")
    pytest.skip(reason)


def chromium_path() -> str | None:
    return os.environ.get("CHROMIUM_PATH") or shutil.which("chromium")


@pytest.fixture(autouse=True)
def _no_real_network(settings):
    """Remote clients go through the sandbox transport in every test."""
    settings.SANDBOX_ENABLED = True
    settings.HTTP_SESSION_FACTORY = "sandbox.transport.sandbox_session"
    settings.MICROSOFT_AUTHORITY_HOST = "https://login.sandbox.test"
    settings.MICROSOFT_GRAPH_URL = "https://graph.sandbox.test/v1.0"
    settings.SALESFORCE_LOGIN_URL = "https://login.salesforce.sandbox.test"
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def fresh_cache(settings):
    """A cache namespace of this test's own, so rate-limit counters (allauth's login and
    verification limits, invitation resends) neither leak in from nor out to other tests.
    Works on locmem and on the Redis that CI's workers share (no flush)."""
    import copy
    import uuid

    caches = copy.deepcopy(settings.CACHES)
    for conf in caches.values():
        conf["KEY_PREFIX"] = f"{conf.get('KEY_PREFIX', '')}-{uuid.uuid4().hex}"
    settings.CACHES = caches


@pytest.fixture
def make_user(django_user_model):
    def make(email: str, *, is_staff: bool = False, full_name: str = "", verified: bool = True):
        from allauth.account.models import EmailAddress

        user = django_user_model.objects.create_user(
            email=email, password=PASSWORD, is_staff=is_staff, full_name=full_name
        )
        # A persona signed up and opened allauth's verification link (mandatory for login).
        EmailAddress.objects.create(user=user, email=user.email, primary=True, verified=verified)
        return user

    return make


@pytest.fixture
def org_a(db):
    from orgs.models import Organization

    return Organization.objects.create(name="Acme", slug="acme")


@pytest.fixture
def org_b(db):
    from orgs.models import Organization

    return Organization.objects.create(name="Globex", slug="globex")


def _member(make_user, org, email, role, full_name=""):
    from orgs.models import Membership

    user = make_user(email, full_name=full_name)
    Membership.objects.create(organization=org, user=user, role=role)
    return user


@pytest.fixture
def alice(make_user, org_a):
    return _member(make_user, org_a, "alice@acme.test", "owner", "Alice Owner")


@pytest.fixture
def bob(make_user, org_a):
    return _member(make_user, org_a, "bob@acme.test", "admin", "Bob Admin")


@pytest.fixture
def carol(make_user, org_a):
    return _member(make_user, org_a, "carol@acme.test", "member", "Carol Member")


@pytest.fixture
def charlie(make_user, org_b):
    return _member(make_user, org_b, "charlie@globex.test", "member", "Charlie Outsider")


@pytest.fixture
def pat(make_user):
    return make_user("pat@linkpoint.test", is_staff=True, full_name="Pat Services")


@pytest.fixture
def personas(alice, bob, carol, charlie, pat):
    return {"alice": alice, "bob": bob, "carol": carol, "charlie": charlie, "pat": pat}


@pytest.fixture
def client_for(client):
    """Log the test client in as a persona: `client_for(alice)`."""

    def login(user):
        client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
        return client

    return login


@pytest.fixture
def staff_admin_client(client):
    """The test client signed in as `user` with a session that passed a second factor, as
    allauth records it after a TOTP code: what the Django admin demands (linkpoint/admin_access.py)."""
    from allauth.account.internal.flows.login import (
        _AUTHENTICATION_METHODS_USER_SESSION_KEY,
        AUTHENTICATION_METHODS_SESSION_KEY,
    )

    def login(user):
        client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
        session = client.session
        session[AUTHENTICATION_METHODS_SESSION_KEY] = [{"method": "mfa", "type": "totp", "at": 0}]
        session[_AUTHENTICATION_METHODS_USER_SESSION_KEY] = str(user.pk)
        session.save()
        return client

    return login
