"""TOTP enrolment through allauth's own pages, and orgs that require it of admins."""

import base64
import hashlib
import hmac
import re
import struct
import time

import pytest
from allauth.mfa.models import Authenticator
from django.urls import reverse

from tests.conftest import PASSWORD


def totp_now(secret: str) -> str:
    """RFC 6238 code for this 30-second step, as an authenticator app computes it."""
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">Q", int(time.time()) // 30), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


def login(client, email):
    response = client.post(reverse("account_login"), {"login": email, "password": PASSWORD})
    assert response.status_code == 302, response.content[:500]
    return client


def enrol_totp(client):
    page = client.get(reverse("mfa_activate_totp"))
    if page.status_code == 302 and page["Location"].startswith(reverse("account_reauthenticate")):
        # allauth asks for the password again before a security change, as a person would see.
        page = client.post(page["Location"], {"password": PASSWORD}, follow=True)
    assert page.status_code == 200
    secret = re.search(rb'id="authenticator_secret"[^>]*value="([A-Z2-7]+)"|value="([A-Z2-7]+)"[^>]*id="authenticator_secret"', page.content)
    assert secret, "the activation page shows the secret"
    secret = (secret.group(1) or secret.group(2)).decode()
    response = client.post(reverse("mfa_activate_totp"), {"code": totp_now(secret)})
    assert response.status_code == 302, response.content[:2000]
    return secret


@pytest.mark.django_db
def test_user_enrols_totp_through_the_allauth_pages(client, bob):
    login(client, bob.email)
    enrol_totp(client)
    assert Authenticator.objects.filter(user=bob, type=Authenticator.Type.TOTP).exists()
    page = client.get(reverse("accounts:profile"))
    assert b"Two-factor authentication" in page.content


@pytest.mark.django_db
def test_wrong_code_does_not_enrol(client, bob):
    login(client, bob.email)
    client.post(reverse("account_reauthenticate"), {"password": PASSWORD})
    client.get(reverse("mfa_activate_totp"))
    response = client.post(reverse("mfa_activate_totp"), {"code": "000000"})
    assert response.status_code == 200
    assert not Authenticator.objects.filter(user=bob).exists()


# transaction=True: allauth completes an activation on commit, within the request, as in production.
@pytest.mark.django_db(transaction=True)
def test_org_requiring_mfa_sends_an_admin_without_totp_to_enrol_then_lets_them_in(client, bob, org_a):
    org_a.require_mfa_for_admins = True
    org_a.save()
    login(client, bob.email)
    home = reverse("orgs:home", args=[org_a.slug])
    response = client.get(home)
    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_activate_totp")
    page = client.get(response["Location"], follow=True)
    assert b"Acme requires owners and admins to use two-factor authentication" in page.content
    htmx = client.post(reverse("orgs:invitation-create", args=[org_a.slug]),
                       {"email": "x@example.com", "role": "member"}, headers={"HX-Request": "true"})
    assert htmx["HX-Redirect"] == reverse("mfa_activate_totp")
    assert not org_a.invitations.exists()
    enrol_totp(client)
    # The code that activated the app counts as this session's second factor.
    assert client.get(home).status_code == 200


@pytest.mark.django_db
def test_members_are_not_asked_for_mfa(client_for, carol, org_a):
    org_a.require_mfa_for_admins = True
    org_a.save()
    assert client_for(carol).get(reverse("orgs:home", args=[org_a.slug])).status_code == 200


@pytest.mark.django_db
def test_admin_turns_the_requirement_on_from_the_settings_page(client_for, alice, org_a):
    client = client_for(alice)
    response = client.post(reverse("orgs:settings", args=[org_a.slug]),
                           {"name": "Acme", "require_mfa_for_admins": "on", "allowed_salesforce_org_id": ""})
    assert response.status_code == 302
    org_a.refresh_from_db()
    assert org_a.require_mfa_for_admins
    # Alice has no authenticator yet: her next org page sends her to enrol.
    assert client.get(reverse("orgs:home", args=[org_a.slug]))["Location"] == reverse("mfa_activate_totp")
