"""Reads on connections (org-scoped) and the clients the sync engine asks for."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q

from orgs.models import Membership, Organization

from .errors import AuthError
from .models import Connection, Provider, SalesforceUsage, Status

SIDE = {Provider.MICROSOFT: "outlook", Provider.SALESFORCE: "salesforce"}
LABEL = {Provider.MICROSOFT: "Outlook", Provider.SALESFORCE: "Salesforce"}


def connection_for(membership: Membership, provider: str) -> Connection | None:
    return Connection.objects.filter(membership=membership, provider=provider).first()


# --- one remote account, one member -----------------------------------------------------------
# Two LinkPoint members syncing the same mailbox or Salesforce user each keep their own links,
# so each creates its own copy of every item: duplicates. Across orgs too (the same Salesforce
# user in two LinkPoint orgs, or one mailbox), so the check spans every org. A revoked
# connection holds nothing; one needing a reconnect still does (it comes back on reconnect).


def _identity_q(provider: str, identity: dict) -> Q | None:
    if provider == Provider.MICROSOFT:
        tid, oid = identity.get("ms_tenant_id") or "", identity.get("ms_object_id") or ""
        upn = (identity.get("account_name") or "").strip()
        if tid and oid:
            # The object id is the mailbox; a UPN can be renamed and reused. Rows stored
            # without an object id can only be compared by UPN.
            q = Q(ms_tenant_id=tid, ms_object_id=oid)
            return q | Q(ms_object_id="", account_name__iexact=upn) if upn else q
        return Q(account_name__iexact=upn) if upn else None
    org, user = (identity.get("sf_org_id") or "")[:15], (identity.get("sf_user_id") or "")[:15]
    if not (org and user):
        return None
    # A sandbox copy of an org keeps its user ids under a new org id: the pair is the identity.
    return Q(sf_org_id__startswith=org, sf_user_id__startswith=user)


def _same_identity(provider: str, conn: Connection, identity: dict) -> bool:
    """The exact check (Salesforce ids are case-sensitive; LIKE may not be)."""
    if provider == Provider.MICROSOFT:
        return True
    return (conn.sf_org_id[:15], conn.sf_user_id[:15]) == (
        (identity.get("sf_org_id") or "")[:15], (identity.get("sf_user_id") or "")[:15])


def connection_identity_holder(*, membership: Membership, provider: str, identity: dict) -> Connection | None:
    """Another active member's live connection to the remote account `identity` names, in any org."""
    q = _identity_q(provider, identity)
    if q is None:
        return None
    rows = (
        Connection.objects.filter(q, provider=provider, membership__is_active=True)
        .exclude(status=Status.REVOKED)
        .exclude(membership=membership)
        .select_related("membership__user", "membership__organization")
        .order_by("pk")
    )
    return next((row for row in rows[:20] if _same_identity(provider, row, identity)), None)


def connection_identity(conn: Connection) -> dict:
    return {name: getattr(conn, name) for name in (
        "account_name", "ms_tenant_id", "ms_object_id", "sf_user_id", "sf_org_id")}


def connection_shared_with(membership: Membership, provider: str) -> Connection | None:
    """The other member's connection when this member's remote account is connected twice."""
    conn = connection_for(membership, provider)
    if conn is None or conn.status == Status.REVOKED:
        return None
    return connection_identity_holder(membership=membership, provider=provider, identity=connection_identity(conn))


def shared_connection_stop(membership: Membership) -> str:
    """Why a sync of this member must not start ("" when it may): an account connected twice.

    Both members stop until one disconnects (which of the two should keep syncing is theirs
    to decide, not the engine's); a pair can predate the connect-time refusal, or appear
    when a deactivated member comes back.
    """
    for conn in Connection.objects.filter(membership=membership).exclude(status=Status.REVOKED):
        holder = connection_identity_holder(
            membership=membership, provider=conn.provider, identity=connection_identity(conn))
        if holder is not None:
            said = shared_identity_message(membership=membership, provider=conn.provider,
                                           account=conn.account_name, holder=holder)
            return (f"Sync stopped before reading anything: {said} Syncing one account from two LinkPoint "
                    "connections would create every item twice; the sync resumes once only one remains.")
    return ""


def shared_identity_message(*, membership: Membership, provider: str, account: str, holder: Connection) -> str:
    """Who else holds the account, in words this member may read (another org's people stay unnamed)."""
    thing = "Outlook mailbox" if provider == Provider.MICROSOFT else "Salesforce user"
    other = holder.membership
    if other.organization_id == membership.organization_id:
        name = getattr(other.user, "full_name", "")
        who = f"{name} ({other.user.email})" if name else other.user.email
        return (f"This {thing} ({account}) is already connected by {who}. Ask them to disconnect it, "
                "or sign in with your own account.")
    if other.user_id == membership.user_id:
        return (f"This {thing} ({account}) is already connected to LinkPoint by you in "
                f"{other.organization.name}. Disconnect it there first, or sign in with another account.")
    return (f"This {thing} ({account}) is already connected to LinkPoint in another organization. Ask its "
            "owner to disconnect it there, or sign in with your own account.")


def _usable(membership: Membership, provider: str) -> Connection:
    conn = connection_for(membership, provider)
    if conn is None or not conn.is_usable:
        state = ("is not connected" if conn is None or conn.status == Status.REVOKED else
                 "is missing a permission: grant it again" if conn.status == Status.NEEDS_CONSENT else
                 "needs a reconnect")
        raise AuthError(f"{LABEL[provider]} {state}.", side=SIDE[provider], code="not_connected")
    return conn


def graph_client_for(membership: Membership, *, counter=None, **kwargs):
    from .clients import GraphClient

    return GraphClient(_usable(membership, Provider.MICROSOFT), counter=counter, **kwargs)


def salesforce_client_for(membership: Membership, *, counter=None, **kwargs):
    from .clients import SalesforceClient

    return SalesforceClient(_usable(membership, Provider.SALESFORCE), counter=counter, **kwargs)


@dataclass(frozen=True)
class ProviderState:
    provider: str
    label: str
    connection: Connection | None

    @property
    def status(self) -> str:
        return self.connection.status if self.connection else "none"

    @property
    def can_disconnect(self) -> bool:
        return self.connection is not None and self.connection.status != Status.REVOKED


def my_connections(*, membership: Membership) -> list[ProviderState]:
    """Both providers for one member, connected or not, in a fixed order."""
    by_provider = {c.provider: c for c in Connection.objects.filter(membership=membership)}
    return [ProviderState(p.value, p.label, by_provider.get(p.value)) for p in Provider]


@dataclass(frozen=True)
class MemberHealth:
    membership: Membership
    microsoft: Connection | None
    salesforce: Connection | None


def connection_health(*, org: Organization) -> list[MemberHealth]:
    """Every active member with their two connections: two queries whatever the member count."""
    members = list(
        Membership.objects.active().filter(organization=org).select_related("user").order_by("user__email")
    )
    rows: dict[int, dict[str, Connection]] = {}
    for conn in Connection.objects.filter(membership__organization=org, membership__is_active=True):
        rows.setdefault(conn.membership_id, {})[conn.provider] = conn
    return [
        MemberHealth(m, rows.get(m.pk, {}).get(Provider.MICROSOFT), rows.get(m.pk, {}).get(Provider.SALESFORCE))
        for m in members
    ]


def salesforce_usage(*, org: Organization) -> list[SalesforceUsage]:
    return list(SalesforceUsage.objects.filter(organization=org).order_by("sf_org_id"))


def connections_shared(connections: list[Connection]) -> dict[int, Connection]:
    """For many connections at once (a dashboard page): {connection pk: another active member's
    live connection to the same remote account}. The same rule as `connection_identity_holder`,
    in one query whatever the number of connections."""
    from django.db.models.functions import Lower, Substr

    live = [c for c in connections if c.status != Status.REVOKED]
    if not live:
        return {}
    oids = {c.ms_object_id for c in live if c.provider == Provider.MICROSOFT and c.ms_object_id}
    upns = {c.account_name.strip().lower() for c in live
            if c.provider == Provider.MICROSOFT and c.account_name.strip()}
    sf_users = {c.sf_user_id[:15] for c in live if c.provider == Provider.SALESFORCE and c.sf_user_id}
    q = Q(provider=Provider.MICROSOFT, ms_object_id__in=oids) if oids else Q(pk__in=[])
    if upns:
        q |= Q(provider=Provider.MICROSOFT, upn__in=upns)
    if sf_users:
        q |= Q(provider=Provider.SALESFORCE, sf_user15__in=sf_users)
    candidates = list(
        Connection.objects.annotate(upn=Lower("account_name"), sf_user15=Substr("sf_user_id", 1, 15))
        .filter(q, membership__is_active=True).exclude(status=Status.REVOKED)
        .select_related("membership__user", "membership__organization").order_by("pk")
    )
    by_key: dict[tuple, list[Connection]] = {}
    for other in candidates:
        for key in _keys(other):
            by_key.setdefault(key, []).append(other)
    out: dict[int, Connection] = {}
    for conn in live:
        identity = connection_identity(conn)
        near = {o.pk: o for key in _keys(conn) for o in by_key.get(key, ())}
        for other in sorted(near.values(), key=lambda o: o.pk):
            if other.membership_id == conn.membership_id:
                continue
            if _matches(conn.provider, other, identity) and _same_identity(conn.provider, other, identity):
                out[conn.pk] = other
                break
    return out


def _keys(conn: Connection) -> list[tuple]:
    if conn.provider == Provider.MICROSOFT:
        return [("ms-oid", conn.ms_object_id), ("ms-upn", conn.account_name.strip().lower())]
    return [("sf", conn.sf_user_id[:15])]


def _matches(provider: str, other: Connection, identity: dict) -> bool:
    """`_identity_q` evaluated in Python on an already loaded row."""
    if provider == Provider.MICROSOFT:
        tid, oid = identity.get("ms_tenant_id") or "", identity.get("ms_object_id") or ""
        upn = (identity.get("account_name") or "").strip().lower()
        if tid and oid:
            if (other.ms_tenant_id, other.ms_object_id) == (tid, oid):
                return True
            return bool(upn) and not other.ms_object_id and other.account_name.lower() == upn
        return bool(upn) and other.account_name.lower() == upn
    org, user = (identity.get("sf_org_id") or "")[:15], (identity.get("sf_user_id") or "")[:15]
    return bool(org and user) and other.sf_org_id.startswith(org) and other.sf_user_id.startswith(user)
