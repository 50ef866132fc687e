"""Carry out decisions: local bookkeeping, then remote writes in batches.

Creates follow the intent protocol (DESIGN §6 step 5): the link is saved in
`pending_create_<side>` with its link_key and committed *before* the remote
call, the key travels on the created item, and the remote id is recorded
afterwards. A crash or a lost answer in between leaves a pending link that the
next run resolves by looking the key up before it ever creates again.

Updates are absolute and conditional (If-Match on Graph); a failed write
leaves the old snapshot and puts the link in `error`, so the next run reads
both sides again and re-decides. One item's failure never stops the others.

With a fan-out (settings.SYNC_CONCURRENCY above 1) up to `depth` chunks are
written at once, each chunk's writes on a worker thread: the run's thread
commits a chunk's intent, submits its writes and goes on to the next chunk,
and records chunks (`_finish`) in the order they were sent, once their
answers are in. The intent of every chunk is committed before its writes
leave, so the protocol above is unchanged; a chunk that deletes waits until
everything sent before it is recorded (a run that fails half-way has created
and updated before it removes anything). Worker threads build bodies and
send requests only: every database read and write stays on the run's thread.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction

from ..models import LinkState, SyncLink
from .kinds import CALENDAR, CONTACTS, TASKS, outlook_body, relate_event_contacts, sf_body
from .mapping import canonical_hash
from .mapping.common import MappingError
from .records import OUTLOOK, SALESFORCE, Counts, Decision, EnginePolicy
from .remote import OutlookSide, SalesforceSide, WriteResult

GRAPH_CHUNK = 20 * 10  # ten $batch requests' worth per local commit
SF_CHUNK = 200
LOCAL_CHUNK = 1000
# The log notes of the writes running on this thread, when a worker runs them.
_notes = threading.local()


@dataclass
class Outcome:
    """What happened to each decision, for counts and the run log."""

    counts: Counts = field(default_factory=Counts)
    log: list[tuple[str, Decision, str, dict]] = field(
        default_factory=list
    )  # level, decision, message, detail
    failed_keys: set[str] = field(default_factory=set)

    def note(self, level: str, d: Decision, message: str, **detail) -> None:
        sink = getattr(_notes, "sink", None)
        (self.log if sink is None else sink).append((level, d, message, detail))


class Applier:
    def __init__(
        self,
        *,
        membership,
        kind: str,
        policy: EnginePolicy,
        outlook: OutlookSide,
        salesforce: SalesforceSide,
        now: Callable[[], datetime],
        stop_check: Callable[[], None] | None = None,
        log_now: Callable[[str, Decision, str, dict], None] | None = None,
        fanout=None,
        depth: int = 1,
    ):
        self.membership = membership
        self.kind = kind
        self.policy = policy
        self.outlook = outlook
        self.sf = salesforce
        self.now = now
        self.stop_check = stop_check or (lambda: None)
        self.out = Outcome()
        # Writes a log entry at once (committed), for what must survive a crash.
        self.log_now = log_now
        # Per decision: which of its writes succeeded, and what they returned.
        self._done: dict[int, dict[str, WriteResult]] = {}
        self._links: dict[str, SyncLink] = {}
        # Chunks whose writes are under way on the fan-out's workers, oldest first.
        self.fanout = fanout if depth > 1 else None
        self.depth = depth
        self._in_flight: deque = deque()
        self._own: frozenset[str] | None = None

    # ------------------------------------------------------------------ entry
    def apply(self, decisions: Sequence[Decision]) -> Outcome:
        occurrences = [d for d in decisions if d.occurrence is not None]
        decisions = [d for d in decisions if d.occurrence is None]
        writes = [d for d in decisions if d.writes]
        local = [d for d in decisions if not d.writes]
        self._local(local)
        # New pairs need their link row (pending) before any write, like creates.
        creates = [d for d in writes if any(w.op == "create" for w in d.writes) or d.link is None]
        others = [
            d for d in writes if not (any(w.op == "create" for w in d.writes) or d.link is None)
        ]
        for chunk in _chunks(creates, SF_CHUNK):
            self._with_intent(chunk)
            # Newly matched pairs update records the run read: the same check applies.
            self._execute(self._unmoved_in_salesforce(chunk))
        for chunk in _chunks(others, SF_CHUNK):
            self._load_links(chunk)
            self._execute(self._unmoved_in_salesforce(chunk))
        if occurrences:
            self.drain()  # an occurrence is written after its series' own writes are recorded
        for chunk in _chunks(occurrences, SF_CHUNK):
            self._occurrences(chunk)
        return self.out

    def drain(self) -> Outcome:
        """Record every chunk still being written (the run calls it once it has applied all)."""
        while self._in_flight:
            self._settle()
        return self.out

    # ------------------------------------------------------------------ occurrences
    def _occurrences(self, decisions: Sequence[Decision]) -> None:
        """One occurrence of a series at a time (engine.series): its write, then its row.

        Updates and deletes of an occurrence are idempotent, so no intent row is needed:
        a run that dies after the write finds both sides equal next time and records it.
        """
        groups: dict[tuple[str, str], list[Decision]] = {}
        for d in decisions:
            groups.setdefault((d.occurrence.side, d.occurrence.op), []).append(d)
        results: dict[int, WriteResult] = {}
        for (side, op), group in sorted(groups.items(), key=lambda kv: _ORDER.get(kv[0][1], -1)):
            self.stop_check()
            for d, r in zip(group, self._occurrence_writes(side, op, group), strict=True):
                results[id(d)] = r
        with transaction.atomic():
            for d in decisions:
                self._occurrence_done(d, results[id(d)])

    def _occurrence_writes(self, side: str, op: str, group: list[Decision]) -> list[WriteResult]:
        from .series import OCCURRENCE_API_VERSION, occurrence_graph_body, occurrence_sf_body

        changes = [d.occurrence for d in group]
        if not op:
            return [WriteResult(ok=True)] * len(group)
        if side == SALESFORCE and op == "update":
            bodies = [occurrence_sf_body(ch) for ch in changes]
            return _guard(
                lambda: self.sf.update_many(bodies, api_version=OCCURRENCE_API_VERSION), len(group)
            )
        if side == SALESFORCE:
            return _guard(lambda: self.sf.delete_many([ch.target_id for ch in changes]), len(group))
        if op == "update":
            patches = [
                (ch.target_id, ch.target_version, occurrence_graph_body(ch)) for ch in changes
            ]
            return _guard(lambda: self.outlook.update_many(patches), len(group))
        targets = [(ch.target_id, ch.target_version) for ch in changes]
        return _guard(lambda: self.outlook.delete_many(targets), len(group))

    def _occurrence_done(self, d: Decision, r: WriteResult) -> None:
        from ..models import SyncOccurrence

        ch = d.occurrence
        c = self.out.counts
        if not r.ok:
            c.errors[ch.side] += 1
            self.out.note(
                "error", d, f"{_label(ch.side)} occurrence {ch.op} failed: {r.error}",
                status=r.status, rule="write_failed",
            )  # fmt: skip
            return
        if ch.op:
            {"update": c.updated, "delete": c.deleted}[ch.op][ch.side] += 1
        rows = SyncOccurrence.objects.filter(link_id=d.link.pk, original_start=ch.original)
        if ch.state == "normal":
            rows.delete()
        else:
            SyncOccurrence.objects.update_or_create(
                link_id=d.link.pk,
                original_start=ch.original,
                defaults={
                    "state": ch.state,
                    "content": dict(ch.content),
                    "outlook_id": ch.outlook_id or "",
                    "sf_id": ch.sf_id or "",
                },
            )
        self.out.note("info", d, d.message, rule=d.rule)

    # ------------------------------------------------------------------ local only
    def _local(self, decisions: Sequence[Decision]) -> None:
        # In chunks: an echo run touches every link, and holding them all at once
        # would make memory grow with N.
        for chunk in _chunks(decisions, LOCAL_CHUNK):
            self._local_chunk(chunk)

    def _local_chunk(self, decisions: Sequence[Decision]) -> None:
        with transaction.atomic():
            self._load_links(decisions)
            new_links = []
            for d in decisions:
                c = self.out.counts
                if d.action == "error":
                    side = OUTLOOK if d.outlook is not None and d.outlook.error else SALESFORCE
                    c.errors[side] += 1
                    self.out.note("error", d, f"Not synced: {d.message}")
                    continue
                if d.action == "skip":
                    c.skipped += 1
                    if d.message:
                        self.out.note("info", d, d.message)
                    continue
                link = self._links.get(d.link_key)
                if link is None:
                    link = SyncLink(membership=self.membership, kind=self.kind, link_key=d.link_key)
                    new_links.append(link)
                self._record(link, d, {})
                if d.action == "link":
                    c.linked += 1
                    self.out.note("info", d, d.message or "Linked.")
                elif d.action == "tombstone":
                    c.tombstoned += 1
                    self.out.note("info", d, d.message or "Link closed.")
                elif d.state == "out_of_scope" and (
                    d.link is None or d.link.state != "out_of_scope"
                ):
                    c.out_of_scope += 1
                    self.out.note("info", d, "Out of range: no longer synced (nothing deleted).")
                elif d.message:
                    self.out.note("info", d, d.message)
            if new_links:
                SyncLink.objects.bulk_create(new_links)
            mine = [self._links[d.link_key] for d in decisions if d.link_key in self._links]
            changed = [lk for lk in mine if lk.pk and getattr(lk, "_dirty", False)]
            # An echo run records every link it read: one prepared UPDATE, not bulk_update.
            _save_links(changed)
        for d in decisions:  # recorded; later chunks load their own rows (others may be in flight)
            self._links.pop(d.link_key, None)

    # ------------------------------------------------------------------ intent
    def _with_intent(self, decisions: Sequence[Decision]) -> None:
        """Save every create's link as pending, and commit, before any remote call."""
        self._load_links(decisions)
        with transaction.atomic():
            new_links, changed = [], []
            for d in decisions:
                target = next((w.side for w in d.writes if w.op == "create"), None)
                if target is None:
                    side = d.writes[0].side
                    state = (
                        LinkState.PENDING_UPDATE_OUTLOOK
                        if side == OUTLOOK
                        else LinkState.PENDING_UPDATE_SALESFORCE
                    )
                else:
                    state = (
                        LinkState.PENDING_CREATE_OUTLOOK
                        if target == OUTLOOK
                        else LinkState.PENDING_CREATE_SALESFORCE
                    )
                link = self._links.get(d.link_key)
                if link is None:
                    link = SyncLink(membership=self.membership, kind=self.kind, link_key=d.link_key)
                    self._links[d.link_key] = link
                    new_links.append(link)
                else:
                    changed.append(link)
                if target == OUTLOOK:
                    link.outlook_id = None
                    link.outlook_change_key = ""
                elif target == SALESFORCE:
                    link.sf_id = None
                    link.sf_modstamp = ""
                srcs = [d.sf if target == OUTLOOK else d.outlook] if target else [d.outlook, d.sf]
                for src in srcs:
                    if src is None:
                        continue
                    if src.side == OUTLOOK:
                        link.outlook_id, link.outlook_change_key = src.id, src.version
                        link.outlook_ical_uid = src.ical_uid or link.outlook_ical_uid
                        link.outlook_container = src.container
                    else:
                        link.sf_id, link.sf_modstamp = src.id, src.version
                link.state = state
                link.one_way_from = d.one_way_from or link.one_way_from
                if d.result is not None:
                    # The intended content: a resumed create compares against it.
                    link.snapshot = d.result.projection()
                    link.snapshot_hash = canonical_hash(d.result)
                if d.repattern is not None:
                    # The old series to retire, saved before the first step (engine.series).
                    link.resume = d.repattern.as_json()
            _save_links(changed)
            if new_links:
                SyncLink.objects.bulk_create(new_links)

    # ------------------------------------------------------------------ remote
    def _unmoved_in_salesforce(self, decisions: list[Decision]) -> list[Decision]:
        """Leave out decisions whose Salesforce record changed since this run read it.

        sObject Collections have no If-Match: an update would overwrite a save the
        user made between our read and our write, and a delete would discard it.
        One SystemModstamp query per chunk (≤ 200 ids) stands in for the condition,
        asked only when the chunk updates or deletes Salesforce records. A moved
        record gets no write on either side; its link keeps its snapshot and
        versions and goes pending, so the next run reads both sides by id and
        merges field by field (the Outlook delta has already moved past this
        run's Outlook edit, so the link must ask for it).
        """
        checked = [
            d
            for d in decisions
            if any(w.side == SALESFORCE and w.op in ("update", "delete") for w in d.writes)
            or _starts_repattern(d)
        ]
        if not checked:
            return decisions
        from connections import errors

        ids = [self._links[d.link_key].sf_id for d in checked]
        # A series is one Event per occurrence: it moved if any occurrence row did (its
        # version is the newest row's stamp, which need not be the row the link holds).
        rows = {id(d): _series_rows(d) for d in checked}
        failure = ""
        try:
            wanted = {i for i in ids if i} | {r for v in rows.values() for r in v}
            current = self.sf.modstamps(sorted(wanted))
        except errors.RUN_STOPPERS:
            raise
        except errors.RemoteError as exc:
            # Unchecked is unsafe: hold the chunk's Salesforce writes until the next run.
            current = {}
            failure = f"{type(exc).__name__}: {getattr(exc, 'message', '') or exc}"[:300]
        held: set[int] = set()
        for d, sf_id in zip(checked, ids, strict=True):
            link = self._links[d.link_key]
            # What this run read; a record not read this run is as the link last saw it.
            seen = d.sf.version if d.sf is not None and not d.sf.deleted else link.sf_modstamp
            if rows[id(d)]:
                if failure or any(current.get(r) != v for r, v in rows[id(d)].items()):
                    held.add(id(d))
            elif not sf_id or not seen or current.get(sf_id) != seen:
                held.add(id(d))
        if not held:
            return decisions
        links = []
        for d in checked:
            if id(d) not in held:
                continue
            link = self._links.pop(d.link_key)
            link.state = LinkState.PENDING_UPDATE_SALESFORCE
            if _starts_repattern(d):
                # Nothing of the re-creation was written: the link goes back to what it held
                # before this run's intent (its series, versions and snapshot), so the next run
                # sees both changes again and plans the re-creation afresh from what Salesforce
                # then holds, naming the occurrence changes it cannot keep.
                lk = d.link
                link.sf_id, link.sf_modstamp = lk.sf_id, lk.sf_version
                link.outlook_id, link.outlook_change_key = lk.outlook_id, lk.outlook_version
                link.snapshot, link.snapshot_hash = lk.snapshot, lk.snapshot_hash
                link.resume = None
            if d.link is None:
                # A pair matched this run has no agreed content yet: next run merges
                # the two sides afresh (each difference to the winner, and logged).
                link.snapshot, link.snapshot_hash = None, ""
            links.append(link)
            if failure:
                self.out.counts.errors[SALESFORCE] += 1
                self.out.note(
                    "error",
                    d,
                    f"Not written: the Salesforce check failed ({failure}); next run retries.",
                )
            else:
                self.out.counts.skipped += 1
                self.out.note(
                    "info",
                    d,
                    "Changed in Salesforce during the run; will merge next run.",
                    rule="changed_during_run",
                )
        with transaction.atomic():
            _save_links(links)
        return [d for d in decisions if id(d) not in held]

    def _execute(self, decisions: Sequence[Decision]) -> None:
        if self.log_now is not None:
            # A conflict's losing values are logged before the writes that drop them:
            # a run that dies between those writes and _finish must not lose them (I5).
            for d in decisions:
                if d.conflicts:
                    self.log_now("warning", d, d.message, _conflict_detail(d))
        if self.fanout is None:
            self._store(self._writes(decisions))
            self._finish(decisions)
            return
        if any(w.op == "delete" for d in decisions for w in d.writes):
            self.drain()  # deletions go only once everything sent before them is recorded
        if self.kind == CALENDAR:
            self._own_addresses()  # read here: the workers never touch the database
        self._in_flight.append((decisions, self.fanout.submit(self._writes_noted, decisions)))
        while len(self._in_flight) >= self.depth or self._in_flight[0][1].done():
            self._settle()
            if not self._in_flight:
                break

    def _settle(self) -> None:
        """Record the oldest chunk in flight once its writes are answered."""
        decisions, future = self._in_flight.popleft()
        done, notes = self.fanout.result(future)
        self.out.log.extend(notes)
        self._store(done)
        self._finish(decisions)

    def _writes_noted(self, decisions: Sequence[Decision]):
        """A chunk's writes on a worker: its results, and the log notes they made."""
        _notes.sink = []
        try:
            return self._writes(decisions), _notes.sink
        finally:
            _notes.sink = None

    def _writes(self, decisions: Sequence[Decision]) -> dict[int, dict[str, WriteResult]]:
        """Send a chunk's writes, creates before updates before deletes (no database work)."""
        done: dict[int, dict[str, WriteResult]] = {}
        by_side: dict[tuple[str, str], list[Decision]] = {}
        for d in decisions:
            for w in d.writes:
                by_side.setdefault((w.side, w.op), []).append(d)
        for (side, op), group in sorted(by_side.items(), key=lambda kv: _ORDER[kv[0][1]]):
            self.stop_check()
            results = self._write_group(side, op, group)
            for d, r in zip(group, results, strict=True):
                done.setdefault(id(d), {})[f"{side}:{op}"] = r
        return done

    def _store(self, done: dict[int, dict[str, WriteResult]]) -> None:
        for key, results in done.items():
            self._done.setdefault(key, {}).update(results)

    def _own_addresses(self) -> frozenset[str]:
        if self._own is None:
            from .kinds import member_addresses

            self._own = member_addresses(self.membership)
        return self._own

    def _write_group(self, side: str, op: str, group: list[Decision]) -> list[WriteResult]:
        """One batch per group; an item whose write body cannot be built fails alone.

        Bodies are built before any request is sent, so a MappingError means nothing of
        the group was written yet: the group is then sent an item at a time (only in
        that rare case) and the unbuildable item is an item error, retried next run.
        """
        write = self._outlook if side == OUTLOOK else self._salesforce
        try:
            return write(op, group)
        except MappingError as exc:
            if len(group) == 1:
                return [_unwritable(exc)]
        results = []
        for d in group:
            try:
                results.extend(write(op, [d]))
            except MappingError as exc:
                results.append(_unwritable(exc))
        return results

    def _outlook(self, op: str, group: list[Decision]) -> list[WriteResult]:
        if op == "create":
            bodies = [
                outlook_body(
                    self.kind,
                    d.result,
                    key=d.link_key,
                    create=True,
                    existing=None,
                    policy=self.policy,
                    replaces=self._links[d.link_key].outlook_ical_uid,
                )
                for d in group
            ]
            return _guard(lambda: self.outlook.create_many(bodies), len(group))
        if op == "update":
            # A To Do task paired as it is only needs our key (a linkedResource of
            # its own request): PATCHing the same content would double the requests.
            key_only = {
                i
                for i, d in enumerate(group)
                if self.kind == TASKS
                and _needs_key(d, OUTLOOK)
                and not d.outlook.deleted
                and d.result is not None
                and d.outlook.hash == canonical_hash(d.result)
            }
            changes, patched = [], []
            for i, d in enumerate(group):
                if i in key_only:
                    continue
                patched.append(i)
                link = self._links[d.link_key]
                existing = d.outlook.raw if d.outlook is not None else None
                version = (
                    d.outlook.version
                    if d.outlook is not None and not d.outlook.deleted
                    else link.outlook_change_key
                )
                body = outlook_body(
                    self.kind,
                    d.result,
                    key=d.link_key,
                    create=False,
                    existing=existing,
                    policy=self.policy,
                    stamp_key=_needs_key(d, OUTLOOK),
                )
                changes.append((link.outlook_id, version, body))
            if self.kind == CALENDAR:
                self._event_bodies(group, patched, changes)
            results: list[WriteResult] = [WriteResult(ok=True)] * len(group)
            sent = _guard(lambda: self.outlook.update_many(changes), len(changes))
            for i, r in zip(patched, sent, strict=True):
                results[i] = r
            if self.kind == TASKS:
                stamps = [
                    (i, self._links[d.link_key].outlook_id, d.link_key)
                    for i, d in enumerate(group)
                    if _needs_key(d, OUTLOOK) and results[i].ok
                ]
                if stamps:
                    # To Do keeps the key in a linkedResource, added by its own request.
                    added = _guard(
                        lambda: self.outlook.add_task_keys([(x, k) for _, x, k in stamps]),
                        len(stamps),
                    )
                    for (i, _, _), r in zip(stamps, added, strict=True):
                        if not r.ok:
                            results[i] = r
                        else:
                            # The task's changeKey moved again: the next read brings it.
                            results[i] = dataclasses.replace(results[i], version="")
            return results
        targets = []
        for d in group:
            link = self._links[d.link_key]
            version = (
                d.outlook.version
                if d.outlook is not None and d.outlook.version
                else link.outlook_change_key
            )
            targets.append((link.outlook_id, version))
        return _guard(lambda: self.outlook.delete_many(targets), len(group))

    def _event_bodies(self, group: list[Decision], patched: list[int], changes: list) -> None:
        """What an event update may do to Outlook's body (edits `changes` in place).

        Events are read with text bodies (the canonical Description is text), so the
        body in hand, if any (an event Outlook did not change is not read at all), is
        Graph's text rendition of a body stored as HTML. Unchanged text (against that
        read, else against the link's snapshot): the PATCH leaves the body out, so the
        HTML (formatting, Teams join block) stays as it is. Changed text (an edit in Salesforce): the stored
        HTML is fetched (one `$batch` per 20 such events, only for these) and
        replaced only when it is plain text LinkPoint can rewrite without loss;
        a formatted body or an online meeting's keeps Outlook's version and the
        log says why. The link records the merged content, so the skipped body is
        not copied back on the next run either.
        """
        rewrite = []
        for n, i in enumerate(patched):
            d, body = group[i], changes[n][2]
            if "body" not in body or d.result is None:
                continue
            raw = d.outlook.raw if d.outlook is not None and not d.outlook.deleted else None
            if isinstance(raw, dict):
                # The body Graph just gave us (text); to_graph kept it when the text is unchanged.
                unchanged = body["body"] == raw.get("body")
            else:
                # Outlook did not change this run (not read): compare with what was last synced.
                snapshot = self._links[d.link_key].snapshot or {}
                unchanged = "body" in snapshot and snapshot["body"] == getattr(
                    d.result, "body", None
                )
            if unchanged:
                del body["body"]  # never write a text rendition over the stored HTML
            else:
                rewrite.append(n)
        if not rewrite:
            return
        stored = self.outlook.html_bodies([changes[n][0] for n in rewrite])
        for n in rewrite:
            item_id, _, body = changes[n]
            reason = outlook_body_keep_reason(stored.get(item_id))
            if reason:
                del body["body"]
                self.out.note(
                    "warning",
                    group[patched[n]],
                    f"Description changed in Salesforce but not copied to Outlook: {reason}. "
                    "Edit the description in Outlook to change both.",
                    field="body",
                )

    def _salesforce(self, op: str, group: list[Decision]) -> list[WriteResult]:
        if self.kind == CALENDAR and op == "create" and any(d.repattern for d in group):
            return self._repattern(group)
        if self.kind == CALENDAR and op in ("update", "delete"):
            series = [i for i, d in enumerate(group) if _is_series(d, self._links[d.link_key])]
            if series:
                return self._with_series(op, group, series)
        if op == "delete":
            ids = [self._links[d.link_key].sf_id for d in group]
            return _guard(lambda: self.sf.delete_many(ids), len(group))
        bodies = []
        for d in group:
            body = sf_body(
                self.kind,
                d.result,
                key=d.link_key,
                policy=self.policy,
                create=op == "create" or _needs_key(d, SALESFORCE),
            )
            if op == "update":
                body["Id"] = self._links[d.link_key].sf_id
            bodies.append(body)
        if self.kind == CONTACTS:
            self._resolve_accounts(group, bodies)
        if self.kind == CALENDAR:
            self._relate_contacts(op, group, bodies)
        if op == "create":
            return _guard(lambda: self.sf.create_many(bodies), len(group))
        return _guard(lambda: self.sf.update_many(bodies), len(group))

    def _with_series(self, op: str, group: list[Decision], series: list[int]) -> list[WriteResult]:
        """Salesforce holds a series as one Event per occurrence: a series-wide update goes
        to its first future occurrence (from API 58.0 that changes the series from there
        on; the past ones are activity history and keep their values); deleting a series
        deletes that occurrence onwards (fromThisEventOnwards), so the past stays too."""
        from .series import first_future_slot, retarget_series_body, slots_after, truncated_at

        results: list[WriteResult | None] = [None] * len(group)
        rest = [i for i in range(len(group)) if i not in set(series)]
        if rest:
            for i, r in zip(rest, self._salesforce(op, [group[i] for i in rest]), strict=True):
                results[i] = r
        now = self.now()
        sends: list[tuple[int, object]] = []
        ends: list[tuple[int, object]] = []  # shortened series: delete from there on
        for i in series:
            d = group[i]
            link = self._links[d.link_key]
            occ = d.sf.occurrences if d.sf is not None else None
            slot = first_future_slot(occ, now)
            last = truncated_at(link.snapshot, d.result) if op == "update" else None
            if last is not None:
                if slot is not None and slot.original > last:
                    slot = None  # no occurrence of the shortened series is still ahead
                cut = slots_after(occ, last, now)
                if cut is not None:
                    ends.append((i, cut))
            if occ is not None and slot is None:
                # Every occurrence is past (or changed on its own): nothing follows the series.
                results[i] = WriteResult(ok=True)
                self.out.note(
                    "info", d,
                    "Salesforce keeps this series as it is: all its occurrences are past "
                    "(activity history).",
                )  # fmt: skip
                continue
            sends.append((i, slot.id if slot else link.sf_id, slot))
        if op == "delete":
            out = _guard(lambda: self.sf.delete_onwards([x[1] for x in sends]), len(sends))
            for (i, target, slot), r in zip(sends, out, strict=True):
                results[i] = r
                if r.ok and slot is not None and target != self._links[group[i].link_key].sf_id:
                    self.out.note(
                        "info", group[i],
                        f"Deleted in Salesforce from the occurrence of {slot.original.replace('T', ' ')} "
                        "on; the past occurrences stay there as activity history.",
                    )  # fmt: skip
            return results
        bodies = []
        for i, target, slot in sends:
            d = group[i]
            body = sf_body(self.kind, d.result, key=d.link_key, policy=self.policy, create=False)
            body["Id"] = target
            if slot is not None:
                body = retarget_series_body(body, d.result, slot)
            bodies.append(body)
        self._relate_contacts(op, [group[i] for i, _, _ in sends], bodies)
        out = _guard(lambda: self.sf.update_many(bodies), len(sends))
        for (i, _, _), r in zip(sends, out, strict=True):
            results[i] = r
        if ends:
            out = _guard(lambda: self.sf.delete_onwards([slot.id for _, slot in ends]), len(ends))
            for (i, slot), r in zip(ends, out, strict=True):
                if not r.ok:
                    results[i] = r
                else:
                    self.out.note(
                        "info", group[i],
                        f"The series ends earlier in Outlook: its Salesforce occurrences from "
                        f"{slot.original.replace('T', ' ')} on were deleted; the earlier ones are kept.",
                        rule="series_history",
                    )  # fmt: skip
        stamps = [i for i, _, _ in sends if results[i].ok and _needs_key(group[i], SALESFORCE)]
        if stamps:
            # Our key names the series: it goes on the occurrence the link holds (the
            # first), written alone (below API 58.0) so no other occurrence changes.
            from .kinds import SF_KEY_FIELD
            from .series import OCCURRENCE_API_VERSION

            keyed = [
                {"Id": self._links[group[i].link_key].sf_id, SF_KEY_FIELD: group[i].link_key}
                for i in stamps
            ]
            out = _guard(
                lambda: self.sf.update_many(keyed, api_version=OCCURRENCE_API_VERSION), len(stamps)
            )
            for i, r in zip(stamps, out, strict=True):
                if not r.ok:
                    results[i] = r
        return results

    def _repattern(self, group: list[Decision]) -> list[WriteResult]:
        """Re-create linked Salesforce series whose pattern changed (engine.series): the
        old key holder gets the history key, the old series is deleted from its first
        occurrence not past, the new series is created with our key. Each step is safe
        to repeat (the link's ``resume`` was committed before the first)."""
        from .kinds import SF_KEY_FIELD
        from .series import OCCURRENCE_API_VERSION, history_key, restart_from

        results: list[WriteResult | None] = [None] * len(group)
        mine = [i for i, d in enumerate(group) if d.repattern is not None]
        rest = [i for i in range(len(group)) if group[i].repattern is None]
        if rest:
            for i, r in zip(
                rest, self._salesforce("create", [group[i] for i in rest]), strict=True
            ):
                results[i] = r
        now = self.now()
        # 1. Our key cannot be on two records: the old series' holder keeps the history key
        # (written alone, below API 58.0, so no other occurrence changes).
        retire = [
            i
            for i in mine
            if group[i].repattern.head and group[i].repattern.head != group[i].repattern.onwards
        ]
        if retire:
            bodies = [
                {"Id": group[i].repattern.head, SF_KEY_FIELD: history_key(group[i].link_key)}
                for i in retire
            ]
            out = _guard(
                lambda: self.sf.update_many(bodies, api_version=OCCURRENCE_API_VERSION), len(retire)
            )
            for i, r in zip(retire, out, strict=True):
                if not r.ok and not _gone(r):
                    results[i] = r
        # 2. The old series from its first occurrence not past on (the past stays).
        cut = [i for i in mine if results[i] is None and group[i].repattern.onwards]
        if cut:
            out = _guard(
                lambda: self.sf.delete_onwards([group[i].repattern.onwards for i in cut]), len(cut)
            )
            for i, r in zip(cut, out, strict=True):
                if not r.ok:
                    results[i] = r
        # 3. The new series, from the new pattern's first occurrence not past.
        make, bodies = [], []
        for i in mine:
            if results[i] is not None:
                continue
            d = group[i]
            restarted = restart_from(d.result, now)
            if restarted is None:
                results[i] = WriteResult(
                    ok=False, error="none of the series' new occurrences is ahead"
                )
                continue
            make.append(i)
            bodies.append(
                sf_body(self.kind, restarted[0], key=d.link_key, policy=self.policy, create=True)
            )
        if make:
            self._relate_contacts("create", [group[i] for i in make], bodies)
            out = _guard(lambda: self.sf.create_many(bodies), len(make))
            for i, r in zip(make, out, strict=True):
                results[i] = r
        return results

    def _relate_contacts(self, op: str, group: list[Decision], bodies: list[dict]) -> None:
        """Attendee e-mails → the Event's WhoId (see kinds.relate_event_contacts)."""
        from connections import errors

        if op == "update":
            # Related by the member in the Relate panel (issue 16): even a Name they cleared
            # stays cleared, so these events never get an attendee's WhoId from us.
            keep = [
                i for i, d in enumerate(group) if not self._links[d.link_key].relation_by_member
            ]
            if len(keep) < len(group):
                group, bodies = [group[i] for i in keep], [bodies[i] for i in keep]
        if not any(getattr(d.result, "attendees", ()) for d in group):
            return
        sf_ids = [self._links[d.link_key].sf_id for d in group] if op == "update" else None
        try:
            notes = relate_event_contacts(
                self.sf,
                [d.result for d in group],
                bodies,
                own=self._own_addresses(),
                sf_ids=sf_ids,
            )
        except errors.RUN_STOPPERS:
            raise
        except errors.RemoteError as exc:
            notes = [
                f"Contact lookup failed ({exc}): event saved without relating a Contact."
                if getattr(d.result, "attendees", ())
                else ""
                for d in group
            ]
        for d, note in zip(group, notes, strict=True):
            if note:
                self.out.note("info", d, note)

    def _resolve_accounts(self, group: list[Decision], bodies: list[dict]) -> None:
        names = {d.result.company for d in group if d.result.company}
        found = _guard_map(lambda: self.sf.account_ids(names)) if names else {}
        for d, body in zip(group, bodies, strict=True):
            company = d.result.company
            body["AccountId"] = found.get(company.casefold()) if company else None
            if company and body["AccountId"] is None:
                self.out.note(
                    "info",
                    d,
                    f"No Salesforce Account named “{company[:80]}”: contact left unrelated.",
                )

    # ------------------------------------------------------------------ record
    def _finish(self, decisions: Sequence[Decision]) -> None:
        done: list[SyncLink] = []
        with transaction.atomic():
            for d in decisions:
                results = self._done.get(id(d), {})
                link = self._links[d.link_key]
                failed = {k: r for k, r in results.items() if not r.ok}
                c = self.out.counts
                if failed:
                    for k, r in failed.items():
                        side = k.split(":")[0]
                        c.errors[side] += 1
                        self.out.note(
                            "error",
                            d,
                            f"{_label(side)} {k.split(':')[1]} failed: {r.error}",
                            status=r.status,
                            rule="write_failed",
                        )
                    # Partial success still counts what did happen.
                    for k, r in results.items():
                        if r.ok:
                            self._count_write(k)
                            self._apply_result(link, k, r)
                    link.attempts += 1
                    link.last_error = "; ".join(r.error for r in failed.values())[:500]
                    if not any(k.endswith(":create") for k in failed):
                        link.state = LinkState.ERROR
                    done.append(link)
                    self.out.failed_keys.add(d.link_key)
                    continue
                for k in results:
                    self._count_write(k)
                self._record(link, d, results)
                if d.conflicts:
                    c.conflicts += 1
                    if self.log_now is None:  # else logged before the writes (_execute)
                        self.out.note("warning", d, d.message, **_conflict_detail(d))
                elif d.action == "link":
                    c.linked += 1
                    self.out.note("info", d, d.message or "Linked.")
                else:
                    # Both ids as recorded: a create's entry then names the new copy too.
                    self.out.note(
                        "info",
                        d,
                        _describe(d),
                        fields=_changed_fields(d),
                        ids=(link.outlook_id or "", link.sf_id or ""),
                    )
                link._dirty = False
                done.append(link)
            _save_links(done)
        # Recorded: let go of this chunk's rows and results, so memory does not grow with N.
        for d in decisions:
            self._links.pop(d.link_key, None)
            self._done.pop(id(d), None)

    def _count_write(self, k: str) -> None:
        side, op = k.split(":")
        bucket = {
            "create": self.out.counts.created,
            "update": self.out.counts.updated,
            "delete": self.out.counts.deleted,
        }[op]
        bucket[side] += 1

    def _apply_result(self, link: SyncLink, k: str, r: WriteResult) -> None:
        side, op = k.split(":")
        if side == OUTLOOK:
            if op == "create":
                link.outlook_id = r.id
                link.outlook_ical_uid = (r.payload or {}).get("iCalUId") or ""
                link.outlook_container = self.outlook.container
            if op in ("create", "update"):
                link.outlook_change_key = r.version
        else:
            if op == "create":
                link.sf_id = r.id
            if op in ("create", "update"):
                # Salesforce answers without the new SystemModstamp: the next
                # read brings it, and equal content makes that read an echo.
                link.sf_modstamp = ""

    def _record(self, link: SyncLink, d: Decision, results: dict[str, WriteResult]) -> None:
        """The link as it stands after a fully successful decision."""
        for it in (d.outlook, d.sf):
            if it is None or it.deleted:
                continue
            if it.side == OUTLOOK:
                link.outlook_id = it.id
                link.outlook_change_key = it.version
                link.outlook_ical_uid = it.ical_uid or link.outlook_ical_uid
                link.outlook_container = it.container or link.outlook_container
            else:
                link.sf_id = it.id
                link.sf_modstamp = it.version
        for k, r in results.items():
            self._apply_result(link, k, r)
        if d.result is not None:
            link.snapshot = d.result.projection()
            link.snapshot_hash = canonical_hash(d.result)
        link.state = d.state
        if d.one_way_from:
            link.one_way_from = d.one_way_from
        if link.resume and link.sf_id and link.sf_id != link.resume.get("head"):
            # A re-created series is recorded: the old one's agreed occurrences went with it.
            from ..models import SyncOccurrence

            SyncOccurrence.objects.filter(link_id=link.pk).delete()
            link.resume = None
        link.attempts = 0
        link.last_error = ""
        link.last_synced_at = self.now()
        link._dirty = True

    def _load_links(self, decisions: Sequence[Decision]) -> None:
        missing = [d.link_key for d in decisions if d.link_key and d.link_key not in self._links]
        for i in range(0, len(missing), 500):
            for link in SyncLink.objects.filter(link_key__in=missing[i : i + 500]):
                self._links[str(link.link_key)] = link


def _starts_repattern(d: Decision) -> bool:
    """A series re-creation this run begins (not one a run left half-done): it deletes the
    old series' future, so the rows it read must still be as read, like an update's."""
    return (
        d.repattern is not None
        and (d.link is None or not d.link.resume)
        and bool(_series_rows(d))
    )


def _series_rows(d: Decision) -> dict[str, str]:
    """A Salesforce series' occurrence rows as this run read them (id → SystemModstamp)."""
    occ = d.sf.occurrences if d.sf is not None and not d.sf.deleted else None
    if occ is None or getattr(occ, "recreated", False):
        return {}
    return {x.id: x.version for x in occ.slots if x.id and x.version}


def _gone(r: WriteResult) -> bool:
    """A write to a record already deleted (what a repeated step finds)."""
    return any(
        code in (r.error or "")
        for code in ("ENTITY_IS_DELETED", "NOT_FOUND", "INVALID_CROSS_REFERENCE_KEY")
    )


def _is_series(d: Decision, link: SyncLink) -> bool:
    """A linked Salesforce series (its snapshot holds a pattern)."""
    snap = link.snapshot or {}
    return isinstance(snap.get("recurrence"), dict) and bool(link.sf_id)


def _save_links(links: list[SyncLink]) -> None:
    """Write many links' bookkeeping with one prepared UPDATE (executemany).

    bulk_update's CASE expressions grow quadratically on SQLite and save() pays
    the ORM per row; the run records thousands of links, so neither will do.
    """
    if not links:
        return
    from django.db import connection

    fields = [SyncLink._meta.get_field(name) for name in (*_LINK_FIELDS, "updated_at")]
    qn = connection.ops.quote_name
    sets = ", ".join(f"{qn(f.column)} = %s" for f in fields)
    sql = f"UPDATE {qn(SyncLink._meta.db_table)} SET {sets} WHERE {qn('id')} = %s"  # noqa: S608
    from django.utils import timezone

    stamp = timezone.now()
    rows = []
    for link in links:
        link.updated_at = stamp
        rows.append(
            [f.get_db_prep_save(getattr(link, f.attname), connection) for f in fields] + [link.pk]
        )
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def _conflict_detail(d: Decision) -> dict:
    return {
        "conflicts": [
            {
                "fields": list(x.fields),
                "winner": _label(OUTLOOK if x.winner == "ours" else SALESFORCE),
                "kept": x.kept,
                "lost": x.lost,
            }
            for x in d.conflicts
        ]
    }


def _needs_key(d: Decision, side: str) -> bool:
    """A newly paired item that does not carry our key yet."""
    it = d.outlook if side == OUTLOOK else d.sf
    return d.action == "link" and it is not None and it.link_key != d.link_key


_LINK_FIELDS = [
    "outlook_id",
    "outlook_ical_uid",
    "outlook_change_key",
    "outlook_container",
    "sf_id",
    "sf_modstamp",
    "snapshot",
    "snapshot_hash",
    "state",
    "one_way_from",
    "attempts",
    "last_error",
    "last_synced_at",
    "resume",
]
# Deletes last: a batch that fails half-way has created and updated before it removes anything.
_ORDER = {"create": 0, "update": 1, "delete": 2}


def _guard(call: Callable[[], list[WriteResult]], n: int) -> list[WriteResult]:
    """A whole batch failing transiently (timeout, lost answer) fails its items, not the run.

    Auth errors, daily-limit errors and a long throttle stop the run: they propagate.
    """
    from connections import errors

    try:
        return call()
    except errors.RUN_STOPPERS:
        raise
    except errors.RemoteError as exc:
        msg = f"{type(exc).__name__}: {getattr(exc, 'message', '') or exc}"[:300]
        return [WriteResult(ok=False, error=msg)] * n


def _unwritable(exc: Exception) -> WriteResult:
    return WriteResult(ok=False, error=f"Cannot be written: {exc}"[:300])


def _guard_map(call):
    from connections import errors

    try:
        return call()
    except errors.RUN_STOPPERS:
        raise
    except errors.RemoteError:
        return {}


_PLAIN_TAGS = {"html", "head", "meta", "body", "div", "p", "br", "span"}
_TAG_RE = None


def outlook_body_keep_reason(stored: dict | None) -> str:
    """Why Outlook's stored event body must not be replaced by plain text ("" = it may be).

    A plain body (only line structure: html/body/div/p/br/span without style) loses
    nothing when rewritten from text; formatting, links, tables, images or an online
    meeting's join information would be lost.
    """
    import re

    global _TAG_RE
    if not isinstance(stored, dict):
        return "Outlook's current body could not be read"
    if stored.get("isOnlineMeeting") or (stored.get("onlineMeeting") or {}).get("joinUrl"):
        return "the event is an online meeting whose join information lives in the body"
    body = stored.get("body") if isinstance(stored.get("body"), dict) else {}
    if (body.get("contentType") or "html").lower() != "html":
        return ""
    content = body.get("content") or ""
    if "meetup-join" in content or "teams.microsoft.com" in content:
        return "the body holds online-meeting join information"
    _TAG_RE = _TAG_RE or re.compile(r"<\s*(/?)\s*([a-zA-Z0-9]+)([^>]*)>")
    head = re.sub(r"<head\b.*?</head\s*>", "", content, flags=re.I | re.S)
    for m in _TAG_RE.finditer(head):
        name, attrs = m.group(2).lower(), m.group(3).lower()
        if name not in _PLAIN_TAGS or "style=" in attrs:
            return "Outlook's body is formatted and Salesforce holds plain text only"
    return ""


def _chunks(seq, n):
    seq = list(seq)
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


def _label(side: str) -> str:
    return "Outlook" if side == OUTLOOK else "Salesforce"


def _describe(d: Decision) -> str:
    parts = [f"{w.op}d in {_label(w.side)}" for w in d.writes]
    text = "; ".join(parts) or d.action
    return text[:1].upper() + text[1:] + (f" — {d.message}" if d.message else "")


def _changed_fields(d: Decision) -> list[str]:
    if d.link is None or not d.link.snapshot or d.result is None:
        return []
    now = d.result.projection()
    return sorted(k for k in now if now[k] != d.link.snapshot.get(k))
