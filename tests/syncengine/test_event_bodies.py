"""Event bodies between Outlook's HTML and Salesforce's plain-text Description (issue 15).

Graph answers event bodies in HTML unless asked for text; the engine asks for
text (the canonical Description is text). A Salesforce-side description edit
must never destroy what only Outlook's HTML holds: formatting, and the
online-meeting join block Teams writes into the body.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from sandbox.accounting import api_counts, api_counts_reset
from sandbox.microsoft.models import Item
from syncengine.engine.run import run_sync
from syncengine.models import SyncLogEntry

from .conftest import SANDBOX_DBS

pytestmark = pytest.mark.django_db(databases=SANDBOX_DBS, transaction=True)

TEAMS = "https://teams.microsoft.com/l/meetup-join/19%3ameeting_abc%40thread.v2/0?context=x"
FORMATTED = (
    '<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8"><style>'
    "p{margin:0}</style></head><body><div class=\"elementToProof\" style=\"font-family:Aptos\">"
    "<b>Agenda</b>: pricing &amp; terms</div>"
    '<div>________________</div><div><a href="' + TEAMS + '">Join the meeting now</a></div>'
    "</body></html>"
)


def _start(days: int) -> dt.datetime:
    return (timezone.now() + dt.timedelta(days=days)).replace(hour=9, minute=0, second=0, microsecond=0)


def _o_event(member, subject: str, body: dict, **extra) -> Item:
    from sandbox.microsoft.services import event_create

    start = _start(3)
    item, _ = event_create(member.mailbox, {
        "subject": subject, "body": body,
        "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
        "end": {"dateTime": (start + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
        **extra,
    })
    return item


def _sync(member):
    result = run_sync(member.membership, "calendar", "manual")
    assert result.status == "succeeded", result.message
    return result


def _sf_event(member, subject):
    return next(r for r in member.sf("Event") if r["Subject"] == subject)


def _stored_body(item: Item) -> dict:
    item.refresh_from_db()
    return item.data["body"]


def test_a_formatted_meeting_body_survives_a_description_edit_in_salesforce(member):
    item = _o_event(member, "Pricing call", {"contentType": "html", "content": FORMATTED}, isOnlineMeeting=True)
    _sync(member)
    sf = _sf_event(member, "Pricing call")
    # Salesforce holds Graph's text rendition: no markup, no head.
    assert sf["Description"].replace("\r\n", "\n") == (
        "Agenda: pricing & terms\n________________\nJoin the meeting now")

    member.sf_update("Event", sf["Id"], Description="Agenda: pricing only", Subject="Pricing call (moved)")
    result = _sync(member)
    assert result.counts.as_dict()["updated"]["outlook"] == 1
    body = _stored_body(item)
    assert body == {"contentType": "html", "content": FORMATTED}  # formatting and join link intact
    assert item.data["subject"] == "Pricing call (moved)"  # the rest of the edit arrived
    warning = SyncLogEntry.objects.get(run_id=result.run_id, level="warning")
    assert "not copied to Outlook" in warning.message and "online meeting" in warning.message

    # The kept body is not copied back over the Salesforce edit, and nothing moves again.
    api_counts_reset()
    again = _sync(member)
    assert again.counts.as_dict()["updated"] == {"outlook": 0, "salesforce": 0}
    assert _sf_event(member, "Pricing call (moved)")["Description"] == "Agenda: pricing only"


def test_a_plain_body_takes_the_salesforce_description(member):
    sf_id = member.sf_create(
        "Event", Subject="Site visit", Description="Bring badges",
        StartDateTime=_start(4).strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
        EndDateTime=(_start(4) + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
        DurationInMinutes=60)
    _sync(member)
    [item] = [i for i in member.events_o() if i.data.get("subject") == "Site visit"]
    member.sf_update("Event", sf_id, Description="Bring badges\n\nand helmets")
    result = _sync(member)
    assert not SyncLogEntry.objects.filter(run_id=result.run_id, level="warning").exists()
    from sandbox.microsoft.resources import View, body_out

    text = body_out(_stored_body(item), View(base="", body_type="text"))["content"]
    assert text == "Bring badges\r\n\r\nand helmets"


def test_an_edit_elsewhere_leaves_outlooks_html_alone_and_reads_ask_for_text(member, monkeypatch):
    item = _o_event(member, "Quarterly", {"contentType": "html", "content": FORMATTED})
    _sync(member)
    sent = []
    from sandbox import transport

    real = transport.SandboxAdapter.send

    def spy(self, request, *args, **kwargs):
        sent.append(request)
        return real(self, request, *args, **kwargs)

    monkeypatch.setattr(transport.SandboxAdapter, "send", spy)
    member.sf_update("Event", _sf_event(member, "Quarterly")["Id"], Subject="Quarterly review")
    _sync(member)
    assert _stored_body(item) == {"contentType": "html", "content": FORMATTED}
    reads = [r for r in sent if "graph.sandbox.test" in r.url and "calendarView/delta" in r.url]
    assert reads and all(r.headers.get("Prefer", "").count('outlook.body-content-type="text"') for r in reads)
    assert api_counts(side="outlook") >= 1
