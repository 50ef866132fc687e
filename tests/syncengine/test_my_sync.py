"""My sync's engine side: queued runs through the task, progress on the run row,
reviewed plans applied as reviewed, settings previews that write nothing, plan
expiry, Auto pause and the first-Auto review gate. Remote data through the sandbox."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from sandbox.accounting import api_counts_by_family, api_counts_reset
from syncengine import selectors, services
from syncengine.models import PlannedChange, SyncCursor, SyncLease, SyncLink, SyncRun
from syncengine.services import SyncRefused
from syncengine.tasks import dispatch_due, purge_expired_plans, run_queued

from .conftest import SANDBOX_DBS

pytestmark = pytest.mark.django_db(databases=SANDBOX_DBS, transaction=True)

# Request families that only read (everything else a run sends writes).
READS = {"graph-contacts-delta", "graph-todo-lists", "graph-todo-tasks-delta", "graph-calendarview-delta",
         "sf-query", "sf-query-all"}


def _o_contact(member, given, surname, email, **extra):
    from sandbox.microsoft.services import contact_create

    payload = {"givenName": given, "surname": surname, **extra,
               "emailAddresses": [{"address": email, "name": f"{given} {surname}"}]}
    return contact_create(member.mailbox, payload)


def _o_task(member, title):
    from sandbox.microsoft.services import todo_task_create

    return todo_task_create(member.mailbox, {"title": title})


def _o_update(item, **payload):
    from sandbox.microsoft.services import item_update

    return item_update(item, payload)


def shown(run) -> set[str]:
    """Titles the review page lists (bookkeeping decisions write nothing and are not shown)."""
    return set(PlannedChange.objects.filter(run=run).exclude(action__in=("touch", "out_of_scope"))
               .values_list("title", flat=True))


@pytest.fixture
def inline_q(monkeypatch):
    # django-q2 reads Q_CLUSTER once at import; run the dispatcher's tasks inline here.
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)


def start(member, kind, purpose, **kw) -> SyncRun:
    return services.sync_start(membership=member.membership, kind=kind, purpose=purpose, **kw)


def start_and_run(member, kind, purpose, **kw) -> SyncRun:
    run = start(member, kind, purpose, **kw)
    run_queued(run.pk)
    run.refresh_from_db()
    return run


def _first_sync(member, kind="contacts") -> SyncRun:
    run = start_and_run(member, kind, "sync")
    assert run.status == "succeeded", run.error
    return run


def _remote_state(member):
    from sandbox.microsoft.models import Item
    from sandbox.salesforce.services import sf_records

    o = sorted(Item.objects.filter(mailbox=member.mailbox).values_list("graph_id", "change_key", "deleted"))
    s = sorted((r["Id"], r["SystemModstamp"]) for obj in ("Contact", "Task", "Event")
               for r in sf_records(org=member.sf_user.org, sobject=obj))
    return o, s


def _local_state(member):
    m = member.membership
    return (
        sorted(SyncLink.objects.filter(membership=m).values_list("pk", "state", "snapshot_hash",
                                                                  "outlook_change_key", "sf_modstamp")),
        sorted(SyncCursor.objects.filter(membership=m).values_list("pk", "outlook_delta_link", "sf_high_water")),
        sorted(SyncLease.objects.filter(membership=m).values_list("pk", "holder", "expires_at", "next_run_at")),
    )


# ---------------------------------------------------------------- queued runs and progress


def test_a_page_sync_is_queued_then_run_by_the_task_and_its_progress_ends_at_done(member):
    for i in range(7):
        _o_task(member, f"Call {i}")
    run = start(member, "tasks", "sync")
    assert (run.status, run.purpose, run.progress["phase"]) == ("queued", "sync", "queued")
    assert member.sf("Task") == []

    with CaptureQueriesContext(connection) as ctx:
        out = run_queued(run.pk)
    assert out["status"] == "succeeded", out
    run.refresh_from_db()
    assert run.status == "succeeded" and run.finished_at is not None
    assert run.progress == {"phase": "done", "read": {"outlook": 7, "salesforce": 0}, "decided": 7,
                            "applied": 7, "total": 7}
    assert len(member.sf("Task")) == 7
    # The engine wrote its progress on the row as it went: each phase, in order.
    phases = []
    for q in ctx.captured_queries:
        sql = q["sql"]
        if sql.startswith("UPDATE") and "syncengine_syncrun" in sql and '"phase"' in sql:
            phase = sql.split('"phase": "', 1)[1].split('"', 1)[0]
            if not phases or phases[-1] != phase:
                phases.append(phase)
    assert phases == ["reading", "deciding", "applying", "done"]
    # A task delivered twice (a retry) does nothing the second time.
    assert run_queued(run.pk)["message"] == "not queued"
    assert SyncRun.objects.filter(kind="tasks").count() == 1


def test_a_second_start_while_a_run_is_queued_or_running_returns_that_run(member):
    first = start(member, "tasks", "sync")
    assert start(member, "tasks", "sync").pk == first.pk
    assert start(member, "tasks", "preview").pk == first.pk  # one run per member and kind
    SyncRun.objects.filter(pk=first.pk).update(status="running", started_at=timezone.now())
    assert start(member, "tasks", "sync").pk == first.pk
    # A "running" row older than the lease is a killed worker's: it does not block a new run.
    SyncRun.objects.filter(pk=first.pk).update(started_at=timezone.now() - dt.timedelta(hours=2))
    assert start(member, "tasks", "sync").pk != first.pk


def test_a_queued_run_waits_while_another_run_holds_the_lease(member):
    from django_q.models import Schedule

    from syncengine.engine.run import lease_acquire, lease_release

    _o_task(member, "Call Ada")
    run = start(member, "tasks", "sync")
    assert lease_acquire(member.membership, "tasks", "an-auto-run")
    run_queued(run.pk)
    run.refresh_from_db()
    assert run.status == "queued" and member.sf("Task") == []
    assert Schedule.objects.filter(name=f"syncengine.wait-{run.pk}", func="syncengine.tasks.run_queued").exists()
    lease_release(member.membership, "tasks", "an-auto-run")
    run_queued(run.pk)  # what the one-off schedule calls
    run.refresh_from_db()
    assert run.status == "succeeded" and len(member.sf("Task")) == 1


def test_start_without_connections_is_refused_with_what_to_do(bob):
    from orgs.models import Membership

    m = Membership.objects.get(user=bob)
    with pytest.raises(SyncRefused, match="Outlook is not connected: connect it"):
        services.sync_start(membership=m, kind="contacts", purpose="preview")
    assert not SyncRun.objects.exists()


def test_a_failed_run_says_why_in_words_a_member_understands(member):
    from connections.models import Connection

    run = start(member, "contacts", "preview")
    Connection.objects.filter(membership=member.membership, provider="salesforce").update(status="needs_reauth")
    run_queued(run.pk)
    run.refresh_from_db()
    assert run.status in ("stopped", "failed")
    assert "Reconnect" in run.error and run.progress["phase"] == "done"


# ---------------------------------------------------------------- reviewed plans


def _conflict_and_creates(member):
    """One synced contact edited on both sides (a conflict) and three new Outlook contacts."""
    ada = _o_contact(member, "Ada", "Lovelace", "ada@example.com")
    _first_sync(member)
    (row,) = member.sf("Contact")
    _o_update(ada, jobTitle="Countess")
    member.sf_update("Contact", row["Id"], Title="Mathematician")
    for name in ("Grace", "Alan", "Edsger"):
        _o_contact(member, name, "Tester", f"{name.lower()}@example.com")


def test_run_selected_applies_exactly_the_included_items_with_the_chosen_winner(member):
    _conflict_and_creates(member)
    plan = start_and_run(member, "contacts", "preview")
    assert plan.status == "planned" and plan.plan_expires_at > timezone.now()
    assert plan.progress["phase"] == "done"
    rows = {p.title: p for p in PlannedChange.objects.filter(run=plan)}
    assert {t: p.action for t, p in rows.items()} == {
        "Ada Lovelace": "conflict", "Grace Tester": "create", "Alan Tester": "create", "Edsger Tester": "create"}
    conflict = rows["Ada Lovelace"]
    policy_winner = conflict.conflicts[0]["winner"]
    chosen = "salesforce" if policy_winner == "outlook" else "outlook"
    m = member.membership
    assert services.plan_set_included(membership=m, run_id=plan.pk, change_ids=[rows["Grace Tester"].pk,
                                      rows["Alan Tester"].pk], included=False) == 2
    services.plan_set_winner(membership=m, run_id=plan.pk, change_id=conflict.pk, winner=chosen)

    done = start_and_run(member, "contacts", "apply_plan", plan_run_id=plan.pk)
    assert done.status == "succeeded", done.error
    assert sorted(r["LastName"] + r["FirstName"] for r in member.sf("Contact")) == [
        "LovelaceAda", "TesterEdsger"]
    want = "Mathematician" if chosen == "salesforce" else "Countess"
    ada_o = next(c for c in member.contacts_o() if c.data["givenName"] == "Ada")
    ada_s = next(r for r in member.sf("Contact") if r["FirstName"] == "Ada")
    assert ada_o.data.get("jobTitle") == ada_s["Title"] == want
    statuses = dict(PlannedChange.objects.filter(run=plan).values_list("title", "status"))
    assert statuses == {"Ada Lovelace": "applied", "Edsger Tester": "applied", "Grace Tester": "skipped",
                        "Alan Tester": "skipped"}
    plan.refresh_from_db()
    assert plan.applied_run_id == done.pk
    # The left-out items are still there to sync next time.
    assert shown(start_and_run(member, "contacts", "preview")) == {"Grace Tester", "Alan Tester"}


def test_an_item_changed_since_the_preview_is_left_for_the_next_preview(member):
    a = _o_task(member, "Call Ada")
    _o_task(member, "Email Grace")
    plan = start_and_run(member, "tasks", "preview")
    _o_update(a, title="Call Ada today")  # edited while the member reviewed

    done = start_and_run(member, "tasks", "apply_plan", plan_run_id=plan.pk)
    assert done.status == "succeeded"
    assert [r["Subject"] for r in member.sf("Task")] == ["Email Grace"]
    stale = PlannedChange.objects.get(run=plan, title="Call Ada")
    assert stale.status == "stale" and stale.get_status_display() == "Changed since preview"
    assert "changed since the preview" in done.log_entries.get(action="stale").message
    again = start_and_run(member, "tasks", "preview")
    assert shown(again) == {"Call Ada today"}


def test_applying_twice_an_expired_plan_another_members_plan_or_a_settings_preview_is_refused(member, bob):
    from orgs.models import Membership

    _o_task(member, "Call Ada")
    plan = start_and_run(member, "tasks", "preview")
    other = Membership.objects.get(user=bob)
    with pytest.raises(SyncRefused, match="not available"):
        services.sync_start(membership=other, kind="tasks", purpose="apply_plan", plan_run_id=plan.pk)
    with pytest.raises(SyncRefused, match="not available"):
        services.plan_set_included(membership=other, run_id=plan.pk, change_ids=None, action_group="create",
                                   included=False)

    SyncRun.objects.filter(pk=plan.pk).update(plan_expires_at=timezone.now() - dt.timedelta(minutes=1))
    with pytest.raises(SyncRefused, match="expired"):
        start(member, "tasks", "apply_plan", plan_run_id=plan.pk)
    SyncRun.objects.filter(pk=plan.pk).update(plan_expires_at=timezone.now() + dt.timedelta(hours=1))

    first = start(member, "tasks", "apply_plan", plan_run_id=plan.pk)
    assert start(member, "tasks", "apply_plan", plan_run_id=plan.pk).pk == first.pk  # double submit: one run
    run_queued(first.pk)
    with pytest.raises(SyncRefused, match="already applied"):
        start(member, "tasks", "apply_plan", plan_run_id=plan.pk)
    assert len(member.sf("Task")) == 1
    assert SyncRun.objects.filter(purpose="apply_plan").count() == 1

    preview = start_and_run(member, "tasks", "settings_preview", policy_overrides={"direction": "both"})
    with pytest.raises(SyncRefused, match="settings change"):
        start(member, "tasks", "apply_plan", plan_run_id=preview.pk)


def test_a_tampered_selection_is_refused_and_changes_nothing(member):
    _o_task(member, "Call Ada")
    _o_task(member, "Email Grace")
    plan = start_and_run(member, "tasks", "preview")
    other_plan_item = PlannedChange.objects.create(run=SyncRun.objects.create(
        membership=member.membership, kind="tasks", trigger="manual", started_at=timezone.now()), seq=1,
        action="create")
    mine = list(PlannedChange.objects.filter(run=plan).values_list("pk", flat=True))
    with pytest.raises(SyncRefused, match="not in this plan"):
        services.plan_set_included(membership=member.membership, run_id=plan.pk,
                                   change_ids=[mine[0], other_plan_item.pk], included=False)
    assert PlannedChange.objects.filter(run=plan, included=False).count() == 0
    with pytest.raises(SyncRefused, match="Only a conflict"):
        services.plan_set_winner(membership=member.membership, run_id=plan.pk, change_id=mine[0],
                                 winner="salesforce")
    assert services.plan_set_included(membership=member.membership, run_id=plan.pk, action_group="create",
                                      included=False) == 2


def test_a_settings_preview_plans_under_the_proposed_values_and_writes_nothing_anywhere(member):
    _o_task(member, "Call Ada")
    _first_sync(member, "tasks")
    _o_task(member, "Email Grace")
    member.sf_create("Task", Subject="Book room", Status="Not Started", OwnerId=member.sf_user.user_id)
    remote, local = _remote_state(member), _local_state(member)
    api_counts_reset()

    run = start_and_run(member, "tasks", "settings_preview",
                        policy_overrides={"direction": "salesforce_to_outlook"})
    assert run.status == "planned", run.error
    # Under the proposed one-way direction only the Salesforce task would be copied.
    planned = {p.title: p.side for p in PlannedChange.objects.filter(run=run, action="create")}
    assert planned == {"Book room": "outlook:create"}
    assert _remote_state(member) == remote
    assert _local_state(member) == local
    families = {family for (_side, family), n in api_counts_by_family().items() if n}
    assert families - READS - {f for f in families if f.startswith("identity-") or "token" in f} == set()


# ---------------------------------------------------------------- plan expiry


def test_expired_plans_are_purged_in_batches_by_the_scheduled_task(member, settings):
    from django_q.models import Schedule

    from syncengine.tasks import PURGE_SCHEDULE, schedule_ensure

    schedule_ensure()
    schedule_ensure()
    assert Schedule.objects.filter(name=PURGE_SCHEDULE, func="syncengine.tasks.purge_expired_plans").count() == 1
    for i in range(3):
        _o_task(member, f"Call {i}")
    old = start_and_run(member, "tasks", "preview")
    SyncRun.objects.filter(pk=old.pk).update(plan_expires_at=timezone.now() - dt.timedelta(seconds=1))
    settings.SYNC_PLAN_TTL = dt.timedelta(hours=2)
    fresh = start_and_run(member, "tasks", "preview")
    assert fresh.plan_expires_at > timezone.now() + dt.timedelta(minutes=119)

    assert services.sync_plans_purge(batch=2) == 3
    assert not PlannedChange.objects.filter(run=old).exists()
    assert PlannedChange.objects.filter(run=fresh).count() == 3
    assert purge_expired_plans() == 0  # nothing left to remove; the old run is not scanned again
    with pytest.raises(SyncRefused, match="expired"):
        start(member, "tasks", "apply_plan", plan_run_id=old.pk)


# ---------------------------------------------------------------- Auto: pause and the first review


def _auto(member, kind="tasks"):
    from policy.models import UserPolicy

    UserPolicy.objects.create(membership=member.membership, kind=kind, mode="auto", frequency_minutes=15)


def test_auto_does_not_start_before_a_first_reviewed_sync(member, inline_q):
    _auto(member)
    _o_task(member, "Call Ada")
    assert selectors.kind_needs_first_review(member.membership, "tasks")
    dispatch_due()
    assert not SyncRun.objects.filter(kind="tasks").exists() and member.sf("Task") == []
    start_and_run(member, "tasks", "preview")  # a preview is not a completed sync
    assert selectors.kind_needs_first_review(member.membership, "tasks")

    _first_sync(member, "tasks")
    assert not selectors.kind_needs_first_review(member.membership, "tasks")
    assert dispatch_due() >= 1
    assert SyncRun.objects.filter(kind="tasks", trigger="auto").count() == 1


def test_paused_auto_is_not_dispatched_until_resumed(member, inline_q):
    _first_sync(member, "tasks")
    _auto(member)
    services.sync_auto_pause(membership=member.membership, kind="tasks", paused=True)
    assert selectors.auto_paused(membership=member.membership, kind="tasks")
    dispatch_due()
    assert not SyncRun.objects.filter(kind="tasks", trigger="auto").exists()

    services.sync_auto_pause(membership=member.membership, kind="tasks", paused=False)
    assert not selectors.auto_paused(membership=member.membership, kind="tasks")
    dispatch_due()
    assert SyncRun.objects.filter(kind="tasks", trigger="auto").count() == 1


def test_run_for_member_does_not_find_another_members_run(member, bob):
    from orgs.models import Membership

    run = start(member, "tasks", "sync")
    assert selectors.run_for_member(membership=member.membership, run_id=run.pk) == run
    with pytest.raises(SyncRun.DoesNotExist):
        selectors.run_for_member(membership=Membership.objects.get(user=bob), run_id=run.pk)


# ---------------------------------------------------------------- manage.py sync


def _sync_json(member, **kw) -> dict:
    import io
    import json

    from django.core.management import call_command

    out = io.StringIO()
    call_command("sync", user=member.membership.user.email, json=True, stdout=out, **kw)
    return json.loads(out.getvalue())


def test_sync_command_lists_left_out_items_with_their_reasons_and_applies_plans(member):
    from .test_bad_remote_items import _corrupt_outlook

    bad = _o_contact(member, "Ada", "Lovelace", "ada@example.com")
    _corrupt_outlook(bad, businessAddress="1 Navy Way, Arlington")  # unmappable: an item error
    _o_task(member, "Call Ada")
    _o_task(member, "Email Grace")

    preview = _sync_json(member, kind="contacts", plan=True)
    (item,) = preview["skipped_items"]  # from the stored plan
    assert (item["action"], item["title"]) == ("error", "Ada Lovelace")
    assert "address" in item["reason"].lower(), item
    contacts = _sync_json(member, kind="contacts")
    assert contacts["status"] == "succeeded" and contacts["errors"]["outlook"] == 1
    (item,) = contacts["skipped_items"]  # from the run's log
    assert item["action"] == "error" and "address" in item["reason"].lower() and item["outlook_id"]

    plan = _sync_json(member, kind="tasks", plan=True)
    assert plan["status"] == "planned" and member.sf("Task") == []
    assert SyncRun.objects.get(pk=plan["run_id"]).purpose == "preview"
    seq = PlannedChange.objects.get(run_id=plan["run_id"], title="Email Grace").seq
    done = _sync_json(member, kind="tasks", apply_plan=plan["run_id"], exclude=str(seq))
    assert done["status"] == "succeeded" and done["created"]["salesforce"] == 1
    assert [r["Subject"] for r in member.sf("Task")] == ["Call Ada"]
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="already applied"):
        _sync_json(member, kind="tasks", apply_plan=plan["run_id"])


def test_a_reviewed_rebuild_forgets_links_under_the_lease_and_readopts_without_creating(member):
    for i in range(3):
        _o_contact(member, f"P{i}", f"Person{i}", f"p{i}@example.com")
    _first_sync(member)
    before = set(SyncLink.objects.values_list("outlook_id", "sf_id"))
    with pytest.raises(SyncRefused, match="always previewed"):
        start(member, "contacts", "rebuild")
    preview = start_and_run(member, "contacts", "rebuild_preview")
    assert (preview.status, preview.trigger) == ("planned", "rebuild")
    assert {p.action for p in PlannedChange.objects.filter(run=preview)} == {"link"}
    assert set(SyncLink.objects.values_list("outlook_id", "sf_id")) == before  # a preview forgets nothing

    done = start_and_run(member, "contacts", "rebuild", plan_run_id=preview.pk)
    assert done.status == "succeeded", done.error
    assert set(SyncLink.objects.values_list("outlook_id", "sf_id")) == before
    assert len(member.contacts_o()) == len(member.sf("Contact")) == 3


def test_a_double_submitted_apply_made_at_the_same_time_gives_one_run(member):
    import threading

    from django.db import connections

    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (DATABASE_URL): SQLite's in-memory test database refuses a second "
                    "concurrent transaction with a table lock; file databases use IMMEDIATE transactions")
    _o_task(member, "Call Ada")
    plan = start_and_run(member, "tasks", "preview")
    barrier, got, errors = threading.Barrier(2), [], []

    def submit():
        try:
            barrier.wait()
            got.append(start(member, "tasks", "apply_plan", plan_run_id=plan.pk).pk)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(isinstance(e, SyncRefused) for e in errors), errors
    assert len(set(got)) == 1 and len(got) + len(errors) == 2
    assert SyncRun.objects.filter(purpose="apply_plan").count() == 1


def test_a_settings_preview_of_an_invalid_value_is_refused_with_the_field_named(member):
    with pytest.raises(SyncRefused, match="cannot be previewed"):
        start(member, "tasks", "settings_preview", policy_overrides={"direction": "sideways"})
    with pytest.raises(SyncRefused, match="Change a setting first"):
        start(member, "tasks", "settings_preview", policy_overrides={})
    assert not SyncRun.objects.exists()


def test_a_queued_run_no_worker_took_is_closed_and_does_not_block_the_next_click(member):
    lost = start(member, "tasks", "sync")
    SyncRun.objects.filter(pk=lost.pk).update(started_at=timezone.now() - dt.timedelta(hours=2))
    again = start(member, "tasks", "sync")
    assert again.pk != lost.pk and again.status == "queued"
    lost.refresh_from_db()
    assert lost.status == "failed" and "never started" in lost.error


def test_an_apply_that_never_started_releases_its_plan(member):
    from syncengine.engine.run import lease_acquire
    from syncengine.tasks import WAIT_MAX

    _o_task(member, "Call Ada")
    plan = start_and_run(member, "tasks", "preview")
    apply = start(member, "tasks", "apply_plan", plan_run_id=plan.pk)
    assert lease_acquire(member.membership, "tasks", "a-long-auto-run")
    SyncRun.objects.filter(pk=apply.pk).update(progress={"phase": "queued", "waits": WAIT_MAX})
    run_queued(apply.pk)  # one wait too many: it gives up
    apply.refresh_from_db()
    assert apply.status == "failed" and "kept running" in apply.error and member.sf("Task") == []
    plan.refresh_from_db()
    assert plan.applied_run_id is None  # nothing of it was applied: it can be run again


def test_sync_command_json_lists_an_item_the_other_side_refused(member):
    from sandbox.faults import fault_add, faults_clear

    _o_task(member, "Send quote")
    fault_add(side="salesforce", kind="http_500", path_pattern="composite/sobjects", method="POST", count=5)
    try:
        data = _sync_json(member, kind="tasks")
    finally:
        faults_clear()
    assert data["errors"]["salesforce"] == 1
    (item,) = data["skipped_items"]
    assert item["title"] == "Send quote" and item["reason"]
