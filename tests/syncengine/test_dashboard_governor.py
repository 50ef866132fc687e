"""The Salesforce API budget governor (issue 14): the dispatcher stretches auto intervals past
the threshold and holds auto runs at the cap, with a message on My sync and the dashboard;
manual runs still work and warn."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from syncengine.governor import day_start
from syncengine.models import SyncLease, SyncRun

from .conftest import SANDBOX_DBS

pytestmark = pytest.mark.django_db(databases=SANDBOX_DBS, transaction=True)


@pytest.fixture
def inline_q(monkeypatch):
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)


@pytest.fixture
def auto_tasks(member):
    """carol synced tasks once (reviewed), then turned Auto on every 15 minutes; her
    Salesforce org reports a daily limit of 1,000 requests (LinkPoint's 20%: 200)."""
    from policy.models import UserPolicy
    from syncengine.engine.run import run_sync

    org = member.sf_user.org
    org.api_daily_max = 1000
    org.save()
    assert run_sync(member.membership, "tasks", "manual").status == "succeeded"
    UserPolicy.objects.create(membership=member.membership, kind="tasks", mode="auto",
                              frequency_minutes=15)
    return member


def used_today(member) -> int:
    return sum(SyncRun.objects.filter(membership=member.membership, started_at__gte=day_start())
               .values_list("api_salesforce", flat=True))


def spend(member, requests: int) -> None:
    """Earlier runs today (the morning's syncs) used these requests (counted as a run counts
    them when it finishes)."""
    from syncengine.governor import requests_add

    run = SyncRun.objects.create(membership=member.membership, kind="tasks", trigger="auto",
                                 status="succeeded", started_at=timezone.now(), finished_at=timezone.now(),
                                 api_salesforce=requests)
    requests_add(member.membership.organization_id, run.started_at, requests)


def test_below_the_threshold_the_interval_is_the_policy(auto_tasks, inline_q):
    from syncengine.governor import budget_for
    from syncengine.tasks import dispatch_due

    budget = budget_for(auto_tasks.membership.organization_id)
    assert budget.limit == 1000 and budget.cap == 200 and budget.stretch == 1.0
    before = timezone.now()
    dispatch_due()
    lease = SyncLease.objects.get(membership=auto_tasks.membership, kind="tasks")
    assert timedelta(minutes=14) < lease.next_run_at - before < timedelta(minutes=16)


def test_past_the_threshold_the_dispatcher_stretches_auto_intervals(auto_tasks, inline_q, client_for,
                                                                    alice):
    from syncengine.governor import budget_for
    from syncengine.tasks import dispatch_due

    spend(auto_tasks, 170 - used_today(auto_tasks))  # 85% of the 200-request budget
    before = timezone.now()
    assert dispatch_due() >= 1
    run = SyncRun.objects.filter(kind="tasks", trigger="auto").latest("pk")
    assert run.status == "succeeded" and run.api_salesforce > 0
    budget = budget_for(auto_tasks.membership.organization_id)
    assert budget.state == "stretched" and 2.0 < budget.stretch < 4.0
    lease = SyncLease.objects.get(membership=auto_tasks.membership, kind="tasks")
    interval = (lease.next_run_at - before).total_seconds() / 60
    assert abs(interval - 15 * budget.stretch) < 1.5, (interval, budget.stretch)
    # The dashboard says so, and by how much.
    home = client_for(alice).get(reverse("orgs:home", args=["acme"])).content.decode()
    assert f"Auto sync runs {budget.stretch:g}× less often" in home
    assert 'data-state="stretched"' in home


def test_at_the_cap_auto_waits_for_tomorrow_and_manual_still_runs_with_a_warning(
        auto_tasks, inline_q, client_for, alice):
    from django_q.conf import Conf

    from syncengine.tasks import dispatch_due

    spend(auto_tasks, 200 - used_today(auto_tasks))
    SyncLease.objects.filter(membership=auto_tasks.membership).delete()
    runs = SyncRun.objects.count()
    assert dispatch_due() == 0
    assert SyncRun.objects.count() == runs  # no auto run started, for any kind
    lease = SyncLease.objects.get(membership=auto_tasks.membership, kind="tasks")
    assert lease.next_run_at == day_start() + timedelta(days=1)
    # Never a silent stop: My sync and the dashboard say why and until when.
    carol = client_for(auto_tasks.membership.user)
    my_sync = carol.get(reverse("syncengine:my-sync", args=["acme"])).content.decode()
    assert "Auto sync waits until 00:00 UTC" in my_sync
    # A sync the member starts still runs, and warns.
    assert Conf.SYNC
    answer = carol.post(reverse("syncengine:start", args=["acme", "tasks"]), {"purpose": "sync"},
                        follow=True)
    assert "this sync runs anyway and uses requests beyond it" in answer.content.decode()
    manual = SyncRun.objects.filter(kind="tasks", trigger="manual").order_by("-pk").first()
    assert manual.status == "succeeded"
    home = client_for(alice).get(reverse("orgs:home", args=["acme"])).content.decode()
    assert "Auto sync waits until 00:00 UTC" in home and 'data-state="held"' in home


def test_the_share_is_validated_and_nothing_is_saved_on_bad_input(client_for, alice, org_a):
    from orgs.models import AuditEntry
    from syncengine.models import OrgSyncSettings

    client = client_for(alice)
    url = reverse("syncengine:dashboard-settings", args=["acme"])
    for bad in ({"api_share_percent": "0", "alert_delivery": "digest"},
                {"api_share_percent": "101", "alert_delivery": "digest"},
                {"api_share_percent": "abc", "alert_delivery": "digest"},
                {"api_share_percent": "30", "alert_delivery": "weekly"},
                {"api_share_percent": "30", "alert_delivery": "digest", "sf_refresh_policy": "idle"}):
        answer = client.post(url, bad)
        assert answer.status_code == 400, bad
        assert "Nothing was saved" in answer.content.decode()
    assert not OrgSyncSettings.objects.exists()
    assert client.post(url, {"api_share_percent": "35", "alert_delivery": "digest"}).status_code == 302
    row = OrgSyncSettings.objects.get(organization=org_a)
    assert (row.api_share_percent, row.alert_delivery) == (35, "digest")
    assert AuditEntry.objects.get(action="sync_settings.update").after["api_share_percent"] == 35


def test_the_api_chart_draws_the_budget_line_near_the_bars():
    import datetime as dt

    from syncengine.charts import api_chart
    from syncengine.governor import Budget
    from syncengine.selectors import DayPoint

    now = timezone.now()
    days = [DayPoint(day=(now - dt.timedelta(days=2 - i)).date(), runs={}, errors={},
                     sf_requests=v) for i, v in enumerate((120, 180, 90))]
    near = api_chart(days, budget=Budget(share=20, limit=1000, used=90, org_used=0, now=now))
    (cap,) = [line for line in near.lines if line.css == "line-cap"]
    bar = next(b for b in near.bars if b.value == 180)
    assert cap.value == 200 and cap.y < bar.y  # the 200-request line sits above the 180 bar
    far = api_chart(days, budget=Budget(share=20, limit=100000, used=90, org_used=0, now=now))
    assert not far.lines and "far above" in far.title
