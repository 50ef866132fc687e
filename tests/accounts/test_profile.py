import pytest
from django.test import Client
from django.urls import reverse

from orgs.models import Membership


@pytest.mark.django_db
def test_user_sets_name_and_time_zone(client_for, carol):
    client = client_for(carol)
    page = client.get(reverse("accounts:profile"))
    assert b"Europe/Berlin" in page.content
    response = client.post(reverse("accounts:profile"), {"full_name": "Carol C.", "time_zone": "Europe/Berlin"}, follow=True)
    assert b"Your account was updated" in response.content
    carol.refresh_from_db()
    assert (carol.full_name, carol.time_zone) == ("Carol C.", "Europe/Berlin")


@pytest.mark.django_db
def test_unknown_time_zone_is_refused(client_for, carol):
    response = client_for(carol).post(reverse("accounts:profile"), {"full_name": "X", "time_zone": "Mars/Olympus"})
    assert response.status_code == 200
    assert b"Select a valid choice" in response.content
    carol.refresh_from_db()
    assert carol.time_zone == "UTC"


@pytest.mark.django_db
def test_login_page_uses_our_layout(client):
    page = client.get(reverse("account_login"))
    assert b"css/app.css" in page.content and b"Sign In" in page.content
    assert b'class="container auth-card card"' in page.content


@pytest.mark.django_db
def test_csrf_less_post_gets_the_friendly_page_and_changes_nothing(alice, carol, org_a):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice, backend="django.contrib.auth.backends.ModelBackend")
    m = Membership.objects.get(user=carol)
    response = client.post(reverse("orgs:membership-deactivate", args=[org_a.slug, m.public_id]))
    assert response.status_code == 403
    assert b"This form has expired" in response.content
    m.refresh_from_db()
    assert m.is_active


@pytest.mark.django_db
def test_anonymous_is_sent_to_login(client):
    response = client.get(reverse("accounts:profile"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("account_login"))
