"""REST API views of the emulated Salesforce org, at the pinned version (v62.0)."""

from __future__ import annotations

import datetime as dt
import json
import re

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse, QueryDict
from django.urls import Resolver404, get_resolver
from django.views.decorators.csrf import csrf_exempt

from . import clock
from .api import api_view, error_response, json_response, method_not_allowed, not_found, read_json
from .ids import to18
from .models import SfRecord
from .schema import (
    KEY_PREFIX,
    LINK_KEY,
    OBJECTS,
    WRITABLE,
    canonical_object,
    describe_field,
    schema_for,
)
from .selectors import RECYCLE_BIN_DAYS, soql_more, soql_page
from .services import (
    ONWARDS_DONE,
    SYSTEM_FIELDS,
    SfWriteError,
    WriteResult,
    record_api,
    sf_records_create,
    sf_records_delete,
    sf_records_update,
    sf_records_upsert,
    sf_series_delete_onwards,
)
from .validation import SfError

DB = "sandbox"
COLLECTION_MAX = 200
COMPOSITE_MAX = 25


def _prefix() -> str:
    return f"/services/data/v{settings.SALESFORCE_API_VERSION}"


def _release_label(major: int) -> str:
    """v62.0 is Winter '25; going back, each release steps Winter → Summer → Spring."""
    steps = 62 - major
    return f"{('Winter', 'Summer', 'Spring')[steps % 3]} '{(25 - (steps + 2) // 3) % 100:02d}"


@csrf_exempt
def versions(request):
    """GET /services/data/: the API versions this org answers (no session needed)."""
    out = []
    for major in range(31, int(float(settings.SALESFORCE_API_VERSION)) + 1):
        out.append({"label": _release_label(major), "url": f"/services/data/v{major}.0", "version": f"{major}.0"})
    return json_response(out)


@api_view
def resources(request):
    p = _prefix()
    names = ["tooling", "metadata", "eclair", "folders", "prechatForms", "contact-tracing", "chatter", "tabs",
             "appMenu", "quickActions", "queryAll", "commerce", "wave", "iot", "analytics", "search", "identity",
             "composite", "parameterizedSearch", "fingerprint", "theme", "nouns", "event", "serviceTemplates",
             "recent", "connect", "licensing", "limits", "process", "async-queries", "query", "jsonxform",
             "sobjects", "actions", "support"]
    body = {n: f"{p}/{n}" for n in names}
    body["identity"] = f"{settings.SALESFORCE_LOGIN_URL}/id/{request.sf_user.org.org_id}/{request.sf_user.user_id}"
    return json_response(body)


@api_view
def limits(request):
    org = request.sf_user.org
    used = org.api_used if org.api_day == clock.now().date() else 0
    return json_response({
        "ConcurrentAsyncGetReportInstances": {"Max": 200, "Remaining": 200},
        "DailyApiRequests": {"Max": org.api_daily_max, "Remaining": max(0, org.api_daily_max - used)},
        "DailyAsyncApexExecutions": {"Max": 250000, "Remaining": 250000},
        "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
        "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000},
        "DataStorageMB": {"Max": 5, "Remaining": 5},
        "FileStorageMB": {"Max": 20, "Remaining": 20},
        "SingleEmail": {"Max": 15, "Remaining": 15},
    })


# --- query / queryAll -------------------------------------------------------------------------


def _batch_size(request) -> int:
    """`Sforce-Query-Options: batchSize=N` (200-2,000; default 2,000)."""
    m = re.search(r"batchSize\s*=\s*(\d+)", request.META.get("HTTP_SFORCE_QUERY_OPTIONS", ""))
    return min(2000, max(200, int(m.group(1)))) if m else 2000


def _query(request, *, include_deleted: bool, locator: str = "", offset: str = "0"):
    if request.method != "GET":
        return method_not_allowed(request.method, "GET,HEAD")
    org = request.sf_user.org
    if locator:
        page = soql_more(org=org, locator=locator, offset=int(offset))
        if page is None:
            return error_response(SfError("INVALID_QUERY_LOCATOR", "invalid query locator"))
        return json_response(page)
    text = request.GET.get("q")
    if text is None:
        return error_response(SfError("MALFORMED_QUERY", "A query string has to be specified"))
    return json_response(soql_page(org=org, text=text, include_deleted=include_deleted,
                                   batch_size=_batch_size(request)))


@api_view
def query(request, locator: str = "", offset: str = "0"):
    return _query(request, include_deleted=False, locator=locator, offset=offset)


@api_view
def query_all(request, locator: str = "", offset: str = "0"):
    return _query(request, include_deleted=True, locator=locator, offset=offset)


# --- search (SOSL) -----------------------------------------------------------------------------


@api_view
def search(request):
    """GET /search/?q=FIND {...} ...: {"searchRecords": [...]} in RETURNING order (sosl.py)."""
    from .sosl import SoslError, matches, parse

    if request.method != "GET":
        return method_not_allowed(request.method, "GET,HEAD")
    text = request.GET.get("q")
    if not text:
        return error_response(SfError("MALFORMED_SEARCH", "A search string has to be specified"))
    try:
        found = parse(text)
    except SoslError as exc:
        return error_response(SfError(exc.code, exc.message))
    org, out = request.sf_user.org, []
    for ret in found.returning:
        rows = [record_api(r) for r in SfRecord.objects.filter(org=org, sobject=ret.sobject, is_deleted=False)]
        hits = [r for r in rows if matches(found, ret.sobject, r)][: ret.limit or found.limit]
        out += [{"attributes": r["attributes"], **{f: r.get(f) for f in ret.fields}} for r in hits]
    return json_response({"searchRecords": out[: found.limit]})


# --- sobjects ---------------------------------------------------------------------------------------


def _object_describe(name: str, *, with_fields: bool, org=None) -> dict:
    p = _prefix()
    writable = name in WRITABLE
    body = {
        "name": name, "label": name, "labelPlural": name + "s", "keyPrefix": KEY_PREFIX[name], "custom": False,
        "createable": writable, "updateable": writable, "deletable": writable, "queryable": True,
        "retrieveable": True, "searchable": True, "replicateable": True, "layoutable": True,
        "urls": {"sobject": f"{p}/sobjects/{name}", "describe": f"{p}/sobjects/{name}/describe",
                 "rowTemplate": f"{p}/sobjects/{name}/{{ID}}"},
    }
    if with_fields:
        body["fields"] = [describe_field(f) for f in schema_for(org, name).values()]
    return body


@api_view
def sobjects(request):
    return json_response({"encoding": "UTF-8", "maxBatchSize": 200,
                          "sobjects": [_object_describe(n, with_fields=False) for n in OBJECTS]})


@api_view
def describe(request, sobject: str):
    name = canonical_object(sobject)
    if name is None:
        return not_found()
    return json_response(_object_describe(name, with_fields=True, org=request.sf_user.org))


def _result_body(result: WriteResult, *, created_flag: bool = False) -> dict:
    body = {"id": result.id, "success": result.success, "errors": [e.as_collection() for e in result.errors]}
    if created_flag:
        body["created"] = result.created if result.success else False
    return body


def _single_error(result: WriteResult) -> HttpResponse:
    error = result.errors[0]
    if error.code == "INVALID_CROSS_REFERENCE_KEY" and error.status == 404:
        return not_found()
    return error_response(error)


@api_view
def sobject_root(request, sobject: str):
    """POST /sobjects/<Type>/ creates; GET answers the object's basic info."""
    name = canonical_object(sobject)
    if name is None:
        return not_found()
    if request.method == "GET":
        return json_response({"objectDescribe": _object_describe(name, with_fields=False), "recentItems": []})
    if request.method != "POST":
        return method_not_allowed(request.method, "GET,HEAD,POST")
    body = read_json(request)
    if not isinstance(body, dict):
        raise SfError("JSON_PARSER_ERROR", "Cannot deserialize instance of sobject from START_ARRAY value")
    result = sf_records_create(user=request.sf_user, records=[(name, body)])[0]
    if not result.success:
        return error_response(result.errors[0])
    return json_response(_result_body(result), 201, {"Location": f"{_prefix()}/sobjects/{name}/{result.id}"})


def _select_fields(rec: SfRecord, fields_param: str | None) -> dict:
    full = record_api(rec)
    if not fields_param:
        return full
    out = {"attributes": full["attributes"]}
    lookup = {k.lower(): k for k in full if k != "attributes"}
    for raw in fields_param.split(","):
        key = lookup.get(raw.strip().lower())
        if key is None:
            raise SfError("INVALID_FIELD", f"No such column '{raw.strip()}' on sobject of type {rec.sobject}")
        out[key] = full[key]
    if "Id" not in out:
        out["Id"] = rec.sf_id
    return out


@api_view
def sobject_row(request, sobject: str, record_id: str):
    name = canonical_object(sobject)
    if name is None:
        return not_found()
    full = to18(record_id)
    rec = SfRecord.objects.filter(org=request.sf_user.org, sobject=name, sf_id=full).first() if full else None
    if request.method == "GET":
        if rec is None:
            return not_found()
        if rec.is_deleted:
            return error_response(SfError("ENTITY_IS_DELETED", "entity is deleted", status=404))
        return json_response(_select_fields(rec, request.GET.get("fields")))
    if request.method == "PATCH":
        body = read_json(request)
        if not isinstance(body, dict):
            raise SfError("JSON_PARSER_ERROR", "Cannot deserialize instance of sobject from START_ARRAY value")
        if rec is None:
            return not_found()
        if "Id" in body and to18(str(body["Id"])) != rec.sf_id:
            raise SfError("INVALID_FIELD", "The Id field should not be specified in the sobject data.")
        result = sf_records_update(user=request.sf_user, records=[(name, rec.sf_id, body)],
                                   api_version=request.sf_version)[0]
        return HttpResponse(status=204) if result.success else _single_error(result)
    if request.method == "DELETE":
        if rec is None:
            return not_found()
        result = sf_records_delete(user=request.sf_user, ids=[rec.sf_id])[0]
        return HttpResponse(status=204) if result.success else _single_error(result)
    return method_not_allowed(request.method, "GET,HEAD,PATCH,DELETE")


@api_view
def sobject_by_external_id(request, sobject: str, field: str, value: str):
    """GET / PATCH (upsert) / DELETE by external id: /sobjects/<Type>/LinkPoint_Key__c/<value>."""
    name = canonical_object(sobject)
    if name is None:
        return not_found()
    if field.lower() != LINK_KEY.lower() or LINK_KEY not in OBJECTS[name]:
        return salesforce_not_found_field(field)
    matches = list(SfRecord.objects.filter(org=request.sf_user.org, sobject=name, is_deleted=False, link_key=value))
    if len(matches) > 1:  # the unique constraint keeps this from happening; kept for the API's shape
        return json_response([f"{_prefix()}/sobjects/{name}/{r.sf_id}" for r in matches], 300)
    if request.method == "GET":
        return json_response(record_api(matches[0])) if matches else not_found()
    if request.method == "DELETE":
        if not matches:
            return not_found()
        result = sf_records_delete(user=request.sf_user, ids=[matches[0].sf_id])[0]
        return HttpResponse(status=204) if result.success else _single_error(result)
    if request.method not in ("PATCH", "POST"):
        return method_not_allowed(request.method, "GET,HEAD,PATCH,DELETE")
    body = read_json(request) or {}
    if not isinstance(body, dict):
        raise SfError("JSON_PARSER_ERROR", "Cannot deserialize instance of sobject from START_ARRAY value")
    for key in list(body):
        if key.lower() == LINK_KEY.lower():
            if body[key] != value:
                raise SfError("INVALID_FIELD", f"{LINK_KEY}: the value in the body differs from the URL")
            del body[key]
    updating = request.GET.get("updateOnly", "").lower() == "true"
    if updating and not matches:
        return not_found()
    result = sf_records_upsert(user=request.sf_user, sobject=name, records=[{**body, LINK_KEY: value}],
                               api_version=request.sf_version)[0]
    if not result.success:
        return _single_error(result)
    # API 46.0+ answer an upsert with `created`; 201 when it created, 200 when it updated.
    return json_response(_result_body(result, created_flag=True), 201 if result.created else 200)


@api_view
def event_from_here_on(request, sobject: str, record_id: str):
    """DELETE /sobjects/Event/<id>/fromThisEventOnwards: an event series from this occurrence on."""
    if canonical_object(sobject) != "Event":
        return not_found()
    if request.method != "DELETE":
        return method_not_allowed(request.method, "DELETE")
    try:
        sf_series_delete_onwards(user=request.sf_user, record_id=record_id)
    except SfWriteError as refused:
        error = refused.errors[0]
        return not_found() if error.code == "INVALID_CROSS_REFERENCE_KEY" else error_response(error)
    return json_response({"success": ONWARDS_DONE})


def salesforce_not_found_field(field: str) -> HttpResponse:
    return error_response(
        SfError("NOT_FOUND", f"Provided external ID field does not exist or is not accessible: {field}", status=404)
    )


# --- getUpdated / getDeleted --------------------------------------------------------------------------


def _window(request, *, days: int):
    start = clock.parse_datetime(request.GET.get("start", ""))
    end = clock.parse_datetime(request.GET.get("end", ""))
    if start is None or end is None:
        raise SfError("MISSING_ARGUMENT", "start and end parameters are required as ISO-8601 date-times")
    start, end = (v.replace(second=0, microsecond=0) for v in (start, end))  # seconds are ignored
    now = clock.now()
    earliest = (now - dt.timedelta(days=days)).replace(second=0, microsecond=0)
    if end <= start:
        raise SfError("INVALID_REPLICATION_DATE", "startDate must chronologically precede endDate")
    if start < earliest:
        raise SfError("INVALID_REPLICATION_DATE", f"startDate cannot be more than {days} days ago")
    return start, min(end, now.replace(second=0, microsecond=0)), earliest


@api_view
def updated(request, sobject: str):
    name = canonical_object(sobject)
    if name is None:
        return not_found()
    start, end, _ = _window(request, days=30)
    ids = SfRecord.objects.filter(org=request.sf_user.org, sobject=name, is_deleted=False,
                                  system_modstamp__gte=start, system_modstamp__lt=end).values_list("sf_id", flat=True)
    return json_response({"ids": list(ids), "latestDateCovered": clock.fmt_datetime(end)})


@api_view
def deleted(request, sobject: str):
    name = canonical_object(sobject)
    if name is None:
        return not_found()
    start, end, earliest = _window(request, days=RECYCLE_BIN_DAYS)
    rows = SfRecord.objects.filter(org=request.sf_user.org, sobject=name, is_deleted=True,
                                   deleted_at__gte=start, deleted_at__lt=end).order_by("deleted_at")
    return json_response({
        "deletedRecords": [{"id": r.sf_id, "deletedDate": clock.fmt_datetime(r.deleted_at)} for r in rows],
        "earliestDateAvailable": clock.fmt_datetime(earliest),
        "latestDateCovered": clock.fmt_datetime(end),
    })


# --- sObject Collections -------------------------------------------------------------------------------


def _bool(value) -> bool:
    return value is True or str(value).lower() == "true"


def _collection_results(results: list[WriteResult], *, created_flag: bool = False) -> HttpResponse:
    return json_response([_result_body(r, created_flag=created_flag) for r in results])


def _too_many() -> HttpResponse:
    return error_response(SfError("EXCEEDED_ID_LIMIT",
                                  "record limit reached. cannot submit more than 200 records into this call"))


def _records_of(body) -> list:
    if not isinstance(body, dict) or not isinstance(body.get("records"), list):
        raise SfError("JSON_PARSER_ERROR", "Cannot deserialize instance of records: a 'records' list is required")
    return body["records"]


def _whole_request_error(results: list[WriteResult]) -> HttpResponse | None:
    for r in results:
        for e in r.errors:
            if e.whole_request:
                return error_response(e)
    return None


@api_view
def collections(request, sobject: str = "", field: str = ""):
    user = request.sf_user
    if sobject and field:  # PATCH /composite/sobjects/<Type>/<ExtIdField>: upsert
        name = canonical_object(sobject)
        if name is None:
            return not_found()
        if request.method != "PATCH":
            return method_not_allowed(request.method, "PATCH")
        if field.lower() != LINK_KEY.lower() or LINK_KEY not in OBJECTS[name]:
            return salesforce_not_found_field(field)
        body = read_json(request)
        records = _records_of(body)
        if len(records) > COLLECTION_MAX:
            return _too_many()
        cleaned = []
        for r in records:
            r = dict(r) if isinstance(r, dict) else {}
            r.pop("attributes", None)
            key = next((k for k in r if k.lower() == LINK_KEY.lower()), None)
            if key and key != LINK_KEY:
                r[LINK_KEY] = r.pop(key)
            cleaned.append(r)
        results = sf_records_upsert(user=user, sobject=name, records=cleaned, all_or_none=_bool(body.get("allOrNone")),
                                    api_version=request.sf_version)
        return _whole_request_error(results) or _collection_results(results, created_flag=True)
    if sobject:  # GET /composite/sobjects/<Type>?ids=&fields=
        name = canonical_object(sobject)
        if name is None:
            return not_found()
        if request.method not in ("GET", "POST"):
            return method_not_allowed(request.method, "GET,POST")
        source = request.GET if request.method == "GET" else (read_json(request) or {})
        ids = source.get("ids") or ""
        fields = source.get("fields") or ""
        ids = ids.split(",") if isinstance(ids, str) else list(ids)
        fields = ",".join(fields) if isinstance(fields, list) else fields
        if not fields:
            raise SfError("MISSING_ARGUMENT", "fields parameter is required")
        by_id = {r.sf_id: r for r in SfRecord.objects.filter(org=user.org, sobject=name, is_deleted=False,
                                                             sf_id__in=[to18(i) for i in ids if to18(i)])}
        return json_response([_select_fields(by_id[to18(i)], fields) if to18(i) in by_id else None for i in ids])
    if request.method == "POST":
        body = read_json(request)
        records = _records_of(body)
        if len(records) > COLLECTION_MAX:
            return _too_many()
        batch = []
        for r in records:
            r = r if isinstance(r, dict) else {}
            type_name = canonical_object((r.get("attributes") or {}).get("type", "")) or ""
            batch.append((type_name, {k: v for k, v in r.items() if k != "attributes"}))
        results = sf_records_create(user=user, records=batch, all_or_none=_bool(body.get("allOrNone")))
        return _whole_request_error(results) or _collection_results(results)
    if request.method == "PATCH":
        body = read_json(request)
        records = _records_of(body)
        if len(records) > COLLECTION_MAX:
            return _too_many()
        batch = []
        for r in records:
            r = r if isinstance(r, dict) else {}
            type_name = canonical_object((r.get("attributes") or {}).get("type", "")) or None
            # Field names are case-insensitive in Salesforce, "id" included (REST API Developer Guide,
            # "Update Multiple Records": each record names its Id).
            id_key = next((k for k in r if k.lower() == "id"), "Id")
            batch.append((type_name, r.get(id_key) or "",
                          {k: v for k, v in r.items() if k not in ("attributes", id_key)}))
        results = sf_records_update(user=user, records=batch, all_or_none=_bool(body.get("allOrNone")),
                                    api_version=request.sf_version)
        return _whole_request_error(results) or _collection_results(results)
    if request.method == "DELETE":
        ids = [i for i in request.GET.get("ids", "").split(",") if i]
        if not ids:
            raise SfError("MISSING_ARGUMENT", "ids parameter is required")
        if len(ids) > COLLECTION_MAX:
            return _too_many()
        results = sf_records_delete(user=user, ids=ids, all_or_none=_bool(request.GET.get("allOrNone")))
        return _collection_results(results)
    return method_not_allowed(request.method, "GET,POST,PATCH,DELETE")


# --- composite --------------------------------------------------------------------------------------------

_REFERENCE = re.compile(r"@\{([A-Za-z0-9_]+)((?:\.[A-Za-z0-9_]+|\[\d+\])*)\}")
HALTED = "The transaction was rolled back since another operation in the same transaction failed."


class _Unresolved(Exception):
    pass


def _resolve_refs(value, results: dict):
    """Replace `@{refId.field[0].x}` with values from earlier subrequest bodies."""
    if isinstance(value, dict):
        return {k: _resolve_refs(v, results) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_refs(v, results) for v in value]
    if not isinstance(value, str):
        return value

    def lookup(m: re.Match):
        ref, path = m.group(1), m.group(2)
        if ref not in results:
            raise _Unresolved(m.group(0))
        current = results[ref]
        for step in re.findall(r"\.([A-Za-z0-9_]+)|\[(\d+)\]", path):
            try:
                current = current[step[0]] if step[0] else current[int(step[1])]
            except (KeyError, IndexError, TypeError):
                raise _Unresolved(m.group(0)) from None
        return current

    whole = _REFERENCE.fullmatch(value)
    if whole:
        return lookup(whole)
    return _REFERENCE.sub(lambda m: str(lookup(m)), value)


def _subrequest(request, sub: dict, results: dict) -> tuple[int, object, dict]:
    method = str(sub.get("method", "GET")).upper()
    url = _resolve_refs(str(sub.get("url", "")), results)
    body = _resolve_refs(sub.get("body"), results)
    path, _, qs = url.partition("?")
    if not path.startswith("/services/data/"):
        path = "/services/data/" + path.lstrip("/")
    try:
        match = get_resolver("sandbox.salesforce.urls").resolve(path)
    except Resolver404:
        match = None
    if match is None or match.url_name in ("sf-composite", "sf-versions"):
        return 404, [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}], {}
    inner = HttpRequest()
    inner.method = method
    inner.path = inner.path_info = path
    inner.GET = QueryDict(qs)
    inner.META = {"REQUEST_METHOD": method, "CONTENT_TYPE": "application/json",
                  **{"HTTP_" + k.upper().replace("-", "_"): v for k, v in (sub.get("httpHeaders") or {}).items()}}
    inner._body = json.dumps(body).encode() if body is not None else b""
    inner.sf_user = request.sf_user
    inner.sf_inner = True
    response = match.func(inner, *match.args, **match.kwargs)
    payload = json.loads(response.content) if response.content else None
    headers = {"Location": response["Location"]} if response.has_header("Location") else {}
    return response.status_code, payload, headers


@api_view
def composite(request):
    if request.method != "POST":
        return method_not_allowed(request.method, "POST")
    body = read_json(request)
    subs = body.get("compositeRequest") if isinstance(body, dict) else None
    if not isinstance(subs, list) or not subs:
        raise SfError("JSON_PARSER_ERROR", "compositeRequest is required")
    if len(subs) > COMPOSITE_MAX:
        raise SfError("LIMIT_EXCEEDED", f"Composite request size limit exceeded: maximum {COMPOSITE_MAX} "
                      "subrequests.")
    all_or_none = _bool(body.get("allOrNone"))
    results: dict[str, object] = {}
    out = []
    failed = False
    with transaction.atomic(using=DB):
        savepoint = transaction.savepoint(using=DB)
        for sub in subs:
            ref_id = str(sub.get("referenceId", ""))
            if failed and all_or_none:
                out.append({"body": [{"errorCode": "PROCESSING_HALTED", "message": HALTED}], "httpHeaders": {},
                            "httpStatusCode": 400, "referenceId": ref_id})
                continue
            try:
                status, payload, headers = _subrequest(request, sub, results)
            except _Unresolved as missing:
                status, headers = 400, {}
                payload = [{"errorCode": "PROCESSING_HALTED",
                            "message": f"Invalid reference specified. No value for {missing} found in the results "
                                       "of earlier subrequests."}]
            if status < 300:
                results[ref_id] = payload
            else:
                failed = True
            out.append({"body": payload, "httpHeaders": headers, "httpStatusCode": status, "referenceId": ref_id})
        if failed and all_or_none:
            transaction.savepoint_rollback(savepoint, using=DB)
            for item in out:
                if item["httpStatusCode"] < 300:
                    item.update(body=[{"errorCode": "PROCESSING_HALTED", "message": HALTED}], httpHeaders={},
                                httpStatusCode=400)
        else:
            transaction.savepoint_commit(savepoint, using=DB)
    return json_response({"compositeResponse": out})


__all__ = ["SYSTEM_FIELDS"]
