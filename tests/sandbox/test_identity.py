"""msal, unchanged, against the sandbox identity platform: auth-code flow, silent refresh, failures."""

import datetime as dt
import urllib.parse as up
from unittest import mock

import msal
import pytest
from django.urls import include, path
from django.utils import timezone

from sandbox.accounting import api_counts, api_counts_reset
from sandbox.microsoft.services import mailbox_ensure, token_revoke_all
from sandbox.transport import sandbox_session

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])

# The consent page is clicked in a browser on the dev server under /sandbox/login/.
urlpatterns = [path("sandbox/", include("sandbox.urls"))]
SCOPES = ["Calendars.ReadWrite", "Contacts.ReadWrite", "Tasks.ReadWrite", "User.Read"]
REDIRECT = "https://app.linkpoint.test/connections/microsoft/callback"


@pytest.fixture(autouse=True)
def _registered(settings):
    """This module's app registration lists REDIRECT (the emulator refuses any other)."""
    settings.SANDBOX_OAUTH_REDIRECT_URIS = [REDIRECT]


@pytest.fixture
def mailbox():
    return mailbox_ensure("dana@contoso.test", "Dana Scully")


@pytest.fixture
def app(mailbox, settings):
    return msal.ConfidentialClientApplication(
        settings.MICROSOFT_CLIENT_ID,
        client_credential=settings.MICROSOFT_CLIENT_SECRET,
        authority=f"https://login.sandbox.test/{mailbox.tenant.tenant_id}",
        http_client=sandbox_session(),
        instance_discovery=False,
        token_cache=msal.SerializableTokenCache(),
    )


def consent(client, flow, *, decision="accept", email="dana@contoso.test"):
    """What the browser does: open the (rewritten) authorize URL, click a button, follow to the callback."""
    parts = up.urlsplit(flow["auth_uri"])
    assert parts.netloc == "login.sandbox.test"
    local = f"/sandbox/login{parts.path}?{parts.query}"
    page = client.get(local)
    assert page.status_code == 200
    assert b"Dana Scully" in page.content
    answer = client.post(local, {"mailbox": email, "decision": decision})
    assert answer.status_code == 302
    location = answer["Location"]
    assert location.startswith(REDIRECT + "?")
    return dict(up.parse_qsl(up.urlsplit(location).query))


@pytest.mark.urls(__name__)
def test_auth_code_flow_and_silent_refresh(app, client, mailbox):
    flow = app.initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT)
    auth_response = consent(client, flow)
    assert set(auth_response) >= {"code", "state", "client_info", "session_state"}
    result = app.acquire_token_by_auth_code_flow(flow, auth_response)
    assert "access_token" in result, result
    assert result["id_token_claims"]["preferred_username"] == "dana@contoso.test"
    assert result["id_token_claims"]["oid"] == str(mailbox.object_id)
    assert result["expires_in"] == 3599
    [account] = app.get_accounts()
    assert account["username"] == "dana@contoso.test"

    api_counts_reset()
    cached = app.acquire_token_silent(SCOPES, account=account)
    assert cached["access_token"] == result["access_token"]
    assert api_counts(side="outlook") == 0  # the scope echo matches: no refresh needed

    # An hour later the cached token is past expiry: msal redeems the refresh token.
    later = timezone.now() + dt.timedelta(seconds=3700)
    with mock.patch("time.time", return_value=later.timestamp()), \
         mock.patch("django.utils.timezone.now", return_value=later):
        refreshed = app.acquire_token_silent(SCOPES, account=account)
    assert refreshed and refreshed["access_token"] != result["access_token"]
    assert api_counts(side="outlook", family="identity-token") == 1

    graph = sandbox_session()
    with mock.patch("django.utils.timezone.now", return_value=later):
        old = graph.get("https://graph.sandbox.test/v1.0/me",
                        headers={"Authorization": f"Bearer {result['access_token']}"})
        new = graph.get("https://graph.sandbox.test/v1.0/me",
                        headers={"Authorization": f"Bearer {refreshed['access_token']}"})
    assert old.status_code == 401
    assert old.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert new.status_code == 200
    assert new.json()["userPrincipalName"] == "dana@contoso.test"


@pytest.mark.urls(__name__)
def test_cancel_on_the_consent_page_redirects_with_access_denied(app, client):
    flow = app.initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT)
    auth_response = consent(client, flow, decision="cancel")
    assert auth_response["error"] == "access_denied"
    assert "AADSTS65004" in auth_response["error_description"]
    result = app.acquire_token_by_auth_code_flow(flow, auth_response)
    assert result["error"] == "access_denied"


@pytest.mark.urls(__name__)
def test_a_code_is_single_use(app, client):
    flow = app.initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT)
    auth_response = consent(client, flow)
    assert "access_token" in app.acquire_token_by_auth_code_flow(dict(flow), auth_response)
    again = app.acquire_token_by_auth_code_flow(dict(flow), auth_response)
    assert again["error"] == "invalid_grant"
    assert 54005 in again["error_codes"]


@pytest.mark.urls(__name__)
def test_a_wrong_pkce_verifier_is_refused(app, client):
    flow = app.initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT)
    auth_response = consent(client, flow)
    flow["code_verifier"] = "x" * 43
    result = app.acquire_token_by_auth_code_flow(flow, auth_response)
    assert result["error"] == "invalid_grant"
    assert 50148 in result["error_codes"]


@pytest.mark.urls(__name__)
def test_revoked_consent_makes_the_silent_refresh_fail(app, client, mailbox):
    flow = app.initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT)
    app.acquire_token_by_auth_code_flow(flow, consent(client, flow))
    [account] = app.get_accounts()
    token_revoke_all(mailbox)
    result = app.acquire_token_silent_with_error(SCOPES, account=account, force_refresh=True)
    assert result["error"] == "invalid_grant"
    assert 70008 in result["error_codes"]


def test_openid_configuration_and_token_errors(mailbox, settings):
    session = sandbox_session()
    tenant = mailbox.tenant.tenant_id
    meta = session.get(f"https://login.sandbox.test/{tenant}/v2.0/.well-known/openid-configuration").json()
    assert meta["token_endpoint"] == f"https://login.sandbox.test/{tenant}/oauth2/v2.0/token"
    assert meta["issuer"] == f"https://login.sandbox.test/{tenant}/v2.0"
    unknown = session.get("https://login.sandbox.test/00000000-0000-0000-0000-000000000000/v2.0/.well-known/openid-configuration")
    assert unknown.status_code == 400 and unknown.json()["error"] == "invalid_tenant"
    bad_secret = session.post(meta["token_endpoint"], data={
        "client_id": settings.MICROSOFT_CLIENT_ID, "client_secret": "nope", "grant_type": "refresh_token",
        "refresh_token": "x"})
    assert bad_secret.status_code == 401
    assert bad_secret.json()["error"] == "invalid_client"
    assert set(bad_secret.json()) >= {"error_description", "error_codes", "timestamp", "trace_id", "correlation_id"}
