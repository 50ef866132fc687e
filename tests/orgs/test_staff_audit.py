"""Professional Services: staff act in any org, under a banner, and every write is audited."""

import pytest
from django.urls import reverse

from orgs.models import AuditEntry, Membership


@pytest.mark.django_db
def test_staff_change_is_audited_under_their_own_name(client_for, pat, alice, carol, org_a):
    client = client_for(pat)
    page = client.get(reverse("orgs:member-list", args=[org_a.slug]))
    assert page.status_code == 200
    assert b"Professional Services: you are configuring Acme" in page.content
    m = Membership.objects.get(user=carol)
    client.post(reverse("orgs:membership-role", args=[org_a.slug, m.public_id]), {"role": "admin"}, headers={"HX-Request": "true"})
    m.refresh_from_db()
    assert m.role == "admin"
    entry = AuditEntry.objects.get(organization=org_a, action="membership.change_role")
    assert entry.acting_as_staff is True
    assert entry.actor_email == "pat@linkpoint.test"
    log = client.get(reverse("orgs:audit-log", args=[org_a.slug])).content.decode()
    assert "pat@linkpoint.test" in log and "Professional Services" in log


@pytest.mark.django_db
def test_members_see_no_banner(client_for, alice, org_a):
    page = client_for(alice).get(reverse("orgs:home", args=[org_a.slug]))
    assert b"Professional Services:" not in page.content
