# ruff: noqa: F811  (pytest fixtures imported from graph_helpers)
"""The emulators driven by clients this project did not write (issue 15).

Microsoft's Graph SDK (msgraph-sdk, over httpx) reaches the in-process Graph
emulator through `httpx_sandbox.SandboxAsyncTransport`; its URL forms
(`delta()`), its Prefer headers and its deserializers guard the emulator's
shapes. A second msal release, installed into a temporary directory and
imported in place of the venv's, runs the auth-code flow against the identity
emulator, validates the signed id_token, and meets AADSTS65001 when it asks
for more than was consented.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import importlib
import json
import subprocess
import sys
import urllib.parse as up

import pytest
from django.urls import include, path

from sandbox.microsoft.services import access_token_issue, consent_withdraw, mailbox_ensure
from sandbox.transport import sandbox_session
from tests.conftest import skip_or_fail

from .graph_helpers import GRAPH, event_body, graph, mailbox, token  # noqa: F401
from .httpx_sandbox import SandboxAsyncTransport

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])
urlpatterns = [path("sandbox/", include("sandbox.urls"))]
REDIRECT = "https://app.linkpoint.test/connections/microsoft/callback"
SCOPES = ["Calendars.ReadWrite", "Contacts.ReadWrite", "Tasks.ReadWrite", "User.Read"]
OTHER_MSAL = "1.31.1"  # not the venv's release: its own cache format, request building and id_token checks


# --- msgraph-sdk ------------------------------------------------------------------------------

msgraph = pytest.importorskip("msgraph", reason="msgraph-sdk is a dev dependency: pip install -e '.[dev]'")


class _Token:
    """kiota's AccessTokenProvider: a fixed sandbox bearer token, for the sandbox host only."""

    def __init__(self, value: str):
        from kiota_abstractions.authentication import AllowedHostsValidator

        self.value = value
        self.hosts = AllowedHostsValidator(["graph.sandbox.test"])

    async def get_authorization_token(self, uri, additional_authentication_context=None) -> str:
        return self.value

    def get_allowed_hosts_validator(self):
        return self.hosts


def _sdk(token_value: str):
    import httpx
    from kiota_abstractions.authentication import BaseBearerTokenAuthenticationProvider
    from msgraph import GraphRequestAdapter, GraphServiceClient
    from msgraph.graph_request_adapter import options
    from msgraph_core import GraphClientFactory

    transport = SandboxAsyncTransport()
    # The SDK's own middleware and options (its /users/me-token-to-replace → /me rewrite among
    # them), on a client whose transport is the sandbox.
    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(transport=transport, base_url=GRAPH), options=options
    )
    adapter = GraphRequestAdapter(BaseBearerTokenAuthenticationProvider(_Token(token_value)), client=http)
    adapter.base_url = GRAPH
    return GraphServiceClient(request_adapter=adapter), transport


@pytest.fixture
def sdk(token, monkeypatch):
    # The SDK is async; the sandbox's ORM calls run inside its event loop, on this thread,
    # so they see the test's transaction.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    return _sdk(token)


def run(coro):
    return asyncio.run(coro)


def test_calendar_view_delta_function_form_with_text_bodies(sdk, graph):
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from msgraph.generated.models.body_type import BodyType
    from msgraph.generated.users.item.calendar_view.delta.delta_request_builder import (
        DeltaRequestBuilder,
    )

    html = ('<html><head><style>p{color:red}</style></head><body><p>Agenda:</p>'
            '<p><b>Pricing</b> &amp; terms</p></body></html>')
    graph.post(f"{GRAPH}/me/events", json=event_body(body={"contentType": "html", "content": html}))
    client, transport = sdk
    query = DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(
        start_date_time="2030-03-01T00:00:00Z", end_date_time="2030-03-31T00:00:00Z")
    config = RequestConfiguration(query_parameters=query)
    config.headers.add("Prefer", 'outlook.body-content-type="text"')
    page = run(client.me.calendar_view.delta.get(request_configuration=config))

    request, answer = transport.seen[-1]
    assert "/calendarView/delta()" in str(request.url)  # the SDK's OData function form
    assert answer.headers["Preference-Applied"] == 'outlook.body-content-type="text"'
    [event] = page.value
    assert event.body.content_type == BodyType.Text
    assert event.body.content == "Agenda:\r\nPricing & terms"
    assert page.odata_delta_link and "$deltatoken=" in page.odata_delta_link
    assert "uid" not in (event.additional_data or {})  # v1.0's event has iCalUId, no uid

    # Without the preference Graph answers HTML, as stored.
    plain = run(client.me.events.by_event_id(event.id).get())
    assert plain.body.content_type == BodyType.Html and "<b>Pricing</b>" in plain.body.content


def test_every_answer_names_its_request(sdk, graph):
    client, transport = sdk
    run(client.me.get())
    _, answer = transport.seen[-1]
    assert answer.status_code == 200
    assert answer.headers["request-id"] and answer.headers["client-request-id"]
    # A caller's own client-request-id is echoed, on successes and in error bodies alike.
    ok = graph.get(f"{GRAPH}/me/events", headers={"client-request-id": "c0ffee00-0000-4000-8000-000000000001"})
    assert ok.headers["client-request-id"] == "c0ffee00-0000-4000-8000-000000000001"
    missing = graph.get(f"{GRAPH}/me/events/AAMkAAAA", headers={"client-request-id": "c0ffee00-0000-4000-8000-2"})
    assert missing.status_code == 400
    assert missing.json()["error"]["innerError"]["client-request-id"] == "c0ffee00-0000-4000-8000-2"
    batch = graph.post(f"{GRAPH}/$batch", json={"requests": [{"id": "1", "method": "GET", "url": "/me"}]})
    assert batch.headers["request-id"]


def test_recurrence_comes_back_with_every_default(sdk, graph):
    from msgraph.generated.models.day_of_week import DayOfWeek
    from msgraph.generated.models.recurrence_range_type import RecurrenceRangeType
    from msgraph.generated.models.week_index import WeekIndex

    posted = event_body(recurrence={
        "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]},
        "range": {"type": "noEnd", "startDate": "2030-03-04"},
    })
    event_id = graph.post(f"{GRAPH}/me/events", json=posted).json()["id"]
    client, _ = sdk
    event = run(client.me.events.by_event_id(event_id).get())
    pattern, rng = event.recurrence.pattern, event.recurrence.range
    assert (pattern.month, pattern.day_of_month) == (0, 0)
    assert pattern.first_day_of_week == DayOfWeek.Sunday and pattern.index == WeekIndex.First
    assert pattern.days_of_week == [DayOfWeek.Monday]
    assert rng.type == RecurrenceRangeType.NoEnd
    assert rng.recurrence_time_zone == "W. Europe Standard Time"
    assert rng.number_of_occurrences == 0
    assert str(rng.end_date) == "0001-01-01"


def test_contacts_and_todo_delta_function_form(sdk, graph):
    graph.post(f"{GRAPH}/me/contacts", json={"givenName": "Ada", "surname": "Lovelace"})
    lists = graph.get(f"{GRAPH}/me/todo/lists").json()["value"]
    list_id = lists[0]["id"]
    graph.post(f"{GRAPH}/me/todo/lists/{list_id}/tasks", json={
        "title": "Send quote", "dueDateTime": {"dateTime": "2030-05-01T17:30:00", "timeZone": "Tokyo Standard Time"}})
    client, transport = sdk
    contacts = run(client.me.contacts.delta.get())
    assert "/contacts/delta()" in str(transport.seen[-1][0].url)
    assert [c.given_name for c in contacts.value] == ["Ada"]
    tasks = run(client.me.todo.lists.by_todo_task_list_id(list_id).tasks.delta.get())
    assert "/tasks/delta()" in str(transport.seen[-1][0].url)
    [task] = tasks.value
    # To Do keeps the due date only: midnight UTC of the date as written.
    assert (task.due_date_time.date_time, task.due_date_time.time_zone) == ("2030-05-01T00:00:00.0000000", "UTC")


def test_a_token_without_the_scope_is_refused(mailbox, monkeypatch):
    from msgraph.generated.models.contact import Contact
    from msgraph.generated.models.o_data_errors.o_data_error import ODataError

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    client, _ = _sdk(access_token_issue(mailbox, scopes="User.Read"))
    assert run(client.me.get()).mail == mailbox.email  # what User.Read allows
    with pytest.raises(ODataError) as read:
        run(client.me.events.get())
    assert read.value.response_status_code == 403
    assert read.value.error.code == "ErrorAccessDenied"
    with pytest.raises(ODataError):
        run(client.me.contacts.post(Contact(given_name="Nope")))

    reader, _ = _sdk(access_token_issue(mailbox, scopes="Contacts.Read"))
    assert run(reader.me.contacts.get()).value == []
    with pytest.raises(ODataError) as write:
        run(reader.me.contacts.post(Contact(given_name="Nope")))
    assert write.value.error.code == "ErrorAccessDenied"
    from sandbox.microsoft.models import Item
    assert not Item.objects.filter(mailbox=mailbox, kind="contact").exists()


def test_a_stale_if_match_is_an_irresolvable_conflict(sdk, graph):
    from msgraph.generated.models.event import Event
    from msgraph.generated.models.o_data_errors.o_data_error import ODataError

    created = graph.post(f"{GRAPH}/me/events", json=event_body()).json()
    graph.patch(f"{GRAPH}/me/events/{created['id']}", json={"subject": "Moved on"})
    client, _ = sdk
    from kiota_abstractions.base_request_configuration import RequestConfiguration

    config = RequestConfiguration()
    config.headers.add("If-Match", created["@odata.etag"])
    with pytest.raises(ODataError) as stale:
        run(client.me.events.by_event_id(created["id"]).patch(Event(subject="Late"), request_configuration=config))
    assert stale.value.response_status_code == 412
    assert stale.value.error.code == "ErrorIrresolvableConflict"


def test_immutable_id_preference_is_acknowledged(graph):
    answer = graph.get(f"{GRAPH}/me/events", headers={"Prefer": 'IdType="ImmutableId"'})
    assert answer.status_code == 200
    assert answer.headers["Preference-Applied"] == 'IdType="ImmutableId"'


# --- a second msal release ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def other_msal_dir(tmp_path_factory):
    target = tmp_path_factory.mktemp("msal-other")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
         f"msal=={OTHER_MSAL}"], capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        skip_or_fail(f"could not install msal {OTHER_MSAL} from the package index: {done.stderr[-300:]}")
    return target


@pytest.fixture
def other_msal(other_msal_dir):
    """msal {OTHER_MSAL} imported in place of the venv's for this test, then put back."""
    saved = {name: mod for name, mod in sys.modules.items() if name == "msal" or name.startswith("msal.")}
    for name in saved:
        del sys.modules[name]
    sys.path.insert(0, str(other_msal_dir))
    try:
        module = importlib.import_module("msal")
        assert module.__version__ == OTHER_MSAL, module.__file__
        yield module
    finally:
        sys.path.remove(str(other_msal_dir))
        for name in [n for n in sys.modules if n == "msal" or n.startswith("msal.")]:
            del sys.modules[name]
        sys.modules.update(saved)


@pytest.fixture(autouse=True)
def _registered(settings):
    settings.SANDBOX_OAUTH_REDIRECT_URIS = [REDIRECT]


def _b64(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


@pytest.mark.urls(__name__)
def test_other_msal_flow_signed_id_token_and_consent(other_msal, client, settings):
    import jwt

    box = mailbox_ensure("dana@contoso.test", "Dana Scully")
    authority = f"https://login.sandbox.test/{box.tenant.tenant_id}"
    app = other_msal.ConfidentialClientApplication(
        settings.MICROSOFT_CLIENT_ID, client_credential=settings.MICROSOFT_CLIENT_SECRET, authority=authority,
        http_client=sandbox_session(), instance_discovery=False, token_cache=other_msal.SerializableTokenCache())
    flow = app.initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT)
    parts = up.urlsplit(flow["auth_uri"])
    local = f"/sandbox/login{parts.path}?{parts.query}"
    answer = client.post(local, {"mailbox": box.email, "decision": "accept"})
    auth_response = dict(up.parse_qsl(up.urlsplit(answer["Location"]).query))
    result = app.acquire_token_by_auth_code_flow(flow, auth_response)
    assert "access_token" in result, result
    # msal checked the claims (nonce, aud, iss, exp); the signature checks against the published key.
    assert result["id_token_claims"]["preferred_username"] == box.email
    header = json.loads(_b64(result["id_token"].split(".")[0]))
    assert header["alg"] == "RS256"
    session = sandbox_session()
    metadata = session.get(f"{authority}/v2.0/.well-known/openid-configuration").json()
    keys = session.get(metadata["jwks_uri"]).json()["keys"]
    [key] = [k for k in keys if k["kid"] == header["kid"]]
    claims = jwt.decode(result["id_token"], jwt.PyJWK(key).key, algorithms=["RS256"],
                        audience=settings.MICROSOFT_CLIENT_ID)
    assert claims["nonce"] == dict(up.parse_qsl(parts.query))["nonce"]
    # A token signed by someone else is not the emulator's.
    forged = jwt.encode(claims, "not-the-key", algorithm="HS256")
    with pytest.raises(jwt.InvalidTokenError):
        jwt.decode(forged, jwt.PyJWK(key).key, algorithms=["RS256"], audience=settings.MICROSOFT_CLIENT_ID)

    # An administrator withdraws Tasks.ReadWrite: the refresh is refused with 65001, not handed
    # a token with the old scopes.
    consent_withdraw(box, ["Tasks.ReadWrite"])
    [account] = app.get_accounts()
    refused = app.acquire_token_silent_with_error(SCOPES, account=account, force_refresh=True)
    assert refused["error"] == "invalid_grant"
    assert 65001 in refused["error_codes"] and refused.get("suberror") == "consent_required"
    assert refused["error_uri"].endswith("code=65001")
    still = app.acquire_token_silent_with_error(["Calendars.ReadWrite", "User.Read"], account=account,
                                                force_refresh=True)
    assert "access_token" in still, still
    assert "Tasks.ReadWrite" not in still["scope"]


@pytest.mark.urls(__name__)
def test_pkce_answers_missing_and_wrong_verifiers_apart(client, settings):
    box = mailbox_ensure("dana@contoso.test", "Dana Scully")
    authority = f"https://login.sandbox.test/{box.tenant.tenant_id}"
    verifier = "v" * 50
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    session = sandbox_session()

    def code() -> str:
        query = up.urlencode({"client_id": settings.MICROSOFT_CLIENT_ID, "response_type": "code",
                              "redirect_uri": REDIRECT, "scope": "openid User.Read", "state": "s",
                              "code_challenge": challenge, "code_challenge_method": "S256"})
        answer = client.post(f"/sandbox/login/{box.tenant.tenant_id}/oauth2/v2.0/authorize?{query}",
                             {"mailbox": box.email, "decision": "accept"})
        return dict(up.parse_qsl(up.urlsplit(answer["Location"]).query))["code"]

    def redeem(**extra):
        return session.post(f"{authority}/oauth2/v2.0/token", data={
            "client_id": settings.MICROSOFT_CLIENT_ID, "client_secret": settings.MICROSOFT_CLIENT_SECRET,
            "grant_type": "authorization_code", "code": code(), "redirect_uri": REDIRECT, **extra}).json()

    assert redeem()["error_codes"] == [900144]
    wrong = redeem(code_verifier="w" * 50)
    assert wrong["error"] == "invalid_grant" and wrong["error_codes"] == [50148]
    assert wrong["error_uri"].endswith("code=50148")
    assert "access_token" in redeem(code_verifier=verifier)


def test_salesforce_answers_every_version_it_advertises():
    from simple_salesforce import Salesforce
    from simple_salesforce.api import DEFAULT_API_VERSION
    from simple_salesforce.exceptions import SalesforceMalformedRequest

    from sandbox.salesforce.services import sf_session_issue, sf_user_ensure

    rep = sf_user_ensure(email="rita.rep@initech.test")
    token = sf_session_issue(user=rep)
    # simple-salesforce's own default version (older than the pinned one), as a client sends it.
    sf = Salesforce(instance_url=rep.org.instance_url, session_id=token, session=sandbox_session())
    assert sf.sf_version == DEFAULT_API_VERSION
    advertised = sandbox_session().get(f"{rep.org.instance_url}/services/data/").json()
    assert {"version": DEFAULT_API_VERSION} .items() <= advertised[-(63 - int(float(DEFAULT_API_VERSION)))].items()
    created = sf.Contact.create({"LastName": "Hopper", "Email": "grace@navy.test"})
    assert sf.query(f"SELECT Id, LastName FROM Contact WHERE Id = '{created['id']}'")["totalSize"] == 1
    for version in ("31.0", "45.0"):
        old = Salesforce(instance_url=rep.org.instance_url, session_id=token, session=sandbox_session(),
                         version=version)
        assert old.Contact.get(created["id"])["LastName"] == "Hopper"
    never = sandbox_session().get(f"{rep.org.instance_url}/services/data/v30.0/sobjects/",
                                  headers={"Authorization": f"Bearer {token}"})
    assert never.status_code == 404

    # An Id on insert: INVALID_FIELD_FOR_INSERT_UPDATE; a lowercase "id" names the record to update.
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.Contact.create({"Id": created["id"], "LastName": "Twice"})
    assert refused.value.content[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    answer = sf.restful("composite/sobjects", method="PATCH", json={"allOrNone": False, "records": [
        {"attributes": {"type": "Contact"}, "id": created["id"], "Title": "Rear Admiral"}]})
    assert answer[0]["success"] is True, answer
    assert sf.Contact.get(created["id"])["Title"] == "Rear Admiral"


def test_filter_on_last_modified(sdk, graph):
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from msgraph.generated.users.item.contacts.contacts_request_builder import (
        ContactsRequestBuilder,
    )

    old = graph.post(f"{GRAPH}/me/contacts", json={"givenName": "Old"}).json()
    new = graph.post(f"{GRAPH}/me/contacts", json={"givenName": "New"}).json()
    assert old["lastModifiedDateTime"] < new["lastModifiedDateTime"]
    client, _ = sdk
    query = ContactsRequestBuilder.ContactsRequestBuilderGetQueryParameters(
        filter=f"lastModifiedDateTime ge {new['lastModifiedDateTime']}")
    page = run(client.me.contacts.get(request_configuration=RequestConfiguration(query_parameters=query)))
    assert [c.given_name for c in page.value] == ["New"]
    both = graph.get(f"{GRAPH}/me/contacts", params={
        "$filter": f"lastModifiedDateTime ge {old['lastModifiedDateTime']} and "
                   f"lastModifiedDateTime lt {new['lastModifiedDateTime']}"}).json()["value"]
    assert [c["givenName"] for c in both] == ["Old"]
    assert graph.get(f"{GRAPH}/me/contacts", params={"$filter": "lastModifiedDateTime ge yesterday"}).status_code == 400
