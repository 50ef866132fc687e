"""Microsoft Graph v1.0 for a sandbox mailbox: /me, events, calendarView (+delta), contacts, To Do, $batch."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import re
import sys
import uuid
from dataclasses import dataclass
from functools import wraps

from django.core.handlers.wsgi import WSGIRequest
from django.db import transaction
from django.http import HttpResponse
from django.urls import Resolver404, get_resolver
from django.views.decorators.csrf import csrf_exempt

from sandbox import limits
from sandbox.faults import graph_error
from sandbox.jsonbody import BadJson, read_json

from . import feeds, services
from .models import AccessToken, Item, ItemKind, Mailbox
from .resources import (
    GraphError,
    View,
    bad_request,
    contact_json,
    etag,
    event_json,
    list_json,
    series_occurrences,
    task_json,
)
from .wire import (
    id_is_wellformed,
    id_master_bytes,
    id_occurrence_parts,
    now,
    parse_query_instant,
    zone,
)

logger = logging.getLogger("linkpoint.sandbox")

DEFAULT_PAGE = 10
MAX_PAGE = 1000
DELTA_DEFAULT_PAGE = 100  # not documented; a modest page like Exchange's
NOT_FOUND = "The specified object was not found in the store."


@dataclass
class Call:
    request: WSGIRequest
    mailbox: Mailbox
    base: str  # https://graph.sandbox.test/v1.0 (or the dev server's /sandbox/graph/v1.0)
    prefer: dict[str, str]
    view: View
    applied: list[str]


def _base(request) -> str:
    scheme = request.META.get("wsgi.url_scheme", "https")
    host = request.META.get("HTTP_HOST") or request.META.get("SERVER_NAME", "graph.sandbox.test")
    path = request.path
    cut = path.find("/v1.0")
    return f"{scheme}://{host}{path[:cut + 5] if cut >= 0 else '/v1.0'}"


_PREF = re.compile(r'([\w.\-]+)\s*=\s*(?:"([^"]*)"|([^,;\s]+))')


def _parse_prefer(header: str) -> dict[str, str]:
    return {m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3)) for m in _PREF.finditer(header)}


def _view_for(request, base: str, prefer: dict, applied: list[str]) -> View:
    view = View(base=base)
    body_type = (prefer.get("outlook.body-content-type") or "").lower()
    if body_type in ("text", "html"):
        view.body_type = body_type
        applied.append(f'outlook.body-content-type="{body_type}"')
    if (prefer.get("idtype") or "").lower() == "immutableid":
        # Our ids never change when an item moves, so they already are immutable ids
        # (learn.microsoft.com/graph/outlook-immutable-id: the service echoes the preference).
        applied.append('IdType="ImmutableId"')
    tz_name = prefer.get("outlook.timezone")
    if tz_name:
        tz = zone(tz_name)
        if tz is None:
            raise bad_request(
                "TimeZoneNotSupportedException",
                f"A valid TimeZone value must be specified. The following TimeZone value is not supported: '{tz_name}'.",
            )
        view.tz_name, view.tz = tz_name, tz
        applied.append(f'outlook.timezone="{tz_name}"')
    select = request.GET.get("$select")
    if select:
        view.select = frozenset(s.strip() for s in select.split(",") if s.strip())
    expand = request.GET.get("$expand", "")
    if re.search(r"singleValueExtendedProperties", expand, re.I):
        ids = re.findall(r"id\s+eq\s+'((?:[^']|'')*)'", expand)
        if not ids:
            raise bad_request("ErrorInvalidUrlQuery",
                              "The $expand of singleValueExtendedProperties needs a $filter on id.")
        view.expand_ext = tuple(i.replace("''", "'") for i in ids)
    if re.search(r"linkedResources", expand, re.I):
        view.expand_linked = True
    return view


def _authenticate(request) -> Mailbox:
    return _token_row(request).mailbox


def _token_row(request) -> AccessToken:
    auth = request.META.get("HTTP_AUTHORIZATION", "")
    if not auth.lower().startswith("bearer ") or not auth[7:].strip():
        raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.",
                         {"WWW-Authenticate": 'Bearer realm="", error="invalid_token"'})
    row = next(iter(AccessToken.objects.select_related("mailbox")
                    .filter(token_hash=services.token_hash(auth[7:].strip()))[:1]), None)
    if row is None or row.revoked:
        raise GraphError(401, "InvalidAuthenticationToken", "IDX14100: JWT is not well formed.",
                         {"WWW-Authenticate": 'Bearer realm="", error="invalid_token"'})
    if row.expires_at <= now():
        raise GraphError(401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.",
                         {"WWW-Authenticate": 'Bearer realm="", error="invalid_token", '
                                              'error_description="The access token has expired"'})
    return row


# Delegated permissions per resource (learn.microsoft.com/graph/permissions-reference; each
# API page's "Permissions" table): reads take .Read or .ReadWrite, writes .ReadWrite. A token
# without one is refused 403 ErrorAccessDenied, as Graph does.
_PERMISSION_FAMILIES = (
    (re.compile(r"^/v1\.0/me/(calendar/)?(events|calendarview)", re.I), "Calendars"),
    (re.compile(r"^/v1\.0/me/(contacts|contactfolders)", re.I), "Contacts"),
    (re.compile(r"^/v1\.0/me/todo", re.I), "Tasks"),
)


def _check_scopes(request, scopes: set[str]) -> None:
    path = request.path[request.path.find("/v1.0"):] if "/v1.0" in request.path else request.path
    for pattern, family in _PERMISSION_FAMILIES:
        if pattern.match(path):
            wanted = {f"{family}.ReadWrite"} if request.method not in ("GET", "HEAD") else {
                f"{family}.Read", f"{family}.ReadWrite"}
            if not wanted & scopes:
                raise GraphError(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
            return


def _throttle(client_id: str, mailbox: Mailbox) -> None:
    """Outlook's budget per app ID and mailbox: 10,000 requests per 10 minutes, then 429 +
    Retry-After (sandbox/limits.py; shared by every process through the cache)."""
    wait = limits.graph_request_budget(client_id, str(mailbox.object_id))
    if wait is not None:
        raise GraphError(429, limits.GRAPH_CODE, limits.GRAPH_MESSAGE, {"Retry-After": str(wait)})


def _json(body, status: int = 200, headers: dict | None = None) -> HttpResponse:
    response = HttpResponse(json.dumps(body), status=status,
                            content_type="application/json; odata.metadata=minimal; odata.streaming=true; "
                                         "IEEE754Compatible=false; charset=utf-8")
    for key, value in (headers or {}).items():
        response[key] = value
    return response


def _client_request_id(request) -> str:
    return request.META.get("HTTP_CLIENT_REQUEST_ID", "")


def _ids(request, response: HttpResponse) -> HttpResponse:
    """Every Graph answer names itself: `request-id`, and `client-request-id` echoing the caller's
    (learn.microsoft.com/graph/best-practices-concept "Reliability and support")."""
    request_id = str(uuid.uuid4())
    response.setdefault("request-id", request_id)
    response.setdefault("client-request-id", _client_request_id(request) or request_id)
    return response


def graph_api(func):
    @csrf_exempt
    @wraps(func)
    def wrapper(request, *args, **kwargs):
        try:
            # An inner $batch request arrives with the mailbox its batch authenticated.
            mailbox = getattr(request, "sandbox_mailbox", None)
            if mailbox is None:
                row = _token_row(request)
                mailbox, scopes, client_id = row.mailbox, set(row.scopes.split()), row.client_id
            else:  # an inner $batch request: its batch authenticated the token
                scopes, client_id = request.sandbox_scopes, request.sandbox_client_id
            _throttle(client_id, mailbox)  # a refused request still counts against the budget
            base = _base(request)
            prefer = _parse_prefer(request.META.get("HTTP_PREFER", ""))
            applied: list[str] = []
            _check_scopes(request, scopes)
            call = Call(request, mailbox, base, prefer, _view_for(request, base, prefer, applied), applied)
            # The request's writes stand or fall together: an error (ours or a bug) leaves the
            # mailbox as it was, never half an item that answers 500 but stays.
            with transaction.atomic(using="sandbox"):
                response = func(call, *args, **kwargs)
            if applied:
                response["Preference-Applied"] = ", ".join(applied)
            return _ids(request, response)
        except GraphError as exc:
            return graph_error(exc.status, exc.code, exc.message, exc.headers, _client_request_id(request))
        except Exception:
            logger.exception("sandbox Graph: %s %s failed", request.method, request.path)
            return graph_error(500, "InternalServerError", "An internal server error occurred.",
                               client_request_id=_client_request_id(request))

    return wrapper


def _body(call: Call) -> dict:
    try:
        data = read_json(call.request)
    except BadJson as exc:
        if exc.too_large:
            raise GraphError(413, "RequestEntityTooLarge", exc.message) from None
        raise bad_request("BadRequest", "Unable to read JSON request payload. Please ensure Content-Type header "
                                        f"is set and payload is of valid JSON format. {exc.message}") from None
    if data is None and (call.request.body or b"").strip():
        raise bad_request("BadRequest", "A JSON object is expected, not null.")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise bad_request("BadRequest", "A JSON object is expected.")
    return data


def _page_size(call: Call, default: int = DEFAULT_PAGE) -> int:
    top = call.request.GET.get("$top")
    maxpage = call.prefer.get("odata.maxpagesize")
    try:
        if top is not None:
            return max(1, min(int(top), MAX_PAGE))
        if maxpage is not None:
            size = max(1, min(int(maxpage), MAX_PAGE))
            call.applied.append(f"odata.maxpagesize={size}")
            return size
    except ValueError as exc:
        raise bad_request("BadRequest", "Invalid page size.") from exc
    return default


def _check_if_match(call: Call, change_key: str) -> None:
    header = call.request.META.get("HTTP_IF_MATCH")
    if not header or header.strip() == "*":
        return
    wanted = {v.strip().removeprefix("W/").strip('"') for v in header.split(",")}
    if change_key not in wanted:
        # learn.microsoft.com/graph/errors: 412 Precondition Failed; Outlook's code for a stale
        # If-Match is ErrorIrresolvableConflict.
        raise GraphError(412, "ErrorIrresolvableConflict",
                         "The send or update operation could not be performed because the change key passed "
                         "in the request does not match the current change key for the item.")


def _item_or_error(call: Call, graph_id: str, kind: str, parent: Item | None = None) -> Item:
    if not id_is_wellformed(graph_id):
        raise bad_request("ErrorInvalidIdMalformed", "Id is malformed.")
    rows = Item.objects.select_related("mailbox", "parent").filter(
        mailbox=call.mailbox, kind=kind, graph_id=graph_id, deleted=False)
    if parent is not None:
        rows = rows.filter(parent=parent)
    # graph_id is unique: no ORDER BY (first() adds one, and it costs on every request).
    item = next(iter(rows[:1]), None)
    if item is None:
        raise GraphError(404, "ErrorItemNotFound", NOT_FOUND)
    return item


_EXT_FILTER = re.compile(
    r"^\s*singleValueExtendedProperties/any\(\s*(\w+)\s*:\s*\1/id\s+eq\s+'((?:[^']|'')*)'\s+and\s+"
    r"\1/value\s+eq\s+'((?:[^']|'')*)'\s*\)\s*$", re.I)
_EQ_FILTER = re.compile(r"^\s*(\w+)\s+eq\s+'((?:[^']|'')*)'\s*$")
# OData comparison on a DateTimeOffset (learn.microsoft.com/graph/filter-query-parameter):
# `lastModifiedDateTime ge 2024-01-01T00:00:00Z`, clauses joined by `and`.
_TIME_FILTER = re.compile(r"^\s*(lastModifiedDateTime|createdDateTime)\s+(eq|ne|gt|ge|lt|le)\s+(\S+)\s*$", re.I)
_TIME_COLUMN = {"lastmodifieddatetime": "modified", "createddatetime": "created"}
_TIME_OP = {"gt": "gt", "ge": "gte", "lt": "lt", "le": "lte", "eq": "exact"}


def _time_filter(rows, flt: str):
    """Rows narrowed by every `and`-joined time comparison, or None when `flt` is not one."""
    for clause in re.split(r"\s+and\s+", flt.strip(), flags=re.I):
        m = _TIME_FILTER.match(clause)
        instant = parse_query_instant(m.group(3)) if m else None
        if instant is None:
            return None
        column, op = _TIME_COLUMN[m.group(1).lower()], m.group(2).lower()
        rows = rows.exclude(**{column: instant}) if op == "ne" else rows.filter(
            **{f"{column}__{_TIME_OP[op]}": instant})
    return rows


def _listing(call: Call, rows, render, context: str) -> HttpResponse:
    """A paged collection: $filter (extended property or `field eq 'x'`), $top/$skip or maxpagesize."""
    flt = call.request.GET.get("$filter")
    python_filter = None
    if flt:
        m = _EXT_FILTER.match(flt)
        if m:
            rows = rows.filter(extended_properties__prop_id=m.group(2).replace("''", "'"),
                               extended_properties__value_ci=m.group(3).replace("''", "'").lower())
        elif _time_filter(rows, flt) is not None:
            rows = _time_filter(rows, flt)
        elif _EQ_FILTER.match(flt):
            field, value = _EQ_FILTER.match(flt).groups()
            python_filter = (field, value.replace("''", "'"))
        else:
            raise bad_request("ErrorInvalidUrlQueryFilter", "The query filter contains one or more invalid nodes.")
    size = _page_size(call)
    try:
        skip = max(0, int(call.request.GET.get("$skip", "0")))
    except ValueError as exc:
        raise bad_request("BadRequest", "Invalid $skip.") from exc
    rows = rows.order_by("id")
    if python_filter:
        items = [v for v in (render(r) for r in rows) if str(v.get(python_filter[0])) == python_filter[1]]
        page, more = items[skip:skip + size], len(items) > skip + size
    else:
        chunk = list(rows[skip:skip + size + 1])
        page, more = [render(r) for r in chunk[:size]], len(chunk) > size
    body = {"@odata.context": f"{call.base}/$metadata#{context}", "value": page}
    if more:
        query = call.request.GET.copy()
        query["$skip"] = str(skip + size)
        if "$top" in query:
            query["$top"] = str(size)
        rel = call.request.path[call.request.path.find("/v1.0") + 5:]
        body["@odata.nextLink"] = f"{call.base}{rel}?{query.urlencode(safe='$/(),')}"
    return _json(body)


def _ctx(call: Call, suffix: str) -> str:
    return f"users('{call.mailbox.object_id}')/{suffix}"


# --- /me --------------------------------------------------------------------------------------

@graph_api
def me(call: Call):
    mb = call.mailbox
    parts = (mb.display_name or "").split(" ", 1)
    return _json({
        "@odata.context": f"{call.base}/$metadata#users/$entity",
        "businessPhones": [], "displayName": mb.display_name, "givenName": parts[0] or None,
        "jobTitle": None, "mail": mb.email, "mobilePhone": None, "officeLocation": None,
        "preferredLanguage": "en-US", "surname": parts[1] if len(parts) > 1 else None,
        "userPrincipalName": mb.email, "id": str(mb.object_id),
    })


# --- events -------------------------------------------------------------------------------------

def _event_target(call: Call, graph_id: str):
    """A stored event (single, master, exception) or a generated occurrence (master, original start)."""
    if not id_is_wellformed(graph_id):
        raise bad_request("ErrorInvalidIdMalformed", "Id is malformed.")
    row = next(iter(Item.objects.select_related("mailbox", "parent").filter(
        mailbox=call.mailbox, kind=ItemKind.EVENT, graph_id=graph_id)[:1]), None)
    if row is not None:
        if row.deleted:
            raise GraphError(404, "ErrorItemNotFound", NOT_FOUND)
        return row, None
    parts = id_occurrence_parts(graph_id)
    if parts is None:
        raise GraphError(404, "ErrorItemNotFound", NOT_FOUND)
    for master in Item.objects.select_related("mailbox").filter(
        mailbox=call.mailbox, kind=ItemKind.EVENT, event_type="seriesMaster", deleted=False
    ):
        if id_master_bytes(master.graph_id) == parts[0]:
            window = (parts[1], parts[1] + dt.timedelta(seconds=1))
            for span in series_occurrences(master, window):
                if span[0] == parts[1]:
                    return master, span
    raise GraphError(404, "ErrorItemNotFound", NOT_FOUND)


@graph_api
def events(call: Call):
    if call.request.method == "POST":
        item, created = services.event_create(call.mailbox, _body(call))
        return _json({"@odata.context": f"{call.base}/$metadata#{_ctx(call, 'events')}/$entity",
                      **event_json(item, call.view)}, 201, {"ETag": etag(item.change_key)})
    if call.request.method != "GET":
        raise GraphError(405, "ErrorInvalidRequest", "The HTTP method is not supported on this resource.")
    rows = Item.objects.select_related("mailbox", "parent").filter(
        mailbox=call.mailbox, kind=ItemKind.EVENT, deleted=False, event_type__in=["singleInstance", "seriesMaster"])
    return _listing(call, rows, lambda r: event_json(r, call.view), _ctx(call, "events"))


@graph_api
def event(call: Call, graph_id: str):
    target, span = _event_target(call, graph_id)
    method = call.request.method
    if method == "GET":
        body = event_json(target, call.view, occurrence=span)
        return _json({"@odata.context": f"{call.base}/$metadata#{_ctx(call, 'events')}/$entity", **body})
    _check_if_match(call, target.change_key)
    if method == "PATCH":
        if span is not None:
            item = services.occurrence_update(target, span[0], _body(call))
        else:
            item = services.event_update(target, _body(call))
        return _json({"@odata.context": f"{call.base}/$metadata#{_ctx(call, 'events')}/$entity",
                      **event_json(item, call.view)}, 200, {"ETag": etag(item.change_key)})
    if method == "DELETE":
        if span is not None:
            services.occurrence_delete(target, span[0])
        else:
            services.item_delete(target)
        return HttpResponse(status=204)
    raise GraphError(405, "ErrorInvalidRequest", "The HTTP method is not supported on this resource.")


def _window(call: Call) -> tuple[dt.datetime, dt.datetime]:
    raw_start = call.request.GET.get("startDateTime") or call.request.GET.get("startdatetime")
    raw_end = call.request.GET.get("endDateTime") or call.request.GET.get("enddatetime")
    if not raw_start or not raw_end:
        raise bad_request("ErrorInvalidParameter", "This request requires a time window specified by the query "
                                                   "string parameters StartDateTime and EndDateTime.")
    start, end = parse_query_instant(raw_start), parse_query_instant(raw_end)
    if start is None:
        raise bad_request("ErrorInvalidParameter", "The value of parameter 'StartDateTime' is invalid.")
    if end is None:
        raise bad_request("ErrorInvalidParameter", "The value of parameter 'EndDateTime' is invalid.")
    return start, end


@graph_api
def instances(call: Call, graph_id: str):
    target, span = _event_target(call, graph_id)
    window = _window(call)
    values = [e for e in feeds.calendar_view(call.mailbox, window, call.view)
              if e.get("seriesMasterId") == target.graph_id]
    return _json({"@odata.context": f"{call.base}/$metadata#{_ctx(call, 'events')}", "value": values})


@graph_api
def calendar_view(call: Call):
    window = _window(call)
    values = feeds.calendar_view(call.mailbox, window, call.view)
    size = _page_size(call)
    skip = int(call.request.GET.get("$skip", "0") or 0)
    body = {"@odata.context": f"{call.base}/$metadata#{_ctx(call, 'calendarView')}",
            "value": values[skip:skip + size]}
    if len(values) > skip + size:
        query = call.request.GET.copy()
        query["$skip"] = str(skip + size)
        body["@odata.nextLink"] = f"{call.base}/me/calendarView?{query.urlencode()}"
    return _json(body)


# --- delta ----------------------------------------------------------------------------------------

def _delta(call: Call, *, kind: str, parent: Item | None, path: str, context: str, window_required: bool):
    params = call.request.GET
    token = params.get("$skiptoken") or params.get("$deltatoken")
    parent_id = parent.pk if parent else None
    if token:
        state = feeds.token_decode(token, mailbox=call.mailbox, kind=kind, parent_id=parent_id)
        if "$deltatoken" in params:
            state = feeds.delta_round_start(state, call.mailbox)
    else:
        window = _window(call) if window_required else None
        state = feeds.initial_state(mailbox=call.mailbox, kind=kind, parent_id=parent_id, window=window)
    page = feeds.delta_page(call.mailbox, state, _page_size(call, DELTA_DEFAULT_PAGE), call.view)
    body = {"@odata.context": f"{call.base}/$metadata#{context}", "value": page.values}
    link = f"{call.base}{path}?"
    if page.done:
        body["@odata.deltaLink"] = link + "$deltatoken=" + feeds.token_encode(page.state)
    else:
        body["@odata.nextLink"] = link + "$skiptoken=" + feeds.token_encode(page.state)
    return _json(body)


@graph_api
def calendar_view_delta(call: Call):
    return _delta(call, kind=ItemKind.EVENT, parent=None, path="/me/calendarView/delta",
                  context="Collection(event)", window_required=True)


@graph_api
def contacts_delta(call: Call, folder_id: str | None = None):
    return _delta(call, kind=ItemKind.CONTACT, parent=None, path=call.request.path[call.request.path.find("/v1.0") + 5:],
                  context="Collection(contact)", window_required=False)


@graph_api
def tasks_delta(call: Call, list_id: str):
    todo_list = _item_or_error(call, list_id, ItemKind.TODO_LIST)
    return _delta(call, kind=ItemKind.TODO_TASK, parent=todo_list, path=f"/me/todo/lists/{list_id}/tasks/delta",
                  context="Collection(todoTask)", window_required=False)


# --- contacts -------------------------------------------------------------------------------------

@graph_api
def contacts(call: Call):
    if call.request.method == "POST":
        item = services.contact_create(call.mailbox, _body(call))
        return _json({"@odata.context": f"{call.base}/$metadata#{_ctx(call, 'contacts')}/$entity",
                      **contact_json(item, call.view)}, 201, {"ETag": etag(item.change_key)})
    rows = Item.objects.select_related("mailbox").filter(mailbox=call.mailbox, kind=ItemKind.CONTACT, deleted=False)
    return _listing(call, rows, lambda r: contact_json(r, call.view), _ctx(call, "contacts"))


def _item_endpoint(call: Call, item: Item, render, context: str):
    method = call.request.method
    if method == "GET":
        return _json({"@odata.context": f"{call.base}/$metadata#{context}/$entity", **render(item)})
    _check_if_match(call, item.change_key)
    if method == "PATCH":
        item = services.item_update(item, _body(call))
        return _json({"@odata.context": f"{call.base}/$metadata#{context}/$entity", **render(item)}, 200,
                     {"ETag": etag(item.change_key)})
    if method == "DELETE":
        services.item_delete(item)
        return HttpResponse(status=204)
    raise GraphError(405, "ErrorInvalidRequest", "The HTTP method is not supported on this resource.")


@graph_api
def contact(call: Call, graph_id: str):
    item = _item_or_error(call, graph_id, ItemKind.CONTACT)
    return _item_endpoint(call, item, lambda i: contact_json(i, call.view), _ctx(call, "contacts"))


# --- To Do ------------------------------------------------------------------------------------------

@graph_api
def todo_lists(call: Call):
    if call.request.method == "POST":
        item = services.todo_list_create(call.mailbox, _body(call))
        return _json({"@odata.context": f"{call.base}/$metadata#{_ctx(call, 'todo/lists')}/$entity",
                      **list_json(item, call.view)}, 201)
    services.todo_default_list(call.mailbox)
    rows = Item.objects.filter(mailbox=call.mailbox, kind=ItemKind.TODO_LIST, deleted=False)
    return _listing(call, rows, lambda r: list_json(r, call.view), _ctx(call, "todo/lists"))


@graph_api
def todo_list(call: Call, list_id: str):
    item = _item_or_error(call, list_id, ItemKind.TODO_LIST)
    return _item_endpoint(call, item, lambda i: list_json(i, call.view), _ctx(call, "todo/lists"))


@graph_api
def todo_tasks(call: Call, list_id: str):
    todo_list_item = _item_or_error(call, list_id, ItemKind.TODO_LIST)
    context = _ctx(call, f"todo/lists('{list_id}')/tasks")
    if call.request.method == "POST":
        call.view.expand_linked = True  # create echoes what was sent, linkedResources included
        item = services.todo_task_create(call.mailbox, _body(call), todo_list_item)
        return _json({"@odata.context": f"{call.base}/$metadata#{context}/$entity",
                      **task_json(item, call.view)}, 201)
    rows = Item.objects.filter(mailbox=call.mailbox, kind=ItemKind.TODO_TASK, deleted=False, parent=todo_list_item)
    return _listing(call, rows, lambda r: task_json(r, call.view), context)


@graph_api
def todo_task(call: Call, list_id: str, task_id: str):
    todo_list_item = _item_or_error(call, list_id, ItemKind.TODO_LIST)
    item = _item_or_error(call, task_id, ItemKind.TODO_TASK, parent=todo_list_item)
    return _item_endpoint(call, item, lambda i: task_json(i, call.view),
                          _ctx(call, f"todo/lists('{list_id}')/tasks"))


@graph_api
def linked_resources(call: Call, list_id: str, task_id: str):
    todo_list_item = _item_or_error(call, list_id, ItemKind.TODO_LIST)
    item = _item_or_error(call, task_id, ItemKind.TODO_TASK, parent=todo_list_item)
    context = f"{call.base}/$metadata#{_ctx(call, f'todo/lists({list_id!r})/tasks({task_id!r})/linkedResources')}"
    if call.request.method == "POST":
        res = services.linked_resource_add(item, _body(call))
        return _json({"@odata.context": f"{context}/$entity", **res}, 201)
    return _json({"@odata.context": context, "value": item.data.get("linkedResources") or []})


# --- $batch -------------------------------------------------------------------------------------------

MAX_BATCH = 20


def _inner_request(outer, method: str, url: str, headers: dict, body) -> WSGIRequest:
    path, _, query = url.partition("?")
    path = "/" + path.lstrip("/")
    if not path.lower().startswith("/v1.0/"):
        path = "/v1.0" + path
    payload = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    environ = {
        "REQUEST_METHOD": method.upper(), "PATH_INFO": path, "QUERY_STRING": query, "SCRIPT_NAME": "",
        "SERVER_NAME": outer.META.get("SERVER_NAME", "graph.sandbox.test"),
        "SERVER_PORT": outer.META.get("SERVER_PORT", "443"),
        "HTTP_HOST": outer.META.get("HTTP_HOST", "graph.sandbox.test"),
        "wsgi.url_scheme": outer.META.get("wsgi.url_scheme", "https"), "wsgi.input": io.BytesIO(payload),
        "wsgi.errors": sys.stderr, "CONTENT_LENGTH": str(len(payload)), "REMOTE_ADDR": "127.0.0.1",
        "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.version": (1, 0), "wsgi.multithread": True,
        "wsgi.multiprocess": True, "wsgi.run_once": False,
        "HTTP_AUTHORIZATION": outer.META.get("HTTP_AUTHORIZATION", ""),
    }
    for key, value in (headers or {}).items():
        name = key.upper().replace("-", "_")
        environ["CONTENT_TYPE" if name == "CONTENT_TYPE" else f"HTTP_{name}"] = str(value)
    return WSGIRequest(environ)


def _inner_dispatch(request: WSGIRequest) -> HttpResponse:
    """Through the same views and URL patterns, in-process: no transport, no second count."""
    try:
        match = get_resolver("sandbox.microsoft.urls_graph").resolve(request.path_info)
    except Resolver404:
        return graph_error(400, "BadRequest", "Resource not found for the segment.")
    if match.url_name == "graph-batch":
        return graph_error(400, "BadRequest", "Nested batch requests are not supported.")
    try:
        # One inner failure doesn't undo its siblings: every Graph view (graph_api) runs in a
        # savepoint of its own and answers its error, so no second savepoint around it.
        return match.func(request, *match.args, **match.kwargs)
    except Exception:  # noqa: BLE001 - the real service answers 500 for that request only
        return graph_error(500, "InternalServerError", "An internal server error occurred.")


@csrf_exempt
def batch(request):
    return _ids(request, _batch(request))


def _batch(request):
    try:
        row = _token_row(request)
        mailbox = row.mailbox
        payload = read_json(request) or {}
        requests_ = payload["requests"]
        if not isinstance(requests_, list) or not all(isinstance(r, dict) for r in requests_):
            raise TypeError
    except GraphError as exc:
        return graph_error(exc.status, exc.code, exc.message, exc.headers)
    except (ValueError, KeyError, TypeError):
        return graph_error(400, "BadRequest", "Invalid batch payload format.")
    if len(requests_) > MAX_BATCH:
        return graph_error(400, "BadRequest", f"Number of batch request steps exceeds the maximum of {MAX_BATCH}.")
    ids = [str(r.get("id", "")).lower() for r in requests_]
    if "" in ids or len(set(ids)) != len(ids):
        return graph_error(400, "BadRequest", "Batch request ids must be unique and not empty.")
    for r in requests_:
        if not isinstance(r.get("method"), str) or not isinstance(r.get("url"), str) or not r["method"] \
                or not r["url"] or not isinstance(r.get("headers") or {}, dict) \
                or not isinstance(r.get("dependsOn") or [], list):
            return graph_error(400, "BadRequest", "Each batch request needs a method and a url.")
        if r.get("body") is not None and not any(k.lower() == "content-type" for k in (r.get("headers") or {})):
            return graph_error(400, "BadRequest", "Content-Type header must be specified for request with body.")
        for dep in r.get("dependsOn") or []:
            if str(dep).lower() not in ids:
                return graph_error(400, "BadRequest", f"Request dependsOn an unknown id '{dep}'.")
    with transaction.atomic(using="sandbox"):
        # One commit per batch; each inner request is a savepoint, so one
        # inner failure still leaves its siblings' writes in place.
        responses = _batch_run(request, mailbox, requests_, set(row.scopes.split()), row.client_id)
    return _json({"responses": responses})


def _batch_run(request, mailbox: Mailbox, requests_: list, scopes: set[str], client_id: str) -> list[dict]:
    statuses: dict[str, int] = {}
    responses = []
    for r in requests_:
        rid = str(r["id"])
        failed = [d for d in r.get("dependsOn") or [] if statuses.get(str(d).lower(), 424) >= 400]
        if failed:
            statuses[rid.lower()] = 424
            responses.append({"id": rid, "status": 424, "headers": {"Content-Type": "application/json"},
                              "body": {"error": {"code": "FailedDependency",
                                                 "message": "The dependent request failed."}}})
            continue
        inner_request = _inner_request(request, r["method"], r["url"], r.get("headers") or {}, r.get("body"))
        inner_request.sandbox_mailbox = mailbox  # authenticated once for the whole batch
        inner_request.sandbox_scopes = scopes
        inner_request.sandbox_client_id = client_id  # each inner request counts against the app's budget
        inner = _inner_dispatch(inner_request)
        statuses[rid.lower()] = inner.status_code
        entry = {"id": rid, "status": inner.status_code,
                 "headers": {k: v for k, v in inner.items() if k.lower() not in ("content-length",)}}
        if inner.content:
            try:
                entry["body"] = json.loads(inner.content)
            except ValueError:
                entry["body"] = inner.content.decode(errors="replace")
        responses.append(entry)
    return responses
