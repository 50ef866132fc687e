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


def matchable(item: Item) -> bool:
    return not item.deleted and not item.error and item.record is not None and item.in_scope


def match_unlinked(
    kind: str, outlook: Iterable[Item], salesforce: Iterable[Item]
) -> tuple[list[tuple[Item, Item, str]], list[Item], list[Item]]:
    """Returns (pairs with the rule that paired them, unpaired Outlook, unpaired Salesforce).

    Deterministic: candidates are taken in id order, so page order never
    changes which items pair up.
    """
    outs = sorted((o for o in outlook if matchable(o)), key=lambda i: i.id)
    sfs = sorted((s for s in salesforce if matchable(s)), key=lambda i: i.id)
    taken_o: set[str] = set()
    taken_s: set[str] = set()
    pairs: list[tuple[Item, Item, str]] = []

    def pair(o: Item, s: Item, rule: str) -> None:
        taken_o.add(o.id)
        taken_s.add(s.id)
        pairs.append((o, s, rule))

    by_key = {s.link_key: s for s in sfs if s.link_key}
    for o in outs:
        s = by_key.get(o.link_key) if o.link_key else None
        if s is not None and s.id not in taken_s:
            pair(o, s, "link_key")

    for rule, keyfn in (
        ("secondary", lambda it: secondary_key(kind, it.record)),
        ("content", lambda it: it.hash),
    ):
        index: dict[str, list[Item]] = defaultdict(list)
        for s in sfs:
            if s.id not in taken_s:
                k = keyfn(s)
                if k:
                    index[k].append(s)
        for o in outs:
            if o.id in taken_o:
                continue
            k = keyfn(o)
            candidates = [s for s in index.get(k, ()) if s.id not in taken_s] if k else []
            if not candidates:
                continue
            # Among several candidates prefer identical content.
            best = next((s for s in candidates if s.hash == o.hash), candidates[0])
            pair(o, best, rule)

    rest_o = [o for o in outs if o.id not in taken_o]
    rest_s = [s for s in sfs if s.id not in taken_s]
    return pairs, rest_o, rest_s
