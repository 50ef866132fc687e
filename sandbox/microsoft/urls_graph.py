"""Graph v1.0 on graph.sandbox.test. Each pattern's name is its endpoint family for API accounting.

Graph path segments are case-insensitive (`calendarview` works as well as `calendarView`).

"""

from django.urls import re_path

from . import views_graph as v

ID = r"(?P<graph_id>[^/]+)"
LIST = r"(?P<list_id>[^/]+)"
TASK = r"(?P<task_id>[^/]+)"


def _ci(route: str) -> str:
    """Letters outside groups become [xX] classes: an inline (?i) flag would break URL reversing."""
    out, depth, escaped = [], 0, False
    for ch in route:
        if escaped:
            out.append(ch)
            escaped = False
            continue
        if ch == "\\":
            escaped = True
            out.append(ch)
            continue
        depth += ch == "(" or ch == "["
        depth -= ch == ")" or ch == "]"
        out.append(f"[{ch.lower()}{ch.upper()}]" if depth == 0 and ch.isalpha() and ch.isascii() else ch)
    return "".join(out)


# `delta` is an OData function: `.../delta()` (what msgraph-sdk sends) and `.../delta` are the same call
# (learn.microsoft.com/graph/delta-query-overview; OData v4 URL conventions, "Functions").
DELTA = r"delta(?:\(\))?"


def graph(route: str, view, name: str):
    return re_path(rf"^v1\.0/{_ci(route)}/?$", view, name=name)


urlpatterns = [
    graph(r"\$batch", v.batch, "graph-batch"),
    graph(r"me", v.me, "graph-me"),
    graph(r"me/(?:calendar/)?events", v.events, "graph-events"),
    graph(rf"me/(?:calendar/)?events/{ID}/instances", v.instances, "graph-events"),
    graph(rf"me/(?:calendar/)?events/{ID}", v.event, "graph-events"),
    graph(rf"me/(?:calendar/)?calendarView/{DELTA}", v.calendar_view_delta, "graph-calendarview-delta"),
    graph(r"me/(?:calendar/)?calendarView", v.calendar_view, "graph-calendarview"),
    graph(rf"me/contacts/{DELTA}", v.contacts_delta, "graph-contacts-delta"),
    graph(rf"me/contactFolders/(?P<folder_id>[^/]+)/contacts/{DELTA}", v.contacts_delta, "graph-contacts-delta"),
    graph(r"me/contacts", v.contacts, "graph-contacts"),
    graph(rf"me/contacts/{ID}", v.contact, "graph-contacts"),
    graph(r"me/todo/lists", v.todo_lists, "graph-todo-lists"),
    graph(rf"me/todo/lists/{LIST}", v.todo_list, "graph-todo-lists"),
    graph(rf"me/todo/lists/{LIST}/tasks/{DELTA}", v.tasks_delta, "graph-todo-tasks-delta"),
    graph(rf"me/todo/lists/{LIST}/tasks", v.todo_tasks, "graph-todo-tasks"),
    graph(rf"me/todo/lists/{LIST}/tasks/{TASK}", v.todo_task, "graph-todo-tasks"),
    graph(rf"me/todo/lists/{LIST}/tasks/{TASK}/linkedResources", v.linked_resources, "graph-todo-tasks"),
]
