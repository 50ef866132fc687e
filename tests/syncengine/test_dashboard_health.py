"""Org admin dashboard (issue 14): sync health per member from real runs through the sandbox,
the shared-account flag, query counts pinned at 5 and 500 members, CSV export, roles."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from syncengine.engine.run import run_sync
from syncengine.models import SyncRun

from .conftest import SANDBOX_DBS


def connect_both(user, client_for, org_slug="acme"):
    from orgs.models import Membership
    from sandbox.microsoft.services import mailbox_ensure
    from sandbox.salesforce.services import sf_user_ensure
    from tests.connections.conftest import Journey

    mailbox_ensure(user.email, user.full_name or user.email)
    sf_user_ensure(email=user.email, org_name="Acme", time_zone="UTC")
    journey = Journey(client_for(user), org_slug)
    for provider in ("microsoft", "salesforce"):
        assert journey.connect(provider, email=user.email).status_code == 302
    return Membership.objects.select_related("user", "organization").get(
        user=user, organization__slug=org_slug)


def health_rows(client, slug="acme", query=""):
    page = client.get(reverse("syncengine:health", args=[slug]) + query)
    assert page.status_code == 200
    return page.content.decode()


@pytest.fixture
def four_members(alice, bob, carol, make_user, org_a, client_for):
    """carol healthy, bob with a refused Microsoft refresh token, alice failing three times
    in a row, dave connected but never synced: every state from real runs."""
    from orgs.models import Membership
    from sandbox.faults import fault_add, faults_clear

    dave = make_user("dave@acme.test", full_name="Dave Newcomer")
    Membership.objects.create(organization=org_a, user=dave, role="member")
    m = {u.email.split("@")[0]: connect_both(u, client_for) for u in (alice, bob, carol, dave)}

    assert run_sync(m["carol"], "contacts", "manual").status == "succeeded"

    # Microsoft refuses the refresh token (an expired one answers invalid_grant, AADSTS700082).
    from connections.models import Connection

    Connection.objects.filter(membership=m["bob"], provider="microsoft").update(
        access_expires_at=timezone.now() - timedelta(hours=1))
    fault_add(side="outlook", kind="revoked_refresh_token", path_pattern="/token", count=None)
    assert run_sync(m["bob"], "contacts", "manual").status == "stopped"
    faults_clear()

    # Salesforce is down and says "come back in an hour": each run fails at once.
    fault_add(side="salesforce", kind="http_503", count=None, retry_after=3600)
    for _ in range(3):
        assert run_sync(m["alice"], "tasks", "manual").status == "failed"
    faults_clear()
    return m


@pytest.mark.django_db(databases=SANDBOX_DBS, transaction=True)
def test_health_states_come_from_real_runs(four_members, client_for, alice):
    from syncengine.selectors import org_sync_health

    rows = {r.membership.user.email: r for r in org_sync_health(org=four_members["carol"].organization)}
    assert rows["carol@acme.test"].state == "healthy" and not rows["carol@acme.test"].reasons
    assert rows["bob@acme.test"].microsoft.stopped
    assert "Needs to reconnect Outlook" in rows["bob@acme.test"].reasons
    assert "Tasks: 3 failed runs in a row" in rows["alice@acme.test"].reasons
    assert rows["dave@acme.test"].reasons == ("Never synced",)
    # Attention first, then by e-mail; the healthy member last.
    order = [r.membership.user.email for r in org_sync_health(org=four_members["carol"].organization)]
    assert order == ["alice@acme.test", "bob@acme.test", "dave@acme.test", "carol@acme.test"]

    html = health_rows(client_for(alice))
    assert "3 failed runs in a row" in html and "Needs to reconnect Outlook" in html
    assert "Reconnect needed" in html and "Never synced" in html
    carol_id = four_members["carol"].public_id
    assert f"/o/acme/sync/history/?member={carol_id}" in html
    assert f"/o/acme/sync/logs/?member={carol_id}" in html
    # The forecast: carol's Outlook token stops 90 days after its last use.
    carol = rows["carol@acme.test"].microsoft
    assert carol.lapses_at.date() == (carol.connection.last_used_at + timedelta(days=90)).date()
    # Filters: state and kind.
    attention = health_rows(client_for(alice), query="?state=attention")
    assert 'data-member="carol@acme.test"' not in attention and 'data-member="bob@acme.test"' in attention
    reconnect = health_rows(client_for(alice), query="?state=reconnect")
    assert 'data-member="bob@acme.test"' in reconnect and 'data-member="alice@acme.test"' not in reconnect
    members = health_rows(client_for(alice), query="?role=member")
    assert 'data-member="alice@acme.test"' not in members and 'data-member="carol@acme.test"' in members


@pytest.mark.django_db(databases=SANDBOX_DBS, transaction=True)
def test_lapsing_within_seven_days_needs_attention(member, client_for, bob):
    from connections.models import Connection
    from syncengine.selectors import org_sync_health

    run_sync(member.membership, "contacts", "manual")
    Connection.objects.filter(membership=member.membership, provider="microsoft").update(
        last_used_at=timezone.now() - timedelta(days=85))
    (row,) = [r for r in org_sync_health(org=member.membership.organization)
              if r.membership.pk == member.membership.pk]
    assert row.microsoft.lapses_soon and not row.microsoft.stopped
    assert any(reason.startswith("Outlook sign-in lapses on") for reason in row.reasons)


@pytest.mark.django_db(databases=SANDBOX_DBS, transaction=True)
def test_salesforce_forecast_follows_the_org_setting(member, client_for, alice):
    from syncengine.selectors import org_sync_health

    def forecast():
        (row,) = [r for r in org_sync_health(org=member.membership.organization)
                  if r.membership.pk == member.membership.pk]
        return row.salesforce

    assert forecast().lapses_at is None  # Salesforce's default: valid until revoked
    response = client_for(alice).post(reverse("syncengine:dashboard-settings", args=["acme"]), {
        "api_share_percent": "20", "alert_delivery": "immediate", "sf_refresh_policy": "absolute",
        "sf_refresh_days": "30"})
    assert response.status_code == 302
    f = forecast()
    assert f.lapses_at.date() == (f.connection.connected_at + timedelta(days=30)).date()


@pytest.mark.django_db(databases=SANDBOX_DBS, transaction=True)
def test_two_members_one_mailbox_is_flagged(member, bob, client_for):
    from connections.models import Connection
    from orgs.models import Membership

    # A pair that predates the connect-time refusal: bob's row points at carol's mailbox.
    carols = Connection.objects.get(membership=member.membership, provider="microsoft")
    bobs = Membership.objects.get(user=bob)
    Connection.objects.create(membership=bobs, provider="microsoft", account_name=carols.account_name,
                              ms_tenant_id=carols.ms_tenant_id, ms_object_id=carols.ms_object_id,
                              connected_at=timezone.now())
    html = health_rows(client_for(bob))
    assert "Outlook account also connected by carol@acme.test" in html
    assert "Outlook account also connected by bob@acme.test" in html


def _bulk_org(org, n: int):
    """n members with both connections and a run per kind (factories, no remote calls)."""
    from accounts.models import User
    from connections.models import Connection
    from orgs.models import Membership

    t = timezone.now()
    users = User.objects.bulk_create([User(email=f"m{i}-{n}@acme.test") for i in range(n)])
    members = Membership.objects.bulk_create(
        [Membership(organization=org, user=u, role="member") for u in users])
    Connection.objects.bulk_create(
        [Connection(membership=m, provider=p, account_name=f"{m.user.email}", ms_object_id=f"o{m.pk}",
                    ms_tenant_id="t", sf_user_id=f"005{m.pk:012d}", sf_org_id="00D000000000001",
                    connected_at=t, last_used_at=t)
         for m in members for p in ("microsoft", "salesforce")])
    SyncRun.objects.bulk_create(
        [SyncRun(membership=m, kind=k, trigger="manual", status=s, started_at=t, finished_at=t)
         for m in members for k in ("calendar", "contacts", "tasks") for s in ("failed", "succeeded")])


def _queries(client, url) -> int:
    with CaptureQueriesContext(db_connection) as ctx:
        response = client.get(url)
        if hasattr(response, "streaming_content"):
            b"".join(response.streaming_content)
    assert response.status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["orgs:home", "syncengine:health", "syncengine:health-export"])
def test_query_count_is_the_same_at_5_and_500_members(client_for, alice, org_a, org_b, url):
    from orgs.models import Organization

    small, big = org_a, Organization.objects.create(name="Big", slug="big")
    from orgs.models import Membership

    Membership.objects.create(organization=big, user=alice, role="owner")
    _bulk_org(small, 4)  # + alice: 5 members
    _bulk_org(big, 499)  # + alice: 500 members
    client = client_for(alice)
    at_5 = _queries(client, reverse(url, args=[small.slug]))
    at_500 = _queries(client, reverse(url, args=[big.slug]))
    pinned = {"orgs:home": 25, "syncengine:health": 20, "syncengine:health-export": 13}
    assert at_5 == at_500 == pinned[url]


@pytest.mark.django_db
def test_csv_export_lists_each_member_and_kind(client_for, alice, bob, carol, org_a):
    response = client_for(alice).get(reverse("syncengine:health-export", args=["acme"]) + "?kind=tasks")
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [(r["member"], r["kind"]) for r in rows] == [
        ("alice@acme.test", "tasks"), ("bob@acme.test", "tasks"), ("carol@acme.test", "tasks")]
    assert rows[0]["needs_attention"] == "yes" and rows[0]["reasons"] == "Never synced"


@pytest.mark.django_db
def test_members_get_403_and_outsiders_404(client_for, alice, carol, charlie, org_a, org_b):
    for name in ("syncengine:health", "syncengine:health-export", "syncengine:dashboard-settings"):
        assert client_for(carol).get(reverse(name, args=["acme"])).status_code == 403
        assert client_for(charlie).get(reverse(name, args=["acme"])).status_code == 404
    # A member's org home has no health panel (admins only).
    home = client_for(carol).get(reverse("orgs:home", args=["acme"])).content.decode()
    assert 'id="sync-health-panel"' not in home


@pytest.mark.django_db
def test_keyset_paging_walks_every_member_once(client_for, alice, org_a):
    from syncengine.selectors import HealthFilter, health_page

    _bulk_org(org_a, 7)
    seen, cursor = [], ""
    while True:
        page = health_page(org=org_a, f=HealthFilter(), cursor=cursor, size=3)
        seen += [r.membership.user.email for r in page.rows]
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    assert len(seen) == len(set(seen)) == 8
    # A tampered cursor starts from the top instead of failing.
    assert health_page(org=org_a, f=HealthFilter(), cursor="%%%garbage", size=3).rows
    assert client_for(alice).get(reverse("syncengine:health", args=["acme"]) + "?after=zz!").status_code == 200
