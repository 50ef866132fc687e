"""A missing Microsoft permission is its own state: "Permission missing: re-consent" (issue 15).

Graph answers 403 ErrorAccessDenied to a token without the resource's scope;
Entra answers AADSTS65001 (consent_required) to a refresh that asks for a
permission the grant no longer holds. Neither is "reconnect": the sign-in
works, the member has to consent again. The run stops saying so, the
connection page and the admin's dashboard show it, and consenting again heals it.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from connections.models import Connection
from sandbox.microsoft.models import AccessToken
from sandbox.microsoft.services import consent_withdraw, contact_create, todo_task_create
from syncengine.engine.run import run_sync
from syncengine.models import SyncLogEntry

from .conftest import SANDBOX_DBS

pytestmark = pytest.mark.django_db(databases=SANDBOX_DBS, transaction=True)


def _outlook(member) -> Connection:
    return Connection.objects.get(membership=member.membership, provider="microsoft")


def _assert_consent_shown(client_for, carol, alice, member):
    page = client_for(carol).get(f"/o/{member.membership.organization.slug}/connections/").content.decode()
    assert "Permission missing: re-consent" in page and "Grant permissions" in page
    dashboard = client_for(alice).get(f"/o/{member.membership.organization.slug}/").content.decode()
    assert "Permission missing: re-consent" in dashboard


def test_a_token_without_the_calendar_scope_stops_the_run_for_re_consent(member, client_for, carol, alice):
    from tests.connections.conftest import Journey

    # The tenant's admin removed Calendars.ReadWrite from the grant; the token in hand says so.
    AccessToken.objects.filter(mailbox=member.mailbox).update(scopes="User.Read Contacts.ReadWrite Tasks.ReadWrite")
    result = run_sync(member.membership, "calendar", "manual")
    assert result.status == "stopped", result.as_dict()
    assert result.message.startswith("Permission missing (Outlook)")
    assert "Grant the permissions again" in result.message
    conn = _outlook(member)
    assert conn.status == "needs_consent" and "Calendars" in conn.last_error
    entry = SyncLogEntry.objects.get(run_id=result.run_id, action="run")
    assert entry.level == "error" and "Permission missing" in entry.message
    _assert_consent_shown(client_for, carol, alice, member)

    # Consenting again (the connect journey) heals it; the next run syncs.
    answer = Journey(client_for(carol), member.membership.organization.slug).connect(
        "microsoft", email=carol.email)
    assert answer.status_code == 302
    assert _outlook(member).status == "connected"
    assert run_sync(member.membership, "calendar", "manual").status == "succeeded"


def test_a_refresh_refused_for_missing_consent_is_not_reconnect(member, client_for, carol, alice):
    todo_task_create(member.mailbox, {"title": "Call back"})
    consent_withdraw(member.mailbox, ["Tasks.ReadWrite"])
    # The stored access token is due: the run refreshes it, asking for every scope LinkPoint needs.
    Connection.objects.filter(pk=_outlook(member).pk).update(access_expires_at=timezone.now() - dt.timedelta(minutes=1))
    AccessToken.objects.filter(mailbox=member.mailbox).update(expires_at=timezone.now() - dt.timedelta(minutes=1))
    result = run_sync(member.membership, "tasks", "manual")
    assert result.status == "stopped", result.as_dict()
    assert result.message.startswith("Permission missing (Outlook)")
    conn = _outlook(member)
    assert conn.status == "needs_consent" and "AADSTS65001" in conn.last_error
    assert member.sf("Task") == []  # nothing written, nothing read as an empty side
    _assert_consent_shown(client_for, carol, alice, member)


def test_a_write_refused_for_a_read_only_grant_stops_instead_of_failing_each_item(member):
    from sandbox.salesforce.services import sf_records_create

    contact_create(member.mailbox, {"givenName": "Ada", "surname": "Lovelace"})
    sf_records_create(user=member.sf_user, records=[("Contact", {"LastName": "Hopper"})])
    AccessToken.objects.filter(mailbox=member.mailbox).update(scopes="User.Read Contacts.Read")
    result = run_sync(member.membership, "contacts", "manual")
    assert result.status == "stopped", result.as_dict()
    assert result.message.startswith("Permission missing (Outlook)")
    assert _outlook(member).status == "needs_consent"
    assert [c.data.get("surname") for c in member.contacts_o()] == ["Lovelace"]  # no Hopper written
