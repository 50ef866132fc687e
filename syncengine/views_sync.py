"""My sync, the run (progress) page and the review page of a stored plan.

Thin views: parse, call `services` (writes) or `selectors` (reads), render.
Runs and planned items are reached only through the caller's membership, so
another member's or org's id is the same 404 as a missing one.
"""

from __future__ import annotations

import logging

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import (
    HTMX_STOP_POLLING,
    HttpResponseClientRedirect,
    HttpResponseClientRefresh,
)

from orgs.access import org_view

from . import selectors, services, sync_pages
from .models import PlannedChange, SyncRun

log = logging.getLogger(__name__)

MY_SYNC = "syncengine/my_sync.html"
RUN_PAGE = "syncengine/run.html"
REVIEW = "syncengine/review.html"
STARTABLE = ("preview", "sync", "rebuild_preview")


def _kind(kind: str) -> str:
    if kind not in sync_pages.KIND_LABELS:
        raise Http404
    return kind


def _run(request, run_id: int) -> SyncRun:
    try:
        return selectors.run_for_member_page(membership=request.org_ctx.membership, run_id=run_id)
    except SyncRun.DoesNotExist:
        raise Http404 from None


def _plan(request, run_id: int) -> SyncRun:
    """A run that stores a plan; any other run of the member has no review page."""
    run = _run(request, run_id)
    if run.purpose not in selectors.PREVIEW_PURPOSES:
        raise Http404
    return run


def _go(request, url: str):
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def _cards(request) -> list:
    ctx = request.org_ctx
    # The caller's own membership: its user is the request's (saves the policy resolver a query per kind).
    ctx.membership.user = request.user
    return sync_pages.my_sync_cards(membership=ctx.membership, org_slug=ctx.org.slug)


def _my_sync_url(request) -> str:
    return reverse("syncengine:my-sync", args=[request.org_ctx.org.slug])


# ---------------------------------------------------------------- My sync


@org_view()
@require_GET
def my_sync(request):
    ctx = request.org_ctx
    cards = _cards(request) if ctx.membership else []
    return render(request, MY_SYNC, {"ctx": ctx, "cards": cards})


def _card(request, kind: str, **extra):
    ctx = request.org_ctx
    if ctx.membership is None:
        raise Http404
    card = next(c for c in _cards(request) if c.kind == kind)
    return render(request, f"{MY_SYNC}#card", {"ctx": ctx, "card": card, **extra})


@org_view()
@require_GET
def card(request, kind: str):
    return _card(request, _kind(kind))


@org_view()
@require_POST
def start(request, kind: str):
    ctx, kind, purpose = request.org_ctx, _kind(kind), request.POST.get("purpose", "")
    if ctx.membership is None or purpose not in STARTABLE:
        raise Http404
    running = selectors.runs_live_by_kind(membership=ctx.membership).get(kind)
    try:
        run = services.sync_start(membership=ctx.membership, kind=kind, purpose=purpose)
    except services.SyncRefused as exc:
        messages.error(request, str(exc))
        return _go(request, _my_sync_url(request))
    if running is not None and running.pk == run.pk:
        messages.info(request, f"A {sync_pages.KIND_LABELS[kind].lower()} sync is already going: here it is.")
    from .governor import budget_for

    if warning := budget_for(ctx.org.pk).manual_warning:  # a manual run still runs (issue 14)
        messages.warning(request, warning)
    return _go(request, reverse("syncengine:run", args=[ctx.org.slug, run.pk]))


@org_view()
@require_POST
def pause(request, kind: str):
    ctx, kind = request.org_ctx, _kind(kind)
    if ctx.membership is None:
        raise Http404
    paused = request.POST.get("paused") == "1"
    services.sync_auto_pause(membership=ctx.membership, kind=kind, paused=paused)
    note = "Auto sync paused." if paused else "Auto sync resumed."
    if request.htmx:
        return _card(request, kind, note=note)
    messages.success(request, note)
    return redirect(_my_sync_url(request))


# ---------------------------------------------------------------- run page


@org_view()
@require_GET
def run_page(request, run_id: int):
    ctx, run = request.org_ctx, _run(request, run_id)
    live = sync_pages.run_is_live(run)
    if request.htmx and not live and request.GET.get("on") == "review":
        return HttpResponseClientRefresh()  # the review page now has a plan to show
    context = {"ctx": ctx, "run": run, "progress": sync_pages.progress_of(run),
               "summary": sync_pages.counts_in_words(run.counts, planned=sync_pages.run_is_plan(run)),
               "help": sync_pages.failure_help(run, ctx.org.slug),
               "log_url": sync_pages.url_or_none("syncengine:run-log", ctx.org.slug, run.pk),
               "label": sync_pages.KIND_LABELS[run.kind], "purpose": sync_pages.PURPOSE_LABELS.get(run.purpose, "")}
    if not live and run.purpose in ("apply_plan", "rebuild"):
        context["plan"], context["stale"] = selectors.plan_applied_by(run=run)
    if request.htmx:
        # A finished run answers 286: htmx stops polling (and swaps in the final state).
        status = 200 if live else HTMX_STOP_POLLING
        return render(request, f"{RUN_PAGE}#progress", context, status=status)
    return render(request, RUN_PAGE, context)


# ---------------------------------------------------------------- review page


def _filter(request) -> selectors.ReviewFilter:
    data = request.GET if request.method == "GET" else request.POST
    group = data.get("group", "")
    show = data.get("show", "")
    try:
        after = max(int(data.get("after", "0") or 0), 0)
    except ValueError:
        after = 0
    return selectors.ReviewFilter(
        group=group if group in selectors.GROUPS_BY_KEY else "",
        q=data.get("q", "")[:200].replace("\x00", ""),
        show=show if show in ("included", "excluded", "stale") else "",
        after=after,
    )


def _policy_winner(run: SyncRun) -> str:
    """The side the policy lets win a conflict (a dry run's proposed value first)."""
    from policy.selectors import policy_effective_for

    overrides = run.policy_overrides or {}
    if overrides.get("conflict_winner") in ("outlook", "salesforce"):
        return overrides["conflict_winner"]
    return policy_effective_for(run.membership, run.kind).conflict_winner.value


def _review_context(request, run: SyncRun, f: selectors.ReviewFilter, **extra) -> dict:
    ctx = request.org_ctx
    rows, next_after = selectors.plan_page(run=run, f=f)
    winner = _policy_winner(run)
    return {
        "ctx": ctx, "run": run, "f": f, "next_after": next_after, "policy_winner": winner,
        "rows": sync_pages.change_views(rows, policy_winner=winner),
        "counts": (counts := selectors.plan_group_counts(run=run)),
        "selected": sync_pages.selected_of(counts),
        "state": sync_pages.plan_state(run, org_slug=ctx.org.slug),
        "is_settings_preview": run.purpose == "settings_preview",
        "proposed": sync_pages.proposed_settings(run) if run.purpose == "settings_preview" else [],
        "label": sync_pages.KIND_LABELS[run.kind], "urls": _review_urls(ctx.org.slug, run), **extra,
    }


def _review_urls(org_slug: str, run: SyncRun) -> dict:
    """Reversed once per page, not once per row."""
    args = [org_slug, run.pk]
    return {"include": reverse("syncengine:review-include", args=args),
            "winner": reverse("syncengine:review-winner", args=args),
            "items": reverse("syncengine:review", args=args) + "items/"}


@org_view()
@require_GET
def review(request, run_id: int):
    run, f = _plan(request, run_id), _filter(request)
    if request.htmx and request.GET.get("fragment") == "rows":
        # "Show more": the next rows, appended in place of the button.
        return render(request, f"{REVIEW}#more-rows", _review_context(request, run, f))
    context = _review_context(request, run, f, progress=sync_pages.progress_of(run),
                              newer=selectors.plan_newer_sync(run=run) if run.status == "planned" else None)
    page = f"{REVIEW}#items" if request.htmx and request.GET.get("fragment") == "items" else REVIEW
    return render(request, page, context)


def _ids(request) -> list[int]:
    try:
        return [int(v) for v in request.POST.getlist("change_ids")]
    except ValueError:
        raise services.SyncRefused("These items are not part of this plan.") from None


@org_view()
@require_POST
def review_include(request, run_id: int):
    run, f = _plan(request, run_id), _filter(request)
    included, group = request.POST.get("included") == "1", request.POST.get("action_group", "")
    error, ids = "", []
    try:
        ids = _ids(request)
        if group in selectors.GROUPS_BY_KEY:
            services.plan_set_included(membership=request.org_ctx.membership, run_id=run.pk,
                                       action_group=group, included=included)
        else:
            services.plan_set_included(membership=request.org_ctx.membership, run_id=run.pk,
                                       change_ids=ids, included=included)
    except services.SyncRefused as exc:
        log.warning("review include refused: run %s member %s: %s", run.pk, run.membership_id, exc)
        error = str(exc)
    if request.htmx:
        return _review_fragment(request, run, f, error, None if group in selectors.GROUPS_BY_KEY else ids)
    return _back_to_review(request, run, f, error)


def _review_fragment(request, run, f, error: str, ids: list[int] | None):
    """One item changed: its row and the counts (out of band); a group: the whole list."""
    if ids and len(ids) == 1 and not error:
        rows = selectors.plan_changes_by_id(run=run, ids=ids)
        context = _review_context(request, run, f)
        context["item"] = sync_pages.change_views(rows, policy_winner=context["policy_winner"])[0]
        return render(request, f"{REVIEW}#row-update", context)
    response = render(request, f"{REVIEW}#items", _review_context(request, run, f, error=error))
    response["HX-Retarget"], response["HX-Reswap"] = "#review-items", "outerHTML"
    return response


def _back_to_review(request, run, f, error: str):
    if error:
        messages.error(request, error)
    url = reverse("syncengine:review", args=[request.org_ctx.org.slug, run.pk])
    return redirect(f"{url}?{f.querystring()}")


@org_view()
@require_POST
def review_winner(request, run_id: int):
    run, f = _plan(request, run_id), _filter(request)
    winner = request.POST.get("winner", "")
    error = ""
    try:
        change_id = int(request.POST.get("change_id", ""))
        services.plan_set_winner(membership=request.org_ctx.membership, run_id=run.pk,
                                 change_id=change_id, winner=winner)
    except (ValueError, services.SyncRefused) as exc:
        log.warning("review winner refused: run %s member %s: %s", run.pk, run.membership_id, exc)
        error = str(exc) if isinstance(exc, services.SyncRefused) else "This item is not part of this plan."
    if request.htmx:
        return _review_fragment(request, run, f, error, [change_id] if not error else None)
    return _back_to_review(request, run, f, error)


@org_view()
@require_POST
def review_apply(request, run_id: int):
    ctx, plan = request.org_ctx, _plan(request, run_id)
    purpose = "rebuild" if plan.purpose == "rebuild_preview" else "apply_plan"
    try:
        run = services.sync_start(membership=ctx.membership, kind=plan.kind, purpose=purpose, plan_run_id=plan.pk)
    except services.SyncRefused as exc:
        log.info("apply refused: plan %s member %s: %s", plan.pk, plan.membership_id, exc)
        messages.error(request, str(exc))
        return _go(request, reverse("syncengine:review", args=[ctx.org.slug, plan.pk]))
    return _go(request, reverse("syncengine:run", args=[ctx.org.slug, run.pk]))


@org_view()
@require_GET
def review_item(request, run_id: int, change_id: int):
    run = _plan(request, run_id)
    try:
        change = selectors.plan_change(run=run, change_id=change_id)
    except PlannedChange.DoesNotExist:
        raise Http404 from None
    (item,) = sync_pages.change_views([change], policy_winner=_policy_winner(run))
    context = {"ctx": request.org_ctx, "run": run, "item": item, "label": sync_pages.KIND_LABELS[run.kind]}
    return render(request, f"{REVIEW}#drawer" if request.htmx else "syncengine/review_item.html", context)


# ---------------------------------------------------------------- settings dry run


def _previewable(kind: str, field: str) -> None:
    from policy import registry

    setting = registry.BY_NAME.get(field)
    if setting is None or not setting.applies_to(kind) or not getattr(setting, "previewable", False):
        raise ValidationError("This setting cannot be previewed: save it, then preview a sync.")


@org_view()
@require_POST
def settings_preview(request):
    """Plan the member's sync under one proposed setting; nothing is saved or written."""
    from policy.selectors import policy_effective_for

    ctx, kind, field = request.org_ctx, request.POST.get("kind", ""), request.POST.get("field", "")
    if ctx.membership is None or kind not in sync_pages.KIND_LABELS:
        raise Http404
    values = request.POST.getlist("value")  # a checkbox posts "off" then "on": the last counts
    overrides = {field: values[-1] if values else ""}
    settings_url = reverse("policy:my-settings-kind", args=[ctx.org.slug, kind])
    try:
        _previewable(kind, field)
        policy_effective_for(ctx.membership, kind, overrides=overrides)
        run = services.sync_start(membership=ctx.membership, kind=kind, purpose="settings_preview",
                                  policy_overrides=overrides)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return _go(request, settings_url)
    except services.SyncRefused as exc:
        messages.error(request, str(exc))
        return _go(request, settings_url)
    return _go(request, reverse("syncengine:review", args=[ctx.org.slug, run.pk]))
