"""The pages work in a real browser under the Content-Security-Policy, and nothing is refused.

Chromium reports every refusal twice: a `securitypolicyviolation` event in the page
(turned into a console message by the init script below) and its own console error
("Refused to apply inline style ..."). Either one fails the test.
"""

from __future__ import annotations

import pytest

from orgs.models import Membership
from policy.models import UserPolicy

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, databases=["default", "sandbox"]),
]

REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI || "inline"}`
                + ` (${event.sourceFile || document.location.href}:${event.lineNumber})`);
});
"""


@pytest.fixture
def problems(browser_page):
    """Every console error or warning and uncaught page error, for the whole test."""
    seen: list[str] = []
    browser_page.add_init_script(REPORT_VIOLATIONS)

    def on_console(msg):
        if msg.type in ("error", "warning"):
            seen.append(f"console.{msg.type}: {msg.text} [{msg.location.get('url')}]")

    browser_page.on("console", on_console)
    browser_page.on("pageerror", lambda exc: seen.append(f"page error: {exc}"))
    return seen


def _policy(response) -> str:
    policy = response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy, policy
    return policy


def _computed(page, selector: str, prop: str) -> str:
    return page.eval_on_selector(selector, f"e => getComputedStyle(e).{prop}")


def test_main_pages_and_htmx_work_under_the_policy(
    browser_page, browser_login, problems, alice, carol
):
    page = browser_page
    _policy(page.goto("/accounts/login/"))
    browser_login(page, alice)
    assert page.url.endswith("/o/acme/")
    assert page.locator("h1").inner_text() == "Acme"
    # htmx added no <style> of its own (the policy would refuse it).
    assert page.evaluate("document.querySelectorAll('style').length") == 0

    # Member list: change a role through htmx, without a reload.
    _policy(page.goto("/o/acme/members/"))
    page.evaluate("window.__noReload = true")
    with page.expect_response(lambda r: r.request.method == "POST" and "/role" in r.url) as saved:
        page.get_by_label("Role of carol@acme.test").select_option("admin")
    assert saved.value.ok
    page.wait_for_function("() => !document.querySelector('.htmx-request')")
    assert page.get_by_label("Role of carol@acme.test").input_value() == "admin"
    assert page.evaluate("window.__noReload") is True
    assert Membership.objects.get(user=carol).role == "admin"

    # My sync settings: an htmx save; the policy pages' stylesheet applies (it was a <style> block).
    _policy(page.goto("/o/acme/policy/me/"))
    assert _computed(page, ".tabs", "display") == "flex"
    page.evaluate("window.__noReload = true")
    field = page.locator("#input-mass_delete_threshold_percent")
    with page.expect_response(
        lambda r: r.request.method == "POST" and "/set/mass_delete" in r.url
    ) as saved:
        field.fill("20")
        field.press("Tab")  # the change event saves the row
    assert saved.value.ok
    page.wait_for_function("() => !document.querySelector('.htmx-request')")
    assert page.locator("#input-mass_delete_threshold_percent").input_value() == "20"
    assert page.evaluate("window.__noReload") is True
    mine = UserPolicy.objects.get(membership__user=alice, kind="calendar")
    assert mine.mass_delete_threshold_percent == 20

    # Org policy and My connections keep their layout with the styles moved to files.
    _policy(page.goto("/o/acme/policy/"))
    assert _computed(page, ".tabs", "display") == "flex"
    _policy(page.goto("/o/acme/connections/"))
    assert _computed(page, ".connection .actions", "display") == "flex"

    assert problems == []


def test_connect_redirects_to_a_sign_in_on_another_origin(
    browser_page, browser_login, problems, carol, settings, live_server
):
    """form-action also governs the redirects after a submit: POST Connect → 302 → the sign-in.

    In production the sign-in is login.microsoftonline.com; here the sandbox's
    consent page is put on another origin of the live server to stand in for it.
    """
    from sandbox.microsoft.services import mailbox_ensure

    ours = live_server.url
    other = (
        ours.replace("localhost", "127.0.0.1")
        if "localhost" in ours
        else ours.replace("127.0.0.1", "localhost")
    )
    assert other != ours
    settings.SANDBOX_BROWSER_PREFIXES = (
        ("https://login.sandbox.test/", f"{other}/sandbox/login/"),
    )
    mailbox_ensure("carol@acme.test")

    page = browser_login(browser_page, carol)
    page.goto("/o/acme/connections/")
    page.click("text=Connect Microsoft 365 (Outlook)")
    page.wait_for_url(f"{other}/sandbox/login/**/authorize?**")
    page.check("input[name=mailbox][value='carol@acme.test']")
    page.click("button[value=accept]")
    page.wait_for_url(f"{ours}/o/acme/connections/")
    assert page.locator("text=Outlook is connected as carol@acme.test").is_visible()
    assert problems == []
