"""The emulated authorize endpoints never send a browser to a redirect_uri the app did not register.

Issue 10: both consent pages redirected (with a fresh code after Accept) to whatever
`redirect_uri` the link named, so a crafted sign-in link delivered a member's code to
an attacker's site. Entra shows AADSTS50011, Salesforce `redirect_uri_mismatch`.
"""

import urllib.parse as up

import pytest
from django.conf import settings as django_settings
from django.urls import include, path

from sandbox.microsoft.models import AuthCode
from sandbox.microsoft.services import mailbox_ensure
from sandbox.registration import redirect_uri_registered
from sandbox.salesforce.models import SfAuthCode
from sandbox.salesforce.services import sf_user_ensure

pytestmark = [pytest.mark.django_db(databases=["default", "sandbox"]), pytest.mark.urls(__name__)]
urlpatterns = [path("sandbox/", include("sandbox.urls"))]

EVIL = "https://evil.example/steal"
MS_AUTHORIZE = "/sandbox/login/organizations/oauth2/v2.0/authorize"
SF_AUTHORIZE = "/sandbox/salesforce/services/oauth2/authorize"


def _ms_params(redirect_uri):
    return {"client_id": django_settings.MICROSOFT_CLIENT_ID, "response_type": "code", "redirect_uri": redirect_uri,
            "scope": "openid offline_access Calendars.ReadWrite", "state": "s1", "response_mode": "query",
            "code_challenge": "x" * 43, "code_challenge_method": "S256"}


def _sf_params(redirect_uri):
    return {"response_type": "code", "client_id": django_settings.SALESFORCE_CLIENT_ID, "redirect_uri": redirect_uri,
            "state": "s1", "scope": "api refresh_token", "code_challenge": "x" * 43, "code_challenge_method": "S256"}


@pytest.fixture
def accounts():
    mailbox_ensure("dana@contoso.test")
    sf_user_ensure(email="dana@contoso.test")


@pytest.mark.parametrize("redirect_uri", [EVIL, "http://testserver.evil.example/connections/callback/microsoft/",
                                          "http://testserver/connections/callback/salesforce/", "javascript:alert(1)"])
def test_microsoft_shows_aadsts50011_instead_of_redirecting(client, accounts, redirect_uri):
    url = MS_AUTHORIZE + "?" + up.urlencode(_ms_params(redirect_uri))
    page = client.get(url)
    assert page.status_code == 400 and not page.has_header("Location")
    assert "AADSTS50011" in page.content.decode()
    # Neither Accept nor an unsupported response_type (which Entra answers on the redirect) leaves the page.
    accept = client.post(url, {"decision": "accept", "mailbox": "dana@contoso.test"})
    assert accept.status_code == 400 and not accept.has_header("Location")
    odd = client.get(MS_AUTHORIZE + "?" + up.urlencode({**_ms_params(redirect_uri), "response_type": "token"}))
    assert odd.status_code == 400 and not odd.has_header("Location")
    assert AuthCode.objects.count() == 0


@pytest.mark.parametrize("redirect_uri", [EVIL, "http://testserver/connections/callback/microsoft/",
                                          "https://testserver/connections/callback/salesforce/x"])
def test_salesforce_shows_redirect_uri_mismatch_instead_of_redirecting(client, accounts, redirect_uri):
    params = _sf_params(redirect_uri)
    page = client.get(SF_AUTHORIZE + "?" + up.urlencode(params))
    assert page.status_code == 400 and not page.has_header("Location")
    assert "redirect_uri_mismatch" in page.content.decode()
    allow = client.post(SF_AUTHORIZE, {**params, "username": "dana@contoso.test", "action": "allow"})
    assert allow.status_code == 400 and not allow.has_header("Location")
    deny = client.post(SF_AUTHORIZE, {**params, "action": "deny"})
    assert deny.status_code == 400 and not deny.has_header("Location")
    assert SfAuthCode.objects.count() == 0


@pytest.mark.parametrize(("provider", "authorize", "params", "form"), [
    ("microsoft", MS_AUTHORIZE, _ms_params, {"decision": "accept", "mailbox": "dana@contoso.test"}),
    ("salesforce", SF_AUTHORIZE, _sf_params, {"username": "dana@contoso.test", "action": "allow"}),
])
def test_the_registered_callback_still_gets_its_code(client, accounts, provider, authorize, params, form):
    callback = f"http://testserver/connections/callback/{provider}/"
    query = params(callback)
    if provider == "microsoft":
        answer = client.post(authorize + "?" + up.urlencode(query), form)
    else:
        answer = client.post(authorize, {**query, **form})
    assert answer.status_code == 302
    assert answer["Location"].startswith(callback + "?") and "code=" in answer["Location"]


def test_the_default_registration(settings):
    settings.SITE_URL = "http://127.0.0.1:8000"
    settings.ALLOWED_HOSTS = ["app.linkpoint.example", "localhost", ".wild.example", "*"]
    ok = [
        ("microsoft", "http://127.0.0.1:8000/connections/callback/microsoft/"),
        ("microsoft", "https://app.linkpoint.example/connections/callback/microsoft/"),
        # loopback: any port, as Entra treats localhost redirect URIs (the dev server's port varies)
        ("salesforce", "http://localhost:53121/connections/callback/salesforce/"),
        ("salesforce", "http://127.0.0.1:9/connections/callback/salesforce/"),
    ]
    refused = [
        ("microsoft", "http://app.linkpoint.example/connections/callback/microsoft/"),  # http off loopback
        ("microsoft", "https://app.linkpoint.example/connections/callback/salesforce/"),  # the other provider's
        ("microsoft", "https://app.linkpoint.example:8443/connections/callback/microsoft/"),
        ("salesforce", "https://x.wild.example/connections/callback/salesforce/"),  # wildcards register nothing
        ("salesforce", "http://localhost:53121/connections/callback/salesforce/?next=//evil.example"),
        ("salesforce", ""),
    ]
    assert [redirect_uri_registered(p, u) for p, u in ok] == [True] * len(ok)
    assert [redirect_uri_registered(p, u) for p, u in refused] == [False] * len(refused)
    settings.SANDBOX_OAUTH_REDIRECT_URIS = ["https://only.example/cb"]
    assert redirect_uri_registered("microsoft", "https://only.example/cb")
    assert not redirect_uri_registered("microsoft", "http://127.0.0.1:8000/connections/callback/microsoft/")
