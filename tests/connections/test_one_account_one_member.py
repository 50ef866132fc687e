"""One mailbox, one member: a remote account connected by a second member is refused, and a pair
from before stops both members' syncs before anything is read or written.

Issue 10: two members of one org could connect the same Outlook mailbox or Salesforce user;
each then synced the same items into their own links, creating everything twice. The same
holds across LinkPoint orgs (one Salesforce user in two orgs), so the rule spans every org;
another org's member is never named.
"""

from __future__ import annotations

import logging

import pytest
from django.contrib.messages import get_messages

from connections.models import Connection, Status
from orgs.models import AuditEntry, Membership
from sandbox.accounting import api_counts, api_counts_reset
from sandbox.salesforce.models import SfRefreshToken
from syncengine.engine.run import run_sync

from .conftest import DBS

pytestmark = pytest.mark.django_db(databases=DBS)


def _messages(response) -> str:
    return " ".join(str(m) for m in get_messages(response.wsgi_request))


@pytest.fixture
def bob_connected(connected, bob):
    return connected(bob)


@pytest.mark.parametrize(("provider", "thing"), [("microsoft", "Outlook mailbox"), ("salesforce", "Salesforce user")])
def test_a_second_member_of_the_org_is_refused_with_the_holders_name(
        journey, bob_connected, carol, provider, thing, caplog):
    j = journey(carol)
    with caplog.at_level(logging.WARNING, logger="linkpoint.connections"):
        response = j.connect(provider, email="bob@acme.test")
    assert response.status_code == 302 and response["Location"] == "/o/acme/connections/"
    said = _messages(response)
    assert f"This {thing} (bob@acme.test) is already connected by Bob Admin (bob@acme.test)" in said
    assert "Ask them to disconnect it, or sign in with your own account" in said
    assert not Connection.objects.filter(membership__user=carol).exists()
    entry = AuditEntry.objects.get(action="connection.refused_shared")
    assert entry.organization.slug == "acme" and entry.actor_email == "carol@acme.test"
    assert entry.after == {"provider": provider, "account": "bob@acme.test", "held_by": "bob@acme.test"}
    assert any("already connected by membership" in r.getMessage() for r in caplog.records)
    # bob keeps working.
    assert Connection.objects.get(membership__user=bob_connected[provider].membership.user, provider=provider).is_usable


def test_a_refused_salesforce_grant_is_revoked_and_the_holders_grant_is_not(journey, bob_connected, carol):
    before = set(SfRefreshToken.objects.values_list("pk", flat=True))
    journey(carol).connect("salesforce", email="bob@acme.test")
    [new] = SfRefreshToken.objects.exclude(pk__in=before)
    assert new.revoked
    assert SfRefreshToken.objects.filter(pk__in=before, revoked=False).count() == len(before)


def test_a_refused_reconnect_leaves_the_members_own_connection_as_it_was(journey, connected, bob_connected, carol):
    own = connected(carol, providers=("microsoft",))["microsoft"]
    response = journey(carol).connect("microsoft", email="bob@acme.test")
    assert "already connected by Bob Admin" in _messages(response)
    again = Connection.objects.get(pk=own.pk)
    assert again.account_name == "carol@acme.test" and again.is_usable and again.token_blob == own.token_blob


def test_once_the_holder_disconnects_or_leaves_the_account_can_be_connected(
        journey, client_for, bob_connected, bob, carol):
    j = journey(carol)
    assert "already connected" in _messages(j.connect("salesforce", email="bob@acme.test"))
    client_for(bob).post("/o/acme/connections/salesforce/disconnect/")
    assert "Salesforce is connected as bob@acme.test" in _messages(journey(carol).connect(
        "salesforce", email="bob@acme.test"))
    Membership.objects.filter(user=bob).update(is_active=False)
    assert "Outlook is connected" in _messages(journey(carol).connect("microsoft", email="bob@acme.test"))


def test_another_orgs_member_is_refused_without_naming_anyone(journey, bob_connected, charlie):
    response = journey(charlie, "globex").connect("salesforce", email="bob@acme.test")
    said = _messages(response)
    assert "already connected to LinkPoint in another organization" in said
    assert "Bob" not in said and "bob@acme.test is already" not in said and "Acme" not in said
    assert not Connection.objects.filter(membership__user=charlie).exists()
    entry = AuditEntry.objects.get(action="connection.refused_shared")
    assert entry.organization.slug == "globex"
    assert entry.after["held_by"] == "a member of another organization"


def test_the_same_person_in_two_orgs_is_told_where_it_is_connected(journey, connected, carol, org_b):
    connected(carol, providers=("salesforce",))
    Membership.objects.create(organization=org_b, user=carol, role="member")
    said = _messages(journey(carol, "globex").connect("salesforce", email="carol@acme.test"))
    assert "already connected to LinkPoint by you in Acme. Disconnect it there first" in said


# --- a pair from before: both syncs stop, nothing read or written ---------------------------------


@pytest.fixture
def legacy_pair(connected, bob, carol):
    """bob and carol both hold bob's mailbox, as rows written before the refusal existed."""
    connected(bob)
    mine = connected(carol)["microsoft"]
    bobs = Connection.objects.get(membership__user=bob, provider="microsoft")
    Connection.objects.filter(pk=mine.pk).update(
        account_name=bobs.account_name, ms_tenant_id=bobs.ms_tenant_id, ms_object_id=bobs.ms_object_id)
    return {u.email: Membership.objects.get(user=u) for u in (bob, carol)}


def test_a_pair_from_before_stops_both_members_syncs_before_any_request(legacy_pair, client_for, carol):
    api_counts_reset()
    for email, other in (("carol@acme.test", "Bob Admin (bob@acme.test)"),
                         ("bob@acme.test", "Carol Member (carol@acme.test)")):
        result = run_sync(legacy_pair[email], "contacts", "manual")
        assert result.status == "stopped"
        assert f"already connected by {other}" in result.message
        assert "Sync stopped before reading anything" in result.message
        assert result.api_requests == {"outlook": 0, "salesforce": 0}
    assert api_counts() == 0
    # Disconnecting one of the two lets the other sync again.
    client_for(carol).post("/o/acme/connections/microsoft/disconnect/")
    assert run_sync(legacy_pair["bob@acme.test"], "contacts", "manual").status == "succeeded"


def test_a_stopped_run_says_why_on_its_row(legacy_pair):
    from syncengine.models import SyncLogEntry, SyncRun

    result = run_sync(legacy_pair["carol@acme.test"], "calendar", "manual")
    run = SyncRun.objects.get(pk=result.run_id)
    assert run.status == "stopped" and "already connected by Bob Admin" in run.error
    assert SyncLogEntry.objects.filter(run=run, level="error", message__contains="already connected").exists()


def test_a_revoked_or_needs_reauth_connection(legacy_pair, carol):
    # needs_reauth still holds the account (a reconnect brings it back): still stopped.
    Connection.objects.filter(membership__user=carol, provider="microsoft").update(status=Status.NEEDS_REAUTH)
    assert "already connected" in run_sync(legacy_pair["bob@acme.test"], "contacts", "manual").message
    Connection.objects.filter(membership__user=carol, provider="microsoft").update(status=Status.REVOKED)
    assert run_sync(legacy_pair["bob@acme.test"], "contacts", "manual").status == "succeeded"
