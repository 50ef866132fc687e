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
