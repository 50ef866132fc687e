"""The connect journeys: start (send the browser to consent), finish (the callback), disconnect.

The flow of each started sign-in lives in the caller's session under a random
`state`, bound to the user, the org and the provider. The callback pops it, so
a state that is missing, unknown, another user's, or already used is refused
before any code is redeemed. A failed connect or reconnect never touches the
tokens already stored.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import warnings
from dataclasses import dataclass

import requests
from django.http import Http404
from django.urls import reverse
from django.views.decorators.debug import sensitive_variables

from orgs.access import OrgContext, resolve_org_context

from . import oauth
from .clock import now
from .errors import TransientError
from .http import make_session
from .models import Connection, Provider
from .selectors import connection_for
from .services import IdentityInUse, connection_disconnect, connection_save

logger = logging.getLogger("linkpoint.connections")

FLOWS_KEY = "connections_oauth_flows"
# seconds; longer than the providers' codes live (Microsoft 10 min, Salesforce 15), so an
# expired code is reported as such by the provider, not as an unknown state.
FLOW_TTL = 20 * 60
MAX_OPEN_FLOWS = 5
LABEL = {Provider.MICROSOFT: "Outlook", Provider.SALESFORCE: "Salesforce"}
SIDE = {Provider.MICROSOFT: "outlook", Provider.SALESFORCE: "salesforce"}


@dataclass(frozen=True)
class Outcome:
    ok: bool
    message: str
    org_slug: str = ""  # empty when the answer could not be tied to an org (a refused state)


# --- start ------------------------------------------------------------------------------------


def callback_uri(request, provider: str) -> str:
    # One org-independent callback per provider: the redirect URI registered with Microsoft
    # and Salesforce must not vary by org; the org travels in the session-bound state.
    return request.build_absolute_uri(reverse("connections-callback", args=[provider]))


def login_hint(ctx: OrgContext, provider: str) -> str:
    """The account the sign-in page should offer: the one last connected here, else the member's e-mail.

    Both providers prefill their sign-in with it, so a member who shares a browser (or
    a sandbox) with colleagues is not offered someone else's account first.
    """
    previous = connection_for(ctx.membership, provider)
    return (previous.account_name if previous is not None else "") or ctx.user.email


def connect_start(request, *, ctx: OrgContext, provider: str) -> str:
    """Remember a new flow in the session and return where to send the browser."""
    redirect_uri = callback_uri(request, provider)
    state = secrets.token_urlsafe(32)
    session = make_session(side=SIDE[provider])
    hint = login_hint(ctx, provider)
    try:
        if provider == Provider.MICROSOFT:
            app = oauth.msal_app(session)
            with warnings.catch_warnings():
                # msal nudges towards response_mode=form_post; a cross-site POST would arrive
                # without our SameSite=Lax session cookie, and the state check needs the session.
                warnings.simplefilter("ignore", UserWarning)
                flow = app.initiate_auth_code_flow(
                    oauth.GRAPH_SCOPES, redirect_uri=redirect_uri, state=state, login_hint=hint,
                    response_mode="query", prompt="select_account",
                )
            url, data = flow["auth_uri"], {"msal_flow": flow}
        else:
            pkce = oauth.Pkce.new()
            url = oauth.sf_authorize_url(redirect_uri=redirect_uri, state=state, code_challenge=pkce.challenge)
            url += "&" + "login_hint=" + requests.utils.quote(hint)
            data = {"verifier": pkce.verifier, "redirect_uri": redirect_uri}
    except (requests.RequestException, ValueError) as exc:
        logger.warning("could not start the %s sign-in: %s", provider, type(exc).__name__)
        raise TransientError(f"{LABEL[provider]}'s sign-in service did not answer. Try again in a minute.",
                             side=SIDE[provider]) from None
    flows = {
        k: v for k, v in (request.session.get(FLOWS_KEY) or {}).items()
        if now().timestamp() - v.get("created", 0) < FLOW_TTL
    }
    while len(flows) >= MAX_OPEN_FLOWS:
        flows.pop(min(flows, key=lambda k: flows[k]["created"]))
    flows[state] = {"provider": provider, "org_slug": ctx.org.slug, "user_id": ctx.user.pk,
                    "created": now().timestamp(), **data}
    request.session[FLOWS_KEY] = flows
    logger.info("starting the %s sign-in for membership %s", provider, ctx.membership.pk)
    return oauth.browser_url(url)


# --- finish -------------------------------------------------------------------------------------

REFUSED_STATE = (
    "LinkPoint could not match this sign-in to one you started (it is unknown, expired or was already "
    "used). Nothing was connected. Start again from My connections."
)


def _pop_flow(request, state: str) -> dict | None:
    flows = request.session.get(FLOWS_KEY) or {}
    flow = flows.pop(state, None)
    request.session[FLOWS_KEY] = flows
    if flow is None or now().timestamp() - flow.get("created", 0) >= FLOW_TTL:
        return None
    return flow


@sensitive_variables()
def connect_finish(request, *, provider: str) -> Outcome:
    """Handle the provider's redirect back. Never raises: every path ends in an Outcome."""
    params = request.GET
    state = params.get("state", "")
    if not state:
        logger.warning("%s callback without state refused", provider)
        return Outcome(False, "The sign-in answer carried no state, so LinkPoint cannot tell which sign-in it "
                              "belongs to. Nothing was connected. Start again from My connections.")
    flow = _pop_flow(request, state)
    if flow is None or flow.get("user_id") != request.user.pk or flow.get("provider") != provider:
        logger.warning("%s callback with an unknown, expired or reused state refused", provider)
        return Outcome(False, REFUSED_STATE)
    try:
        ctx = resolve_org_context(request.user, flow["org_slug"])
    except Http404:
        ctx = None
    if ctx is None or ctx.membership is None:
        logger.warning("%s callback for an org the user no longer belongs to refused", provider)
        return Outcome(False, "You are no longer a member of that organization. Nothing was connected.")
    slug = ctx.org.slug
    error = params.get("error")
    if error:
        description = (params.get("error_description") or "").split("\r\n")[0][:300]
        logger.warning("%s sign-in for membership %s ended with %s", provider, ctx.membership.pk, error)
        if error == "access_denied":
            return Outcome(False, f"You declined access on the {LABEL[provider]} page, so nothing was connected. "
                                  "Any earlier connection is unchanged.", slug)
        return Outcome(False, f"{LABEL[provider]} did not complete the sign-in ({error}). {description}".strip(),
                       slug)
    try:
        if provider == Provider.MICROSOFT:
            return _finish_microsoft(request, ctx, flow)
        return _finish_salesforce(request, ctx, flow)
    except requests.RequestException as exc:
        logger.warning("%s sign-in for membership %s: %s", provider, ctx.membership.pk, type(exc).__name__)
        return Outcome(False, f"{LABEL[provider]} did not answer while finishing the sign-in. Nothing was "
                              "changed; try again.", slug)
    except Exception:
        # A bug must not show a stack trace (or a token in one) to the member.
        logger.exception("%s sign-in for membership %s failed unexpectedly", provider, ctx.membership.pk)
        return Outcome(False, f"Connecting {LABEL[provider]} failed unexpectedly. Nothing was changed; try "
                              "again, and tell your administrator if it keeps happening.", slug)


@sensitive_variables()
def _finish_microsoft(request, ctx: OrgContext, flow: dict) -> Outcome:
    session = make_session(side="outlook")
    cache = oauth.msal_cache(None)
    app = oauth.msal_app(session, cache)
    try:
        result = app.acquire_token_by_auth_code_flow(flow["msal_flow"], request.GET.dict())
    except ValueError:
        return Outcome(False, REFUSED_STATE, ctx.org.slug)
    if "error" in result:
        error = result.get("error")
        logger.warning("Microsoft refused the code of membership %s: %s", ctx.membership.pk, error)
        if error == "invalid_grant":
            message = ("The Microsoft sign-in took too long or was already used, so it expired. Nothing was "
                       "connected; connect again.")
        else:
            message = f"Microsoft refused the sign-in ({error}). Nothing was connected."
        return Outcome(False, message, ctx.org.slug)
    claims = result.get("id_token_claims") or {}
    accounts = app.get_accounts()
    account = accounts[0] if accounts else {}
    scope = result.get("scope") or ""
    try:
        connection_save(
            ctx=ctx,
            provider=Provider.MICROSOFT,
            identity={
                "account_name": claims.get("preferred_username") or account.get("username", ""),
                "ms_tenant_id": claims.get("tid", ""),
                "ms_object_id": claims.get("oid", ""),
                "ms_home_account_id": account.get("home_account_id", ""),
            },
            tokens={"cache": cache.serialize()},
            scopes=" ".join(scope) if isinstance(scope, list) else scope,
            access_expires_at=now() + _seconds(result.get("expires_in")),
        )
    except IdentityInUse as refused:
        # Nothing stored: the tokens in `cache` die with this request (Microsoft has no
        # endpoint to revoke one grant; the user removes the app under My Apps).
        return Outcome(False, f"{refused.message} Nothing was connected.", ctx.org.slug)
    who = claims.get("preferred_username") or "your account"
    return Outcome(True, f"Outlook is connected as {who}.", ctx.org.slug)


def _seconds(value) -> dt.timedelta:
    return dt.timedelta(seconds=int(value or 3600))


@sensitive_variables()
def _finish_salesforce(request, ctx: OrgContext, flow: dict) -> Outcome:
    session = make_session(side="salesforce")
    slug = ctx.org.slug
    try:
        body = oauth.sf_token_by_code(session, code=request.GET.get("code", ""),
                                      redirect_uri=flow["redirect_uri"], code_verifier=flow["verifier"])
    except oauth.OAuthError as exc:
        logger.warning("Salesforce refused the code of membership %s: %s", ctx.membership.pk, exc.error)
        if exc.error == "invalid_grant":
            return Outcome(False, "The Salesforce sign-in took too long or was already used, so it expired. "
                                  "Nothing was connected; connect again.", slug)
        return Outcome(False, f"Salesforce refused the sign-in ({exc.error}). Nothing was connected.", slug)
    grant = body.get("refresh_token") or body["access_token"]
    identity = oauth.sf_identity(session, id_url=body["id"], access_token=body["access_token"])
    allowed = ctx.org.allowed_salesforce_org_id
    if allowed and not oauth.same_sf_org(identity.get("organization_id", ""), allowed):
        oauth.sf_revoke(session, token=grant)
        logger.warning("membership %s signed in to Salesforce org %s; %s allows only %s",
                       ctx.membership.pk, identity.get("organization_id"), slug, allowed)
        return Outcome(False, f"{ctx.org.name} only allows the Salesforce org {allowed}, and you signed in to "
                              f"{identity.get('organization_id')}. Nothing was stored and LinkPoint's access "
                              "was revoked. Sign in with your company's Salesforce account.", slug)
    if not body.get("refresh_token"):
        oauth.sf_revoke(session, token=grant)
        return Outcome(False, "Salesforce did not grant offline access (the refresh_token scope), so LinkPoint "
                              "could not keep syncing. Ask your Salesforce admin to allow it for LinkPoint.", slug)
    try:
        connection_save(
            ctx=ctx,
            provider=Provider.SALESFORCE,
            identity={
                "account_name": identity.get("username", ""),
                "sf_user_id": identity.get("user_id", ""),
                "sf_org_id": identity.get("organization_id", ""),
                "sf_instance_url": body.get("instance_url", ""),
            },
            tokens={"access_token": body["access_token"], "refresh_token": body["refresh_token"]},
            scopes=body.get("scope", ""),
            access_expires_at=None,  # Salesforce sends no expires_in; INVALID_SESSION_ID tells us
        )
    except IdentityInUse as refused:
        # Revoke only this new grant: the holder's own grant is a different token and stays.
        oauth.sf_revoke(session, token=grant)
        return Outcome(False, f"{refused.message} Nothing was stored and LinkPoint's new access was "
                              "revoked.", slug)
    return Outcome(True, f"Salesforce is connected as {identity.get('username')}.", slug)


# --- disconnect ----------------------------------------------------------------------------------


@sensitive_variables()
def disconnect(*, ctx: OrgContext, connection: Connection) -> str:
    """Revoke at the remote side where it has an endpoint for it, then forget the tokens."""
    confirmed = True
    if connection.provider == Provider.SALESFORCE and connection.token_blob:
        data = connection.read_tokens()
        grant = data.get("refresh_token") or data.get("access_token")
        try:
            confirmed = bool(grant) and oauth.sf_revoke(make_session(side="salesforce"), token=grant)
        except requests.RequestException as exc:
            logger.warning("Salesforce revoke for connection %s failed: %s", connection.pk, type(exc).__name__)
            confirmed = False
    connection_disconnect(ctx=ctx, connection=connection, remote_confirmed=confirmed)
    if connection.provider == Provider.MICROSOFT:
        return ("Outlook is disconnected and LinkPoint forgot its sign-in. To remove the app's permission "
                "from your Microsoft account too, use My Apps in your Microsoft account.")
    if not confirmed:
        return ("Salesforce is disconnected here, but Salesforce did not confirm the revocation: remove "
                "LinkPoint under Connected Apps in your Salesforce settings.")
    return "Salesforce is disconnected and LinkPoint's access was revoked."
