"""The review page of a stored plan: groups, choices kept server-side, paging, refusals."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from syncengine.models import PlannedChange, SyncRun

from .conftest import SANDBOX_DBS
from .plan_factory import plan_make

pytestmark = pytest.mark.django_db(databases=SANDBOX_DBS)
HX = {"HX-Request": "true"}


def _review(run) -> str:
    return f"/o/acme/sync/runs/{run.pk}/review/"


def _preview(member, client) -> SyncRun:
    """A real preview through the page and the task, against the sandbox."""
    from syncengine.tasks import run_queued

    response = client.post("/o/acme/sync/contacts/start/", {"purpose": "preview"})
    assert response.status_code == 302
    run = SyncRun.objects.get(membership=member.membership, kind="contacts", purpose="preview")
    run_queued(run.pk)
    run.refresh_from_db()
    assert run.status == "planned", run.error
    return run


def _contacts(member):
    from sandbox.microsoft.services import contact_create

    for given, surname, email in (("Ada", "Lovelace", "ada@example.com"), ("Grace", "Hopper", "grace@example.com"),
                                  ("Katherine", "Johnson", "kj@example.com")):
        contact_create(member.mailbox, {"givenName": given, "surname": surname,
                                        "emailAddresses": [{"address": email, "name": given}]})
    member.sf_create("Contact", FirstName="Alan", LastName="Turing", Email="alan@example.com")
    member.sf_create("Contact", FirstName="Katherine", LastName="Johnson", Email="kj@example.com")


def test_a_real_preview_is_grouped_with_counts_and_words(member, client_for, carol):
    _contacts(member)
    client = client_for(carol)
    run = _preview(member, client)
    html = client.get(_review(run)).content.decode()
    assert "Review the contacts plan" in html
    assert 'data-group="create_salesforce">2<' in html
    assert 'data-group="create_outlook">1<' in html
    assert 'data-group="link">1<' in html
    assert "Ada Lovelace" in html and "Alan Turing" in html
    assert "Create in Salesforce" in html and "Run selected" in html
    linked = client.get(_review(run) + "?group=link").content.decode()
    assert "Katherine Johnson" in linked and "Matched by" in linked
    page = client.get(f"/o/acme/sync/runs/{run.pk}/").content.decode()
    assert "2 to create in Salesforce, 1 to create in Outlook" in page
    assert "Review the plan" in page


def test_a_preview_reads_as_a_plan_in_the_log_not_an_error(member, client_for, carol):
    """A preview that planned its changes was logged at level error ("Error" in the log viewer),
    and a pair read "Matched by secondary." (the engine's rule name, not words)."""
    from syncengine.models import SyncLogEntry

    _contacts(member)
    client = client_for(carol)
    run = _preview(member, client)
    closing = SyncLogEntry.objects.get(run=run, action="run")
    assert closing.level == "info" and "planned" in closing.message
    assert not SyncLogEntry.objects.filter(run=run, level="error").exists()
    log = client.get("/o/acme/sync/logs/", {"level": "error"}).content.decode()
    assert "change(s) planned" not in log
    pair = PlannedChange.objects.get(run=run, action="link")
    assert pair.reason.startswith("Matched by e-mail address"), pair.reason
    linked = client.get(_review(run) + "?group=link").content.decode()
    assert "Matched by e-mail address" in linked and "Matched by secondary" not in linked


def test_excluding_an_item_is_saved_and_the_counts_follow(member, client_for, carol):
    run = plan_make(member.membership, 16)
    client = client_for(carol)
    change = PlannedChange.objects.get(run=run, seq=1)  # a create in Salesforce
    response = client.post(f"/o/acme/sync/runs/{run.pk}/review/include/",
                           {"change_ids": [change.pk], "included": "0"}, headers=HX)
    assert response.status_code == 200
    body = response.content.decode()
    assert f'id="item-{change.pk}"' in body and "excluded" in body
    assert 'id="review-summary"' in body and 'hx-swap-oob="true"' in body and "1 included" in body
    change.refresh_from_db()
    assert change.included is False
    # A new session (an expired one, logged in again) sees the same selection.
    client.logout()
    html = client_for(carol).get(_review(run)).content.decode()
    assert "1 included" in html
    assert f'id="inc-{change.pk}" aria-label="Include “Ada Person 00000”">' in html  # unticked


def test_select_all_of_a_group_and_back(member, client_for, carol):
    run = plan_make(member.membership, 40)
    client = client_for(carol)
    url = f"/o/acme/sync/runs/{run.pk}/review/include/"
    client.post(url, {"action_group": "create_salesforce", "included": "0", "group": "create_salesforce"},
                headers=HX)
    creates = PlannedChange.objects.filter(run=run, action="create", side="salesforce:create")
    assert creates.count() == 5 and not creates.filter(included=True).exists()
    assert PlannedChange.objects.filter(run=run, included=False).count() == 5  # nothing else touched
    client.post(url, {"action_group": "create_salesforce", "included": "1"})
    assert not PlannedChange.objects.filter(run=run, included=False).exists()


def test_a_tampered_include_list_is_refused(member, client_for, carol, bob):
    from orgs.models import Membership

    run = plan_make(member.membership, 8)
    other = plan_make(Membership.objects.get(user=bob), 8)
    foreign = PlannedChange.objects.filter(run=other).first()
    mine = PlannedChange.objects.filter(run=run).first()
    client = client_for(carol)
    response = client.post(f"/o/acme/sync/runs/{run.pk}/review/include/",
                           {"change_ids": [mine.pk, foreign.pk], "included": "0"}, headers=HX)
    assert response.status_code == 200
    assert "not in this plan" in response.content.decode()
    assert response["HX-Retarget"] == "#review-items"
    assert not PlannedChange.objects.filter(included=False).exists()
    junk = client.post(f"/o/acme/sync/runs/{run.pk}/review/include/", {"change_ids": ["x"], "included": "0"},
                       follow=True)
    assert "not part of this plan" in junk.content.decode()
    junk_hx = client.post(f"/o/acme/sync/runs/{run.pk}/review/include/", {"change_ids": ["1e9"], "included": "0"},
                          headers=HX)
    assert junk_hx.status_code == 200 and "not part of this plan" in junk_hx.content.decode()
    unknown_group = client.post(f"/o/acme/sync/runs/{run.pk}/review/include/",
                                {"action_group": "everything", "included": "0"}, headers=HX)
    assert unknown_group.status_code == 200
    assert not PlannedChange.objects.filter(included=False).exists()


def test_an_out_of_range_item_id_is_refused_not_a_500(member, client_for, carol):
    """A tampered id beyond a 64-bit integer overflowed the database driver (500)."""
    run = plan_make(member.membership, 8)
    client = client_for(carol)
    url = f"/o/acme/sync/runs/{run.pk}/review/include/"
    for value in ("9" * 40, str(2**63), "-" + "9" * 40):
        plain = client.post(url, {"change_ids": [value], "included": "0"}, follow=True)
        assert plain.status_code == 200 and "not in this plan" in plain.content.decode()
        htmx = client.post(url, {"change_ids": [value], "included": "0"}, headers=HX)
        assert htmx.status_code == 200 and "not in this plan" in htmx.content.decode()
    assert not PlannedChange.objects.filter(included=False).exists()


def test_flipping_a_conflict_winner(member, client_for, carol):
    run = plan_make(member.membership, 8)
    conflict = PlannedChange.objects.get(run=run, action="conflict")
    client = client_for(carol)
    html = client.get(_review(run) + "?group=conflict").content.decode()
    assert "Acme" in html and "Globex" in html and "(your policy)" in html
    response = client.post(f"/o/acme/sync/runs/{run.pk}/review/winner/",
                           {"change_id": conflict.pk, "winner": "salesforce"}, headers=HX)
    assert response.status_code == 200
    assert '<option value="salesforce" selected>' in response.content.decode()
    conflict.refresh_from_db()
    assert conflict.winner == "salesforce"
    bad = client.post(f"/o/acme/sync/runs/{run.pk}/review/winner/", {"change_id": conflict.pk, "winner": "both"},
                      headers=HX)
    assert "Choose Outlook or Salesforce" in bad.content.decode()


def test_search_filters_and_keyset_paging(member, client_for, carol):
    run = plan_make(member.membership, 130)
    client = client_for(carol)
    html = client.get(_review(run)).content.decode()
    assert html.count('class="item ') == 50 and "Show more" in html
    found = client.get(_review(run) + "?q=Person 00042").content.decode()
    assert found.count('class="item ') == 1 and "Ada Person 00042" in found
    by_id = client.get(_review(run) + "?q=AAMk000007").content.decode()
    assert by_id.count('class="item ') == 1 and "Ada Person 00007" in by_id
    PlannedChange.objects.filter(run=run, seq__in=[3, 4]).update(included=False)
    left_out = client.get(_review(run) + "?show=excluded").content.decode()
    assert left_out.count('class="item ') == 2
    with CaptureQueriesContext(connection) as queries:
        more = client.get(_review(run) + "?after=50&fragment=rows", headers=HX)
    rows = more.content.decode()
    assert rows.count('class="item ') == 50 and 'data-seq="51"' in rows and 'data-seq="50"' not in rows
    assert "after=100" in rows
    assert not any("OFFSET" in q["sql"].upper() for q in queries.captured_queries)
    last = client.get(_review(run) + "?after=100&fragment=rows", headers=HX).content.decode()
    assert last.count('class="item ') == 30 and "Show more" not in last


def test_the_drawer_shows_both_sides(member, client_for, carol):
    run = plan_make(member.membership, 8)
    update = PlannedChange.objects.get(run=run, action="update")
    client = client_for(carol)
    drawer = client.get(f"/o/acme/sync/runs/{run.pk}/review/items/{update.pk}/", headers=HX).content.decode()
    assert "After this sync" in drawer and "Old Co" in drawer and "Acme" in drawer
    assert 'class="differs"' in drawer
    page = client.get(f"/o/acme/sync/runs/{run.pk}/review/items/{update.pk}/")
    assert page.status_code == 200 and "<html" in page.content.decode()
    other = plan_make(member.membership, 2)
    stray = PlannedChange.objects.filter(run=other).first()
    assert client.get(f"/o/acme/sync/runs/{run.pk}/review/items/{stray.pk}/").status_code == 404


def test_run_selected_once_then_the_plan_says_it_was_run(member, client_for, carol,
                                                         django_capture_on_commit_callbacks):
    run = plan_make(member.membership, 8)
    client = client_for(carol)
    with django_capture_on_commit_callbacks(execute=False):
        first = client.post(f"/o/acme/sync/runs/{run.pk}/review/apply/")
    applied = SyncRun.objects.get(purpose="apply_plan")
    assert first["Location"] == f"/o/acme/sync/runs/{applied.pk}/"
    # A double submit lands on the same run.
    second = client.post(f"/o/acme/sync/runs/{run.pk}/review/apply/")
    assert second["Location"] == f"/o/acme/sync/runs/{applied.pk}/"
    assert SyncRun.objects.filter(purpose="apply_plan").count() == 1
    html = client.get(_review(run)).content.decode()
    assert "This plan is being run now." in html and "Run selected</button>" not in html
    # Once that run is over, the plan cannot be run again.
    SyncRun.objects.filter(pk=applied.pk).update(status="succeeded", finished_at=timezone.now())
    again = client.post(f"/o/acme/sync/runs/{run.pk}/review/apply/", follow=True)
    assert "already applied" in again.content.decode()
    assert SyncRun.objects.filter(purpose="apply_plan").count() == 1


def test_a_created_items_log_entry_names_both_sides(member, client_for, carol):
    """A create's entry held only the source's id: the log could not open the new copy."""
    from syncengine.models import SyncLink, SyncLogEntry
    from syncengine.tasks import run_queued

    _contacts(member)
    client = client_for(carol)
    plan = _preview(member, client)
    client.post(f"/o/acme/sync/runs/{plan.pk}/review/apply/")
    applied = SyncRun.objects.get(membership=member.membership, purpose="apply_plan")
    run_queued(applied.pk)
    creates = SyncLogEntry.objects.filter(run=applied, action="create")
    assert creates.count() == 3
    for entry in creates:
        link = SyncLink.objects.get(link_key=entry.link_key)
        assert (entry.outlook_id, entry.sf_id) == (link.outlook_id, link.sf_id), entry.message
    # Alan was created in Outlook: his entry now links to that new Outlook contact as well.
    from django.utils.html import escape

    from syncengine.selectors import outlook_web_url

    alan = SyncLink.objects.get(link_key=creates.get(detail__title__startswith="Alan").link_key)
    html = client.get("/o/acme/sync/logs/", {"q": "Alan Turing"}).content.decode()
    assert escape(outlook_web_url("contacts", alan.outlook_id)) in html


def test_expired_plan_says_so_and_cannot_run(member, client_for, carol):
    run = plan_make(member.membership, 8, expires_in=-dt.timedelta(minutes=1))
    client = client_for(carol)
    html = client.get(_review(run)).content.decode()
    assert "This plan has expired" in html and "Run selected</button>" not in html
    assert 'type="checkbox"' not in html
    refused = client.post(f"/o/acme/sync/runs/{run.pk}/review/apply/", follow=True)
    assert "has expired" in refused.content.decode()
    assert not SyncRun.objects.filter(purpose="apply_plan").exists()


def test_a_plan_older_than_a_sync_warns(member, client_for, carol):
    run = plan_make(member.membership, 8)
    SyncRun.objects.create(membership=member.membership, kind="contacts", trigger="auto", purpose="sync",
                           status="succeeded", started_at=timezone.now() + dt.timedelta(seconds=1))
    html = client_for(carol).get(_review(run)).content.decode()
    assert "A contacts sync ran after this preview" in html


def test_a_settings_preview_has_no_run_button(member, client_for, carol):
    run = plan_make(member.membership, 8, purpose="settings_preview")
    SyncRun.objects.filter(pk=run.pk).update(policy_overrides={"direction": "outlook_to_salesforce"})
    html = client_for(carol).get(_review(run)).content.decode()
    assert "What this change would do" in html
    assert "If you change <strong>Direction</strong> to <strong>Outlook → Salesforce</strong>" in html
    assert "Run selected" not in html and 'type="checkbox"' not in html


def test_another_members_plan_is_404_everywhere(member, client_for, carol, bob):
    from orgs.models import Membership

    run = plan_make(Membership.objects.get(user=bob), 8)
    change = PlannedChange.objects.filter(run=run).first()
    client = client_for(carol)
    base = f"/o/acme/sync/runs/{run.pk}/"
    assert client.get(base).status_code == 404
    assert client.get(base + "review/").status_code == 404
    assert client.get(base + f"review/items/{change.pk}/").status_code == 404
    assert client.post(base + "review/include/", {"change_ids": [change.pk], "included": "0"}).status_code == 404
    assert client.post(base + "review/winner/", {"change_id": change.pk, "winner": "outlook"}).status_code == 404
    assert client.post(base + "review/apply/").status_code == 404
    assert PlannedChange.objects.filter(run=run, included=True).count() == 8
    assert not SyncRun.objects.filter(purpose="apply_plan").exists()


@pytest.mark.parametrize("params", ["", "?group=update", "?q=Person 0001"])
def test_query_count_is_the_same_for_25_and_500_items(member, client_for, carol, params):
    client = client_for(carol)
    counts = []
    for n in (25, 500):
        run = plan_make(member.membership, n)
        client.get(_review(run) + params)  # warm the session
        with CaptureQueriesContext(connection) as queries:
            assert client.get(_review(run) + params).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1], counts
    assert counts[1] <= 12


def test_a_rebuild_plan_explains_itself_and_runs_as_a_rebuild(member, client_for, carol,
                                                             django_capture_on_commit_callbacks):
    run = plan_make(member.membership, 8, purpose="rebuild_preview")
    client = client_for(carol)
    html = client.get(_review(run)).content.decode()
    assert "Review the contacts rebuild" in html and "forgets which items LinkPoint paired" in html
    with django_capture_on_commit_callbacks(execute=False):
        client.post(f"/o/acme/sync/runs/{run.pk}/review/apply/")
    assert SyncRun.objects.get(applied_plans=run).purpose == "rebuild"


def test_a_sync_run_has_no_review_page(member, client_for, carol):
    run = SyncRun.objects.create(membership=member.membership, kind="contacts", trigger="manual", purpose="sync",
                                 status="succeeded", started_at=timezone.now())
    assert client_for(carol).get(_review(run)).status_code == 404
