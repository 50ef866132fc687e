"""A member connected to the sandbox's Outlook mailbox and Salesforce org.

Remote data is created and edited "as the user" through the sandbox services;
the engine reaches it only through the product's HTTP clients.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from unittest import mock

import pytest

SANDBOX_DBS = ["default", "sandbox"]


@dataclass
class Member:
    membership: object
    mailbox: object
    sf_user: object

    # ---- Outlook, as the user
    def graph_items(self, kind: str):
        from sandbox.microsoft.models import Item

        return list(Item.objects.filter(mailbox=self.mailbox, kind=kind, deleted=False).order_by("pk"))

    def contacts_o(self):
        return self.graph_items("contact")

    def tasks_o(self):
        return self.graph_items("todoTask")

    def events_o(self):
        # Series masters and single events (a changed occurrence is part of its series).
        return [
            i for i in self.graph_items("event")
            if not i.data.get("seriesMasterId") and i.event_type != "exception"
        ]

    # ---- Salesforce, as the user
    def sf(self, sobject: str):
        from sandbox.salesforce.services import sf_records

        return [r for r in sf_records(org=self.sf_user.org, sobject=sobject) if r.get("OwnerId") == self.sf_user.user_id]

    def sf_create(self, sobject: str, **fields) -> str:
        from sandbox.salesforce.services import sf_records_create

        (r,) = sf_records_create(user=self.sf_user, records=[(sobject, fields)])
        assert r.success, r.errors
        return r.id

    @contextmanager
    def saves_in_salesforce_while_a_run_reads(self, sobject: str, sf_id: str, **fields):
        """Within the block, each run's read of Outlook (after its Salesforce read) is
        followed by this user save in Salesforce: the save lands between the run's
        read and its writes."""
        from syncengine.engine import run as run_mod

        real = run_mod.fetch_outlook

        def read_then_save(*args, **kwargs):
            out = real(*args, **kwargs)
            self.sf_update(sobject, sf_id, **fields)
            return out

        with mock.patch.object(run_mod, "fetch_outlook", read_then_save):
            yield

    def sf_update(self, sobject: str, sf_id: str, **fields) -> None:
        from sandbox.salesforce.services import sf_records_update

        (r,) = sf_records_update(user=self.sf_user, records=[(sobject, sf_id, fields)])
        assert r.success, r.errors

    def sf_delete(self, *ids: str) -> None:
        from sandbox.salesforce.services import sf_records_delete

        sf_records_delete(user=self.sf_user, ids=list(ids))


@pytest.fixture
def member(carol, org_a, client_for):
    """carol, connected to both sandbox services through the real OAuth journeys."""
    from orgs.models import Membership
    from sandbox.microsoft.services import mailbox_ensure
    from sandbox.salesforce.services import sf_user_ensure
    from tests.connections.conftest import Journey

    mailbox = mailbox_ensure(carol.email, "Carol Member")
    sf_user = sf_user_ensure(email=carol.email, org_name="Acme", time_zone="UTC")
    journey = Journey(client_for(carol), org_a.slug)
    for provider in ("microsoft", "salesforce"):
        answer = journey.connect(provider, email=carol.email)
        assert answer.status_code == 302, answer.content[:300]
    membership = Membership.objects.select_related("user", "organization").get(user=carol, organization=org_a)
    return Member(membership=membership, mailbox=mailbox, sf_user=sf_user)
