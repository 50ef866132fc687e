"""The settings pages as members found them (issue 11), in a real browser at 1280 and 390 px.

Each test leaves screenshots under test-artifacts/ (policy-<page>-<who>-<width>.png)
so a person can look at the layout, not only the assertions.
"""

from __future__ import annotations

import pytest

from orgs.access import resolve_org_context
from policy import extensions
from policy.models import UserPolicy
from policy.services import org_policy_update
from tests.browser.conftest import ARTIFACTS

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, databases=["default", "sandbox"]),
]


def shoot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"policy-{name}.png"), full_page=True)
    page.screenshot(path=str(ARTIFACTS / f"policy-{name}-top.png"))


def visible_rows(page) -> list[str]:
    rows = page.locator("#policy-section tr[id^=field-]")
    return [
        rows.nth(i).get_attribute("id")[6:] for i in range(rows.count()) if rows.nth(i).is_visible()
    ]


def in_view_horizontally(page, selector: str) -> bool:
    box = page.locator(selector).bounding_box()
    width = page.viewport_size["width"]
    return box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width


def test_member_sees_what_the_mode_uses_and_every_save_is_confirmed(
    browser_page, browser_login, carol
):
    page = browser_login(browser_page, carol)
    page.goto("/o/acme/policy/me/")
    page.evaluate("window.__noReload = true")
    # SnapRecord (the calendar default): no auto schedule, no direction, no winner.
    rows = visible_rows(page)
    assert "days_back" in rows and "outlook_category_filter" in rows
    for hidden in ("frequency_minutes", "window_enabled", "window_start", "direction",
                   "conflict_winner"):
        assert hidden not in rows
    shoot(page, "member-snaprecord-1280")

    page.locator("#input-mode").select_option("manual")
    page.locator("#field-mode .row-saved").wait_for()
    assert "Saved: Manual sync." in page.locator("#field-mode .row-saved").inner_text()
    rows = visible_rows(page)
    assert "direction" in rows and "conflict_winner" in rows and "window_start" not in rows

    page.locator("#input-mode").select_option("auto")
    page.locator("#field-window_start").wait_for()
    assert {"frequency_minutes", "window_enabled", "window_start", "window_end"} <= set(
        visible_rows(page)
    )
    # A number saves on change and says so in its row, not only a mode change.
    page.locator("#input-frequency_minutes").fill("45")
    page.locator("#input-frequency_minutes").press("Tab")
    page.locator("#field-frequency_minutes .row-saved").wait_for()
    assert "Saved: 45 minutes." in page.locator("#field-frequency_minutes").inner_text()
    # The unit stays on the input's line.
    unit = page.locator("#field-frequency_minutes .unit").bounding_box()
    field = page.locator("#input-frequency_minutes").bounding_box()
    assert abs(unit["y"] + unit["height"] / 2 - (field["y"] + field["height"] / 2)) < 6
    # A setting that can be previewed waits for Save (or Preview), and says it is not saved.
    hint = page.locator("#field-days_back .unsaved-hint")
    assert not hint.is_visible()
    page.locator("#input-days_back").fill("12")
    hint.wait_for()
    assert UserPolicy.objects.get(kind="calendar").days_back is None
    page.locator("#field-days_back").get_by_role("button", name="Save").click()
    page.locator("#field-days_back .row-saved").wait_for()
    assert "Saved: 12 days." in page.locator("#field-days_back").inner_text()
    assert UserPolicy.objects.get(kind="calendar").days_back == 12
    shoot(page, "member-auto-1280")

    page.locator("#input-mode").select_option("off")
    page.locator("#field-mode .row-saved").wait_for()
    assert visible_rows(page) == ["mode"]
    assert "nothing is synced" in page.locator(".mode-summary").inner_text()
    assert page.evaluate("window.__noReload") is True

    # The time zone is the same picker as on My account, and its save is confirmed.
    assert page.locator("#time-zone select[name=time_zone]").count() == 1
    page.locator("#id_time_zone").select_option("Europe/Berlin")
    page.locator("#time-zone .row-saved").wait_for()
    carol.refresh_from_db()
    assert carol.time_zone == "Europe/Berlin"
    page.goto("/account/")
    assert page.locator("select[name=time_zone]").input_value() == "Europe/Berlin"


def test_phone_width_keeps_source_and_reset_in_sight(browser_page, browser_login, carol):
    page = browser_login(browser_page, carol)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/o/acme/policy/me/")
    page.locator("#input-mode").select_option("auto")
    page.locator("#field-mode .row-saved").wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    for selector in ("#field-mode .source", "#field-mode .source-cell button", "#input-window_start",
                     "#field-frequency_minutes .unit", "#id_time_zone"):
        assert in_view_horizontally(page, selector), selector
    shoot(page, "member-auto-390")


def test_admin_and_staff_org_page_at_both_widths(browser_page, browser_login, alice, bob, pat):
    org_policy_update(ctx=resolve_org_context(alice, "acme"), kind="calendar", values={})
    for who, user, minutes in (("admin", bob, "45"), ("staff", pat, "50")):
        page = browser_login(browser_page, user)
        for width in (1280, 390):
            page.set_viewport_size({"width": width, "height": 900})
            page.goto("/o/acme/policy/")
            rows = visible_rows(page)
            # The default mode's rows; the auto schedule waits in the closed "other modes" group.
            assert "days_back" in rows and "frequency_minutes" not in rows
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            assert in_view_horizontally(page, "#field-mode .lock-cell button")
            shoot(page, f"org-{who}-{width}")
        page.get_by_text("Defaults for members who choose another mode").click()
        page.set_viewport_size({"width": 1280, "height": 900})
        page.locator("#input-frequency_minutes").fill(minutes)
        page.locator("#input-frequency_minutes").press("Tab")
        # The group stays open after its row was saved, and the save is confirmed in place.
        page.locator("#field-frequency_minutes .row-saved").wait_for()
        assert page.locator("#field-frequency_minutes").is_visible()
        page.get_by_role("button", name="Log out").click()


def first_auto(*, org, membership, kind, field, value):
    if field == "mode" and value == "auto" and membership is not None:
        return [
            extensions.Advice(
                f"You have not synced {kind} yet: preview what Auto would do first.",
                f"/o/{org.slug}/policy/me/{kind}/",
                "Preview first",
                blocking=True,
            )
        ]
    return []


def test_blocking_advice_asks_before_turning_auto_on(browser_page, browser_login, carol):
    with extensions.advisors_replaced(first_auto):
        page = browser_login(browser_page, carol)
        page.goto("/o/acme/policy/me/contacts/")
        page.locator("#input-mode").select_option("auto")
        advice = page.locator("#field-mode .advice")
        advice.wait_for()
        assert "You have not synced contacts yet" in advice.inner_text()
        assert advice.get_by_role("link", name="Preview first").is_visible()
        assert not UserPolicy.objects.filter(mode="auto").exists()
        # Nothing was saved, and the page says the value it really has.
        assert page.locator("#input-mode").input_value() == "manual"
        shoot(page, "member-advice-1280")

        advice.get_by_role("button", name="Turn on anyway").click()
        page.locator("#field-mode .row-saved").wait_for()
        assert page.locator("#input-mode").input_value() == "auto"
        assert UserPolicy.objects.get(kind="contacts").mode == "auto"


def test_preview_this_change_is_a_page_navigation_not_a_swap(browser_page, browser_login, carol):
    from policy.pages import settings_preview_url

    if not settings_preview_url("acme"):
        pytest.skip("the My sync pages (syncengine:settings-preview) are not installed")
    page = browser_login(browser_page, carol)
    page.goto("/o/acme/policy/me/tasks/")
    posts = []
    page.on(
        "request",
        lambda r: posts.append(r.headers) if r.method == "POST" and "preview-settings" in r.url
        else None,
    )
    page.locator("#input-direction").select_option("outlook_to_salesforce")
    assert page.locator("#field-direction .unsaved-hint").is_visible()
    page.locator("#field-direction").get_by_role("button", name="Preview this change").click()
    page.wait_for_load_state()
    page.locator(".messages, h1").first.wait_for()
    assert len(posts) == 1 and "hx-request" not in posts[0]
    # Not connected: the dry run is refused with a message; nothing was saved either way.
    assert page.locator("#policy-section").count() <= 1
    assert not UserPolicy.objects.filter(direction__isnull=False).exists()
    shoot(page, "member-preview-refused-1280")
