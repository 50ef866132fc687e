"""Drive the real connect journeys: our views → the sandbox consent pages → our callback."""

from __future__ import annotations

import datetime as dt
import urllib.parse as up

import pytest
from django.utils import timezone

# The browser harness's fixtures (Playwright + system chromium), for test_connect_browser.py.
from tests.browser.conftest import _playwright_browser, browser_login, browser_page  # noqa: F401

DBS = ["default", "sandbox"]


def _query(url: str) -> dict:
    return dict(up.parse_qsl(up.urlsplit(url).query))


class Journey:
    def __init__(self, client, org_slug: str):
        self.client = client
        self.slug = org_slug

    def start(self, provider: str):
        response = self.client.post(f"/o/{self.slug}/connections/{provider}/connect/")
        assert response.status_code == 302, response.content[:500]
        return response["Location"]

    def consent_microsoft(self, authorize_url: str, *, email: str, accept: bool = True):
        assert authorize_url.startswith("/sandbox/login/"), authorize_url
        page = self.client.get(authorize_url)
        assert page.status_code == 200 and b"Permissions requested" in page.content
        answer = self.client.post(authorize_url, {"decision": "accept" if accept else "cancel", "mailbox": email})
        assert answer.status_code == 302, answer.content[:500]
        return answer["Location"]

    def consent_salesforce(self, authorize_url: str, *, email: str, accept: bool = True):
        assert authorize_url.startswith("/sandbox/salesforce/services/oauth2/authorize"), authorize_url
        page = self.client.get(authorize_url)
        assert page.status_code == 200 and b"Allow access?" in page.content
        form = {k: v for k, v in _query(authorize_url).items() if k != "login_hint"}
        form.update({"username": email, "action": "allow" if accept else "deny"})
        answer = self.client.post("/sandbox/salesforce/services/oauth2/authorize", form)
        assert answer.status_code == 302, answer.content[:500]
        return answer["Location"]

    def back(self, callback_url: str):
        assert "/connections/callback/" in callback_url, callback_url
        return self.client.get(callback_url)

    def connect(self, provider: str, *, email: str, accept: bool = True):
        """The whole journey; returns the callback's response (normally a redirect to My connections)."""
        url = self.start(provider)
        if provider == "microsoft":
            return self.back(self.consent_microsoft(url, email=email, accept=accept))
        return self.back(self.consent_salesforce(url, email=email, accept=accept))


@pytest.fixture
def journey(client_for):
    def make(user, org_slug: str = "acme") -> Journey:
        return Journey(client_for(user), org_slug)

    return make


@pytest.fixture
def mailbox():
    from sandbox.microsoft.services import mailbox_ensure

    return mailbox_ensure


@pytest.fixture
def sf_user():
    from sandbox.salesforce.services import sf_user_ensure

    return lambda email, **kw: sf_user_ensure(email=email, **kw)


@pytest.fixture
def connected(journey, mailbox, sf_user):
    """Connect `user` to both sandbox accounts through the real flows; returns the two Connections."""
    from connections.models import Connection

    def make(user, *, org_slug: str = "acme", providers=("microsoft", "salesforce")):
        j = journey(user, org_slug)
        mailbox(user.email)
        sf_user(user.email)
        for provider in providers:
            response = j.connect(provider, email=user.email)
            assert response.status_code == 302 and "/connections/" in response["Location"]
        return {c.provider: c for c in Connection.objects.filter(membership__user=user)}

    return make


class Clock:
    """Moves `timezone.now` (ours and the sandbox's) forward."""

    def __init__(self, monkeypatch):
        self.offset = dt.timedelta()
        real = timezone.now
        monkeypatch.setattr(timezone, "now", lambda: real() + self.offset)

    def advance(self, **kw):
        self.offset += dt.timedelta(**kw)


@pytest.fixture
def clock(monkeypatch):
    return Clock(monkeypatch)


@pytest.fixture
def sleeps():
    """An injectable `sleep` that records the waits instead of waiting."""
    waits: list[float] = []
    waits_sleep = waits.append
    return waits, waits_sleep
