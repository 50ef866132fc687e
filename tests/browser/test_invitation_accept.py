"""The invitee's journey in a browser: the link, sign-in, proving the address, joining."""

import os
import re

import pytest
from django.core import mail

from orgs import services
from orgs.access import resolve_org_context
from orgs.models import Membership
from tests.browser.conftest import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, databases=["default", "sandbox"]),
              pytest.mark.usefixtures("fresh_cache")]


def shot(page, name):
    """Screenshots for a person to look at (LINKPOINT_SCREENSHOTS=1), at desktop and phone width."""
    if os.environ.get("LINKPOINT_SCREENSHOTS") != "1":
        return
    ARTIFACTS.mkdir(exist_ok=True)
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(ARTIFACTS / f"invitation-{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})


def test_invitee_with_an_unverified_address_verifies_then_joins(browser_page, browser_login, alice, make_user, org_a):
    invitation = services.invitation_create(ctx=resolve_org_context(alice, org_a.slug), email="dave@example.com",
                                            role="member")
    dave = make_user("dave@example.com", full_name="Dave Invitee", verified=False)
    page = browser_page
    page.goto(f"/invite/{invitation.token}/")
    assert page.locator("h1").inner_text() == "Join Acme"
    shot(page, "signed-out")
    page.get_by_role("link", name="Sign in", exact=True).click()
    page.fill("input[name=login]", dave.email)
    page.fill("input[name=password]", "correct-horse-battery-staple")
    page.click("form button[type=submit]")
    # Mandatory verification: allauth mails the link instead of signing dave in.
    page.wait_for_url("**/accounts/confirm-email/")
    (verification,) = [m for m in mail.outbox if "confirm-email" in m.body]
    link = re.search(r"https?://\S+/accounts/confirm-email/\S+/", verification.body).group(0)
    page.goto(link)
    page.click("form button[type=submit]")
    page.wait_for_url(f"**/invite/{invitation.token}/")
    shot(page, "ready")
    page.click("text=Accept invitation")
    page.wait_for_url("**/o/acme/")
    assert page.locator("text=Welcome to Acme").is_visible()
    assert Membership.objects.filter(user=dave, organization=org_a, is_active=True).exists()


def test_signed_in_with_the_unverified_address_the_page_offers_the_link_again(
        browser_page, client, alice, make_user, org_a, live_server):
    invitation = services.invitation_create(ctx=resolve_org_context(alice, org_a.slug), email="dave@example.com",
                                            role="member")
    dave = make_user("dave@example.com", verified=False)
    # An older session from before verification became mandatory.
    client.force_login(dave, backend="django.contrib.auth.backends.ModelBackend")
    page = browser_page
    page.context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value,
                               "url": live_server.url}])
    page.goto(f"/invite/{invitation.token}/")
    assert page.locator("text=is your address before you join").is_visible()
    assert page.locator("text=Accept invitation").count() == 0
    shot(page, "needs-verification")
    page.click("text=Send the verification e-mail again")
    page.locator("text=Confirmation email sent to dave@example.com").wait_for()
    shot(page, "verification-sent")
    assert len([m for m in mail.outbox if "confirm-email" in m.body]) == 1
