"""Read what changed on each side since its cursor, as mapped `Item`s.

Outlook: the delta feed (a fresh round = a full listing, on the first run, on
Rebuild, on 410 and when the calendar window moved). Salesforce: queryAll on
`SystemModstamp >= mark - overlap` (deleted rows included), or a full query
(first run, Rebuild, or a mark older than the recycle bin keeps deletions).
The Salesforce mark is taken *before* reading, so an edit made while we read
is seen again next time. A Graph `@removed` is never taken at its word: the
item is read back, and only a 404 makes it a deletion (out of the window is
not deleted). Likewise a linked item missing from a full listing is read back
by id before it counts as gone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .kinds import CALENDAR, CONTACTS, Window, calendar_window, outlook_item, sf_item
from .records import OUTLOOK, SALESFORCE, EnginePolicy, Item
from .remote import OutlookSide, SalesforceSide
from .series import SeriesReader, is_series_row

# Given the Salesforce ids of a page, the linked items' last synced projections (contacts).
Hints = Callable[[list[str]], Callable[[str], dict | None]]

# Salesforce stamps are to the second, commits land late: read a little behind the mark.
SF_OVERLAP = timedelta(minutes=5)
# Salesforce empties its recycle bin after 15 days and queryAll stops reporting those
# deletions: a mark further back than this (a day's margin) calls for a full read, whose
# missing linked records are then read back by id (gone for good reads as deleted).
SF_DELETIONS_KEPT = timedelta(days=14)


@dataclass
class CursorIn:
    delta_link: str = ""
    window_start: datetime | None = None
    window_end: datetime | None = None
    container: str = ""
    sf_high_water: datetime | None = None


@dataclass
class Fetched:
    # Item per id; a run passes its on-disk `stage.SideItems` (same interface).
    outlook: dict[str, Item] = field(default_factory=dict)
    salesforce: dict[str, Item] = field(default_factory=dict)
    full_outlook: bool = False
    full_salesforce: bool = False
    delta_link: str = ""
    window: Window | None = None
    container: str = ""
    sf_mark: datetime | None = None
    # Calendar ids reported removed; the engine checks its series against them
    # (a deleted series is reported as its occurrences, never as its master).
    removed_unknown: set[str] = field(default_factory=set)


def fetch_outlook(
    side: OutlookSide,
    kind: str,
    policy: EnginePolicy,
    cursor: CursorIn,
    now: datetime,
    *,
    full: bool,
    into: Fetched,
) -> None:
    from connections.errors import SyncStateGone

    link, window = _outlook_round(kind, policy, cursor, now, full=full)
    into.container = side.ensure_container()
    into.window = window
    try:
        into.delta_link = _read_round(side, kind, policy, link, window, now, into)
        into.full_outlook = not link
    except SyncStateGone:
        into.outlook.clear()
        into.delta_link = _read_round(side, kind, policy, "", window, now, into)
        into.full_outlook = True


def _outlook_round(kind, policy, cursor: CursorIn, now: datetime, *, full: bool):
    """The delta link to follow ("" = a fresh round) and the calendar window."""
    window = calendar_window(policy, now) if kind == CALENDAR else None
    link = cursor.delta_link
    if full or not link:
        link = ""
    elif window is not None and (
        cursor.window_start != window.start or cursor.window_end != window.end
    ):
        link = ""  # a delta link is bound to its window: a moved window needs a new round
    return link, window


def _read_round(side, kind, policy, link, window, now, into: Fetched) -> str:
    delta = ""
    masters: set[str] = set()
    for page in side.delta_pages(link or None, window):
        for payload in page.items:
            # Anything of the wrong shape is left to outlook_item: an item-level error.
            fields = payload if isinstance(payload, dict) else {}
            master = fields.get("seriesMasterId")
            if fields.get("type") in ("occurrence", "exception") and isinstance(master, str):
                # calendarView lists a series as its occurrences; the series syncs as its master.
                if master:
                    # A changed occurrence too: it syncs with its series (engine.series).
                    masters.add(master)
                continue
            if "@removed" in fields and kind == CALENDAR and isinstance(fields.get("id"), str):
                into.removed_unknown.add(fields["id"])
            it = outlook_item(kind, payload, policy, now, container=into.container)
            into.outlook[it.id] = it  # replays and repeats: the latest wins
        if page.delta_link:
            delta = page.delta_link
    masters = {m for m in masters if m not in into.outlook}
    if masters:
        confirm_outlook(side, kind, policy, now, masters, into)
    return delta


def fetch_salesforce(
    side: SalesforceSide,
    kind: str,
    policy: EnginePolicy,
    cursor: CursorIn,
    now: datetime,
    *,
    full: bool,
    into: Fetched,
    snapshot_hints: Hints | None = None,
    series_known=None,
) -> None:
    into.sf_mark = now
    pages, into.full_salesforce = _sf_listing(side, kind, policy, cursor, now, full=full)
    incremental = not into.full_salesforce
    series = SeriesReader(side, kind, policy, now, known=series_known if incremental else None)
    for rows in pages:
        hint = snapshot_hints(_sf_ids(rows)) if snapshot_hints else None
        for row in rows:
            if kind == CALENDAR and is_series_row(row):
                series.add(row)  # read whole below: a series is one item, never N
                continue
            it = sf_item(kind, row, policy, now, snapshot_hint=hint)
            into.salesforce[it.id] = it
    for it in series.items():
        into.salesforce[it.id] = it


def _sf_listing(side: SalesforceSide, kind, policy, cursor: CursorIn, now: datetime, *, full: bool):
    """The pages of the Salesforce read, and whether it is a full one."""
    scope_all = kind == CONTACTS and policy.contact_scope == "all"
    if full or cursor.sf_high_water is None or now - cursor.sf_high_water > SF_DELETIONS_KEPT:
        window = calendar_window(policy, now) if kind == CALENDAR else None
        return side.full_pages(window=window, scope_all=scope_all), True
    return side.changed_pages(cursor.sf_high_water - SF_OVERLAP, scope_all=scope_all), False


def read_ahead(
    outlook: OutlookSide,
    salesforce: SalesforceSide,
    kind: str,
    policy: EnginePolicy,
    cursor: CursorIn,
    now: datetime,
    *,
    full: bool,
    fanout,
) -> None:
    """Request both sides' first pages at once (the run's two reads overlap).

    Worker threads pull the exact listings fetch_salesforce and fetch_outlook are
    about to read, a few pages ahead; those functions then take the pages in their
    usual order on the run's thread, where mapping and staging happen. Each side's
    pages stay one after another: a Graph nextLink and a Salesforce nextRecordsUrl
    come with the page before, and a queryMore locator is opaque (Salesforce
    documents no way to ask for a later batch of a query cursor before the one
    before it), so a listing's own pages cannot be asked for in parallel.
    """
    pages, _ = _sf_listing(salesforce, kind, policy, cursor, now, full=full)
    salesforce.ahead(fanout, pages)
    link, window = _outlook_round(kind, policy, cursor, now, full=full)
    outlook.ensure_container()  # a To Do list lookup, while Salesforce's first page is on its way
    outlook.ahead(fanout, link, window)


def confirm_outlook(
    side: OutlookSide,
    kind: str,
    policy: EnginePolicy,
    now: datetime,
    ids: Iterable[str],
    into: Fetched,
) -> None:
    """Read back Outlook items reported removed (or missing from a full round)."""
    ids = sorted(set(ids))
    for item_id, payload in side.get_many(ids).items():
        if payload is None:
            into.outlook[item_id] = Item(
                side=OUTLOOK, id=item_id, deleted=True, container=into.container
            )
        else:
            # Keyed by the id asked for: an answer whose own id is unreadable is still
            # this item (an error), never a reason to think the item is gone.
            into.outlook[item_id] = outlook_item(
                kind, payload, policy, now, container=into.container, item_id=item_id
            )


def confirm_salesforce(
    side: SalesforceSide,
    kind: str,
    policy: EnginePolicy,
    now: datetime,
    ids: Iterable[str],
    into: Fetched,
    snapshot_hints: Hints | None = None,
) -> None:
    ids = sorted(set(ids))
    rows = side.get_many(ids)
    snapshot_hint = snapshot_hints([i for i, r in rows.items() if r]) if snapshot_hints else None
    series = SeriesReader(side, kind, policy, now)
    for item_id, row in rows.items():
        if row is None:
            into.salesforce[item_id] = Item(side=SALESFORCE, id=item_id, deleted=True)
        elif kind == CALENDAR and is_series_row(row):
            series.add(row)
        else:
            it = sf_item(kind, row, policy, now, snapshot_hint=snapshot_hint, item_id=item_id)
            owner = row.get("OwnerId") if isinstance(row, dict) else None
            if (
                not it.deleted
                and not it.error
                and side.owner_id
                and isinstance(owner, str)
                and owner != side.owner_id
                and not (kind == CONTACTS and policy.contact_scope == "all")
            ):
                # Handed to someone else: no longer ours to sync, and not deleted.
                it = dataclasses.replace(it, in_scope=False)
            into.salesforce[item_id] = it
    for it in series.items():
        into.salesforce[it.id] = it


def _sf_ids(rows: list) -> list[str]:
    """The readable record ids of a page (a malformed row becomes an item error later)."""
    return [r["Id"] for r in rows if isinstance(r, dict) and isinstance(r.get("Id"), str)]
