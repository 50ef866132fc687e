"""The Django admin signs in through allauth, and org pages trust only a session that passed MFA."""

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.urls import reverse

from tests.accounts.test_mfa import totp_now
from tests.conftest import PASSWORD

# allauth counts failures in the cache, which outlives a test.
pytestmark = pytest.mark.usefixtures("fresh_cache")


@pytest.fixture
def pat_with_totp(pat):
    secret = generate_totp_secret()
    TOTP.activate(pat, secret)
    pat.totp_secret = secret
    return pat


@pytest.fixture
def acme_requires_mfa(org_a):
    org_a.require_mfa_for_admins = True
    org_a.save()
    return org_a


def org_settings_url(org):
    return reverse("orgs:settings", args=[org.slug])


@pytest.mark.django_db
def test_admin_login_form_does_not_sign_in_with_the_password_alone(client, pat_with_totp, acme_requires_mfa):
    response = client.post(reverse("admin:login") + "?next=/admin/",
                           {"username": pat_with_totp.email, "password": PASSWORD, "next": "/admin/"})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
    assert "_auth_user_id" not in client.session
    # Nothing of the org, and nothing of the admin, opens for that browser.
    assert client.get(org_settings_url(acme_requires_mfa))["Location"].startswith(reverse("account_login"))
    assert client.get("/admin/")["Location"].startswith(reverse("admin:login"))


@pytest.mark.django_db
def test_admin_login_sends_to_allauth_with_next(client):
    response = client.get(reverse("admin:login") + "?next=/admin/accounts/user/")
    assert response.status_code == 302
    assert response["Location"] == reverse("account_login") + "?next=%2Fadmin%2Faccounts%2Fuser%2F"


@pytest.mark.django_db
def test_guessing_at_the_admin_form_never_signs_in_and_allauth_throttles(client, pat):
    for attempt in range(20):
        client.post(reverse("admin:login"), {"username": pat.email, "password": f"guess-{attempt}"})
    client.post(reverse("admin:login"), {"username": pat.email, "password": PASSWORD})
    assert "_auth_user_id" not in client.session
    # The only password form left is allauth's, which stops after five failures for an address.
    for attempt in range(5):
        client.post(reverse("account_login"), {"login": pat.email, "password": f"guess-{attempt}"})
    response = client.post(reverse("account_login"), {"login": pat.email, "password": PASSWORD})
    assert response.status_code == 200
    assert b"Too many failed login attempts" in response.content
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_staff_signs_in_with_password_and_code_then_uses_admin_and_the_org(client, pat_with_totp, acme_requires_mfa):
    response = client.post(reverse("account_login"), {"login": pat_with_totp.email, "password": PASSWORD,
                                                      "next": "/admin/"})
    assert response["Location"] == reverse("mfa_authenticate")
    assert client.get("/admin/").status_code == 302  # not signed in until the code is given
    response = client.post(reverse("mfa_authenticate"), {"code": totp_now(pat_with_totp.totp_secret)})
    assert response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    assert client.get(org_settings_url(acme_requires_mfa)).status_code == 200


@pytest.mark.django_db
def test_a_session_without_mfa_is_asked_for_a_code_even_though_totp_exists(client, pat_with_totp, acme_requires_mfa):
    # A session authenticated some other way (an old admin-form session, a force_login):
    # owning an authenticator proves nothing about it.
    client.force_login(pat_with_totp, backend="django.contrib.auth.backends.ModelBackend")
    url = org_settings_url(acme_requires_mfa)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('mfa_reauthenticate')}?next={url.replace('/', '%2F')}"
    refused = client.post(url, {"name": "Acme", "allowed_salesforce_org_id": ""})
    assert refused.status_code == 302
    acme_requires_mfa.refresh_from_db()
    assert acme_requires_mfa.require_mfa_for_admins, "the requirement was not switched off"
    page = client.get(response["Location"])
    assert b"Enter the code from your authenticator app" in page.content
    response = client.post(response["Location"], {"code": totp_now(pat_with_totp.totp_secret)})
    assert response["Location"] == url
    assert client.get(url).status_code == 200


@pytest.mark.django_db
def test_htmx_request_without_mfa_redirects_the_whole_page(client_for, bob, acme_requires_mfa):
    secret = generate_totp_secret()
    TOTP.activate(bob, secret)
    response = client_for(bob).post(reverse("orgs:invitation-create", args=[acme_requires_mfa.slug]),
                                    {"email": "x@example.com", "role": "member"},
                                    headers={"HX-Request": "true"})
    assert response["HX-Redirect"].startswith(reverse("mfa_reauthenticate"))
    assert not acme_requires_mfa.invitations.exists()


@pytest.mark.django_db
def test_staff_without_an_authenticator_cannot_open_the_admin_with_a_password(client, pat):
    response = client.post(reverse("account_login"), {"login": pat.email, "password": PASSWORD, "next": "/admin/"})
    assert response["Location"] == "/admin/"  # signed in with the password alone...
    response = client.get("/admin/", follow=True)
    # ...but the admin sends them to set up a second factor instead of opening.
    # (allauth asks for the password again before an authenticator is added.)
    assert reverse("mfa_activate_totp") in [url for url, _ in response.redirect_chain]
    assert b"set up an authenticator app" in response.content
    assert client.get(reverse("admin:accounts_user_changelist")).status_code == 302


@pytest.mark.django_db
def test_a_staff_session_that_did_not_give_its_code_is_asked_for_it_by_the_admin(client, pat_with_totp):
    client.force_login(pat_with_totp, backend="django.contrib.auth.backends.ModelBackend")
    response = client.get("/admin/", follow=True)
    assert response.redirect_chain[-1][0].startswith(reverse("mfa_reauthenticate"))
    response = client.post(response.redirect_chain[-1][0], {"code": totp_now(pat_with_totp.totp_secret)})
    assert response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
