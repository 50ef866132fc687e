"""The structured `detail` of a log entry: what the item trace shows as "why".

Pure: a `Decision` (plus the policy and the clock) in, a JSON-able dict out. It
names the rule that decided, the key a pair was matched by, the fields changed
on each side with their values before and after, each conflict with the winner
and the losing value, and why an item was skipped or not deleted. Values are
cut to a few words and text bodies are never copied, only their length: the
log must never hold a full item body (DESIGN §8).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .kinds import scope_reason, secondary_key
from .records import OUTLOOK, SALESFORCE, Decision, EnginePolicy, Item

VALUE_MAX = 80
LIST_MAX = 10
FIELDS_MAX = 25
# Free text fields of any kind: only their length is logged, never their words.
BODY_FIELDS = frozenset({"body", "description", "notes"})

# Every rule a decision can name, in words a member understands.
RULES: dict[str, str] = {
    "match:link_key": "Paired by LinkPoint's own key, found on both items.",
    "match:secondary": "Paired by the same identity on both sides ({key}).",
    "match:content": "Paired because both items hold the same content.",
    "new_item": "New on one side: copied to the other.",
    "changed_in_outlook": "Edited in Outlook since the last sync: copied to Salesforce.",
    "changed_in_salesforce": "Edited in Salesforce since the last sync: copied to Outlook.",
    "merged": "Edited on both sides, in different fields: both edits kept.",
    "conflict_winner": "The same field was edited on both sides: the conflict winner set in "
    "the sync settings ({winner}) was kept, the other value is shown as lost.",
    "modify_beats_delete": "Deleted on one side but edited on the other: the edit wins, "
    "the item is created again.",
    "delete_policy": "Deleted on one side; the sync settings do not copy deletions that way, "
    "so the other side keeps it.",
    "one_way_source": "Deleted on the side a one-way link copies to: the source keeps it.",
    "deleted_both": "Deleted on both sides.",
    "deleted_on_outlook": "Deleted in Outlook: deleted in Salesforce too (delete sync is on).",
    "deleted_on_salesforce": "Deleted in Salesforce: deleted in Outlook too (delete sync is on).",
    "mass_delete_guard": "Not deleted: the run stopped before deleting because it would have "
    "deleted more than the mass-delete guard allows.",
    "gone_before_copy": "Deleted before it could be copied.",
    "waiting_for_source": "Waiting for the original to be read again.",
    "direction": "The sync direction does not copy changes this way.",
    "recurrence_limit": "Skipped: Salesforce cannot hold this recurrence.",
    "unmappable": "Skipped: a value could not be mapped to the other side.",
    "scope:private": "Not synced: private items are excluded by the sync settings.",
    "scope:out_of_range": "Not synced: outside the date range in the sync settings "
    "(nothing is deleted).",
    "scope:completed_long_ago": "Not synced: completed longer ago than the sync settings keep.",
    "scope:category_filter": "Not synced: it does not carry the Outlook category the sync "
    "settings require.",
    "scope:owner": "Not synced: the Salesforce record now belongs to someone else.",
    "echo": "Only its version moved (our own write or a server touch): nothing to copy.",
    "write_failed": "A write was refused; the next run tries again.",
    "changed_during_run": "Changed in Salesforce while the run was reading: merged next run.",
    "stale": "Changed after the plan was made: not applied.",
    "occurrence_changed": "One occurrence of a series was changed on its own: that occurrence "
    "only was changed on the other side (found by its original start).",
    "occurrence_cancelled": "One occurrence of a series was cancelled: that occurrence only was "
    "deleted on the other side (found by its original start).",
    "occurrence_kept": "An occurrence cancelled in Outlook stays in Salesforce: it is the "
    "series' first occurrence, which names the series there.",
    "occurrence_same": "One occurrence of a series already matches on both sides: recorded.",
    "series_history": "The series changed its pattern: past Salesforce occurrences are kept as "
    "activity history, the future ones follow the new pattern.",
    "series_repattern": "The series' pattern changed in Outlook, which Salesforce cannot change "
    "on an existing series: it was created again there from its first occurrence not past; "
    "the past occurrences stay as activity history with the old pattern.",
}


def rule_text(rule: str, detail: dict | None = None) -> str:
    text = RULES.get(rule, "")
    if not text:
        return ""
    detail = detail or {}
    winner = ""
    for c in detail.get("conflicts") or ():
        winner = c.get("winner", "")
    return text.format(key=detail.get("match_key", "") or "key", winner=winner or "winner")


def short(field: str, value: Any) -> Any:
    """One value as the log may hold it: short, and never body text."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if field in BODY_FIELDS:
        n = len(str(value))
        return f"(text, {n} characters)" if n else ""
    if isinstance(value, list | tuple):
        return [short("", v) for v in list(value)[:LIST_MAX]]
    if isinstance(value, dict):
        return {k: short(k, v) for k, v in list(value.items())[:LIST_MAX]}
    text = str(value)
    return text if len(text) <= VALUE_MAX else text[: VALUE_MAX - 1] + "…"


def short_values(values: dict | None) -> dict:
    return {k: short(k, v) for k, v in (values or {}).items()}


def _projection(it: Item | None) -> dict | None:
    if it is None or it.record is None:
        return None
    return it.record.projection()


def _emails(d: Decision) -> list[str]:
    found: list[str] = []
    for it in (d.outlook, d.sf):
        rec = it.record if it is not None else None
        for e in getattr(rec, "emails", ()) or ():
            if e and e not in found:
                found.append(str(e))
    return found[:LIST_MAX]


def _changes(d: Decision) -> dict[str, list[dict]]:
    """Per side written: the fields whose value there changes, before and after."""
    if d.result is None:
        return {}
    after = d.result.projection()
    out: dict[str, list[dict]] = {}
    for w in d.writes:
        if w.op != "update" and w.op != "create":
            continue
        it = d.outlook if w.side == OUTLOOK else d.sf
        before = _projection(it)
        if before is None and w.op == "update" and d.link is not None:
            before = d.link.snapshot
        rows = []
        for name in sorted(after):
            old = (before or {}).get(name)
            if before is not None and old == after[name]:
                continue
            if before is None and after[name] in (None, "", [], ()):
                continue
            rows.append({"field": name, "before": short(name, old), "after": short(name, after[name])})
        if rows:
            out[w.side] = rows[:FIELDS_MAX]
    return out


def _scope(d: Decision, kind: str, policy: EnginePolicy, now: datetime) -> str:
    for it in (d.outlook, d.sf):
        if it is None or it.in_scope:
            continue
        reason = scope_reason(kind, it.record, policy, now, raw=it.raw, side=it.side)
        return reason or ("owner" if it.side == SALESFORCE else "out_of_range")
    return ""


def _default_rule(d: Decision, scope: str) -> str:
    if d.action == "conflict":
        return "conflict_winner"
    if scope and d.action in ("touch", "out_of_scope"):
        return "scope:" + scope
    if d.action == "create":
        return "new_item"
    if d.action == "update":
        changed = [w.side for w in d.writes]
        if changed == [SALESFORCE]:
            return "changed_in_outlook"
        if changed == [OUTLOOK]:
            return "changed_in_salesforce"
        return "merged"
    if d.action == "touch":
        return "echo"
    return ""


def decision_detail(d: Decision, *, kind: str, policy: EnginePolicy, now: datetime) -> dict:
    """What the trace shows for one decision (JSON-able, bounded in size)."""
    scope = _scope(d, kind, policy, now) if d.state == "out_of_scope" else ""
    rule = d.rule or _default_rule(d, scope)
    out: dict[str, Any] = {"rule": rule}
    if scope:
        out["scope"] = scope
        if not rule.startswith("scope:"):
            out["scope_rule"] = "scope:" + scope
    if rule.startswith("match:"):
        out["match"] = rule.removeprefix("match:")
        if out["match"] == "secondary" and d.outlook is not None:
            out["match_key"] = short("", secondary_key(kind, d.outlook.record) or "")
    emails = _emails(d)
    if emails:
        out["emails"] = emails
    changes = _changes(d)
    if changes:
        out["changes"] = changes
    if d.conflicts:
        out["conflicts"] = [
            {
                "fields": list(c.fields),
                "winner": "Outlook" if c.winner == "ours" else "Salesforce",
                "kept": short_values(c.kept),
                "lost": short_values(c.lost),
            }
            for c in d.conflicts
        ]
    for it in (d.outlook, d.sf):
        if it is not None and it.error:
            out["error"] = short("", it.error)
    if rule in NOT_DELETED:
        out["not_deleted"] = rule
    setting = _setting(d, out.get("scope_rule") or rule, kind, policy)
    if setting:
        # The setting that decided, with its value then (the trace adds its source now).
        out["setting"] = {"name": setting, "value": short("", getattr(policy, setting, None))}
    return out


_RULE_SETTING = {
    "direction": "direction",
    "conflict_winner": "conflict_winner",
    "scope:private": "include_private",
    "scope:category_filter": "outlook_category_filter",
    "scope:completed_long_ago": "completed_within_days",
    "mass_delete_guard": "mass_delete_threshold_percent",
}


def _setting(d: Decision, rule: str, kind: str, policy: EnginePolicy) -> str:
    if rule == "scope:out_of_range" and kind == "calendar":
        return "days_back"
    if rule == "delete_policy":
        kept = [it.side for it in (d.outlook, d.sf) if it is not None and not it.deleted]
        keep = kept[0] if kept else (SALESFORCE if d.outlook is not None else OUTLOOK)
        if not policy.writes_to(keep):
            return "direction"
        return "delete_outlook_to_salesforce" if keep == SALESFORCE else "delete_salesforce_to_outlook"
    return _RULE_SETTING.get(rule, "")


# The rules that explain why an item deleted on one side still exists on the other.
NOT_DELETED = frozenset(
    {"modify_beats_delete", "delete_policy", "one_way_source", "mass_delete_guard"}
)
