"""Task mapping: To Do ⇄ Salesforce Task tables, due dates, reminders."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncengine.engine.mapping import MappingError, canonical_hash, tasks

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300)
zones = st.sampled_from(
    [
        "UTC",
        "Tokyo Standard Time",
        "Pacific Standard Time",
        "Pacific/Kiritimati",
        "Pacific/Pago_Pago",
        "Asia/Kolkata",
        "America/St_Johns",
    ]
)
instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2037, 1, 1), timezones=st.just(UTC)
)


@st.composite
def todo_tasks(draw):
    due = draw(st.one_of(st.none(), st.dates(date(2000, 1, 1), date(2037, 1, 1))))
    reminder_on = draw(st.booleans())
    reminder = draw(instants)
    return {
        "id": "AAMkTask=",
        "title": draw(text),
        "body": {"contentType": "text", "content": draw(st.text(max_size=500))},
        "status": draw(st.sampled_from(list(tasks.STATUS_TO_SF))),
        "importance": draw(st.sampled_from(list(tasks.IMPORTANCE_TO_SF))),
        "dueDateTime": {"dateTime": f"{due.isoformat()}T00:00:00.0000000", "timeZone": draw(zones)}
        if due
        else None,
        "isReminderOn": reminder_on,
        "reminderDateTime": {
            "dateTime": reminder.strftime("%Y-%m-%dT%H:%M:%S.0000000"),
            "timeZone": "UTC",
        },
    }


@settings(max_examples=300)
@given(payload=todo_tasks())
def test_todo_to_salesforce_to_canonical(payload):
    c = tasks.from_graph(payload)
    body = tasks.to_salesforce(c)
    assert "CompletedDateTime" not in body
    assert tasks.from_salesforce(body) == c
    assert tasks.from_graph(tasks.to_graph(c, existing=payload)) == c


@settings(max_examples=300)
@given(
    subject=text,
    description=st.text(max_size=500),
    status=st.sampled_from(list(tasks.STATUS_TO_SF.values())),
    priority=st.sampled_from(["High", "Normal", "Low"]),
    due=st.one_of(st.none(), st.dates(date(2000, 1, 1), date(2037, 1, 1))),
    reminder=st.one_of(st.none(), instants),
)
def test_salesforce_to_todo_to_canonical(subject, description, status, priority, due, reminder):
    record = {
        "Id": "00T000000000001",
        "Subject": subject,
        "Description": description,
        "Status": status,
        "Priority": priority,
        "ActivityDate": due.isoformat() if due else None,
        "IsReminderSet": reminder is not None,
        "ReminderDateTime": reminder.strftime("%Y-%m-%dT%H:%M:%S.000+0000") if reminder else None,
    }
    c = tasks.from_salesforce(record)
    assert tasks.from_graph(tasks.to_graph(c)) == c


@pytest.mark.parametrize(
    ("todo", "sf"),
    [
        ("notStarted", "Not Started"),
        ("inProgress", "In Progress"),
        ("completed", "Completed"),
        ("waitingOnOthers", "Waiting on someone else"),
        ("deferred", "Deferred"),
    ],
)
def test_status_table_both_ways(todo, sf):
    assert tasks.to_salesforce(tasks.from_graph({"title": "t", "status": todo}))["Status"] == sf
    assert tasks.to_graph(tasks.from_salesforce({"Subject": "t", "Status": sf}))["status"] == todo


@pytest.mark.parametrize(("todo", "sf"), [("low", "Low"), ("normal", "Normal"), ("high", "High")])
def test_priority_table_both_ways(todo, sf):
    assert (
        tasks.to_salesforce(tasks.from_graph({"title": "t", "importance": todo}))["Priority"] == sf
    )
    assert (
        tasks.to_graph(tasks.from_salesforce({"Subject": "t", "Priority": sf}))["importance"]
        == todo
    )


@pytest.mark.parametrize(
    "zone",
    ["Tokyo Standard Time", "Pacific/Kiritimati", "Pacific/Pago_Pago", "Hawaiian Standard Time"],
)
def test_due_date_never_shifts(zone):
    c = tasks.from_graph(
        {"title": "t", "dueDateTime": {"dateTime": "2024-05-01T00:00:00.0000000", "timeZone": zone}}
    )
    assert c.due_date == date(2024, 5, 1)
    assert tasks.to_salesforce(c)["ActivityDate"] == "2024-05-01"
    assert tasks.to_graph(c)["dueDateTime"] == {
        "dateTime": "2024-05-01T00:00:00.0000000",
        "timeZone": "UTC",
    }


def test_reminder_and_completion():
    c = tasks.from_graph(
        {
            "title": "Send quote",
            "status": "completed",
            "isReminderOn": True,
            "reminderDateTime": {
                "dateTime": "2024-05-01T09:30:00.0000000",
                "timeZone": "Eastern Standard Time",
            },
            "completedDateTime": {"dateTime": "2024-05-02T10:00:00.0000000", "timeZone": "UTC"},
        }
    )
    assert c.reminder_at == datetime(2024, 5, 1, 13, 30, tzinfo=UTC)
    assert c.completed_at == datetime(2024, 5, 2, 10, 0, tzinfo=UTC)
    body = tasks.to_salesforce(c)
    assert (
        body["IsReminderSet"] is True and body["ReminderDateTime"] == "2024-05-01T13:30:00.000+0000"
    )
    assert "CompletedDateTime" not in body and body["Status"] == "Completed"
    # Salesforce stamping its own completion time is not a change.
    echoed = tasks.from_salesforce({**body, "CompletedDateTime": "2024-05-03T08:00:00.000+0000"})
    assert canonical_hash(echoed) == canonical_hash(c)


def test_switched_off_reminder_ignores_a_stale_time():
    on = {
        "title": "t",
        "isReminderOn": False,
        "reminderDateTime": {"dateTime": "2024-05-01T09:30:00", "timeZone": "UTC"},
    }
    assert tasks.from_graph(on).reminder_at is None
    assert tasks.from_graph(on) == tasks.from_graph({"title": "t"})


def test_html_todo_body_reads_as_text_and_stays_html_when_unchanged():
    payload = {
        "title": "t",
        "body": {"contentType": "html", "content": "<div>line 1</div><div>line 2</div>"},
    }
    c = tasks.from_graph(payload)
    assert c.body == "line 1\nline 2"
    assert tasks.to_graph(c, existing=payload)["body"] == payload["body"]


def test_custom_salesforce_status_maps_by_is_closed_with_a_warning():
    c = tasks.from_salesforce(
        {"Subject": "t", "Status": "Archived", "IsClosed": True, "Priority": "Urgent"}
    )
    assert (c.status, c.importance) == ("completed", "normal")
    assert len(c.warnings) == 2


@pytest.mark.parametrize(
    "payload",
    [
        {"title": "t", "status": "postponed"},
        {"title": "t", "importance": "critical"},
        {
            "title": "t",
            "dueDateTime": {"dateTime": "2024-05-01T00:00:00", "timeZone": "Atlantis Time"},
        },
        {
            "title": "t",
            "isReminderOn": True,
            "reminderDateTime": {"dateTime": "soon", "timeZone": "UTC"},
        },
        "not a task",
    ],
)
def test_unmappable_tasks_are_item_errors(payload):
    with pytest.raises(MappingError):
        tasks.from_graph(payload)


def test_long_subject_and_description_are_truncated():
    c = tasks.from_salesforce({"Subject": "s" * 300, "Description": "d" * 40_000})
    assert (len(c.title), len(c.body)) == (255, 32_000)
    assert len(c.warnings) == 2
