"""Reads: calendarView expansion and the delta rounds of events, contacts and tasks.

A delta state is (sync generation, kind, list, window, last processed change
sequence, position inside the next item's expansion, high-water mark). Every
page is a keyset scan of `Item` over (mailbox, kind, seq) — no offsets, so a
delete during paging cannot make the scan skip an item.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Q

from .models import Item, ItemKind, Mailbox
from .resources import (
    GraphError,
    View,
    event_json,
    item_json,
    removed_json,
    series_occurrences,
    task_json,
)
from .wire import UTC

SCAN_CHUNK = 500


# --- opaque tokens --------------------------------------------------------------------------

def _sign(raw: bytes) -> str:
    return hmac.new(f"sandbox-delta:{settings.SECRET_KEY}".encode(), raw, hashlib.sha256).hexdigest()[:20]


def token_encode(state: dict) -> str:
    raw = json.dumps(state, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=") + "." + _sign(raw)


def sync_state_not_found() -> GraphError:
    return GraphError(410, "syncStateNotFound", "The sync state generation is not found or has expired. "
                      "Start again from the initial request.")


def token_decode(token: str, *, mailbox: Mailbox, kind: str, parent_id: int | None) -> dict:
    """The state behind a skiptoken/deltatoken, or 410 syncStateNotFound when it can't be used."""
    try:
        body, sig = token.rsplit(".", 1)
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        if not hmac.compare_digest(sig, _sign(raw)):
            raise ValueError("bad signature")
        state = json.loads(raw)
    except (ValueError, TypeError) as exc:
        raise sync_state_not_found() from exc
    if state.get("m") != mailbox.pk or state.get("k") != kind or state.get("p") != parent_id:
        raise sync_state_not_found()
    if state.get("g") != mailbox.sync_generation:
        raise sync_state_not_found()
    return state


def initial_state(*, mailbox: Mailbox, kind: str, parent_id: int | None,
                  window: tuple[dt.datetime, dt.datetime] | None) -> dict:
    return {
        "m": mailbox.pk, "g": mailbox.sync_generation, "k": kind, "p": parent_id, "s": 0, "o": 0,
        "i": 1, "h": mailbox.change_seq,
        "w": [int(window[0].timestamp()), int(window[1].timestamp())] if window else None,
    }


def _window(state: dict) -> tuple[dt.datetime, dt.datetime] | None:
    if not state.get("w"):
        return None
    return (dt.datetime.fromtimestamp(state["w"][0], UTC), dt.datetime.fromtimestamp(state["w"][1], UTC))


# --- event expansion ----------------------------------------------------------------------------

def _overlaps(item: Item, window) -> bool:
    return item.start_utc < window[1] and (item.end_utc is None or item.end_utc > window[0])


def _exception_starts(masters: list[Item]) -> dict[int, set]:
    """Original starts already replaced by an exception row, per master: one query per page."""
    out: dict[int, set] = {m.pk: set() for m in masters}
    if masters:
        for parent_id, original in Item.objects.filter(parent__in=masters, event_type="exception").values_list(
            "parent_id", "original_start"
        ):
            out[parent_id].add(original)
    return out


def _master_occurrences(master: Item, window, replaced: set, view: View) -> list[dict]:
    return [
        event_json(master, view, occurrence=span)
        for span in series_occurrences(master, window)
        if span[0] not in replaced
    ]


def _event_outputs(item: Item, window, view: View, initial: bool, replaced: set) -> list[dict]:
    if item.event_type == "seriesMaster":
        removed = [removed_json(ItemKind.EVENT, gid) for gid in item.data.get("_removedOccurrences", [])]
        if item.deleted:
            from .wire import occurrence_id

            return removed + [removed_json(ItemKind.EVENT, occurrence_id(item.graph_id, span[0]))
                              for span in series_occurrences(item, window)]
        return ([] if initial else removed) + _master_occurrences(item, window, replaced, view)
    if item.deleted or item.cancelled or not _overlaps(item, window):
        return [] if initial else [removed_json(ItemKind.EVENT, item.graph_id)]
    return [event_json(item, view)]


def calendar_view(mailbox: Mailbox, window, view: View) -> list[dict]:
    """Every occurrence, exception and single instance in the window, by start."""
    rows = list(
        Item.objects.filter(mailbox=mailbox, kind=ItemKind.EVENT, deleted=False, start_utc__lt=window[1])
        .filter(Q(end_utc__gt=window[0]) | Q(end_utc__isnull=True))
        .select_related("mailbox", "parent")
    )
    masters = [r for r in rows if r.event_type == "seriesMaster"]
    replaced = _exception_starts(masters)
    out = []
    for row in rows:
        if row.event_type == "seriesMaster":
            out.extend(_master_occurrences(row, window, replaced[row.pk], view))
        elif not row.cancelled and _overlaps(row, window):
            out.append(event_json(row, view))
    out.sort(key=lambda e: (e["start"]["dateTime"], e["id"]))
    return out


# --- a delta page ------------------------------------------------------------------------------

@dataclass
class Page:
    values: list[dict]
    state: dict
    done: bool


def _scan(mailbox: Mailbox, state: dict, after: int, limit: int):
    # Through the mailbox's manager each row gets this mailbox object, not a joined copy per row;
    # only an event reads its parent (an exception's series master).
    rows = mailbox.items.filter(kind=state["k"], seq__gt=after)
    if state["p"] is not None:
        rows = rows.filter(parent_id=state["p"])
    if state["i"]:  # the first round lists what exists now; tombstones are news only later
        rows = rows.filter(deleted=False)
        window = _window(state)
        if window is not None:
            rows = rows.filter(start_utc__lt=window[1]).filter(Q(end_utc__gt=window[0]) | Q(end_utc__isnull=True))
    if state["k"] == ItemKind.EVENT:
        rows = rows.select_related("parent")
    return list(rows.order_by("seq")[:limit])


def delta_page(mailbox: Mailbox, state: dict, page_size: int, view: View) -> Page:
    window = _window(state)
    initial = bool(state["i"])
    values: list[dict] = []
    after, skip = state["s"], state["o"]
    while True:
        rows = _scan(mailbox, state, after, SCAN_CHUNK)
        if not rows:
            done_state = {**state, "s": max(after, state["h"]), "o": 0, "i": 0, "h": 0}
            return Page(values, done_state, True)
        replaced = _exception_starts([r for r in rows if r.event_type == "seriesMaster"])
        for row in rows:
            if row.kind == ItemKind.EVENT:
                outputs = _event_outputs(row, window, view, initial, replaced.get(row.pk, set()))
            elif row.deleted:
                outputs = [] if initial else [removed_json(row.kind, row.graph_id)]
            elif row.kind == ItemKind.TODO_TASK:
                outputs = [task_json(row, view)]
            else:
                outputs = [item_json(row, view)]
            outputs = outputs[skip:]
            room = page_size - len(values)
            if len(outputs) > room:
                values.extend(outputs[:room])
                return Page(values, {**state, "s": after, "o": skip + room}, False)
            values.extend(outputs)
            after, skip = row.seq, 0
            if len(values) >= page_size:
                more = _scan(mailbox, state, after, 1)
                if not more:
                    done_state = {**state, "s": max(after, state["h"]), "o": 0, "i": 0, "h": 0}
                    return Page(values, done_state, True)
                return Page(values, {**state, "s": after, "o": 0}, False)


def delta_round_start(state: dict, mailbox: Mailbox) -> dict:
    """A deltatoken starts a new round: remember the high-water mark of this round."""
    return {**state, "h": mailbox.change_seq}
