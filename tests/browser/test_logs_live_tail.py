"""A running run's log tails live in the browser and stops polling when the run ends."""

from __future__ import annotations

import datetime as dt
import os

import pytest
from django.utils import timezone

from orgs.models import Membership
from syncengine.models import SyncLogEntry, SyncRun

pytestmark = [pytest.mark.browser,
              pytest.mark.django_db(transaction=True, databases=["default", "sandbox"])]


def _entry(run, n, **kw):
    SyncLogEntry.objects.create(run=run, action="update", message=f"Updated in Salesforce #{n}",
                                sf_id=f"003{n:015d}", detail={"title": f"Contact {n}"}, **kw)


def test_the_run_log_tails_a_running_run_then_stops_polling(browser_page, browser_login, carol,
                                                            org_a):
    m = Membership.objects.get(user=carol)
    run = SyncRun.objects.create(membership=m, kind="contacts", trigger="manual", status="running",
                                 started_at=timezone.now() - dt.timedelta(seconds=5))
    _entry(run, 1)
    _entry(run, 2)
    page = browser_login(browser_page, carol)
    polls = []
    page.on("request", lambda r: polls.append(r.url) if "after=" in r.url else None)
    page.goto(f"/o/{org_a.slug}/sync/history/{run.pk}/")
    page.evaluate("window.__noReload = true")
    assert page.locator("#run-entries tbody tr[id^=entry-]").count() == 2
    assert page.locator("text=live: new entries appear").is_visible()

    _entry(run, 3, level="warning")
    page.locator("#run-entries", has_text="Updated in Salesforce #3").wait_for()
    SyncRun.objects.filter(pk=run.pk).update(status="succeeded", finished_at=timezone.now())
    _entry(run, 4)  # written just before the end: the last poll still brings it
    page.locator("text=End of the run's log").wait_for()
    assert page.locator("#run-status").inner_text() == "Succeeded"
    assert page.locator("#run-entries tbody tr[id^=entry-]").count() == 4
    assert page.evaluate("window.__noReload") is True

    shots = os.environ.get("LOG_SCREENSHOTS")
    if shots:
        for width in (1280, 390):
            page.set_viewport_size({"width": width, "height": 900})
            page.screenshot(path=f"{shots}/run_log_{width}.png", full_page=True)

    ended_at = len(polls)
    _entry(run, 5)
    page.wait_for_timeout(4500)  # two polling intervals
    assert len(polls) == ended_at, "the page still polls after the run ended"
    assert page.locator("text=Updated in Salesforce #5").count() == 0
