"""The item trace's series card fits a phone and reads at desktop width, for the member, an
admin and staff (issue 12)."""

from __future__ import annotations

import datetime as dt
import os

import pytest
from django.utils import timezone

from orgs.models import Membership
from syncengine.models import SyncLink, SyncLogEntry, SyncOccurrence, SyncRun

pytestmark = [pytest.mark.browser,
              pytest.mark.django_db(transaction=True, databases=["default", "sandbox"])]


def _series(m):
    start = (timezone.now() + dt.timedelta(days=3)).astimezone(dt.UTC).replace(hour=9, minute=0, second=0,
                                                                                microsecond=0)
    key = f"{start:%Y-%m-%dT%H:%M}"
    link = SyncLink.objects.create(
        membership=m, kind="calendar", sf_id="00U000000000042AAA", outlook_id="AAMkADseriesmaster" * 5,
        snapshot={"subject": "Quarterly pipeline review with the whole regional team", "is_all_day": False,
                  "start": key + "Z", "end": f"{start + dt.timedelta(minutes=45):%Y-%m-%dT%H:%M}Z",
                  "recurrence": {"pattern": "relativeMonthly", "interval": 1, "days_of_week": ["tuesday"],
                                 "index": "second", "count": 12}})
    for n, (state, content) in enumerate([
            ("kept", {}),
            ("changed", {"start": f"{start + dt.timedelta(days=35, hours=2):%Y-%m-%dT%H:%M}",
                         "subject": "Quarterly pipeline review (moved for the offsite in Lisbon)",
                         "location": "Conference room “Atlantic”, 4th floor"}),
            ("cancelled", {}),
            ("pending", {})]):
        when = start + dt.timedelta(days=35 * n)
        SyncOccurrence.objects.create(link=link, original_start=f"{when:%Y-%m-%dT%H:%M}", state=state,
                                      content=content, outlook_id=f"AAMkADoccurrence{n}" * 4,
                                      sf_id=f"00U00000000004{n}AAA" if state != "cancelled" else "")
    run = SyncRun.objects.create(membership=m, kind="calendar", trigger="auto", status="succeeded",
                                 started_at=timezone.now(), finished_at=timezone.now())
    SyncLogEntry.objects.create(run=run, level="info", action="update", message="Occurrence changed in Outlook: "
                                "updated that Salesforce occurrence only", link_key=link.link_key, sf_id=link.sf_id,
                                outlook_id=link.outlook_id, detail={"title": link.snapshot["subject"],
                                                                    "rule": "changed_in_outlook"})
    return link


def test_the_series_card_fits_a_phone_and_a_desktop(browser_page, browser_login, bob, carol, pat, org_a):
    m = Membership.objects.get(user=carol)
    link = _series(m)
    shots = os.environ.get("SERIES_SCREENSHOTS")
    for who, user in (("member", carol), ("admin", bob), ("staff", pat)):
        page = browser_login(browser_page, user)
        for width in (1280, 390):
            page.set_viewport_size({"width": width, "height": 900})
            page.goto(f"/o/{org_a.slug}/sync/trace/?item={link.link_key}")
            assert page.locator("#series h3").inner_text() == "Series on both sides"
            assert page.locator(".series-table tbody tr").count() == 4
            assert page.locator(".series-table tr.differs").count() == 2
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 1, f"trace at {width}px as {who} scrolls sideways by {overflow}px"
            if shots:
                page.screenshot(path=f"{shots}/trace_series_{who}_{width}.png", full_page=True)
        page.context.clear_cookies()


def test_the_sandbox_console_shows_a_series_on_a_phone_and_a_desktop(browser_page, browser_login, pat):
    from sandbox.salesforce.services import sf_record_create, sf_user_ensure

    rep = sf_user_ensure(email="nina@dunder.test")
    sf_record_create(user=rep, sobject="Event", fields={
        "Subject": "Standup", "StartDateTime": "2030-02-04T09:00:00Z", "DurationInMinutes": 15,
        "IsRecurrence2": True, "Recurrence2PatternText": "FREQ=WEEKLY;BYDAY=MO,WE;COUNT=4",
        "Recurrence2PatternTimeZone": "Europe/Paris"})
    page = browser_login(browser_page, pat)
    shots = os.environ.get("SERIES_SCREENSHOTS")
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(f"/sandbox/console/salesforce/{rep.username}/")
        assert page.get_by_text("2 of 4 · FREQ=WEEKLY;BYDAY=MO,WE;INTERVAL=1;COUNT=4 · Europe/Paris").is_visible()
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"console at {width}px scrolls sideways by {overflow}px"
        if shots:
            page.screenshot(path=f"{shots}/console_series_{width}.png", full_page=True)
