"""Writes on connections. Keyword-only, atomic, audited; tokens never reach an audit entry or a log."""

from __future__ import annotations

import datetime as dt
import logging

from django.db import transaction
from django.views.decorators.debug import sensitive_variables

from orgs.access import OrgContext
from orgs.audit import audit_record

from .clock import now
from .models import Connection, Provider, SalesforceUsage, Status
from .selectors import connection_identity_holder, shared_identity_message

logger = logging.getLogger("linkpoint.connections")


def _identity(conn: Connection) -> dict:
    """What an audit entry may say about a connection: who, where, never a secret."""
    return {
        "provider": conn.provider,
        "account": conn.account_name,
        "status": conn.status,
        **({"sf_org_id": conn.sf_org_id} if conn.sf_org_id else {}),
    }


def _target(conn: Connection) -> str:
    return f"{conn.get_provider_display()} connection of {conn.membership.user.email}"


class IdentityInUse(Exception):
    """The remote account is already connected by another active member: nothing was stored."""

    def __init__(self, message: str, holder: Connection):
        super().__init__(message)
        self.message = message
        self.holder = holder


def _refuse_shared(*, ctx: OrgContext, provider: str, identity: dict, holder: Connection) -> IdentityInUse:
    """Audit and log a refused connect; the holder is named only inside their own org."""
    account = identity.get("account_name", "")
    message = shared_identity_message(membership=ctx.membership, provider=provider, account=account, holder=holder)
    same_org = holder.membership.organization_id == ctx.org.pk
    audit_record(
        ctx=ctx,
        action="connection.refused_shared",
        target=f"{Provider(provider).label} connection of {ctx.user.email}",
        after={"provider": provider, "account": account,
               "held_by": holder.membership.user.email if same_org else "a member of another organization"},
    )
    logger.warning(
        "refused %s connect of membership %s: %s is already connected by membership %s (org %s)",
        provider, ctx.membership.pk, account, holder.membership_id, holder.membership.organization_id,
    )
    return IdentityInUse(message, holder)


# Not @transaction.atomic: its wrapper frame would show `tokens` in an error report.
@sensitive_variables("tokens")
def connection_save(
    *,
    ctx: OrgContext,
    provider: str,
    identity: dict,
    tokens: dict,
    scopes: str,
    access_expires_at: dt.datetime | None,
) -> Connection:
    """Create or renew the caller's connection after a completed OAuth flow.

    Raises IdentityInUse (audited, logged, nothing stored) when another active member,
    in this org or another, already holds a live connection to the same remote account.
    """
    holder = connection_identity_holder(membership=ctx.membership, provider=provider, identity=identity)
    if holder is not None:
        raise _refuse_shared(ctx=ctx, provider=provider, identity=identity, holder=holder)
    with transaction.atomic():
        conn = (
            Connection.objects.select_for_update()
            .filter(membership=ctx.membership, provider=provider)
            .first()
        )
        before = _identity(conn) if conn else {}
        if conn is None:
            conn = Connection(membership=ctx.membership, provider=provider)
        for field in (
            "account_name", "ms_tenant_id", "ms_object_id", "ms_home_account_id",
            "sf_user_id", "sf_org_id", "sf_instance_url",
        ):
            setattr(conn, field, identity.get(field, ""))
        conn.write_tokens(tokens)
        conn.scopes = scopes
        conn.access_expires_at = access_expires_at
        conn.status = Status.CONNECTED
        conn.last_error = ""
        conn.last_error_at = None
        conn.connected_at = now()
        conn.save()
        audit_record(
            ctx=ctx,
            action="connection.reconnect" if before else "connection.connect",
            target=_target(conn),
            before=before,
            after=_identity(conn),
        )
        if before and before.get("account") and before["account"] != conn.account_name:
            logger.warning(
                "connection %s of membership %s now points at a different %s account",
                conn.pk, conn.membership_id, provider,
            )
        logger.info("connected %s for membership %s", provider, conn.membership_id)
        return conn


@transaction.atomic
def connection_disconnect(*, ctx: OrgContext, connection: Connection, remote_confirmed: bool) -> Connection:
    """Forget the tokens (revocation at the remote side is the caller's job, done first)."""
    conn = Connection.objects.select_for_update().get(pk=connection.pk)
    before = _identity(conn)
    conn.write_tokens({})
    conn.status = Status.REVOKED
    conn.access_expires_at = None
    conn.last_error = (
        "" if remote_confirmed else
        "Salesforce did not confirm the revocation; remove LinkPoint under Connected Apps in Salesforce."
        if conn.provider == Provider.SALESFORCE else ""
    )
    conn.last_error_at = None if remote_confirmed else now()
    conn.save()
    audit_record(ctx=ctx, action="connection.disconnect", target=_target(conn), before=before,
                 after=_identity(conn))
    logger.info("disconnected %s for membership %s", conn.provider, conn.membership_id)
    return conn


def connection_mark_needs_reauth(*, connection: Connection, message: str) -> None:
    """The remote side refused our refresh token. Links and history stay; only a reconnect helps."""
    Connection.objects.filter(pk=connection.pk).update(
        status=Status.NEEDS_REAUTH, last_error=message[:500], last_error_at=now()
    )
    connection.status, connection.last_error = Status.NEEDS_REAUTH, message[:500]
    logger.warning(
        "connection %s (%s, membership %s) needs a reconnect: %s",
        connection.pk, connection.provider, connection.membership_id, message,
    )


def connection_mark_needs_consent(*, connection: Connection, message: str) -> None:
    """A permission LinkPoint needs is not granted (or was withdrawn): the member consents again."""
    Connection.objects.filter(pk=connection.pk).update(
        status=Status.NEEDS_CONSENT, last_error=message[:500], last_error_at=now()
    )
    connection.status, connection.last_error = Status.NEEDS_CONSENT, message[:500]
    logger.warning(
        "connection %s (%s, membership %s) is missing a permission: %s",
        connection.pk, connection.provider, connection.membership_id, message,
    )


def connection_record_error(*, connection: Connection, message: str) -> None:
    """A failure worth showing (the status stays: transient trouble is not a broken connection)."""
    Connection.objects.filter(pk=connection.pk).update(last_error=message[:500], last_error_at=now())
    connection.last_error = message[:500]
    logger.warning("connection %s (%s): %s", connection.pk, connection.provider, message)


def connection_touch(*, connection: Connection) -> None:
    """Remember the last successful use, at most once a minute (not a write per request)."""
    moment = now()
    if connection.last_used_at and moment - connection.last_used_at < dt.timedelta(minutes=1):
        return
    Connection.objects.filter(pk=connection.pk).update(last_used_at=moment)
    connection.last_used_at = moment


def salesforce_usage_record(*, organization_id: int, sf_org_id: str, used: int, limit: int) -> None:
    if not sf_org_id:
        return
    moment = now()
    updated = SalesforceUsage.objects.filter(organization_id=organization_id, sf_org_id=sf_org_id).update(
        used=used, limit=limit, recorded_at=moment
    )
    if not updated:
        SalesforceUsage.objects.get_or_create(
            organization_id=organization_id, sf_org_id=sf_org_id,
            defaults={"used": used, "limit": limit, "recorded_at": moment},
        )
