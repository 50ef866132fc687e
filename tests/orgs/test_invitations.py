"""Invitation flow end to end through the pages: invite, e-mail, accept, and every bad link."""

from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from orgs import services
from orgs.access import resolve_org_context
from orgs.models import AuditEntry, Invitation, Membership
from tests.conftest import PASSWORD

HX = {"HX-Request": "true"}


def invite(client, org, email, role="member", **extra):
    return client.post(reverse("orgs:invitation-create", args=[org.slug]), {"email": email, "role": role}, **extra)


@pytest.mark.django_db
def test_admin_invites_and_the_invitee_gets_an_email_with_the_link(client_for, bob, org_a, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = invite(client_for(bob), org_a, "dave@example.com", headers=HX)
    assert response.status_code == 200
    assert b"Invitation sent to dave@example.com" in response.content
    assert b"<html" not in response.content  # a fragment, not a page
    invitation = Invitation.objects.get(email="dave@example.com")
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["dave@example.com"]
    assert reverse("orgs:invitation-accept", args=[invitation.token]) in mail.outbox[0].body
    assert AuditEntry.objects.filter(action="invitation.create", target="dave@example.com").exists()


@pytest.mark.django_db
def test_new_user_signs_up_from_the_invitation_and_joins(client, bob, org_a):
    invitation = services.invitation_create(ctx=resolve_org_context(bob, org_a.slug), email="dave@example.com", role="admin")
    accept_url = reverse("orgs:invitation-accept", args=[invitation.token])
    response = client.get(accept_url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_signup"))
    assert "next=" in response["Location"]
    response = client.post(f"{reverse('account_signup')}?next={accept_url}",
                           {"email": "dave@example.com", "password1": PASSWORD, "password2": PASSWORD, "next": accept_url})
    assert response.status_code == 302 and response["Location"] == accept_url
    page = client.get(accept_url)
    assert b"Join Acme" in page.content
    response = client.post(accept_url)
    assert response.status_code == 302 and response["Location"] == reverse("orgs:home", args=[org_a.slug])
    m = Membership.objects.get(user__email="dave@example.com", organization=org_a)
    assert m.role == "admin" and m.is_active
    invitation.refresh_from_db()
    assert invitation.accepted_at is not None


@pytest.mark.django_db
def test_existing_user_is_sent_to_login_and_accepts(client, client_for, alice, charlie, org_a):
    invitation = services.invitation_create(ctx=resolve_org_context(alice, org_a.slug), email="charlie@globex.test", role="member")
    accept_url = reverse("orgs:invitation-accept", args=[invitation.token])
    response = client.get(accept_url)
    assert response["Location"].startswith(reverse("account_login"))
    response = client.post(reverse("account_login"), {"login": "charlie@globex.test", "password": PASSWORD, "next": accept_url})
    assert response["Location"] == accept_url
    client.post(accept_url)
    assert Membership.objects.filter(user=charlie, organization=org_a, is_active=True).exists()


@pytest.fixture
def invitation(alice, org_a):
    return services.invitation_create(ctx=resolve_org_context(alice, org_a.slug), email="dave@example.com", role="member")


@pytest.fixture
def dave(make_user):
    return make_user("dave@example.com")


def accept(client_for, user, invitation):
    return client_for(user).post(reverse("orgs:invitation-accept", args=[invitation.token]))


@pytest.mark.django_db
def test_expired_invitation_is_refused(client_for, dave, invitation):
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    response = accept(client_for, dave, invitation)
    assert response.status_code == 400
    assert b"This invitation has expired" in response.content
    assert not Membership.objects.filter(user=dave).exists()


@pytest.mark.django_db
def test_reused_invitation_is_refused(client_for, dave, invitation, org_a):
    accept(client_for, dave, invitation)
    Membership.objects.filter(user=dave).delete()  # even after leaving, the link stays spent
    response = accept(client_for, dave, invitation)
    assert response.status_code == 400
    assert b"already used" in response.content
    assert not Membership.objects.filter(user=dave).exists()


@pytest.mark.django_db
def test_revoked_invitation_is_refused(client_for, alice, dave, invitation, org_a):
    client_for(alice).post(reverse("orgs:invitation-revoke", args=[org_a.slug, invitation.public_id]), headers=HX)
    response = accept(client_for, dave, invitation)
    assert response.status_code == 400
    assert b"was revoked" in response.content
    assert not Membership.objects.filter(user=dave).exists()


@pytest.mark.django_db
def test_invitation_for_a_current_member_is_refused_with_a_message(client_for, alice, carol, org_a):
    response = invite(client_for(alice), org_a, "Carol@acme.test", headers=HX)
    assert b"carol@acme.test is already a member of Acme" in response.content
    assert not Invitation.objects.exists()


@pytest.mark.django_db
def test_accepting_when_already_a_member_changes_nothing(client_for, alice, carol, org_a):
    invitation = Invitation.objects.create(organization=org_a, email="carol@acme.test", role="admin")
    response = accept(client_for, carol, invitation)
    assert response.status_code == 400
    assert b"already a member of Acme" in response.content
    assert Membership.objects.get(user=carol).role == "member"
    invitation.refresh_from_db()
    assert invitation.accepted_at is None


@pytest.mark.django_db
def test_second_open_invitation_for_the_same_address_is_refused(client_for, alice, invitation, org_a):
    response = invite(client_for(alice), org_a, "DAVE@example.com", headers=HX)
    assert b"already has an open invitation" in response.content
    assert Invitation.objects.count() == 1


@pytest.mark.django_db
def test_link_opened_by_another_account_reveals_nothing(client_for, charlie, invitation):
    response = client_for(charlie).get(reverse("orgs:invitation-accept", args=[invitation.token]))
    assert response.status_code == 404
    assert b"Acme" not in response.content
    assert b"not for charlie@globex.test" in response.content


@pytest.mark.django_db
def test_unknown_token_is_a_clear_404(client):
    response = client.get(reverse("orgs:invitation-accept", args=["nope"]))
    assert response.status_code == 404
    assert b"not valid" in response.content


@pytest.mark.django_db
def test_resend_mails_again_and_extends_the_expiry(client_for, alice, invitation, org_a, django_capture_on_commit_callbacks):
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() + timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(alice).post(reverse("orgs:invitation-resend", args=[org_a.slug, invitation.public_id]), headers=HX)
    assert b"Sent again" in response.content
    assert len(mail.outbox) == 1
    invitation.refresh_from_db()
    assert invitation.expires_at > timezone.now() + timedelta(days=6)
