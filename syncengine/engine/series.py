"""Calendar series as one item per side, with their occurrences keyed by original start.

Salesforce stores a Lightning event series as one Event record per occurrence
(the series-pattern record is not an occurrence and is not returned by SOQL);
siblings share ``OwnerId``, ``Recurrence2PatternStartDate``,
``Recurrence2PatternText`` and ``Recurrence2PatternTimeZone`` and nothing else
names the series. A Salesforce series must never become N Outlook events, so
every occurrence row a read brings (a full listing, a changed or deleted row of
an incremental read, a row read back by id) is set aside and its whole group is
read again, one query for many series, before anything is decided. The group
becomes one ``Item``:

- its id is the Id of the occurrence carrying our key (the one our create
  returned), else of the earliest occurrence — what a series link holds;
- its content is the pattern (from the RRULE) with the fields of its
  non-exception occurrences (the first future one: since API 58.0 an edit of
  a future occurrence is an edit of the series from there on, past ones keep
  their old values as history), starting at ``Recurrence2PatternStartDate``;
- its version is the latest ``SystemModstamp`` of the group, so a change of
  any occurrence reaches the planner;
- ``occurrences`` lists every slot of the pattern: the row holding it (by
  original start: a non-exception row sits at its slot, exception rows fill
  the slots left, in order), what differs from the pattern for an exception,
  and ``cancelled`` for a slot no row holds (a deleted occurrence).

Known limit: two series of one owner with the same first start, pattern text and
zone share every field the API offers (there is no series id), so they read as one
series; the occurrence slots of moved exceptions are guessed in order (Salesforce
keeps no original start), and a Salesforce user deleting a series' first occurrence
(the record holding our key) leaves the rest unrecognised until a Rebuild.

Outlook: a series master's occurrences come from ``/instances`` over the
calendar window (``occurrences_from_instances``); a slot of the pattern in the
window without an instance is a cancelled occurrence; an ``exception`` whose
time, subject or location differ from the pattern is a changed occurrence.
Outside the window nothing is known (``Occurrences.covers``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from .mapping import recurrence as rec
from .mapping.common import norm_text, read_flag
from .mapping.events import CanonicalEvent, series_zone
from .records import OUTLOOK, SALESFORCE, Item

SERIES_FIELDS = (
    "OwnerId",
    "Recurrence2PatternStartDate",
    "Recurrence2PatternText",
    "Recurrence2PatternTimeZone",
)
CONTENT = ("start", "end", "subject", "location")
# The most occurrence rows one series holds (Salesforce: COUNT ≤ 999) — a group query
# asks for this many series' start dates at once, far below a SOQL statement's length.
GROUP_QUERY_SERIES = 100


# ---------------------------------------------------------------- values


@dataclass(frozen=True)
class Occurrence:
    """One slot of a series on one side. ``original``: its original start as a key
    (``YYYY-MM-DDTHH:MM`` UTC, or ``YYYY-MM-DD`` for all-day series); ``id``: the
    occurrence's own id on that side ("" when cancelled); ``changed``: the content
    that differs from the pattern, as sorted (field, value) pairs, () when none."""

    original: str
    id: str = ""
    cancelled: bool = False
    changed: tuple[tuple[str, str], ...] = ()
    version: str = ""

    @property
    def state(self) -> str:
        return "cancelled" if self.cancelled else ("changed" if self.changed else "normal")

    def content(self) -> dict[str, str]:
        return dict(self.changed)


@dataclass(frozen=True)
class Occurrences:
    """A series' slots as one side holds them. ``start``/``end``: the original starts
    that side was read for ("" = all of them)."""

    slots: tuple[Occurrence, ...] = ()
    start: str = ""
    end: str = ""
    # Salesforce: the series was re-created there (its pattern changed in Salesforce's
    # calendar); these rows are the history it kept, ending the series at the last.
    recreated: bool = False

    def covers(self, original: str) -> bool:
        return (not self.start or original >= self.start) and (not self.end or original < self.end)

    def by_original(self) -> dict[str, Occurrence]:
        return {o.original: o for o in self.slots}


def occ_key(value: datetime | date) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")
    return value.isoformat()


def key_instant(key: str) -> datetime:
    if "T" in key:
        return datetime.strptime(key, "%Y-%m-%dT%H:%M").replace(tzinfo=UTC)
    return datetime.combine(date.fromisoformat(key), time(0), tzinfo=UTC)


def key_words(key: str) -> str:
    """How a member reads an original start."""
    return key.replace("T", " ") + (" UTC" if "T" in key else "")


def pattern_slots(c: CanonicalEvent, *, through: date | None = None) -> list[str]:
    """The original starts of a series' occurrences (keys), up to ``through``."""
    r = c.recurrence
    assert r is not None
    if c.is_all_day:
        return [occ_key(d) for d in rec.occurrence_dates(r, c.start_date, through=through)]
    assert c.start is not None
    return [occ_key(s) for s in rec.occurrence_starts(r, c.start, series_zone(c), through=through)]


def expected_content(c: CanonicalEvent, original: str) -> dict[str, str]:
    """What an occurrence holds when it follows its series."""
    if c.is_all_day:
        first = date.fromisoformat(original)
        start, end = first.isoformat(), (first + timedelta(days=c.days)).isoformat()
    else:
        s = key_instant(original)
        start, end = occ_key(s), occ_key(s + (c.end - c.start))
    return {"start": start, "end": end, "subject": c.subject, "location": c.location}


def diff_content(c: CanonicalEvent, original: str, actual: dict[str, str]) -> tuple:
    want = expected_content(c, original)
    return tuple(sorted((k, v) for k, v in actual.items() if want.get(k) != v))


# ---------------------------------------------------------------- Salesforce


def is_series_row(row: Any) -> bool:
    return (
        isinstance(row, dict)
        and read_flag(row, "IsRecurrence2")
        and isinstance(row.get("Recurrence2PatternText"), str)
        and bool(row.get("Recurrence2PatternText"))
    )


def group_key(row: dict) -> tuple:
    return tuple(str(row.get(f) or "") for f in SERIES_FIELDS)


def _sf_start(row: dict) -> str:
    return str(row.get("StartDateTime") or row.get("ActivityDate") or "")


def _duration(row: dict) -> int:
    minutes = row.get("DurationInMinutes")
    if isinstance(minutes, int) and not isinstance(minutes, bool):
        return minutes
    try:
        s = datetime.fromisoformat(str(row["StartDateTime"]).replace("+0000", "+00:00"))
        e = datetime.fromisoformat(str(row["EndDateTime"]).replace("+0000", "+00:00"))
        return int((e - s).total_seconds() // 60)
    except (KeyError, ValueError, TypeError):
        return 0


def _parse_sf(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        text = value.replace("Z", "+00:00")
        if len(text) >= 5 and text[-5] in "+-" and text[-3] != ":":
            text = text[:-2] + ":" + text[-2:]
        return datetime.fromisoformat(text).astimezone(UTC)
    except ValueError:
        return None


def _fmt_sf(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def series_row(rows: list[dict], now: datetime) -> tuple[dict, dict]:
    """(the row that names the series, a row standing for the whole series)."""
    from .kinds import SF_KEY_FIELD, _our_key

    ordered = sorted(rows, key=_sf_start)
    keyed = [r for r in ordered if _our_key(str(r.get(SF_KEY_FIELD) or ""))]
    head = keyed[0] if keyed else ordered[0]
    plain = [r for r in ordered if not read_flag(r, "IsRecurrence2Exception")] or ordered
    future = [r for r in plain if (_parse_sf(r.get("StartDateTime")) or now) >= now]
    rep = future[0] if future else plain[-1]
    first = _parse_sf(head.get("Recurrence2PatternStartDate")) or _parse_sf(
        min((r.get("StartDateTime") or "" for r in ordered), default="")
    )
    synthetic = {**rep, "Id": head.get("Id"), SF_KEY_FIELD: head.get(SF_KEY_FIELD)}
    stamps = [str(r.get("SystemModstamp") or "") for r in rows]
    synthetic["SystemModstamp"] = max(stamps) if stamps else ""
    if first is not None:
        minutes = _duration(rep)
        rep_start = _parse_sf(rep.get("StartDateTime"))
        reminder = _parse_sf(rep.get("ReminderDateTime"))
        if reminder is not None and rep_start is not None:
            # The reminder keeps its lead before the start it now stands for.
            synthetic["ReminderDateTime"] = _fmt_sf(reminder - (rep_start - first))
        synthetic["StartDateTime"] = _fmt_sf(first)
        synthetic["ActivityDateTime"] = _fmt_sf(first)
        if read_flag(rep, "IsAllDayEvent"):
            synthetic["ActivityDate"] = first.date().isoformat()
            synthetic.pop("EndDateTime", None)
            synthetic.pop("EndDate", None)
        else:
            synthetic["EndDateTime"] = _fmt_sf(first + timedelta(minutes=minutes))
    return head, synthetic


def _row_content(row: dict, all_day: bool) -> dict[str, str]:
    if all_day:
        first = date.fromisoformat(str(row.get("ActivityDate") or _sf_start(row))[:10])
        days = max(1, -(-_duration(row) // 1440)) if _duration(row) else 1
        start, end = first.isoformat(), (first + timedelta(days=days)).isoformat()
    else:
        s = _parse_sf(row.get("StartDateTime"))
        e = _parse_sf(row.get("EndDateTime")) or (
            s + timedelta(minutes=_duration(row)) if s else None
        )
        start, end = (occ_key(s) if s else ""), (occ_key(e) if e else "")
    return {
        "start": start,
        "end": end,
        "subject": " ".join(norm_text(row.get("Subject") or "").split()),
        "location": " ".join(norm_text(row.get("Location") or "").split()),
    }


def sf_occurrences(c: CanonicalEvent, rows: list[dict]) -> Occurrences:
    """Each slot of the pattern with the Salesforce row holding it."""
    slots = pattern_slots(c)
    free = set(slots)
    placed: dict[str, dict] = {}
    leftover = []
    for row in sorted(rows, key=_sf_start):
        content = _row_content(row, c.is_all_day)
        where = content["start"]
        if not read_flag(row, "IsRecurrence2Exception") and where in free:
            placed[where] = row
            free.discard(where)
        else:
            leftover.append(row)
    moved = []
    for row in leftover:  # an exception still at its own slot (only its details changed)
        where = _row_content(row, c.is_all_day)["start"]
        if where in free:
            placed[where] = row
            free.discard(where)
        else:
            moved.append(row)
    # Moved occurrences take the slots left, in order (Salesforce keeps no original start).
    for slot, row in zip(sorted(free), moved, strict=False):
        placed[slot] = row
    out = []
    for slot in slots:
        row = placed.get(slot)
        if row is None:
            out.append(Occurrence(original=slot, cancelled=True))
            continue
        changed = ()
        if read_flag(row, "IsRecurrence2Exception") or any(row is x for x in leftover):
            changed = diff_content(c, slot, _row_content(row, c.is_all_day))
        out.append(
            Occurrence(
                original=slot,
                id=str(row.get("Id") or ""),
                changed=changed,
                version=str(row.get("SystemModstamp") or ""),
            )
        )
    return Occurrences(slots=tuple(out))


class SeriesReader:
    """Sets aside the occurrence rows a Salesforce read brings, then reads their whole
    series (one query per GROUP_QUERY_SERIES series) and maps each as one Item."""

    def __init__(self, side, kind: str, policy, now: datetime, *, known=None):
        self.side = side
        self.kind = kind
        self.policy = policy
        self.now = now
        self.reported: dict[tuple, list[dict]] = {}
        # known({start key: [latest stamp of each series reported]}) → the starts of linked series that
        # have seen those stamps already (rows an incremental read's overlap re-reports):
        # their group is not read again, so a quiet run stays one query.
        self.known = known

    def add(self, row: dict) -> None:
        from .kinds import SF_KEY_FIELD

        if is_history_key(row.get(SF_KEY_FIELD)):
            return  # the past of a series LinkPoint re-created: history, not synced
        self.reported.setdefault(group_key(row), []).append(row)

    def items(self) -> Iterable[Item]:
        if not self.reported:
            return []
        if self.known is not None:
            latest: dict[str, list[str]] = {}
            for key, rows in self.reported.items():
                start = _parse_sf(key[1])
                if start is not None:
                    stamp = max(str(r.get("SystemModstamp") or "") for r in rows)
                    latest.setdefault(occ_key(start), []).append(stamp)
            seen = self.known(latest) if latest else set()
            self.reported = {
                k: v for k, v in self.reported.items()
                if not (_parse_sf(k[1]) and occ_key(_parse_sf(k[1])) in seen)
            }  # fmt: skip
        from .kinds import SF_KEY_FIELD, _our_key

        starts = sorted({k[1] for k in self.reported if k[1]})
        groups: dict[tuple, list[dict]] = {}
        stamps: dict[tuple, str] = {}
        retired: set[tuple] = set()
        for i in range(0, len(starts), GROUP_QUERY_SERIES):
            for page in self.side.series_pages(starts[i : i + GROUP_QUERY_SERIES]):
                for row in page:
                    if not is_series_row(row):
                        continue
                    key = group_key(row)
                    if is_history_key(row.get(SF_KEY_FIELD)):
                        retired.add(key)  # our history key: the whole old series is history
                        continue
                    # Deleted occurrences count for the version: a deletion is a change.
                    stamps[key] = max(stamps.get(key, ""), str(row.get("SystemModstamp") or ""))
                    if not read_flag(row, "IsDeleted"):
                        groups.setdefault(key, []).append(row)
        out: list[Item] = []
        for key, reported in self.reported.items():
            if key in retired:
                continue  # the past of a series LinkPoint re-created: history, not synced
            live = groups.get(key)
            recreated = bool(live) and all(read_flag(r, "IsRecurrence2Exclusion") for r in live)
            if recreated and not any(_our_key(str(r.get(SF_KEY_FIELD) or "")) for r in live):
                continue  # history of a series re-created in Salesforce that was never ours
            if live:
                it = sf_series_item(self.kind, live, self.policy, self.now, recreated=recreated)
                if stamps.get(key) and not it.deleted:
                    it = dataclasses.replace(it, version=max(it.version, stamps[key]))
                out.append(it)
                continue
            # The whole series is gone: each reported row reads as deleted (the
            # series link holds one of their Ids).
            for row in reported:
                if isinstance(row.get("Id"), str) and row["Id"]:
                    out.append(Item(side=SALESFORCE, id=row["Id"], deleted=True))
        return out


def sf_series_item(
    kind: str, rows: list[dict], policy, now: datetime, *, recreated: bool = False
) -> Item:
    """One Item for a series' occurrence rows. ``recreated``: every row is history
    (``IsRecurrence2Exclusion``) — a Salesforce user changed the pattern and Salesforce
    started a new series; this one reads as ending at its last occurrence kept."""
    from .kinds import sf_item
    from .mapping import canonical_hash

    _head, synthetic = series_row(rows, now)
    it = sf_item(kind, synthetic, policy, now)
    if it.error or it.record is None or it.record.recurrence is None:
        return it
    if recreated:
        last = max(rows, key=_sf_start)
        if it.record.is_all_day:
            last_day = date.fromisoformat(str(last.get("ActivityDate") or _sf_start(last))[:10])
        else:
            moment = _parse_sf(last.get("StartDateTime"))
            if moment is None:
                return it
            last_day = moment.astimezone(series_zone(it.record)).date()
        ended = dataclasses.replace(it.record.recurrence, end_date=last_day, count=None)
        record = dataclasses.replace(it.record, recurrence=ended)
        it = dataclasses.replace(it, record=record, hash=canonical_hash(record))
    try:
        occ = sf_occurrences(it.record, rows)
    except (ValueError, OverflowError):
        return it
    if recreated:
        occ = dataclasses.replace(occ, recreated=True)
    # A series is in range when any of its occurrences is (scope reads the pattern).
    return dataclasses.replace(it, occurrences=occ)


# ---------------------------------------------------------------- Outlook


def _graph_content(payload: dict, all_day: bool) -> dict[str, str] | None:
    from .mapping import MappingError
    from .mapping import events as m_events

    try:
        c = m_events.from_graph({**payload, "recurrence": None})
    except MappingError:
        return None
    if all_day:
        start, end = c.start_date.isoformat(), c.end_date.isoformat()
    else:
        start, end = occ_key(c.start), occ_key(c.end)
    return {"start": start, "end": end, "subject": c.subject, "location": c.location}


def occurrences_from_instances(
    c: CanonicalEvent, instances: list[dict], window_start: datetime, window_end: datetime
) -> Occurrences:
    """The master's slots in the window, from Graph's ``/instances`` answer."""
    lo, hi = occ_key(window_start), occ_key(window_end)
    if c.is_all_day:
        lo, hi = lo[:10], hi[:10]
    by_original: dict[str, dict] = {}
    for inst in instances:
        if not isinstance(inst, dict):
            continue
        original = inst.get("originalStart")
        instant = _parse_sf(original) if isinstance(original, str) else None
        if instant is None:
            continue
        by_original[occ_key(instant.date() if c.is_all_day else instant)] = inst
    out = []
    through = window_end.date() + timedelta(days=1)
    for slot in pattern_slots(c, through=through):
        if not (lo <= slot < hi):
            continue
        inst = by_original.get(slot)
        if inst is None:
            out.append(Occurrence(original=slot, cancelled=True))
            continue
        changed: tuple = ()
        if inst.get("type") == "exception":
            content = _graph_content(inst, c.is_all_day)
            if content is not None:
                changed = diff_content(c, slot, content)
        out.append(
            Occurrence(
                original=slot,
                id=str(inst.get("id") or ""),
                changed=changed,
                version=str(inst.get("changeKey") or ""),
            )
        )
    return Occurrences(slots=tuple(out), start=lo, end=hi)


def with_instances(
    items: Iterable[Item], fetch: Callable[[list[str]], dict[str, list[dict] | None]], window
) -> list[Item]:
    """Outlook series masters with their occurrences read (one $batch per 20 masters)."""
    items = list(items)
    want = [
        it.id
        for it in items
        if it.side == OUTLOOK
        and not it.deleted
        and not it.error
        and it.record is not None
        and getattr(it.record, "recurrence", None) is not None
        and it.occurrences is None
    ]
    if not want or window is None:
        return []
    got = fetch(want)
    out = []
    for it in items:
        if it.id in got and got[it.id] is not None:
            try:
                occ = occurrences_from_instances(it.record, got[it.id], window.start, window.end)
            except (ValueError, OverflowError):
                continue
            out.append(dataclasses.replace(it, occurrences=occ))
    return out


# ---------------------------------------------------------------- deciding occurrences


@dataclass(frozen=True)
class Stored:
    """A SyncOccurrence row as the planner reads it."""

    original: str
    state: str  # changed | cancelled | kept
    outlook_id: str = ""
    sf_id: str = ""
    content: tuple[tuple[str, str], ...] = ()


def stored_occurrences(link) -> tuple[Stored, ...]:
    """The link's occurrence rows, when the caller prefetched them (else none)."""
    cache = getattr(link, "_prefetched_objects_cache", None) or {}
    if "occurrences" not in cache:
        return ()
    return tuple(
        Stored(
            original=o.original_start,
            state=o.state,
            outlook_id=o.outlook_id,
            sf_id=o.sf_id,
            content=tuple(sorted((o.content or {}).items())),
        )
        for o in cache["occurrences"]
    )


@dataclass(frozen=True)
class OccurrenceChange:
    """What the applier does for one occurrence: ``op`` on ``side`` (update, delete,
    or "" for bookkeeping only), then record ``state``/``content`` as agreed."""

    original: str
    side: str
    op: str
    state: str  # normal | changed | cancelled | kept
    content: tuple[tuple[str, str], ...] = ()
    target_id: str = ""
    target_version: str = ""
    outlook_id: str = ""
    sf_id: str = ""
    # The occurrence's whole content once written (start, end, subject, location).
    body: tuple[tuple[str, str], ...] = ()
    all_day: bool = False
    time_zone: str = "UTC"


NORMAL = ("normal", ())


def _view(slot: Occurrence | None) -> tuple[str, tuple]:
    if slot is None:
        return NORMAL
    if slot.cancelled:
        return ("cancelled", ())
    return ("changed", slot.changed) if slot.changed else NORMAL


def _bases(stored: Stored | None) -> tuple[tuple, tuple]:
    """(Outlook, Salesforce) as last agreed."""
    if stored is None:
        return NORMAL, NORMAL
    if stored.state == "kept":
        return ("cancelled", ()), NORMAL
    return (stored.state, stored.content), (stored.state, stored.content)


def _side_view(occ: Occurrences | None, key: str, base: tuple) -> tuple | None:
    """What one side holds at ``key``: None when it was not read there."""
    if occ is None or not occ.covers(key):
        return None
    slots = occ.by_original()
    if key not in slots:
        return None if occ.start == "" else NORMAL
    return _view(slots[key])


def _words(view: tuple, original: str) -> str:
    state, content = view
    if state == "cancelled":
        return "cancelled"
    if state == "normal":
        return "back to the series' own time and details"
    parts = []
    values = dict(content)
    for name in ("start", "end"):
        if name in values:
            parts.append(f"{name} {key_words(values[name])}")
    for name in ("subject", "location"):
        if name in values:
            parts.append(f"{name} “{values[name][:80]}”")
    return "changed (" + ", ".join(parts) + ")" if parts else "changed"


def decide_occurrences(policy, link, o: Item | None, s: Item | None) -> list:
    """Decisions for the occurrences of one linked series that moved on either side
    since they were last agreed (changed or cancelled on their own)."""
    from .records import Decision, Write, other

    settled = (
        "synced",
        "out_of_scope",
        "conflict",
        "pending_update_outlook",
        "pending_update_salesforce",
    )
    if link is None or link.state not in settled:
        return []
    if o is None or s is None or o.record is None or s.record is None:
        return []
    o_occ, s_occ = o.occurrences, s.occurrences
    if o_occ is None and s_occ is None:
        return []
    c = o.record
    if c.recurrence is None or s.record.recurrence != c.recurrence:
        return []  # the pattern itself differs: the series decision deals with that first
    stored = {x.original: x for x in link.occurrences}
    keys = set(stored)
    for occ in (o_occ, s_occ):
        if occ is not None:
            keys.update(x.original for x in occ.slots if x.cancelled or x.changed)
    o_slots = o_occ.by_original() if o_occ is not None else {}
    s_slots = s_occ.by_original() if s_occ is not None else {}
    out = []
    for key in sorted(keys):
        base_o, base_s = _bases(stored.get(key))
        ov = _side_view(o_occ, key, base_o)
        sv = _side_view(s_occ, key, base_s)
        ov = base_o if ov is None else ov
        sv = base_s if sv is None else sv
        o_moved, s_moved = ov != base_o, sv != base_s
        if not (o_moved or s_moved):
            continue
        if o_moved and s_moved and ov != sv:
            # Neither API brings one cancelled occurrence back, so a cancellation wins
            # over an edit of the same occurrence; otherwise the conflict winner.
            if "cancelled" in (ov[0], sv[0]):
                src = OUTLOOK if ov[0] == "cancelled" else SALESFORCE
            else:
                src = OUTLOOK if policy.conflict_winner == OUTLOOK else SALESFORCE
        else:
            src = OUTLOOK if o_moved else SALESFORCE
        dest = other(src)
        value = ov if src == OUTLOOK else sv
        current = sv if src == OUTLOOK else ov
        o_slot, s_slot = o_slots.get(key), s_slots.get(key)
        label = f"occurrence of {key_words(key)} “{c.subject[:80] or '(no subject)'}”"
        items = {
            "outlook": Item(
                side=OUTLOOK,
                id=(o_slot.id if o_slot else "") or "",
                version=o_slot.version if o_slot else "",
                label="Outlook " + label,
            ),
            "sf": Item(
                side=SALESFORCE,
                id=(s_slot.id if s_slot else "") or "",
                version=s_slot.version if s_slot else "",
                label="Salesforce " + label,
            ),
        }
        where = "Outlook" if src == OUTLOOK else "Salesforce"
        there = "Salesforce" if dest == SALESFORCE else "Outlook"
        said = f"Occurrence originally on {key_words(key)} {_words(value, key)} in {where}"
        change = dict(
            original=key,
            side=dest,
            state=value[0],
            content=value[1],
            outlook_id=o_slot.id if o_slot else "",
            sf_id=s_slot.id if s_slot else "",
            all_day=c.is_all_day,
            time_zone=c.time_zone,
        )
        if current == value:
            out.append(Decision(
                link_key=link.link_key, action="occurrence", link=link, **items,
                message=f"{said}; {there} already holds it.", rule="occurrence_same",
                occurrence=OccurrenceChange(op="", **change),
            ))  # fmt: skip
            continue
        if not policy.writes_to(dest) or link.one_way_from == dest:
            continue
        dest_slot = s_slot if dest == SALESFORCE else o_slot
        if dest_slot is None or not dest_slot.id:
            continue  # not held there (beyond its range, or already cancelled): nothing to write
        if value[0] == "cancelled":
            if dest == SALESFORCE and dest_slot.id == link.sf_id:
                out.append(Decision(
                    link_key=link.link_key, action="occurrence", link=link, **items,
                    message=(f"{said}; Salesforce keeps it: it is the series' first occurrence, "
                             "which names the series there (deleting it would drop LinkPoint's "
                             "key and the series would no longer be recognised)."),
                    rule="occurrence_kept",
                    occurrence=OccurrenceChange(op="", **{**change, "state": "kept"}),
                ))  # fmt: skip
                continue
            if not policy.deletes_to(dest):
                continue
            op, rule = "delete", "occurrence_cancelled"
            note = f"{said}: deleted in {there} (that occurrence only)."
        else:
            op, rule = "update", "occurrence_changed"
            note = f"{said}: copied to {there} (that occurrence only)."
        if o_moved and s_moved:
            note += (
                f" It was changed in {there} too ({_words(current, key)}); that change gave way."
            )
        body = {**expected_content(c, key), **dict(value[1])}
        out.append(Decision(
            link_key=link.link_key, action="occurrence", link=link, **items,
            writes=(Write(dest, op),), message=note, rule=rule,
            occurrence=OccurrenceChange(
                op=op, target_id=dest_slot.id, target_version=dest_slot.version,
                body=tuple(sorted(body.items())), **change,
            ),
        ))  # fmt: skip
    return out


# ---------------------------------------------------------------- writing

# Below API 58.0 an update of one event-series occurrence changes that occurrence only
# (IsRecurrence2Exception set); from 58.0 an update of a future occurrence changes the
# whole series from there on. One occurrence is therefore written at 57.0 — the
# documented behaviour of that version — instead of deleting it and recording a single
# Event in its place, which would take it out of its series in Salesforce.
OCCURRENCE_API_VERSION = "57.0"


def occurrence_sf_body(ch: OccurrenceChange) -> dict:
    from .mapping.common import format_sf_datetime

    values = dict(ch.body)
    body: dict[str, Any] = {
        "Id": ch.target_id,
        "Subject": values.get("subject") or None,
        "Location": values.get("location") or None,
    }
    if ch.all_day:
        first, last = date.fromisoformat(values["start"]), date.fromisoformat(values["end"])
        body.update(
            ActivityDate=first.isoformat(),
            StartDateTime=format_sf_datetime(datetime.combine(first, time(0), tzinfo=UTC)),
            DurationInMinutes=(last - first).days * 1440,
        )
    else:
        start, end = key_instant(values["start"]), key_instant(values["end"])
        body.update(
            StartDateTime=format_sf_datetime(start),
            EndDateTime=format_sf_datetime(end),
            DurationInMinutes=int((end - start).total_seconds() // 60),
        )
    return body


def occurrence_graph_body(ch: OccurrenceChange) -> dict:
    from .mapping.timezones import graph_zone_name

    values = dict(ch.body)
    body: dict[str, Any] = {
        "subject": values.get("subject") or "",
        "location": {"displayName": values.get("location") or ""},
    }
    if ch.all_day:
        zone = graph_zone_name(ch.time_zone or "UTC")
        body["start"] = {"dateTime": f"{values['start']}T00:00:00.0000000", "timeZone": zone}
        body["end"] = {"dateTime": f"{values['end']}T00:00:00.0000000", "timeZone": zone}
    else:
        for name in ("start", "end"):
            wall = key_instant(values[name]).strftime("%Y-%m-%dT%H:%M:%S.0000000")
            body[name] = {"dateTime": wall, "timeZone": "UTC"}
    return body


def first_future_slot(occ: Occurrences | None, now: datetime) -> Occurrence | None:
    """The occurrence a series-wide Salesforce write goes to: the first future one that
    follows the series (from API 58.0 an update there changes the series from then on;
    past occurrences are history and keep their values)."""
    if occ is None:
        return None
    cut = occ_key(now)
    for slot in occ.slots:
        key = slot.original if "T" in slot.original else slot.original + "T00:00"
        if key >= cut and not slot.cancelled and not slot.changed and slot.id:
            return slot
    return None


def retarget_series_body(body: dict, c: CanonicalEvent, slot: Occurrence) -> dict:
    """An update of the series, sent to the occurrence ``slot``: its own date, with the
    series' (new) time of day in the series' zone, and the reminder moved along."""
    from .mapping.common import format_sf_datetime

    out = {**body, "Id": slot.id}
    if c.is_all_day:
        day = date.fromisoformat(slot.original[:10])
        shift = timedelta(days=(day - c.start_date).days)
        out["ActivityDate"] = day.isoformat()
    else:
        zone = series_zone(c)
        day = key_instant(slot.original).astimezone(zone).date()
        start = datetime.combine(day, c.start.astimezone(zone).time(), tzinfo=zone).astimezone(UTC)
        shift = start - c.start
        out["EndDateTime"] = format_sf_datetime(start + (c.end - c.start))
    out["StartDateTime"] = format_sf_datetime(_parse_sf(body["StartDateTime"]) + shift)
    if body.get("ReminderDateTime"):
        out["ReminderDateTime"] = format_sf_datetime(_parse_sf(body["ReminderDateTime"]) + shift)
    return out


# ---------------------------------------------------------------- splits


def _recurrence_from_json(value: Any) -> rec.CanonicalRecurrence | None:
    if not isinstance(value, dict):
        return None
    kw = {k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}
    if kw.get("end_date"):
        kw["end_date"] = date.fromisoformat(kw["end_date"])
    try:
        return rec.CanonicalRecurrence(**kw)
    except TypeError:
        return None


def truncated_at(snapshot: dict | None, c: CanonicalEvent) -> str | None:
    """The last occurrence kept when Outlook ended a series earlier ("this and
    following": the master's range is cut short, the rest becomes a new series),
    as a key; None when the pattern changed otherwise (or not at all)."""
    before = _recurrence_from_json((snapshot or {}).get("recurrence"))
    after = c.recurrence
    if before is None or after is None or (after.end_date is None and after.count is None):
        return None
    if _bare(before) != _bare(after):
        return None
    if not c.is_all_day and str(snapshot.get("start") or "") != (c.projection().get("start") or ""):
        return None  # the series moved: a pattern change, not an earlier end
    slots = pattern_slots(c)
    if not slots:
        return None
    if before.end_date is None and before.count is None:
        return slots[-1]
    old = pattern_slots(dataclasses.replace(c, recurrence=before))
    return slots[-1] if old and slots[-1] < old[-1] else None


def slots_after(occ: Occurrences | None, last: str, now: datetime) -> Occurrence | None:
    """The first Salesforce occurrence after ``last`` that is not past (the past stays)."""
    if occ is None:
        return None
    cut = occ_key(now)
    for slot in occ.slots:
        key = slot.original if "T" in slot.original else slot.original + "T00:00"
        if slot.original > last and key >= cut and slot.id and not slot.cancelled:
            return slot
    return None


# ---------------------------------------------------------------- pattern changes
#
# Salesforce fixes a series' pattern, start and zone when it is created. When the
# pattern changes in Outlook, the series is re-created there the way Salesforce's own
# UI does it ("Updating Recurring Calendar Events": the series is deleted and created
# again, past occurrences stay as activity history): its occurrences from the first
# one not past are deleted (``fromThisEventOnwards``), and a new series with the new
# pattern starts at the new pattern's first occurrence not past. The past occurrences
# stay, with their old pattern. Steps, each safe to repeat, with the link saved first
# (``SyncLink.resume``, committed before any remote call, like a create's intent):
#
# 1. the old series' key holder gets the history key (our key cannot be on two records);
# 2. the old series is deleted from its first occurrence not past on;
# 3. the new series is created with our key.
#
# A run that dies in between finds the link pending with ``resume`` and carries on:
# the key still on the old series (step 1 not done) or on no series (1, maybe 2 done)
# means "do it again from where it is" (a deleted occurrence is not deleted twice, a
# key already moved is not moved again); the key on a new series means done.

HISTORY_VERSION = "8"


def history_key(key: str) -> str:
    """The key the past occurrences of a re-created series keep: the link key with its
    UUID version digit set to 8 (ours are version 4), so it fits LinkPoint_Key__c (36
    characters, unique) and can never be taken for a link key."""
    return key[:14] + HISTORY_VERSION + key[15:]


def is_history_key(value: Any) -> bool:
    from .kinds import _our_key

    key = _our_key(str(value or ""))
    return key is not None and key[14] == HISTORY_VERSION


def is_history_row(row: dict) -> bool:
    """An occurrence that no longer follows a series: kept as activity history when the
    series was re-created — by LinkPoint for a pattern change (history key), or by a
    Salesforce user changing the pattern (``IsRecurrence2Exclusion``)."""
    from .kinds import SF_KEY_FIELD

    return read_flag(row, "IsRecurrence2Exclusion") or is_history_key(row.get(SF_KEY_FIELD))


@dataclass(frozen=True)
class Repattern:
    """Re-create a linked Salesforce series with a changed pattern (see above)."""

    head: str  # the old series' occurrence holding our key
    onwards: str  # its first occurrence not past ("" when every one is past)
    cut: str  # the new series' first occurrence (a key)
    kept: int  # the old series' past occurrences that stay as history
    # Occurrences ahead that were changed on their own in Salesforce: deleted with the
    # old series' future (the member is told which).
    dropped: tuple[str, ...] = ()

    def as_json(self) -> dict:
        return {**dataclasses.asdict(self), "dropped": list(self.dropped)}


def _bare(r: rec.CanonicalRecurrence) -> rec.CanonicalRecurrence:
    """The pattern without its range; the first day of the week only where it places
    occurrences (weekly, several days, every n > 1 weeks), since Outlook and Salesforce
    each fill in their own default for it."""
    keep_week = r.pattern == "weekly" and r.interval > 1 and len(r.days_of_week) > 1
    return dataclasses.replace(
        r, end_date=None, count=None, first_day_of_week=r.first_day_of_week if keep_week else None
    )


def _not_past(slot: str, now: datetime) -> bool:
    return slot >= (occ_key(now)[:10] if "T" not in slot else occ_key(now))


def restart_from(c: CanonicalEvent, now: datetime) -> tuple[CanonicalEvent, str] | None:
    """The series ``c`` from its first occurrence not past on (same occurrences from
    there, a numbered range shortened by the ones before), and that occurrence's key;
    None when every occurrence is past."""
    slots = pattern_slots(c, through=(now + timedelta(days=366 * 5)).date())
    ahead = next((i for i, slot in enumerate(slots) if _not_past(slot, now)), None)
    if ahead is None:
        return None
    cut = slots[ahead]
    r = c.recurrence
    if r.count is not None:
        r = dataclasses.replace(r, count=r.count - ahead)
    if c.is_all_day:
        day = date.fromisoformat(cut)
        moved = dataclasses.replace(c, start_date=day, end_date=day + (c.end_date - c.start_date))
    else:
        start = key_instant(cut)
        moved = dataclasses.replace(c, start=start, end=start + (c.end - c.start))
    return dataclasses.replace(moved, recurrence=r), cut


def holds_series(sf: CanonicalEvent | None, c: CanonicalEvent) -> bool:
    """Does the Salesforce series ``sf`` hold the occurrences of ``c`` from its own start
    on — the same series, or the same one re-created from a later occurrence, or an
    open series written up to the horizon?"""
    if sf is None or sf.recurrence is None or c.recurrence is None:
        return False
    if sf.recurrence == c.recurrence and sf.projection().get("start") == c.projection().get(
        "start"
    ):
        return True
    if _bare(sf.recurrence) != _bare(c.recurrence) or sf.is_all_day != c.is_all_day:
        return False
    if (sf.days if c.is_all_day else sf.duration_minutes) != (
        c.days if c.is_all_day else c.duration_minutes
    ):
        return False
    try:
        theirs = pattern_slots(sf)
        if not theirs:
            return False
        last = date.fromisoformat(theirs[-1][:10])
        ours = [s for s in pattern_slots(c, through=last) if s >= theirs[0]]
        if c.recurrence.end_date is not None or c.recurrence.count is not None:
            full = pattern_slots(c)
            if not full or full[-1] != theirs[-1]:
                return False
    except (ValueError, OverflowError):
        return False
    return ours == theirs


def as_series_of(sf: CanonicalEvent, c: CanonicalEvent) -> CanonicalEvent:
    """``sf`` (which :func:`holds_series` of ``c``) read with ``c``'s start and range."""
    if c.is_all_day:
        return dataclasses.replace(
            sf, recurrence=c.recurrence, start_date=c.start_date, end_date=c.end_date
        )
    return dataclasses.replace(sf, recurrence=c.recurrence, start=c.start, end=c.end)


def plan_repattern(link, s, result: CanonicalEvent, now: datetime) -> Repattern | None:
    """The re-creation of the linked Salesforce series ``s`` for ``result``'s pattern;
    None when nothing of the new pattern is ahead (history stays as it is)."""
    restarted = restart_from(result, now)
    if restarted is None:
        return None
    occ = s.occurrences if s is not None else None
    ahead = first_not_past(occ, now)
    kept, dropped = 0, ()
    if occ is not None:
        kept = sum(1 for x in occ.slots if x.id and not _not_past(x.original, now))
        dropped = tuple(
            x.original for x in occ.slots if x.id and x.changed and _not_past(x.original, now)
        )
    return Repattern(
        head=link.sf_id or "",
        onwards=ahead.id if ahead else "",
        cut=restarted[1],
        kept=kept,
        dropped=dropped,
    )


def first_not_past(occ: Occurrences | None, now: datetime) -> Occurrence | None:
    """The first occurrence held in Salesforce that is not past (changed or not)."""
    if occ is None:
        return None
    for slot in occ.slots:
        if slot.id and not slot.cancelled and _not_past(slot.original, now):
            return slot
    return None


def series_from_snapshot(snapshot: dict, like: CanonicalEvent) -> CanonicalEvent | None:
    """``like`` with the start, end and pattern the snapshot holds (the series as last
    synced); None when the snapshot holds no readable series."""
    recurrence = _recurrence_from_json(snapshot.get("recurrence"))
    if recurrence is None:
        return None
    try:
        if like.is_all_day:
            return dataclasses.replace(
                like, recurrence=recurrence,
                start_date=date.fromisoformat(str(snapshot["start_date"])),
                end_date=date.fromisoformat(str(snapshot["end_date"])),
            )  # fmt: skip
        start = datetime.fromisoformat(str(snapshot["start"]).replace("Z", "+00:00"))
        end = datetime.fromisoformat(str(snapshot["end"]).replace("Z", "+00:00"))
    except (KeyError, ValueError, TypeError):
        return None
    return dataclasses.replace(like, recurrence=recurrence, start=start, end=end)
