"""Invitation flow end to end through the pages: invite, e-mail, accept, and every bad link."""

import re
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from orgs import services
from orgs.access import resolve_org_context
from orgs.models import AuditEntry, Invitation, Membership
from tests.conftest import PASSWORD

HX = {"HX-Request": "true"}
pytestmark = pytest.mark.usefixtures("fresh_cache")


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


def confirmation_link(message) -> str:
    """The path of allauth's verification link in a mail."""
    found = re.search(r"https?://[^/\s]+(/accounts/confirm-email/[^/\s]+/)", message.body)
    assert found, message.body
    return found.group(1)


@pytest.mark.django_db
def test_new_user_signs_up_from_the_invitation_verifies_and_joins(client, bob, org_a):
    invitation = services.invitation_create(ctx=resolve_org_context(bob, org_a.slug), email="dave@example.com", role="admin")
    accept_url = reverse("orgs:invitation-accept", args=[invitation.token])
    page = client.get(accept_url)
    assert page.status_code == 200
    assert b"Join Acme" in page.content
    signup_url = f"{reverse('account_signup')}?{urlencode({'next': accept_url})}"
    assert signup_url.encode() in page.content.replace(b"&amp;", b"&")
    response = client.post(signup_url, {"email": "dave@example.com", "password1": PASSWORD,
                                        "password2": PASSWORD, "next": accept_url})
    # Not signed in yet: the address must be proved first.
    assert response.status_code == 302 and response["Location"] == reverse("account_email_verification_sent")
    assert b"Accept invitation" not in client.get(accept_url).content
    (verification,) = [m for m in mail.outbox if m.to == ["dave@example.com"]]
    response = client.post(confirmation_link(verification))
    assert response.status_code == 302 and response["Location"] == accept_url
    page = client.get(accept_url)
    assert b"Accept invitation" in page.content
    response = client.post(accept_url)
    assert response.status_code == 302 and response["Location"] == reverse("orgs:home", args=[org_a.slug])
    m = Membership.objects.get(user__email="dave@example.com", organization=org_a)
    assert m.role == "admin" and m.is_active
    invitation.refresh_from_db()
    assert invitation.accepted_at is not None


@pytest.mark.django_db
def test_existing_user_signs_in_from_the_invitation_and_accepts(client, alice, charlie, org_a):
    invitation = services.invitation_create(ctx=resolve_org_context(alice, org_a.slug), email="charlie@globex.test", role="member")
    accept_url = reverse("orgs:invitation-accept", args=[invitation.token])
    page = client.get(accept_url)
    login_url = f"{reverse('account_login')}?{urlencode({'next': accept_url})}"
    assert login_url.encode() in page.content.replace(b"&amp;", b"&")
    response = client.post(login_url, {"login": "charlie@globex.test", "password": PASSWORD, "next": accept_url})
    assert response["Location"] == accept_url
    client.post(accept_url)
    assert Membership.objects.filter(user=charlie, organization=org_a, is_active=True).exists()


@pytest.mark.django_db
def test_forwarded_link_does_not_let_a_stranger_sign_up_as_the_invitee_and_join(client, alice, org_a):
    invitation = services.invitation_create(ctx=resolve_org_context(alice, org_a.slug), email="dave@example.com", role="member")
    accept_url = reverse("orgs:invitation-accept", args=[invitation.token])
    # The stranger has the link but not dave's mailbox.
    client.post(f"{reverse('account_signup')}?next={accept_url}", {
        "email": "dave@example.com", "password1": PASSWORD, "password2": PASSWORD, "next": accept_url})
    response = client.post(accept_url)
    assert b"Accept invitation" not in client.get(accept_url).content
    assert response.status_code in (200, 400)
    assert not Membership.objects.filter(user__email="dave@example.com").exists()
    invitation.refresh_from_db()
    assert invitation.is_open


@pytest.mark.django_db
def test_signed_in_with_the_unverified_invited_address_verifies_first_then_joins(
        client_for, make_user, invitation, org_a):
    dave = make_user("dave@example.com", verified=False)
    client = client_for(dave)
    accept_url = reverse("orgs:invitation-accept", args=[invitation.token])
    page = client.get(accept_url)
    assert b"Confirm that <strong>dave@example.com</strong> is" in page.content
    assert b"Send the verification e-mail again" in page.content
    assert b"Accept invitation" not in page.content
    refused = client.post(accept_url)
    assert refused.status_code == 400
    assert not Membership.objects.filter(user=dave).exists()
    mail.outbox.clear()
    response = client.post(reverse("orgs:invitation-send-verification", args=[invitation.token]), follow=True)
    assert b"Confirmation email sent to dave@example.com" in response.content
    (verification,) = mail.outbox
    assert verification.to == ["dave@example.com"]
    response = client.post(confirmation_link(verification))
    assert response["Location"] == accept_url  # back to the invitation, not the home page
    assert client.post(accept_url)["Location"] == reverse("orgs:home", args=[org_a.slug])
    assert Membership.objects.filter(user=dave, organization=org_a, is_active=True).exists()


@pytest.mark.django_db
def test_user_made_outside_allauth_gets_a_verification_mail_too(client_for, django_user_model, invitation):
    # createsuperuser / the admin make users without allauth's address row.
    dave = django_user_model.objects.create_user(email="dave@example.com", password=PASSWORD)
    client = client_for(dave)
    assert client.post(reverse("orgs:invitation-accept", args=[invitation.token])).status_code == 400
    client.post(reverse("orgs:invitation-send-verification", args=[invitation.token]))
    assert [m.to for m in mail.outbox] == [["dave@example.com"]]
    assert not Membership.objects.filter(user=dave).exists()


@pytest.mark.django_db
def test_asking_again_right_away_sends_no_second_mail_and_says_why(client_for, make_user, invitation):
    dave = make_user("dave@example.com", verified=False)
    client = client_for(dave)
    url = reverse("orgs:invitation-send-verification", args=[invitation.token])
    client.post(url)
    mail.outbox.clear()
    page = client.post(url, follow=True)
    assert not mail.outbox
    assert b"its link still works" in page.content
    assert client.get(url).status_code == 405


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
def test_signed_out_visitor_of_an_expired_link_is_told_so_before_signing_in(client, invitation):
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    page = client.get(reverse("orgs:invitation-accept", args=[invitation.token]))
    assert b"This invitation has expired. Ask an admin to send a new one." in page.content
    assert reverse("account_signup").encode() + b"?next" not in page.content


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
