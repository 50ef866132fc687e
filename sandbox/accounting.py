"""Count every request the sandbox serves, per side, endpoint family and token.

Tests and benchmarks read the figures with `api_counts()`; `api_counts_reset()`
starts a new measurement.
"""

from __future__ import annotations

import hashlib

from django.db import IntegrityError, transaction
from django.db.models import F, Sum

from .models import ApiCounter


def token_fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16] if token else ""


def api_count_record(*, side: str, family: str, token: str = "") -> None:
    fp = token_fingerprint(token)
    rows = ApiCounter.objects.filter(side=side, family=family, token_fingerprint=fp)
    if rows.update(count=F("count") + 1):
        return
    try:
        with transaction.atomic(using="sandbox"):
            ApiCounter.objects.create(side=side, family=family, token_fingerprint=fp, count=1)
    except IntegrityError:  # another process created the row first
        rows.update(count=F("count") + 1)


def api_counts(*, side: str | None = None, family: str | None = None, token: str | None = None) -> int:
    rows = ApiCounter.objects.all()
    if side is not None:
        rows = rows.filter(side=side)
    if family is not None:
        rows = rows.filter(family=family)
    if token is not None:
        rows = rows.filter(token_fingerprint=token_fingerprint(token))
    return rows.aggregate(n=Sum("count"))["n"] or 0


def api_counts_by_family(*, side: str | None = None) -> dict[tuple[str, str], int]:
    rows = ApiCounter.objects.all()
    if side is not None:
        rows = rows.filter(side=side)
    out: dict[tuple[str, str], int] = {}
    for row in rows.values("side", "family").annotate(n=Sum("count")):
        out[(row["side"], row["family"])] = row["n"]
    return out


def api_counts_reset() -> None:
    ApiCounter.objects.all().delete()
