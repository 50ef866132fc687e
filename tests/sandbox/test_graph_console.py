"""The demo console: edits go through services, so the change key rotates and delta sees them."""

import pytest
from django.urls import include, path

from linkpoint import urls as project_urls
from sandbox.microsoft.models import Item
from sandbox.microsoft.services import contact_create, event_create, mailbox_ensure

pytestmark = [pytest.mark.django_db(databases=["default", "sandbox"]), pytest.mark.urls(__name__)]
# The product's URLs (base.html links to them) plus the sandbox, mounted as `make run` does.
urlpatterns = [path("sandbox/", include("sandbox.urls")), *project_urls.urlpatterns]
URL = "/sandbox/console/outlook/dana@contoso.test/"


@pytest.fixture
def items():
    mailbox = mailbox_ensure("dana@contoso.test")
    event, _ = event_create(mailbox, {
        "subject": "Kick-off", "start": {"dateTime": "2030-01-01T10:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2030-01-01T11:00:00", "timeZone": "UTC"}})
    contact = contact_create(mailbox, {"givenName": "Zoë", "surname": "Øster"})
    return event, contact


def test_console_lists_edits_and_deletes(client_for, pat, items):
    event, contact = items
    client = client_for(pat)
    page = client.get(URL)
    assert page.status_code == 200
    assert "Kick-off" in page.content.decode() and "Zoë Øster" in page.content.decode()
    assert client.post(URL, {"id": event.graph_id, "action": "edit", "title": "Kick-off (moved)"}).status_code == 302
    changed = Item.objects.get(pk=event.pk)
    assert changed.data["subject"] == "Kick-off (moved)" and changed.change_key != event.change_key
    client.post(URL, {"id": contact.graph_id, "action": "delete"})
    assert Item.objects.get(pk=contact.pk).deleted


def test_console_needs_a_login_and_an_existing_mailbox(client, client_for, pat, items):
    assert client.get(URL).status_code == 302
    assert client_for(pat).get("/sandbox/console/outlook/nobody@contoso.test/").status_code == 404


def test_console_is_off_without_the_sandbox(client_for, pat, items, settings):
    settings.SANDBOX_ENABLED = False
    assert client_for(pat).get(URL).status_code == 404


@pytest.mark.parametrize("persona", ["alice", "carol", "charlie"])
def test_console_is_staff_only_like_the_salesforce_one(client_for, personas, items, persona):
    """Issue 10: any signed-in member could read and edit every sandbox mailbox here."""
    event, _ = items
    client = client_for(personas[persona])
    assert client.get(URL).status_code == 404
    answer = client.post(URL, {"id": event.graph_id, "action": "edit", "title": "Hijacked"})
    assert answer.status_code == 404
    assert client.post(URL, {"id": event.graph_id, "action": "delete"}).status_code == 404
    unchanged = Item.objects.get(pk=event.pk)
    assert unchanged.data["subject"] == "Kick-off" and not unchanged.deleted
