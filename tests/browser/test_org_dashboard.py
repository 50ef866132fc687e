"""Org admin dashboard in chromium (issue 14): the SVG charts draw the runs that happened
(real syncs through the sandbox, plus earlier days' runs), the page passes the CSP, fits a
phone; screenshots at 1280 and 390 px as admin, member and staff in test-artifacts/."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from syncengine.governor import day_start
from syncengine.models import SyncRun
from tests.conftest import PASSWORD
from tests.syncengine.conftest import member  # noqa: F401

from .conftest import ARTIFACTS

pytestmark = [pytest.mark.browser,
              pytest.mark.django_db(transaction=True, databases=["default", "sandbox"])]


def _earlier_runs(membership):
    """Runs of three and of ten days ago (what a month of syncing leaves behind)."""
    for days_ago, kind, status, sf in ((3, "contacts", "succeeded", 40), (3, "calendar", "failed", 7),
                                       (10, "tasks", "succeeded", 12)):
        t = day_start() - dt.timedelta(days=days_ago) + dt.timedelta(hours=9)
        SyncRun.objects.create(membership=membership, kind=kind, trigger="auto", status=status,
                               started_at=t, finished_at=t, api_salesforce=sf,
                               error="Salesforce did not answer" if status == "failed" else "")


def _login(browser, base_url, user, width):
    context = browser.new_context(base_url=base_url, viewport={"width": width, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.goto("/accounts/login/")
    page.fill("input[name=login]", user.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url(lambda url: "/accounts/login/" not in url)
    return context, page


def _bar(page, chart: str, day: str, series: str) -> int:
    found = page.locator(f"#chart-{chart} rect[data-day='{day}'][data-series='{series}']")
    return int(found.get_attribute("data-value")) if found.count() else 0


def test_dashboard_charts_match_the_runs_and_fit_every_screen(
        _playwright_browser, live_server, member, alice, bob, pat):  # noqa: F811
    from sandbox.faults import fault_add, faults_clear
    from syncengine.engine.run import run_sync

    m = member.membership
    assert run_sync(m, "contacts", "manual").status == "succeeded"
    assert run_sync(m, "contacts", "manual").status == "succeeded"
    fault_add(side="salesforce", kind="http_503", count=None, retry_after=3600)
    assert run_sync(m, "tasks", "manual").status == "failed"
    faults_clear()
    _earlier_runs(m)
    today = timezone.now().astimezone(dt.UTC).date()
    three_ago = (today - dt.timedelta(days=3)).isoformat()
    sf_today = sum(SyncRun.objects.filter(started_at__gte=day_start()).values_list(
        "api_salesforce", flat=True))
    assert sf_today > 0

    errors = []
    ARTIFACTS.mkdir(exist_ok=True)
    for width in (1280, 390):
        context, page = _login(_playwright_browser, live_server.url, bob, width)
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.goto("/o/acme/")
        assert page.locator("#sync-health-panel").is_visible()
        # Sync runs per day: today's two contacts runs and one tasks run, three days ago one each.
        assert _bar(page, "runs", today.isoformat(), "contacts") == 2
        assert _bar(page, "runs", today.isoformat(), "tasks") == 1
        assert _bar(page, "runs", three_ago, "contacts") == 1
        assert _bar(page, "errors", today.isoformat(), "tasks") == 1
        assert _bar(page, "errors", three_ago, "calendar") == 1
        assert _bar(page, "errors", today.isoformat(), "contacts") == 0
        assert _bar(page, "api", today.isoformat(), "requests") == sf_today
        assert _bar(page, "api", three_ago, "requests") == 40 + 7  # every run of the day, failed too
        # Bars are drawn, not just present: a rect taller than zero with its CSS colour.
        rect = page.locator(f"#chart-runs rect[data-day='{today.isoformat()}'][data-series='contacts']")
        assert rect.bounding_box()["height"] > 0
        assert page.evaluate("el => getComputedStyle(el).fill", rect.element_handle()) == "rgb(124, 58, 237)"  # .bar-contacts
        # 20% of the sandbox's 15,000 is far above a few requests: said, not drawn flat.
        assert "budget 3,000 a day, far above" in page.locator("#chart-api figcaption").inner_text()
        # Carol's row: one failed tasks run is shown, not yet "needs attention"; it links her runs.
        row = page.locator("tr[data-member='carol@acme.test']")
        assert row.get_attribute("data-state") == "healthy" and "Last run failed" in row.inner_text()
        assert row.locator(f"a[href='/o/acme/sync/history/?member={m.public_id}']").count() == 1
        assert page.evaluate("document.documentElement.scrollWidth") <= width + 1
        page.screenshot(path=str(ARTIFACTS / f"dashboard-admin-home-{width}.png"), full_page=True)
        page.goto("/o/acme/sync/health/?state=attention")
        page.screenshot(path=str(ARTIFACTS / f"dashboard-admin-health-{width}.png"), full_page=True)
        page.goto("/o/acme/sync/health/settings/")
        page.screenshot(path=str(ARTIFACTS / f"dashboard-admin-settings-{width}.png"), full_page=True)
        context.close()

        context, page = _login(_playwright_browser, live_server.url, member.membership.user, width)
        page.goto("/o/acme/")
        assert page.locator("#sync-health-panel").count() == 0
        page.screenshot(path=str(ARTIFACTS / f"dashboard-member-home-{width}.png"), full_page=True)
        assert page.goto("/o/acme/sync/health/").status == 403
        context.close()

        context, page = _login(_playwright_browser, live_server.url, pat, width)
        assert page.url.endswith("/staff/orgs/")
        assert page.locator("tr[data-org='acme']").is_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= width + 1
        page.screenshot(path=str(ARTIFACTS / f"dashboard-staff-directory-{width}.png"), full_page=True)
        page.locator("tr[data-org='acme'] button").click()
        page.wait_for_url(lambda url: url.endswith("/o/acme/"))
        assert page.locator(".banner-staff").is_visible()
        page.screenshot(path=str(ARTIFACTS / f"dashboard-staff-home-{width}.png"), full_page=True)
        context.close()
    # No CSP violation (inline style or script) and no script error on any page.
    assert not errors, errors
