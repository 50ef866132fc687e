"""Professional Services directory (issue 14): staff list and search every organization with
a health summary, open one from it (audited, under the staff banner); nobody else sees it."""

from __future__ import annotations

import pytest
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from orgs.models import AuditEntry, Organization

URL = "/staff/orgs/"


@pytest.mark.django_db
def test_staff_land_on_the_directory_not_the_dead_end(client_for, pat, alice, charlie, org_a, org_b):
    client = client_for(pat)
    home = client.get("/")
    assert home.status_code == 302 and home["Location"] == reverse("orgs:staff-directory")
    page = client.get(URL).content.decode()
    assert 'data-org="acme"' in page and 'data-org="globex"' in page
    assert "Needing attention" in page and "API requests today" in page
    assert f'href="{URL}">Organizations</a>' in page  # the staff nav
    assert "Ask your organization" not in page


@pytest.mark.django_db
def test_search_by_name_or_slug(client_for, pat, org_a, org_b):
    page = client_for(pat).get(URL + "?q=glob").content.decode()
    assert 'data-org="globex"' in page and 'data-org="acme"' not in page
    none = client_for(pat).get(URL + "?q=" + "x" * 500).content.decode()
    assert "No organization matches" in none


@pytest.mark.django_db
def test_summary_counts_members_needing_attention(client_for, pat, alice, bob, carol, org_a):
    page = client_for(pat).get(URL).content.decode()
    row = page.split('data-org="acme"')[1].split("</tr>")[0]
    assert "<td>3</td>" in row  # three members, none synced yet: all need attention
    assert '<span class="badge badge-warning">3</span>' in row


@pytest.mark.django_db
def test_entering_an_org_is_audited(client_for, pat, alice, org_a):
    client = client_for(pat)
    answer = client.post(reverse("orgs:staff-enter", args=["acme"]))
    assert answer.status_code == 302 and answer["Location"] == reverse("orgs:home", args=["acme"])
    entry = AuditEntry.objects.get(organization=org_a, action="support.enter")
    assert entry.acting_as_staff and entry.actor_email == "pat@linkpoint.test"
    home = client.get(answer["Location"]).content.decode()
    assert "Professional Services: you are configuring Acme" in home
    assert 'id="sync-health-panel"' in home  # staff act as owners: the health panel shows


@pytest.mark.django_db
def test_members_do_not_see_the_directory(client_for, alice, charlie, org_a, org_b):
    assert client_for(alice).get(URL).status_code == 404
    # A member "entering" their own org is just sent home, with no audit entry.
    assert client_for(alice).post(reverse("orgs:staff-enter", args=["acme"])).status_code == 302
    assert not AuditEntry.objects.filter(action="support.enter").exists()
    assert client_for(charlie).post(reverse("orgs:staff-enter", args=["acme"])).status_code == 404


@pytest.mark.django_db
def test_directory_queries_do_not_grow_with_orgs(client_for, pat, make_user):
    from orgs.models import Membership

    def count() -> int:
        with CaptureQueriesContext(db_connection) as ctx:
            assert client_for(pat).get(URL).status_code == 200
        return len(ctx.captured_queries)

    def add_orgs(n, start):
        for i in range(start, start + n):
            org = Organization.objects.create(name=f"Org {i:03d}", slug=f"org-{i:03d}")
            Membership.objects.create(organization=org, user=make_user(f"u{i}@o.test"), role="owner")

    add_orgs(2, 0)
    count()  # the first request of a session reads a few things once
    small = count()
    add_orgs(40, 2)
    assert count() == small
