"""A small demo console: a sandbox mailbox's events, contacts and tasks, editable by a person.

Staff only (like the Salesforce console): it shows any mailbox, whoever owns it.
Edits go through services.py so changeKey rotates and delta reports them, exactly as
if the user had changed the item in Outlook.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from ..console_access import staff_only
from . import services
from .models import Item, ItemKind, Mailbox

TITLE_FIELD = {ItemKind.EVENT: "subject", ItemKind.CONTACT: "displayName", ItemKind.TODO_TASK: "title"}


@staff_only
@require_http_methods(["GET", "POST"])
def outlook_console(request, email: str):
    mailbox = get_object_or_404(Mailbox, email=email.lower())
    if request.method == "POST":
        item = get_object_or_404(Item, mailbox=mailbox, graph_id=request.POST.get("id", ""), deleted=False)
        if request.POST.get("action") == "delete":
            services.item_delete(item)
        else:
            services.item_update(item, {TITLE_FIELD[item.kind]: request.POST.get("title", "")[:255]})
        return redirect(request.path)
    items = Item.objects.filter(mailbox=mailbox, deleted=False).exclude(
        kind=ItemKind.TODO_LIST).exclude(event_type="exception").order_by("kind", "start_utc", "id")[:500]
    rows = [{"id": i.graph_id, "kind": i.kind, "title": i.data.get(TITLE_FIELD[i.kind]) or
             " ".join(p for p in (i.data.get("givenName"), i.data.get("surname")) if p),
             "when": i.start_utc, "type": i.event_type, "modified": i.modified} for i in items]
    template = "sandbox/microsoft/console.html"
    if request.headers.get("HX-Request"):
        template += "#items"
    return render(request, template, {"mailbox": mailbox, "rows": rows})
