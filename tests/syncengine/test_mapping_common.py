"""Shared mapping pieces: HTML ⇄ text, zones, hashes, diffs, three-way merge."""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncengine.engine.mapping import (
    MappingError,
    canonical_hash,
    contacts,
    diff_fields,
    events,
    html_to_text,
    merge3,
    tasks,
    text_to_html,
)
from syncengine.engine.mapping.common import norm_body
from syncengine.engine.mapping.timezones import WINDOWS_TO_IANA, resolve_zone

# ---------------------------------------------------------------- bodies

body_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=400)


@settings(max_examples=500)
@given(text=body_text)
def test_text_to_html_to_text_is_identity_on_normalized_text(text):
    assert html_to_text(text_to_html(text)) == norm_body(text)


@settings(max_examples=200)
@given(text=body_text)
def test_normalization_is_idempotent(text):
    once = norm_body(text)
    assert norm_body(once) == once
    assert html_to_text(text_to_html(once)) == once


html_soup = st.lists(
    st.one_of(
        st.sampled_from(
            [
                "<p>",
                "</p>",
                "<br>",
                "<div class='a>b'>",
                "</div>",
                "<!--",
                "-->",
                "<style>",
                "</style>",
                "&amp;",
                "&nbsp;",
                "&#9;",
                "&#xZZ;",
                "&bogus;",
                "<",
                ">",
                "&",
                "<![CDATA[",
                "]]>",
                "<pre>",
                "</pre>",
            ]
        ),
        st.text(max_size=20),
    ),
    max_size=30,
).map("".join)


@settings(max_examples=300)
@given(html=html_soup)
def test_any_html_reads_without_error_as_normalized_text(html):
    text = html_to_text(html)
    assert norm_body(text) == text


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<p>one</p><p>two</p>", "one\ntwo"),
        ("one<br>two<br/>three", "one\ntwo\nthree"),
        ("<div>a</div><div><br></div><div>b</div>", "a\n\nb"),
        ("<p>Tom &amp; Jerry &lt;3 &eacute;t&#233; &#x2603;</p>", "Tom & Jerry <3 été ☃"),
        (
            "<html><head><style>p {color: red}</style><title>x</title></head><body>  hi\n  there </body></html>",
            "hi there",
        ),
        ("<ul><li>a</li><li>b</li></ul>", "a\nb"),
        (
            "<p class=MsoNormal>Hi,<o:p></o:p></p>\r\n<p class=MsoNormal><o:p>&nbsp;</o:p></p>\r\n<p class=MsoNormal>Bye<o:p></o:p></p>",
            "Hi,\n\nBye",
        ),
        ("<pre>a\n  b</pre>", "a\n  b"),
        ("", ""),
    ],
)
def test_outlook_html_reads_as_lines(html, text):
    assert html_to_text(html) == text


def test_text_to_html_escapes_and_wraps_lines():
    html = text_to_html("a < b & c\n\n  indented")
    assert (
        "a &lt; b &amp; c" in html and "<div><br></div>" in html and "&nbsp;&nbsp;indented" in html
    )
    assert "<script>" not in text_to_html("<script>alert(1)</script>")


# ---------------------------------------------------------------- zones


@pytest.mark.parametrize(
    "name",
    [
        "Pacific Standard Time",
        "Eastern Standard Time",
        "Central Standard Time",
        "Mountain Standard Time",
        "GMT Standard Time",
        "W. Europe Standard Time",
        "Central European Standard Time",
        "Romance Standard Time",
        "Tokyo Standard Time",
        "India Standard Time",
        "AUS Eastern Standard Time",
        "China Standard Time",
        "UTC",
        "E. South America Standard Time",
        "Russian Standard Time",
        "Singapore Standard Time",
    ],
)
def test_common_windows_zones_are_known(name):
    assert resolve_zone(name).key == WINDOWS_TO_IANA[name]


def test_every_table_entry_resolves_and_the_table_is_large():
    assert len(WINDOWS_TO_IANA) >= 40
    for name, iana in WINDOWS_TO_IANA.items():
        assert resolve_zone(name).key == iana
    assert resolve_zone("pacific standard time").key == "America/Los_Angeles"
    assert resolve_zone("Europe/Berlin").key == "Europe/Berlin"
    with pytest.raises(MappingError):
        resolve_zone("Middle Earth Standard Time")


# ---------------------------------------------------------------- hash, diff, merge

base_event = events.from_graph(
    {
        "subject": "Kick-off",
        "body": {"contentType": "text", "content": "Agenda"},
        "start": {"dateTime": "2024-05-01T09:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2024-05-01T10:00:00", "timeZone": "UTC"},
        "showAs": "busy",
    }
)

event_changes = st.fixed_dictionaries(
    {},
    optional={
        "subject": st.sampled_from(["Kick-off", "Kick-off v2", "Launch"]),
        "body": st.sampled_from(["Agenda", "New agenda", ""]),
        "location": st.sampled_from(["", "Room 1", "Room 2"]),
        "show_as": st.sampled_from(["free", "busy", "oof"]),
        "is_private": st.booleans(),
        "reminder_minutes": st.sampled_from([None, 0, 15]),
        "start": st.sampled_from([0, 30, 60]).map(
            lambda m: base_event.start + timedelta(minutes=m)
        ),
    },
)


def apply(c, changes):
    changes = dict(changes)
    if "start" in changes:  # move, keeping the length
        changes["end"] = changes["start"] + (c.end - c.start)
    return dataclasses.replace(c, **changes)


def test_hash_is_stable_hex_and_kind_specific():
    h = canonical_hash(base_event)
    assert h == canonical_hash(
        dataclasses.replace(base_event, warnings=("x",), attendees=("a@b.c",))
    )
    assert len(h) == 64 and int(h, 16) >= 0
    assert canonical_hash(contacts.CanonicalContact()) != canonical_hash(tasks.CanonicalTask())


def test_a_kept_projection_changed_later_does_not_change_the_record():
    """A record's projection is worked out once; what a caller keeps (a link's snapshot) and
    then edits must not move the record's hash, equality or the next projection."""
    c = contacts.CanonicalContact(first_name="Ada", last_name="Lee", emails=("a@x.example",))
    same = contacts.CanonicalContact(first_name="Ada", last_name="Lee", emails=("a@x.example",))
    before = canonical_hash(c)
    kept = c.projection()
    kept["first_name"] = "Grace"
    kept["emails"].append("b@x.example")
    assert c.projection() == same.projection()
    assert c.projection()["emails"] == ["a@x.example"]
    assert canonical_hash(c) == before == canonical_hash(same)
    assert c == same
    assert diff_fields(c, dataclasses.replace(c, first_name="Grace")) == {"first_name"}
    assert canonical_hash(dataclasses.replace(c, first_name="Grace")) != before


@settings(max_examples=300)
@given(ours=event_changes, theirs=event_changes, winner=st.sampled_from(["ours", "theirs"]))
def test_merge3_properties(ours, theirs, winner):
    a, b = apply(base_event, ours), apply(base_event, theirs)
    merged, conflicts = merge3(base_event, a, b, winner)
    changed_a, changed_b = diff_fields(base_event, a), diff_fields(base_event, b)
    for name in changed_a - changed_b:
        assert getattr(merged, name) == getattr(a, name)
    for name in changed_b - changed_a:
        assert getattr(merged, name) == getattr(b, name)
    for name in diff_fields(base_event, merged) - changed_a - changed_b:
        pytest.fail(f"{name} changed although neither side changed it")
    conflicted = {f for c in conflicts for f in c.fields}
    for name in changed_a & changed_b:
        if getattr(a, name) == getattr(b, name):
            assert getattr(merged, name) == getattr(a, name)
        else:
            assert name in conflicted
            winner_side, loser = (a, b) if winner == "ours" else (b, a)
            assert getattr(merged, name) == getattr(winner_side, name)
            lost = next(c.lost for c in conflicts if name in c.fields)
            assert lost[name] == loser.projection()[name]
    if not (changed_a and changed_b):
        assert conflicts == ()  # only one side changed: never a conflict
    assert merged.end >= merged.start


def test_merge3_one_side_only_and_no_base():
    moved = apply(base_event, {"start": base_event.start + timedelta(hours=1)})
    merged, conflicts = merge3(base_event, moved, base_event, "theirs")
    assert merged == moved and conflicts == ()
    merged, conflicts = merge3(None, moved, base_event, "theirs")
    assert merged.start == base_event.start
    assert conflicts and conflicts[0].fields == (
        "is_all_day",
        "start",
        "end",
        "start_date",
        "end_date",
    )


def test_start_and_end_merge_as_one_unit():
    later = apply(base_event, {"start": base_event.start + timedelta(hours=2)})
    longer = dataclasses.replace(base_event, end=base_event.end + timedelta(hours=3))
    merged, conflicts = merge3(base_event, later, longer, "ours")
    assert (merged.start, merged.end) == (later.start, later.end)
    assert len(conflicts) == 1


def test_contact_email_reorder_is_not_a_conflict():
    base = contacts.CanonicalContact(last_name="Lee", emails=("a@x.example", "b@x.example"))
    ours = dataclasses.replace(base, emails=("b@x.example", "a@x.example"))
    theirs = dataclasses.replace(base, job_title="CTO")
    merged, conflicts = merge3(base, ours, theirs, "theirs")
    assert conflicts == () and merged.job_title == "CTO"


def test_diff_fields_names_changed_fields():
    other = dataclasses.replace(base_event, subject="Launch", is_private=True)
    assert diff_fields(base_event, other) == {"subject", "is_private"}
    with pytest.raises(TypeError):
        diff_fields(base_event, tasks.CanonicalTask())


def test_mapping_ten_thousand_items_is_fast():
    payload = {
        "subject": "Kick-off",
        "body": {
            "contentType": "html",
            "content": "<html><body><p>Agenda</p><p>Item one &amp; two</p></body></html>",
        },
        "start": {"dateTime": "2024-05-01T09:00:00.0000000", "timeZone": "Pacific Standard Time"},
        "end": {"dateTime": "2024-05-01T10:00:00.0000000", "timeZone": "Pacific Standard Time"},
        "originalStartTimeZone": "Pacific Standard Time",
        "isReminderOn": True,
        "reminderMinutesBeforeStart": 15,
    }
    started = time.perf_counter()
    for i in range(10_000):
        c = events.from_graph({**payload, "subject": f"Kick-off {i}"})
        canonical_hash(c)
        events.to_salesforce(c)
    elapsed = time.perf_counter() - started
    # Generous bound for a loaded CI box; it takes well under a second here.
    assert elapsed < 10, elapsed


def test_canonical_times_are_utc():
    assert base_event.start.utcoffset() == timedelta(0)
    assert base_event.start == datetime(2024, 5, 1, 9, tzinfo=UTC)
