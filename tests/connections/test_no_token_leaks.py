"""No access or refresh token reaches a log record, the admin, a page, an error report or a repr."""

from __future__ import annotations

import json
import logging
import sys

import pytest
from django.test import RequestFactory
from django.views.debug import ExceptionReporter

from connections import flows, oauth, services
from connections.models import Connection
from connections.selectors import graph_client_for, salesforce_client_for
from orgs.access import resolve_org_context
from orgs.models import Membership
from sandbox.faults import fault_add
from sandbox.salesforce.services import sf_session_expire

from .conftest import DBS

pytestmark = pytest.mark.django_db(databases=DBS)


def _secrets_of(conn: Connection) -> set[str]:
    data = conn.read_tokens()
    found = {v for k, v in data.items() if k in ("access_token", "refresh_token") and v}
    if "cache" in data:
        cache = json.loads(data["cache"])
        for section in ("AccessToken", "RefreshToken", "IdToken"):
            found |= {entry["secret"] for entry in cache.get(section, {}).values()}
    return found


def _collect(into: set[str]) -> None:
    for conn in Connection.objects.exclude(token_blob=""):
        into |= _secrets_of(conn)


def _leaks(text: str, tokens: set[str]) -> list[str]:
    # Compare on a distinctive slice too, in case a log line truncates a token.
    return [t[:12] + "…" for t in tokens if t in text or t[-24:] in text]


def test_tokens_never_reach_logs_admin_pages_or_reprs(connected, client_for, staff_admin_client, carol, make_user, clock, caplog,
                                                       settings):
    tokens: set[str] = set()
    caplog.set_level(logging.DEBUG)  # root: every logger, msal and urllib3 included
    for name in ("msal", "urllib3", "simple_salesforce", "requests", "linkpoint.connections"):
        logging.getLogger(name).setLevel(logging.DEBUG)

    conns = connected(carol)
    _collect(tokens)
    membership = Membership.objects.get(user=carol)

    graph = graph_client_for(membership)
    graph.request("GET", "/me")
    clock.advance(hours=2)  # silent refresh through msal
    graph_client_for(membership).request("GET", "/me")
    _collect(tokens)

    sf = salesforce_client_for(membership)
    sf.create("Contact", {"LastName": "Leak check"})
    sf_session_expire(token=conns["salesforce"].read_tokens()["access_token"])
    salesforce_client_for(membership).create("Contact", {"LastName": "After refresh"})
    _collect(tokens)

    # Faults: throttling, a refused refresh, a failed callback.
    fault_add(side="outlook", kind="http_429", path_pattern=r"/v1\.0/me$", count=1, retry_after=1)
    graph_client_for(membership, sleep=lambda s: None).request("GET", "/me")
    fault_add(side="outlook", kind="revoked_refresh_token", path_pattern="/token", count=None)
    clock.advance(hours=2)
    with pytest.raises(Exception):  # noqa: B017 (AuthError; the point is what got logged)
        graph_client_for(membership).request("GET", "/me")

    client = client_for(carol)
    pages = [client.get("/o/acme/connections/").content.decode(),
             client.get("/connections/callback/microsoft/?state=nope&code=abc").content.decode()]
    reprs = [repr(c) + str(c) for c in Connection.objects.all()] + [repr(graph), repr(sf)]

    admin = make_user("root@linkpoint.test", is_staff=True)
    admin.is_superuser = True
    admin.save()
    admin_client = staff_admin_client(admin)
    pages.append(admin_client.get("/admin/connections/connection/").content.decode())
    for conn in Connection.objects.all():
        pages.append(admin_client.get(f"/admin/connections/connection/{conn.pk}/change/").content.decode())
    assert "carol@acme.test" in pages[-1]  # the admin page did render the connection

    assert len(tokens) >= 6
    logged = "\n".join(
        r.getMessage() + (logging.Formatter().formatException(r.exc_info) if r.exc_info else "")
        for r in caplog.records
    )
    assert caplog.records, "nothing was logged: the test would prove nothing"
    assert not _leaks(logged, tokens), "token in a log record"
    for text in pages + reprs:
        assert not _leaks(text, tokens)
    from orgs.models import AuditEntry

    audit = json.dumps([[e.action, e.target, e.before, e.after] for e in AuditEntry.objects.all()])
    assert not _leaks(audit, tokens)


def test_an_unexpected_failure_shows_no_trace_and_the_error_report_hides_tokens(journey, sf_user, carol,
                                                                                 monkeypatch, caplog, settings):
    # The report is what the admins' error mail carries in production. With DEBUG on, Django
    # shows every variable by design; `check --deploy` refuses DEBUG in production.
    settings.DEBUG = False
    sf_user("carol@acme.test")
    j = journey(carol)
    back = j.consent_salesforce(j.start("salesforce"), email="carol@acme.test")
    issued: dict = {}
    real_exchange = oauth.sf_token_by_code

    def spy(*args, **kwargs):
        issued.update(real_exchange(*args, **kwargs))
        return issued

    def boom(**kwargs):
        raise RuntimeError("audit store unavailable")

    monkeypatch.setattr(oauth, "sf_token_by_code", spy)
    monkeypatch.setattr(services, "audit_record", boom)

    # Through the view: a clear message, no stack trace, nothing stored.
    with caplog.at_level(logging.DEBUG):
        response = j.back(back)
    page = j.client.get(response["Location"]).content.decode()
    assert "failed unexpectedly" in page and "Traceback" not in page
    assert not Connection.objects.exists()
    tokens = {issued["access_token"], issued["refresh_token"]}
    logged = "\n".join(r.getMessage() + (logging.Formatter().formatException(r.exc_info) if r.exc_info else "")
                       for r in caplog.records)
    assert "audit store unavailable" in logged and not _leaks(logged, tokens)

    # Django's DEBUG error report for the same failure masks the frames that hold tokens.
    back = j.consent_salesforce(j.start("salesforce"), email="carol@acme.test")
    flow = next(iter(j.client.session[flows.FLOWS_KEY].values()))
    request = RequestFactory().get(back)
    request.user, request.session = carol, j.client.session
    ctx = resolve_org_context(carol, "acme")
    issued.clear()

    def attempt() -> str:
        # The report is built from this frame down, as the error mail of a failed request would be.
        try:
            flows._finish_salesforce(request, ctx, flow)
        except RuntimeError:
            return ExceptionReporter(request, *sys.exc_info()).get_traceback_html()
        return ""

    report = attempt()
    assert issued["access_token"] and "audit store unavailable" in report
    assert not _leaks(report, {issued["access_token"], issued["refresh_token"]})
