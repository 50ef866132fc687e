"""OAuth 2.0 web-server flow (with PKCE) and the identity service of the emulated login host.

The authorize page is what a person sees in the demo: the product sends the
browser to /sandbox/salesforce/services/oauth2/authorize on the dev server;
the same view also answers in-process on login.salesforce.sandbox.test.
"""

from __future__ import annotations

import base64
import binascii
import urllib.parse as up

from django.conf import settings
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt

from ..registration import redirect_uri_registered
from . import clock
from .api import bearer, json_response
from .models import SfUser
from .services import (
    sf_authcode_issue,
    sf_session_user,
    sf_token_by_code,
    sf_token_by_refresh,
    sf_token_revoke,
    sf_user_ensure,
)
from .validation import SfError

AUTHORIZE_PARAMS = ("response_type", "client_id", "redirect_uri", "state", "scope", "code_challenge",
                    "code_challenge_method", "login_hint", "prompt", "display", "nonce")


def _oauth_error(error: str, description: str, status: int = 400):
    return json_response({"error": error, "error_description": description}, status)


def _redirect(redirect_uri: str, params: dict) -> HttpResponseRedirect:
    joiner = "&" if "?" in redirect_uri else "?"
    response = HttpResponseRedirect(redirect_uri + joiner + up.urlencode({k: v for k, v in params.items() if v}))
    return response


@csrf_exempt
def authorize(request):
    source = request.POST if request.method == "POST" else request.GET
    params = {k: source.get(k, "") for k in AUTHORIZE_PARAMS}
    problem = ""
    if params["client_id"] != settings.SALESFORCE_CLIENT_ID:
        problem = "error=invalid_client_id&error_description=client%20identifier%20invalid"
    elif not params["redirect_uri"]:
        problem = "error=redirect_uri_missing&error_description=redirect_uri%20must%20match%20configuration"
    elif not redirect_uri_registered("salesforce", params["redirect_uri"]):
        problem = "error=redirect_uri_mismatch&error_description=redirect_uri%20must%20match%20configuration"
    if problem:
        # Salesforce shows these on its own page; it never redirects to an unverified client.
        return render(request, "sandbox/salesforce/authorize.html", {"problem": problem}, status=400)
    if params["response_type"] != "code":
        return _redirect(params["redirect_uri"], {"error": "unsupported_response_type",
                                                  "error_description": "response type not supported",
                                                  "state": params["state"]})
    if params["code_challenge"] and params["code_challenge_method"] not in ("", "S256"):
        return _redirect(params["redirect_uri"], {"error": "invalid_request",
                                                  "error_description": "invalid code_challenge_method",
                                                  "state": params["state"]})
    if request.method == "POST":
        if source.get("action") != "allow":
            return _redirect(params["redirect_uri"], {"error": "access_denied",
                                                      "error_description": "end-user denied authorization",
                                                      "state": params["state"]})
        username = source.get("username", "").strip().lower()
        if "@" not in username:
            return _page(request, params, error="Enter a username (an e-mail address).", status=400)
        user = sf_user_ensure(email=username)
        code = sf_authcode_issue(
            user=user, client_id=params["client_id"], redirect_uri=params["redirect_uri"],
            code_challenge=params["code_challenge"], code_challenge_method=params["code_challenge_method"] or
            ("S256" if params["code_challenge"] else ""), scope=params["scope"],
        )
        return _redirect(params["redirect_uri"], {"code": code, "state": params["state"]})
    return _page(request, params)


def _page(request, params, error: str = "", status: int = 200):
    users = SfUser.objects.select_related("org").order_by("username")[:200]
    # Prefilled with the app's login_hint (kept in a hidden field across a failed Allow) and
    # nothing else: never the first sandbox user, who is someone else.
    return render(request, "sandbox/salesforce/authorize.html", {
        "params": params, "users": users, "error": error, "username": params["login_hint"],
        "hidden": [(k, v) for k, v in params.items() if v],
    }, status=status)


def _client_credentials(request) -> tuple[str, str]:
    client_id = request.POST.get("client_id", "")
    secret = request.POST.get("client_secret", "")
    auth = request.META.get("HTTP_AUTHORIZATION", "")
    if auth.lower().startswith("basic "):
        try:
            pair = base64.b64decode(auth[6:]).decode()
        except (binascii.Error, UnicodeDecodeError):
            pair = ""
        basic_id, _, basic_secret = pair.partition(":")
        client_id, secret = client_id or up.unquote(basic_id), secret or up.unquote(basic_secret)
    return client_id, secret


@csrf_exempt
def token(request):
    if request.method != "POST":
        return _oauth_error("invalid_request", "must use HTTP POST")
    grant = request.POST.get("grant_type", "")
    client_id, secret = _client_credentials(request)
    if grant not in ("authorization_code", "refresh_token"):
        return _oauth_error("unsupported_grant_type", "grant type not supported")
    if client_id != settings.SALESFORCE_CLIENT_ID:
        return _oauth_error("invalid_client_id", "client identifier invalid")
    if secret != settings.SALESFORCE_CLIENT_SECRET:
        return _oauth_error("invalid_client", "invalid client credentials")
    try:
        if grant == "authorization_code":
            body = sf_token_by_code(
                code=request.POST.get("code", ""), client_id=client_id, client_secret=secret,
                redirect_uri=request.POST.get("redirect_uri", ""),
                code_verifier=request.POST.get("code_verifier", ""),
            )
        else:
            body = sf_token_by_refresh(refresh_token=request.POST.get("refresh_token", ""), client_id=client_id,
                                       client_secret=secret)
    except SfError as error:
        return _oauth_error(error.code, error.message)
    return json_response(body)


@csrf_exempt
def revoke(request):
    value = request.POST.get("token") or request.GET.get("token", "")
    if not value or not sf_token_revoke(token=value):
        return _oauth_error("unsupported_token_type", "this token type is not supported")
    return HttpResponse(status=200)


def _identity_body(user) -> dict:
    org = user.org
    base = org.instance_url
    version = settings.SALESFORCE_API_VERSION
    return {
        "id": f"{settings.SALESFORCE_LOGIN_URL}/id/{org.org_id}/{user.user_id}",
        "asserted_user": True,
        "user_id": user.user_id,
        "organization_id": org.org_id,
        "username": user.username,
        "nick_name": user.username.split("@")[0],
        "display_name": user.name,
        "email": user.email,
        "email_verified": True,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "timezone": user.time_zone,
        "active": True,
        "user_type": "STANDARD",
        "language": "en_US",
        "locale": "en_US",
        "utcOffset": 0,
        "last_modified_date": clock.fmt_datetime(clock.now()),
        "is_app_installed": True,
        "urls": {
            "enterprise": f"{base}/services/Soap/c/{version}/{org.org_id[:15]}",
            "partner": f"{base}/services/Soap/u/{version}/{org.org_id[:15]}",
            "rest": f"{base}/services/data/v{version}/",
            "sobjects": f"{base}/services/data/v{version}/sobjects/",
            "query": f"{base}/services/data/v{version}/query/",
            "limits": f"{base}/services/data/v{version}/limits/",
            "profile": f"{base}/{user.user_id}",
        },
    }


def _bad_token():
    return HttpResponse("Bad_OAuth_Token", status=403, content_type="text/plain")


@csrf_exempt
def identity(request, org_id: str, user_id: str):
    user = sf_session_user(bearer(request) or request.GET.get("oauth_token", ""))
    if user is None:
        return _bad_token()
    if user.org.org_id != org_id or user.user_id != user_id:
        return HttpResponse("Bad_Id", status=403, content_type="text/plain")
    return json_response(_identity_body(user))


@csrf_exempt
def userinfo(request):
    user = sf_session_user(bearer(request))
    if user is None:
        return _bad_token()
    body = _identity_body(user)
    return json_response({
        "sub": body["id"], "user_id": user.user_id, "organization_id": user.org.org_id,
        "preferred_username": user.username, "nickname": body["nick_name"], "name": user.name,
        "email": user.email, "email_verified": True, "given_name": user.first_name, "family_name": user.last_name,
        "zoneinfo": user.time_zone, "active": True, "user_type": "STANDARD", "language": "en_US",
        "locale": "en_US", "utcOffset": 0, "updated_at": body["last_modified_date"], "urls": body["urls"],
    })
