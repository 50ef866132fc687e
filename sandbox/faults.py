"""Fault injection: rules in the sandbox database, answers shaped like the real services'."""

from __future__ import annotations

import json
import random
import re
import uuid
from dataclasses import dataclass

from django.db import transaction
from django.db.models import F
from django.http import HttpResponse
from django.utils import timezone

from .models import FaultKind, FaultRule, Side


@dataclass(frozen=True)
class Fault:
    kind: str
    retry_after: int


def fault_add(
    *,
    side: str,
    kind: str,
    path_pattern: str = ".*",
    method: str = "",
    count: int | None = 1,
    probability: float = 1.0,
    seed: int = 0,
    retry_after: int = 2,
) -> FaultRule:
    if kind not in FaultKind.values:
        raise ValueError(f"unknown fault kind {kind!r}")
    re.compile(path_pattern)
    return FaultRule.objects.create(
        side=side,
        kind=kind,
        path_pattern=path_pattern,
        method=method.upper(),
        remaining=count,
        probability=probability,
        seed=seed,
        retry_after=retry_after,
    )


def faults_clear() -> None:
    FaultRule.objects.all().delete()


def fault_pick(*, side: str, method: str, path: str) -> Fault | None:
    """Return the fault to inject for this request, consuming one use of its rule."""
    rules = FaultRule.objects.filter(side=side).exclude(remaining=0)
    for rule in rules:
        if rule.method and rule.method != method.upper():
            continue
        if not re.search(rule.path_pattern, path):
            continue
        with transaction.atomic(using="sandbox"):
            FaultRule.objects.filter(pk=rule.pk).update(matched=F("matched") + 1)
            draw = random.Random(f"{rule.seed}:{rule.matched}").random()
            if draw >= rule.probability:
                continue
            updated = FaultRule.objects.filter(pk=rule.pk).exclude(remaining=0)
            if rule.remaining is not None:
                updated = updated.filter(remaining__gt=0)
                if not updated.update(remaining=F("remaining") - 1, fired=F("fired") + 1):
                    continue
            else:
                updated.update(fired=F("fired") + 1)
        return Fault(kind=rule.kind, retry_after=rule.retry_after)
    return None


# --- answers shaped like the real services' -------------------------------------

def _json(status: int, body, headers: dict[str, str] | None = None) -> HttpResponse:
    response = HttpResponse(json.dumps(body), status=status, content_type="application/json")
    for key, value in (headers or {}).items():
        response[key] = value
    return response


def graph_error(status: int, code: str, message: str, headers: dict[str, str] | None = None,
                client_request_id: str = ""):
    """Microsoft Graph's error envelope (learn.microsoft.com/graph/errors): the innerError and the
    `request-id` / `client-request-id` headers carry the ids support asks for."""
    request_id = str(uuid.uuid4())
    client_request_id = client_request_id or request_id
    body = {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": timezone.now().strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": request_id,
                "client-request-id": client_request_id,
            },
        }
    }
    return _json(status, body, {"request-id": request_id, "client-request-id": client_request_id,
                                **(headers or {})})


def identity_error(status: int, error: str, description: str, codes: list[int], suberror: str = ""):
    """Microsoft identity platform's OAuth error body (learn.microsoft.com/entra/identity-platform/
    reference-error-codes: `error_uri` points at the code's page; `suberror` e.g. consent_required)."""
    trace = str(uuid.uuid4())
    extra = {"suberror": suberror} if suberror else {}
    return _json(
        status,
        {
            "error": error,
            **extra,
            "error_description": f"{description}\r\nTrace ID: {trace}\r\nCorrelation ID: {trace}",
            "error_codes": codes,
            "timestamp": timezone.now().strftime("%Y-%m-%d %H:%M:%SZ"),
            "trace_id": trace,
            "correlation_id": trace,
            "error_uri": f"https://login.sandbox.test/error?code={codes[0] if codes else ''}",
        },
    )


def salesforce_error(status: int, code: str, message: str, headers: dict[str, str] | None = None):
    """Salesforce REST's error list."""
    return _json(status, [{"message": message, "errorCode": code}], headers)


def fault_response(fault: Fault, *, side: str, host: str, path: str) -> HttpResponse:
    is_token_endpoint = path.rstrip("/").endswith("/token")
    retry = {"Retry-After": str(fault.retry_after)}
    if side == Side.OUTLOOK:
        if fault.kind == FaultKind.HTTP_429:
            return graph_error(429, "TooManyRequests", "Too many requests.", retry)
        if fault.kind == FaultKind.HTTP_500:
            return graph_error(500, "InternalServerError", "An internal server error occurred.")
        if fault.kind == FaultKind.HTTP_503:
            return graph_error(503, "ServiceNotAvailable", "Service unavailable.", retry)
        if fault.kind == FaultKind.EXPIRED_TOKEN:
            return graph_error(
                401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired."
            )
        if fault.kind == FaultKind.REVOKED_REFRESH_TOKEN or is_token_endpoint:
            return identity_error(
                400,
                "invalid_grant",
                "AADSTS70008: The provided authorization code or refresh token has expired due to "
                "inactivity or was revoked.",
                [70008],
            )
        if fault.kind == FaultKind.GRAPH_410:
            return graph_error(
                410, "SyncStateNotFound", "The sync state generation is not found."
            )
        return graph_error(400, "BadRequest", f"Injected fault {fault.kind}.")
    if fault.kind == FaultKind.REVOKED_REFRESH_TOKEN or (
        is_token_endpoint and fault.kind == FaultKind.EXPIRED_TOKEN
    ):
        return _json(400, {"error": "invalid_grant", "error_description": "expired access/refresh token"})
    if fault.kind == FaultKind.HTTP_429:
        return salesforce_error(429, "REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded.", retry)
    if fault.kind == FaultKind.HTTP_500:
        return salesforce_error(500, "UNKNOWN_EXCEPTION", "An unexpected error occurred.")
    if fault.kind == FaultKind.HTTP_503:
        return salesforce_error(503, "SERVER_UNAVAILABLE", "Server unavailable.", retry)
    if fault.kind == FaultKind.EXPIRED_TOKEN:
        return salesforce_error(401, "INVALID_SESSION_ID", "Session expired or invalid")
    if fault.kind == FaultKind.REQUEST_LIMIT_EXCEEDED:
        return salesforce_error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
    return salesforce_error(400, "MALFORMED_QUERY", f"Injected fault {fault.kind}.")
