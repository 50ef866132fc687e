"""Reads on connections (org-scoped) and the clients the sync engine asks for."""

from __future__ import annotations

from dataclasses import dataclass

from orgs.models import Membership, Organization

from .errors import AuthError
from .models import Connection, Provider, SalesforceUsage, Status

SIDE = {Provider.MICROSOFT: "outlook", Provider.SALESFORCE: "salesforce"}
LABEL = {Provider.MICROSOFT: "Outlook", Provider.SALESFORCE: "Salesforce"}


def connection_for(membership: Membership, provider: str) -> Connection | None:
    return Connection.objects.filter(membership=membership, provider=provider).first()


def _usable(membership: Membership, provider: str) -> Connection:
    conn = connection_for(membership, provider)
    if conn is None or not conn.is_usable:
        state = "is not connected" if conn is None or conn.status == Status.REVOKED else "needs a reconnect"
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
