"""In a real browser: an admin locks a field without a reload; the member then sees it read-only."""

import pytest

from orgs.access import resolve_org_context
from orgs.models import Membership
from policy.models import OrgPolicy
from policy.services import org_policy_update, user_policy_set

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, databases=["default", "sandbox"]),
]


def test_admin_locks_direction_and_member_sees_it_read_only(
    browser_page, browser_login, bob, carol
):
    carol_m = Membership.objects.get(user=carol)
    # Manual by default, so Direction is among the rows the org's mode uses.
    org_policy_update(ctx=resolve_org_context(bob, "acme"), kind="calendar", values={"mode": "manual"})
    user_policy_set(
        ctx=resolve_org_context(carol, "acme"),
        membership=carol_m,
        kind="calendar",
        values={"direction": "salesforce_to_outlook"},
    )

    page = browser_login(browser_page, bob)
    page.goto("/o/acme/policy/")
    page.evaluate("window.__noReload = true")
    row = page.locator("#field-direction")
    assert "1 member" in row.inner_text()
    dialogs = []
    page.once("dialog", lambda d: (dialogs.append(d.message), d.accept()))
    row.get_by_role("button", name="Lock Direction").click()
    page.get_by_role("button", name="Unlock Direction").wait_for()
    assert dialogs == [
        "1 member changed Direction. Locking replaces their value with the organization's. Lock it?"
    ]
    assert "none" in page.locator("#field-direction .override-count").inner_text()
    assert page.evaluate("window.__noReload") is True
    assert OrgPolicy.objects.get(
        organization=carol_m.organization, kind="calendar"
    ).locked_fields == ["direction"]

    page.get_by_role("button", name="Log out").click()
    browser_login(page, carol)
    page.goto("/o/acme/policy/me/")
    row = page.locator("#field-direction")
    assert "Locked by your organization" in row.inner_text()
    assert "Both ways" in row.inner_text()
    assert row.locator("select, input").count() == 0
    assert page.get_by_text(
        "Your organization locked calendar settings you had changed"
    ).is_visible()

    # Fields the org left open stay editable, without a reload.
    page.evaluate("window.__noReload = true")
    page.locator("#input-mode").select_option("auto")
    page.get_by_text("Auto sync replaces SnapRecord: SnapRecord is now off").wait_for()
    assert "Your setting" in page.locator("#field-mode").inner_text()
    assert page.evaluate("window.__noReload") is True
