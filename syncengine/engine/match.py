"""Pair unlinked items across the sides before anything is created.

Order (DESIGN §6 step 3): our link key on both items, then a secondary key
(e-mail for contacts, subject + start + end for events, title + due date for
tasks), then equal content. What stays unpaired is new on its side.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from .kinds import secondary_key
from .records import Item
from .stage import MatchKey


def matchable(item: Item) -> bool:
    return not item.deleted and not item.error and item.record is not None and item.in_scope


def match_unlinked(
    kind: str, outlook: Iterable[Item], salesforce: Iterable[Item]
) -> tuple[list[tuple[Item, Item, str]], list[Item], list[Item]]:
    """Returns (pairs with the rule that paired them, unpaired Outlook, unpaired Salesforce)."""
    outs = {o.id: o for o in outlook if matchable(o)}
    sfs = {s.id: s for s in salesforce if matchable(s)}
    pairs, rest_o, rest_s = match_keys(
        [key_of(kind, o) for o in outs.values()], [key_of(kind, s) for s in sfs.values()]
    )
    return (
        [(outs[o], sfs[s], rule) for o, s, rule in pairs],
        [outs[i] for i in rest_o],
        [sfs[i] for i in rest_s],
    )


def key_of(kind: str, it: Item) -> MatchKey:
    return MatchKey(it.id, it.link_key, secondary_key(kind, it.record) or None, it.hash)


def match_keys(
    outs: Iterable[MatchKey], sfs: Iterable[MatchKey]
) -> tuple[list[tuple[str, str, str]], list[str], list[str]]:
    """Pairs of (Outlook id, Salesforce id, rule), then the unpaired ids of each side.

    Works on the compact keys only, so a first sync over a whole mailbox holds
    a few strings per item. Deterministic: candidates are taken in id order,
    so page order never changes which items pair up.
    """
    outs = sorted(outs, key=lambda k: k.id)
    sfs = sorted(sfs, key=lambda k: k.id)
    taken_o: set[str] = set()
    taken_s: set[str] = set()
    pairs: list[tuple[str, str, str]] = []

    def pair(o: MatchKey, s: MatchKey, rule: str) -> None:
        taken_o.add(o.id)
        taken_s.add(s.id)
        pairs.append((o.id, s.id, rule))

    by_key = {s.link_key: s for s in sfs if s.link_key}
    for o in outs:
        s = by_key.get(o.link_key) if o.link_key else None
        if s is not None and s.id not in taken_s:
            pair(o, s, "link_key")

    for rule, field in (("secondary", "skey"), ("content", "hash")):
        index: dict[str, list[MatchKey]] = defaultdict(list)
        for s in sfs:
            if s.id not in taken_s:
                k = getattr(s, field)
                if k:
                    index[k].append(s)
        for o in outs:
            if o.id in taken_o:
                continue
            k = getattr(o, field)
            candidates = [s for s in index.get(k, ()) if s.id not in taken_s] if k else []
            if not candidates:
                continue
            # Among several candidates prefer identical content.
            best = next((s for s in candidates if s.hash == o.hash), candidates[0])
            pair(o, best, rule)

    rest_o = [o.id for o in outs if o.id not in taken_o]
    rest_s = [s.id for s in sfs if s.id not in taken_s]
    return pairs, rest_o, rest_s
