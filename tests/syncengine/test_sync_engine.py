"""The engine through the sandbox: what a user would notice on either side."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from sandbox.accounting import api_counts_by_family, api_counts_reset
from sandbox.faults import fault_add, faults_clear
from syncengine.engine.run import (
    engine_policy,
    lease_acquire,
    lease_release,
    plan_apply,
    rebuild,
    run_sync,
    snaprecord_event,
)
from syncengine.models import PlannedChange, SyncLink, SyncLogEntry

from .conftest import SANDBOX_DBS

pytestmark = pytest.mark.django_db(databases=SANDBOX_DBS, transaction=True)


def _o_contact(member, given, surname, email=None, **extra):
    from sandbox.microsoft.services import contact_create

    payload = {"givenName": given, "surname": surname, **extra}
    if email:
        payload["emailAddresses"] = [{"address": email, "name": f"{given} {surname}"}]
    return contact_create(member.mailbox, payload)


def _o_task(member, title, **extra):
    from sandbox.microsoft.services import todo_task_create

    return todo_task_create(member.mailbox, {"title": title, **extra})


def _o_event(member, subject, start, minutes=60, **extra):
    from sandbox.microsoft.services import event_create

    end = start + dt.timedelta(minutes=minutes)
    item, _ = event_create(member.mailbox, {
        "subject": subject,
        "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
        "end": {"dateTime": end.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
        **extra,
    })
    return item


def _o_update(item, **payload):
    from sandbox.microsoft.services import item_update

    return item_update(item, payload)


def _o_delete(item):
    from sandbox.microsoft.services import item_delete

    item_delete(item)


def sync(member, kind, **kw):
    result = run_sync(member.membership, kind, "manual", **kw)
    assert result.status in ("succeeded", "planned", "stopped", "failed", "skipped"), result
    return result


def _emails_o(member):
    return sorted(a["address"].lower() for c in member.contacts_o() for a in c.data.get("emailAddresses") or [])


def test_first_contact_sync_over_overlapping_data_creates_no_duplicate_and_second_run_is_quiet(member):
    _o_contact(member, "Ada", "Lovelace", "ada@example.com")
    _o_contact(member, "Grace", "Hopper", "grace@example.com", jobTitle="Rear Admiral")
    _o_contact(member, "Alan", "Turing", "alan@example.com")
    member.sf_create("Contact", FirstName="Ada", LastName="Lovelace", Email="ada@example.com")
    member.sf_create("Contact", FirstName="Grace", LastName="Hopper", Email="grace@example.com", Department="Navy")
    member.sf_create("Contact", FirstName="Katherine", LastName="Johnson", Email="kj@example.com")

    first = sync(member, "contacts")
    assert first.status == "succeeded", first.message
    assert first.counts.linked == 2
    assert first.counts.created == {"outlook": 1, "salesforce": 1}
    assert len(member.contacts_o()) == 4 and len(member.sf("Contact")) == 4
    assert _emails_o(member) == sorted(r["Email"] for r in member.sf("Contact"))
    grace_sf = next(r for r in member.sf("Contact") if r["Email"] == "grace@example.com")
    assert (grace_sf["Title"], grace_sf["Department"]) == ("Rear Admiral", "Navy")
    # Paired and created records carry the key of exactly one link (an item
    # only copied *from* Salesforce keeps its record untouched).
    keys = [r["LinkPoint_Key__c"] for r in member.sf("Contact") if r["Email"] != "kj@example.com"]
    assert sorted(keys) == sorted(
        str(k) for k in SyncLink.objects.exclude(sf_id=next(
            r["Id"] for r in member.sf("Contact") if r["Email"] == "kj@example.com"
        )).values_list("link_key", flat=True)
    )

    second = sync(member, "contacts")
    assert second.counts.writes == 0, second.as_dict()
    api_counts_reset()
    third = sync(member, "contacts")
    assert third.counts.writes == 0
    # Quiet incremental run: one change query per side.
    data_calls = {k: n for k, n in api_counts_by_family().items() if not k[1].startswith("identity-")}
    assert data_calls == {("outlook", "graph-contacts-delta"): 1, ("salesforce", "sf-query-all"): 1}
    assert third.api_requests["salesforce"] == 1


@pytest.mark.parametrize("winner", ["outlook", "salesforce"])
def test_same_field_edited_on_both_sides_follows_the_winner_and_logs_the_loser(member, winner):
    item = _o_contact(member, "Ada", "Lovelace", "ada@example.com")
    assert sync(member, "contacts").status == "succeeded"
    (row,) = member.sf("Contact")
    _o_update(item, jobTitle="Countess", department="Analytics")
    member.sf_update("Contact", row["Id"], Title="Mathematician", MobilePhone="+44 1")
    policy = engine_policy(member.membership, "contacts").replace(conflict_winner=winner)

    result = sync(member, "contacts", policy=policy)
    assert result.counts.conflicts == 1
    want = "Countess" if winner == "outlook" else "Mathematician"
    (o,), (s,) = member.contacts_o(), member.sf("Contact")
    assert o.data.get("jobTitle") == s["Title"] == want
    # Disjoint edits from both sides both survive.
    assert o.data.get("department") == s["Department"] == "Analytics"
    assert o.data.get("mobilePhone") == s["MobilePhone"] == "+44 1"
    entry = SyncLogEntry.objects.get(run_id=result.run_id, level="warning")
    lost = "Mathematician" if winner == "outlook" else "Countess"
    assert entry.detail["conflicts"][0]["lost"] == {"job_title": lost}
    assert sync(member, "contacts").counts.writes == 0


def test_delete_propagates_and_modify_beats_delete(member):
    a = _o_task(member, "Call Ada")
    _o_task(member, "Email Grace")
    assert sync(member, "tasks").counts.created["salesforce"] == 2
    grace = next(r for r in member.sf("Task") if r["Subject"] == "Email Grace")
    _o_delete(a)  # deleted in Outlook, untouched in Salesforce → deleted there too
    _o_update(next(t for t in member.tasks_o() if t.data["title"] == "Email Grace"), title="Email Grace today")
    member.sf_delete(grace["Id"])  # deleted in Salesforce while edited in Outlook → the edit wins

    result = sync(member, "tasks")
    assert result.counts.deleted["salesforce"] == 1
    assert result.counts.created["salesforce"] == 1
    assert [r["Subject"] for r in member.sf("Task")] == ["Email Grace today"]
    assert [t.data["title"] for t in member.tasks_o()] == ["Email Grace today"]
    assert sync(member, "tasks").counts.writes == 0


def test_event_moved_out_of_the_window_is_not_deleted(member):
    start = timezone.now().replace(microsecond=0, second=0) + dt.timedelta(days=2)
    ev = _o_event(member, "Quarterly review", start)
    assert sync(member, "calendar").counts.created["salesforce"] == 1
    far = start + dt.timedelta(days=800)
    _o_update(ev, start={"dateTime": far.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
              end={"dateTime": (far + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"})
    result = sync(member, "calendar")
    assert result.counts.deleted == {"outlook": 0, "salesforce": 0}
    assert len(member.sf("Event")) == 1 and len(member.events_o()) == 1
    assert SyncLink.objects.get().state == "out_of_scope"


def test_mass_delete_guard_stops_and_deletes_nothing(member):
    items = [_o_contact(member, f"P{i}", f"Person{i}", f"p{i}@example.com") for i in range(12)]
    assert sync(member, "contacts").counts.created["salesforce"] == 12
    for it in items[:10]:
        _o_delete(it)
    result = sync(member, "contacts")
    assert result.status == "stopped"
    assert "Stopped before deleting 10 of 12" in result.message
    assert len(member.sf("Contact")) == 12


def test_auth_error_stops_the_run_and_never_reads_as_an_empty_side(member):
    from connections.selectors import connection_for
    from sandbox.microsoft.services import token_revoke_all

    for i in range(6):
        _o_contact(member, f"P{i}", f"Person{i}", f"p{i}@example.com")
    assert sync(member, "contacts").counts.created["salesforce"] == 6
    token_revoke_all(member.mailbox)
    fault_add(side="outlook", kind="expired_token", path_pattern=r"/v1\.0/", count=None)
    try:
        result = sync(member, "contacts", full=True)
    finally:
        faults_clear()
    assert result.status == "stopped" and "Reconnect" in result.message, result.message
    assert len(member.sf("Contact")) == 6
    assert connection_for(member.membership, "microsoft").status == "needs_reauth"


def test_lost_answer_after_a_salesforce_create_is_adopted_by_key_not_created_twice(member):
    _o_task(member, "Send quote")
    fault_add(side="salesforce", kind="lost_response", path_pattern="composite/sobjects", method="POST", count=1)
    first = sync(member, "tasks")
    faults_clear()
    assert first.counts.errors["salesforce"] == 1
    assert SyncLink.objects.get().state == "pending_create_salesforce"
    assert len(member.sf("Task")) == 1  # the write happened; only the answer was lost

    second = sync(member, "tasks")
    assert len(member.sf("Task")) == 1
    link = SyncLink.objects.get()
    assert link.state == "synced" and link.sf_id == member.sf("Task")[0]["Id"]
    assert second.counts.created == {"outlook": 0, "salesforce": 0}


def test_lost_answer_after_an_outlook_create_is_adopted_by_key(member):
    member.sf_create("Contact", FirstName="Ada", LastName="Lovelace", Email="ada@example.com")
    fault_add(side="outlook", kind="lost_response", path_pattern=r"\$batch", method="POST", count=1)
    sync(member, "contacts")
    faults_clear()
    assert len(member.contacts_o()) == 1
    sync(member, "contacts")
    assert len(member.contacts_o()) == 1
    assert SyncLink.objects.get().state == "synced"
    assert sync(member, "contacts").counts.writes == 0


def test_a_held_lease_prevents_an_overlapping_run(member):
    _o_task(member, "Call Ada")
    assert lease_acquire(member.membership, "tasks", "someone-else")
    try:
        result = run_sync(member.membership, "tasks", "auto")
        assert result.status == "skipped" and member.sf("Task") == []
    finally:
        lease_release(member.membership, "tasks", "someone-else")
    assert run_sync(member.membership, "tasks", "auto").counts.created["salesforce"] == 1


def test_manual_plan_is_applied_as_reviewed(member):
    _o_task(member, "Call Ada")
    b = _o_task(member, "Email Grace")
    _o_task(member, "Book room")
    plan = run_sync(member.membership, "tasks", "manual", plan_only=True)
    assert plan.status == "planned" and member.sf("Task") == []
    rows = {p.title: p for p in PlannedChange.objects.filter(run_id=plan.run_id)}
    assert set(rows) == {"Call Ada", "Email Grace", "Book room"}
    _o_update(b, title="Email Grace now")  # changed after review: not applied as shown

    result = plan_apply(member.membership, plan.run_id, exclude={rows["Book room"].seq})
    assert [r["Subject"] for r in member.sf("Task")] == ["Call Ada"]
    statuses = dict(PlannedChange.objects.filter(run_id=plan.run_id).values_list("title", "status"))
    assert statuses == {"Call Ada": "applied", "Email Grace": "stale", "Book room": "skipped"}
    assert result.status == "succeeded"


def test_snaprecord_link_is_one_way(member):
    start = timezone.now().replace(microsecond=0, second=0) + dt.timedelta(days=1)
    ev = _o_event(member, "Demo with Initech", start)
    _o_event(member, "Dentist", start + dt.timedelta(hours=3))
    result = snaprecord_event(member.membership, ev.graph_id)
    assert result.status == "succeeded", result.message
    (row,) = member.sf("Event")
    assert row["Subject"] == "Demo with Initech"

    _o_update(ev, subject="Demo with Initech (moved)")
    member.sf_update("Event", row["Id"], Location="Salesforce-only note")
    run_sync(member.membership, "calendar", "snaprecord")
    (row,) = member.sf("Event")
    assert row["Subject"] == "Demo with Initech (moved)"
    # Salesforce edits never flow back; the other event was never copied.
    assert not (member.events_o()[0].data.get("location") or {}).get("displayName")
    assert len(member.events_o()) == 2 and len(member.sf("Event")) == 1


def test_rebuild_readopts_everything_without_creating(member):
    for i in range(3):
        _o_contact(member, f"P{i}", f"Person{i}", f"p{i}@example.com")
    sync(member, "contacts")
    preview = rebuild(member.membership, "contacts")
    assert preview.counts.created == {"outlook": 0, "salesforce": 0} and preview.counts.linked == 3
    assert SyncLink.objects.count() == 3
    done = rebuild(member.membership, "contacts", apply=True)
    assert done.counts.created == {"outlook": 0, "salesforce": 0} and done.counts.linked == 3
    assert len(member.contacts_o()) == 3 and len(member.sf("Contact")) == 3


def test_server_touches_and_our_own_echoes_cause_no_writes(member):
    from sandbox.microsoft.services import event_touch

    start = timezone.now().replace(microsecond=0, second=0) + dt.timedelta(days=3)
    ev = _o_event(member, "Board meeting", start)
    assert sync(member, "calendar").counts.created["salesforce"] == 1
    (row,) = member.sf("Event")
    event_touch(ev)  # new changeKey, same content
    member.sf_update("Event", row["Id"], Subject="Board meeting")  # new SystemModstamp, same content
    result = sync(member, "calendar")
    assert result.counts.writes == 0, result.as_dict()
    assert sync(member, "calendar").counts.writes == 0


def test_first_task_sync_takes_the_fewest_requests(member):
    for title in ("Call Ada", "Email Grace", "Book room"):
        _o_task(member, title)
    api_counts_reset()
    result = sync(member, "tasks")
    assert result.counts.created["salesforce"] == 3
    data_calls = {k: n for k, n in api_counts_by_family().items() if not k[1].startswith("identity-")}
    # Outlook: find the To Do list, read the delta round. Salesforce: one query, one collection insert.
    assert sum(n for (side, _), n in data_calls.items() if side == "outlook") == 2, data_calls
    assert sum(n for (side, _), n in data_calls.items() if side == "salesforce") == 2, data_calls


def test_blocks_change_nothing_and_the_run_leaves_no_scratch_file(member, monkeypatch, tmp_path):
    """A run decides and applies a block at a time, its working set on disk: with
    blocks of two, matches across blocks still pair, nothing is created twice,
    the next run is quiet, and the scratch file is gone after every run."""
    import tempfile

    from syncengine.engine import run as run_mod

    monkeypatch.setattr(run_mod, "DECIDE_BLOCK", 2)
    monkeypatch.setattr(run_mod, "APPLY_BLOCK", 2)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    for i in range(5):
        _o_contact(member, f"Given{i}", f"Person{i}", f"p{i}@example.com")
    for i in range(3, 9):
        member.sf_create("Contact", FirstName=f"Given{i}", LastName=f"Person{i}", Email=f"p{i}@example.com")

    first = sync(member, "contacts")
    assert first.status == "succeeded", first.message
    assert first.counts.linked == 2
    assert first.counts.created == {"outlook": 4, "salesforce": 3}
    assert _emails_o(member) == sorted(r["Email"] for r in member.sf("Contact"))
    assert len(member.contacts_o()) == 9
    _o_update(member.contacts_o()[0], jobTitle="Engineer")
    assert sync(member, "contacts").counts.updated == {"outlook": 0, "salesforce": 1}
    assert sync(member, "contacts").counts.writes == 0
    assert list(tmp_path.iterdir()) == []


def test_salesforce_edit_while_a_first_sync_pairs_the_record_is_not_lost(member):
    """The first sync pairs an Outlook contact with the Salesforce one of the same
    e-mail and will write the merged content (and our key) to Salesforce; between
    its read and that write the user saves a new phone there. The write is held;
    the next run merges afresh: the phone stays, the winner's values still win."""

    from sandbox.microsoft.services import contact_create
    from syncengine.engine import run as run_mod

    contact_create(member.mailbox, {"givenName": "Ada", "surname": "Lovelace", "jobTitle": "Countess",
                                    "emailAddresses": [{"address": "ada@example.com", "name": "Ada"}]})
    row_id = member.sf_create("Contact", FirstName="Ada", LastName="Lovelace", Email="ada@example.com",
                           Title="Analyst")
    with member.saves_in_salesforce_while_a_run_reads("Contact", row_id, MobilePhone="+44 20 7946 0000"):
        held = run_mod.run_sync(member.membership, "contacts", "auto")
    assert held.counts.updated == {"outlook": 0, "salesforce": 0}, held.as_dict()
    for _ in range(3):
        run_mod.run_sync(member.membership, "contacts", "auto")
    (o,), (s,) = member.contacts_o(), member.sf("Contact")
    assert s["MobilePhone"] == o.data.get("mobilePhone") == "+44 20 7946 0000"
    # Salesforce wins contact conflicts by default: its title wins, as at a first match.
    assert s["Title"] == o.data.get("jobTitle") == "Analyst"
