"""Support pages for their three audiences: a member (own logs only), an admin (any
member of the org), platform staff (any org, every view audited); bad filters."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from orgs.models import AuditEntry, Membership
from syncengine.models import SyncLogEntry, SyncRun

pytestmark = pytest.mark.django_db


def _membership(user, org=None):
    qs = Membership.objects.filter(user=user)
    return (qs.filter(organization=org) if org else qs).get()


def seed(membership, *, runs=1, entries=3, kind="contacts", level="info", title="Ada Lovelace",
         message="Created in Salesforce", status="succeeded", start=None):
    """Runs with entries, written the way the engine writes them (bulk_create)."""
    made = []
    start = start or timezone.now() - dt.timedelta(hours=1)
    for i in range(runs):
        run = SyncRun.objects.create(membership=membership, kind=kind, trigger="manual",
                                     status=status, started_at=start + dt.timedelta(seconds=i))
        SyncLogEntry.objects.bulk_create([
            SyncLogEntry(run=run, level=level, action="create", sf_id=f"003{run.pk:06d}{n:06d}",
                         outlook_id=f"AAMk-{run.pk}-{n}", message=message,
                         detail={"title": f"{title} {n}", "rule": "new_item",
                                 "emails": [f"ada{n}@example.com"]})
            for n in range(entries)
        ])
        made.append(run)
    return made


def get(client, name, org, *args, **params):
    return client.get(reverse(f"syncengine:{name}", args=[org.slug, *args]), params)


def test_a_member_sees_only_their_own_entries(client_for, alice, carol, org_a):
    seed(_membership(carol), title="Carol's contact")
    seed(_membership(alice), title="Alice's contact")
    client = client_for(carol)
    page = get(client, "logs", org_a)
    assert page.status_code == 200
    assert b"Carol&#x27;s contact 0" in page.content
    assert b"Alice&#x27;s contact" not in page.content
    # Asking for another member by id changes nothing for a member: the filter is not offered.
    other = get(client, "logs", org_a, member=str(_membership(alice).public_id))
    assert b"Alice&#x27;s contact" not in other.content
    alice_run = SyncRun.objects.get(membership__user=alice)
    assert get(client, "run-log", org_a, alice_run.pk).status_code == 404


def test_an_admin_picks_any_member_of_the_org(client_for, bob, carol, alice, org_a):
    seed(_membership(carol), title="Carol's contact")
    seed(_membership(alice), title="Alice's contact")
    client = client_for(bob)
    both = get(client, "logs", org_a)
    assert b"Carol&#x27;s contact" in both.content and b"Alice&#x27;s contact" in both.content
    only_carol = get(client, "logs", org_a, member=str(_membership(carol).public_id))
    assert b"Carol&#x27;s contact" in only_carol.content
    assert b"Alice&#x27;s contact" not in only_carol.content
    history = get(client, "history", org_a, member=str(_membership(carol).public_id))
    assert [r.membership.user.email for r in history.context["page"].runs] == ["carol@acme.test"]
    run = SyncRun.objects.get(membership__user=alice)
    assert get(client, "run-log", org_a, run.pk).status_code == 200
    assert not AuditEntry.objects.filter(action__startswith="support.").exists()


def test_staff_views_of_a_members_logs_are_audited(client_for, pat, carol, org_a):
    seed(_membership(carol))
    client = client_for(pat)
    carol_id = str(_membership(carol).public_id)
    assert get(client, "logs", org_a, member=carol_id).status_code == 200
    run = SyncRun.objects.get()
    assert get(client, "run-log", org_a, run.pk).status_code == 200
    assert get(client, "history", org_a).status_code == 200
    audit = list(AuditEntry.objects.filter(organization=org_a).order_by("id"))
    assert [(a.action, a.target, a.acting_as_staff, a.actor_email) for a in audit] == [
        ("support.logs", "carol@acme.test", True, "pat@linkpoint.test"),
        ("support.run_log", "carol@acme.test", True, "pat@linkpoint.test"),
        ("support.history", "all members", True, "pat@linkpoint.test"),
    ]
    # The live tail's polls are part of the page already audited.
    client.get(reverse("syncengine:run-log", args=[org_a.slug, run.pk]), {"after": 0},
               headers={"HX-Request": "true"})
    assert AuditEntry.objects.filter(organization=org_a).count() == 3
    export = get(client, "logs-export", org_a, member=carol_id)
    b"".join(export.streaming_content)
    assert get(client, "trace", org_a, item=SyncLogEntry.objects.first().sf_id).status_code == 200
    today = timezone.localdate().isoformat()
    client.post(reverse("syncengine:bundle", args=[org_a.slug]),
                {"member": carol_id, "since": today, "until": today})
    assert list(AuditEntry.objects.filter(organization=org_a).order_by("id")
                .values_list("action", "target", "acting_as_staff"))[3:] == [
        ("support.logs_export", "carol@acme.test", True),
        ("support.trace", "carol@acme.test", True),
        ("support.bundle", "carol@acme.test", True),
    ]


def test_an_outsider_gets_404_for_another_orgs_run(client_for, charlie, carol, org_a, org_b):
    (run,) = seed(_membership(carol))
    client = client_for(charlie)
    # charlie's own org: the run id of org A is simply not there.
    assert get(client, "run-log", org_b, run.pk).status_code == 404
    assert get(client, "logs", org_a).status_code == 404
    page = get(client, "logs", org_b, run=run.pk)
    assert page.status_code == 200 and b"Ada Lovelace" not in page.content


@pytest.mark.parametrize("params, message", [
    ({"since": "2026-13-45"}, b"Enter a valid date"),
    ({"since": "2026-05-02", "until": "2026-05-01"}, b"The start date is after the end date"),
    ({"q": "x" * 5000}, b"at most 200 characters"),
    ({"q": "ab"}, b"at least 3 characters"),
    ({"level": "catastrophic"}, b"Select a valid choice"),
    ({"kind": "email"}, b"Select a valid choice"),
    ({"run": "abc"}, b"Enter a whole number"),
    ({"run": "99999999999999999999999"}, b"less than or equal"),
    ({"member": "not-a-member"}, b"Select a valid choice"),
    ({"cursor": "%%%garbage"}, b"Ada Lovelace"),
])
def test_bad_filters_give_a_message_not_a_500(client_for, bob, carol, org_a, params, message):
    seed(_membership(carol))
    response = get(client_for(bob), "logs", org_a, **params)
    assert response.status_code == 200
    assert message in response.content


def test_bad_export_filters_answer_400_with_the_message(client_for, bob, org_a):
    response = get(client_for(bob), "logs-export", org_a, since="yesterday")
    assert response.status_code == 400 and b"Enter a valid date" in response.content


def test_filters_by_level_kind_date_and_text(client_for, bob, carol, org_a):
    m = _membership(carol)
    seed(m, title="Quarterly review", kind="calendar", level="error", message="Not synced: bad")
    seed(m, title="Grace Hopper", kind="contacts")
    seed(m, title="Old one", start=timezone.now() - dt.timedelta(days=3))
    client = client_for(bob)
    errors = get(client, "logs", org_a, level="error").content
    assert b"Quarterly review" in errors and b"Grace Hopper" not in errors
    contacts = get(client, "logs", org_a, kind="contacts").content
    assert b"Grace Hopper" in contacts and b"Quarterly review" not in contacts
    today = timezone.localdate().isoformat()
    recent = get(client, "logs", org_a, since=today).content
    assert b"Grace Hopper" in recent
    text = get(client, "logs", org_a, q="GRACE").content
    assert b"Grace Hopper" in text and b"Quarterly review" not in text
    by_email = get(client, "logs", org_a, q="ada1@example").content
    assert b"Grace Hopper 1" in by_email and b"Grace Hopper 0" not in by_email


def test_keyset_pages_do_not_repeat_or_skip(client_for, bob, carol, org_a):
    seed(_membership(carol), runs=3, entries=40)
    client = client_for(bob)
    seen, cursor = [], None
    while True:
        params = {"cursor": cursor} if cursor else {}
        page = client.get(reverse("syncengine:logs", args=[org_a.slug]), params)
        rows = page.context["page"].rows
        seen += [r.entry.pk for r in rows]
        cursor = page.context["page"].next_cursor
        if not cursor:
            break
    assert sorted(seen, reverse=True) == seen == list(
        SyncLogEntry.objects.order_by("-created_at", "-id").values_list("pk", flat=True))


def test_each_entry_links_to_outlook_salesforce_and_its_trace(client_for, carol, org_a):
    from connections.models import Connection

    m = _membership(carol)
    Connection.objects.create(membership=m, provider="salesforce",
                              sf_instance_url="https://acme.my.salesforce.com")
    (run,) = seed(m, entries=1)
    entry = SyncLogEntry.objects.get()
    page = get(client_for(carol), "logs", org_a).content.decode()
    assert f"https://acme.my.salesforce.com/lightning/r/Contact/{entry.sf_id}/view" in page
    assert "https://outlook.office.com/owa/?itemid=AAMk-" in page
    assert reverse("syncengine:trace", args=[org_a.slug]) + f"?item={entry.sf_id}" in page


def _queries(client, url, params=None) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url, params or {}).status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("name", ["logs", "history"])
def test_query_count_is_the_same_for_25_and_500_entries(client_for, bob, carol, alice, org_a,
                                                         name):
    client = client_for(bob)
    url = reverse(f"syncengine:{name}", args=[org_a.slug])
    seed(_membership(carol), runs=1, entries=25)
    few = _queries(client, url)
    seed(_membership(carol), runs=19, entries=25)
    seed(_membership(alice), runs=20, entries=1, kind="tasks")
    assert SyncLogEntry.objects.count() == 25 + 19 * 25 + 20
    assert _queries(client, url) == few


def test_query_count_of_a_runs_log_does_not_grow(client_for, bob, carol, org_a):
    client = client_for(bob)
    (small,) = seed(_membership(carol), entries=25)
    (big,) = seed(_membership(carol), entries=500)
    few = _queries(client, reverse("syncengine:run-log", args=[org_a.slug, small.pk]))
    assert _queries(client, reverse("syncengine:run-log", args=[org_a.slug, big.pk])) == few


def test_csv_export_streams_the_filtered_entries(client_for, bob, carol, org_a):
    seed(_membership(carol), entries=3, title="Grace Hopper")
    seed(_membership(carol), entries=2, title="Alan Turing", level="error")
    response = get(client_for(bob), "logs-export", org_a, level="error")
    assert response.status_code == 200 and response.streaming
    body = b"".join(response.streaming_content).decode()
    lines = body.strip().splitlines()
    assert lines[0].startswith("created_at,member,kind,run,level")
    assert len(lines) == 3 and all("Alan Turing" in line for line in lines[1:])


def test_viewer_says_how_far_back_it_goes(client_for, carol, org_a):
    org_a.log_retention_days = 14
    org_a.save()
    page = get(client_for(carol), "logs", org_a).content.decode()
    since = (timezone.now() - dt.timedelta(days=14)).date().isoformat()
    assert f"Kept for 14 days: entries go back to {since}" in page


def test_the_nav_and_the_dashboard_link_the_support_pages(client_for, bob, org_a):
    page = client_for(bob).get(reverse("orgs:home", args=[org_a.slug])).content.decode()
    assert reverse("syncengine:logs", args=[org_a.slug]) in page
    assert reverse("syncengine:history", args=[org_a.slug]) + "?status=failed" in page


@pytest.mark.parametrize("params, message", [
    ({"status": "exploded"}, b"Select a valid choice"),
    ({"trigger": "x" * 3000}, b"Select a valid choice"),
    ({"cursor": "bm90LWEtY3Vyc29y"}, b"carol@acme.test"),
])
def test_bad_history_filters_give_a_message_not_a_500(client_for, bob, carol, org_a, params,
                                                       message):
    seed(_membership(carol))
    response = get(client_for(bob), "history", org_a, **params)
    assert response.status_code == 200 and message in response.content


def _forged_cursor(raw: str) -> str:
    import base64

    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.mark.parametrize("raw", [
    "9999-12-31T23:59:59-05:00|5",  # past year 9999 once in UTC: the driver overflowed (500)
    "0001-01-01T00:00:00+05:00|5",  # before year 1 in UTC
    "2026-12-01T00:00:00+00:00|" + "9" * 30,  # an id beyond any row
])
@pytest.mark.parametrize("page", ["logs", "history"])
def test_a_forged_cursor_at_the_edge_of_time_shows_the_first_page(client_for, bob, carol, org_a,
                                                                  raw, page):
    seed(_membership(carol))
    response = get(client_for(bob), page, org_a, cursor=_forged_cursor(raw))
    assert response.status_code == 200 and b"carol@acme.test" in response.content


def test_a_huge_trace_query_is_refused_with_a_message(client_for, carol, org_a):
    response = get(client_for(carol), "trace", org_a, item="y" * 10_000)
    assert response.status_code == 200 and b"Enter at most 200 characters" in response.content
