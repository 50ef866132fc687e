"""A service that asks for a long pause mid-run (issue 17: "backing off on 429").

Graph allows an app 10,000 requests per mailbox in 10 minutes, each request of a `$batch`
counted; over it every request answers 429 with a Retry-After of the rest of the window. A
first sync of a big mailbox (or of several kinds at once) can reach it. The run then stops,
keeps what it wrote and says when it goes on; the next run waits for that moment and
finishes the work with nothing written twice.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from datetime import timedelta

import pytest

from tests.syncengine.conftest import SANDBOX_DBS

pytestmark = pytest.mark.django_db(databases=SANDBOX_DBS)

PEOPLE = 100  # Salesforce-only contacts: 5 Graph $batch requests of 20 creates


@pytest.fixture
def budget(settings):
    """Graph's budget at 50 requests for this test's app and mailbox (a namespace of its own).
    A day-long window, so its end is never within a run's longest wait."""

    def spend_at_most(n: int) -> None:
        settings.SANDBOX_LIMITS = {
            "outlook": {"requests_per_window": n, "window_seconds": 86_400},
            "namespace": f"thr-{uuid.uuid4().hex[:10]}",
        }

    left = 86_400 - time.time() % 86_400
    if left < 200:  # not across a window's end
        time.sleep(left)
    spend_at_most(50)
    return spend_at_most


def _seed(member) -> None:
    from sandbox.salesforce.services import sf_records_create

    rows = [
        ("Contact", {"FirstName": f"Given{i}", "LastName": f"Person{i}", "Email": f"p{i}@example.com"})
        for i in range(PEOPLE)
    ]
    assert all(r.success for r in sf_records_create(user=member.sf_user, records=rows))


def _run(member):
    from syncengine.engine.run import run_sync

    return run_sync(member.membership, "contacts", "manual")


def test_a_spent_graph_budget_stops_the_run_and_the_next_one_finishes_without_duplicates(
    member, budget
):
    from django.utils import timezone

    from syncengine.models import SyncLink, SyncLogEntry, SyncRun

    _seed(member)
    first = _run(member)

    assert first.status == "stopped", first.as_dict()
    assert "Outlook is limiting requests for this account" in first.message
    assert "10,000 requests per mailbox in 10 minutes" in first.message
    assert "nothing was lost" in first.message
    assert first.resume_at is not None and first.resume_at > timezone.now() + timedelta(minutes=3)
    assert f"{first.resume_at:%Y-%m-%d %H:%M} UTC" in first.message
    row = SyncRun.objects.get(pk=first.run_id)
    assert row.status == "stopped" and "limiting requests" in row.error
    assert SyncLogEntry.objects.filter(run=row, action="run", message__contains="limiting").exists()
    written = Counter(it.data["surname"] for it in member.contacts_o())
    assert 0 < len(written) < PEOPLE, "the budget did not stop the run half-way"
    assert max(written.values()) == 1

    # Within the same window, the next run is refused at its first read and says so again.
    again = _run(member)
    assert again.status == "stopped" and again.counts.writes == 0
    assert "limiting requests" in again.message

    budget(10_000)  # the window has ended
    last = _run(member)
    assert last.status == "succeeded", last.as_dict()
    outlook = Counter(it.data["surname"] for it in member.contacts_o())
    assert set(outlook) == {f"Person{i}" for i in range(PEOPLE)}, "a contact was lost"
    assert max(outlook.values()) == 1, "a contact was created twice"
    assert Counter(r["LastName"] for r in member.sf("Contact")) == Counter(outlook)
    links = SyncLink.objects.filter(membership=member.membership, kind="contacts")
    assert Counter(links.values_list("state", flat=True)) == {"synced": PEOPLE}


def test_an_auto_run_told_to_pause_is_next_due_after_the_pause_and_not_counted_a_failure(
    member, budget
):
    from syncengine.models import SyncLease
    from syncengine.tasks import run_sync as task_run

    _seed(member)
    budget(0)  # spent before the run starts: its first read is refused
    result = task_run(member.membership.pk, "contacts", "auto")

    assert result["status"] == "stopped" and result["resume_at"]
    lease = SyncLease.objects.get(membership=member.membership, kind="contacts")
    assert lease.next_run_at.isoformat() >= result["resume_at"]
    assert lease.consecutive_failures == 0
    assert not member.contacts_o()
