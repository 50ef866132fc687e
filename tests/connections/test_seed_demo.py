from __future__ import annotations

import pytest
from django.core.management import call_command, get_commands

from connections.models import Connection
from orgs.models import AuditEntry

from .conftest import DBS

pytestmark = pytest.mark.django_db(databases=DBS)


def test_seed_demo_connects_member_through_oauth_and_is_idempotent(capsys):
    call_command("seed_demo")
    conns = {c.provider: c for c in Connection.objects.filter(membership__user__email="member@acme.test")}
    assert set(conns) == {"microsoft", "salesforce"}
    assert all(c.status == "connected" for c in conns.values())
    assert conns["microsoft"].account_name == "member@acme.test"
    assert conns["salesforce"].account_name == "member@acme.test"
    # Made by the OAuth callback, which audits; a hand-written row would not be.
    assert AuditEntry.objects.filter(action="connection.connect").count() == 2
    blobs = {p: c.token_blob for p, c in conns.items()}

    call_command("seed_demo")
    again = {c.provider: c.token_blob for c in Connection.objects.filter(membership__user__email="member@acme.test")}
    assert again == blobs and Connection.objects.count() == 2
    assert "already connected" in capsys.readouterr().out

    if "sandbox_seed" in get_commands():
        from connections.selectors import graph_client_for, salesforce_client_for

        membership = conns["microsoft"].membership
        assert list(graph_client_for(membership).iter_pages("/me/contacts"))[0].items
        rows = [r for p in salesforce_client_for(membership).query_pages("SELECT Id FROM Contact") for r in p]
        assert rows
