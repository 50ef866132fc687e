"""The sandbox served over real HTTP by a server of its own (`hosts_application`), reached by the
product's unchanged clients through `sandbox_http_session` (settings.SANDBOX_SERVER_URL), as
`bench/sync_bench.py --emulators process` does: the same answers as in-process, links that name
the services' own hosts, and never a request to a host outside the sandbox."""

from __future__ import annotations

import threading
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
import requests
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from simple_salesforce import Salesforce

from sandbox.accounting import api_counts, api_counts_reset
from sandbox.microsoft.services import access_token_issue, contact_create, mailbox_ensure
from sandbox.salesforce.services import sf_records_create, sf_session_issue, sf_user_ensure
from sandbox.transport import hosts_application, sandbox_http_session

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "sandbox"])


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def _serve(seen: list[str]):
    """A threaded WSGI server answering every sandbox host; `seen` notes each request."""

    def app(environ, start_response):
        seen.append(f"{environ['REQUEST_METHOD']} {environ['HTTP_HOST']}{environ['PATH_INFO']}")
        try:
            return hosts_application(environ, start_response)
        finally:
            connections.close_all()  # this thread's own connections

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    httpd = make_server("127.0.0.1", 0, app, server_class=_Server, handler_class=Quiet)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


@pytest.fixture
def server(settings):
    seen: list[str] = []
    httpd = _serve(seen)
    settings.SANDBOX_SERVER_URL = f"http://127.0.0.1:{httpd.server_port}"
    try:
        yield seen
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_graph_over_http_pages_with_links_on_graphs_own_host(server):
    mailbox = mailbox_ensure("fox@contoso.test", "Fox Mulder")
    for i in range(3):
        contact_create(mailbox, {"givenName": f"G{i}", "surname": "S"})
    session = sandbox_http_session()
    session.headers["Authorization"] = f"Bearer {access_token_issue(mailbox)}"
    api_counts_reset()
    first = session.get("https://graph.sandbox.test/v1.0/me/contacts", params={"$top": 2}).json()
    assert len(first["value"]) == 2
    assert first["@odata.nextLink"].startswith("https://graph.sandbox.test/v1.0/")
    second = session.get(first["@odata.nextLink"]).json()
    assert len(second["value"]) == 1
    batch = session.post(
        "https://graph.sandbox.test/v1.0/$batch",
        json={"requests": [{"id": "1", "method": "GET", "url": "/me/contacts"}]},
    )
    assert batch.json()["responses"][0]["status"] == 200
    # Each went to the server over TCP, and the server counted it as the in-process transport does.
    assert [s.split(" ", 1)[1].split("/v1.0")[0] for s in server] == ["graph.sandbox.test"] * 3
    assert api_counts(side="outlook") == 3


def test_simple_salesforce_over_http_with_a_query_of_200_ids_in_the_url(server):
    user = sf_user_ensure(email="dana@contoso.test", org_name="Acme", time_zone="UTC")
    created = sf_records_create(
        user=user, records=[("Contact", {"LastName": f"L{i}"}) for i in range(200)]
    )
    ids = ", ".join(f"'{r.id}'" for r in created)
    sf = Salesforce(
        instance_url=user.org.instance_url,
        session_id=sf_session_issue(user=user),
        session=sandbox_http_session(),
        version=settings.SALESFORCE_API_VERSION,
    )
    answer = sf.query(f"SELECT Id, SystemModstamp FROM Contact WHERE Id IN ({ids})")
    assert answer["totalSize"] == 200
    assert server[-1].startswith(f"GET {user.org.instance_host}/services/data/")


def test_hosts_outside_the_sandbox_never_reach_the_network(server):
    with pytest.raises(requests.exceptions.ConnectionError, match="not a sandbox host"):
        sandbox_http_session().get("https://graph.microsoft.com/v1.0/me")
    assert server == []


def test_each_service_can_answer_from_a_server_of_its_own(settings):
    """ "outlook=<url>,salesforce=<url>": Graph's requests reach one server, Salesforce's the
    other (sync_bench --emulators services), with the same answers."""
    graph_seen: list[str] = []
    sf_seen: list[str] = []
    graph_server, sf_server = _serve(graph_seen), _serve(sf_seen)
    try:
        settings.SANDBOX_SERVER_URL = (
            f"outlook=http://127.0.0.1:{graph_server.server_port},"
            f"salesforce=http://127.0.0.1:{sf_server.server_port}"
        )
        mailbox = mailbox_ensure("fox@contoso.test", "Fox Mulder")
        contact_create(mailbox, {"givenName": "G", "surname": "S"})
        user = sf_user_ensure(email="dana@contoso.test", org_name="Acme", time_zone="UTC")
        sf_records_create(user=user, records=[("Contact", {"LastName": "Scully"})])
        session = sandbox_http_session()
        answer = session.get(
            "https://graph.sandbox.test/v1.0/me/contacts",
            headers={"Authorization": f"Bearer {access_token_issue(mailbox)}"},
        )
        assert [c["surname"] for c in answer.json()["value"]] == ["S"]
        sf = Salesforce(
            instance_url=user.org.instance_url,
            session_id=sf_session_issue(user=user),
            session=session,
            version=settings.SALESFORCE_API_VERSION,
        )
        assert sf.query("SELECT LastName FROM Contact")["records"][0]["LastName"] == "Scully"
        assert [s.split(" ", 1)[1].split("/")[0] for s in graph_seen] == ["graph.sandbox.test"]
        assert [s.split(" ", 1)[1].split("/")[0] for s in sf_seen] == [user.org.instance_host]
    finally:
        for httpd in (graph_server, sf_server):
            httpd.shutdown()
            httpd.server_close()


def test_a_per_service_server_setting_must_name_both_services(settings):
    settings.SANDBOX_SERVER_URL = "outlook=http://127.0.0.1:1"
    with pytest.raises(ImproperlyConfigured, match="no server for salesforce"):
        sandbox_http_session()
