"""The OAuth protocol pieces: msal for Microsoft, our own web-server flow for Salesforce.

All HTTP goes through the Session from settings (http.make_session), so the
sandbox and production differ only in configuration.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import urllib.parse as up
from dataclasses import dataclass

import msal
import requests
from django.conf import settings

# msal adds openid, profile and offline_access itself and refuses them as input
# (reserved scopes), so `offline_access` from the product's scope list is implied here.
GRAPH_SCOPES = ["Calendars.ReadWrite", "Contacts.ReadWrite", "Tasks.ReadWrite", "User.Read"]
SALESFORCE_SCOPES = "api id refresh_token"

# Browsers cannot reach the sandbox's https hosts: those exist only inside the
# in-process transport. The dev server serves the same consent pages under
# /sandbox/..., so authorize URLs are rewritten before a browser is sent there.
DEFAULT_SANDBOX_BROWSER_PREFIXES = (
    ("https://login.sandbox.test/", "/sandbox/login/"),
    ("https://login.salesforce.sandbox.test/", "/sandbox/salesforce/"),
)


def browser_url(url: str) -> str:
    if not settings.SANDBOX_ENABLED:
        return url
    prefixes = getattr(settings, "SANDBOX_BROWSER_PREFIXES", DEFAULT_SANDBOX_BROWSER_PREFIXES)
    for remote, local in prefixes:
        if url.startswith(remote):
            return local + url[len(remote) :]
    return url


class OAuthError(Exception):
    """An OAuth endpoint said no: `error` is the protocol code, `description` plain words."""

    def __init__(self, error: str, description: str = "", *, status: int | None = None):
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status


# --- Microsoft -------------------------------------------------------------------------------


def msal_app(session: requests.Session, cache: msal.SerializableTokenCache | None = None):
    return msal.ConfidentialClientApplication(
        settings.MICROSOFT_CLIENT_ID,
        client_credential=settings.MICROSOFT_CLIENT_SECRET,
        authority=f"{settings.MICROSOFT_AUTHORITY_HOST}/{settings.MICROSOFT_TENANT}",
        http_client=session,
        # Otherwise msal asks login.microsoftonline.com about any host it does not know
        # (the sandbox's); production needs no discovery for the well-known host either.
        instance_discovery=False,
        token_cache=cache,
    )


def msal_cache(serialized: str | None) -> msal.SerializableTokenCache:
    cache = msal.SerializableTokenCache()
    if serialized:
        cache.deserialize(serialized)
    return cache


# --- Salesforce ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pkce:
    verifier: str
    challenge: str

    @classmethod
    def new(cls) -> Pkce:
        verifier = secrets.token_urlsafe(64)[:86]
        digest = hashlib.sha256(verifier.encode()).digest()
        return cls(verifier, base64.urlsafe_b64encode(digest).decode().rstrip("="))


def _sf_url(path: str) -> str:
    return f"{settings.SALESFORCE_LOGIN_URL.rstrip('/')}/services/oauth2/{path}"


def sf_authorize_url(*, redirect_uri: str, state: str, code_challenge: str) -> str:
    query = up.urlencode({
        "response_type": "code",
        "client_id": settings.SALESFORCE_CLIENT_ID,
        "redirect_uri": redirect_uri,
        "scope": SALESFORCE_SCOPES,
        "state": state,
        "code_challenge": code_challenge,
        "code_challenge_method": "S256",
    })
    return f"{_sf_url('authorize')}?{query}"


def _sf_token_post(session: requests.Session, data: dict) -> dict:
    response = session.post(
        _sf_url("token"),
        data={
            **data,
            "client_id": settings.SALESFORCE_CLIENT_ID,
            "client_secret": settings.SALESFORCE_CLIENT_SECRET,
        },
        headers={"Accept": "application/json"},
    )
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code >= 500:
        raise OAuthError("server_error", f"Salesforce answered HTTP {response.status_code}",
                         status=response.status_code)
    if response.status_code != 200 or "access_token" not in body:
        raise OAuthError(
            str(body.get("error") or f"http_{response.status_code}"),
            str(body.get("error_description") or ""),
            status=response.status_code,
        )
    return body


def sf_token_by_code(session, *, code: str, redirect_uri: str, code_verifier: str) -> dict:
    return _sf_token_post(session, {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": code_verifier,
    })


def sf_token_by_refresh(session, *, refresh_token: str) -> dict:
    # Salesforce answers without expires_in (the org's session timeout decides), so the
    # access token is refreshed when the API says INVALID_SESSION_ID, not on a timer.
    return _sf_token_post(session, {"grant_type": "refresh_token", "refresh_token": refresh_token})


def sf_revoke(session, *, token: str) -> bool:
    """Revoke a token; a refresh token takes its access tokens with it. True when confirmed."""
    response = session.post(_sf_url("revoke"), data={"token": token})
    return response.status_code == 200


def sf_identity(session, *, id_url: str, access_token: str) -> dict:
    response = session.get(
        id_url, headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"}
    )
    if response.status_code != 200:
        raise OAuthError("identity_failed", f"Salesforce identity service answered HTTP {response.status_code}",
                         status=response.status_code)
    return response.json()


def same_sf_org(a: str, b: str) -> bool:
    """15- and 18-char ids of one org share their first 15 (case-sensitive) characters."""
    return bool(a) and bool(b) and a[:15] == b[:15]
