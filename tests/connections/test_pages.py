"""My connections, connect/disconnect views and the dashboard's connection health."""

from __future__ import annotations

import pytest
from django.db import connection as db
from django.test.utils import CaptureQueriesContext

from connections.models import Connection
from orgs.models import AuditEntry, Membership

from .conftest import DBS

pytestmark = pytest.mark.django_db(databases=DBS)


def test_my_connections_lists_both_providers(client_for, carol):
    page = client_for(carol).get("/o/acme/connections/")
    assert page.status_code == 200
    assert page.content.count(b"Not connected") == 2
    assert b"Connect Outlook" not in page.content  # the label is the provider's full name
    assert b"Connect Microsoft 365 (Outlook)" in page.content and b"Connect Salesforce" in page.content


@pytest.mark.parametrize("path,method", [
    ("/o/acme/connections/", "get"),
    ("/o/acme/connections/microsoft/connect/", "post"),
    ("/o/acme/connections/salesforce/disconnect/", "post"),
])
def test_outsider_gets_404(client_for, charlie, carol, path, method):
    assert getattr(client_for(charlie), method)(path).status_code == 404


def test_unknown_provider_is_404(client_for, carol):
    assert client_for(carol).post("/o/acme/connections/google/connect/").status_code == 404


def test_connect_needs_post(client_for, carol):
    assert client_for(carol).get("/o/acme/connections/microsoft/connect/").status_code == 405


def test_staff_without_membership_cannot_connect(client_for, pat, org_a):
    response = client_for(pat).post("/o/acme/connections/microsoft/connect/", follow=True)
    assert b"staff cannot connect" in response.content
    assert not Connection.objects.exists()


def test_htmx_connect_redirects_the_whole_page(client_for, carol):
    response = client_for(carol).post("/o/acme/connections/salesforce/connect/", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert response["HX-Redirect"].startswith("/sandbox/salesforce/services/oauth2/authorize?")


def test_disconnect_microsoft_with_htmx(connected, client_for, carol):
    connected(carol, providers=("microsoft",))
    response = client_for(carol).post("/o/acme/connections/microsoft/disconnect/", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert b'id="connections"' in response.content and b"<html" not in response.content
    assert b"Outlook is disconnected" in response.content
    conn = Connection.objects.get()
    assert conn.status == "revoked" and conn.token_blob == ""
    entry = AuditEntry.objects.get(action="connection.disconnect")
    assert entry.before["status"] == "connected" and entry.after["status"] == "revoked"


def test_disconnect_without_a_connection_is_404(client_for, carol):
    assert client_for(carol).post("/o/acme/connections/microsoft/disconnect/").status_code == 404


def test_reconnect_after_disconnect(connected, journey, carol):
    connected(carol, providers=("salesforce",))
    journey(carol).client.post("/o/acme/connections/salesforce/disconnect/")
    response = journey(carol).connect("salesforce", email="carol@acme.test")
    assert response.status_code == 302
    assert Connection.objects.get().status == "connected"
    assert AuditEntry.objects.filter(action="connection.reconnect").count() == 1


def _health_queries(client):
    with CaptureQueriesContext(db) as ctx:
        page = client.get("/o/acme/")
    assert page.status_code == 200
    return page, len(ctx.captured_queries)


def test_dashboard_shows_each_members_health_in_constant_queries(connected, client_for, make_user, org_a, alice,
                                                                  carol):
    connected(carol)
    from connections.selectors import salesforce_client_for

    salesforce_client_for(Membership.objects.get(user=carol)).limits()  # records Sforce-Limit-Info
    Connection.objects.filter(provider="microsoft").update(status="needs_reauth", last_error="Reconnect Outlook.")
    client = client_for(alice)
    page, few = _health_queries(client)
    body = page.content.decode()
    assert 'id="connection-health"' in body
    assert "Reconnect needed" in body and "Connected" in body and "Not connected" in body
    assert "API requests used today" in body

    for i in range(20):
        Membership.objects.create(organization=org_a, user=make_user(f"extra{i}@acme.test"), role="member")
    _, many = _health_queries(client)
    assert many == few


def test_members_do_not_see_the_health_panel(client_for, carol):
    page = client_for(carol).get("/o/acme/")
    assert b'id="connection-health"' not in page.content
