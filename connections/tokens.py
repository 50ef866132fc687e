"""Access tokens for the clients: silent refresh, single-flight per connection.

Each refresh runs under a row lock on the connection (`select_for_update`), and
the decision to refresh is taken again after the lock is held: when two workers
find the same token expiring, the second one finds the first one's new token
and sends nothing. A refused refresh token sets `needs_reauth` outside the lock
transaction, so the status survives the AuthError that follows.
"""

from __future__ import annotations

import datetime as dt
import logging

import requests
from django.db import transaction
from django.views.decorators.debug import sensitive_variables

from . import oauth
from .clock import now
from .errors import AuthError, ConsentRequired, TransientError
from .models import Connection, Provider
from .services import (
    connection_mark_needs_consent,
    connection_mark_needs_reauth,
    connection_record_error,
)

logger = logging.getLogger("linkpoint.connections")

REFRESH_AHEAD = dt.timedelta(minutes=5)
# Refresh-token answers that mean "sign in again"; anything else is trouble worth retrying later.
REAUTH_ERRORS = {"invalid_grant", "interaction_required", "consent_required", "invalid_client",
                 "unauthorized_client"}

SIDE = {Provider.MICROSOFT: "outlook", Provider.SALESFORCE: "salesforce"}
LABEL = {Provider.MICROSOFT: "Microsoft", Provider.SALESFORCE: "Salesforce"}


def _fail(connection: Connection, kind: str, message: str):
    side = SIDE[connection.provider]
    if kind == "consent":
        connection_mark_needs_consent(connection=connection, message=message)
        return ConsentRequired(message, side=side, code="consent_required")
    if kind == "auth":
        connection_mark_needs_reauth(connection=connection, message=message)
        return AuthError(message, side=side, code="reauth")
    connection_record_error(connection=connection, message=message)
    return TransientError(message, side=side)


def _not_usable(row: Connection) -> str:
    label = LABEL[row.provider]
    if row.status == "revoked" or not row.token_blob:
        return f"{label} is not connected."
    return row.last_error or f"The {label} sign-in no longer works; reconnect."


@sensitive_variables()
def graph_access_token(connection: Connection, *, app, cache, force: bool = False) -> str:
    """A valid Graph access token, refreshed through msal when due (or when `force`)."""
    failure: tuple[str, str] | None = None
    token = ""
    with transaction.atomic():
        row = Connection.objects.select_for_update().get(pk=connection.pk)
        if not row.is_usable:
            failure = ("auth", _not_usable(row))
        else:
            cache.deserialize(row.read_tokens().get("cache") or "{}")
            accounts = app.get_accounts()
            account = next(
                (a for a in accounts if a.get("home_account_id") == row.ms_home_account_id),
                accounts[0] if accounts else None,
            )
            due = force or row.access_expires_at is None or row.access_expires_at - now() <= REFRESH_AHEAD
            result = None
            if account is not None:
                try:
                    result = app.acquire_token_silent_with_error(
                        oauth.GRAPH_SCOPES, account, force_refresh=due
                    )
                except (requests.RequestException, ValueError, RuntimeError) as exc:
                    failure = ("transient", f"Microsoft's sign-in service did not answer ({type(exc).__name__}).")
            if failure is None and result and result.get("access_token"):
                token = result["access_token"]
                fields = ["last_error", "last_error_at", "updated_at"]
                row.last_error, row.last_error_at = "", None
                if cache.has_state_changed:
                    row.write_tokens({"cache": cache.serialize()})
                    fields.append("token_blob")
                if result.get("token_source") == "identity_provider":
                    row.access_expires_at = now() + dt.timedelta(seconds=int(result.get("expires_in") or 3600))
                    fields.append("access_expires_at")
                    logger.info("refreshed the Microsoft token of connection %s", row.pk)
                row.save(update_fields=fields)
            elif failure is None:
                error = (result or {}).get("error") or "no_refresh_token"
                description = str((result or {}).get("error_description") or "").split("\r\n")[0]
                codes = (result or {}).get("error_codes") or []
                if (result or {}).get("suberror") == "consent_required" or 65001 in codes:
                    # Entra AADSTS65001: the sign-in is fine, a permission is not granted.
                    failure = ("consent", "Microsoft has not granted LinkPoint every permission it needs "
                               "(AADSTS65001); grant them again on the My connections page.")
                elif error in REAUTH_ERRORS or error == "no_refresh_token":
                    failure = ("auth", f"Microsoft refused the stored sign-in ({error}); reconnect Outlook. "
                               f"{description}".strip())
                else:
                    failure = ("transient", f"Microsoft could not refresh the sign-in ({error}). {description}".strip())
    if failure:
        raise _fail(connection, *failure)
    connection.access_expires_at = row.access_expires_at
    return token


def salesforce_tokens(connection: Connection) -> dict:
    row = Connection.objects.get(pk=connection.pk)
    if not row.is_usable:
        raise _fail(connection, "auth", _not_usable(row))
    connection.sf_instance_url = row.sf_instance_url
    return row.read_tokens()


@sensitive_variables()
def salesforce_refresh(connection: Connection, *, session, stale_access: str) -> str:
    """A new Salesforce access token after INVALID_SESSION_ID (single-flight)."""
    failure: tuple[str, str] | None = None
    token = ""
    with transaction.atomic():
        row = Connection.objects.select_for_update().get(pk=connection.pk)
        data = row.read_tokens() if row.is_usable else {}
        if not data.get("refresh_token"):
            failure = ("auth", _not_usable(row))
        elif data.get("access_token") != stale_access:
            token = data["access_token"]  # another worker refreshed while we waited for the lock
        else:
            try:
                body = oauth.sf_token_by_refresh(session, refresh_token=data["refresh_token"])
            except oauth.OAuthError as exc:
                kind = "auth" if exc.error in REAUTH_ERRORS else "transient"
                failure = (kind, f"Salesforce refused to refresh the session ({exc.error}: {exc.description})."
                           if kind == "auth" else f"Salesforce could not refresh the session ({exc.error}).")
            except requests.RequestException as exc:
                failure = ("transient", f"Salesforce's login service did not answer ({type(exc).__name__}).")
            else:
                token = data["access_token"] = body["access_token"]
                if body.get("refresh_token"):  # refresh-token rotation, when the org enables it
                    data["refresh_token"] = body["refresh_token"]
                row.write_tokens(data)
                row.sf_instance_url = body.get("instance_url") or row.sf_instance_url
                row.last_error, row.last_error_at = "", None
                row.save(update_fields=["token_blob", "sf_instance_url", "last_error", "last_error_at",
                                        "updated_at"])
                logger.info("refreshed the Salesforce session of connection %s", row.pk)
    if failure:
        raise _fail(connection, *failure)
    connection.sf_instance_url = row.sf_instance_url
    return token
