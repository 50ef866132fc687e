"""A run's working set on disk, so a run's memory does not grow with the mailbox.

Fetched items and the decisions made over them go to one throw-away SQLite
file per run (stdlib `sqlite3`, whatever database the product runs on). The
engine holds a chunk at a time in memory: a page being mapped, a block of
links being decided, a block of decisions being applied. The file lives in
the temporary directory and is removed when the run ends, crash or not (a
killed worker leaves a temp file the OS cleans; nothing in it is needed,
since a run that did not finish starts over from its cursors).

`SideItems` looks like the `dict[str, Item]` the fetcher fills (set, get,
`in`, iterate ids), so fetch and confirm code stays the same; the planner
asks it for blocks by id or by link key and for the compact match keys of
the items no link claimed.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pickle
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

from .kinds import secondary_key
from .records import OUTLOOK, SALESFORCE, Decision, Item

BLOCK = 500  # ids per SQL `IN (...)`: well under SQLite's variable limit
TURN = 200  # decisions per turn when groups take turns: the applier's chunk (apply.SF_CHUNK)


_OP_RANK = {"create": 1, "update": 2, "delete": 3}


def write_group(d: Decision) -> str:
    """Decisions are applied grouped by the writes they make, so every batch is full
    but the last of its group (⌈n/200⌉ Salesforce requests per operation, not one
    more at each block edge). Local-only decisions first, deletions last (a run
    that fails half-way has created and updated before it removes anything)."""
    if not d.writes:
        return "0"
    rank = max(_OP_RANK[w.op] for w in d.writes)
    path = "a" if d.link is None or any(w.op == "create" for w in d.writes) else "b"
    sig = ",".join(sorted(f"{w.side}:{w.op}" for w in d.writes))
    return f"{rank}{path}{sig}"


class MatchKey(NamedTuple):
    """What matching needs of an unlinked item, without its content."""

    id: str
    link_key: str | None
    skey: str | None
    hash: str


def _dump(obj) -> bytes:
    return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


def _load(blob: bytes):
    # Only ever reads back what this process wrote to its own 0600 temp file.
    return pickle.loads(blob)  # noqa: S301


def _marks(n: int) -> str:
    """`?, ?, …` for an IN list: values always travel as parameters."""
    return ",".join("?" * n)


class Stage:
    def __init__(self, kind: str, *, on_item: Callable[[str], None] | None = None):
        self.kind = kind
        # Told the side of every item reported (the run's progress counts reads).
        self.on_item = on_item
        fd, self.path = tempfile.mkstemp(prefix="linkpoint-run-", suffix=".sqlite3")
        os.close(fd)
        self.db = sqlite3.connect(self.path, isolation_level=None)
        # Scratch data: no journal, no fsync; a crash loses nothing that matters.
        self.db.execute("PRAGMA journal_mode=OFF")
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.execute("PRAGMA cache_size=-4096")  # ≤ 4 MB of page cache
        self.db.execute(
            "CREATE TABLE item (side TEXT, id TEXT, link_key TEXT, skey TEXT, hash TEXT,"
            " matchable INT, deleted INT, err INT, used INT DEFAULT 0, blob BLOB,"
            " PRIMARY KEY (side, id))"
        )
        self.db.execute("CREATE INDEX item_key ON item (side, link_key)")
        self.db.execute("CREATE TABLE decision (seq INTEGER PRIMARY KEY, grp TEXT, blob BLOB)")
        self.db.execute("CREATE INDEX decision_grp ON decision (grp, seq)")
        self.outlook = SideItems(self, OUTLOOK)
        self.salesforce = SideItems(self, SALESFORCE)

    def side(self, side: str) -> SideItems:
        return self.outlook if side == OUTLOOK else self.salesforce

    # ------------------------------------------------------------ decisions
    def add_decisions(self, decisions: Iterable[Decision]) -> None:
        rows = [(write_group(d), _dump(d)) for d in decisions]
        self.db.executemany("INSERT INTO decision (grp, blob) VALUES (?, ?)", rows)

    def decision_blocks(self, size: int) -> Iterator[list[Decision]]:
        """Decisions in blocks of ≤ `size` that share their writes (see `write_group`),
        in decision order within a group.

        Groups of one rank and path (the creates, say: Outlook's and Salesforce's) take
        turns, a block of `TURN` at a time. Graph takes one full `$batch` at a time per
        mailbox, so Outlook's writes are a run's critical path; group after group, every
        chunk in flight was Salesforce's for a while and Outlook sat idle (10,000 contacts
        against 150 ms: 13 s of a 93 s first sync with no `$batch` in flight). Taking turns,
        Salesforce's chunks are written while Outlook's batches queue. A block is still one
        group's, a multiple of 200 (full batches and collections but the last of its group)."""
        groups = [g for (g,) in self.db.execute("SELECT DISTINCT grp FROM decision ORDER BY grp")]
        for _, same in itertools.groupby(groups, key=lambda g: g[:2]):
            same = list(same)
            turn = size if len(same) == 1 else min(size, TURN)
            blocks = [self._group_blocks(g, turn) for g in same]
            while blocks:
                for it in list(blocks):
                    block = next(it, None)
                    if block is None:
                        blocks.remove(it)
                    else:
                        yield block

    def _group_blocks(self, grp: str, size: int) -> Iterator[list[Decision]]:
        last = 0
        while True:
            rows = self.db.execute(
                "SELECT seq, blob FROM decision WHERE grp = ? AND seq > ? ORDER BY seq LIMIT ?",
                (grp, last, size),
            ).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield [_load(b) for _, b in rows]

    # ------------------------------------------------------------ lifetime
    def close(self) -> None:
        try:
            self.db.close()
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.path)

    def __enter__(self) -> Stage:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class SideItems:
    """One side's fetched items, keyed by id; the latest report of an id wins.

    Items are written a page at a time (one `executemany` per `BLOCK` items, in the order
    they came, so a later report of an id still replaces the earlier one); every question
    asked of the side first writes what is still held."""

    def __init__(self, stage: Stage, side: str):
        self.stage = stage
        self.side = side
        self.db = stage.db
        self._held: list[tuple] = []

    def __setitem__(self, item_id: str, it: Item) -> None:
        matchable = not it.deleted and not it.error and it.record is not None and it.in_scope
        skey = secondary_key(self.stage.kind, it.record) if matchable else None
        self._held.append(
            (
                self.side,
                item_id,
                it.link_key,
                skey or None,
                it.hash,
                int(matchable),
                int(it.deleted),
                int(bool(it.error) and it.in_scope),
                _dump(it),
            )
        )
        if len(self._held) >= BLOCK:
            self._write()
        if self.stage.on_item is not None:
            self.stage.on_item(self.side)

    def _write(self) -> None:
        if self._held:
            self.db.executemany(
                "INSERT OR REPLACE INTO item"
                " (side, id, link_key, skey, hash, matchable, deleted, err, blob)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                self._held,
            )
            self._held = []

    def get(self, item_id: str, default=None) -> Item | None:
        self._write()
        row = self.db.execute(
            "SELECT blob FROM item WHERE side = ? AND id = ?", (self.side, item_id)
        ).fetchone()
        return _load(row[0]) if row else default

    def __contains__(self, item_id) -> bool:
        self._write()
        return (
            self.db.execute(
                "SELECT 1 FROM item WHERE side = ? AND id = ?", (self.side, item_id)
            ).fetchone()
            is not None
        )

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids())

    def ids(self) -> list[str]:
        self._write()
        return [r[0] for r in self.db.execute("SELECT id FROM item WHERE side = ?", (self.side,))]

    def link_keys(self) -> list[str]:
        self._write()
        q = "SELECT DISTINCT link_key FROM item WHERE side = ? AND link_key IS NOT NULL"
        return [r[0] for r in self.db.execute(q, (self.side,))]

    def clear(self) -> None:
        self._write()
        self.db.execute("DELETE FROM item WHERE side = ?", (self.side,))

    # ------------------------------------------------------------ the planner's questions
    def deleted_ids(self) -> list[str]:
        self._write()
        q = "SELECT id FROM item WHERE side = ? AND deleted = 1"
        return [r[0] for r in self.db.execute(q, (self.side,))]

    def present(self, ids: Iterable[str]) -> set[str]:
        """Which of `ids` were reported this run."""
        self._write()
        out: set[str] = set()
        ids = list(ids)
        for i in range(0, len(ids), BLOCK):
            block = ids[i : i + BLOCK]
            q = f"SELECT id FROM item WHERE side = ? AND id IN ({_marks(len(block))})"  # noqa: S608
            out.update(r[0] for r in self.db.execute(q, (self.side, *block)))
        return out

    def by_ids(self, ids: Iterable[str]) -> dict[str, Item]:
        self._write()
        out: dict[str, Item] = {}
        ids = [i for i in ids if i]
        for i in range(0, len(ids), BLOCK):
            block = ids[i : i + BLOCK]
            q = f"SELECT id, blob FROM item WHERE side = ? AND id IN ({_marks(len(block))})"  # noqa: S608
            out.update((r[0], _load(r[1])) for r in self.db.execute(q, (self.side, *block)))
        return out

    def by_keys(self, keys: Iterable[str]) -> list[Item]:
        """Items carrying one of our link keys (the lost answer of our own create)."""
        self._write()
        out: list[Item] = []
        keys = [k for k in keys if k]
        for i in range(0, len(keys), BLOCK):
            block = keys[i : i + BLOCK]
            q = (
                "SELECT blob FROM item WHERE side = ? AND used = 0"  # noqa: S608
                f" AND link_key IN ({_marks(len(block))}) ORDER BY id"
            )
            out.extend(_load(r[0]) for r in self.db.execute(q, (self.side, *block)))
        return out

    def mark_used(self, ids: Iterable[str]) -> None:
        self._write()
        self.db.executemany(
            "UPDATE item SET used = 1 WHERE side = ? AND id = ?", [(self.side, i) for i in ids]
        )

    def unused_errors(self) -> Iterator[list[Item]]:
        """Unmappable items no link claimed (each becomes an item-level error), in blocks."""
        self._write()
        last = ""
        while True:
            rows = self.db.execute(
                "SELECT id, blob FROM item WHERE side = ? AND used = 0 AND err = 1 AND id > ?"
                " ORDER BY id LIMIT ?",
                (self.side, last, BLOCK),
            ).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield [_load(b) for _, b in rows]

    def match_keys(self) -> list[MatchKey]:
        self._write()
        q = "SELECT id, link_key, skey, hash FROM item WHERE side = ? AND used = 0 AND matchable = 1 ORDER BY id"
        return [MatchKey(*r) for r in self.db.execute(q, (self.side,))]
