"""Staff reach the Django admin through allauth's sign-in and second factor, in a browser."""

import os

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

from tests.accounts.test_mfa import totp_now
from tests.browser.conftest import ARTIFACTS
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, databases=["default", "sandbox"]),
              pytest.mark.usefixtures("fresh_cache")]


def shot(page, name):
    if os.environ.get("LINKPOINT_SCREENSHOTS") != "1":
        return
    ARTIFACTS.mkdir(exist_ok=True)
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(ARTIFACTS / f"admin-login-{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})


def test_admin_sends_staff_through_allauth_and_the_code(browser_page, pat):
    secret = generate_totp_secret()
    TOTP.activate(pat, secret)
    page = browser_page
    page.goto("/admin/")
    page.wait_for_url("**/accounts/login/?next=*")
    shot(page, "password")
    page.fill("input[name=login]", pat.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url("**/accounts/2fa/authenticate/")
    shot(page, "code")
    page.fill("input[name=code]", totp_now(secret))
    page.click("form button[type=submit]")
    page.wait_for_url("**/admin/")
    assert page.locator("#site-name").is_visible()


def test_org_requiring_mfa_asks_a_session_without_it_for_a_code(browser_page, client, bob, org_a, live_server):
    org_a.require_mfa_for_admins = True
    org_a.save()
    secret = generate_totp_secret()
    TOTP.activate(bob, secret)
    # A session that never gave the code (as the admin's old login form made them).
    client.force_login(bob, backend="django.contrib.auth.backends.ModelBackend")
    page = browser_page
    page.context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value,
                               "url": live_server.url}])
    page.goto("/o/acme/members/")
    page.wait_for_url("**/accounts/2fa/reauthenticate/?next=*")
    assert page.locator("text=Enter the code from your authenticator app to continue").is_visible()
    shot(page, "org-asks-code")
    page.fill("input[name=code]", totp_now(secret))
    page.click("main form button[type=submit]")  # not the nav's Log out
    page.wait_for_url("**/o/acme/members/")
