"""The Salesforce OAuth web-server flow with PKCE, through the browser page and requests."""

import base64
import datetime as dt
import hashlib
import secrets
import urllib.parse as up
from unittest import mock

import pytest
from django.conf import settings
from django.utils import timezone
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceExpiredSession

from sandbox.salesforce.services import sf_user_ensure
from sandbox.transport import sandbox_session

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])

LOGIN = "https://login.salesforce.sandbox.test"
REDIRECT = "https://app.linkpoint.test/connections/salesforce/callback"


@pytest.fixture(autouse=True)
def _registered(settings):
    """This module's app registration lists REDIRECT (the emulator refuses any other)."""
    settings.SANDBOX_OAUTH_REDIRECT_URIS = [REDIRECT]


def _pkce():
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def _authorize_params(challenge, state="st-1"):
    return {
        "response_type": "code", "client_id": settings.SALESFORCE_CLIENT_ID, "redirect_uri": REDIRECT,
        "state": state, "scope": "api refresh_token id", "code_challenge": challenge,
        "code_challenge_method": "S256",
    }


def _consent(client, challenge, username="dana@initech.test", action="allow"):
    """Drive the consent page on the dev-server path, as a person's browser does."""
    url = "/sandbox/salesforce/services/oauth2/authorize?" + up.urlencode(_authorize_params(challenge))
    page = client.get(url)
    assert page.status_code == 200
    assert b"Allow access?" in page.content
    assert b'action="authorize"' in page.content  # relative: works under /sandbox/ and on the sandbox host
    answer = client.post("/sandbox/salesforce/services/oauth2/authorize",
                         {**_authorize_params(challenge), "username": username, "action": action})
    assert answer.status_code == 302
    location = answer["Location"]
    assert location.startswith(REDIRECT + "?")
    return up.parse_qs(up.urlsplit(location).query)


def _exchange(session, code, verifier):
    return session.post(f"{LOGIN}/services/oauth2/token", data={
        "grant_type": "authorization_code", "code": code, "client_id": settings.SALESFORCE_CLIENT_ID,
        "client_secret": settings.SALESFORCE_CLIENT_SECRET, "redirect_uri": REDIRECT, "code_verifier": verifier,
    })


def test_web_server_flow_with_pkce_gives_a_working_session_without_expires_in(client):
    verifier, challenge = _pkce()
    query = _consent(client, challenge)
    assert query["state"] == ["st-1"]
    session = sandbox_session()
    response = _exchange(session, query["code"][0], verifier)
    assert response.status_code == 200
    body = response.json()
    assert "expires_in" not in body
    assert body["token_type"] == "Bearer"
    assert body["refresh_token"]
    assert body["issued_at"].isdigit() and len(body["issued_at"]) == 13  # epoch milliseconds as a string
    user = sf_user_ensure(email="dana@initech.test")
    assert body["id"] == f"{LOGIN}/id/{user.org.org_id}/{user.user_id}"
    assert body["instance_url"] == "https://initech.my.salesforce.sandbox.test"
    assert base64.b64decode(body["signature"])

    ident = session.get(body["id"], headers={"Authorization": f"Bearer {body['access_token']}"}).json()
    assert (ident["username"], ident["user_id"], ident["organization_id"]) == (
        "dana@initech.test", user.user_id, user.org.org_id)
    info = session.get(f"{LOGIN}/services/oauth2/userinfo",
                       headers={"Authorization": f"Bearer {body['access_token']}"}).json()
    assert info["preferred_username"] == "dana@initech.test"

    sf = Salesforce(instance_url=body["instance_url"], session_id=body["access_token"], session=session,
                    version="62.0")
    assert sf.query("SELECT Id, Username FROM User")["records"][0]["Username"] == "dana@initech.test"


def test_code_is_single_use_and_bound_to_the_verifier(client):
    verifier, challenge = _pkce()
    code = _consent(client, challenge)["code"][0]
    session = sandbox_session()
    wrong = _exchange(session, code, "not-the-verifier-" + "x" * 40)
    assert wrong.status_code == 400
    assert wrong.json() == {"error": "invalid_grant", "error_description": "invalid code verifier"}
    assert _exchange(session, code, verifier).status_code == 200
    again = _exchange(session, code, verifier)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


def test_wrong_client_secret_and_client_id_are_refused(client):
    verifier, challenge = _pkce()
    code = _consent(client, challenge)["code"][0]
    session = sandbox_session()
    bad = session.post(f"{LOGIN}/services/oauth2/token", data={
        "grant_type": "authorization_code", "code": code, "client_id": settings.SALESFORCE_CLIENT_ID,
        "client_secret": "nope", "redirect_uri": REDIRECT, "code_verifier": verifier})
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_client"
    page = client.get("/sandbox/salesforce/services/oauth2/authorize?" + up.urlencode(
        {**_authorize_params(challenge), "client_id": "someone-else"}))
    assert page.status_code == 400
    assert b"invalid_client_id" in page.content


def test_deny_redirects_with_access_denied(client):
    _, challenge = _pkce()
    query = _consent(client, challenge, action="deny")
    assert query["error"] == ["access_denied"]
    assert query["state"] == ["st-1"]
    assert "code" not in query


def test_refresh_grant_returns_a_new_session_without_a_new_refresh_token(client):
    verifier, challenge = _pkce()
    session = sandbox_session()
    first = _exchange(session, _consent(client, challenge)["code"][0], verifier).json()
    refreshed = session.post(f"{LOGIN}/services/oauth2/token", data={
        "grant_type": "refresh_token", "refresh_token": first["refresh_token"],
        "client_id": settings.SALESFORCE_CLIENT_ID, "client_secret": settings.SALESFORCE_CLIENT_SECRET}).json()
    assert refreshed["access_token"] != first["access_token"]
    assert "refresh_token" not in refreshed
    assert "expires_in" not in refreshed
    assert refreshed["instance_url"] == first["instance_url"]


def test_sessions_expire_after_two_idle_hours_and_refresh_revives_access(client):
    verifier, challenge = _pkce()
    session = sandbox_session()
    tokens = _exchange(session, _consent(client, challenge)["code"][0], verifier).json()
    sf = Salesforce(instance_url=tokens["instance_url"], session_id=tokens["access_token"], session=session,
                    version="62.0")
    sf.query("SELECT Id FROM Contact")
    later = timezone.now() + dt.timedelta(hours=2, minutes=1)
    with mock.patch("django.utils.timezone.now", return_value=later):
        with pytest.raises(SalesforceExpiredSession) as caught:
            sf.query("SELECT Id FROM Contact")
        assert caught.value.content[0]["errorCode"] == "INVALID_SESSION_ID"
        fresh = session.post(f"{LOGIN}/services/oauth2/token", data={
            "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
            "client_id": settings.SALESFORCE_CLIENT_ID, "client_secret": settings.SALESFORCE_CLIENT_SECRET}).json()
        sf2 = Salesforce(instance_url=fresh["instance_url"], session_id=fresh["access_token"], session=session,
                         version="62.0")
        assert sf2.query("SELECT Id FROM Contact")["totalSize"] == 0


def test_revoking_the_refresh_token_ends_its_sessions(client):
    verifier, challenge = _pkce()
    session = sandbox_session()
    tokens = _exchange(session, _consent(client, challenge)["code"][0], verifier).json()
    refreshed = session.post(f"{LOGIN}/services/oauth2/token", data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
        "client_id": settings.SALESFORCE_CLIENT_ID, "client_secret": settings.SALESFORCE_CLIENT_SECRET}).json()
    assert session.post(f"{LOGIN}/services/oauth2/revoke", data={"token": tokens["refresh_token"]}).status_code == 200
    for access in (tokens["access_token"], refreshed["access_token"]):
        sf = Salesforce(instance_url=tokens["instance_url"], session_id=access, session=session, version="62.0")
        with pytest.raises(SalesforceExpiredSession):
            sf.query("SELECT Id FROM Contact")
    again = session.post(f"{LOGIN}/services/oauth2/token", data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
        "client_id": settings.SALESFORCE_CLIENT_ID, "client_secret": settings.SALESFORCE_CLIENT_SECRET})
    assert again.status_code == 400
    assert again.json() == {"error": "invalid_grant", "error_description": "expired access/refresh token"}
