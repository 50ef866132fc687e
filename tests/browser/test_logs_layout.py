"""The support pages fit a phone: no sideways scrolling of the page at 390 px (wide tables
scroll inside their card), and they read at desktop width."""

from __future__ import annotations

import datetime as dt
import os

import pytest
from django.utils import timezone

from orgs.models import Membership
from syncengine.models import SyncLink, SyncLogEntry, SyncRun

pytestmark = [pytest.mark.browser,
              pytest.mark.django_db(transaction=True, databases=["default", "sandbox"])]


def _history(m):
    link = SyncLink.objects.create(membership=m, kind="contacts", sf_id="003000000000042AAA",
                                   outlook_id="AAMkADlongoutlookid" * 4, state="error", attempts=3,
                                   last_error="Salesforce refused the phone number")
    base = timezone.now() - dt.timedelta(hours=3)
    details = [
        ("link", "info", "Matched by secondary.", {"rule": "match:secondary", "match": "secondary",
                                                   "match_key": "email:ada@example.com"}),
        ("conflict", "warning", "Changed on both sides: job_title; Outlook wins.", {
            "rule": "conflict_winner", "conflicts": [{"fields": ["job_title"], "winner": "Outlook",
                                                      "kept": {"job_title": "Countess"},
                                                      "lost": {"job_title": "Mathematician"}}]}),
        ("update", "info", "Updated in Salesforce", {"rule": "changed_in_outlook", "changes": {
            "salesforce": [{"field": "department", "before": "", "after": "Analytics"},
                           # an unbreakable value, like a seeded e-mail: it pushed the page sideways
                           {"field": "emails", "before": [],
                            "after": ["ingrid.iyer.1.16@wayne-enterprises.example.test"]}]}}),
        ("error", "error", "Salesforce update failed: INVALID_PHONE", {"rule": "write_failed"}),
    ]
    for i, (action, level, message, detail) in enumerate(details):
        run = SyncRun.objects.create(membership=m, kind="contacts", trigger="auto",
                                     status="failed" if level == "error" else "succeeded",
                                     started_at=base + dt.timedelta(minutes=i),
                                     finished_at=base + dt.timedelta(minutes=i, seconds=20),
                                     counts={"created": {"outlook": 0, "salesforce": 1},
                                             "updated": {"outlook": 2, "salesforce": 3},
                                             "conflicts": 1 if action == "conflict" else 0},
                                     api_outlook=4, api_salesforce=3,
                                     error="Salesforce refused 1 item" if level == "error" else "")
        SyncLogEntry.objects.create(run=run, level=level, action=action, message=message,
                                    link_key=link.link_key, sf_id=link.sf_id,
                                    outlook_id=link.outlook_id,
                                    detail={"title": "Ada Lovelace", "emails": ["ada@example.com"],
                                            **detail})
    return link


def test_support_pages_fit_a_phone_and_a_desktop(browser_page, browser_login, bob, carol, org_a):
    m = Membership.objects.get(user=carol)
    link = _history(m)
    page = browser_login(browser_page, bob)
    shots = os.environ.get("LOG_SCREENSHOTS")
    paths = {
        "history": "history/",
        "logs": "logs/",
        "trace": f"trace/?item={link.link_key}",
        "bundle": "bundle/",
    }
    for name, path in paths.items():
        for width in (1280, 390):
            page.set_viewport_size({"width": width, "height": 900})
            page.goto(f"/o/{org_a.slug}/sync/{path}")
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 1, f"{name} at {width}px scrolls sideways by {overflow}px"
            if shots:
                page.screenshot(path=f"{shots}/{name}_{width}.png", full_page=True)
    assert page.locator("h1").inner_text() == "Support bundle"
    page.goto(f"/o/{org_a.slug}/sync/trace/?item={link.link_key}")
    assert page.locator("#trace > li").count() == 4
    assert page.locator("td.lost", has_text="Mathematician").is_visible()

    page.context.clear_cookies()
    browser_login(page, carol)
    page.goto(f"/o/{org_a.slug}/sync/")
    assert page.locator("#sync-attention", has_text="failed 3 syncs in a row").is_visible()
    if shots:
        page.set_viewport_size({"width": 1280, "height": 900})
        page.screenshot(path=f"{shots}/my_sync_1280.png", full_page=True)
