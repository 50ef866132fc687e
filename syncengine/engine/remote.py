"""Kind-specific remote operations on top of the generic Graph and Salesforce clients.

The clients (connections/clients.py) own HTTP, paging, batching, retries and
request counting; this module knows the paths, queries and bodies of each
kind. Writes are batched: Graph `$batch` (≤ 20 per request, chunked by the
client) and Salesforce sObject Collections (≤ 200, chunked by the client).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from .kinds import (
    CALENDAR,
    CONTACTS,
    KEY_PROPERTY_ID,
    SF_FIELDS,
    SF_KEY_FIELD,
    SOBJECT,
    TASKS,
    UNREADABLE_ROW,
    Window,
)

GRAPH_PAGE = 1000  # the largest `odata.maxpagesize` worth asking Outlook for
# Event bodies as text (the canonical Description is text; Graph converts its stored HTML
# when asked: learn.microsoft.com/graph/api/event-get, `Prefer: outlook.body-content-type`).
TEXT_BODY = {"Prefer": 'outlook.body-content-type="text"'}
KEY_EXPAND = f"singleValueExtendedProperties($filter=id eq '{KEY_PROPERTY_ID}')"


@dataclass(frozen=True)
class WriteResult:
    ok: bool
    id: str | None = None
    version: str = ""
    payload: dict | None = None
    status: int = 0
    error: str = ""


def _soql_datetime(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _error_text(body: dict | None, status: int) -> str:
    err = (body or {}).get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        return f"{status} {err.get('code', '')}: {err.get('message', '')}"[:300]
    return f"HTTP {status}"


class _Ahead:
    """A listing that worker threads started reading before the run asked for it
    (fetch.read_ahead); the run's request for the same listing gets those pages."""

    def __init__(self):
        self._listings: dict = {}

    def start(self, fanout, key, make) -> None:
        self._listings[key] = fanout.read_ahead(make)

    def take(self, key, make):
        reader = self._listings.pop(key, None)
        return reader if reader is not None else make()


class OutlookSide:
    def __init__(self, client, kind: str, *, container: str = ""):
        self.client = client
        self.kind = kind
        self.container = container
        self._ahead = _Ahead()

    # ------------------------------------------------------------ paths
    def ensure_container(self) -> str:
        """To Do tasks live in a list: the default one, looked up once and kept on the cursor."""
        if self.kind != TASKS or self.container:
            return self.container
        data = self.client.request("GET", "/me/todo/lists") or {}
        lists = [
            x
            for x in (data.get("value") if isinstance(data, dict) else None) or []
            if isinstance(x, dict) and isinstance(x.get("id"), str) and x["id"]
        ]
        chosen = next((x for x in lists if x.get("wellknownListName") == "defaultList"), None)
        chosen = chosen or (lists[0] if lists else None)
        if chosen is None:
            raise LookupError("no Microsoft To Do list")
        self.container = chosen["id"]
        return self.container

    def collection(self) -> str:
        if self.kind == CALENDAR:
            return "/me/events"
        if self.kind == CONTACTS:
            return "/me/contacts"
        return f"/me/todo/lists/{self.ensure_container()}/tasks"

    def item_path(self, item_id: str) -> str:
        return f"{self.collection()}/{item_id}"

    def _prefer(self) -> dict:
        return dict(TEXT_BODY) if self.kind == CALENDAR else {}

    def _expand(self) -> dict:
        if self.kind == TASKS:
            return {"$expand": "linkedResources"}
        return {"$expand": KEY_EXPAND}

    # ------------------------------------------------------------ reads
    def ahead(self, fanout, delta_link: str | None, window: Window | None) -> None:
        """Start reading the change feed on a worker (see fetch.read_ahead)."""
        key = (delta_link or "", window)
        self._ahead.start(fanout, key, lambda: self._delta_pages(delta_link, window))

    def delta_pages(self, delta_link: str | None, window: Window | None) -> Iterator:
        """Pages of the change feed; a fresh round when `delta_link` is empty."""
        key = (delta_link or "", window)
        return self._ahead.take(key, lambda: self._delta_pages(delta_link, window))

    def _delta_pages(self, delta_link: str | None, window: Window | None) -> Iterator:
        if delta_link:
            return self.client.iter_pages(
                delta_link, max_page_size=GRAPH_PAGE, headers=self._prefer()
            )
        if self.kind == CALENDAR:
            params = {
                "startDateTime": window.start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "endDateTime": window.end.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            return self.client.iter_pages(
                "/me/calendarView/delta",
                params=params,
                max_page_size=GRAPH_PAGE,
                headers=self._prefer(),
            )
        return self.client.iter_pages(
            f"{self.collection()}/delta", params=self._expand(), max_page_size=GRAPH_PAGE
        )

    def get_many(self, ids: Sequence[str]) -> dict[str, dict | None]:
        """Current payloads by id; None for an item that is gone (404)."""
        from connections.clients import BatchRequest

        out: dict[str, dict | None] = {}
        if not ids:
            return out
        q = "&".join(f"{k}={v}" for k, v in self._expand().items())
        reqs = [
            BatchRequest(
                id=str(i),
                method="GET",
                url=f"{self.item_path(x)}?{q}",
                headers=self._prefer() or None,
            )
            for i, x in enumerate(ids)
        ]
        for req, resp in zip(reqs, self.client.batch(reqs), strict=True):
            item_id = ids[int(req.id)]
            if resp.status == 200:
                # Whatever its shape: mapping turns an unreadable answer into an item error.
                out[item_id] = resp.body if resp.body is not None else {}
            elif resp.status in (404, 410):
                out[item_id] = None
            else:
                raise _remote_error("outlook", resp.status, resp.body)
        return out

    def find_by_keys(self, keys: Sequence[str]) -> dict[str, dict]:
        """Items carrying our link key, for resuming creates whose answer was lost."""
        from connections.clients import BatchRequest

        found: dict[str, dict] = {}
        if not keys:
            return found
        if self.kind == TASKS:
            wanted = set(keys)
            for page in self.client.iter_pages(
                self.collection(), params={"$expand": "linkedResources"}, max_page_size=GRAPH_PAGE
            ):
                for payload in page.items:
                    resources = payload.get("linkedResources") if isinstance(payload, dict) else ()
                    for res in resources if isinstance(resources, list) else ():
                        ext = res.get("externalId") if isinstance(res, dict) else None
                        ext = ext.lower() if isinstance(ext, str) else ""
                        if res.get("applicationName") == "LinkPoint" and ext in wanted:
                            found[ext] = payload
            return found
        reqs = []
        for i, key in enumerate(keys):
            flt = f"singleValueExtendedProperties/Any(ep: ep/id eq '{KEY_PROPERTY_ID}' and ep/value eq '{key}')"
            reqs.append(
                BatchRequest(
                    id=str(i),
                    method="GET",
                    url=f"{self.collection()}?$filter={flt}&$expand={KEY_EXPAND}",
                    headers=self._prefer() or None,
                )
            )
        for req, resp in zip(reqs, self.client.batch(reqs), strict=True):
            value = resp.body.get("value") if isinstance(resp.body, dict) else None
            if resp.status == 200 and isinstance(value, list) and value:
                found[keys[int(req.id)]] = value[0]
            elif resp.status >= 400 and resp.status != 404:
                raise _remote_error("outlook", resp.status, resp.body)
        return found

    def instances_many(self, ids: Sequence[str], window: Window) -> dict[str, list[dict] | None]:
        """Series masters' occurrences and exceptions in the window (``/instances``,
        one $batch per 20 masters; a longer answer's next pages are followed)."""
        from connections.clients import BatchRequest

        span = (
            f"startDateTime={window.start.strftime('%Y-%m-%dT%H:%M:%SZ')}"
            f"&endDateTime={window.end.strftime('%Y-%m-%dT%H:%M:%SZ')}"
        )
        reqs = [
            BatchRequest(
                id=str(i),
                method="GET",
                url=f"{self.item_path(x)}/instances?{span}&$top={GRAPH_PAGE}",
                headers=self._prefer() or None,
            )
            for i, x in enumerate(ids)
        ]
        out: dict[str, list[dict] | None] = {}
        for req, resp in zip(reqs, self.client.batch(reqs), strict=True):
            master = ids[int(req.id)]
            if resp.status in (404, 410):
                out[master] = None
                continue
            if resp.status != 200 or not isinstance(resp.body, dict):
                raise _remote_error("outlook", resp.status, resp.body)
            values = [v for v in resp.body.get("value") or () if isinstance(v, dict)]
            more = resp.body.get("@odata.nextLink")
            if isinstance(more, str) and more:
                for page in self.client.iter_pages(more, headers=self._prefer()):
                    values.extend(v for v in page.items if isinstance(v, dict))
            out[master] = values
        return out

    def html_bodies(self, ids: Sequence[str]) -> dict[str, dict]:
        """Events' bodies as stored (HTML) with their online-meeting flags, for a body write-back."""
        from connections.clients import BatchRequest

        reqs = [
            BatchRequest(
                id=str(i),
                method="GET",
                url=f"{self.item_path(x)}?$select=body,isOnlineMeeting,onlineMeeting",
            )
            for i, x in enumerate(ids)
        ]
        out: dict[str, dict] = {}
        for req, resp in zip(reqs, self.client.batch(reqs), strict=True):
            if resp.status == 200 and isinstance(resp.body, dict):
                out[ids[int(req.id)]] = resp.body
        return out

    # ------------------------------------------------------------ writes
    def _run(self, reqs) -> list:
        return self.client.batch(reqs) if reqs else []

    def create_many(self, bodies: Sequence[dict]) -> list[WriteResult]:
        from connections.clients import BatchRequest

        reqs = [
            BatchRequest(
                id=str(i),
                method="POST",
                url=self.collection(),
                body=b,
                headers={"Content-Type": "application/json"},
            )
            for i, b in enumerate(bodies)
        ]
        return [self._result(r) for r in self._run(reqs)]

    def update_many(self, changes: Sequence[tuple[str, str, dict]]) -> list[WriteResult]:
        """(id, changeKey we last saw, absolute body); conditional on that version."""
        from connections.clients import BatchRequest

        reqs = []
        for i, (item_id, version, body) in enumerate(changes):
            headers = {"Content-Type": "application/json"}
            if version:
                headers["If-Match"] = _etag(version)
            reqs.append(
                BatchRequest(
                    id=str(i),
                    method="PATCH",
                    url=self.item_path(item_id),
                    body=body,
                    headers=headers,
                )
            )
        return [self._result(r) for r in self._run(reqs)]

    def add_task_keys(self, pairs: Sequence[tuple[str, str]]) -> list[WriteResult]:
        """Attach our key to existing To Do tasks (a linkedResource per task)."""
        from connections.clients import BatchRequest

        reqs = [
            BatchRequest(
                id=str(i),
                method="POST",
                url=f"{self.item_path(task_id)}/linkedResources",
                body={
                    "applicationName": "LinkPoint",
                    "displayName": "Salesforce",
                    "externalId": key,
                },
                headers={"Content-Type": "application/json"},
            )
            for i, (task_id, key) in enumerate(pairs)
        ]
        return [
            WriteResult(ok=True, status=r.status) if 200 <= r.status < 300 else self._result(r)
            for r in self._run(reqs)
        ]

    def delete_many(self, targets: Sequence[tuple[str, str]]) -> list[WriteResult]:
        from connections.clients import BatchRequest

        reqs = []
        for i, (item_id, version) in enumerate(targets):
            headers = {"If-Match": _etag(version)} if version else None
            reqs.append(
                BatchRequest(
                    id=str(i), method="DELETE", url=self.item_path(item_id), headers=headers
                )
            )
        out = []
        for r in self._run(reqs):
            # Already gone is what we wanted.
            out.append(
                WriteResult(ok=True, status=r.status) if r.status in (404, 410) else self._result(r)
            )
        return out

    @staticmethod
    def _result(resp) -> WriteResult:
        body = resp.body if isinstance(resp.body, dict) else None
        if 200 <= resp.status < 300:
            body = body or {}
            item_id, version = body.get("id"), body.get("changeKey") or body.get("@odata.etag")
            if item_id is not None and not isinstance(item_id, str):
                # A write we cannot record: a create stays pending and is found by its key.
                return WriteResult(
                    ok=False, status=resp.status, error="answer with an unreadable id"
                )
            return WriteResult(
                ok=True,
                id=item_id,
                version=version if isinstance(version, str) else "",
                payload=body,
                status=resp.status,
            )
        return WriteResult(ok=False, status=resp.status, error=_error_text(body, resp.status))


def _sf_instant(value: str) -> datetime:
    text = value.replace("Z", "+00:00")
    if len(text) >= 5 and text[-5] in "+-" and text[-3] != ":":
        text = text[:-2] + ":" + text[-2:]
    return datetime.fromisoformat(text)


def _etag(version: str) -> str:
    return version if version.startswith("W/") or version.startswith('"') else f'W/"{version}"'


class SalesforceSide:
    def __init__(self, client, kind: str, *, owner_id: str | None):
        self.client = client
        self.kind = kind
        self.sobject = SOBJECT[kind]
        self.owner_id = owner_id
        self._ahead = _Ahead()

    def ahead(self, fanout, pages: Iterator) -> None:
        """Start reading a listing (full_pages / changed_pages) on a worker (fetch.read_ahead)."""
        self._ahead.start(fanout, getattr(pages, "listing", None), lambda: pages)

    def _select(self) -> str:
        # SOQL, not SQL: fixed field lists; every value below goes through _quote.
        return f"SELECT {', '.join(SF_FIELDS[self.kind])} FROM {self.sobject}"  # noqa: S608

    def _owner_clause(self, scope_all: bool) -> list[str]:
        if self.owner_id and not (self.kind == CONTACTS and scope_all):
            return [f"OwnerId = {_quote(self.owner_id)}"]
        return []

    def full_pages(self, *, window: Window | None, scope_all: bool = False) -> Iterator[list[dict]]:
        where = self._owner_clause(scope_all)
        if self.kind == CALENDAR and window is not None:
            where += [
                f"StartDateTime < {_soql_datetime(window.end)}",
                f"EndDateTime >= {_soql_datetime(window.start)}",
            ]
        soql = self._select() + (" WHERE " + " AND ".join(where) if where else "")
        return self._listing(soql, include_deleted=False)

    def changed_pages(self, since: datetime, *, scope_all: bool = False) -> Iterator[list[dict]]:
        # queryAll, so deletions come back with IsDeleted = true.
        where = self._owner_clause(scope_all) + [f"SystemModstamp >= {_soql_datetime(since)}"]
        soql = self._select() + " WHERE " + " AND ".join(where) + " ORDER BY SystemModstamp"
        return self._listing(soql, include_deleted=True)

    def _listing(self, soql: str, *, include_deleted: bool) -> Iterator[list[dict]]:
        key = (soql, include_deleted)
        return self._ahead.take(key, lambda: _Listing(self.client, soql, include_deleted))

    def series_pages(self, pattern_starts: Sequence[str]) -> Iterator[list[dict]]:
        """Every occurrence row of the member's series starting at these instants, deleted
        ones included (engine.series: a series is read whole, one query for many series)."""
        values = ", ".join(_soql_datetime(_sf_instant(v)) for v in pattern_starts)
        where = self._owner_clause(False) + [
            "IsRecurrence2 = true",
            f"Recurrence2PatternStartDate IN ({values})",
        ]
        return self.client.query_pages(
            self._select() + " WHERE " + " AND ".join(where), include_deleted=True
        )

    def get_many(self, ids: Sequence[str]) -> dict[str, dict | None]:
        out: dict[str, dict | None] = dict.fromkeys(ids)
        if not ids:
            return out
        # collection_get cannot follow Account.Name; a query can, and sees deleted rows too.
        for chunk in _chunks(list(ids), 200):
            soql = self._select() + f" WHERE Id IN ({', '.join(_quote(i) for i in chunk)})"
            unreadable = False
            for page in self.client.query_pages(soql, include_deleted=True):
                readable = list(_rows(page))
                unreadable = unreadable or len(readable) < len(page)
                for row in readable:
                    out[row["Id"]] = row
            if unreadable:
                # A record without a readable Id may be any of the unanswered ones:
                # none of them may count as deleted.
                for i in chunk:
                    if out.get(i) is None:
                        out[i] = UNREADABLE_ROW
        return out

    def find_by_keys(self, keys: Sequence[str]) -> dict[str, dict]:
        """Records carrying our keys, deleted ones included: a record our lost create
        made and the user then deleted is a deletion to honour, not a copy to redo."""
        found: dict[str, dict] = {}
        for chunk in _chunks(list(keys), 200):
            soql = (
                self._select() + f" WHERE {SF_KEY_FIELD} IN ({', '.join(_quote(k) for k in chunk)})"
            )
            for page in self.client.query_pages(soql, include_deleted=True):
                for row in _rows(page):
                    key = row.get(SF_KEY_FIELD)
                    key = key.lower() if isinstance(key, str) else ""
                    if key and (key not in found or found[key].get("IsDeleted") is True):
                        found[key] = row
        return found

    def account_ids(self, names: Iterable[str]) -> dict[str, str]:
        """Existing Accounts by name (case-insensitive), for a contact's company."""
        names = sorted({n for n in names if n})
        out: dict[str, str] = {}
        for chunk in _chunks(names, 200):
            names_in = ", ".join(_quote(n) for n in chunk)
            soql = f"SELECT Id, Name FROM Account WHERE Name IN ({names_in})"  # noqa: S608
            for page in self.client.query_pages(soql):
                for row in _rows(page):
                    if isinstance(row.get("Name"), str):
                        out.setdefault(row["Name"].casefold(), row["Id"])
        return out

    def contacts_by_email(self, emails: Iterable[str]) -> dict[str, str]:
        """The member's Contacts by any of their three e-mails (lower-cased) → Contact Id.

        One query per 200 addresses (a batch of events asks once). Where two
        Contacts share an address, the primary Email wins over the others,
        then the oldest Id, so the choice does not depend on row order.
        """
        emails = sorted({e.lower() for e in emails if e})
        found: dict[str, tuple[int, str]] = {}
        fields = ("Email", "LinkPoint_Email2__c", "LinkPoint_Email3__c")
        for chunk in _chunks(emails, 200):
            asked = set(chunk)
            values = ", ".join(_quote(e) for e in chunk)
            where = " OR ".join(f"{f} IN ({values})" for f in fields)
            owner = f"OwnerId = {_quote(self.owner_id)} AND " if self.owner_id else ""
            soql = (
                f"SELECT Id, {', '.join(fields)} FROM Contact "  # noqa: S608
                f"WHERE {owner}({where}) ORDER BY Id"
            )
            for page in self.client.query_pages(soql):
                for row in _rows(page):
                    for rank, name in enumerate(fields):
                        addr = row.get(name)
                        addr = addr.lower() if isinstance(addr, str) else ""
                        if addr in asked and (addr not in found or found[addr][0] > rank):
                            found[addr] = (rank, row["Id"])
        return {addr: cid for addr, (_, cid) in found.items()}

    def event_who_ids(self, ids: Sequence[str]) -> dict[str, str | None]:
        """Current WhoId of Events, so an update never replaces the user's choice."""
        out: dict[str, str | None] = {}
        for chunk in _chunks(sorted(set(ids)), 200):
            soql = (
                f"SELECT Id, WhoId FROM Event WHERE Id IN ({', '.join(_quote(i) for i in chunk)})"  # noqa: S608
            )
            for page in self.client.query_pages(soql):
                for row in _rows(page):
                    who = row.get("WhoId")
                    out[row["Id"]] = who if isinstance(who, str) else None
        return out

    def modstamps(self, ids: Sequence[str]) -> dict[str, str]:
        """Current SystemModstamp by Id, one query per 200 ids; a deleted record is absent.

        Asked right before updates and deletes: sObject Collections have no
        If-Match, so this is how a write learns the record moved since we read it.
        """
        out: dict[str, str] = {}
        for chunk in _chunks(sorted(set(ids)), 200):
            soql = (
                f"SELECT Id, SystemModstamp FROM {self.sobject} "  # noqa: S608
                f"WHERE Id IN ({', '.join(_quote(i) for i in chunk)})"
            )
            for page in self.client.query_pages(soql):
                for row in _rows(page):
                    stamp = row.get("SystemModstamp")
                    out[row["Id"]] = stamp if isinstance(stamp, str) else ""
        return out

    def create_many(self, bodies: Sequence[dict]) -> list[WriteResult]:
        if not bodies:
            return []
        return [_sf_result(r) for r in self.client.collection_create(self.sobject, list(bodies))]

    def update_many(self, bodies: Sequence[dict], *, api_version: str | None = None) -> list[WriteResult]:
        if not bodies:
            return []
        kw = {"api_version": api_version} if api_version else {}
        return [_sf_result(r) for r in self.client.collection_update(self.sobject, list(bodies), **kw)]

    def delete_onwards(self, ids: Sequence[str]) -> list[WriteResult]:
        """Each id: that event-series occurrence and every later one of its series."""
        from connections import errors

        out = []
        for record_id in ids:
            try:
                self.client.event_delete_onwards(record_id)
                out.append(WriteResult(ok=True, id=record_id))
            except errors.NotFound:
                out.append(WriteResult(ok=True, id=record_id))  # already gone
            except errors.ValidationFailed as exc:
                out.append(WriteResult(ok=False, id=record_id, error=str(exc)[:300]))
        return out

    def delete_many(self, ids: Sequence[str]) -> list[WriteResult]:
        if not ids:
            return []
        out = []
        for r in self.client.collection_delete(list(ids)):
            codes = {str(e.get("statusCode")) for e in r.errors or () if isinstance(e, dict)}
            # A record already deleted is what we wanted.
            gone = bool(codes & {"ENTITY_IS_DELETED", "INVALID_CROSS_REFERENCE_KEY", "NOT_FOUND"})
            out.append(WriteResult(ok=True, id=r.id) if gone else _sf_result(r))
        return out


class _Listing:
    """A query's pages, sent for when first iterated; `listing` names the query."""

    def __init__(self, client, soql: str, include_deleted: bool):
        self.listing = (soql, include_deleted)
        self._pages = None
        self._client = client

    def __iter__(self):
        return self

    def __next__(self) -> list[dict]:
        if self._pages is None:
            soql, include_deleted = self.listing
            self._pages = self._client.query_pages(soql, include_deleted=include_deleted)
        return next(self._pages)


def _sf_result(r) -> WriteResult:
    if r.success:
        if r.id is not None and not isinstance(r.id, str):
            return WriteResult(ok=False, error="answer with an unreadable id")
        return WriteResult(ok=True, id=r.id)
    msg = "; ".join(
        f"{e.get('statusCode', '')}: {e.get('message', '')}" if isinstance(e, dict) else str(e)
        for e in r.errors or ()
    )
    return WriteResult(ok=False, id=r.id, error=msg[:300] or "failed")


def _rows(page: list) -> Iterator[dict]:
    """A query page's records that carry a readable Id. Callers that must account
    for every record (reads of items) map the page themselves instead."""
    for row in page:
        if isinstance(row, dict) and isinstance(row.get("Id"), str) and row["Id"]:
            yield row


def _chunks(seq: list, n: int) -> Iterator[list]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


def _remote_error(side: str, status: int, body: dict | None):
    from connections import errors

    code = ""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        code = body["error"].get("code", "")
    cls = (
        errors.AuthError
        if status == 401
        else errors.TransientError
        if status >= 500 or status == 429
        else errors.RemoteError
    )
    exc = cls(_error_text(body, status))
    for attr, value in (
        ("side", side),
        ("status", status),
        ("code", code),
        ("message", _error_text(body, status)),
    ):
        with contextlib.suppress(AttributeError):
            setattr(exc, attr, value)
    return exc
