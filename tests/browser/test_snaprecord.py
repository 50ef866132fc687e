"""SnapRecord in a real browser: record from My calendar, relate by typeahead, fill a required
SnapField, then Outlook edits follow to Salesforce and Salesforce edits do not come back.

Set SNAP_SHOTS=/some/dir to keep screenshots of the pages at 1280 and 390 px.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

import pytest
from django.utils import timezone

from tests.syncengine.conftest import member as _sync_member  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, databases=["default", "sandbox"])]

SHOTS = os.environ.get("SNAP_SHOTS", "")


def _shot(page, name: str) -> None:
    if not SHOTS:
        return
    Path(SHOTS).mkdir(parents=True, exist_ok=True)
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=f"{SHOTS}/{name}-{width}.png", full_page=True, caret="initial")  # no injected style (CSP)
    page.set_viewport_size({"width": 1280, "height": 900})


@pytest.fixture
def connected(request):
    return request.getfixturevalue("_sync_member")


@pytest.fixture
def setup(connected, settings):
    from sandbox.microsoft.services import event_create
    from sandbox.salesforce.services import sf_custom_field_ensure
    from syncengine.models import SnapField

    member = connected
    today = timezone.now().date()
    start = dt.datetime.combine(today - dt.timedelta(days=today.weekday()) + dt.timedelta(days=2),
                                dt.time(10), dt.UTC)

    def ev(subject, when, attendees=()):
        item, _ = event_create(member.mailbox, {
            "subject": subject, "location": {"displayName": "Room 4"},
            "start": {"dateTime": when.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
            "end": {"dateTime": (when + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
            "attendees": [{"type": "required", "emailAddress": {"address": a, "name": a}} for a in attendees],
        })
        return item

    demo = ev("Demo with Initech", start, ["ada@initech.test"])
    ev("Pipeline review", start + dt.timedelta(days=1))
    ev("Dentist", start + dt.timedelta(hours=4))
    acc = member.sf_create("Account", Name="Initech")
    crm = {
        "ada": member.sf_create("Contact", FirstName="Ada", LastName="Lovelace", Email="ada@initech.test"),
        "bob": member.sf_create("Contact", FirstName="Bob", LastName="O'Brien", Email="bob@initech.test"),
        "opp": member.sf_create("Opportunity", Name="Initech expansion", AccountId=acc, StageName="Prospecting",
                                CloseDate="2031-01-01"),
    }
    sf_custom_field_ensure(org=member.sf_user.org, sobject="Event", name="Meeting_Type__c", label="Meeting type",
                           type="picklist", picklist=["Discovery", "Demo", "Negotiation"])
    SnapField.objects.create(organization=member.membership.organization, name="Meeting_Type__c",
                             label="Meeting type", type="picklist", picklist=["Discovery", "Demo", "Negotiation"],
                             required=True)
    return member, demo, crm


def test_record_relate_snapfield_and_one_way_follow_up(setup, browser_page, browser_login, carol):
    from sandbox.microsoft.services import event_update
    from syncengine.engine.run import run_sync

    member, demo, crm = setup
    page = browser_page
    refused = []
    page.on("console", lambda msg: refused.append(msg.text) if "Content Security Policy" in msg.text else None)
    browser_login(page, carol)
    page.goto("/o/acme/sync/")
    page.click("text=Open SnapRecord calendar")
    page.wait_for_url("**/sync/calendar/")
    row = page.locator("li.event-row", has_text="Demo with Initech")
    assert row.locator(".state-badge").inner_text() == "Not recorded"
    _shot(page, "calendar-member")

    row.get_by_role("button", name="Record").click()
    row = page.locator("li.event-row", has_text="Demo with Initech")
    row.locator(".state-badge", has_text=re.compile(r"^Recorded$")).wait_for()
    assert "Still to fill: Meeting type" in row.inner_text()
    panel = page.locator("#side-panel")
    panel.locator("text=Relate in Salesforce").wait_for()
    # The attendee's e-mail pre-suggests the matching Contact.
    assert panel.locator(".suggestions", has_text="Ada Lovelace").count() == 1
    (sf_event,) = member.sf("Event")
    assert sf_event["WhoId"] == crm["ada"]

    panel.locator("#q-what").fill("initech exp")
    panel.locator("#results-what button", has_text="Initech expansion").click()
    panel.locator("#q-who").fill("o'bri")
    panel.locator("#results-who button", has_text="Bob O'Brien").click()
    assert panel.locator('[data-chosen="who"]').inner_text() == "Bob O'Brien"
    panel.locator("select[name=field_Meeting_Type__c]").select_option("Demo")
    _shot(page, "relate-panel")
    panel.get_by_role("button", name="Save in Salesforce").click()
    panel.locator("text=Saved in Salesforce.").wait_for()
    (sf_event,) = member.sf("Event")
    assert (sf_event["WhoId"], sf_event["WhatId"], sf_event["Meeting_Type__c"]) == (crm["bob"], crm["opp"], "Demo")

    # Outlook edits follow on the scheduler; a Salesforce edit never comes back.
    event_update(demo, {"subject": "Demo with Initech (moved)"})
    member.sf_update("Event", sf_event["Id"], Location="Salesforce-only room")
    assert run_sync(member.membership, "calendar", "snaprecord").status == "succeeded"
    (sf_event,) = member.sf("Event")
    assert sf_event["Subject"] == "Demo with Initech (moved)" and sf_event["WhoId"] == crm["bob"]
    demo.refresh_from_db()
    assert demo.data["location"]["displayName"] == "Room 4"

    from django.core.cache import cache

    cache.clear()  # the week page is cached for a minute; the test does not wait
    page.goto("/o/acme/sync/calendar/")
    row = page.locator("li.event-row", has_text="Demo with Initech (moved)")
    assert "Related: Bob O'Brien · Initech expansion" in row.inner_text()
    assert "Still to fill" not in row.inner_text()
    assert "Last follow-up of Outlook edits: now" in page.content() or "ago" in page.locator(
        ".mode-rules").inner_text()
    _shot(page, "calendar-recorded")

    row.get_by_role("button", name="Unrecord").click()
    row.locator("text=Keep it in Salesforce").wait_for()
    _shot(page, "unrecord-question")
    assert not refused, refused


def test_staff_and_admin_pages_render(setup, browser_page, browser_login, pat, bob, client_for):
    from sandbox.salesforce.services import sf_user_ensure
    from tests.connections.conftest import Journey

    sf_user_ensure(email=bob.email, org_name="Acme", time_zone="UTC")
    assert Journey(client_for(bob), "acme").connect("salesforce", email=bob.email).status_code == 302
    page = browser_page
    browser_login(page, bob)
    page.goto("/o/acme/sync/calendar/fields/")
    page.locator("text=Fields shown to members").wait_for()
    assert page.locator(".snapfield-row", has_text="Meeting type").count() == 1
    _shot(page, "snapfields-admin")
    page.context.clear_cookies()
    browser_login(page, pat)
    page.goto("/o/acme/sync/calendar/")
    page.locator("text=My calendar belongs to members").wait_for()
    _shot(page, "calendar-staff")
