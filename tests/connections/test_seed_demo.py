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


@pytest.mark.django_db(databases=DBS, transaction=True)
@pytest.mark.parametrize("kind", ["contacts", "tasks", "calendar"])
def test_after_seed_demo_the_sync_command_works_and_a_second_run_writes_nothing(kind, capsys):
    """The demo path of the README: seed, then `sync --user member@acme.test` per kind."""
    import json

    if "sandbox_seed" not in get_commands():
        pytest.skip("the sandbox is not installed (SANDBOX_ENABLED is off)")
    call_command("seed_demo")
    capsys.readouterr()
    call_command("sync", user="member@acme.test", kind=kind, json=True)
    first = json.loads(capsys.readouterr().out)
    assert first["status"] == "succeeded", first
    # The seeder puts a share of the items on both sides: they are linked, not copied again.
    assert first["linked"] > 0 and sum(first["created"].values()) > 0, first
    assert first["errors"] == {"outlook": 0, "salesforce": 0}, first
    call_command("sync", user="member@acme.test", kind=kind, json=True)
    second = json.loads(capsys.readouterr().out)
    writes = sum(sum(second[k].values()) for k in ("created", "updated", "deleted"))
    assert second["status"] == "succeeded" and writes == 0, second
