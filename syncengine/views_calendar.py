"""My calendar (SnapRecord): the week's Outlook events with their state, Record / Unrecord,
the Relate side panel and the org admins' SnapFields settings.

Thin views: parse, call `snap_services` (writes) or `snap_selectors` (reads), render. Links are
re-queried inside the caller's membership, so another member's event id is a 404.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from orgs.access import org_view
from orgs.models import Role

from . import snap_selectors as sel
from . import snap_services as svc
from .models import SyncLink

PAGE = "syncengine/calendar/calendar.html"
PANEL = "syncengine/calendar/relate.html"
FIELDS_PAGE = "syncengine/calendar/snapfields.html"


def _membership(request):
    if request.org_ctx.membership is None:
        raise Http404
    return request.org_ctx.membership


def _link(request, link_id: int) -> SyncLink:
    try:
        return sel.recorded_link(membership=_membership(request), link_id=link_id)
    except SyncLink.DoesNotExist:
        raise Http404 from None


def _week_context(request, **extra) -> dict:
    ctx, data = request.org_ctx, request.GET if request.method == "GET" else request.POST
    q = (data.get("q") or "")[:100].replace("\x00", "").strip()
    week = sel.calendar_week(membership=ctx.membership, raw_week=data.get("week", ""), q=q) if ctx.membership else None
    return {"ctx": ctx, "week": week, **extra}


@org_view()
@require_GET
def calendar(request):
    context = _week_context(request)
    if request.htmx and request.GET.get("region") == "agenda":
        return render(request, f"{PAGE}#agenda", context)
    return render(request, PAGE, context)


def _row(request, event_id: str, note: str = "", error: str = "", open_panel: int | None = None):
    context = _week_context(request)
    event = next((e for d in context["week"].days for e in d.events if e.id == event_id), None) if context[
        "week"] else None
    if event is None:
        raise Http404
    return render(request, f"{PAGE}#event", {**context, "event": event, "note": note, "error": error,
                                               "open_panel": open_panel})


@org_view()
@require_POST
def record(request):
    membership, event_id = _membership(request), request.POST.get("event", "")
    try:
        link, note = svc.snap_record(membership=membership, outlook_event_id=event_id)
    except svc.SnapRefused as exc:
        return _row(request, event_id, error=str(exc))
    return _row(request, event_id, note=note, open_panel=link.pk if link else None)


@org_view()
@require_http_methods(["GET", "POST"])
def unrecord(request, link_id: int):
    membership = _membership(request)
    link = SyncLink.objects.filter(pk=link_id, membership=membership, kind="calendar").first()
    if link is None:
        raise Http404
    if request.method == "GET":  # the question: keep or delete the Salesforce Event?
        return render(request, f"{PAGE}#unrecord", {"ctx": request.org_ctx, "link": link,
                                                     "week_raw": request.GET.get("week", "")})
    choice = request.POST.get("salesforce", "")
    if choice not in ("keep", "delete"):
        return _row(request, link.outlook_id, error="Choose whether to keep or delete the Salesforce Event.")
    try:
        note = svc.snap_unrecord(membership=membership, link_id=link.pk, delete_in_salesforce=choice == "delete")
    except svc.SnapRefused as exc:
        return _row(request, link.outlook_id, error=str(exc))
    return _row(request, link.outlook_id, note=note)


# ---------------------------------------------------------------- Relate panel


def _panel(request, link: SyncLink, **extra):
    membership = request.org_ctx.membership
    attendees = sel.event_attendees(membership=membership, outlook_id=link.outlook_id or "")
    context = {
        "ctx": request.org_ctx, "link": link, "relation": getattr(link, "relation", None),
        "suggestions": sel.attendee_suggestions(membership=membership, emails=attendees),
        "fields": [f for f in sel.snapfields_for(membership.organization_id) if not f.problem],
        **extra,
    }
    return render(request, PANEL, context, status=extra.pop("status", 200))


@org_view()
@require_GET
def relate(request, link_id: int):
    return _panel(request, _link(request, link_id))


@org_view()
@require_GET
def relate_search(request, link_id: int):
    link = _link(request, link_id)
    role = request.GET.get("role", "who")
    hits, message = sel.relate_search(membership=request.org_ctx.membership, q=request.GET.get("q", ""))
    allowed = {"who": ("Contact", "Lead"), "what": ("Account", "Opportunity", "Case"), "other": ("Contact", "Lead")}
    hits = [h for h in hits if h.type in allowed.get(role, allowed["who"])]
    if not hits and not message:
        message = "Nothing of that kind matches."
    return render(request, f"{PANEL}#results", {"ctx": request.org_ctx, "link": link, "hits": hits,
                                                "message": message, "role": role})


@org_view()
@require_POST
def relate_save(request, link_id: int):
    link = _link(request, link_id)
    p = request.POST
    data = svc.RelateInput(
        who=p.get("who", "").strip()[:18], what=p.get("what", "").strip()[:18],
        others=tuple(o.strip()[:18] for o in p.getlist("other")[:20] if o.strip()),
        values={k[6:]: v[:1000] for k, v in p.items() if k.startswith("field_")},
    )
    try:
        note = svc.snap_relate(membership=request.org_ctx.membership, link=link, data=data)
    except svc.SnapRefused as exc:
        return _panel(request, link, error=str(exc), posted=p, status=422 if not request.htmx else 200)
    return _panel(request, _link(request, link_id), note=note)


# ---------------------------------------------------------------- SnapFields (admins)


def _describe(request, *, fresh: bool) -> tuple[dict, str]:
    from connections import errors

    membership = request.org_ctx.membership
    if membership is None:
        return {}, "Your own Salesforce connection reads the Event fields: staff see the settings read-only."
    try:
        return sel.describe_cached(membership=membership, sobject="Event", fresh=fresh), ""
    except errors.RemoteError as exc:
        return {}, f"Salesforce did not answer ({exc}); connect Salesforce on My connections to pick fields."


@org_view(min_role=Role.ADMIN)
@require_http_methods(["GET", "POST"])
def snapfields(request):
    ctx = request.org_ctx
    describe, problem = _describe(request, fresh=request.method == "GET")
    if request.method == "POST" and problem:
        messages.error(request, problem)
        return redirect(reverse("syncengine:snapfields", args=[ctx.org.slug]))
    if request.method == "POST":
        action, p = request.POST.get("action", ""), request.POST
        try:
            if action == "add":
                svc.snapfield_add(ctx=ctx, describe=describe, name=p.get("name", ""))
            elif action in ("save", "remove"):
                field_id = int(p.get("field", "0") or 0)
                if action == "remove":
                    svc.snapfield_remove(ctx=ctx, field_id=field_id)
                else:
                    svc.snapfield_save(ctx=ctx, describe=describe, field_id=field_id, required=p.get("required") == "1",
                                       locked=p.get("locked") == "1", default=p.get("default", ""))
            messages.success(request, "SnapFields saved.")
        except (svc.SnapRefused, ValueError) as exc:
            messages.error(request, str(exc) if isinstance(exc, svc.SnapRefused) else "That field is not known.")
        return redirect(reverse("syncengine:snapfields", args=[ctx.org.slug]))
    rows = svc.snapfields_check(org=ctx.org, describe=describe) if describe else sel.snapfields_for(ctx.org.pk)
    return render(request, FIELDS_PAGE, {
        "ctx": ctx, "rows": rows, "problem": problem,
        "candidates": sel.snapfield_candidates(describe, {r.name for r in rows}) if describe else [],
    })
