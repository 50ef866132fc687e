"""The members page and its inline (HTMX) actions."""

import pytest
from django.urls import reverse

from orgs.models import AuditEntry, Membership

HX = {"HX-Request": "true"}


def url(name, org, *args):
    return reverse(f"orgs:{name}", args=[org.slug, *args])


def m_of(user):
    return Membership.objects.get(user=user)


@pytest.mark.django_db
def test_admin_sees_members_with_role_and_status(client_for, bob, carol, alice, org_a):
    Membership.objects.filter(user=carol).update(is_active=False)
    response = client_for(bob).get(url("member-list", org_a))
    assert response.status_code == 200
    body = response.content.decode()
    for email in ("alice@acme.test", "bob@acme.test", "carol@acme.test"):
        assert email in body
    assert "Deactivated" in body
    assert "Send invitation" in body


@pytest.mark.django_db
def test_member_gets_403(client_for, carol, org_a):
    assert client_for(carol).get(url("member-list", org_a)).status_code == 403


@pytest.mark.django_db
def test_outsider_gets_404(client_for, charlie, carol, org_a):
    assert client_for(charlie).get(url("member-list", org_a)).status_code == 404
    response = client_for(charlie).post(url("membership-deactivate", org_a, m_of(carol).public_id))
    assert response.status_code == 404
    assert m_of(carol).is_active


@pytest.mark.django_db
def test_role_change_swaps_the_row(client_for, alice, carol, org_a):
    response = client_for(alice).post(url("membership-role", org_a, m_of(carol).public_id), {"role": "admin"}, headers=HX)
    assert response.status_code == 200
    body = response.content.decode()
    assert body.strip().startswith("<tr") and "<html" not in body
    assert '<option value="admin" selected>' in body
    assert m_of(carol).role == "admin"


@pytest.mark.django_db
def test_rule_breach_is_shown_in_the_row_and_changes_nothing(client_for, alice, org_a):
    response = client_for(alice).post(url("membership-role", org_a, m_of(alice).public_id), {"role": "member"}, headers=HX)
    assert response.status_code == 200
    assert b"cannot demote the last active owner" in response.content
    assert b'<option value="owner" selected>' in response.content
    assert m_of(alice).role == "owner"
    assert not AuditEntry.objects.exists()


@pytest.mark.django_db
def test_admin_cannot_promote_to_owner_through_a_forged_post(client_for, bob, carol, org_a):
    response = client_for(bob).post(url("membership-role", org_a, m_of(carol).public_id), {"role": "owner"}, headers=HX)
    assert b"above your own role" in response.content
    assert m_of(carol).role == "member"


@pytest.mark.django_db
def test_admin_sees_no_actions_on_an_owner_row(client_for, bob, alice, org_a):
    response = client_for(bob).get(url("member-list", org_a))
    owner_row = response.content.decode().split(f'id="m-{m_of(alice).public_id}"')[1].split("</tr>")[0]
    assert "Deactivate" not in owner_row and "<select" not in owner_row


@pytest.mark.django_db
def test_deactivate_then_reactivate_inline(client_for, bob, carol, org_a):
    client = client_for(bob)
    response = client.post(url("membership-deactivate", org_a, m_of(carol).public_id), headers=HX)
    assert b"Reactivate" in response.content and not m_of(carol).is_active
    response = client.post(url("membership-reactivate", org_a, m_of(carol).public_id), headers=HX)
    assert b"Deactivate" in response.content and m_of(carol).is_active


@pytest.mark.django_db
def test_remove_returns_an_empty_row(client_for, alice, carol, org_a):
    response = client_for(alice).post(url("membership-remove", org_a, m_of(carol).public_id), headers=HX)
    assert response.status_code == 200 and response.content == b""
    assert not Membership.objects.filter(user=carol).exists()


@pytest.mark.django_db
def test_without_htmx_actions_redirect_back_with_a_message(client_for, alice, org_a):
    response = client_for(alice).post(url("membership-deactivate", org_a, m_of(alice).public_id), follow=True)
    assert response.redirect_chain[-1][0] == url("member-list", org_a)
    assert b"last active owner" in response.content


@pytest.mark.django_db
def test_get_on_an_action_url_is_refused(client_for, alice, carol, org_a):
    assert client_for(alice).get(url("membership-deactivate", org_a, m_of(carol).public_id)).status_code == 405


@pytest.mark.django_db
def test_invalid_email_is_shown_inline(client_for, alice, org_a):
    response = client_for(alice).post(url("invitation-create", org_a), {"email": "not-an-email", "role": "member"}, headers=HX)
    assert response.status_code == 200
    assert b"Enter a valid email address" in response.content
    assert b'id="invitations-section"' in response.content


# session, user, caller's membership, members, open invitations, the nav's org switcher
MEMBER_PAGE_QUERIES = 6


@pytest.mark.django_db
def test_members_page_query_count_does_not_grow_with_members(client_for, alice, org_a, django_user_model, django_assert_num_queries):
    from orgs.models import Invitation

    client = client_for(alice)
    Invitation.objects.create(organization=org_a, email="x0@example.com", invited_by=alice)
    with django_assert_num_queries(MEMBER_PAGE_QUERIES):
        response = client.get(url("member-list", org_a))
    assert response.content.count(b'<tr id="m-') == 1
    for i in range(24):
        user = django_user_model.objects.create(email=f"person{i}@acme.test", full_name=f"Person {i}")
        Membership.objects.create(organization=org_a, user=user, role="member", is_active=i % 3 != 0)
        Invitation.objects.create(organization=org_a, email=f"x{i + 1}@example.com", invited_by=alice)
    with django_assert_num_queries(MEMBER_PAGE_QUERIES):
        response = client.get(url("member-list", org_a))
    assert response.content.count(b'<tr id="m-') == 25
    assert response.content.count(b'<tr id="inv-') == 25
