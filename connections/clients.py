"""GraphClient and SalesforceClient: the only product code that speaks HTTP to the remotes.

Both page, batch, retry (exponential backoff with full jitter, Retry-After as
the floor, at most MAX_ATTEMPTS tries), refresh tokens once on an auth failure,
raise the typed errors of errors.py and count every request in a RequestCounter.
`sleep` is injectable so tests assert the waits without waiting.

A run may send requests from several threads at once (linkpoint/fanout.py): a
client's `slots` cap what it has in flight (settings.SYNC_CONCURRENCY), its
database work (token refresh, last use, API usage, status marks) runs on the
run's own thread through `owner_call` / `owner_post`, and what one request
learns (Salesforce's last response, for its Retry-After) stays with its thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import requests
import simple_salesforce
from django.conf import settings
from simple_salesforce import exceptions as sfx

from linkpoint.fanout import owner_call, owner_post

from . import oauth, tokens
from .errors import (
    AuthError,
    ConsentRequired,
    NotFound,
    PreconditionFailed,
    RateLimited,
    RemoteError,
    RequestLimitExceeded,
    SyncStateGone,
    Throttled,
    TransientError,
    ValidationFailed,
)
from .http import (
    MAX_ATTEMPTS,
    MAX_RETRY_AFTER,
    RequestCounter,
    Slots,
    backoff_delay,
    concurrency,
    make_session,
    parse_retry_after,
)
from .models import Connection
from .services import (
    connection_mark_needs_consent,
    connection_mark_needs_reauth,
    connection_touch,
    salesforce_usage_record,
)

__all__ = [
    "BatchRequest", "BatchResponse", "CollectionResult", "GraphClient", "GraphPage", "RequestCounter",
    "SalesforceClient",
]

logger = logging.getLogger("linkpoint.connections")

GRAPH_BATCH_SIZE = 20
SF_COLLECTION_SIZE = 200
RETRY_STATUSES = {429, 503, 504}  # the server did not act: safe to repeat any method
IDEMPOTENT_RETRY_STATUSES = {500, 502}  # it may have acted: repeat only what is safe to repeat
IDEMPOTENT = {"GET", "HEAD", "PUT", "DELETE", "OPTIONS"}
SYNC_STATE_CODES = {"syncstatenotfound", "resyncrequired", "syncstateinvalid"}
# Event bodies as plain text: the canonical Description is text, and Graph converts its HTML
# itself when asked (learn.microsoft.com/graph/api/event-get, Prefer: outlook.body-content-type).
PREFER_TEXT_BODY = 'outlook.body-content-type="text"'
CONSENT_MESSAGE = ("Outlook refused access: a permission LinkPoint needs ({what}) is not granted. "
                   "Grant it again on the My connections page (Grant permissions).")


@dataclass(frozen=True)
class GraphPage:
    items: list[dict]
    next_link: str | None
    delta_link: str | None


@dataclass(frozen=True)
class BatchRequest:
    id: str
    method: str
    url: str
    body: dict | None = None
    headers: dict | None = None
    depends_on: tuple[str, ...] = ()


@dataclass(frozen=True)
class BatchResponse:
    id: str
    status: int
    headers: dict = field(default_factory=dict)
    body: dict | None = None


@dataclass(frozen=True)
class CollectionResult:
    id: str | None
    success: bool
    errors: list[dict]


class _Retry:
    """One request's retry budget: how many tries are left and what to wait before the next."""

    def __init__(self, sleep: Callable[[float], None]):
        self.sleep = sleep
        self.attempt = 0

    def wait_or_raise(self, failure: RemoteError, retry_after: float | None) -> None:
        if isinstance(failure, RateLimited) and (retry_after or 0) > MAX_RETRY_AFTER:
            raise _throttled(failure, retry_after or 0)
        if self.attempt + 1 >= MAX_ATTEMPTS or (retry_after or 0) > MAX_RETRY_AFTER:
            raise failure
        delay = backoff_delay(self.attempt, retry_after)
        logger.info("%s answered %s; retrying in %.1f s", failure.side, failure.status or failure.code, delay)
        self.sleep(delay)
        self.attempt += 1


def _rate_limited(side: str, status: int, code: str, message: str, retry_after: float | None) -> RateLimited:
    return RateLimited(message or "Too many requests.", side=side, status=status, code=code,
                       retry_after=retry_after or 0)


def _throttled(failure: RemoteError, retry_after: float) -> Throttled:
    return Throttled(failure.message or "Too many requests.", side=failure.side, status=failure.status,
                     code=failure.code, retry_after=retry_after)


# =============================================================================================
# Microsoft Graph


class GraphClient:
    side = "outlook"

    def __init__(self, connection: Connection, *, counter: RequestCounter | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        self.connection = connection
        self.counter = counter
        self.sleep = sleep
        self.session = make_session(side=self.side, counter=counter)
        self.base = settings.MICROSOFT_GRAPH_URL.rstrip("/")
        self._app = None
        self._cache = None
        self._token = ""
        self.slots = Slots(concurrency(self.side))

    def __repr__(self) -> str:
        return f"<GraphClient connection={self.connection.pk}>"

    # --- tokens -------------------------------------------------------------------------------
    def _access_token(self, *, force: bool = False, stale: str = "") -> str:
        expires = self.connection.access_expires_at
        fresh = expires is not None and expires - tokens.now() > tokens.REFRESH_AHEAD
        if self._token and fresh and not force:
            return self._token
        # The token is read and refreshed (in the database) on the run's own thread only.
        return owner_call(self._token_now, force=force, stale=stale)

    def _token_now(self, *, force: bool, stale: str) -> str:
        if force and stale and self._token and self._token != stale:
            return self._token  # another request's 401 already refreshed it
        expires = self.connection.access_expires_at
        fresh = expires is not None and expires - tokens.now() > tokens.REFRESH_AHEAD
        if self._token and fresh and not force:
            return self._token
        if fresh and not force:
            # Building msal's app costs an OIDC metadata request; a run whose
            # stored token is still good sends no identity request at all.
            self._token = self._stored_token()
            if self._token:
                return self._token
        if self._app is None:
            # msal reads the OIDC metadata once per app: one app per client (per run).
            self._cache = oauth.msal_cache(None)
            try:
                self._app = oauth.msal_app(self.session, self._cache)
            except (requests.RequestException, ValueError) as exc:
                raise TransientError(f"Microsoft's sign-in service did not answer ({type(exc).__name__}).",
                                     side=self.side) from None
        self._token = tokens.graph_access_token(self.connection, app=self._app, cache=self._cache, force=force)
        return self._token

    def _stored_token(self) -> str:
        """The unexpired Graph access token in the connection's msal cache, or ""."""
        try:
            cache = oauth.msal_cache(self.connection.read_tokens().get("cache"))
        except Exception:  # noqa: BLE001 - unreadable: let msal's own path decide
            return ""
        home = self.connection.ms_home_account_id
        # msal stamps expires_on with the wall clock; it refreshes by the same measure.
        margin = time.time() + 60
        for entry in cache.search(cache.CredentialType.ACCESS_TOKEN, target=oauth.GRAPH_SCOPES):
            if home and entry.get("home_account_id") != home:
                continue
            if int(entry.get("expires_on") or 0) > margin and entry.get("secret"):
                return entry["secret"]
        return ""

    def prepare(self) -> None:
        """A valid token before requests fan out (so workers never wait for one)."""
        self._access_token()

    # --- requests ------------------------------------------------------------------------------
    @staticmethod
    def slots_for(url: str, json) -> int:
        """Mailbox slots a request takes: Graph hands up to four requests of a `$batch`
        to Outlook at once and counts each against the mailbox's four concurrent
        requests (learn.microsoft.com/graph/throttling-limits, Outlook service limits;
        /graph/json-batching); a `dependsOn` chain runs one at a time."""
        if not url.endswith("/$batch") or not isinstance(json, dict):
            return 1
        reqs = json.get("requests") or []
        if any(isinstance(r, dict) and r.get("dependsOn") for r in reqs):
            return 1
        return max(1, min(4, len(reqs)))

    def _url(self, path_or_url: str) -> str:
        if path_or_url.startswith(("https://", "http://")):
            return path_or_url
        return f"{self.base}/{path_or_url.lstrip('/')}"

    def _send(self, method: str, url: str, *, params=None, json=None, headers=None,
              idempotent: bool | None = None) -> requests.Response:
        method = method.upper()
        idempotent = method in IDEMPOTENT or method == "PATCH" if idempotent is None else idempotent
        retry = _Retry(self.sleep)
        refreshed = False
        while True:
            token = self._access_token()
            try:
                with self.slots.hold(self.slots_for(url, json)):
                    response = self.session.request(
                        method, url, params=params, json=json,
                        headers={"Accept": "application/json", **(headers or {}),
                                 "Authorization": f"Bearer {token}"},
                    )
            except requests.Timeout:
                failure = TransientError("Outlook did not answer in time.", side=self.side, code="timeout")
            except requests.ConnectionError:
                failure = TransientError("The connection to Outlook was lost.", side=self.side,
                                         code="connection_lost")
            else:
                if response.status_code < 400:
                    owner_post(connection_touch, connection=self.connection)
                    return response
                if response.status_code == 401 and not refreshed:
                    refreshed = True
                    self._access_token(force=True, stale=token)
                    continue
                failure = self._error(response)
                status = response.status_code
                if not (status in RETRY_STATUSES or (idempotent and status in IDEMPOTENT_RETRY_STATUSES)):
                    raise failure
                retry.wait_or_raise(failure, parse_retry_after(response.headers.get("Retry-After")))
                continue
            if not idempotent:
                raise failure  # the write may have happened: the caller's intent protocol decides
            retry.wait_or_raise(failure, None)

    def _error(self, response: requests.Response) -> RemoteError:
        status = response.status_code
        try:
            err = (response.json() or {}).get("error") or {}
        except ValueError:
            err = {}
        code = str(err.get("code") or "") if isinstance(err, dict) else ""
        message = str(err.get("message") or "") if isinstance(err, dict) else ""
        message = message or f"Outlook answered HTTP {status}."
        kw = {"side": self.side, "status": status, "code": code}
        if status == 429:
            return _rate_limited(self.side, status, code, message, parse_retry_after(response.headers.get("Retry-After")))
        if status == 401:
            owner_post(connection_mark_needs_reauth, connection=self.connection,
                       message=f"Outlook refused the sign-in ({code or 'HTTP 401'}); reconnect.")
            return AuthError(message, **kw)
        if status == 403 and code == "ErrorAccessDenied":
            return self._consent_missing(response.request.path_url if response.request else "", **kw)
        if status == 410 or code.lower() in SYNC_STATE_CODES:
            return SyncStateGone(message, **kw)
        if status == 404:
            return NotFound(message, **kw)
        if status == 412:
            return PreconditionFailed(message, **kw)
        if status in (400, 422):
            return ValidationFailed(message, **kw)
        if status >= 500:
            return TransientError(message, **kw)
        return RemoteError(message, **kw)

    def _consent_missing(self, path: str, **kw) -> ConsentRequired:
        """Graph answers 403 ErrorAccessDenied when the token lacks the scope of the resource."""
        what = ("Calendars" if "/event" in path.lower() or "/calendar" in path.lower() else
                "Contacts" if "/contact" in path.lower() else "Tasks" if "/todo" in path.lower() else "Graph")
        message = CONSENT_MESSAGE.format(what=f"{what}.ReadWrite" if what != "Graph" else "a Graph scope")
        owner_post(connection_mark_needs_consent, connection=self.connection, message=message)
        return ConsentRequired(message, **kw)

    def request(self, method: str, path_or_url: str, *, params=None, json=None, headers=None) -> dict | None:
        response = self._send(method, self._url(path_or_url), params=params, json=json, headers=headers)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            return None

    def iter_pages(self, path_or_url: str, *, params=None, headers=None,
                   max_page_size: int | None = None) -> Iterator[GraphPage]:
        headers = dict(headers or {})
        if max_page_size:
            prefer = f"odata.maxpagesize={max_page_size}"
            headers["Prefer"] = f"{headers['Prefer']}, {prefer}" if headers.get("Prefer") else prefer
        url, query = self._url(path_or_url), params
        while True:
            body = self.request("GET", url, params=query, headers=headers) or {}
            next_link, delta_link = body.get("@odata.nextLink"), body.get("@odata.deltaLink")
            yield GraphPage(items=list(body.get("value") or []), next_link=next_link, delta_link=delta_link)
            if delta_link or not next_link:
                return
            url, query = next_link, None  # the next link carries its own query

    def batch(self, requests_: Sequence[BatchRequest]) -> list[BatchResponse]:
        results: dict[str, BatchResponse] = {}
        items = list(requests_)
        for start in range(0, len(items), GRAPH_BATCH_SIZE):
            self._batch_chunk(items[start : start + GRAPH_BATCH_SIZE], results)
        return [results[r.id] for r in items]

    @staticmethod
    def _batch_item(req: BatchRequest, pending_ids: set[str]) -> dict:
        item = {"id": req.id, "method": req.method.upper(), "url": req.url}
        headers = dict(req.headers or {})
        if req.body is not None:
            item["body"] = req.body
            headers.setdefault("Content-Type", "application/json")
        if headers:
            item["headers"] = headers
        depends = [d for d in req.depends_on if d in pending_ids]
        if depends:
            item["dependsOn"] = depends
        return item

    def _batch_chunk(self, chunk: list[BatchRequest], results: dict[str, BatchResponse]) -> None:
        pending = chunk
        retry = _Retry(self.sleep)
        while pending:
            ids = {r.id for r in pending}
            idempotent = all(r.method.upper() == "GET" for r in pending)
            response = self._send("POST", f"{self.base}/$batch", idempotent=idempotent,
                                  json={"requests": [self._batch_item(r, ids) for r in pending]})
            answers = {str(a.get("id")): a for a in (response.json() or {}).get("responses", [])}
            again, waits = [], []
            for req in pending:
                answer = answers.get(req.id) or {"status": 424, "body": None}
                status = int(answer.get("status") or 0)
                headers = {str(k): str(v) for k, v in (answer.get("headers") or {}).items()}
                body = answer.get("body") if isinstance(answer.get("body"), dict) else None
                results[req.id] = BatchResponse(id=req.id, status=status, headers=headers, body=body)
                error = (body or {}).get("error") if isinstance(body, dict) else None
                if status == 403 and isinstance(error, dict) and error.get("code") == "ErrorAccessDenied":
                    # No item of this kind can be written without the permission: stop, never
                    # one logged failure per item.
                    raise self._consent_missing(req.url, side=self.side, status=403, code="ErrorAccessDenied")
                if status in RETRY_STATUSES:
                    again.append(req)
                    retry_after = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
                    waits.append(parse_retry_after(retry_after) or 0)
            long_waits = [w for req, w in zip(again, waits, strict=True)
                          if w > MAX_RETRY_AFTER and results[req.id].status == 429]
            if long_waits:
                # Throttled for longer than a run waits (Graph's 10,000 requests per 10 minutes per
                # app and mailbox): the run stops; what this batch did write carries our key and
                # is found again by the next run (the intent protocol), never created twice.
                first = next(results[r.id] for r in again if results[r.id].status == 429)
                error = (first.body or {}).get("error") if isinstance(first.body, dict) else None
                message = str(error.get("message") or "") if isinstance(error, dict) else ""
                raise Throttled(message or "Too many requests.", side=self.side, status=429,
                                code=str(error.get("code") or "") if isinstance(error, dict) else "",
                                retry_after=max(long_waits))
            if not again or retry.attempt + 1 >= MAX_ATTEMPTS or max(waits) > MAX_RETRY_AFTER:
                return  # what is left stays as the item's own 429/503 answer
            # Items that failed only because an item they depend on was throttled go again too.
            again_ids = {r.id for r in again}
            again += [r for r in pending if results[r.id].status == 424 and set(r.depends_on) & again_ids
                      and r.id not in again_ids]
            self.sleep(backoff_delay(retry.attempt, max(waits)))
            retry.attempt += 1
            pending = [r for r in chunk if r.id in {x.id for x in again}]


# =============================================================================================
# Salesforce


def _restful_at(sf, version: str, path: str, *, params=None, method: str = "GET", **kwargs):
    """simple-salesforce's `restful` at another API version than the session's."""
    base = sf.base_url.rstrip("/").rsplit("/v", 1)[0]
    result = sf._call_salesforce(method, f"{base}/v{version}/{path}", name=path, params=params, **kwargs)
    if result.status_code == 204:
        return None
    body = sf.parse_result_to_json(result)
    return body if len(body) else None


class SalesforceClient:
    side = "salesforce"

    def __init__(self, connection: Connection, *, counter: RequestCounter | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        self.connection = connection
        self.counter = counter
        self.sleep = sleep
        self.session = make_session(side=self.side, counter=counter)
        self.session.hooks["response"].append(self._on_response)
        self._mine = threading.local()  # this thread's last response (its Retry-After)
        self._lock = threading.Lock()
        self._sf: simple_salesforce.Salesforce | None = None
        self._token = ""
        self._usage: tuple[int, int] | None = None
        self.slots = Slots(concurrency(self.side))

    @property
    def _last_response(self) -> requests.Response | None:
        return getattr(self._mine, "response", None)

    @_last_response.setter
    def _last_response(self, response: requests.Response | None) -> None:
        self._mine.response = response

    def __repr__(self) -> str:
        return f"<SalesforceClient connection={self.connection.pk}>"

    def _on_response(self, response, *args, **kwargs):
        self._last_response = response
        usage = response.headers.get("Sforce-Limit-Info", "")
        if "api-usage=" in usage:
            try:
                used, limit = usage.split("api-usage=", 1)[1].split(";")[0].split("/")
                figures = (int(used), int(limit))
            except ValueError:
                return response
            with self._lock:
                # Answers of parallel requests arrive in any order: a lower count is older news.
                news = figures != self._usage and (self._usage is None or figures[1] != self._usage[1]
                                                   or figures[0] >= self._usage[0])
                if news:
                    self._usage = figures
            if news:
                owner_post(self._record_usage, figures)  # membership is read from the database
        return response

    def _record_usage(self, figures: tuple[int, int]) -> None:
        salesforce_usage_record(
            organization_id=self.connection.membership.organization_id,
            sf_org_id=self.connection.sf_org_id, used=figures[0], limit=figures[1],
        )

    def prepare(self) -> None:
        """The session set up before requests fan out (so workers never wait for it)."""
        self._api()

    def _api(self) -> simple_salesforce.Salesforce:
        sf = self._sf
        if sf is None:
            sf = owner_call(self._build_api)  # the tokens are read from the database
        return sf

    def _build_api(self) -> simple_salesforce.Salesforce:
        if self._sf is None:
            self._token = tokens.salesforce_tokens(self.connection)["access_token"]
            self._sf = simple_salesforce.Salesforce(
                instance_url=self.connection.sf_instance_url, session_id=self._token,
                session=self.session, version=settings.SALESFORCE_API_VERSION,
            )
        return self._sf

    def _refresh(self, sf: simple_salesforce.Salesforce) -> None:
        owner_call(self._refresh_now, sf)

    def _refresh_now(self, sf: simple_salesforce.Salesforce) -> None:
        if self._sf is not sf:
            return  # another request's INVALID_SESSION_ID already brought a new session
        tokens.salesforce_refresh(self.connection, session=self.session, stale_access=self._token)
        self._sf = None  # rebuilt with the new token (simple-salesforce keeps it in its headers)

    def _call(self, fn: Callable[[simple_salesforce.Salesforce], object], *, idempotent: bool):
        retry = _Retry(self.sleep)
        refreshed = False
        while True:
            sf = self._api()
            self._last_response = None
            try:
                with self.slots.hold():
                    result = fn(sf)
            except requests.Timeout:
                failure = TransientError("Salesforce did not answer in time.", side=self.side, code="timeout")
                if not idempotent:
                    raise failure from None
                retry.wait_or_raise(failure, None)
                continue
            except requests.ConnectionError:
                failure = TransientError("The connection to Salesforce was lost.", side=self.side,
                                         code="connection_lost")
                if not idempotent:
                    raise failure from None
                retry.wait_or_raise(failure, None)
                continue
            except sfx.SalesforceError as exc:
                failure = self._error(exc)
                if failure.code == "INVALID_SESSION_ID" and not refreshed:
                    refreshed = True
                    self._refresh(sf)
                    continue
                if isinstance(failure, AuthError):
                    owner_post(
                        connection_mark_needs_reauth,
                        connection=self.connection,
                        message=f"Salesforce refused the session ({failure.code or 'HTTP 401'}); reconnect.",
                    )
                    raise failure from None
                status = failure.status or 0
                if not (status in RETRY_STATUSES or isinstance(failure, RateLimited)
                        or (idempotent and status in IDEMPOTENT_RETRY_STATUSES)):
                    raise failure from None
                headers = self._last_response.headers if self._last_response is not None else {}
                retry.wait_or_raise(failure, parse_retry_after(headers.get("Retry-After")))
                continue
            owner_post(connection_touch, connection=self.connection)
            return result

    def _error(self, exc: sfx.SalesforceError) -> RemoteError:
        status = getattr(exc, "status", 0) or 0
        content = exc.content if isinstance(getattr(exc, "content", None), list) else []
        first = content[0] if content and isinstance(content[0], dict) else {}
        code = str(first.get("errorCode") or "")
        message = str(first.get("message") or f"Salesforce answered HTTP {status}.")
        kw = {"side": self.side, "status": status, "code": code}
        if status == 429:
            headers = self._last_response.headers if self._last_response is not None else {}
            return _rate_limited(self.side, status, code, message, parse_retry_after(headers.get("Retry-After")))
        if status == 401:
            return AuthError(message, **kw)
        if code == "REQUEST_LIMIT_EXCEEDED" and message.startswith("ConcurrentRequests"):
            # Too many of the org's requests are long-running right now: this one was refused
            # before it ran, so it is safe to send again after a pause; the daily limit
            # ("TotalRequests Limit exceeded.") has the same code and ends the run instead.
            return _rate_limited(self.side, status, code, message, None)
        if code == "REQUEST_LIMIT_EXCEEDED":
            return RequestLimitExceeded(message, **kw)
        if status == 404:
            return NotFound(message, **kw)
        if status == 400:
            return ValidationFailed(message, fields=first.get("fields") or [], **kw)
        if status >= 500:
            return TransientError(message, **kw)
        return RemoteError(message, **kw)

    # --- queries ---------------------------------------------------------------------------------
    def query_pages(self, soql: str, *, include_deleted: bool = False) -> Iterator[list[dict]]:
        result = self._call(lambda sf: sf.query(soql, include_deleted=include_deleted), idempotent=True)
        while True:
            yield list(result.get("records") or [])
            next_url = result.get("nextRecordsUrl")
            if result.get("done", True) or not next_url:
                return
            result = self._call(
                lambda sf, url=next_url: sf.query_more(url, identifier_is_url=True, include_deleted=include_deleted),
                idempotent=True,
            )

    # --- single records ----------------------------------------------------------------------------
    def _rest(self, method: str, path: str, *, params=None, json=None, idempotent: bool | None = None,
              api_version: str | None = None):
        idempotent = method in IDEMPOTENT or method == "PATCH" if idempotent is None else idempotent
        kwargs = {"json": json} if json is not None else {}
        if api_version:
            return self._call(lambda sf: _restful_at(sf, api_version, path, params=params, method=method, **kwargs),
                              idempotent=idempotent)
        return self._call(lambda sf: sf.restful(path, params=params, method=method, **kwargs),
                          idempotent=idempotent)

    def get(self, sobject: str, record_id: str) -> dict:
        return self._rest("GET", f"sobjects/{sobject}/{record_id}") or {}

    def create(self, sobject: str, fields: dict) -> str:
        return (self._rest("POST", f"sobjects/{sobject}/", json=fields) or {}).get("id")

    def update(self, sobject: str, record_id: str, fields: dict) -> None:
        self._rest("PATCH", f"sobjects/{sobject}/{record_id}", json=fields)

    def delete(self, sobject: str, record_id: str) -> None:
        self._rest("DELETE", f"sobjects/{sobject}/{record_id}")

    def limits(self) -> dict:
        return self._rest("GET", "limits/") or {}

    def search(self, sosl: str) -> list[dict]:
        """SOSL `search/`: the searchRecords (callers escape the FIND terms, see sosl_escape)."""
        return list((self._rest("GET", "search/", params={"q": sosl}) or {}).get("searchRecords") or [])

    def describe(self, sobject: str) -> dict:
        return self._rest("GET", f"sobjects/{sobject}/describe/") or {}

    # --- sObject Collections (≤ 200 records per call) ----------------------------------------------
    @staticmethod
    def _results(rows) -> list[CollectionResult]:
        return [CollectionResult(id=r.get("id"), success=bool(r.get("success")), errors=list(r.get("errors") or []))
                for r in rows or []]

    def collection_create(self, sobject: str, records: list[dict], *, all_or_none: bool = False) -> list[CollectionResult]:
        out: list[CollectionResult] = []
        for start in range(0, len(records), SF_COLLECTION_SIZE):
            chunk = [{"attributes": {"type": sobject}, **r} for r in records[start : start + SF_COLLECTION_SIZE]]
            out += self._results(self._rest("POST", "composite/sobjects",
                                            json={"allOrNone": all_or_none, "records": chunk}))
        return out

    def collection_update(self, sobject: str, records_with_Id: list[dict], *,  # noqa: N803 (contract name)
                          all_or_none: bool = False, api_version: str | None = None) -> list[CollectionResult]:
        """`api_version`: send at another version than the pinned one (an event-series
        occurrence changes alone only below 58.0, see syncengine/engine/series.py)."""
        out: list[CollectionResult] = []
        for start in range(0, len(records_with_Id), SF_COLLECTION_SIZE):
            chunk = [{"attributes": {"type": sobject}, **r} for r in records_with_Id[start : start + SF_COLLECTION_SIZE]]
            out += self._results(self._rest("PATCH", "composite/sobjects", api_version=api_version,
                                            json={"allOrNone": all_or_none, "records": chunk}))
        return out

    def event_delete_onwards(self, record_id: str) -> None:
        """Delete an event-series occurrence and every later one of its series
        (REST `sobjects/Event/{id}/fromThisEventOnwards`)."""
        self._rest("DELETE", f"sobjects/Event/{record_id}/fromThisEventOnwards")

    def collection_delete(self, ids: list[str], *, all_or_none: bool = False) -> list[CollectionResult]:
        out: list[CollectionResult] = []
        for start in range(0, len(ids), SF_COLLECTION_SIZE):
            chunk = ids[start : start + SF_COLLECTION_SIZE]
            params = {"ids": ",".join(chunk), "allOrNone": "true" if all_or_none else "false"}
            out += self._results(self._rest("DELETE", "composite/sobjects", params=params))
        return out

    def collection_get(self, sobject: str, ids: list[str], fields: list[str]) -> list[dict | None]:
        out: list[dict | None] = []
        for start in range(0, len(ids), SF_COLLECTION_SIZE):
            chunk = ids[start : start + SF_COLLECTION_SIZE]
            # POST form of the retrieve: 200 ids do not fit in a URL.
            rows = self._rest("POST", f"composite/sobjects/{sobject}", json={"ids": chunk, "fields": list(fields)},
                              idempotent=True)
            out += list(rows or [])
        return out
