"""A run's decisions come to the applier in blocks of one write group each: full batches but the
last of a group, local-only first and deletions last; groups of one rank (Outlook's creates and
Salesforce's) take turns, so Salesforce's writes go while Outlook's batches queue."""

from __future__ import annotations

from syncengine.engine.records import OUTLOOK, SALESFORCE, Decision, Write
from syncengine.engine.stage import TURN, Stage


def _d(key: str, *writes: tuple[str, str]) -> Decision:
    return Decision(
        link_key=key, action="create", writes=tuple(Write(side, op) for side, op in writes)
    )


def _shape(block: list[Decision]) -> tuple:
    return tuple(sorted({f"{w.side}:{w.op}" for d in block for w in d.writes})), len(block)


def test_creates_on_the_two_sides_take_turns_and_deletes_still_come_last():
    decisions = (
        [_d(f"o{i}", (OUTLOOK, "create")) for i in range(450)]
        + [_d(f"s{i}", (SALESFORCE, "create")) for i in range(300)]
        + [_d(f"x{i}", (SALESFORCE, "delete")) for i in range(5)]
        + [_d(f"l{i}") for i in range(3)]
    )
    with Stage("contacts") as stage:
        stage.add_decisions(decisions)
        blocks = list(stage.decision_blocks(1000))
    assert [_shape(b) for b in blocks] == [
        ((), 3),  # local bookkeeping first
        (("outlook:create",), TURN),
        (("salesforce:create",), TURN),
        (("outlook:create",), TURN),
        (("salesforce:create",), 100),
        (("outlook:create",), 50),
        (("salesforce:delete",), 5),  # deletions after everything else
    ]
    # Every decision once, in decision order within its group.
    flat = [d.link_key for b in blocks for d in b]
    assert sorted(flat) == sorted(d.link_key for d in decisions)
    assert [k for k in flat if k.startswith("o")] == [f"o{i}" for i in range(450)]


def test_a_group_alone_in_its_rank_keeps_the_callers_block_size():
    with Stage("contacts") as stage:
        stage.add_decisions([_d(f"o{i}", (OUTLOOK, "create")) for i in range(2500)])
        assert [len(b) for b in stage.decision_blocks(1000)] == [1000, 1000, 500]
