# ruff: noqa: F811  (pytest fixtures imported from graph_helpers)
"""The mapper reads a recurrence as posted and as Graph answers it (issue 15).

Graph returns the whole patternedRecurrence with its defaults (`month: 0`,
`dayOfMonth: 0`, `index: "first"`, `firstDayOfWeek: "sunday"`,
`numberOfOccurrences: 0`, `endDate: "0001-01-01"` on an open range,
`recurrenceTimeZone`), whatever the client sent; both shapes mean the same series.
"""

from __future__ import annotations

import pytest

from syncengine.engine.mapping import recurrence as rec
from tests.sandbox.graph_helpers import GRAPH, event_body, graph, mailbox, token  # noqa: F401

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])

SHAPES = [
    {"pattern": {"type": "daily", "interval": 2}, "range": {"type": "numbered", "startDate": "2030-03-04",
                                                           "numberOfOccurrences": 5}},
    {"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday", "wednesday"]},
     "range": {"type": "endDate", "startDate": "2030-03-04", "endDate": "2030-06-30"}},
    {"pattern": {"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 4},
     "range": {"type": "noEnd", "startDate": "2030-03-04"}},
    {"pattern": {"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["monday"], "index": "first"},
     "range": {"type": "noEnd", "startDate": "2030-03-04"}},
    {"pattern": {"type": "absoluteYearly", "interval": 1, "dayOfMonth": 4, "month": 3},
     "range": {"type": "numbered", "startDate": "2030-03-04", "numberOfOccurrences": 3}},
]


@pytest.mark.parametrize("posted", SHAPES, ids=lambda s: s["pattern"]["type"])
def test_posted_and_answered_shapes_map_to_the_same_series(graph, posted):
    created = graph.post(f"{GRAPH}/me/events", json=event_body(recurrence=posted))
    assert created.status_code == 201, created.text
    answered = graph.get(f"{GRAPH}/me/events/{created.json()['id']}").json()["recurrence"]
    # The emulator answers the documented shape, defaults included.
    assert set(answered["pattern"]) == {"type", "interval", "month", "dayOfMonth", "daysOfWeek",
                                        "firstDayOfWeek", "index"}
    assert set(answered["range"]) == {"type", "startDate", "endDate", "recurrenceTimeZone",
                                      "numberOfOccurrences"}
    assert answered["range"]["recurrenceTimeZone"] == "W. Europe Standard Time"
    assert rec.from_graph(answered) == rec.from_graph(posted)
