"""My calendar (SnapRecord): the week, Record / Unrecord, the Relate panel and SnapFields."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from syncengine.models import SnapField, SnapRelation, SyncLink

from .conftest import SANDBOX_DBS

pytestmark = [pytest.mark.django_db(databases=SANDBOX_DBS), pytest.mark.usefixtures("fresh_cache")]

URL = "/o/acme/sync/calendar/"


def _monday() -> dt.datetime:
    today = timezone.now().date()
    monday = today - dt.timedelta(days=today.weekday())
    return dt.datetime.combine(monday, dt.time(), dt.UTC)


def _o_event(member, subject, start, *, attendees=(), **extra):
    from sandbox.microsoft.services import event_create

    end = start + dt.timedelta(hours=1)
    item, _ = event_create(member.mailbox, {
        "subject": subject,
        "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
        "end": {"dateTime": end.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
        "attendees": [{"type": "required", "emailAddress": {"address": a, "name": a}} for a in attendees],
        **extra,
    })
    return item


def _counts():
    from sandbox.accounting import api_counts_by_family

    return {f"{s}:{f}": n for (s, f), n in api_counts_by_family().items()}


def _reset():
    from sandbox.accounting import api_counts_reset

    api_counts_reset()


def _record(client, item):
    return client.post(URL + "record/", {"event": item.graph_id, "week": _monday().date().isoformat()},
                       headers={"HX-Request": "true"})


@pytest.fixture
def week(member):
    t = _monday() + dt.timedelta(days=2, hours=9)
    return {
        "demo": _o_event(member, "Demo with Initech", t, attendees=["ada@initech.test"]),
        "lunch": _o_event(member, "Lunch", t + dt.timedelta(hours=3)),
        "private": _o_event(member, "Doctor", t + dt.timedelta(days=1), sensitivity="private"),
    }


def test_the_week_lists_events_by_day_with_their_state(member, week, client_for, carol):
    html = client_for(carol).get(URL).content.decode()
    assert "Demo with Initech" in html and "Lunch" in html and "Doctor" in html
    assert html.count(">Record</button>") == 2  # the private one is skipped by policy
    assert "Private event: your organization&#x27;s policy keeps private events out" in html
    assert "Record copies one meeting to your Salesforce calendar" in html
    assert "Last follow-up of Outlook edits: not yet" in html


def test_record_is_one_click_idempotent_and_shows_the_salesforce_link(member, week, client_for, carol):
    client = client_for(carol)
    first = _record(client, week["demo"])
    assert first.status_code == 200
    body = first.content.decode()
    assert "Recorded" in body and "Open in Salesforce" in body and "/lightning/r/Event/00U" in body
    (row,) = member.sf("Event")
    assert row["Subject"] == "Demo with Initech"
    again = _record(client, week["demo"])
    assert "Already recorded in Salesforce." in again.content.decode()
    assert len(member.sf("Event")) == 1 and SyncLink.objects.count() == 1


def test_a_page_view_is_one_calendar_view_page_and_one_soql_in_constant_queries(member, week, client_for,
                                                                                 carol):
    client = client_for(carol)
    _record(client, week["demo"])
    client.get(URL)  # sessions, leases and policy rows warm
    from django.core.cache import cache

    cache.clear()
    _reset()
    with CaptureQueriesContext(connection) as one:
        assert client.get(URL).status_code == 200
    counts = _counts()
    assert sum(n for k, n in counts.items() if "calendarview" in k.lower()) == 1, counts
    assert sum(n for k, n in counts.items() if k.startswith("salesforce")) == 1, counts
    assert sum(counts.values()) == 2, counts
    # Twenty more events and another recorded one: the same queries and requests.
    for i in range(20):
        _o_event(member, f"Call {i}", _monday() + dt.timedelta(days=3, hours=i % 10, minutes=i))
    _record(client, week["lunch"])
    cache.clear()
    _reset()
    with CaptureQueriesContext(connection) as many:
        assert "Call 19" in client.get(URL).content.decode()
    assert len(many) == len(one), [q["sql"] for q in many.captured_queries]
    assert sum(_counts().values()) == 2
    _reset()
    client.get(URL + "?q=call")  # cached: the search needs no Graph request
    assert sum(n for k, n in _counts().items() if not k.startswith("salesforce")) == 0


def test_week_navigation_and_search(member, week, client_for, carol):
    client = client_for(carol)
    later = _o_event(member, "Board meeting", _monday() + dt.timedelta(days=8, hours=10))
    assert "Board meeting" not in client.get(URL).content.decode()
    nxt = (_monday() + dt.timedelta(days=7)).date().isoformat()
    html = client.get(URL, {"week": nxt}).content.decode()
    assert later.data["subject"] in html and "Demo with Initech" not in html
    found = client.get(URL, {"q": "initech", "region": "agenda"}, headers={"HX-Request": "true"}).content.decode()
    assert "Demo with Initech" in found and "Lunch" not in found and "<html" not in found
    assert "No event this week matches" in client.get(URL, {"q": "zzz"}).content.decode()
    assert client.get(URL, {"week": "not-a-date"}).status_code == 200
    assert client.get(URL, {"week": "0001-01-01"}).status_code == 200


def test_unrecord_asks_and_can_delete_the_salesforce_event(member, week, client_for, carol):
    client = client_for(carol)
    _record(client, week["demo"])
    link = SyncLink.objects.get()
    ask = client.get(f"{URL}events/{link.pk}/unrecord/", headers={"HX-Request": "true"}).content.decode()
    assert "Keep it in Salesforce" in ask and "Delete it in Salesforce too" in ask
    refused = client.post(f"{URL}events/{link.pk}/unrecord/", {"week": _monday().date().isoformat()})
    assert "Choose whether to keep or delete" in refused.content.decode()
    assert SyncLink.objects.exists()
    done = client.post(f"{URL}events/{link.pk}/unrecord/", {"salesforce": "delete",
                                                              "week": _monday().date().isoformat()})
    assert "the Salesforce Event was deleted" in done.content.decode()
    assert not SyncLink.objects.exists() and member.sf("Event") == []
    assert client.post(f"{URL}events/{link.pk}/unrecord/", {"salesforce": "keep"}).status_code == 404


def test_unrecord_keeps_the_salesforce_event_when_asked(member, week, client_for, carol):
    client = client_for(carol)
    _record(client, week["demo"])
    link = SyncLink.objects.get()
    done = client.post(f"{URL}events/{link.pk}/unrecord/", {"salesforce": "keep"})
    assert "stays in Salesforce" in done.content.decode()
    assert len(member.sf("Event")) == 1 and not SyncLink.objects.exists()


def _crm(member):
    acc = member.sf_create("Account", Name="Initech")
    return {
        "acc": acc,
        "ada": member.sf_create("Contact", FirstName="Ada", LastName="Lovelace", Email="ada@initech.test"),
        "bob": member.sf_create("Contact", FirstName="Bob", LastName="O'Brien", Email="bob@initech.test"),
        "lead": member.sf_create("Lead", LastName="Lane", Company="Lane & Co", Email="lane@lane.test"),
        "opp": member.sf_create("Opportunity", Name="Initech expansion", AccountId=acc, StageName="Prospecting",
                                CloseDate="2031-01-01"),
    }


def test_relate_panel_suggests_attendees_searches_and_saves(member, week, client_for, carol):
    crm = _crm(member)
    client = client_for(carol)
    _record(client, week["demo"])
    link = SyncLink.objects.get()
    panel = client.get(f"{URL}events/{link.pk}/relate/").content.decode()
    assert f'data-id="{crm["ada"]}"' in panel and "Ada Lovelace" in panel  # from the attendee e-mail
    hits = client.get(f"{URL}events/{link.pk}/relate/search/", {"q": "o'bri", "role": "who"}).content.decode()
    assert "Bob O&#x27;Brien" in hits
    what = client.get(f"{URL}events/{link.pk}/relate/search/", {"q": "initech exp", "role": "what"}).content.decode()
    assert f'data-id="{crm["opp"]}"' in what and "Lovelace" not in what
    saved = client.post(f"{URL}events/{link.pk}/relate/save/", {"who": crm["bob"], "what": crm["opp"],
                                                                "other": [crm["lead"]]})
    assert "Saved in Salesforce." in saved.content.decode()
    (ev,) = member.sf("Event")
    assert (ev["WhoId"], ev["WhatId"]) == (crm["bob"], crm["opp"])
    from sandbox.salesforce.services import sf_records

    rels = [r for r in sf_records(org=member.sf_user.org, sobject="EventRelation") if r["EventId"] == ev["Id"]]
    assert [(r["RelationId"], r["IsParent"]) for r in rels] == [(crm["lead"], True)]
    rel = SnapRelation.objects.get()
    assert (rel.who_label, rel.what_label) == ("Bob O'Brien", "Initech expansion")
    assert SyncLink.objects.get().relation_by_member
    assert "Related: Bob O&#x27;Brien · Initech expansion, Lane" in client.get(URL).content.decode()


def test_the_engine_never_overwrites_a_relation_the_member_set(member, week, client_for, carol):
    from sandbox.microsoft.services import event_update
    from syncengine.engine.run import run_sync

    crm = _crm(member)
    client = client_for(carol)
    _record(client, week["demo"])
    link = SyncLink.objects.get()
    (ev,) = member.sf("Event")
    assert ev["WhoId"] == crm["ada"]  # the engine's attendee match on create
    client.post(f"{URL}events/{link.pk}/relate/save/", {"who": "", "what": crm["opp"]})
    assert member.sf("Event")[0]["WhoId"] is None
    event_update(week["demo"], {"subject": "Demo with Initech (moved)"})
    assert run_sync(member.membership, "calendar", "snaprecord").status == "succeeded"
    (ev,) = member.sf("Event")
    assert ev["Subject"] == "Demo with Initech (moved)" and ev["WhoId"] is None and ev["WhatId"] == crm["opp"]


@pytest.mark.parametrize(("post", "message"), [
    ({"who": "001000000000001AAA"}, "Name must be a Contact or Lead"),
    ({"what": "003000000000001AAA"}, "Related To must be a Account or Opportunity or Case"),
    ({"who": "not an id"}, "Name must be a Contact or Lead"),
    ({"who": "003XX0000000001AAA"}, "not in your Salesforce org"),
])
def test_bad_relations_are_refused_and_write_nothing(member, week, client_for, carol, post, message):
    client = client_for(carol)
    _record(client, week["lunch"])
    link = SyncLink.objects.get()
    before = member.sf("Event")[0]
    answer = client.post(f"{URL}events/{link.pk}/relate/save/", post)
    assert message in answer.content.decode()
    assert member.sf("Event")[0] == before and not SnapRelation.objects.exists()


def test_relating_a_deleted_record_or_one_of_another_org_is_refused(member, week, client_for, carol):
    from sandbox.salesforce.services import sf_record_create, sf_user_ensure

    client = client_for(carol)
    _record(client, week["lunch"])
    link = SyncLink.objects.get()
    gone = member.sf_create("Contact", LastName="Gone")
    member.sf_delete(gone)
    stranger = sf_user_ensure(email="sam@globex-corp.test")
    theirs = sf_record_create(user=stranger, sobject="Contact", fields={"LastName": "Theirs"})["Id"]
    for rid in (gone, theirs):
        answer = client.post(f"{URL}events/{link.pk}/relate/save/", {"who": rid}).content.decode()
        assert "not in your Salesforce org (deleted, or from another org)" in answer
    assert member.sf("Event")[0]["WhoId"] is None


def test_a_sosl_reserved_character_search_is_escaped(member, week, client_for, carol):
    _crm(member)
    client = client_for(carol)
    _record(client, week["lunch"])
    link = SyncLink.objects.get()
    for q in ('Lane & Co', '(x) "y" {z} \\ ~*?', "a", "O'Brien-"):
        answer = client.get(f"{URL}events/{link.pk}/relate/search/", {"q": q, "role": "who"})
        assert answer.status_code == 200
    assert "Type at least two letters." in client.get(f"{URL}events/{link.pk}/relate/search/",
                                                      {"q": "a"}).content.decode()
    assert "Lane" in client.get(f"{URL}events/{link.pk}/relate/search/", {"q": "Lane & Co"}).content.decode()


def _meeting_type(member, *, required=True):
    from sandbox.salesforce.services import sf_custom_field_ensure

    sf_custom_field_ensure(org=member.sf_user.org, sobject="Event", name="Meeting_Type__c", label="Meeting type",
                           type="picklist", picklist=["Discovery", "Demo", "Negotiation"])
    return SnapField.objects.create(organization=member.membership.organization, name="Meeting_Type__c",
                                    label="Meeting type", type="picklist", picklist=["Discovery", "Demo",
                                                                                     "Negotiation"],
                                    required=required)


def test_snapfields_are_validated_against_the_describe_before_the_write(member, week, client_for, carol):
    _meeting_type(member)
    client = client_for(carol)
    _record(client, week["lunch"])
    link = SyncLink.objects.get()
    page = client.get(URL).content.decode()
    assert "Still to fill: Meeting type" in page
    panel = client.get(f"{URL}events/{link.pk}/relate/").content.decode()
    assert 'name="field_Meeting_Type__c"' in panel and "required" in panel
    missing = client.post(f"{URL}events/{link.pk}/relate/save/", {}).content.decode()
    assert "Meeting type is required." in missing
    bad = client.post(f"{URL}events/{link.pk}/relate/save/", {"field_Meeting_Type__c": "Party"}).content.decode()
    assert "“Party” is not a value of Meeting type in Salesforce." in bad
    assert member.sf("Event")[0].get("Meeting_Type__c") is None
    ok = client.post(f"{URL}events/{link.pk}/relate/save/", {"field_Meeting_Type__c": "Demo"}).content.decode()
    assert "Saved in Salesforce." in ok
    assert member.sf("Event")[0]["Meeting_Type__c"] == "Demo"
    assert "Still to fill" not in client.get(URL).content.decode()


def test_another_members_event_ids_are_404(member, week, client_for, carol, bob):
    client = client_for(carol)
    _record(client, week["lunch"])
    link = SyncLink.objects.get()
    other = client_for(bob)
    for path in (f"events/{link.pk}/relate/", f"events/{link.pk}/relate/search/?q=ab",
                 f"events/{link.pk}/unrecord/"):
        assert other.get(URL + path).status_code == 404
    assert other.post(f"{URL}events/{link.pk}/relate/save/", {"who": ""}).status_code == 404
    assert other.post(f"{URL}events/{link.pk}/unrecord/", {"salesforce": "delete"}).status_code == 404
    assert SyncLink.objects.filter(pk=link.pk).exists() and len(member.sf("Event")) == 1


def test_not_connected_and_staff_see_what_to_do(client_for, carol, pat):
    html = client_for(carol).get(URL).content.decode()
    assert "To see your calendar, connect Outlook" in html
    staff = client_for(pat).get(URL).content.decode()
    assert "My calendar belongs to members" in staff


def test_my_sync_links_to_the_calendar_page(member, client_for, carol):
    html = client_for(carol).get("/o/acme/sync/").content.decode()
    assert 'href="/o/acme/sync/calendar/"' in html and "coming soon" not in html


def test_auto_mode_says_what_happens_to_recorded_events(member, week, client_for, carol):
    from policy.models import UserPolicy

    UserPolicy.objects.create(membership=member.membership, kind="calendar", mode="auto")
    html = client_for(carol).get(URL).content.decode()
    assert "Auto sync is on, so SnapRecord is off" in html and "now follow Auto sync" in html
    assert ">Record</button>" not in html


def test_a_locked_snapfield_default_is_written_on_record_whatever_is_posted(member, week, client_for, carol):
    row = _meeting_type(member)
    row.default, row.locked = "Negotiation", True
    row.save()
    client = client_for(carol)
    _record(client, week["lunch"])
    assert member.sf("Event")[0]["Meeting_Type__c"] == "Negotiation"
    link = SyncLink.objects.get()
    client.post(f"{URL}events/{link.pk}/relate/save/", {"field_Meeting_Type__c": "Demo"})
    assert member.sf("Event")[0]["Meeting_Type__c"] == "Negotiation"


def test_further_people_need_shared_activities(member, week, client_for, carol):
    crm = _crm(member)
    org = member.sf_user.org
    org.shared_activities = False
    org.save(update_fields=["shared_activities"])
    client = client_for(carol)
    _record(client, week["lunch"])
    link = SyncLink.objects.get()
    answer = client.post(f"{URL}events/{link.pk}/relate/save/", {"who": crm["bob"], "other": [crm["lead"]]})
    assert "Shared Activities is off" in answer.content.decode()
    assert member.sf("Event")[0]["WhoId"] is None and not SnapRelation.objects.exists()


def test_record_is_refused_outside_snaprecord_mode(member, week, client_for, carol):
    from policy.models import UserPolicy

    UserPolicy.objects.create(membership=member.membership, kind="calendar", mode="auto")
    answer = _record(client_for(carol), week["lunch"]).content.decode()
    assert "Recording single events is SnapRecord&#x27;s: your calendar sync is Auto." in answer
    assert member.sf("Event") == [] and not SyncLink.objects.exists()


def test_recording_a_private_event_the_policy_excludes_is_refused(member, week, client_for, carol):
    answer = _record(client_for(carol), week["private"])
    assert "policy keeps private events out of Salesforce" in answer.content.decode()
    assert member.sf("Event") == [] and not SyncLink.objects.exists()
    assert client_for(carol).post(URL + "record/", {"event": "AAMkNoSuchEvent"}).status_code == 404
