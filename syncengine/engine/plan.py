"""Decide, per logical item, what a run does. Pure: no database, no HTTP.

Inputs are the links touched by this run and the items each side reported
(already mapped, with Graph `@removed` confirmed by the fetcher). A side
changed only if its version moved *and* its content hash differs from the
snapshot; a moved version with equal content is an echo of our own write or a
server touch and only refreshes the stored version (no ping-pong).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterable
from datetime import date
from typing import Any

from .kinds import series_horizon
from .mapping import Canonical, canonical_hash, merge3
from .mapping.contacts import CanonicalContact
from .mapping.events import CanonicalEvent
from .mapping.recurrence import CanonicalRecurrence
from .mapping.tasks import CanonicalTask
from .match import match_unlinked
from .records import OUTLOOK, SALESFORCE, Decision, EnginePolicy, Item, LinkView, Write, other
from .series import (
    Repattern,
    as_series_of,
    decide_occurrences,
    holds_series,
    key_words,
    plan_repattern,
    series_from_snapshot,
    truncated_at,
)

RECORD_CLASS: dict[str, type[Canonical]] = {
    "calendar": CanonicalEvent,
    "contacts": CanonicalContact,
    "tasks": CanonicalTask,
}

SAME, TOUCH, CHANGED, DELETED, ERROR, ABSENT = (
    "same",
    "touch",
    "changed",
    "deleted",
    "error",
    "absent",
)


def snapshot_record(kind: str, projection: dict | None) -> Canonical | None:
    """A stand-in record whose projection is the stored snapshot.

    Only ever used as the merge base (merge3 reads the base's projection and
    never copies values out of it), so the JSON values need no re-parsing.
    """
    if projection is None:
        return None
    cls = RECORD_CLASS[kind]
    obj = cls.__new__(cls)
    for f in dataclasses.fields(cls):
        if f.name in projection:
            value: Any = projection[f.name]
        elif f.default is not dataclasses.MISSING:
            value = f.default
        else:
            value = None
        object.__setattr__(obj, f.name, value)
    return obj


def _side_state(link: LinkView, item: Item | None, side: str) -> str:
    if link.id_on(side) is None and item is None:
        return ABSENT
    if item is None:
        return SAME
    if item.deleted:
        return DELETED
    if item.error:
        return ERROR
    if item.version and item.version == link.version_on(side) and link.state == "synced":
        return SAME
    if item.hash == link.snapshot_hash:
        return TOUCH
    return CHANGED


def _winner_side(policy: EnginePolicy) -> str:
    return OUTLOOK if policy.conflict_winner == OUTLOOK else SALESFORCE


def decide_linked(
    kind: str, policy: EnginePolicy, link: LinkView, o: Item | None, s: Item | None
) -> Decision | None:
    key = link.link_key
    if link.state == "tombstoned":
        # Nothing deleted comes back: late or replayed changes of a deleted item are ignored.
        return None
    items = {OUTLOOK: o, SALESFORCE: s}
    st = {OUTLOOK: _side_state(link, o, OUTLOOK), SALESFORCE: _side_state(link, s, SALESFORCE)}
    base = dict(link=link, outlook=o, sf=s, one_way_from=link.one_way_from)

    def dec(action: str, **kw: Any) -> Decision:
        return Decision(link_key=key, action=action, **{**base, **kw})

    for side in (OUTLOOK, SALESFORCE):
        if st[side] == ERROR:
            action, message = _error_or_skip(items[side])
            return dec(
                action,
                state=link.state,
                message=message,
                writes=(),
                result=None,
                rule=_error_rule(items[side].error),
            )

    source = link.one_way_from or ""
    may_write = {x: policy.writes_to(x) and x != source for x in (OUTLOOK, SALESFORCE)}

    # One side was never created (a pending create): create it from the other.
    for side in (OUTLOOK, SALESFORCE):
        if st[side] == ABSENT:
            src = items[other(side)]
            if st[other(side)] in (DELETED, ABSENT):
                return dec(
                    "tombstone",
                    state="tombstoned",
                    message="Gone before it was copied.",
                    rule="gone_before_copy",
                )
            if src is None or src.record is None:
                return dec(
                    "skip",
                    state=link.state,
                    message="Waiting for the source item to be read again.",
                    rule="waiting_for_source",
                )
            if not may_write[side]:
                return dec(
                    "skip",
                    state="synced",
                    message="Direction does not allow this copy.",
                    rule="direction",
                )
            return dec(
                "create",
                result=src.record,
                writes=(Write(side, "create"),),
                state=_created_state(src, side),
            )

    if st[OUTLOOK] == DELETED and st[SALESFORCE] == DELETED:
        return dec(
            "tombstone", state="tombstoned", message="Deleted on both sides.", rule="deleted_both"
        )

    for gone in (OUTLOOK, SALESFORCE):
        if st[gone] != DELETED:
            continue
        keep = other(gone)
        if st[keep] == CHANGED and source != gone and may_write[gone]:
            # Modify beats delete: the edit survives and the item comes back.
            return dec(
                "create",
                result=items[keep].record,
                writes=(Write(gone, "create"),),
                state=_scope_state(items[keep]),
                message=f"Deleted in {_label(gone)} but edited in {_label(keep)}: the edit wins.",
                rule="modify_beats_delete",
            )
        if policy.deletes_to(keep) and keep != source:
            return dec(
                "delete",
                writes=(Write(keep, "delete"),),
                state="tombstoned",
                rule="deleted_on_" + gone,
            )
        return dec(
            "tombstone",
            state="tombstoned",
            message=f"Deleted in {_label(gone)}; delete not propagated by policy.",
            rule="one_way_source" if keep == source else "delete_policy",
        )

    o_st, s_st = st[OUTLOOK], st[SALESFORCE]
    if source:
        # One-way link (SnapRecord): the source's content is the truth; edits
        # on the other side are neither copied back nor overwritten until the
        # source changes again.
        dest = other(source)
        if st[source] in (CHANGED,):
            src = items[source]
            writes = (
                ()
                if items[dest] is not None and items[dest].hash == src.hash
                else (Write(dest, "update"),)
            )
            return dec(
                "update" if writes else "touch",
                result=src.record,
                writes=writes,
                state=_scope_state(src, items[dest]),
            )
        return _touch_or_none(dec, link, o, s)

    if o_st == CHANGED and s_st == CHANGED:
        if o.hash == s.hash:
            return dec("touch", result=o.record, state=_scope_state(o, s))
        winner = _winner_side(policy)
        if not may_write[OUTLOOK] or not may_write[SALESFORCE]:
            # One-way direction: the source's version is the only one that moves.
            src_side = SALESFORCE if may_write[OUTLOOK] else OUTLOOK
            src = items[src_side]
            dest = other(src_side)
            return dec(
                "update",
                result=src.record,
                writes=(Write(dest, "update"),) if may_write[dest] else (),
                state=_scope_state(o, s),
            )
        merged, conflicts = merge3(
            snapshot_record(kind, link.snapshot),
            o.record,
            s.record,
            "ours" if winner == OUTLOOK else "theirs",
        )
        h = canonical_hash(merged)
        writes = tuple(Write(x, "update") for x in (OUTLOOK, SALESFORCE) if items[x].hash != h)
        return dec(
            "conflict" if conflicts else "update",
            result=merged,
            writes=writes,
            conflicts=conflicts,
            state=_scope_state(o, s),
            message=_conflict_message(conflicts),
            rule="conflict_winner" if conflicts else "merged",
        )

    for changed in (OUTLOOK, SALESFORCE):
        if st[changed] == CHANGED:
            dest = other(changed)
            src = items[changed]
            if not may_write[dest]:
                # Direction forbids the copy: remember we saw the version, keep the snapshot.
                return dec(
                    "touch",
                    result=None,
                    state=_scope_state(o, s),
                    message=f"{_label(changed)} edit not copied: one-way sync.",
                    rule="direction",
                )
            if items[dest] is not None and items[dest].hash == src.hash:
                return dec("touch", result=src.record, state=_scope_state(o, s))
            return dec(
                "update",
                result=src.record,
                writes=(Write(dest, "update"),),
                state=_scope_state(o, s),
            )

    return _touch_or_none(dec, link, o, s)


def decide_with_winner(kind: str, policy: EnginePolicy, d: Decision, winner: str) -> Decision:
    """A linked conflict decided again with `winner` (chosen on the review page)
    instead of the policy's: the same items, the other side's values kept."""
    if d.link is None or winner not in (OUTLOOK, SALESFORCE) or winner == policy.conflict_winner:
        return d
    again = decide_linked(kind, policy.replace(conflict_winner=winner), d.link, d.outlook, d.sf)
    if again is None:
        return d
    return _pattern_change(again, d.sf, _now()) if kind == "calendar" else again


def _error_or_skip(item: Item) -> tuple[str, str]:
    """A series Salesforce cannot hold (its pattern, a changed occurrence) is a
    known limit, skipped with the reason; anything else unmappable is an error,
    named the way support finds it (`Outlook contact “Ada”: businessAddress is …`)."""
    error = item.error
    if error.startswith("recurrence:"):
        return "skip", "Skipped: " + error.removeprefix("recurrence:").strip()
    return "error", f"{item.label}: {error}" if item.label else error


def _error_rule(error: str) -> str:
    return "recurrence_limit" if error.startswith("recurrence:") else "unmappable"


def _recurrence_from_json(value: dict | None) -> CanonicalRecurrence | None:
    if value is None:
        return None
    kw = {k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}
    if kw.get("end_date"):
        kw["end_date"] = date.fromisoformat(kw["end_date"])
    return CanonicalRecurrence(**kw)


def _sf_series_as_synced(link: LinkView, s: Item | None) -> Item | None:
    """A linked Salesforce series read in the terms of the series last synced.

    The API cannot change a series' pattern, start or zone, so the Salesforce series
    can differ from Outlook's without anyone having changed it: an open series is
    written up to the horizon, a series ended earlier keeps its old range text, and a
    series LinkPoint re-created for a pattern change starts at its first occurrence not
    past (engine.series). When it holds the synced series' occurrences from its own
    start on, it reads as the synced series; the same series (the record our link
    holds) reads with the synced pattern whatever its text says — a pattern change not
    applied yet is written, never taken back from Salesforce. Only a series re-created
    in Salesforce (a user changed its pattern there: our key moved to a new record)
    differs: that is an edit, and it reaches Outlook."""
    if s is None or s.record is None or not link.snapshot or "recurrence" not in link.snapshot:
        return s
    synced_json = link.snapshot["recurrence"]
    if s.record.projection().get("recurrence") == synced_json and s.record.projection().get(
        "start"
    ) == link.snapshot.get("start"):
        return s
    if s.occurrences is not None and getattr(s.occurrences, "recreated", False):
        return s  # re-created in Salesforce: its kept part ends the series (an edit there)
    synced = series_from_snapshot(link.snapshot, s.record)
    if synced is not None and holds_series(s.record, synced):
        rec = as_series_of(s.record, synced)
    elif not link.sf_id or s.id == link.sf_id or s.record.recurrence is None or synced_json is None:
        try:
            rec = dataclasses.replace(s.record, recurrence=_recurrence_from_json(synced_json))
        except (TypeError, ValueError):
            return s
    else:
        return s
    return dataclasses.replace(s, record=rec, hash=canonical_hash(rec))


def _adopted_series(lk: LinkView, d: Decision) -> Decision:
    """A series whose create answer was lost, found again by our key: like a series just
    created (``_created_state``), its link stays pending one run, so the next run reads
    both sides' occurrences and copies those changed or cancelled on their own."""
    if not lk.state.startswith("pending_create_") or d.state != "synced" or d.writes:
        return d
    if not any(it is not None and getattr(it.record, "recurrence", None) is not None for it in (d.outlook, d.sf)):
        return d
    return dataclasses.replace(d, state="pending_update_" + lk.state.removeprefix("pending_create_"))


def _pattern_change(d: Decision, s_raw: Item | None, now) -> Decision:
    """A series' pattern changed in Outlook: re-create the Salesforce series (engine.series)
    when Salesforce does not hold the new pattern; say what happens either way."""
    if (
        d.link is None
        or d.result is None
        or not d.link.snapshot
        or not any(w.side == SALESFORCE and w.op == "update" for w in d.writes)
    ):
        return d
    before = d.link.snapshot.get("recurrence")
    after = d.result.projection().get("recurrence")
    sf_series = (
        s_raw is not None and s_raw.record is not None and s_raw.record.recurrence is not None
    )
    if after is not None and before is not None and sf_series:
        last = truncated_at(d.link.snapshot, d.result)
        if last is not None:
            note = (
                f"The series now ends earlier in Outlook (last occurrence {key_words(last)}): "
                "Salesforce's later occurrences that are not past are deleted; the earlier ones "
                "(and every past one: activity history) are kept."
            )
            return _said(d, note)
        if holds_series(s_raw.record, d.result):
            return d
        rp = plan_repattern(d.link, s_raw, d.result, now)
        if rp is None:
            return _said(d, (
                "The series' pattern changed in Outlook, but none of its new occurrences is "
                "ahead: Salesforce keeps the series as it was (activity history)."
            ))  # fmt: skip
        writes = tuple(w for w in d.writes if w.side != SALESFORCE) + (Write(SALESFORCE, "create"),)
        return dataclasses.replace(
            d, writes=writes, repattern=rp, state="pending_update_salesforce",
            message=_join(d.message, repattern_words(rp)), rule="series_repattern",
        )  # fmt: skip
    if before == after:
        return d
    if before is None:
        why = "the event became a series in Outlook"
    elif after is None:
        why = "the series became a single event in Outlook"
    else:
        why = "the series' pattern changed in Outlook"
    return _said(d, (
        f"Warning: {why}, but Salesforce fixes an event's recurrence when it is created, "
        "so the Salesforce event keeps its old recurrence (other changes were copied)."
    ))  # fmt: skip


def repattern_words(rp: Repattern) -> str:
    kept = (
        f"its {rp.kept} past occurrence{'s' if rp.kept != 1 else ''} stay there as activity "
        "history, with the old pattern"
        if rp.kept
        else "none of its occurrences was past"
    )
    text = (
        "The series' pattern changed in Outlook. Salesforce cannot change a series' pattern, "
        "so the series is created again there with the new pattern from its first occurrence "
        f"not past ({key_words(rp.cut)}); the old series' occurrences from then on are "
        f"deleted and {kept}."
    )
    if rp.dropped:
        shown = ", ".join(key_words(x) for x in rp.dropped[:5]) + (
            " …" if len(rp.dropped) > 5 else ""
        )
        text += (
            f" Warning: {len(rp.dropped)} of the deleted occurrences had been changed on their own "
            f"in Salesforce ({shown}); those changes are not in the new series."
        )
    return text


def _join(a: str, b: str) -> str:
    return (a + " " if a else "") + b


def _said(d: Decision, note: str) -> Decision:
    return dataclasses.replace(d, message=_join(d.message, note))


def _resume_repattern(policy, lk: LinkView, o: Item | None, s: Item | None, now) -> Decision | None:
    """A series re-creation a run left half-done (SyncLink.resume): carry it on, unless
    the new series exists already (our key found on a series other than the old one)."""
    head = str((lk.resume or {}).get("head") or "")
    if s is not None and not s.deleted and s.id and s.id != head:
        return None  # done: the new series is recorded like a create whose answer was lost
    if o is None or o.deleted or o.record is None or getattr(o.record, "recurrence", None) is None:
        return None
    old = s if s is not None and not s.deleted else None
    rp = plan_repattern(dataclasses.replace(lk, sf_id=head), old, o.record, now)
    if rp is None:
        return None
    saved = lk.resume or {}
    # What the first attempt found stays the truth: the old series may be half deleted now.
    rp = dataclasses.replace(
        rp, head=head, onwards=str(saved.get("onwards") or rp.onwards),
        kept=int(saved.get("kept") or rp.kept), dropped=tuple(saved.get("dropped") or rp.dropped),
    )  # fmt: skip
    return Decision(
        link_key=lk.link_key, action="update", link=lk, outlook=o, sf=old, result=o.record,
        writes=(Write(SALESFORCE, "create"),), state="pending_update_salesforce",
        one_way_from=lk.one_way_from, repattern=rp, message=repattern_words(rp),
        rule="series_repattern",
    )  # fmt: skip


def _now():
    from django.utils import timezone

    return timezone.now()


def _touch_or_none(
    dec: Callable[..., Decision], link: LinkView, o: Item | None, s: Item | None
) -> Decision | None:
    moved = any(
        it is not None and not it.deleted and it.version and it.version != link.version_on(it.side)
        for it in (o, s)
    )
    state = _scope_state(o, s)
    if moved or link.state != state:
        return dec("touch", result=None, state=state)
    return None


def _created_state(src: Item, dest: str) -> str:
    """A series is created with its pattern only: its link stays pending one run, so the
    next run reads both sides again and copies the occurrences changed or cancelled on
    their own (engine.series); a new copy has none of them yet."""
    state = _scope_state(src)
    if state == "synced" and getattr(src.record, "recurrence", None) is not None:
        return f"pending_update_{dest}"
    return state


def _scope_state(*items: Item | None) -> str:
    return "out_of_scope" if any(i is not None and not i.in_scope for i in items) else "synced"


def _label(side: str) -> str:
    return "Outlook" if side == OUTLOOK else "Salesforce"


def _conflict_message(conflicts) -> str:
    if not conflicts:
        return ""
    names = ", ".join(n for c in conflicts for n in c.fields)
    return f"Changed on both sides: {names}; {_label(OUTLOOK if conflicts[0].winner == 'ours' else SALESFORCE)} wins."


def _first_sync_merge(o: Item, s: Item, winner: str) -> Canonical:
    """Two items paired without a snapshot: the winner's values, with its empty
    fields filled from the other side (nothing known is thrown away)."""
    win, lose = (o.record, s.record) if winner == OUTLOOK else (s.record, o.record)
    fill = {}
    for f in dataclasses.fields(win):
        if not f.metadata.get("synced", True):
            continue
        w, l_ = getattr(win, f.name), getattr(lose, f.name)
        if not w and l_ and f.name not in _NEVER_FILL:
            fill[f.name] = l_
    merged = dataclasses.replace(win, **fill) if fill else win
    if winner == SALESFORCE:
        # Keep the Outlook-side info fields (zone, attendees) as merge3 does.
        info = {
            f.name: getattr(o.record, f.name)
            for f in dataclasses.fields(merged)
            if not f.metadata.get("synced", True) and f.name != "warnings"
        }
        merged = dataclasses.replace(merged, **info)
    return merged


# Booleans and times whose empty value is meaningful, not missing.
_NEVER_FILL = frozenset(
    {
        "is_all_day",
        "is_private",
        "reminder_minutes",
        "reminder_at",
        "start",
        "end",
        "start_date",
        "end_date",
        "recurrence",
        "status",
        "importance",
        "show_as",
    }
)


# States a link can rest in; other states (pending_*, error) are re-driven every run.
_SETTLED = frozenset({"synced", "out_of_scope", "tombstoned", "conflict"})


def decide(
    kind: str,
    policy: EnginePolicy,
    links: Iterable[LinkView],
    outlook: Iterable[Item],
    salesforce: Iterable[Item],
    *,
    create_unlinked: bool = True,
    only_one_way: bool = False,
    new_key: Callable[[], str] = lambda: str(uuid.uuid4()),
) -> list[Decision]:
    """All decisions for one set of links and reported items (the run feeds the
    same steps a block at a time: `decide_links`, `unlinked_errors`, matching, `decide_new`)."""
    links = list(links)
    decisions, unlinked = decide_links(
        kind, policy, links, outlook, salesforce, only_one_way=only_one_way
    )
    decisions += unlinked_errors(unlinked[OUTLOOK].values(), unlinked[SALESFORCE].values())
    if not create_unlinked:
        return decisions
    pairs, rest_o, rest_s = match_unlinked(
        kind, unlinked[OUTLOOK].values(), unlinked[SALESFORCE].values()
    )
    keys = KeyPool({lk.link_key for lk in links}, new_key)
    decisions += decide_new(policy, pairs, rest_o, rest_s, keys)
    return decisions


def decide_links(
    kind: str,
    policy: EnginePolicy,
    links: list[LinkView],
    outlook: Iterable[Item],
    salesforce: Iterable[Item],
    *,
    only_one_way: bool = False,
) -> tuple[list[Decision], dict[str, dict[str, Item]]]:
    """Decisions for `links` given the items reported for them; also the items
    no link in `links` claims (by id, or by our key on an item whose create
    answer was lost), per side."""
    by_key = {lk.link_key: lk for lk in links}
    by_id = {
        OUTLOOK: {lk.outlook_id: lk for lk in links if lk.outlook_id},
        SALESFORCE: {lk.sf_id: lk for lk in links if lk.sf_id},
    }
    seen: dict[str, dict[str, Item]] = {}
    unlinked: dict[str, dict[str, Item]] = {OUTLOOK: {}, SALESFORCE: {}}
    now = _now()

    for side, stream in ((OUTLOOK, outlook), (SALESFORCE, salesforce)):
        for it in stream:
            link = by_id[side].get(it.id)
            if link is None and it.link_key and it.link_key in by_key:
                cand = by_key[it.link_key]
                # Our key on an item we have no id for: the lost answer of our own create.
                # A Salesforce series re-created there keeps our key on a new occurrence.
                if cand.id_on(side) is None or (
                    side == SALESFORCE and it.occurrences is not None and not it.deleted
                ):
                    link = cand
            if link is None:
                unlinked[side][it.id] = it  # the latest report of an id wins
            else:
                pair = seen.setdefault(link.link_key, {})
                prev = pair.get(side)
                # One id: its latest report. Two ids for one link (an old series and the one
                # that replaced it): the live one.
                if prev is None or prev.id == it.id or prev.deleted or not it.deleted:
                    pair[side] = it

    decisions: list[Decision] = []
    touched = set(seen)
    for lk in links:
        if lk.link_key not in touched and lk.state in _SETTLED:
            continue
        if only_one_way and not lk.one_way_from:
            continue
        pair = seen.get(lk.link_key, {})
        s_raw = s_item = pair.get(SALESFORCE)
        if kind == "calendar" and lk.resume:
            d = _resume_repattern(policy, lk, pair.get(OUTLOOK), s_raw, now)
            if d is not None:
                decisions.append(d)
                continue
        if kind == "calendar":
            s_item = _sf_series_as_synced(lk, s_item)
        d = decide_linked(kind, policy, lk, pair.get(OUTLOOK), s_item)
        if d is not None:
            if kind == "calendar":
                d = _pattern_change(_adopted_series(lk, d), s_raw, now)
            decisions.append(d)
        if kind == "calendar" and (d is None or d.action in ("touch", "update", "conflict")):
            # A series' occurrences changed or cancelled on their own (engine.series).
            decisions += decide_occurrences(policy, lk, pair.get(OUTLOOK), s_item)
    return decisions, unlinked


def unlinked_errors(outlook: Iterable[Item], salesforce: Iterable[Item]) -> list[Decision]:
    """An unlinked item that could not be mapped is an item-level error (or a logged skip)."""
    decisions = []
    for side, stream in ((OUTLOOK, outlook), (SALESFORCE, salesforce)):
        for it in stream:
            if it.error and it.in_scope:
                action, message = _error_or_skip(it)
                decisions.append(
                    Decision(
                        link_key="",
                        action=action,
                        outlook=it if side == OUTLOOK else None,
                        sf=it if side == SALESFORCE else None,
                        state="error",
                        message=message,
                        rule=_error_rule(it.error),
                    )
                )
    return decisions


class KeyPool:
    """Link keys for new pairs: an item's own key of ours when no link uses it, else a new one."""

    def __init__(self, used: set[str], new_key: Callable[[], str] = lambda: str(uuid.uuid4())):
        self.used = used
        self.new_key = new_key

    def fresh(self, *items: Item | None) -> str:
        for cand in items:
            if cand is not None and cand.link_key and cand.link_key not in self.used:
                self.used.add(cand.link_key)
                return cand.link_key
        k = self.new_key()
        self.used.add(k)
        return k


# The key a first-sync match paired two items by, in a member's words (the log and review pages).
MATCH_WORDS = {
    "link_key": "LinkPoint's own key",
    "content": "the same content",
    ("secondary", "contacts"): "e-mail address",
    ("secondary", "tasks"): "title and due date",
    ("secondary", "calendar"): "subject, start and end",
}


def _match_words(kind: str, rule: str) -> str:
    return MATCH_WORDS.get(rule) or MATCH_WORDS.get((rule, kind)) or rule


def decide_new(
    policy: EnginePolicy,
    pairs: Iterable[tuple[Item, Item, str]],
    rest_o: Iterable[Item],
    rest_s: Iterable[Item],
    keys: KeyPool,
) -> list[Decision]:
    """Matched pairs become links (merging content that differs); the rest is created on the other side."""
    decisions: list[Decision] = []
    winner = _winner_side(policy)
    for o, s, rule in pairs:
        key = keys.fresh(o, s)
        # Our key goes onto both items, so a later Rebuild re-pairs them by key.
        stamp = tuple(
            Write(x, "update")
            for x, it in ((OUTLOOK, o), (SALESFORCE, s))
            if it.link_key != key and policy.writes_to(x)
        )
        if o.hash == s.hash:
            decisions.append(
                Decision(
                    link_key=key,
                    action="link",
                    outlook=o,
                    sf=s,
                    result=o.record,
                    writes=stamp,
                    message=f"Matched by {_match_words(policy.kind, rule)}.",
                    rule="match:" + rule,
                )
            )
            continue
        if policy.direction != "both":
            src_side = OUTLOOK if policy.direction == "outlook_to_salesforce" else SALESFORCE
            merged = (o if src_side == OUTLOOK else s).record
        else:
            merged = _first_sync_merge(o, s, winner)
        h = canonical_hash(merged)
        writes = tuple(
            Write(x, "update")
            for x, it in ((OUTLOOK, o), (SALESFORCE, s))
            if (it.hash != h or it.link_key != key) and policy.writes_to(x)
        )
        decisions.append(
            Decision(
                link_key=key,
                action="link",
                outlook=o,
                sf=s,
                result=merged,
                writes=writes,
                message=f"Matched by {_match_words(policy.kind, rule)}; contents merged.",
                rule="match:" + rule,
            )
        )

    for side, rest in ((OUTLOOK, rest_o), (SALESFORCE, rest_s)):
        dest = other(side)
        if not policy.writes_to(dest):
            continue
        for it in rest:
            decisions.append(
                Decision(
                    link_key=keys.fresh(it),
                    action="create",
                    outlook=it if side == OUTLOOK else None,
                    sf=it if side == SALESFORCE else None,
                    result=it.record,
                    writes=(Write(dest, "create"),),
                    message=_open_series_note(policy, it.record) if dest == SALESFORCE else "",
                    state=_created_state(it, dest),
                )
            )
    return decisions


def _open_series_note(policy: EnginePolicy, record) -> str:
    """A series without end reaches Salesforce up to the calendar range's end
    (mapping/recurrence.py): say up to which day, so nobody looks for the rest."""
    r = getattr(record, "recurrence", None)
    if r is None or r.end_date is not None or r.count is not None:
        return ""
    last = series_horizon(policy)
    return (
        "Note: this series has no end date in Outlook; Salesforce holds its occurrences "
        f"through {last:%Y-%m-%d} (the end of the calendar range, {policy.days_ahead} days "
        "ahead, set by the organization). Later occurrences stay in Outlook only, since "
        "Salesforce cannot extend a series after creating it."
    )


def mass_delete_stop(
    decisions: Iterable[Decision], live_links: int, policy: EnginePolicy
) -> str | None:
    """Why the run must stop before deleting, or None.

    Counts the deletions this run would make on each side against the member's
    synced links; above both the share and the minimum, nothing is deleted.
    """
    per_side = {OUTLOOK: 0, SALESFORCE: 0}
    for d in decisions:
        for w in d.writes:
            if w.op == "delete":
                per_side[w.side] += 1
    return mass_delete_check(per_side, live_links, policy)


def mass_delete_check(
    per_side: dict[str, int], live_links: int, policy: EnginePolicy
) -> str | None:
    """`mass_delete_stop` over deletions already counted per side."""
    worst_side = max(per_side, key=per_side.get)
    n = per_side[worst_side]
    if n < policy.mass_delete_min_items or live_links <= 0:
        return None
    share = 100.0 * n / live_links
    if share > policy.mass_delete_threshold_percent:
        return (
            f"Stopped before deleting {n} of {live_links} synced items in {_label(worst_side)} "
            f"({share:.0f}%, above the {policy.mass_delete_threshold_percent}% guard). "
            "Nothing was deleted; check the other side, then confirm."
        )
    return None
