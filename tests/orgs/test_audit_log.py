from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from orgs.models import AuditEntry


@pytest.mark.django_db
def test_audit_log_pages_by_keyset_without_gaps_or_repeats(client_for, alice, org_a, org_b):
    now = timezone.now()
    same_instant = now - timedelta(hours=1)
    for i in range(120):
        # Many rows share a timestamp, so only (created_at, id) orders them uniquely.
        AuditEntry.objects.create(organization=org_a, action=f"test.{i:03d}", actor_email="a@x",
                                  created_at=same_instant if i % 2 else now - timedelta(minutes=i))
    AuditEntry.objects.create(organization=org_b, action="test.other-org", actor_email="z@x")
    client = client_for(alice)
    seen, path = [], reverse("orgs:audit-log", args=[org_a.slug])
    response = client.get(path)
    while True:
        body = response.content.decode()
        seen += [line.split("test.")[1][:3] for line in body.split("<code>")[1:]]
        if "Older entries" not in body:
            break
        cursor = body.split('hx-get="?cursor=')[1].split('"')[0]
        response = client.get(f"{path}?cursor={cursor}", headers={"HX-Request": "true"})
        assert b"<html" not in response.content
    assert sorted(seen) == [f"{i:03d}" for i in range(120)]
    assert len(seen) == len(set(seen))
    assert "other-org" not in "".join(seen)


@pytest.mark.django_db
def test_garbage_cursor_shows_the_first_page(client_for, alice, org_a):
    AuditEntry.objects.create(organization=org_a, action="test.one", actor_email="a@x")
    response = client_for(alice).get(reverse("orgs:audit-log", args=[org_a.slug]) + "?cursor=%%%")
    assert response.status_code == 200 and b"test.one" in response.content


@pytest.mark.django_db
def test_members_cannot_read_the_audit_log(client_for, carol, org_a):
    assert client_for(carol).get(reverse("orgs:audit-log", args=[org_a.slug])).status_code == 403
