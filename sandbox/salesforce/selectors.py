"""Reads of the emulated Salesforce: SOQL execution and query-locator paging.

SOQL runs in Python over the org's rows of one object, narrowed first by the
database (org + sobject + IsDeleted, and the indexed Id / LinkPoint_Key__c /
SystemModstamp terms the query's top-level AND allows).
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings

from . import clock
from .ids import random_locator
from .models import SfOrg, SfQueryCursor, SfRecord
from .services import record_row
from .soql import Query, parse

RECYCLE_BIN_DAYS = 15
LOCATOR_IDLE = dt.timedelta(minutes=15)
SCAN_BLOCK = 2000  # rows matched at a time


def _live_filter(rows, *, include_deleted: bool):
    if include_deleted:
        # Recycle-bin rows are purged after 15 days and vanish from queryAll too.
        return rows.exclude(is_deleted=True, deleted_at__lt=clock.now() - dt.timedelta(days=RECYCLE_BIN_DAYS))
    return rows.filter(is_deleted=False)


def _attach_relationships(org: SfOrg, query: Query, rows: list[dict]) -> None:
    for rel_name, ref in query.relationships_used().items():
        ids = {row.get(ref.relationship.name) for row in rows} - {None}
        related = {
            rec.sf_id: record_row(rec)
            for rec in SfRecord.objects.filter(org=org, sf_id__in=list(ids), is_deleted=False)
        } if ids else {}
        for row in rows:
            row["@" + rel_name] = related.get(row.get(ref.relationship.name))


def soql_run(*, org: SfOrg, query: Query, include_deleted: bool) -> list[int]:
    """Matching record pks in result order.

    Rows are read and matched a block at a time and only the pks (and ORDER BY
    keys) are kept, so a query over a large org costs the emulator little memory;
    the pages load their own rows."""
    records = _live_filter(SfRecord.objects.filter(org=org, sobject=query.sobject), include_deleted=include_deleted)
    hints = query.prefilter() if query.where is not None else {}
    if "link_key_in" in hints:
        records = records.filter(link_key__in=hints["link_key_in"])
    if "id_in" in hints:
        records = records.filter(sf_id__in=hints["id_in"])
    if hints.get("modstamp_from"):
        records = records.filter(system_modstamp__gte=hints["modstamp_from"])
    entries: list[tuple[tuple, int]] = []
    block: list[dict] = []

    def flush():
        _attach_relationships(org, query, block)
        entries.extend(
            (query.order_keys(row) if query.order else (), row["@pk"]) for row in block if query.matches(row)
        )
        block.clear()

    for rec in records.order_by("sf_id").iterator(chunk_size=SCAN_BLOCK):
        row = record_row(rec)
        row["@pk"] = rec.pk
        block.append(row)
        if len(block) >= SCAN_BLOCK:
            flush()
    flush()
    if query.order:
        entries = query.sort_keyed(entries)
    return query.window([pk for _, pk in entries])


def _rows(org: SfOrg, query: Query, window: list[int]) -> dict[int, dict]:
    by_pk = {rec.pk: record_row(rec) for rec in SfRecord.objects.filter(org=org, pk__in=window)}
    rows = [by_pk[pk] for pk in window if pk in by_pk]
    _attach_relationships(org, query, rows)
    return {pk: by_pk[pk] for pk in window if pk in by_pk}


def soql_page(*, org: SfOrg, text: str, include_deleted: bool, batch_size: int) -> dict:
    """The first page of a query; stores a locator when more rows remain."""
    query = parse(text)
    pks = soql_run(org=org, query=query, include_deleted=include_deleted)
    if query.count_only:
        return {"totalSize": len(pks), "done": True, "records": []}
    rows = _rows(org, query, pks[:batch_size])
    return _page(org, query, pks, rows, 0, batch_size, include_deleted, locator=None)


def soql_more(*, org: SfOrg, locator: str, offset: int) -> dict | None:
    cursor = SfQueryCursor.objects.filter(org=org, locator=locator).first()
    if cursor is None or cursor.last_used < clock.now() - LOCATOR_IDLE or offset > len(cursor.record_pks):
        return None
    SfQueryCursor.objects.filter(pk=cursor.pk).update(last_used=clock.now())
    query = parse(cursor.query)
    pks = cursor.record_pks
    rows = _rows(org, query, pks[offset : offset + cursor.batch_size])
    return _page(org, query, pks, rows, offset, cursor.batch_size, cursor.include_deleted, locator=cursor.locator)


def _page(org, query, pks, rows, offset, batch_size, include_deleted, *, locator) -> dict:
    prefix = f"/services/data/v{settings.SALESFORCE_API_VERSION}"
    window = pks[offset : offset + batch_size]
    body = {"totalSize": len(pks), "done": offset + len(window) >= len(pks)}
    if not body["done"]:
        if locator is None:
            locator = random_locator()
            SfQueryCursor.objects.create(locator=locator, org=org, query=query.text, include_deleted=include_deleted,
                                         record_pks=pks, batch_size=batch_size, total_size=len(pks),
                                         last_used=clock.now())
        endpoint = "queryAll" if include_deleted else "query"
        body["nextRecordsUrl"] = f"{prefix}/{endpoint}/{locator}-{offset + len(window)}"
    body["records"] = [query.project(rows[pk], url_prefix=prefix) for pk in window if pk in rows]
    return body
