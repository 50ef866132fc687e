import pytest

from orgs.models import Invitation

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, databases=["default", "sandbox"])]


def test_owner_logs_in_sees_the_dashboard_and_invites_without_reload(browser_page, browser_login, alice, carol, org_a):
    page = browser_login(browser_page, alice)
    assert page.url.endswith("/o/acme/")
    assert page.locator("h1").inner_text() == "Acme"
    assert page.locator("#dashboard-members", has_text="Carol Member").is_visible()

    page.click("nav >> text=Members")
    page.wait_for_url("**/o/acme/members/")
    # A marker on window survives only if the page is never reloaded.
    page.evaluate("window.__noReload = true")
    page.fill("#id_email", "dave@example.com")
    page.select_option("#id_role", "admin")
    page.click("text=Send invitation")
    row = page.locator("#invitations tr", has_text="dave@example.com")
    row.wait_for()
    assert "Admin" in row.inner_text()
    assert page.locator("text=Invitation sent to dave@example.com").is_visible()
    assert page.evaluate("window.__noReload") is True
    assert Invitation.objects.filter(email="dave@example.com", role="admin", organization=org_a).exists()

    # The error path is inline too: the same address again is refused in the form region.
    page.fill("#id_email", "dave@example.com")
    page.click("text=Send invitation")
    page.locator("text=already has an open invitation").wait_for()
    assert page.evaluate("window.__noReload") is True
    assert Invitation.objects.filter(email="dave@example.com").count() == 1
