import pytest
from django.urls import reverse


@pytest.mark.django_db
def test_member_lands_on_their_org_home(client_for, carol):
    response = client_for(carol).get(reverse("home"), follow=True)
    assert response.status_code == 200
    assert b"Acme" in response.content


@pytest.mark.django_db
def test_outsider_gets_404_for_another_org(client_for, charlie, org_a):
    response = client_for(charlie).get(reverse("orgs:home", args=[org_a.slug]))
    assert response.status_code == 404


@pytest.mark.django_db(databases=["default", "sandbox"])
def test_seed_demo_is_idempotent_and_its_people_can_log_in(client):
    from io import StringIO

    from allauth.account.models import EmailAddress
    from django.core.management import call_command

    from orgs.models import Membership, Organization

    def state():
        return sorted(Membership.objects.values_list("organization__slug", "user__email", "role", "is_active"))

    call_command("seed_demo", stdout=StringIO())
    first = state()
    out = StringIO()
    call_command("seed_demo", stdout=out)
    assert "linkpoint-demo" in out.getvalue()
    assert state() == first
    assert Organization.objects.count() == 2
    assert ("acme", "member2@acme.test", "member", True) in first
    assert EmailAddress.objects.filter(email="staff@linkpoint.test", verified=True).exists()
    response = client.post(reverse("account_login"), {"login": "admin@acme.test", "password": "linkpoint-demo"})
    assert response.status_code == 302
    assert client.get(reverse("home"))["Location"] == reverse("orgs:home", args=["acme"])
    from connections.models import Connection

    connected = Connection.objects.filter(membership__user__email="member@acme.test")
    assert sorted(connected.values_list("provider", "status")) == [
        ("microsoft", "connected"),
        ("salesforce", "connected"),
    ]
