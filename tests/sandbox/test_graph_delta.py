# ruff: noqa: F811  (pytest fixtures imported from graph_helpers)
"""calendarView/delta, contacts delta and To Do delta through requests, paging as a client does."""

import datetime as dt

import pytest

from sandbox.accounting import api_counts, api_counts_reset
from sandbox.microsoft.services import event_create, mailbox_sync_reset

from .graph_helpers import GRAPH, event_body, graph, mailbox, token  # noqa: F401

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])
WINDOW = {"startDateTime": "2030-01-01T00:00:00Z", "endDateTime": "2030-07-01T00:00:00Z"}


def drain(graph, url, params=None, pagesize=50):
    """Follow nextLinks to the deltaLink; return (items, deltaLink, pages)."""
    items, pages = [], 0
    while True:
        answer = graph.get(url, params=params, headers={"Prefer": f"odata.maxpagesize={pagesize}"})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        pages += 1
        assert len(body["value"]) <= pagesize
        items.extend(body["value"])
        if "@odata.deltaLink" in body:
            return items, body["@odata.deltaLink"], pages
        url, params = body["@odata.nextLink"], None


def seed(mailbox, n):
    start = dt.datetime(2030, 1, 2, 8, 0)
    for i in range(n):
        s = start + dt.timedelta(hours=13 * i)
        event_create(mailbox, event_body(subject=f"Meeting {i}", start=s.isoformat(),
                                         end=(s + dt.timedelta(minutes=30)).isoformat(), tz="UTC"))


def test_first_round_pages_through_every_event_then_reports_changes(graph, mailbox):
    seed(mailbox, 260)
    api_counts_reset()
    items, delta_link, pages = drain(graph, f"{GRAPH}/me/calendarView/delta", WINDOW, pagesize=50)
    assert len(items) == 260
    assert len({i["id"] for i in items}) == 260
    assert pages == 6
    assert api_counts(side="outlook", family="graph-calendarview-delta") == 6
    assert "$deltatoken=" in delta_link and "startDateTime" not in delta_link

    changed = items[10]
    graph.patch(f"{GRAPH}/me/events/{changed['id']}", json={"subject": "Changed"})
    graph.delete(f"{GRAPH}/me/events/{items[20]['id']}")
    graph.patch(f"{GRAPH}/me/events/{items[30]['id']}", json={   # moved out of the window
        "start": {"dateTime": "2031-01-01T10:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2031-01-01T11:00:00", "timeZone": "UTC"}})
    graph.post(f"{GRAPH}/me/events", json=event_body(subject="New", tz="UTC",
                                                     start="2030-02-01T10:00:00", end="2030-02-01T11:00:00"))
    second, delta_link2, _ = drain(graph, delta_link)
    by_id = {i["id"]: i for i in second}
    assert by_id[changed["id"]]["subject"] == "Changed"
    assert by_id[items[20]["id"]]["@removed"] == {"reason": "deleted"}
    assert by_id[items[30]["id"]]["@removed"] == {"reason": "deleted"}
    assert [i["subject"] for i in second if "subject" in i and i["id"] not in {changed["id"]}] == ["New"]
    assert len(second) == 4

    quiet, _, _ = drain(graph, delta_link2)
    assert quiet == []


def test_prefer_timezone_applies_to_delta_pages(graph, mailbox):
    seed(mailbox, 1)
    answer = graph.get(f"{GRAPH}/me/calendarView/delta", params=WINDOW,
                       headers={"Prefer": 'outlook.timezone="Tokyo Standard Time", odata.maxpagesize=5'})
    assert 'outlook.timezone="Tokyo Standard Time"' in answer.headers["Preference-Applied"]
    assert answer.json()["value"][0]["start"] == {"dateTime": "2030-01-02T17:00:00.0000000",
                                                  "timeZone": "Tokyo Standard Time"}


def test_window_is_required_and_stale_tokens_are_410(graph, mailbox):
    first = graph.get(f"{GRAPH}/me/calendarView/delta")
    assert first.status_code == 400
    assert first.json()["error"]["code"] == "ErrorInvalidParameter"
    seed(mailbox, 3)
    _, delta_link, _ = drain(graph, f"{GRAPH}/me/calendarView/delta", WINDOW)
    tampered = graph.get(delta_link[:-3] + "abc")
    assert tampered.status_code == 410
    mailbox_sync_reset(mailbox)
    gone = graph.get(delta_link)
    assert gone.status_code == 410
    assert gone.json()["error"]["code"] == "syncStateNotFound"


def test_recurring_series_is_expanded_in_delta(graph, mailbox):
    graph.post(f"{GRAPH}/me/events", json=event_body(
        subject="Daily stand-up", start="2030-06-26T09:00:00", end="2030-06-26T09:15:00", tz="UTC",
        recurrence={"pattern": {"type": "daily", "interval": 1},
                    "range": {"type": "noEnd", "startDate": "2030-06-26"}}))
    items, delta_link, _ = drain(graph, f"{GRAPH}/me/calendarView/delta", WINDOW, pagesize=2)
    assert len(items) == 5  # 26–30 June inside the window
    assert {i["type"] for i in items} == {"occurrence"}
    graph.delete(f"{GRAPH}/me/events/{items[0]['seriesMasterId']}")
    removed, _, _ = drain(graph, delta_link)
    assert {r["id"] for r in removed} == {i["id"] for i in items}
    assert all("@removed" in r for r in removed)


def test_contacts_and_tasks_delta(graph):
    for i in range(7):
        graph.post(f"{GRAPH}/me/contacts", json={"givenName": f"Ada{i}", "surname": "Lovelace",
                                                 "emailAddresses": [{"address": f"ada{i}@example.test"}]})
    contacts, link, pages = drain(graph, f"{GRAPH}/me/contacts/delta", pagesize=3)
    assert len(contacts) == 7 and pages == 3
    graph.delete(f"{GRAPH}/me/contacts/{contacts[0]['id']}")
    again, _, _ = drain(graph, link)
    assert again == [{"@odata.type": "#microsoft.graph.contact", "id": contacts[0]["id"],
                      "@removed": {"reason": "deleted"}}]

    lists = graph.get(f"{GRAPH}/me/todo/lists").json()["value"]
    default = next(x for x in lists if x["wellknownListName"] == "defaultList")
    assert default["displayName"] == "Tasks"
    url = f"{GRAPH}/me/todo/lists/{default['id']}/tasks"
    task = graph.post(url, json={"title": "Send proposal", "linkedResources": [
        {"applicationName": "LinkPoint", "externalId": "00TAB0000012345", "displayName": "Salesforce task"}]})
    assert task.status_code == 201
    assert task.json()["linkedResources"][0]["externalId"] == "00TAB0000012345"
    tasks, link, _ = drain(graph, f"{url}/delta")
    assert [t["title"] for t in tasks] == ["Send proposal"]
    graph.patch(f"{url}/{task.json()['id']}", json={"status": "completed"})
    changed, _, _ = drain(graph, link)
    assert changed[0]["status"] == "completed" and changed[0]["completedDateTime"]
