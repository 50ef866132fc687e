"""Both connect journeys end to end in the Django test client, through the sandbox consent pages."""

from __future__ import annotations

import pytest

from connections.models import Connection
from orgs.models import AuditEntry

from .conftest import DBS

pytestmark = pytest.mark.django_db(databases=DBS)


def test_microsoft_connect_end_to_end(journey, mailbox, carol):
    mailbox("carol@acme.test")
    j = journey(carol)
    authorize = j.start("microsoft")
    # msal built the URL on the sandbox authority; the browser is sent to the dev-server mount.
    assert "/common/oauth2/v2.0/authorize?" in authorize
    assert "code_challenge_method=S256" in authorize
    assert "offline_access" in authorize and "Calendars.ReadWrite" in authorize
    back = j.consent_microsoft(authorize, email="carol@acme.test")
    response = j.back(back)
    assert response.status_code == 302 and response["Location"] == "/o/acme/connections/"

    conn = Connection.objects.get(membership__user=carol, provider="microsoft")
    assert conn.status == "connected"
    assert conn.account_name == "carol@acme.test"
    assert conn.ms_tenant_id and conn.ms_object_id and conn.ms_home_account_id
    assert "Calendars.ReadWrite" in conn.scopes
    assert conn.access_expires_at is not None
    assert "AccessToken" in conn.read_tokens()["cache"]
    assert "AccessToken" not in conn.token_blob  # encrypted at rest

    page = j.client.get("/o/acme/connections/")
    assert b"Outlook is connected as carol@acme.test" in page.content
    assert b"Reconnect" in page.content
    entry = AuditEntry.objects.get(action="connection.connect")
    assert entry.after["account"] == "carol@acme.test"


def test_salesforce_connect_end_to_end(journey, sf_user, carol):
    user = sf_user("carol@acme.test")
    j = journey(carol)
    authorize = j.start("salesforce")
    assert "code_challenge_method=S256" in authorize and "state=" in authorize
    response = j.back(j.consent_salesforce(authorize, email="carol@acme.test"))
    assert response.status_code == 302

    conn = Connection.objects.get(membership__user=carol, provider="salesforce")
    assert conn.status == "connected"
    assert conn.account_name == "carol@acme.test"
    assert conn.sf_user_id == user.user_id and conn.sf_org_id == user.org.org_id
    assert conn.sf_instance_url == user.org.instance_url
    tokens = conn.read_tokens()
    assert tokens["access_token"] and tokens["refresh_token"]
    assert conn.access_expires_at is None
    page = j.client.get("/o/acme/connections/")
    assert b"Salesforce is connected as carol@acme.test" in page.content
