"""Plumbing shared by the REST views: session check, API accounting, error bodies."""

from __future__ import annotations

import json
import logging
from functools import wraps

from django.conf import settings
from django.db import transaction
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt

from ..faults import salesforce_error
from ..jsonbody import BadJson
from ..jsonbody import read_json as strict_json
from .services import sf_api_consume, sf_session_user
from .soql import SoqlError
from .validation import SfError

logger = logging.getLogger("linkpoint.sandbox")


def json_response(body, status: int = 200, headers: dict | None = None) -> HttpResponse:
    response = HttpResponse(json.dumps(body), status=status, content_type="application/json;charset=UTF-8")
    for key, value in (headers or {}).items():
        response[key] = value
    return response


def error_response(error: SfError | SoqlError, status: int | None = None) -> HttpResponse:
    if isinstance(error, SoqlError):
        return json_response([{"message": error.message, "errorCode": error.code}], 400)
    body = {"message": error.message, "errorCode": error.code}
    if error.fields:
        body["fields"] = list(error.fields)
    return json_response([body], status or error.status)


def not_found() -> HttpResponse:
    return salesforce_error(404, "NOT_FOUND", "The requested resource does not exist")


def bearer(request) -> str:
    auth = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, token = auth.partition(" ")
    return token.strip() if scheme.lower() in ("bearer", "oauth") else ""


def read_json(request):
    """The request body as JSON; raises SfError(JSON_PARSER_ERROR) like the API (not UTF-8 included)."""
    try:
        return strict_json(request)
    except BadJson as exc:
        if exc.too_large:
            raise SfError("JSON_PARSER_ERROR", exc.message, status=413) from None
        raise SfError("JSON_PARSER_ERROR", exc.message) from None


def method_not_allowed(method: str, allowed: str) -> HttpResponse:
    return salesforce_error(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed. Allowed are {allowed}")


def version_answered(version: str) -> bool:
    """Every version /services/data/ advertises (v31.0 up to the pinned one) is answered, as a real
    org answers each version it lists (REST API Developer Guide, "Versions"); the resources behave as
    the pinned version's."""
    major, _, minor = version.partition(".")
    return major.isdigit() and minor == "0" and 31 <= int(major) <= int(float(settings.SALESFORCE_API_VERSION))


def api_view(view):
    """A REST endpoint: bearer session, the org's daily allocation, `Sforce-Limit-Info` on every answer.

    Subrequests of /composite arrive with `sf_inner` set: already authenticated
    and counted once for the whole composite call, as Salesforce counts them.
    """

    @csrf_exempt
    @wraps(view)
    def wrapper(request, *args, version: str = "", **kwargs):
        if version and not version_answered(version):
            return not_found()
        # Some rules depend on the version in the URL (event series updates, series.py).
        request.sf_version = version or settings.SALESFORCE_API_VERSION
        if getattr(request, "sf_inner", False):
            return _run(view, request, args, kwargs)
        user = sf_session_user(bearer(request))
        if user is None:
            return salesforce_error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        host = (request.META.get("HTTP_HOST") or "").split(":")[0].lower()
        if host.endswith(".my.salesforce.sandbox.test") and host != user.org.instance_host:
            return salesforce_error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        allowed, used = sf_api_consume(org=user.org)
        if not allowed:
            response = salesforce_error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
        else:
            request.sf_user = user
            response = _run(view, request, args, kwargs)
        response["Sforce-Limit-Info"] = f"api-usage={used}/{user.org.api_daily_max}"
        return response

    return wrapper


def _run(view, request, args, kwargs) -> HttpResponse:
    try:
        # One request, one transaction: a refused or failed request leaves no record behind.
        with transaction.atomic(using="sandbox"):
            return view(request, *args, **kwargs)
    except (SfError, SoqlError) as error:
        return error_response(error)
    except Exception:
        logger.exception("sandbox Salesforce: %s %s failed", request.method, request.path)
        return salesforce_error(500, "UNKNOWN_EXCEPTION", "An unexpected error occurred. Please include this "
                                "ErrorId if you contact support.")
