"""Microsoft identity platform v2.0 for sandbox tenants: OIDC metadata, consent page, token endpoint.

Served on login.sandbox.test through the transport and under /sandbox/login/ on
the dev server (a person clicks the consent page there), so every URL we hand
out is built from the request's own host and path prefix.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import secrets
import urllib.parse as up
import uuid

from django.conf import settings
from django.db import transaction
from django.http import HttpResponse, HttpResponseRedirect, JsonResponse
from django.template.loader import render_to_string
from django.views.decorators.csrf import csrf_exempt

from sandbox.faults import identity_error
from sandbox.registration import redirect_uri_registered

from .models import AccessToken, AuthCode, Mailbox, RefreshToken, Tenant
from .services import mailbox_ensure, token_hash
from .wire import now

CODE_LIFETIME = dt.timedelta(minutes=10)
ACCESS_LIFETIME = 3599
GENERIC_TENANTS = {"common", "organizations", "consumers"}
RESERVED_SCOPES = {"openid", "profile", "offline_access", "email"}
GRAPH_RESOURCE = "https://graph.microsoft.com/"


def b64url(data: bytes | dict) -> str:
    if isinstance(data, dict):
        data = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _origin(request) -> str:
    scheme = request.META.get("wsgi.url_scheme", "https")
    return f"{scheme}://{request.META.get('HTTP_HOST') or request.META.get('SERVER_NAME')}"


def _prefix(request, tenant: str) -> str:
    """`https://login.sandbox.test` or `http://127.0.0.1:8000/sandbox/login`: where our paths start."""
    path = request.path
    cut = path.find(f"/{tenant}/")
    return _origin(request) + (path[:cut] if cut > 0 else "")


def _tenant(tenant: str) -> Tenant | None | bool:
    """The tenant a path segment names; None for common/organizations; False when unknown."""
    if tenant.lower() in GENERIC_TENANTS:
        return None
    try:
        return Tenant.objects.filter(tenant_id=uuid.UUID(tenant)).first() or False
    except ValueError:
        return Tenant.objects.filter(domain=tenant.lower()).first() or False


def _unknown_tenant(tenant: str):
    return identity_error(400, "invalid_tenant", f"AADSTS90002: Tenant '{tenant}' not found. Check to make sure "
                          "you have the correct tenant ID and are signing into the correct cloud.", [90002])


@csrf_exempt
def openid_configuration(request, tenant: str):
    if _tenant(tenant) is False:
        return _unknown_tenant(tenant)
    base = f"{_prefix(request, tenant)}/{tenant}"
    issuer_tenant = "{tenantid}" if tenant.lower() in GENERIC_TENANTS else str(_tenant(tenant).tenant_id)
    return JsonResponse({
        "token_endpoint": f"{base}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": f"{base}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": f"{_prefix(request, tenant)}/{issuer_tenant}/v2.0",
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": "https://graph.sandbox.test/oidc/userinfo",
        "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
        "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name",
                             "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username",
                             "name", "tid", "ver", "at_hash", "c_hash", "email"],
        "kerberos_endpoint": f"{base}/kerberos",
        "tenant_region_scope": "EU",
        "cloud_instance_name": "sandbox.test",
        "cloud_graph_host_name": "graph.sandbox.test",
        "msgraph_host": "graph.sandbox.test",
        "rbac_url": "https://pas.sandbox.test",
    })


# --- signing key -------------------------------------------------------------------------------
# Entra signs id_tokens with RS256 and publishes the public keys at the metadata's jwks_uri
# (learn.microsoft.com/entra/identity-platform/id-tokens "Validate tokens";
# .../signing-key-rollover). The sandbox holds one key per process, made on first use: an
# id_token is checked by the process that redeemed it, right after it was issued.
_SIGNING: dict = {}


def _signing_key():
    if not _SIGNING:
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        numbers = key.public_key().public_numbers()

        def b64_int(value: int) -> str:
            return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))

        kid = b64url(hashlib.sha256(str(numbers.n).encode()).digest()[:15])
        _SIGNING.update(key=key, kid=kid, jwk={"kty": "RSA", "use": "sig", "kid": kid, "x5t": kid,
                                               "n": b64_int(numbers.n), "e": b64_int(numbers.e),
                                               "alg": "RS256"})
    return _SIGNING


@csrf_exempt
def jwks(request, tenant: str):
    return JsonResponse({"keys": [_signing_key()["jwk"]]})


# --- authorize -----------------------------------------------------------------------------------

def _page(template: str, context: dict, status: int = 200) -> HttpResponse:
    return HttpResponse(render_to_string(template, context), status=status)


def _error_page(title: str, message: str) -> HttpResponse:
    return _page("sandbox/microsoft/error.html", {"title": title, "message": message}, 400)


def _redirect(redirect_uri: str, params: dict, response_mode: str) -> HttpResponse:
    params = {k: v for k, v in params.items() if v is not None}
    if response_mode == "form_post":
        return _page("sandbox/microsoft/form_post.html", {"action": redirect_uri, "params": params.items()})
    sep = "#" if response_mode == "fragment" else ("&" if "?" in redirect_uri else "?")
    return HttpResponseRedirect(redirect_uri + sep + up.urlencode(params))


@csrf_exempt
def authorize(request, tenant: str):
    q = request.GET
    tenant_row = _tenant(tenant)
    if tenant_row is False:
        return _error_page("Sign in", f"AADSTS90002: Tenant '{tenant}' not found.")
    client_id = q.get("client_id", "")
    if client_id != settings.MICROSOFT_CLIENT_ID:
        return _error_page("Sign in", f"AADSTS700016: Application with identifier '{client_id}' was not found in "
                           "the directory.")
    redirect_uri = q.get("redirect_uri", "")
    if not redirect_uri_registered("microsoft", redirect_uri):
        # Entra shows its own error page; it never sends the browser (and a code) elsewhere.
        return _error_page("Sign in", f"AADSTS50011: The redirect URI '{redirect_uri}' specified in the request "
                           f"does not match the redirect URIs configured for the application '{client_id}'. Make "
                           "sure the redirect URI sent in the request matches one added to your application in "
                           "the Azure portal.")
    response_mode = q.get("response_mode") or "query"
    state = q.get("state")
    if q.get("response_type") != "code":
        return _redirect(redirect_uri, {"error": "unsupported_response_type", "error_description":
                         "AADSTS700054: response_type 'id_token' is not enabled for the application.",
                         "state": state}, response_mode)
    if q.get("code_challenge") and q.get("code_challenge_method", "plain") not in ("S256", "plain"):
        return _redirect(redirect_uri, {"error": "invalid_request", "error_description":
                         "AADSTS501491: Invalid size of Code_Challenge parameter.", "state": state}, response_mode)
    mailboxes = Mailbox.objects.select_related("tenant").order_by("email")
    if tenant_row:
        mailboxes = mailboxes.filter(tenant=tenant_row)
    mailboxes = list(mailboxes)
    # The app's login_hint is the only account ever preselected: never the first (someone else's)
    # mailbox, on the first view or after a failed Accept.
    hint = (q.get("login_hint") or "").strip().lower()
    hint = hint if "@" in hint else ""

    def page(selected: str, error: str = "", status: int = 200):
        return _page("sandbox/microsoft/authorize.html", {
            "mailboxes": mailboxes, "selected": selected, "error": error, "client_id": client_id,
            "new_hint": hint if hint and hint not in {m.email for m in mailboxes} else "",
            "scopes": [s for s in q.get("scope", "").split() if s],
        }, status)

    if request.method != "POST":
        return page(hint)
    if request.POST.get("decision") != "accept":
        return _redirect(redirect_uri, {
            "error": "access_denied", "error_subcode": "cancel",
            "error_description": "AADSTS65004: User declined to consent to access the app.", "state": state,
        }, response_mode)
    email = (request.POST.get("new_email") or request.POST.get("mailbox") or "").strip().lower()
    if not email or "@" not in email:
        return page(hint, "Pick a mailbox to sign in as.", 400)
    # A new address, or the hinted one not yet in the sandbox, gets its mailbox now.
    new = bool(request.POST.get("new_email")) or (email == hint)
    mailbox = mailbox_ensure(email) if new else Mailbox.objects.filter(email=email).first()
    if mailbox is None or (tenant_row and mailbox.tenant_id != tenant_row.pk):
        return _error_page("Sign in", "AADSTS50020: This account does not exist in the tenant.")
    code = secrets.token_urlsafe(48)
    AuthCode.objects.create(
        code_hash=token_hash(code), mailbox=mailbox, client_id=client_id, redirect_uri=redirect_uri,
        scope=q.get("scope", ""), nonce=q.get("nonce", ""), code_challenge=q.get("code_challenge", ""),
        code_challenge_method=q.get("code_challenge_method", "plain") if q.get("code_challenge") else "",
        expires_at=now() + CODE_LIFETIME,
    )
    return _redirect(redirect_uri, {
        "code": "0.A" + code, "state": state, "client_info": _client_info(mailbox) if q.get("client_info") else None,
        "session_state": str(uuid.uuid5(uuid.NAMESPACE_URL, mailbox.email)),
    }, response_mode)


# --- token ------------------------------------------------------------------------------------------

def _client_info(mailbox: Mailbox) -> str:
    return b64url({"uid": str(mailbox.object_id), "utid": str(mailbox.tenant.tenant_id)})


def _short_scopes(scope: str) -> list[str]:
    """What Entra echoes: Graph permissions by short name, openid/profile/email kept, offline_access never."""
    out = []
    for s in scope.split():
        if s == "offline_access":
            continue
        short = s[len(GRAPH_RESOURCE):] if s.startswith(GRAPH_RESOURCE) else s
        if short not in out:
            out.append(short)
    return out


def _jwt(claims: dict, alg: str = "none") -> str:
    return f"{b64url({'typ': 'JWT', 'alg': alg})}.{b64url(claims)}."


def _signed_jwt(claims: dict) -> str:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    signing = _signing_key()
    head = f"{b64url({'typ': 'JWT', 'alg': 'RS256', 'kid': signing['kid']})}.{b64url(claims)}"
    signature = signing["key"].sign(head.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{head}.{b64url(signature)}"


def _tokens(request, tenant: str, mailbox: Mailbox, client_id: str, scope: str, nonce: str = "") -> dict:
    moment = now()
    issued = int(moment.timestamp())
    scopes = _short_scopes(scope)
    tid = str(mailbox.tenant.tenant_id)
    access = _jwt({"aud": "https://graph.microsoft.com", "iss": f"https://sts.sandbox.test/{tid}/",
                   "iat": issued, "nbf": issued, "exp": issued + ACCESS_LIFETIME, "oid": str(mailbox.object_id),
                   "tid": tid, "upn": mailbox.email, "scp": " ".join(s for s in scopes if s not in RESERVED_SCOPES),
                   "appid": client_id, "uti": secrets.token_urlsafe(16)}, "RS256") + secrets.token_urlsafe(32)
    AccessToken.objects.create(token_hash=token_hash(access), mailbox=mailbox, client_id=client_id,
                               scopes=" ".join(scopes), expires_at=moment + dt.timedelta(seconds=ACCESS_LIFETIME))
    body = {"token_type": "Bearer", "scope": " ".join(scopes), "expires_in": ACCESS_LIFETIME,
            "ext_expires_in": ACCESS_LIFETIME, "access_token": access}
    if "offline_access" in scope.split():
        refresh = "1.A" + secrets.token_urlsafe(64)
        RefreshToken.objects.create(token_hash=token_hash(refresh), mailbox=mailbox, client_id=client_id,
                                    scopes=scope, issued_at=moment)
        body["refresh_token"] = refresh
    if "openid" in scope.split():
        claims = {"aud": client_id, "iss": f"{_prefix(request, tenant)}/{tid}/v2.0", "iat": issued, "nbf": issued,
                  "exp": issued + 3600, "name": mailbox.display_name, "oid": str(mailbox.object_id),
                  "preferred_username": mailbox.email,
                  "sub": b64url(hashlib.sha256(f"{mailbox.object_id}:{client_id}".encode()).digest()[:24]),
                  "tid": tid, "ver": "2.0", "uti": secrets.token_urlsafe(16)}
        if nonce:
            claims["nonce"] = nonce
        if "email" in scope.split():
            claims["email"] = mailbox.email
        body["id_token"] = _signed_jwt(claims)
    body["client_info"] = _client_info(mailbox)
    return body


def _invalid_grant(description: str, code: int):
    return identity_error(400, "invalid_grant", f"AADSTS{code}: {description}", [code])


def _pkce_ok(row: AuthCode, verifier: str) -> bool:
    if not row.code_challenge:
        return True
    if not verifier:
        return False
    if row.code_challenge_method == "S256":
        expected = b64url(hashlib.sha256(verifier.encode()).digest())
    else:
        expected = verifier
    return secrets.compare_digest(expected, row.code_challenge)


@csrf_exempt
@transaction.atomic(using="sandbox")
def token(request, tenant: str):
    if request.method != "POST":
        return identity_error(405, "invalid_request", "AADSTS900561: The endpoint only accepts POST requests.",
                              [900561])
    if _tenant(tenant) is False:
        return _unknown_tenant(tenant)
    form = request.POST
    client_id = form.get("client_id", "")
    if client_id != settings.MICROSOFT_CLIENT_ID:
        return identity_error(400, "unauthorized_client", f"AADSTS700016: Application with identifier "
                              f"'{client_id}' was not found in the directory.", [700016])
    secret = form.get("client_secret")
    if not secret:
        return identity_error(401, "invalid_client", "AADSTS7000218: The request body must contain the following "
                              "parameter: 'client_assertion' or 'client_secret'.", [7000218])
    if not secrets.compare_digest(secret, settings.MICROSOFT_CLIENT_SECRET):
        return identity_error(401, "invalid_client", "AADSTS7000215: Invalid client secret provided. Ensure the "
                              "secret being sent in the request is the client secret value, not the client "
                              "secret ID.", [7000215])
    grant = form.get("grant_type")
    if grant == "authorization_code":
        return _redeem_code(request, tenant, form, client_id)
    if grant == "refresh_token":
        return _redeem_refresh(request, tenant, form, client_id)
    return identity_error(400, "unsupported_grant_type", f"AADSTS70003: The app requested an unsupported grant "
                          f"type '{grant}'.", [70003])


def _redeem_code(request, tenant, form, client_id):
    code = form.get("code", "")
    row = AuthCode.objects.select_for_update().select_related("mailbox__tenant").filter(
        code_hash=token_hash(code.removeprefix("0.A"))).first()
    if row is None:
        return _invalid_grant("Malformed or invalid authorization code.", 9002313)
    if row.used:
        return _invalid_grant("OAuth2 Authorization code was already redeemed, please retry with a new valid "
                              "code or use an existing refresh token.", 54005)
    if row.expires_at <= now():
        return _invalid_grant("The provided authorization code or refresh token has expired due to inactivity.",
                              70008)
    if row.client_id != client_id:
        return _invalid_grant("The authorization code was issued to a different client.", 70000)
    if form.get("redirect_uri", "") != row.redirect_uri:
        return _invalid_grant("The provided value for the input parameter 'redirect_uri' is not valid. The "
                              "expected value is a URI which matches a redirect URI registered for this client "
                              "application.", 50011)
    if row.code_challenge and not form.get("code_verifier"):
        # learn.microsoft.com/entra/identity-platform/reference-error-codes: a missing parameter is
        # AADSTS900144; a verifier that does not hash to the challenge is AADSTS50148.
        return identity_error(400, "invalid_request", "AADSTS900144: The request body must contain the "
                              "following parameter: 'code_verifier'.", [900144])
    if not _pkce_ok(row, form.get("code_verifier", "")):
        return _invalid_grant("The code_verifier does not match the code_challenge supplied in the authorization "
                              "request for PKCE.", 50148)
    row.used = True
    row.save(update_fields=["used"])
    scope = " ".join(dict.fromkeys(row.scope.split() + form.get("scope", "").split()))
    return JsonResponse(_tokens(request, tenant, row.mailbox, client_id, scope, row.nonce))


def _redeem_refresh(request, tenant, form, client_id):
    row = RefreshToken.objects.select_related("mailbox__tenant").filter(
        token_hash=token_hash(form.get("refresh_token", ""))).first()
    if row is None:
        return _invalid_grant("Invalid request. Request is malformed or invalid.", 9002313)
    if row.revoked:
        return _invalid_grant("The provided authorization code or refresh token has expired due to inactivity "
                              "or was revoked. Send a new interactive authorization request for this user and "
                              "resource.", 70008)
    if row.client_id != client_id:
        return _invalid_grant("The refresh token was issued to a different client.", 70000)
    # Entra hands out a new refresh token on every use; the old one stays valid until it
    # expires or consent is revoked, so it is not revoked here.
    granted = set(_short_scopes(row.scopes)) | RESERVED_SCOPES
    requested = form.get("scope", "").split() or row.scopes.split()
    missing = [s for s in _short_scopes(" ".join(requested)) if s not in granted]
    if missing:
        # A refresh never widens consent: Entra answers AADSTS65001 with suberror
        # consent_required (learn.microsoft.com/entra/identity-platform/reference-error-codes;
        # .../v2-oauth2-auth-code-flow "Refresh the access token").
        return identity_error(400, "invalid_grant", f"AADSTS65001: The user or administrator has not consented "
                              f"to use the application with ID '{client_id}' named 'LinkPoint'. Send an "
                              f"interactive authorization request for this user and resource. Missing: "
                              f"{' '.join(missing)}.", [65001], suberror="consent_required")
    scope = " ".join(dict.fromkeys([*requested, "offline_access"]))
    return JsonResponse(_tokens(request, tenant, row.mailbox, client_id, scope))
