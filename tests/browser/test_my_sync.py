"""My sync in a real browser: preview, review, run the selection, live progress, dry runs.

The django-q2 tasks our pages enqueue are taken from the broker and run by the
test (`work_off_queue`), exactly as a `qcluster` worker would run them; the
remote sides are the sandbox, checked through its own data.
"""

from __future__ import annotations

import re

import pytest

# The sync tests' fixture, registered here under its own name.
from tests.syncengine.conftest import member as _sync_member  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, databases=["default", "sandbox"])]

# Test-only instrumentation (Playwright injects it; the product's pages carry no inline script):
# every progress region htmx swaps in is recorded, with the requests that polled for it.
RECORD_PROGRESS = """
window.__progress = [];
window.__polls = 0;
document.addEventListener('htmx:beforeRequest', function (e) {
  if (/\\/runs\\/\\d+\\/(\\?|$)/.test(e.detail.pathInfo.requestPath)) window.__polls += 1;
});
function record() {
  var el = document.getElementById('run-progress');
  if (!el) return;
  var n = function (c) { var x = el.querySelector(c); return x ? parseInt(x.textContent, 10) : null; };
  window.__progress.push({phase: el.dataset.phase, live: el.dataset.live, read: n('.n-read-outlook'),
                          polling: el.hasAttribute('hx-trigger')});
}
document.addEventListener('DOMContentLoaded', record);
document.addEventListener('htmx:afterSettle', record);
"""


@pytest.fixture
def connected(request):
    """carol, connected to both sandbox services through the real OAuth journeys."""
    return request.getfixturevalue("_sync_member")


def work_off_queue() -> int:
    """What `qcluster` does with our enqueued tasks: take each from the broker, run it, acknowledge it."""
    from django.utils.module_loading import import_string
    from django_q.brokers import get_broker
    from django_q.signing import SignedPackage

    broker, done = get_broker(), 0
    while batch := broker.dequeue():
        for ack_id, payload in batch:
            task = SignedPackage.loads(payload)
            func = import_string(task["func"]) if isinstance(task["func"], str) else task["func"]
            func(*task["args"], **task["kwargs"])
            broker.acknowledge(ack_id)
            done += 1
    return done


def _o_contact(who, given, surname, **extra):
    from sandbox.microsoft.services import contact_create

    return contact_create(who.mailbox, {"givenName": given, "surname": surname, **extra})


def _sf_names(who) -> set[str]:
    return {f"{r.get('FirstName')} {r.get('LastName')}" for r in who.sf("Contact")}


def _o_names(who) -> set[str]:
    return {f"{i.data.get('givenName')} {i.data.get('surname')}" for i in who.contacts_o()}


def _start(page, kind: str, button: str):
    page.goto("/o/acme/sync/")
    page.locator(f"#card-{kind}").get_by_role("button", name=button, exact=True).click()
    page.wait_for_url(re.compile(r"/o/acme/sync/runs/\d+/$"))
    return int(re.search(r"/runs/(\d+)/", page.url).group(1))


def _finish(page):
    """Run what the page enqueued; the polled region shows the end without a reload."""
    assert work_off_queue() >= 1
    page.locator("#run-progress[data-live='0']").wait_for()


def _no_more_polls(page):
    seen = page.evaluate("window.__polls")
    page.wait_for_timeout(2500)
    assert page.evaluate("window.__polls") == seen, "the finished run is still being polled"


def _conflicted_pair(who):
    """Katherine Johnson, synced once, then given a different job title on each side."""
    from sandbox.microsoft.services import item_update
    from syncengine.engine.run import run_sync

    kj = _o_contact(who, "Katherine", "Johnson", jobTitle="Analyst",
                    emailAddresses=[{"address": "kj@example.com", "name": "Katherine"}])
    assert run_sync(who.membership, "contacts", "manual").status == "succeeded"
    (sf_kj,) = [r for r in who.sf("Contact") if r["LastName"] == "Johnson"]
    item_update(kj, {"jobTitle": "Engineer"})
    who.sf_update("Contact", sf_kj["Id"], Title="Mathematician")
    return kj, sf_kj["Id"]


def test_preview_exclude_two_flip_a_conflict_then_run_exactly_that(browser_page, browser_login, connected, carol):
    from sandbox.microsoft.models import Item
    from sandbox.salesforce.services import sf_records

    kj, sf_kj = _conflicted_pair(connected)
    for given, surname in (("Ada", "Lovelace"), ("Grace", "Hopper"), ("Alan", "Kay"), ("Barbara", "Liskov")):
        _o_contact(connected, given, surname)
    connected.sf_create("Contact", FirstName="Alan", LastName="Turing")

    page = browser_login(browser_page, carol)
    refused = []  # the Content-Security-Policy must not block anything these pages need
    page.on("console", lambda msg: refused.append(msg.text) if "Content Security Policy" in msg.text else None)
    page.add_init_script(RECORD_PROGRESS)
    _start(page, "contacts", "Preview")
    assert page.locator("#run-progress[data-live='1']").is_visible()
    _finish(page)
    page.get_by_role("link", name="Review the plan").click()
    page.wait_for_url(re.compile(r"/review/$"))
    summary = page.locator("#review-summary")
    assert "Create in Salesforce 4" in summary.inner_text() and "Conflicts 1" in summary.inner_text()

    page.evaluate("window.__noReload = true")
    for name in ("Grace Hopper", "Alan Kay"):
        row = page.locator("tr.item", has_text=name)
        row.locator("input[type=checkbox]").click()
        page.locator("tr.item.excluded", has_text=name).wait_for()
    assert "2 included" in page.locator("#review-summary a.group-create_salesforce").inner_text()
    conflict = page.locator("tr.item.group-conflict", has_text="Katherine Johnson")
    assert "(your policy)" in conflict.locator("option[value=salesforce]").inner_text()
    conflict.locator("select[name=winner]").select_option("outlook")
    page.locator("tr.item.group-conflict td.wins", has_text="Engineer").wait_for()
    assert page.evaluate("window.__noReload") is True  # every choice saved without a reload

    page.reload()  # the choices live on the server
    assert not page.locator("tr.item", has_text="Grace Hopper").locator("input[type=checkbox]").is_checked()
    assert page.locator("tr.item.group-conflict select[name=winner]").input_value() == "outlook"

    page.get_by_role("button", name="Run selected").click()
    page.wait_for_url(re.compile(r"/o/acme/sync/runs/\d+/$"))
    _finish(page)
    assert "created in Salesforce" in page.locator("#run-progress .result").inner_text()
    _no_more_polls(page)

    assert _sf_names(connected) == {"Katherine Johnson", "Ada Lovelace", "Barbara Liskov", "Alan Turing"}
    assert "Alan Turing" in _o_names(connected)
    kj = Item.objects.get(pk=kj.pk)
    (sf_row,) = [r for r in sf_records(org=connected.sf_user.org, sobject="Contact") if r["Id"] == sf_kj]
    assert kj.data["jobTitle"] == "Engineer" and sf_row["Title"] == "Engineer"  # the winner chosen on the page
    assert not refused, refused


def test_the_progress_bar_advances_then_stops_polling(browser_page, browser_login, connected, carol, monkeypatch):
    import time

    from sandbox.microsoft.services import contact_create
    from sandbox.transport import SandboxAdapter

    # A remote that takes its time (1.5 s a request), so the page polls while the run reads.
    answer = SandboxAdapter._dispatch
    monkeypatch.setattr(SandboxAdapter, "_dispatch",
                        staticmethod(lambda *a, **kw: (time.sleep(1.5), answer(*a, **kw))[1]))
    for i in range(1200):
        contact_create(connected.mailbox, {"givenName": "Person", "surname": f"{i:04d}"})
    page = browser_login(browser_page, carol)
    page.add_init_script(RECORD_PROGRESS)
    _start(page, "contacts", "Preview")
    page.reload()  # the live region survives a reload
    page.locator("#run-progress[data-live='1'][hx-trigger]").wait_for()
    _finish(page)
    _no_more_polls(page)
    seen = page.evaluate("window.__progress")
    reads = [s["read"] for s in seen]
    assert reads == sorted(reads) and reads[-1] == 1200, seen
    assert seen[-1] == {"phase": "done", "live": "0", "read": 1200, "polling": False}
    assert any(s["live"] == "1" and 0 < s["read"] < 1200 for s in seen), seen  # seen part way
    assert page.locator("progress.bar").get_attribute("value") == page.locator("progress.bar").get_attribute("max")

    # The long plan pages by keyset and searches in place.
    from playwright.sync_api import expect

    page.get_by_role("link", name="Review the plan").click()
    assert page.locator("tr.item").count() == 50
    page.get_by_role("link", name="Show more").click()
    page.locator("tr.item").nth(99).wait_for()
    assert page.locator("tr.item").count() == 100
    seqs = [int(x) for x in page.locator("tr.item").evaluate_all("rows => rows.map(r => r.dataset.seq)")]
    assert seqs == sorted(set(seqs))  # the next page follows on, nothing twice
    page.fill("#review-q", "Person 1042")
    expect(page.locator("tr.item")).to_have_count(1)
    assert "Person 1042" in page.locator("tr.item").inner_text()
    assert "q=Person" in page.url  # the search is in the address: a reload keeps it


def test_an_item_changed_after_the_preview_is_left_for_the_next_one(browser_page, browser_login, connected, carol):
    from sandbox.microsoft.services import item_update

    ada = _o_contact(connected, "Ada", "Lovelace")
    _o_contact(connected, "Grace", "Hopper")
    page = browser_login(browser_page, carol)
    _start(page, "contacts", "Preview")
    _finish(page)
    page.get_by_role("link", name="Review the plan").click()
    item_update(ada, {"surname": "King"})  # edited in Outlook while the connected reviews

    page.get_by_role("button", name="Run selected").click()
    page.wait_for_url(re.compile(r"/o/acme/sync/runs/\d+/$"))
    _finish(page)
    note = page.locator(".stale-note")
    assert "1 item was changed since the preview" in note.inner_text()
    assert _sf_names(connected) == {"Grace Hopper"}  # not the stale Ada
    note.get_by_role("link", name="See which").click()
    assert "This plan was already run" in page.locator(".plan-state").inner_text()
    assert "Changed since preview" in page.locator("tr.item", has_text="Ada Lovelace").inner_text()
    assert page.locator("tr.item").count() == 1  # only what changed since the preview
    assert page.get_by_role("button", name="Run selected").count() == 0


def test_turning_auto_on_first_offers_a_preview(browser_page, browser_login, connected, carol):
    page = browser_login(browser_page, carol)
    page.goto("/o/acme/policy/me/contacts/")
    page.select_option("#input-mode", "auto")
    advice = page.locator("text=You have not synced contacts yet")
    advice.wait_for()
    assert page.get_by_role("button", name="Turn on anyway").is_visible()
    page.get_by_role("link", name="Preview first").click()
    page.wait_for_url("**/o/acme/sync/**")
    card = page.locator("#card-contacts")
    assert card.get_by_role("button", name="Preview", exact=True).is_visible()


def test_a_settings_dry_run_writes_nothing_on_either_side(browser_page, browser_login, connected, carol):
    from sandbox.accounting import api_counts_by_family, api_counts_reset
    from sandbox.microsoft.models import Item
    from sandbox.salesforce.models import SfRecord

    _o_contact(connected, "Ada", "Lovelace")
    connected.sf_create("Contact", FirstName="Alan", LastName="Turing")

    def remote_state():
        return (sorted(Item.objects.values_list("pk", "change_key", "deleted")),
                sorted(SfRecord.objects.values_list("pk", "system_modstamp", "is_deleted")))

    page = browser_login(browser_page, carol)
    page.goto("/o/acme/policy/me/contacts/")
    before = remote_state()
    api_counts_reset()
    row = page.locator("#field-direction")
    row.locator("select").select_option("outlook_to_salesforce")
    row.get_by_role("button", name="Preview this change").click()
    page.wait_for_url(re.compile(r"/o/acme/sync/runs/\d+/review/$"))
    assert "What this change would do" in page.locator("h1").inner_text()
    assert work_off_queue() == 1
    page.locator("#review-summary").wait_for()  # the page reloads itself once the plan is ready
    assert "Ada Lovelace" in page.locator("#rows").inner_text()
    assert "Alan Turing" not in page.locator("#rows").inner_text()  # one way: nothing comes to Outlook
    assert page.get_by_role("button", name="Run selected").count() == 0
    assert remote_state() == before
    writes = {f for (_s, f) in api_counts_by_family()} & {"sf-collections", "sf-composite", "graph-batch"}
    assert not writes, writes
    page.goto("/o/acme/policy/me/contacts/")
    assert page.locator("#field-direction select").input_value() == "both"  # nothing was saved
