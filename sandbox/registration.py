"""The LinkPoint app as registered with the emulated Microsoft and Salesforce.

A real deployment registers its OAuth callback with both services (redirect URIs
of the Entra app registration, callback URLs of the Salesforce connected app) and
both refuse to send a browser anywhere else: an authorize request naming another
`redirect_uri` gets an error page, never a redirect (otherwise anyone could craft
a sign-in link that delivers a user's code to their own site).

The sandbox's registration is `settings.SANDBOX_OAUTH_REDIRECT_URIS` when set, else
the product's callback path on SITE_URL and on every concrete host of ALLOWED_HOSTS
(https; plain http only for loopback and Django's test client host), which is what
an operator would register for a dev or demo deployment. Like Entra does for
localhost, a loopback URI matches on any port (the dev server's port varies); every
other URI must match exactly.
"""

from __future__ import annotations

import urllib.parse as up

from django.conf import settings

# The path LinkPoint registers per provider (linkpoint/urls.py, `connections-callback`).
CALLBACK_PATH = "/connections/callback/{provider}/"
LOOPBACK = {"localhost", "127.0.0.1", "[::1]", "::1"}
PLAIN_HTTP_HOSTS = LOOPBACK | {"testserver"}


def registered_redirect_uris(provider: str) -> list[str]:
    explicit = getattr(settings, "SANDBOX_OAUTH_REDIRECT_URIS", None)
    if explicit is not None:
        return list(explicit)
    path = CALLBACK_PATH.format(provider=provider)
    uris = [settings.SITE_URL.rstrip("/") + path]
    for host in settings.ALLOWED_HOSTS:
        if not host or "*" in host or host.startswith("."):
            continue
        uris.append(f"https://{host}{path}")
        if host in PLAIN_HTTP_HOSTS:
            uris.append(f"http://{host}{path}")
    return list(dict.fromkeys(uris))


def _loopback_key(uri: str) -> tuple | None:
    parts = up.urlsplit(uri)
    if (parts.hostname or "") not in LOOPBACK:
        return None
    return parts.scheme, parts.hostname, parts.path, parts.query


def redirect_uri_registered(provider: str, redirect_uri: str) -> bool:
    if not redirect_uri:
        return False
    for registered in registered_redirect_uris(provider):
        if redirect_uri == registered:
            return True
        key = _loopback_key(registered)
        if key is not None and key == _loopback_key(redirect_uri):
            return True
    return False
