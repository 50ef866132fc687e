"""Nothing a stranger can do tells them whether an address has a LinkPoint account."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.urls import reverse

from orgs import services
from orgs.access import resolve_org_context
from tests.conftest import PASSWORD

pytestmark = pytest.mark.usefixtures("fresh_cache")


def signup(client, email):
    return client.post(reverse("account_signup"), {"email": email, "password1": PASSWORD, "password2": PASSWORD})


@pytest.mark.django_db
def test_signup_with_a_registered_address_looks_like_a_new_one_and_mails_the_owner(client, carol):
    registered = signup(client, "carol@acme.test")
    client.logout()
    new = signup(client, "nobody@example.com")
    assert registered.status_code == new.status_code == 302
    assert registered["Location"] == new["Location"] == reverse("account_email_verification_sent")
    assert get_user_model().objects.filter(email__iexact="carol@acme.test").count() == 1
    to_carol = [m for m in mail.outbox if m.to == ["carol@acme.test"]]
    assert len(to_carol) == 1, "the owner is told someone tried to sign up with the address"
    assert "already" in (to_carol[0].subject + to_carol[0].body).lower()


@pytest.mark.django_db
def test_login_gives_the_same_answer_for_an_unknown_address_and_a_wrong_password(client, carol):
    unknown = client.post(reverse("account_login"), {"login": "nobody@example.com", "password": "wrong-password-1"})
    wrong = client.post(reverse("account_login"), {"login": "carol@acme.test", "password": "wrong-password-1"})
    assert unknown.status_code == wrong.status_code == 200
    assert unknown.context["form"].errors == wrong.context["form"].errors


@pytest.mark.django_db
def test_password_reset_gives_the_same_answer_for_an_unknown_address(client, carol):
    known = client.post(reverse("account_reset_password"), {"email": "carol@acme.test"})
    unknown = client.post(reverse("account_reset_password"), {"email": "nobody@example.com"})
    assert known.status_code == unknown.status_code == 302
    assert known["Location"] == unknown["Location"]


@pytest.mark.django_db
def test_invitation_page_is_the_same_whether_or_not_the_address_is_registered(client, alice, carol, charlie, org_a):
    ctx = resolve_org_context(alice, org_a.slug)
    pages = []
    for email in ("charlie@globex.test", "nobody@example.com"):
        invitation = services.invitation_create(ctx=ctx, email=email, role="member")
        response = client.get(reverse("orgs:invitation-accept", args=[invitation.token]))
        assert response.status_code == 200
        pages.append(response.content.decode()
                     .replace(email, "EMAIL").replace(invitation.token, "TOKEN")
                     .replace(reverse("orgs:invitation-accept", args=[invitation.token]).replace("/", "%2F"), "NEXT"))
    csrf_free = [re.sub(r'(X-CSRFToken": "|name="csrfmiddlewaretoken" value=")[^"]+', "CSRF", p) for p in pages]
    assert csrf_free[0] == csrf_free[1]
