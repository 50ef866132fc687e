"""Org admin dashboard pages (issue 14): sync health per member, charts, API budget,
alerts and their settings. Admins only (403 below; another org's slug is 404)."""

from __future__ import annotations

import csv

from django.contrib import messages
from django.http import StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from orgs.access import org_view
from orgs.models import Role

from . import charts, selectors, services
from .forms_dashboard import HealthFilterForm, OrgSyncSettingsForm
from .governor import budget_for

PAGE = "syncengine/dashboard/health.html"


def dashboard_context(ctx, *, f: selectors.HealthFilter | None = None, cursor: str = "",
                      size: int = 25) -> dict:
    """What the dashboard panel and the health page show (the org home calls this too)."""
    f = f or selectors.HealthFilter()
    budget = budget_for(ctx.org.pk)
    days = selectors.org_sync_days(org=ctx.org)
    return {
        "org_slug": ctx.org.slug,
        "page": selectors.health_page(org=ctx.org, f=f, cursor=cursor, size=size),
        "budget": budget,
        "charts": [
            charts.runs_chart(days, series="runs", name="runs", title="Sync runs per day"),
            charts.runs_chart(days, series="errors", name="errors",
                              title="Failed or stopped runs per day"),
            charts.api_chart(days, budget=budget),
        ],
        "alerts": selectors.alerts_open(org=ctx.org),
        "forecast_rules": _forecast_rules(ctx.org),
    }


def _forecast_rules(org) -> list[str]:
    policy, days = selectors.sf_refresh_rule(selectors.org_sync_settings(org=org))
    sf = {"idle": f"stops after {days} days without use",
          "absolute": f"stops {days} days after connecting"}.get(policy, "is valid until revoked")
    return [f"Outlook: a Microsoft refresh token stops after {selectors.MS_REFRESH_IDLE_DAYS} "
            "days without use; every sync uses it.",
            f"Salesforce: per your connected app's refresh token policy, the token {sf}.",
            f"A connection that stops within {selectors.LAPSE_WARNING_DAYS} days needs attention."]


@org_view(min_role=Role.ADMIN)
@require_GET
def health(request):
    form = HealthFilterForm(request.GET)
    f = form.query()
    cursor = form.cleaned_data.get("after", "") if form.is_valid() else ""
    context = {"ctx": request.org_ctx, "form": form, "filter": f,
               "panel": dashboard_context(request.org_ctx, f=f, cursor=cursor, size=50)}
    template = PAGE + ("#health-rows" if request.htmx and cursor else "")
    return render(request, template, context)


class _Echo:
    def write(self, value):
        return value


@org_view(min_role=Role.ADMIN)
@require_GET
def health_export(request):
    f = HealthFilterForm(request.GET).query()
    rows = selectors.org_sync_health(org=request.org_ctx.org)
    writer = csv.writer(_Echo())

    def lines():
        yield writer.writerow(["member", "role", "needs_attention", "reasons", "outlook", "outlook_stops",
                               "salesforce", "salesforce_stops", "kind", "mode", "last_success",
                               "last_run_status", "errors_24h", "conflicts_24h", "next_run"])
        for r in rows:
            if not selectors.health_matches(r, f):
                continue
            for k in r.kinds:
                if f.kind and k.kind != f.kind:
                    continue
                yield writer.writerow([
                    _cell(r.membership.user.email), r.membership.role, "yes" if r.reasons else "no",
                    _cell("; ".join(r.reasons)), r.microsoft.state, _iso(r.microsoft.lapses_at),
                    r.salesforce.state, _iso(r.salesforce.lapses_at), k.kind, k.mode,
                    _iso(k.last_ok_at), k.last_run.status if k.last_run else "", k.errors_24h,
                    k.conflicts_24h, _iso(k.next_run_at)])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{request.org_ctx.org.slug}-sync-health.csv"'
    return response


def _iso(value) -> str:
    return value.isoformat() if value else ""


def _cell(text: str) -> str:
    # A spreadsheet runs a cell that starts with = + - @ as a formula.
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


@org_view(min_role=Role.ADMIN)
@require_http_methods(["GET", "POST"])
def dashboard_settings(request):
    ctx = request.org_ctx
    row = selectors.org_sync_settings(org=ctx.org)
    if request.method == "POST":
        form = OrgSyncSettingsForm(request.POST)
        if form.is_valid():
            services.org_sync_settings_update(ctx=ctx, **form.cleaned_data)
            messages.success(request, "Dashboard settings saved.")
            return redirect("syncengine:dashboard-settings", org_slug=ctx.org.slug)
        status = 400
    else:
        form = OrgSyncSettingsForm(initial={f: getattr(row, f) for f in (
            "api_share_percent", "alert_delivery", "sf_refresh_policy", "sf_refresh_days")})
        status = 200
    return render(request, "syncengine/dashboard/settings.html",
                  {"ctx": ctx, "form": form, "budget": budget_for(ctx.org.pk),
                   "forecast_rules": _forecast_rules(ctx.org)}, status=status)
