"""Serve the sandbox hosts in-process to the product's unchanged HTTP clients.

`sandbox_session()` returns a `requests.Session` whose every https/http request
is answered by the sandbox's Django views, dispatched straight through the URL
resolver of the host's urlconf: no product middleware and no request signals
(Django's `request_finished` would close the product's database connection in
the middle of its transaction). A host outside `.sandbox.test` fails with a
ConnectionError: nothing ever reaches the network.

Each request is counted (sandbox/accounting.py), may be refused by the services' concurrency
limits (sandbox/limits.py), may meet an injected fault (sandbox/faults.py) and, with emulated
latency on (sandbox/latency.py), answers after its response time: the emulator builds the answer
first and the rest of the delay is slept after it. A limits slot is held from admission until
the answer leaves, sleep included.
"""

from __future__ import annotations

import io
import logging
import sys
import threading
import time
import urllib.parse as up
from contextlib import contextmanager
from dataclasses import dataclass

import requests
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.core.handlers.wsgi import WSGIRequest
from django.db import transaction
from django.http import Http404
from django.urls import Resolver404, get_resolver
from requests.adapters import BaseAdapter, HTTPAdapter
from requests.structures import CaseInsensitiveDict

from .accounting import api_count_record
from .faults import fault_pick, fault_response, graph_error, salesforce_error
from .latency import delay_for, respond_by
from .limits import admit
from .models import FaultKind, Side

SANDBOX_DOMAIN = "sandbox.test"
logger = logging.getLogger("linkpoint.sandbox")
_EMULATOR = threading.RLock()


@contextmanager
def _emulator_db():
    """The emulators' database work, one request at a time in this process.

    A sync run sends requests from worker threads (linkpoint/fanout.py). On such a
    thread the emulator uses the run thread's own connection to the sandbox database,
    as Django's LiveServerThread shares its test connection: it then sees what that
    thread's transaction holds (pytest-django's test transaction, which another
    connection cannot see) and works with any database, SQLite in memory included.
    One connection serves one thread at a time, hence the lock; the rest of the
    emulated response time is slept outside it, so the requests' waits still overlap."""
    from linkpoint.fanout import borrow_connection

    with _EMULATOR:
        borrow_connection("sandbox")
        yield


@dataclass(frozen=True)
class Host:
    side: str
    urlconf: str


def host_for(hostname: str) -> Host | None:
    """Which emulated service answers on this host name."""
    hostname = (hostname or "").lower()
    if hostname == f"login.{SANDBOX_DOMAIN}":
        return Host(Side.OUTLOOK, "sandbox.microsoft.urls_identity")
    if hostname == f"graph.{SANDBOX_DOMAIN}":
        return Host(Side.OUTLOOK, "sandbox.microsoft.urls_graph")
    if hostname == f"login.salesforce.{SANDBOX_DOMAIN}" or hostname.endswith(
        f".my.salesforce.{SANDBOX_DOMAIN}"
    ):
        return Host(Side.SALESFORCE, "sandbox.salesforce.urls")
    return None


def _environ(request: requests.PreparedRequest, parts: up.SplitResult, body: bytes) -> dict:
    environ = {
        "REQUEST_METHOD": request.method,
        "PATH_INFO": up.unquote(parts.path) or "/",
        "QUERY_STRING": parts.query,
        "SERVER_NAME": parts.hostname,
        "SERVER_PORT": str(parts.port or (443 if parts.scheme == "https" else 80)),
        "HTTP_HOST": parts.netloc,
        "REMOTE_ADDR": "127.0.0.1",
        "SCRIPT_NAME": "",
        "wsgi.url_scheme": parts.scheme,
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.version": (1, 0),
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "CONTENT_LENGTH": str(len(body)),
    }
    for key, value in request.headers.items():
        name = key.upper().replace("-", "_")
        if name == "CONTENT_TYPE":
            environ["CONTENT_TYPE"] = value
        elif name != "CONTENT_LENGTH":
            environ[f"HTTP_{name}"] = value
    return environ


def _bearer(request: requests.PreparedRequest) -> str:
    auth = request.headers.get("Authorization", "")
    return auth[7:].strip() if auth.lower().startswith("bearer ") else ""


def _sandbox_host(request: requests.PreparedRequest, parts: up.SplitResult) -> Host:
    """The emulated service of a request's host; any other host fails, never reaching the network."""
    host = host_for(parts.hostname or "")
    if host is None:
        raise requests.exceptions.ConnectionError(
            f"sandbox transport: {parts.hostname} is not a sandbox host; the network is never used",
            request=request,
        )
    return host


class SandboxAdapter(BaseAdapter):
    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        parts = up.urlsplit(request.url)
        host = _sandbox_host(request, parts)
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        path_qs = parts.path + (f"?{parts.query}" if parts.query else "")
        started = time.perf_counter()  # the response time runs from here (sandbox/latency.py)

        django_request = WSGIRequest(_environ(request, parts, body))
        resolver = get_resolver(host.urlconf)
        try:
            match = resolver.resolve(django_request.path_info)
        except Resolver404:
            match = None
        family = (match.url_name if match and match.url_name else "unknown")
        side = str(host.side)
        seconds = delay_for(side, request.method, path_qs, body)  # 0 unless SANDBOX_LATENCY
        with _emulator_db():
            api_count_record(side=host.side, family=family, token=_bearer(request))
            admission = admit(side=side, hostname=parts.hostname or "", method=request.method, path=path_qs,
                              body=body, token=_bearer(request), seconds=seconds)  # off unless SANDBOX_LIMITS
        try:
            if admission.refusal is not None:  # refused at the door: a round trip, no work
                respond_by(side, delay_for(side, "GET", parts.path, b""), started)
                return self._build(request, admission.refusal)
            if admission.body is not body:  # a $batch whose throttled requests are answered here
                body = admission.body
                seconds = delay_for(side, request.method, path_qs, body)
                django_request = WSGIRequest(_environ(request, parts, body))
            try:
                with _emulator_db():
                    return self._serve(request, parts, path_qs, django_request, match, host, admission)
            finally:  # the answer (or the injected fault) arrives once its response time is up
                respond_by(side, seconds, started)
        finally:
            admission.close()

    def _serve(self, request, parts, path_qs, django_request, match, host: Host, admission):
        fault = fault_pick(side=host.side, method=request.method, path=path_qs)
        if fault is not None and fault.kind == FaultKind.TIMEOUT:
            raise requests.exceptions.ReadTimeout(
                f"sandbox: injected read timeout on {request.method} {parts.path}", request=request
            )
        if fault is not None and fault.kind != FaultKind.LOST_RESPONSE:
            return self._build(request, fault_response(fault, side=host.side, host=parts.hostname, path=parts.path))

        response = self._dispatch(django_request, match, host)
        if fault is not None:  # LOST_RESPONSE: the server acted and committed; the answer never arrives
            raise requests.exceptions.ConnectionError(
                f"sandbox: injected lost response after {request.method} {parts.path} was processed",
                request=request,
            )
        return self._build(request, admission.merge(response))

    @staticmethod
    def _dispatch(django_request, match, host: Host):
        not_found = (
            graph_error(404, "UnknownError", "Resource not found for the segment.")
            if host.side == Side.OUTLOOK
            else salesforce_error(404, "NOT_FOUND", "The requested resource does not exist")
        )
        if match is None:
            return not_found
        django_request.resolver_match = match
        try:
            # The remote service's own transaction: committed before it answers.
            with transaction.atomic(using="sandbox"):
                response = match.func(django_request, *match.args, **match.kwargs)
                if hasattr(response, "render") and callable(response.render):
                    response = response.render()
        except Http404:
            return not_found
        except PermissionDenied:
            return (
                graph_error(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
                if host.side == Side.OUTLOOK
                else salesforce_error(403, "INSUFFICIENT_ACCESS", "insufficient access rights on object id")
            )
        except Exception:
            # A bug in an emulator is the remote service's 500 (its writes rolled back above),
            # never an exception raised into the product's client.
            logger.exception("sandbox %s: %s %s raised", host.side, django_request.method, django_request.path)
            return (
                graph_error(500, "InternalServerError", "An internal server error occurred.")
                if host.side == Side.OUTLOOK
                else salesforce_error(500, "UNKNOWN_EXCEPTION", "An unexpected error occurred. Please include "
                                      "this ErrorId if you contact support.")
            )
        return response

    def _build(self, request, django_response) -> requests.Response:
        response = requests.Response()
        response.status_code = django_response.status_code
        response.reason = django_response.reason_phrase
        response.headers = CaseInsensitiveDict(dict(django_response.items()))
        if getattr(django_response, "streaming", False):
            response._content = b"".join(django_response.streaming_content)
        else:
            response._content = django_response.content
        response.url = request.url
        response.request = request
        response.encoding = django_response.charset or "utf-8"
        response.connection = self
        return response

    def close(self):
        pass


def sandbox_session() -> requests.Session:
    """A requests Session whose every request goes to the sandbox, never the network."""
    session = requests.Session()
    adapter = SandboxAdapter()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


# --- the same hosts over real HTTP ---------------------------------------------------------------
#
# In-process, the emulators' CPU time is the product's: one process, one GIL. A benchmark that
# wants the product measured alone serves the sandbox from a process of its own
# (`hosts_application` under gunicorn, bench/sandbox_server.py) and points the product's
# unchanged clients at it with `sandbox_http_session` (settings.SANDBOX_SERVER_URL). Each
# request then runs the pipeline above in the server process (counting, limits, faults,
# response time); the product sends it over TCP with requests/urllib3, as to the real services.

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection",
               "te", "trailer", "upgrade"}


class SandboxServerAdapter(HTTPAdapter):
    """Sends a sandbox host's request over HTTP to the sandbox server, its Host header kept (the
    emulators build their links and route by it); any other host fails like the in-process one."""

    def __init__(self, server_url: str | dict[str, str]):
        super().__init__(pool_connections=4, pool_maxsize=32)
        self.servers = {side: up.urlsplit(url) for side, url in server_urls(server_url).items()}

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        parts = up.urlsplit(request.url)
        host = _sandbox_host(request, parts)
        server = self.servers[str(host.side)]
        sent = request.copy()
        sent.url = up.urlunsplit((server.scheme, server.netloc, parts.path or "/", parts.query, ""))
        sent.headers["Host"] = parts.netloc  # urllib3 sends the given Host instead of its own
        sent.headers["X-Forwarded-Proto"] = parts.scheme
        response = super().send(sent, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies={})
        response.url = request.url  # redirects and pagination resolve against the service's URL
        response.request = request
        return response


def server_urls(setting: str | dict[str, str]) -> dict[str, str]:
    """Each service's sandbox server: one URL for both, or "outlook=<url>,salesforce=<url>"
    (a dict alike), as when each emulated service answers from a process of its own."""
    if isinstance(setting, dict):
        urls = dict(setting)
    elif "=" in setting:
        urls = dict(part.strip().split("=", 1) for part in setting.split(",") if part.strip())
    else:
        urls = {str(Side.OUTLOOK): setting, str(Side.SALESFORCE): setting}
    missing = {str(Side.OUTLOOK), str(Side.SALESFORCE)} - {k for k, v in urls.items() if v}
    if missing:
        raise ImproperlyConfigured(f"SANDBOX_SERVER_URL names no server for {', '.join(sorted(missing))}")
    return urls


def sandbox_http_session() -> requests.Session:
    """A requests Session that reaches the sandbox server (settings.SANDBOX_SERVER_URL) over HTTP."""
    from django.conf import settings

    session = requests.Session()
    session.trust_env = False  # never a proxy from the environment: the server is local
    adapter = SandboxServerAdapter(settings.SANDBOX_SERVER_URL)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


_SERVER_SIDE = SandboxAdapter()


def hosts_application(environ, start_response):
    """WSGI application: the sandbox hosts chosen by the Host header, each request answered by the
    in-process pipeline (`SandboxAdapter.send`). An injected timeout or lost response, which
    in-process raise the client's own exception, become a 502 here with no answer body."""
    host = environ.get("HTTP_HOST", "")
    scheme = environ.get("HTTP_X_FORWARDED_PROTO", "https")
    target = environ.get("RAW_URI") or (
        up.quote(environ.get("PATH_INFO", "/")) + (f"?{environ['QUERY_STRING']}" if environ.get("QUERY_STRING") else "")
    )
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    headers = {
        key[5:].replace("_", "-").title(): value
        for key, value in environ.items()
        if key.startswith("HTTP_") and key not in ("HTTP_HOST", "HTTP_X_FORWARDED_PROTO")
    }
    if environ.get("CONTENT_TYPE"):
        headers["Content-Type"] = environ["CONTENT_TYPE"]
    prepared = requests.Request(environ["REQUEST_METHOD"], f"{scheme}://{host}{target}", headers=headers).prepare()
    prepared.body = body
    try:
        response = _SERVER_SIDE.send(prepared)
    except requests.exceptions.RequestException as exc:
        start_response("502 Bad Gateway", [("Content-Length", "0"), ("X-Sandbox-Transport-Error", type(exc).__name__)])
        return [b""]
    content = response.content
    out = [(k, v) for k, v in response.headers.items() if k.lower() not in _HOP_BY_HOP]
    out.append(("Content-Length", str(len(content))))
    start_response(f"{response.status_code} {response.reason or ''}".strip(), out)
    return [content]
