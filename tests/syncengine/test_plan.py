"""The planner alone: decisions for the cases the research notes catalogue."""

from __future__ import annotations

from syncengine.engine.mapping import canonical_hash
from syncengine.engine.mapping.contacts import CanonicalContact
from syncengine.engine.plan import decide, mass_delete_stop
from syncengine.engine.records import OUTLOOK, SALESFORCE, EnginePolicy, Item, LinkView, Write

POLICY = EnginePolicy(kind="contacts", conflict_winner=SALESFORCE)


def contact(**kw):
    return CanonicalContact(**{"first_name": "Ada", "last_name": "Lovelace", **kw})


def item(side, id_, rec, version="v2", **kw):
    return Item(side=side, id=id_, version=version, record=rec, hash=canonical_hash(rec), **kw)


def link(rec, **kw):
    base = dict(
        pk=1,
        link_key="k1",
        outlook_id="o1",
        sf_id="s1",
        outlook_version="v1",
        sf_version="v1",
        snapshot=rec.projection(),
        snapshot_hash=canonical_hash(rec),
    )
    return LinkView(**{**base, **kw})


def test_version_moved_with_equal_content_is_an_echo_not_a_change():
    base = contact()
    (d,) = decide("contacts", POLICY, [link(base)], [item(OUTLOOK, "o1", base)], [])
    assert d.action == "touch" and d.writes == ()


def test_unmoved_versions_decide_nothing():
    base = contact()
    assert decide("contacts", POLICY, [link(base)], [item(OUTLOOK, "o1", base, "v1")], []) == []


def test_one_sided_edit_updates_the_other_side():
    base = contact()
    (d,) = decide(
        "contacts", POLICY, [link(base)], [item(OUTLOOK, "o1", contact(job_title="CTO"))], []
    )
    assert d.writes == (Write(SALESFORCE, "update"),)
    assert d.result.job_title == "CTO"


def test_disjoint_edits_merge_and_same_field_follows_the_winner():
    base = contact()
    o = item(OUTLOOK, "o1", contact(job_title="CTO", city="Paris"))
    s = item(SALESFORCE, "s1", contact(department="R&D", city="Lyon"))
    for winner, city in ((SALESFORCE, "Lyon"), (OUTLOOK, "Paris")):
        (d,) = decide("contacts", POLICY.replace(conflict_winner=winner), [link(base)], [o], [s])
        assert d.action == "conflict"
        assert (d.result.job_title, d.result.department, d.result.city) == ("CTO", "R&D", city)
        assert d.conflicts[0].lost == {"city": "Paris" if city == "Lyon" else "Lyon"}
        assert set(d.writes) == {Write(OUTLOOK, "update"), Write(SALESFORCE, "update")}


def test_modify_beats_delete():
    base = contact()
    o = Item(side=OUTLOOK, id="o1", deleted=True)
    s = item(SALESFORCE, "s1", contact(job_title="CEO"))
    (d,) = decide("contacts", POLICY, [link(base)], [o], [s])
    assert d.action == "create" and d.writes == (Write(OUTLOOK, "create"),)


def test_delete_propagates_only_when_policy_allows():
    base = contact()
    gone = Item(side=SALESFORCE, id="s1", deleted=True)
    (d,) = decide(
        "contacts", POLICY.replace(delete_salesforce_to_outlook=False), [link(base)], [], [gone]
    )
    assert d.action == "tombstone" and d.writes == ()
    (d,) = decide("contacts", POLICY, [link(base)], [], [gone])
    assert d.writes == (Write(OUTLOOK, "delete"),)


def test_out_of_scope_is_never_a_delete():
    base = contact()
    moved = item(OUTLOOK, "o1", base, in_scope=False)
    (d,) = decide("contacts", POLICY, [link(base)], [moved], [])
    assert d.state == "out_of_scope" and d.writes == ()


def test_tombstoned_links_never_come_back():
    base = contact()
    late = item(SALESFORCE, "s1", contact(job_title="late edit"))
    assert decide("contacts", POLICY, [link(base, state="tombstoned")], [], [late]) == []


def test_unlinked_items_match_before_anything_is_created():
    a = item(OUTLOOK, "o9", contact(emails=("ada@example.com",)))
    b = item(SALESFORCE, "s9", contact(emails=("ada@example.com",), job_title="Countess"))
    c = item(OUTLOOK, "o10", contact(first_name="Grace", last_name="Hopper"))
    ds = decide("contacts", POLICY, [], [a, c], [b], new_key=iter(["n1", "n2"]).__next__)
    linked = [d for d in ds if d.action == "link"]
    created = [d for d in ds if d.action == "create"]
    assert len(linked) == 1 and linked[0].result.job_title == "Countess"
    # Outlook takes the merged content; both items get our key.
    assert set(linked[0].writes) == {Write(OUTLOOK, "update"), Write(SALESFORCE, "update")}
    assert len(created) == 1 and created[0].writes == (Write(SALESFORCE, "create"),)


def test_one_way_direction_never_writes_to_the_source():
    p = POLICY.replace(direction="outlook_to_salesforce")
    s = item(SALESFORCE, "s5", contact(first_name="Only", last_name="InSF"))
    assert decide("contacts", p, [], [], [s]) == []
    base = contact()
    (d,) = decide("contacts", p, [link(base)], [], [item(SALESFORCE, "s1", contact(job_title="x"))])
    assert d.writes == ()


def test_mass_delete_guard():
    base = contact()
    links = [
        link(base, pk=i, link_key=f"k{i}", outlook_id=f"o{i}", sf_id=f"s{i}") for i in range(20)
    ]
    gone = [Item(side=OUTLOOK, id=f"o{i}", deleted=True) for i in range(10)]
    ds = decide("contacts", POLICY, links, gone, [])
    assert "Stopped before deleting 10 of 20" in mass_delete_stop(ds, 20, POLICY)
    assert mass_delete_stop(ds[:1], 20, POLICY) is None
