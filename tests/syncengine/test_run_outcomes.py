"""How a run ends when it cannot do its work (issue 10).

A run that raised was recorded as succeeded (the `finally` turned RUNNING into
SUCCEEDED), so the member, support and the scheduler all saw a healthy sync.
And a member who never connected Outlook was told to "reconnect".
"""

from __future__ import annotations

import logging
import tempfile

import pytest
from django.core.management import CommandError, call_command

from syncengine.engine.run import crash_text, run_sync, snaprecord_event
from syncengine.models import SyncLease, SyncLogEntry, SyncRun

from .conftest import SANDBOX_DBS

pytestmark = pytest.mark.django_db(databases=SANDBOX_DBS, transaction=True)


@pytest.fixture
def no_scratch_space(monkeypatch, tmp_path):
    """The temporary directory the run keeps its working set in is gone (a full or
    unmounted /tmp on a worker): an error the engine never expects."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "gone"))
    yield
    monkeypatch.undo()


def _o_contact(member, given, surname):
    from sandbox.microsoft.services import contact_create

    return contact_create(member.mailbox, {"givenName": given, "surname": surname})


def _assert_failed_run(result, caplog):
    assert result.status == "failed", result.as_dict()
    assert "unexpected error (FileNotFoundError" in result.message
    row = SyncRun.objects.get(pk=result.run_id)
    assert row.status == "failed" and row.finished_at is not None
    assert row.error.startswith("The sync stopped on an unexpected error (FileNotFoundError: ")
    entry = SyncLogEntry.objects.get(run_id=result.run_id, action="run")
    assert entry.level == "error" and "FileNotFoundError" in entry.message
    # Operators still see the exception itself, with its traceback.
    (record,) = [r for r in caplog.records if r.name == "syncengine.engine.run" and r.exc_info]
    assert record.levelno == logging.ERROR and record.exc_info[0] is FileNotFoundError


def test_a_run_that_raises_is_failed_not_succeeded_and_the_next_run_recovers(
    member, no_scratch_space, caplog, monkeypatch
):
    _o_contact(member, "Ada", "Lovelace")
    result = run_sync(member.membership, "contacts", "manual")
    _assert_failed_run(result, caplog)
    assert member.sf("Contact") == []
    lease = SyncLease.objects.get(membership=member.membership, kind="contacts")
    assert lease.holder == ""  # released: the next run is not blocked

    monkeypatch.undo()  # the disk is back
    again = run_sync(member.membership, "contacts", "manual")
    assert again.status == "succeeded" and again.counts.created["salesforce"] == 1
    assert [r["LastName"] for r in member.sf("Contact")] == ["Lovelace"]


def test_a_snaprecord_that_cannot_be_written_is_failed_with_the_reason(member):
    """Recording an event whose Salesforce body cannot be built is a failed run that says
    why (it used to be recorded as succeeded, then as an unexpected crash)."""
    import datetime as dt

    from django.utils import timezone

    from sandbox.microsoft.services import event_create

    start = timezone.now().replace(second=0, microsecond=0) + dt.timedelta(days=1)
    event, _ = event_create(member.mailbox, {
        "subject": "Demo",
        "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
        "end": {"dateTime": (start + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S"),
                "timeZone": "UTC"},
    })
    # A member time zone the machine's tz database does not have (an account
    # created before an OS upgrade dropped the name): the event cannot be written.
    user = member.membership.user
    user.time_zone = "Mars/Olympus_Mons"
    user.save(update_fields=["time_zone"])

    result = snaprecord_event(member.membership, event.graph_id)
    assert result.status == "failed", result.as_dict()
    assert "unknown time zone 'Mars/Olympus_Mons'" in result.message
    assert SyncRun.objects.get(pk=result.run_id).status == "failed"
    assert SyncLogEntry.objects.filter(run_id=result.run_id, level="error", action="run").exists()
    assert member.sf("Event") == []


def test_the_sync_command_exits_non_zero_with_the_message(member, no_scratch_space):
    for extra in ((), ("--dry-run",)):
        with pytest.raises(CommandError) as err:
            call_command("sync", "--user", "carol@acme.test", "--kind", "contacts", *extra)
        assert "The sync stopped on an unexpected error (FileNotFoundError" in str(err.value)
        assert err.value.returncode != 0


def test_the_scheduler_backs_off_after_a_crashed_run(member, no_scratch_space):
    from policy.models import UserPolicy
    from syncengine.tasks import run_sync as task_run_sync

    UserPolicy.objects.create(membership=member.membership, kind="tasks", mode="auto",
                              frequency_minutes=15)
    before = SyncRun.objects.count()
    out = task_run_sync(member.membership.pk, "tasks", "auto")
    assert out["status"] == "failed"
    run = SyncRun.objects.exclude(pk__lte=before).get()
    lease = SyncLease.objects.get(membership=member.membership, kind="tasks")
    assert lease.consecutive_failures == 1
    # Backed off: twice the frequency, not the usual 15 minutes.
    assert (lease.next_run_at - run.finished_at).total_seconds() > 25 * 60


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        ("refresh failed: access_token=eyJ0eXAiOiJKV1QiLCJhbGciOi", "eyJ0eXAi"),
        ("Authorization: Bearer 0.AAAAbcdeFGHijkLMNopq1234567890rst", "AAAAbcde"),
        ("GET /x?sig=Zm9vYmFyYmF6cXV4cXV1eDEyMzQ1Njc4OTA and more", "Zm9vYmFy"),
        ("client_secret: dev-secret-123 was refused", "dev-secret"),
    ],
)
def test_the_recorded_error_never_carries_a_token(text, hidden):
    shown = crash_text(RuntimeError(text))
    assert shown.startswith("RuntimeError: ") and hidden not in shown


# ---------------------------------------------------------------- not connected vs reconnect


def test_a_member_who_never_connected_is_told_to_connect_not_to_reconnect(carol):
    from orgs.models import Membership

    m = Membership.objects.select_related("user", "organization").get(user=carol)
    result = run_sync(m, "contacts", "manual")
    assert result.status == "stopped"
    assert result.message.startswith("Outlook is not connected: connect your Outlook account")
    assert "/o/acme/connections/" in result.message and "Reconnect" not in result.message
    for extra in ((), ("--dry-run",)):
        with pytest.raises(CommandError) as err:
            call_command("sync", "--user", "carol@acme.test", "--kind", "contacts", *extra)
        message = str(err.value)
        assert "Outlook is not connected" in message and "/o/acme/connections/" in message
        assert "reconnect" not in message.lower() and "no longer works" not in message


def test_an_expired_sign_in_still_says_reconnect(member):
    from connections.models import Connection

    Connection.objects.filter(membership=member.membership, provider="microsoft").update(
        status="needs_reauth"
    )
    result = run_sync(member.membership, "contacts", "manual")
    assert result.status == "stopped"
    assert result.message.startswith("Reconnect needed (Outlook): the sign-in no longer works.")
    assert "/o/acme/connections/" in result.message


def test_a_disconnected_salesforce_is_not_connected(member):
    from connections.models import Connection

    Connection.objects.filter(membership=member.membership, provider="salesforce").update(
        status="revoked"
    )
    result = run_sync(member.membership, "tasks", "manual")
    assert result.message.startswith("Salesforce is not connected"), result.message


def test_a_run_whose_worker_was_killed_is_closed_when_the_next_run_takes_the_lease(member):
    """A SIGKILLed worker leaves its run 'running' and its lease held; once the lease
    expires the next run takes it, and the dead run must not read 'running' forever
    (My sync, the dashboard and the run history would show a sync that never ends)."""
    from datetime import timedelta

    from django.utils import timezone

    from syncengine.engine.run import INTERRUPTED

    m = member.membership
    dead = SyncRun.objects.create(membership=m, kind="contacts", trigger="auto",
                                  status="running", started_at=timezone.now() - timedelta(hours=1))
    SyncLease.objects.update_or_create(
        membership=m, kind="contacts",
        defaults={"holder": "killed-worker", "expires_at": timezone.now() - timedelta(minutes=1)})

    result = run_sync(m, "contacts", "auto")

    assert result.status == "succeeded", result.as_dict()
    dead.refresh_from_db()
    assert dead.status == "failed" and dead.error == INTERRUPTED
    assert dead.finished_at is not None
    assert SyncRun.objects.get(pk=result.run_id).status == "succeeded"


def test_a_live_run_is_never_closed_by_a_refused_start(member):
    """While the lease is held, a second start is refused and the live run stays running."""
    from datetime import timedelta

    from django.utils import timezone

    m = member.membership
    live = SyncRun.objects.create(membership=m, kind="contacts", trigger="auto",
                                  status="running", started_at=timezone.now())
    SyncLease.objects.update_or_create(
        membership=m, kind="contacts",
        defaults={"holder": "busy-worker", "expires_at": timezone.now() + timedelta(minutes=20)})

    assert run_sync(m, "contacts", "manual").status == "skipped"
    live.refresh_from_db()
    assert live.status == "running"


def test_an_item_whose_write_body_cannot_be_built_fails_alone(member, monkeypatch):
    """A MappingError while building one write body (the Salesforce side of a record
    the mapper read but cannot express) used to fail the whole run; now that item is
    an item error, the rest of its batch is written, and it syncs once it can."""
    from sandbox.salesforce.services import sf_records
    from syncengine.engine import apply as apply_mod
    from syncengine.engine.mapping.common import MappingError

    _o_contact(member, "Ada", "Lovelace")
    _o_contact(member, "Grace", "Hopper")
    real = apply_mod.sf_body

    def body(kind, rec, **kw):
        if "Hopper" in str(rec):
            raise MappingError("LastName", "cannot be expressed in Salesforce")
        return real(kind, rec, **kw)

    monkeypatch.setattr(apply_mod, "sf_body", body)
    result = run_sync(member.membership, "contacts", "manual")

    assert result.status == "succeeded", result.as_dict()
    org = member.sf_user.org
    names = sorted(r["LastName"] for r in sf_records(org=org, sobject="Contact"))
    assert names == ["Lovelace"]
    assert SyncLogEntry.objects.filter(run_id=result.run_id, level="error",
                                       message__contains="Cannot be written").exists()

    monkeypatch.setattr(apply_mod, "sf_body", real)
    again = run_sync(member.membership, "contacts", "manual")
    assert again.status == "succeeded", again.as_dict()
    names = sorted(r["LastName"] for r in sf_records(org=org, sobject="Contact"))
    assert names == ["Hopper", "Lovelace"]
