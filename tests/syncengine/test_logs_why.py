"""The trace's "why" for decisions the sandbox tests do not reach cheaply: each names
its rule and the reason in words (engine/why.py over the real planner)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from syncengine.engine.plan import decide
from syncengine.engine.records import OUTLOOK, SALESFORCE, Item
from syncengine.engine.why import decision_detail, rule_text
from syncengine.templatetags.support_logs import why_text

from .test_plan import POLICY, contact, item, link

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def _why(d, policy=POLICY):
    return decision_detail(d, kind="contacts", policy=policy, now=NOW)


def test_a_delete_not_propagated_by_policy_says_why_the_item_still_exists():
    base = contact()
    policy = POLICY.replace(delete_salesforce_to_outlook=False)
    gone = Item(side=SALESFORCE, id="s1", deleted=True)
    (d,) = decide("contacts", policy, [link(base)], [], [gone])
    detail = _why(d, policy)
    assert (d.action, detail["rule"], detail["not_deleted"]) == ("tombstone", "delete_policy",
                                                                  "delete_policy")
    assert "do not copy deletions" in rule_text(detail["rule"])


def test_modify_beats_delete_is_named_with_the_fields_the_edit_brings_back():
    base = contact()
    edited = item(OUTLOOK, "o1", contact(job_title="CTO"))
    (d,) = decide("contacts", POLICY, [link(base)], [edited],
                  [Item(side=SALESFORCE, id="s1", deleted=True)])
    detail = _why(d)
    assert detail["rule"] == detail["not_deleted"] == "modify_beats_delete"
    assert {"field": "job_title", "before": None, "after": "CTO"} in detail["changes"]["salesforce"]


def test_an_item_outside_the_category_filter_names_the_filter():
    base = contact()
    policy = POLICY.replace(outlook_category_filter="Clients")
    payload = {"categories": ["Family"]}
    moved = Item(side=OUTLOOK, id="o1", version="v2", record=base, hash=link(base).snapshot_hash,
                 in_scope=False, raw_json=json.dumps(payload))
    (d,) = decide("contacts", policy, [link(base)], [moved], [])
    detail = _why(d, policy)
    assert detail["scope"] == "category_filter"
    assert "Outlook category" in why_text(detail)


def test_values_are_cut_short_and_bodies_never_logged():
    base = contact()
    long_title = "Chief " * 40
    (d,) = decide("contacts", POLICY, [link(base)], [item(OUTLOOK, "o1", contact(job_title=long_title))],
                  [])
    (row,) = [r for r in _why(d)["changes"]["salesforce"] if r["field"] == "job_title"]
    assert len(row["after"]) == 80 and row["after"].endswith("…")
    from syncengine.engine.why import short

    assert short("body", "secret words " * 50) == "(text, 650 characters)"
