"""The consent pages offer the member's own account, never a colleague's.

Issue 10: on the emulated Microsoft consent page a member's first Accept (after the
page came back with "Pick a mailbox") had another member's mailbox preselected, and
the Salesforce page prefilled the first sandbox user when it got no usable hint. The
product sends `login_hint` (the account last connected, else the member's e-mail);
the pages prefill exactly that.
"""

from __future__ import annotations

import urllib.parse as up
from html.parser import HTMLParser

import pytest

from connections.models import Connection

from .conftest import DBS, _query

pytestmark = pytest.mark.django_db(databases=DBS)


class _Form(HTMLParser):
    """What a browser submits for the page's form when the person changes nothing."""

    def __init__(self):
        super().__init__()
        self.fields: dict[str, str] = {}
        self.radios: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag != "input" or not a.get("name"):
            return
        if a.get("type") == "radio":
            self.radios.append(a.get("value") or "")
            if "checked" in a:
                self.fields[a["name"]] = a.get("value") or ""
        elif a.get("type") in ("hidden", "email", "text", None):
            self.fields.setdefault(a["name"], a.get("value") or "")


def _form(html: bytes) -> _Form:
    form = _Form()
    form.feed(html.decode())
    return form


@pytest.fixture
def bob_connected(connected, bob):
    return connected(bob)


def test_the_product_sends_the_members_email_then_the_account_last_connected(journey, carol, mailbox, sf_user):
    j = journey(carol)
    assert _query(j.start("microsoft"))["login_hint"] == "carol@acme.test"
    assert _query(j.start("salesforce"))["login_hint"] == "carol@acme.test"
    mailbox("carol.field@contoso.test")
    response = j.back(j.consent_microsoft(j.start("microsoft"), email="carol.field@contoso.test"))
    assert response.status_code == 302
    assert Connection.objects.get(membership__user=carol, provider="microsoft").account_name == \
        "carol.field@contoso.test"
    # A reconnect offers the mailbox she connected, not her LinkPoint e-mail.
    assert _query(j.start("microsoft"))["login_hint"] == "carol.field@contoso.test"


def test_microsoft_page_preselects_the_hint_and_no_one_else(journey, bob_connected, carol):
    j = journey(carol)
    url = j.start("microsoft")
    page = j.client.get(url)
    form = _form(page.content)
    # bob's mailbox is listed (it is the sandbox), but only carol's own address is chosen.
    assert "bob@acme.test" in form.radios
    assert form.fields["mailbox"] == "carol@acme.test"
    # Accept with nothing changed connects carol's own (new) sandbox mailbox.
    answer = j.client.post(url, {**form.fields, "decision": "accept"})
    assert answer.status_code == 302
    j.back(answer["Location"])
    assert Connection.objects.get(membership__user=carol, provider="microsoft").account_name == "carol@acme.test"


def test_microsoft_page_after_a_failed_accept_still_preselects_no_one_else(journey, bob_connected, carol):
    j = journey(carol)
    url = j.start("microsoft")
    again = j.client.post(url, {"decision": "accept"})  # nothing picked
    assert again.status_code == 400 and b"Pick a mailbox" in again.content
    assert _form(again.content).fields.get("mailbox") == "carol@acme.test"
    # Without any hint nothing is preselected at all (the first mailbox is someone's).
    bare = {k: v for k, v in _query(url).items() if k != "login_hint"}
    path = up.urlsplit(url).path
    assert "mailbox" not in _form(j.client.get(path + "?" + up.urlencode(bare)).content).fields
    retry = j.client.post(path + "?" + up.urlencode(bare), {"decision": "accept"})
    assert retry.status_code == 400 and "mailbox" not in _form(retry.content).fields


def test_salesforce_page_prefills_the_hint_and_no_one_else(journey, bob_connected, carol):
    j = journey(carol)
    url = j.start("salesforce")
    form = _form(j.client.get(url).content)
    assert form.fields["username"] == "carol@acme.test"
    path = "/sandbox/salesforce/services/oauth2/authorize"
    answer = j.client.post(path, {**form.fields, "action": "allow"})
    assert answer.status_code == 302
    j.back(answer["Location"])
    assert Connection.objects.get(membership__user=carol, provider="salesforce").account_name == "carol@acme.test"


def test_salesforce_page_without_a_hint_prefills_nothing(journey, bob_connected, carol):
    j = journey(carol)
    bare = {k: v for k, v in _query(j.start("salesforce")).items() if k != "login_hint"}
    path = "/sandbox/salesforce/services/oauth2/authorize"
    assert _form(j.client.get(path + "?" + up.urlencode(bare)).content).fields["username"] == ""
    # A refused Allow keeps the hint it was given, not the first sandbox user.
    hinted = {**bare, "login_hint": "carol@acme.test"}
    again = j.client.post(path, {**hinted, "username": "not-an-address", "action": "allow"})
    assert again.status_code == 400
    assert _form(again.content).fields["username"] == "carol@acme.test"
