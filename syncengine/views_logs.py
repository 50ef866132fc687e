"""Support pages: run history, a run's log with its live tail, the log viewer with
CSV export, the per-item trace and the support bundle.

Three audiences through one rule: a member sees their own runs and entries; an
owner or admin sees any member of the org; platform staff act as an owner and
every page they open on a member's logs is audited (support.support_view_record).
"""

from __future__ import annotations

import csv
from datetime import timedelta

from django.http import FileResponse, Http404, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods
from django.views.decorators.vary import vary_on_headers

from orgs.access import org_view

from . import selectors, support, trace_series
from .forms_logs import BundleForm, LogFilterForm, RunFilterForm, TraceForm
from .models import SyncRun

LOGS = "syncengine/logs/"


def _audience(request):
    """(org, the member whose logs alone may be read or None for all, members to pick from)."""
    ctx = request.org_ctx
    if ctx.is_admin:
        return ctx.org, None, selectors.log_members(org=ctx.org)
    return ctx.org, ctx.membership, [ctx.membership]


def _base(request, **extra) -> dict:
    org = request.org_ctx.org
    return {"ctx": request.org_ctx, "org": org, "kept_since": support.retention_start(org=org),
            **extra}


def _audit(request, page, membership, form=None):
    if not request.htmx:  # a poll or "more" request is part of the page already audited
        filters = form.cleaned_data if form is not None and form.is_valid() else {}
        support.support_view_record(ctx=request.org_ctx, page=page, membership=membership,
                                    filters=filters)


def _run_or_404(request, run_id) -> SyncRun:
    org, own, _ = _audience(request)
    try:
        return selectors.run_visible_get(org=org, membership=own, run_id=run_id)
    except SyncRun.DoesNotExist as exc:
        raise Http404 from exc


@org_view()
@require_GET
@vary_on_headers("HX-Request")  # the same URL answers a page or its rows
def history(request):
    org, own, members = _audience(request)
    form = RunFilterForm(request.GET, members=members, can_choose_member=own is None)
    page = selectors.RunPage(runs=[], next_cursor=None)
    if form.is_valid():
        member = own or form.chosen_member()
        page = selectors.run_history(
            org=org, membership=own, member_id=member.pk if member else None,
            kind=form.cleaned_data["kind"], status=form.cleaned_data["status"],
            trigger=form.cleaned_data["trigger"], cursor=request.GET.get("cursor"))
        _audit(request, "history", member, form)
    template = LOGS + "history.html" + ("#run-rows" if request.htmx else "")
    return render(request, template, _base(request, form=form, page=page, query=_query(request)))


@org_view()
@require_GET
@vary_on_headers("HX-Request")  # the same URL answers a page or its rows
def run_log(request, run_id):
    run = _run_or_404(request, run_id)
    after = _int(request.GET.get("after"))
    rows = selectors.run_entries_after(run=run, after_id=after)
    live = run.status in ("queued", "running")
    context = _base(request, run=run, rows=rows, live=live,
                    last_id=rows[-1].entry.pk if rows else after)
    if request.htmx:
        return render(request, LOGS + "run_log.html#tail", context)
    _audit(request, "run_log", run.membership)
    return render(request, LOGS + "run_log.html", context)


@org_view()
@require_GET
@vary_on_headers("HX-Request")  # the same URL answers a page or its rows
def logs(request):
    org, own, members = _audience(request)
    form = LogFilterForm(request.GET, members=members, can_choose_member=own is None)
    page = selectors.LogPage(rows=[], next_cursor=None)
    if form.is_valid():
        page = selectors.log_page(org=org, membership=own, q=form.query(),
                                  cursor=request.GET.get("cursor"))
        _audit(request, "logs", own or form.chosen_member(), form)
    template = LOGS + "logs.html" + ("#log-rows" if request.htmx else "")
    return render(request, template, _base(request, form=form, page=page, query=_query(request),
                                           show_member=own is None))


@org_view()
@require_GET
def logs_export(request):
    org, own, members = _audience(request)
    form = LogFilterForm(request.GET, members=members, can_choose_member=own is None)
    if not form.is_valid():
        return render(request, LOGS + "logs.html", _base(
            request, form=form, page=selectors.LogPage(rows=[], next_cursor=None),
            query=_query(request), show_member=own is None), status=400)
    support.support_view_record(ctx=request.org_ctx, page="logs_export",
                                membership=own or form.chosen_member(), filters=form.cleaned_data)
    rows = selectors.log_export_rows(org=org, membership=own, q=form.query())
    response = StreamingHttpResponse(_csv_lines(rows), content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="linkpoint-log-{org.slug}-{stamp}.csv"'
    return response


@org_view()
@require_GET
def trace(request):
    org, own, _ = _audience(request)
    form = TraceForm(request.GET)
    candidates, item, rows, sources, member, series = [], None, [], {}, None, None
    if form.is_valid() and form.cleaned_data["item"]:
        candidates = selectors.trace_candidates(org=org, membership=own,
                                                q=form.cleaned_data["item"])
        if len(candidates) == 1:
            item = candidates[0]
            rows = selectors.trace_entries(org=org, membership=own, item=item)
            member = own or selectors.org_member(
                org=org, membership_id=rows[-1].entry.membership_id if rows else None)
            sources = selectors.trace_policy_sources(membership=member, kind=item.kind)
            series = trace_series.series_card(org=org, membership=own, link_key=item.link_key, kind=item.kind)
        _audit(request, "trace", own or (member if item else None), form)
    return render(request, LOGS + "trace.html", _base(
        request, form=form, candidates=candidates, item=item, rows=rows, sources=sources,
        series=series, show_member=own is None))


@org_view()
@require_http_methods(["GET", "POST"])
def bundle(request):
    org, own, members = _audience(request)
    today = timezone.localdate()
    initial = {"since": today - timedelta(days=7), "until": today,
               "member": str(own.public_id) if own else ""}
    form = BundleForm(request.POST if request.method == "POST" else None, members=members,
                      can_choose_member=own is None, initial=initial)
    if request.method == "POST" and form.is_valid():
        since, until = form.range()
        member = form.chosen_member()
        data = support.support_bundle(
            ctx=request.org_ctx, membership=member, since=since, until=until,
            redact_emails=form.cleaned_data["redact_emails"],
            redact_titles=form.cleaned_data["redact_titles"])
        name = f"linkpoint-support-{org.slug}-{since:%Y%m%d}-{form.cleaned_data['until']:%Y%m%d}.zip"
        return FileResponse(data, as_attachment=True, filename=name,
                            content_type="application/zip")
    status = 400 if request.method == "POST" else 200
    return render(request, LOGS + "bundle.html", _base(request, form=form), status=status)


# ---------------------------------------------------------------- helpers


def _int(value) -> int:
    try:
        return max(0, min(int(value or 0), 2**62))
    except (TypeError, ValueError):
        return 0


def _query(request) -> str:
    """The current filters as a query string without the cursor (for paging links)."""
    q = request.GET.copy()
    q.pop("cursor", None)
    return q.urlencode()


class _Echo:
    def write(self, value):
        return value


def _csv_lines(rows):
    writer = csv.writer(_Echo())
    yield writer.writerow(["created_at", "member", "kind", "run", "level", "action", "side",
                           "title", "message", "outlook_id", "sf_id", "link_key", "rule",
                           "outlook_url", "salesforce_url"])
    for r in rows:
        e = r.entry
        detail = e.detail or {}
        yield writer.writerow([
            e.created_at.isoformat(), r.member_email, e.kind, e.run_id, e.level, e.action,
            e.side, detail.get("title", ""), e.message, e.outlook_id, e.sf_id, e.link_key or "",
            detail.get("rule", ""), r.outlook_url, r.salesforce_url,
        ])
