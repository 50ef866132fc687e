"""Runs that use the concurrency the APIs allow (issue 17).

With emulated latency on, a run's two reads go out at once and its write
batches overlap, while the remote state, the links and the number of
requests stay exactly what a one-request-at-a-time run gives, and a storm of
429s during concurrent writes loses and duplicates nothing.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from unittest import mock

import pytest

from tests.syncengine.conftest import SANDBOX_DBS, Member

pytestmark = pytest.mark.django_db(databases=SANDBOX_DBS)

SEQUENTIAL = {"outlook": 1, "salesforce": 1}
CONCURRENT = {"outlook": 4, "salesforce": 4}


@pytest.fixture
def latency(settings):
    """Every request takes 40 ms (a few ms more per operation inside a batch), and the
    emulators enforce Graph's 4 requests in flight per mailbox."""
    settings.SANDBOX_LATENCY = {side: {"request_ms": 40, "jitter_ms": 0, "op_ms": 0.2}
                                for side in ("outlook", "salesforce")}
    settings.SANDBOX_LIMITS = {"outlook": {"concurrent_per_mailbox": 4, "retry_after_seconds": 1},
                               "namespace": f"conc-{uuid.uuid4().hex[:10]}", "slot_ttl_seconds": 1}


@contextmanager
def transport_log():
    """(side, method, url, start, end, status) of every request the run sends, from any thread."""
    from sandbox.transport import SandboxAdapter

    sent, lock = [], threading.Lock()
    real = SandboxAdapter.send

    def send(adapter, request, *a, **kw):
        start, status = time.monotonic(), None
        try:
            response = real(adapter, request, *a, **kw)
            status = response.status_code
            return response
        finally:
            side = "outlook" if "graph." in request.url else "salesforce"
            with lock:
                sent.append((side, request.method, request.url, start, time.monotonic(), status))

    with mock.patch.object(SandboxAdapter, "send", send):
        yield sent


def _writes(sent) -> list[tuple]:
    return [r for r in sent if (r[1] == "POST" and "$batch" in r[2]) or "composite/sobjects" in r[2]]


def _most_at_once(requests) -> int:
    """The most of these requests that were in flight at the same moment."""
    edges = sorted([(r[3], 1) for r in requests] + [(r[4], -1) for r in requests])
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


def _sync(member, settings, conc):
    from syncengine.engine.run import run_sync

    settings.SYNC_CONCURRENCY = conc
    return run_sync(member.membership, "contacts", "auto")


def _second_member(make_user, client_for, org) -> Member:
    """Another member of the org with a mailbox and a Salesforce org of their own."""
    from orgs.models import Membership
    from sandbox.microsoft.services import mailbox_ensure
    from sandbox.salesforce.services import sf_user_ensure
    from tests.connections.conftest import Journey

    user = make_user("dave@acme.test", full_name="Dave Member")
    Membership.objects.create(organization=org, user=user, role="member")
    mailbox = mailbox_ensure(user.email, "Dave Member")
    sf_user = sf_user_ensure(email=user.email, org_name="Dave's org", time_zone="UTC")
    journey = Journey(client_for(user), org.slug)
    for provider in ("microsoft", "salesforce"):
        assert journey.connect(provider, email=user.email).status_code == 302
    membership = Membership.objects.select_related("user", "organization").get(user=user, organization=org)
    return Member(membership=membership, mailbox=mailbox, sf_user=sf_user)


def _seed(m: Member, *, only_o: int, only_s: int, both: int) -> None:
    from sandbox.microsoft.services import contact_create
    from sandbox.salesforce.services import sf_records_create

    def person(i):
        return f"Given{i}", f"Person{i}", f"p{i}@example.com"

    for i in range(only_o + both):
        given, last, mail = person(i)
        contact_create(m.mailbox, {"givenName": given, "surname": last,
                                   "emailAddresses": [{"address": mail, "name": given}]})
    rows = []
    for i in range(only_o, only_o + both + only_s):
        given, last, mail = person(i)
        rows.append(("Contact", {"FirstName": given, "LastName": last, "Email": mail}))
    assert all(r.success for r in sf_records_create(user=m.sf_user, records=rows))


def _edit(m: Member) -> None:
    """The same edits and deletions in a member's world, on both sides."""
    from sandbox.microsoft.services import item_delete, item_update

    outlook = sorted(m.contacts_o(), key=lambda it: it.data["surname"])
    for it in outlook[:7]:
        item_update(it, {"jobTitle": f"Edited {it.data['surname']}"})
    for it in outlook[-3:]:
        item_delete(it)
    salesforce = sorted(m.sf("Contact"), key=lambda r: r["LastName"])
    for row in salesforce[10:17]:
        m.sf_update("Contact", row["Id"], Department=f"Dept {row['LastName']}")
    m.sf_delete(*[row["Id"] for row in salesforce[20:23]])


def _world(m: Member) -> dict:
    """What a user sees on both sides and what the links say, without the ids."""
    from syncengine.models import SyncLink

    outlook = sorted(
        (it.data.get("givenName"), it.data.get("surname"), it.data.get("jobTitle"), it.data.get("department"),
         tuple(e.get("address") for e in it.data.get("emailAddresses") or ()))
        for it in m.contacts_o()
    )
    salesforce = sorted(
        (r.get("FirstName"), r.get("LastName"), r.get("Title"), r.get("Department"), r.get("Email"),
         bool(r.get("LinkPoint_Key__c")))
        for r in m.sf("Contact")
    )
    links = SyncLink.objects.filter(membership=m.membership, kind="contacts")
    return {"outlook": outlook, "salesforce": salesforce,
            "links": Counter(links.values_list("state", flat=True))}


def test_a_run_reads_outlook_and_salesforce_at_the_same_time(member, settings, latency):
    from sandbox.microsoft.services import contact_create

    contact_create(member.mailbox, {"givenName": "Ada", "surname": "Lovelace"})
    member.sf_create("Contact", FirstName="Grace", LastName="Hopper")
    settings.SYNC_CONCURRENCY = CONCURRENT
    from syncengine.engine.run import run_sync

    with transport_log() as sent:
        assert run_sync(member.membership, "contacts", "auto").status == "succeeded"
    (o_read,) = [r for r in sent if r[0] == "outlook" and "/delta" in r[2]]
    s_read = next(r for r in sent if r[0] == "salesforce" and ("/query/" in r[2] or "/queryAll/" in r[2]))
    assert o_read[3] < s_read[4] and s_read[3] < o_read[4], "the two reads were sent one after the other"


def test_concurrent_writes_leave_the_same_remote_state_links_and_requests_as_sequential(
    member, settings, latency, make_user, client_for, org_a
):
    """Two members, the same data and edits: one synced one request at a time, the other with
    batches in flight at once. Both worlds end the same, each run with the same number of
    requests, and no write ever met Graph's mailbox limit (a 429 would add a retry)."""
    other = _second_member(make_user, client_for, org_a)
    for m in (member, other):
        _seed(m, only_o=230, only_s=230, both=20)
    requests = {}
    most = {}
    for m, conc in ((member, SEQUENTIAL), (other, CONCURRENT)):
        with transport_log() as sent:
            first = _sync(m, settings, conc)
            second = _sync(m, settings, conc)
            _edit(m)
            edited = _sync(m, settings, conc)
            quiet = _sync(m, settings, conc)
        assert [r.status for r in (first, second, edited, quiet)] == ["succeeded"] * 4
        assert first.counts.created == {"outlook": 230, "salesforce": 230}, first.as_dict()
        assert quiet.counts.writes == 0, quiet.as_dict()
        requests[conc["outlook"]] = [r.api_requests for r in (first, second, edited, quiet)]
        most[conc["outlook"]] = _most_at_once(_writes(sent))
    assert _world(member) == _world(other)
    assert requests[1] == requests[4]
    assert most[1] == 1
    assert most[4] >= 2, "no two write batches were ever in flight at once"


def test_a_429_storm_during_concurrent_writes_loses_and_duplicates_nothing(member, settings, latency):
    from sandbox.faults import fault_add, faults_clear

    _seed(member, only_o=150, only_s=150, both=10)
    # Whole batches and collections refused, and some of them over and over (past the
    # client's retries): those items fail this run and go again on the next one.
    fault_add(side="outlook", kind="http_429", path_pattern=r"\$batch", method="POST", count=12,
              probability=0.6, seed=7, retry_after=0)
    fault_add(side="salesforce", kind="http_429", path_pattern=r"composite/sobjects", count=12,
              probability=0.6, seed=3, retry_after=0)
    with mock.patch("connections.http.BACKOFF_BASE", 0.0), transport_log() as sent:
        results = [_sync(member, settings, CONCURRENT) for _ in range(3)]
    faults_clear()
    assert _most_at_once(_writes(sent)) >= 2, "no two write batches were ever in flight at once"
    final = _sync(member, settings, CONCURRENT)
    assert final.status == "succeeded" and final.counts.writes == 0, [r.as_dict() for r in (*results, final)]
    outlook = Counter(it.data["surname"] for it in member.contacts_o())
    salesforce = Counter(r["LastName"] for r in member.sf("Contact"))
    everyone = {f"Person{i}" for i in range(310)}
    assert set(outlook) == set(salesforce) == everyone, "an item was lost"
    assert max(outlook.values()) == max(salesforce.values()) == 1, "an item was written twice"
    world = _world(member)
    assert world["links"] == {"synced": 310}


def test_a_worker_thread_never_opens_a_database_connection_of_its_own(member):
    """Database work of a fan-out runs on the thread that owns it (owner_call); a worker
    that queries by itself would not see the owner's transaction, and is refused."""
    from linkpoint.fanout import Fanout, owner_call
    from syncengine.models import SyncRun

    with Fanout(workers=2) as fan:
        assert fan.result(fan.submit(lambda: owner_call(SyncRun.objects.count))) == 0
        with pytest.raises(RuntimeError, match="own 'default' database connection"):
            fan.result(fan.submit(SyncRun.objects.count))


def test_salesforce_refusing_concurrent_long_requests_is_waited_out_not_a_daily_limit(member, settings):
    """While an org has its limit of long-running requests, Salesforce refuses new ones with
    REQUEST_LIMIT_EXCEEDED "ConcurrentRequests ..." (not the daily "TotalRequests"): the
    client backs off and sends again; the run neither stops as if the day's budget were gone
    nor writes anything twice."""
    settings.SANDBOX_LATENCY = {side: {"request_ms": 250, "jitter_ms": 0, "op_ms": 0}
                                for side in ("outlook", "salesforce")}
    settings.SANDBOX_LIMITS = {"salesforce": {"long_running_seconds": 0.02, "concurrent_long_running": 1},
                               "namespace": f"conc-{uuid.uuid4().hex[:10]}", "slot_ttl_seconds": 1}
    _seed(member, only_o=240, only_s=0, both=0)
    with mock.patch("connections.http.BACKOFF_BASE", 0.05), mock.patch("syncengine.engine.apply.SF_CHUNK", 30), \
            transport_log() as sent:
        result = _sync(member, settings, CONCURRENT)
    refused = [r for r in sent if r[0] == "salesforce" and r[5] == 403]
    assert refused, "the org's limit was never reached: the test does not test the refusal"
    assert result.status == "succeeded", result.as_dict()
    from syncengine.models import SyncLink

    # Never "synced" without the record it names; a chunk still refused after the client's
    # back-off is an item error whose links stay pending, and the next run sends it again.
    assert not SyncLink.objects.filter(state="synced", sf_id=None).exists()
    assert result.counts.created["salesforce"] + result.counts.errors["salesforce"] == 240, result.as_dict()
    if result.counts.errors["salesforce"]:
        with mock.patch("connections.http.BACKOFF_BASE", 0.05):
            again = _sync(member, settings, CONCURRENT)
        assert again.status == "succeeded" and again.counts.created["salesforce"] == result.counts.errors["salesforce"]
    assert Counter(r["LastName"] for r in member.sf("Contact")) == Counter(f"Person{i}" for i in range(240))
