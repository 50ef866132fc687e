"""The callback refuses answers it cannot tie to a sign-in this user started, and says why."""

from __future__ import annotations

import urllib.parse as up

import pytest

from connections.models import Connection
from orgs.models import Organization

from .conftest import DBS

pytestmark = pytest.mark.django_db(databases=DBS)


def _with_state(url: str, state: str | None) -> str:
    parts = up.urlsplit(url)
    query = {k: v for k, v in up.parse_qsl(parts.query) if k != "state"}
    if state is not None:
        query["state"] = state
    return parts._replace(query=up.urlencode(query)).geturl()


@pytest.mark.parametrize("provider", ["microsoft", "salesforce"])
@pytest.mark.parametrize("state", [None, "forged-state-value"])
def test_missing_or_wrong_state_is_refused(journey, mailbox, sf_user, carol, provider, state):
    mailbox("carol@acme.test")
    sf_user("carol@acme.test")
    j = journey(carol)
    url = j.start(provider)
    back = (j.consent_microsoft if provider == "microsoft" else j.consent_salesforce)(url, email="carol@acme.test")
    response = j.back(_with_state(back, state))
    assert response.status_code == 400
    assert b"Sign-in not accepted" in response.content and b"Nothing was connected" in response.content
    assert not Connection.objects.exists()


@pytest.mark.parametrize("provider", ["microsoft", "salesforce"])
def test_a_reused_state_is_refused_and_the_connection_is_kept(journey, mailbox, sf_user, carol, provider):
    mailbox("carol@acme.test")
    sf_user("carol@acme.test")
    j = journey(carol)
    url = j.start(provider)
    back = (j.consent_microsoft if provider == "microsoft" else j.consent_salesforce)(url, email="carol@acme.test")
    assert j.back(back).status_code == 302
    blob = Connection.objects.get(provider=provider).token_blob

    replay = j.back(back)
    assert replay.status_code == 400 and b"already" in replay.content
    conn = Connection.objects.get(provider=provider)
    assert conn.status == "connected" and conn.token_blob == blob


def test_another_users_state_is_refused(journey, mailbox, carol, bob):
    mailbox("carol@acme.test")
    j = journey(carol)
    back = j.consent_microsoft(j.start("microsoft"), email="carol@acme.test")
    # Bob (another session) lands on Carol's callback URL.
    j.client.force_login(bob, backend="django.contrib.auth.backends.ModelBackend")
    response = j.back(back)
    assert response.status_code == 400
    assert not Connection.objects.exists()


@pytest.mark.parametrize("provider", ["microsoft", "salesforce"])
def test_denied_consent_says_so_and_stores_nothing(journey, mailbox, sf_user, carol, provider, caplog):
    mailbox("carol@acme.test")
    sf_user("carol@acme.test")
    j = journey(carol)
    with caplog.at_level("WARNING", logger="linkpoint.connections"):
        response = j.connect(provider, email="carol@acme.test", accept=False)
    assert response.status_code == 302
    page = j.client.get(response["Location"])
    assert b"You declined access" in page.content
    assert not Connection.objects.exists()
    assert any("access_denied" in r.getMessage() for r in caplog.records)


def test_denied_reconnect_keeps_the_existing_connection(connected, journey, carol):
    before = connected(carol, providers=("microsoft",))["microsoft"]
    response = journey(carol).connect("microsoft", email="carol@acme.test", accept=False)
    assert response.status_code == 302
    after = Connection.objects.get(pk=before.pk)
    assert after.status == "connected" and after.token_blob == before.token_blob


@pytest.mark.parametrize("provider", ["microsoft", "salesforce"])
def test_expired_code_is_a_clear_message(journey, mailbox, sf_user, carol, provider, clock, caplog):
    mailbox("carol@acme.test")
    sf_user("carol@acme.test")
    j = journey(carol)
    url = j.start(provider)
    back = (j.consent_microsoft if provider == "microsoft" else j.consent_salesforce)(url, email="carol@acme.test")
    clock.advance(minutes=16)  # codes live 10 (Microsoft) / 15 (Salesforce) minutes
    with caplog.at_level("WARNING", logger="linkpoint.connections"):
        response = j.back(back)
    page = j.client.get(response["Location"])
    assert b"took too long or was already used, so it expired" in page.content
    assert not Connection.objects.exists()
    assert any("invalid_grant" in r.getMessage() for r in caplog.records)


def test_a_flow_older_than_twenty_minutes_is_unknown(journey, mailbox, carol, clock):
    mailbox("carol@acme.test")
    j = journey(carol)
    back = j.consent_microsoft(j.start("microsoft"), email="carol@acme.test")
    clock.advance(minutes=21)
    response = j.back(back)
    assert response.status_code == 400 and b"unknown, expired" in response.content


def test_other_salesforce_org_is_refused_and_revoked(journey, sf_user, carol, org_a):
    from sandbox.salesforce.models import SfRefreshToken

    allowed = sf_user("someone@acme.test").org.org_id
    other = sf_user("carol@elsewhere.test")
    assert other.org.org_id != allowed
    Organization.objects.filter(pk=org_a.pk).update(allowed_salesforce_org_id=allowed[:15])
    j = journey(carol)
    response = j.connect("salesforce", email="carol@elsewhere.test")
    page = j.client.get(response["Location"])
    assert b"only allows the Salesforce org" in page.content
    assert b"access was revoked" in page.content
    assert not Connection.objects.exists()
    assert SfRefreshToken.objects.filter(user=other).get().revoked

    # The allowed org connects fine (15-char setting, 18-char identity).
    ok = j.connect("salesforce", email="someone@acme.test")
    assert j.client.get(ok["Location"]).status_code == 200
    assert Connection.objects.get().sf_org_id == allowed


def test_callback_for_unknown_provider_is_404(client_for, carol):
    assert client_for(carol).get("/connections/callback/google/?state=x").status_code == 404


def test_callback_needs_login(client):
    response = client.get("/connections/callback/microsoft/?state=x&code=y")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
