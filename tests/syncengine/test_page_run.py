"""The run page: live progress by polling that survives a reload and stops when the run ends."""

from __future__ import annotations

import pytest
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from syncengine.models import SyncRun

from .conftest import SANDBOX_DBS

pytestmark = pytest.mark.django_db(databases=SANDBOX_DBS)
HX = {"HX-Request": "true"}


def _run(membership, **kw) -> SyncRun:
    values = {"kind": "contacts", "trigger": "manual", "purpose": "sync", "status": "running",
              "started_at": timezone.now()}
    values.update(kw)
    return SyncRun.objects.create(membership=membership, **values)


def _url(run) -> str:
    return f"/o/acme/sync/runs/{run.pk}/"


def test_a_running_run_polls_and_shows_each_count(member, client_for, carol):
    run = _run(member.membership, progress={"phase": "applying", "read": {"outlook": 120, "salesforce": 80},
                                            "decided": 40, "applied": 10, "total": 40})
    client = client_for(carol)
    page = client.get(_url(run)).content.decode()  # a reload renders the same live region
    assert 'hx-trigger="every 1s"' in page and "Writing changes…" in page
    poll = client.get(_url(run), headers=HX)
    assert poll.status_code == 200
    body = poll.content.decode()
    assert body.lstrip().startswith('<section class="card run-progress"')
    assert 'hx-trigger="every 1s"' in body
    assert '<dd class="n-read-outlook">120</dd>' in body and '<dd class="n-read-salesforce">80</dd>' in body
    assert '<dd class="n-decided">40</dd>' in body and "10 of 40" in body
    assert 'max="40" value="10"' in body


def test_reading_with_unknown_total_shows_an_indeterminate_bar(member, client_for, carol):
    run = _run(member.membership, status="queued", progress={"phase": "queued"})
    body = client_for(carol).get(_url(run), headers=HX).content.decode()
    assert "Waiting to start…" in body and '<progress class="bar" aria-label="Progress"></progress>' in body


def test_a_finished_run_stops_the_polling_and_shows_the_result(member, client_for, carol):
    run = _run(member.membership, status="succeeded", finished_at=timezone.now(),
               counts={"created": {"salesforce": 12, "outlook": 0}, "updated": {"outlook": 3}},
               progress={"phase": "done", "decided": 15, "applied": 15, "total": 15})
    client = client_for(carol)
    poll = client.get(_url(run), headers=HX)
    assert poll.status_code == 286  # htmx: stop polling
    body = poll.content.decode()
    assert "hx-trigger" not in body
    assert "12 created in Salesforce, 3 updated in Outlook." in body
    try:
        log_url = reverse("syncengine:run-log", args=["acme", run.pk])
    except NoReverseMatch:
        log_url = None
    assert (log_url in body) if log_url else ("Run log" not in body)


def test_a_failed_run_says_why_and_what_to_do(member, client_for, carol):
    run = _run(member.membership, status="stopped", finished_at=timezone.now(),
               error="Reconnect needed (Outlook): the sign-in no longer works. Nothing was deleted.")
    body = client_for(carol).get(_url(run)).content.decode()
    assert "the sign-in no longer works" in body
    assert "Reconnect the account on My connections" in body and "/o/acme/connections/" in body
    assert 'hx-trigger="every 1s"' not in body


def test_a_finished_preview_links_to_its_review(member, client_for, carol):
    run = _run(member.membership, purpose="preview", status="planned", finished_at=timezone.now(),
               counts={"created": {"salesforce": 2}})
    body = client_for(carol).get(_url(run)).content.decode()
    assert "2 to create in Salesforce." in body and f"/o/acme/sync/runs/{run.pk}/review/" in body


def test_the_review_page_waits_for_its_preview_then_reloads(member, client_for, carol):
    run = _run(member.membership, purpose="settings_preview", status="running",
               progress={"phase": "reading", "read": {"outlook": 5, "salesforce": 0}})
    client = client_for(carol)
    page = client.get(f"/o/acme/sync/runs/{run.pk}/review/").content.decode()
    assert "Reading both sides…" in page and f"/o/acme/sync/runs/{run.pk}/?on=review" in page
    SyncRun.objects.filter(pk=run.pk).update(status="planned", finished_at=timezone.now())
    done = client.get(f"/o/acme/sync/runs/{run.pk}/?on=review", headers=HX)
    assert done["HX-Refresh"] == "true"


def test_a_real_preview_reports_progress_to_the_end(member, client_for, carol):
    from sandbox.microsoft.services import todo_task_create
    from syncengine.tasks import run_queued

    for title in ("Call Ada", "Write to Grace"):
        todo_task_create(member.mailbox, {"title": title})
    client = client_for(carol)
    client.post("/o/acme/sync/tasks/start/", {"purpose": "preview"})
    run = SyncRun.objects.get(kind="tasks", purpose="preview")
    run_queued(run.pk)
    poll = client.get(_url(run), headers=HX)
    assert poll.status_code == 286
    body = poll.content.decode()
    assert '<dd class="n-read-outlook">2</dd>' in body
    assert "2 to create in Salesforce." in body and "Review the plan" in body


def test_another_members_run_is_404(member, client_for, carol, bob):
    from orgs.models import Membership

    run = _run(Membership.objects.get(user=bob))
    assert client_for(carol).get(_url(run)).status_code == 404
    assert client_for(carol).get(_url(run), headers=HX).status_code == 404
