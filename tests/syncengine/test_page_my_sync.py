"""The My sync page: one card per kind, what the mode allows, and starting work."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from orgs.models import Membership
from syncengine.models import SyncLease, SyncRun

from .conftest import SANDBOX_DBS

pytestmark = pytest.mark.django_db(databases=SANDBOX_DBS)

URL = "/o/acme/sync/"


def _card(html: str, kind: str) -> str:
    start = html.index(f'id="card-{kind}"')
    end = html.find('<section class="card sync-card"', start + 10)
    return html[start: end if end > 0 else None]


def test_a_member_who_is_not_connected_sees_what_to_connect(client_for, carol):
    response = client_for(carol).get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    contacts = _card(html, "contacts")
    assert "To sync contacts, connect Outlook (Microsoft 365) and Salesforce." in contacts
    assert "/o/acme/connections/" in contacts
    assert "Preview</button>" not in html and "Sync now" not in html
    assert 'href="/o/acme/sync/">My sync</a>' in html  # in the nav


def test_cards_show_mode_direction_and_the_actions_the_mode_allows(member, client_for, carol):
    from policy.models import UserPolicy

    UserPolicy.objects.create(membership=member.membership, kind="tasks", mode="off")
    html = client_for(carol).get(URL).content.decode()
    contacts, tasks, calendar = _card(html, "contacts"), _card(html, "tasks"), _card(html, "calendar")
    assert "Manual sync" in contacts and "Both ways" in contacts and "Organization default" in contacts
    assert "Preview</button>" in contacts and "Sync now" not in contacts
    assert "Rebuild" not in contacts  # nothing synced yet: nothing to rebuild
    assert "Last run</dt>\n    <dd>never" in contacts
    assert "sync is off" in tasks and "<button" not in tasks
    assert "SnapRecord" in calendar and "/o/acme/sync/calendar/" in calendar
    assert "/o/acme/policy/me/contacts/" in contacts


def test_preview_queues_one_run_and_a_second_click_shows_it(member, client_for, carol,
                                                            django_capture_on_commit_callbacks):
    client = client_for(carol)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        first = client.post("/o/acme/sync/contacts/start/", {"purpose": "preview"})
    run = SyncRun.objects.get(membership=member.membership, kind="contacts")
    assert first.status_code == 302 and first["Location"] == f"/o/acme/sync/runs/{run.pk}/"
    assert (run.status, run.purpose) == ("queued", "preview")
    assert len(callbacks) == 1  # the task is enqueued once the transaction commits

    second = client.post("/o/acme/sync/contacts/start/", {"purpose": "preview"}, follow=True)
    assert SyncRun.objects.filter(membership=member.membership, kind="contacts").count() == 1
    assert second.redirect_chain[0][0] == f"/o/acme/sync/runs/{run.pk}/"
    assert "already going: here it is" in second.content.decode()
    card = _card(client.get(URL).content.decode(), "contacts")
    assert "Waiting to start" in card and f"/o/acme/sync/runs/{run.pk}/" in card
    assert 'hx-trigger="every 2s"' in card  # the card follows the run until it ends


def test_start_without_connections_is_refused_with_what_to_do(client_for, carol):
    response = client_for(carol).post("/o/acme/sync/contacts/start/", {"purpose": "preview"}, follow=True)
    assert response.status_code == 200
    assert "Outlook is not connected" in response.content.decode()
    assert not SyncRun.objects.exists()


def test_unknown_purpose_or_kind_is_404(member, client_for, carol):
    client = client_for(carol)
    assert client.post("/o/acme/sync/contacts/start/", {"purpose": "apply_plan"}).status_code == 404
    assert client.post("/o/acme/sync/widgets/start/", {"purpose": "preview"}).status_code == 404
    assert client.get("/o/acme/sync/widgets/card/").status_code == 404


def test_first_auto_asks_for_a_review_then_offers_sync_now_and_pause(member, client_for, carol):
    from policy.models import UserPolicy

    UserPolicy.objects.create(membership=member.membership, kind="contacts", mode="auto")
    client = client_for(carol)
    contacts = _card(client.get(URL).content.decode(), "contacts")
    assert "Auto sync starts after a first reviewed sync" in contacts
    assert "Preview</button>" in contacts and "Sync now" not in contacts
    assert "after your first reviewed sync" in contacts

    SyncRun.objects.create(membership=member.membership, kind="contacts", trigger="manual", purpose="apply_plan",
                           status="succeeded", started_at=timezone.now(), finished_at=timezone.now(),
                           counts={"created": {"outlook": 0, "salesforce": 12}, "updated": {"outlook": 3}})
    contacts = _card(client.get(URL).content.decode(), "contacts")
    assert "first reviewed sync" not in contacts
    assert "Sync now" in contacts and "Pause auto sync" in contacts and "Preview a rebuild" in contacts
    assert "12 created in Salesforce, 3 updated in Outlook." in contacts

    paused = client.post("/o/acme/sync/contacts/pause/", {"paused": "1"}, headers={"HX-Request": "true"})
    assert paused.status_code == 200
    body = paused.content.decode()
    assert "Auto sync paused." in body and "Resume auto sync" in body and "Sync now" in body
    assert SyncLease.objects.get(membership=member.membership, kind="contacts").auto_paused
    client.post("/o/acme/sync/contacts/pause/", {"paused": "0"})
    assert not SyncLease.objects.get(membership=member.membership, kind="contacts").auto_paused


def test_a_failed_last_run_says_why(member, client_for, carol):
    SyncRun.objects.create(membership=member.membership, kind="tasks", trigger="manual", purpose="sync",
                           status="stopped", started_at=timezone.now(),
                           error="Reconnect needed (Salesforce): the sign-in no longer works. Nothing was deleted.")
    tasks = _card(client_for(carol).get(URL).content.decode(), "tasks")
    assert "Stopped, needs attention" in tasks and "the sign-in no longer works" in tasks


def test_staff_see_that_my_sync_belongs_to_members(client_for, pat, org_a):
    response = client_for(pat).get(URL)
    assert response.status_code == 200
    assert "My sync belongs to members" in response.content.decode()
    assert client_for(pat).post("/o/acme/sync/contacts/start/", {"purpose": "preview"}).status_code == 404


def _history(membership, n: int):
    t = timezone.now() - dt.timedelta(days=1)
    SyncRun.objects.bulk_create([
        SyncRun(membership=membership, kind=kind, trigger="manual", purpose="sync", status="succeeded",
                started_at=t + dt.timedelta(minutes=i), counts={"created": {"salesforce": 1}})
        for i in range(n) for kind in ("calendar", "contacts", "tasks")
    ])


def test_query_count_does_not_grow_with_history(member, client_for, carol):
    client = client_for(carol)
    _history(member.membership, 1)
    with CaptureQueriesContext(connection) as small:
        assert client.get(URL).status_code == 200
    _history(member.membership, 40)
    Membership.objects.filter(pk=member.membership.pk)  # same member, 41 runs per kind now
    with CaptureQueriesContext(connection) as large:
        assert client.get(URL).status_code == 200
    assert len(small) == len(large), [q["sql"] for q in large.captured_queries]
    assert len(large) <= 30  # a guard; the pin is the equality above


def test_a_settings_dry_run_is_not_the_cards_run(member, client_for, carol):
    SyncRun.objects.create(membership=member.membership, kind="contacts", trigger="manual",
                           purpose="settings_preview", status="running", started_at=timezone.now())
    contacts = _card(client_for(carol).get(URL).content.decode(), "contacts")
    assert "Show progress" not in contacts and "Last run</dt>\n    <dd>never" in contacts
