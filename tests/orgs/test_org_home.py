import pytest
from django.urls import reverse

from orgs.dashboard import _PANELS, register_panel
from orgs.models import Membership


@pytest.mark.django_db
def test_dashboard_lists_members_with_role_and_status(client_for, alice, bob, carol, org_a):
    Membership.objects.filter(user=carol).update(is_active=False)
    body = client_for(alice).get(reverse("orgs:home", args=[org_a.slug])).content.decode()
    assert "Bob Admin" in body and "Admin" in body and "Deactivated" in body
    assert "Manage members" in body


@pytest.mark.django_db
def test_member_sees_no_admin_links(client_for, carol, org_a):
    body = client_for(carol).get(reverse("orgs:home", args=[org_a.slug])).content.decode()
    assert "Manage members" not in body
    assert reverse("orgs:audit-log", args=[org_a.slug]) not in body
    assert f"/o/{org_a.slug}/connections/" in body and f"/o/{org_a.slug}/policy/me/" in body


@pytest.mark.django_db
def test_registered_dashboard_panel_is_included(client_for, alice, org_a, tmp_path, settings):
    (tmp_path / "panel.html").write_text("<section>PANEL {{ panel.greeting }} {{ panel.org }}</section>")
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [*settings.TEMPLATES[0]["DIRS"], tmp_path]}]
    register_panel(template="panel.html", context=lambda ctx: {"greeting": "hi", "org": ctx.org.slug})
    try:
        body = client_for(alice).get(reverse("orgs:home", args=[org_a.slug])).content.decode()
    finally:
        _PANELS.pop("panel.html")
    assert "PANEL hi acme" in body


@pytest.mark.django_db
def test_malformed_and_unknown_slugs_get_the_friendly_404(client_for, alice):
    client = client_for(alice)
    for path in ("/o/NoSuchOrg/", "/o/bad%20slug!/", "/o/nope/members/"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert b"find that page" in response.content


@pytest.mark.django_db
def test_org_switcher_lists_my_orgs(client_for, alice, org_b):
    Membership.objects.create(organization=org_b, user=alice, role="member")
    body = client_for(alice).get(reverse("orgs:home", args=["acme"])).content.decode()
    assert 'href="/o/globex/"' in body and 'href="/o/acme/"' in body
