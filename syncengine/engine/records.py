"""The engine's values: frozen dataclasses that can be printed and compared in tests.

`Item` is one side's view of one remote item after mapping; `LinkView` the
link as it was when the run started; `Decision` what the planner wants done
for one logical item; `EnginePolicy` the effective settings the engine reads.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from .mapping import Canonical, FieldConflict

OUTLOOK, SALESFORCE = "outlook", "salesforce"
SIDES = (OUTLOOK, SALESFORCE)


def other(side: str) -> str:
    return SALESFORCE if side == OUTLOOK else OUTLOOK


@dataclass(frozen=True)
class Item:
    """One remote item as fetched: identity, version, link key and canonical content.

    `record` is None for a deletion or when the payload could not be mapped
    (then `error` says why). `in_scope` is False for items outside the
    member's range, private items when those are excluded, and so on: such an
    item is never created on the other side and never read as a deletion.
    """

    side: str
    id: str
    version: str = ""
    link_key: str | None = None
    deleted: bool = False
    record: Canonical | None = None
    hash: str = ""
    error: str = ""
    in_scope: bool = True
    ical_uid: str = ""
    container: str = ""
    # How the log names an item that could not be mapped (`Outlook contact “Ada”`),
    # read from whatever of its payload was readable.
    label: str = ""
    # The Outlook payload, kept so an update preserves what we do not sync. Held
    # as compact JSON: a string costs a fraction of the parsed dict, times N items.
    raw_json: str = field(default="", compare=False, repr=False)
    # A calendar series: its occurrences on this side (engine.series.Occurrences),
    # None when they were not read this run (then nothing is known about them).
    occurrences: Any = field(default=None, compare=False, repr=False)

    @property
    def raw(self) -> dict | None:
        return json.loads(self.raw_json) if self.raw_json else None

    @property
    def title(self) -> str:
        r = self.record
        if r is None:
            # An unmappable item: the name its label quotes, if any.
            _, sep, rest = self.label.partition("“")
            return rest.rstrip("”") if sep else ""
        for name in ("subject", "title"):
            if getattr(r, name, ""):
                return getattr(r, name)
        if hasattr(r, "last_name"):
            return " ".join(p for p in (r.first_name, r.last_name) if p)
        return ""


@dataclass(frozen=True)
class LinkView:
    pk: int | None
    link_key: str
    outlook_id: str | None = None
    sf_id: str | None = None
    outlook_version: str = ""
    sf_version: str = ""
    snapshot: dict | None = None
    snapshot_hash: str = ""
    state: str = "synced"
    one_way_from: str = ""
    container: str = ""
    ical_uid: str = ""
    # A series link's occurrences that differ from the pattern, as last agreed
    # (engine.series.Stored per SyncOccurrence row); loaded for calendar links only.
    occurrences: tuple = ()
    # SyncLink.resume: a multi-step change under way (engine.series.Repattern as JSON).
    resume: dict | None = None

    def id_on(self, side: str) -> str | None:
        return self.outlook_id if side == OUTLOOK else self.sf_id

    def version_on(self, side: str) -> str:
        return self.outlook_version if side == OUTLOOK else self.sf_version


@dataclass(frozen=True)
class Write:
    side: str
    op: str  # create | update | delete


@dataclass(frozen=True)
class Decision:
    """What to do for one logical item.

    `result` is the content both sides hold once the writes are done: the new
    snapshot. `action` summarises the decision for counts and the log.
    """

    link_key: str
    action: str  # create | update | delete | link | conflict | touch | out_of_scope | tombstone | error | skip
    link: LinkView | None = None
    outlook: Item | None = None
    sf: Item | None = None
    result: Canonical | None = None
    writes: tuple[Write, ...] = ()
    state: str = "synced"
    conflicts: tuple[FieldConflict, ...] = ()
    message: str = ""
    one_way_from: str = ""
    # Which rule decided (engine.why.RULES): what the item trace shows. Not part of
    # equality, so a stored plan still matches the same decision.
    rule: str = field(default="", compare=False)
    # One occurrence of a linked series (engine.series.OccurrenceChange): the applier
    # writes that occurrence only and records it on the series link's occurrences.
    occurrence: Any = field(default=None, compare=False)
    # A linked Salesforce series re-created for a changed pattern (engine.series.Repattern):
    # its Salesforce write is a "create" that first retires the old series' future.
    repattern: Any = field(default=None, compare=False)

    @property
    def title(self) -> str:
        for it in (self.outlook, self.sf):
            if it is not None and it.title:
                return it.title
        if self.result is not None:
            return Item(side="", id="", record=self.result).title
        return ""

    def writes_on(self, side: str) -> tuple[Write, ...]:
        return tuple(w for w in self.writes if w.side == side)


@dataclass(frozen=True)
class EnginePolicy:
    kind: str
    mode: str = "auto"
    direction: str = "both"
    conflict_winner: str = OUTLOOK
    delete_outlook_to_salesforce: bool = True
    delete_salesforce_to_outlook: bool = True
    include_private: bool = False
    outlook_category_filter: str = ""
    days_back: int = 30
    days_ahead: int = 365
    completed_within_days: int = 30
    contact_scope: str = "mine"
    mass_delete_threshold_percent: int = 10
    mass_delete_min_items: int = 5
    time_zone: str = "UTC"

    def writes_to(self, side: str) -> bool:
        """May changes flow into `side`?"""
        if self.direction == "both":
            return True
        if self.direction == "outlook_to_salesforce":
            return side == SALESFORCE
        return side == OUTLOOK

    def deletes_to(self, side: str) -> bool:
        if not self.writes_to(side):
            return False
        if side == SALESFORCE:
            return self.delete_outlook_to_salesforce
        return self.delete_salesforce_to_outlook

    def replace(self, **kw: Any) -> EnginePolicy:
        return dataclasses.replace(self, **kw)


@dataclass
class Counts:
    """Per action and side; what `sync --json` prints."""

    created: dict = field(default_factory=lambda: {OUTLOOK: 0, SALESFORCE: 0})
    updated: dict = field(default_factory=lambda: {OUTLOOK: 0, SALESFORCE: 0})
    deleted: dict = field(default_factory=lambda: {OUTLOOK: 0, SALESFORCE: 0})
    errors: dict = field(default_factory=lambda: {OUTLOOK: 0, SALESFORCE: 0})
    linked: int = 0
    conflicts: int = 0
    out_of_scope: int = 0
    tombstoned: int = 0
    skipped: int = 0

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def writes(self) -> int:
        return sum(sum(d.values()) for d in (self.created, self.updated, self.deleted))
