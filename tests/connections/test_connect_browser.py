"""A member connects Outlook and Salesforce in a real browser, through the sandbox consent pages."""

from __future__ import annotations

import pytest

from connections.models import Connection

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, databases=["default", "sandbox"])]


def test_member_connects_both_accounts_in_the_browser(browser_page, browser_login, carol, org_a):
    from sandbox.microsoft.services import mailbox_ensure

    mailbox_ensure("carol@acme.test")
    page = browser_login(browser_page, carol)
    page.goto("/o/acme/connections/")
    assert page.locator("#connection-microsoft", has_text="Not connected").is_visible()

    page.click("text=Connect Microsoft 365 (Outlook)")
    page.wait_for_url("**/sandbox/login/**/authorize?**")
    assert page.locator("h1", has_text="Permissions requested").is_visible()
    page.check("input[name=mailbox][value='carol@acme.test']")
    page.click("button[value=accept]")
    page.wait_for_url("**/o/acme/connections/")
    assert page.locator("text=Outlook is connected as carol@acme.test").is_visible()
    assert page.locator("#connection-microsoft", has_text="Connected").is_visible()

    page.click("text=Connect Salesforce")
    page.wait_for_url("**/sandbox/salesforce/services/oauth2/authorize?**")
    assert page.locator("h1", has_text="Allow access?").is_visible()
    page.fill("#username", "carol@acme.test")
    page.click("button.allow")
    page.wait_for_url("**/o/acme/connections/")
    assert page.locator("text=Salesforce is connected as carol@acme.test").is_visible()

    conns = {c.provider: c for c in Connection.objects.filter(membership__user=carol)}
    assert {p: c.status for p, c in conns.items()} == {"microsoft": "connected", "salesforce": "connected"}

    # Disconnect without a page reload (htmx), confirming the dialog.
    page.evaluate("window.__noReload = true")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#connection-salesforce button", has_text="Disconnect").click()
    page.locator("text=Salesforce is disconnected").wait_for()
    assert page.evaluate("window.__noReload") is True
    assert Connection.objects.get(membership__user=carol, provider="salesforce").status == "revoked"
