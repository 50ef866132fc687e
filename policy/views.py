from __future__ import annotations

import dataclasses

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from orgs.access import org_view
from orgs.models import Role

from . import pages, registry, selectors, services
from .models import PolicyNotice

# `org_view` sits outermost so an outsider gets the same 404 from every URL of another org.
ORG_PAGE = "policy/org_policy.html"
MY_PAGE = "policy/my_settings.html"


def _kind(kind: str) -> str:
    if kind not in registry.KINDS:
        raise Http404
    return kind


def _field(kind: str, field: str) -> str:
    setting = registry.BY_NAME.get(field)
    if setting is None or not setting.applies_to(kind):
        raise Http404
    return field


def _posted_value(request):
    # A checkbox posts a hidden "off" and, when ticked, "on" after it: the last one counts.
    values = request.POST.getlist("value")
    return values[-1] if values else ""


def _errors(exc: ValidationError) -> dict:
    return exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}


def _respond(request, page: str, context: dict, url: str):
    """htmx swaps the settings section; without JavaScript we redirect back (PRG).

    Errors are rendered into the section with 200: htmx 2 does not swap 4xx bodies.
    A refusal or a question (advice) is rendered in full without JavaScript, so
    the row shows it where the person looks.
    """
    if request.htmx:
        return render(request, f"{page}#policy-section", context)
    rows = [*context["rows"], *context.get("other_rows", ())]
    if context["other_errors"] or any(r.error or r.blocking_advice for r in rows):
        return render(request, page, context)
    for note in context["notes"]:
        messages.info(request, note)
    for row in rows:
        if row.saved:
            messages.success(request, f"{row.setting.label}: {row.saved}")
        for advice in row.advice:
            messages.info(request, advice.message)
    return redirect(url)


@org_view(min_role=Role.ADMIN)
@require_GET
def org_policy(request, kind: str = registry.CALENDAR):
    context = pages.org_policy_context(ctx=request.org_ctx, kind=_kind(kind))
    page = f"{ORG_PAGE}#policy-section" if request.htmx else ORG_PAGE
    return render(request, page, context)


@org_view(min_role=Role.ADMIN)
@require_POST
def org_policy_set(request, kind: str, field: str):
    ctx, kind = request.org_ctx, _kind(kind)
    field = _field(kind, field)
    errors, notes, feedback = {}, [], pages.NO_FEEDBACK
    try:
        change = services.org_policy_update(
            ctx=ctx, kind=kind, values={field: _posted_value(request)}
        )
        notes = change.notes
        # On the org page advice is information: the save already happened.
        info = tuple(dataclasses.replace(a, blocking=False) for a in change.advice)
        feedback = pages.Feedback(field, pages.SET, info)
    except ValidationError as exc:
        errors = _errors(exc)
    context = pages.org_policy_context(
        ctx=ctx, kind=kind, errors=errors, notes=notes, feedback=feedback
    )
    return _respond(request, ORG_PAGE, context, _org_url(ctx, kind))


def _org_url(ctx, kind: str) -> str:
    return reverse("policy:org-policy-kind", kwargs={"org_slug": ctx.org.slug, "kind": kind})


@org_view(min_role=Role.ADMIN)
@require_POST
def org_policy_lock(request, kind: str, field: str):
    ctx, kind = request.org_ctx, _kind(kind)
    field = _field(kind, field)
    locks = set(selectors.org_policy_get(org=ctx.org, kind=kind).locked)
    lock = request.POST.get("locked") == "1"
    (locks.add if lock else locks.discard)(field)
    services.org_policy_update(ctx=ctx, kind=kind, locks=locks)
    feedback = pages.Feedback(field, pages.LOCK if lock else pages.UNLOCK)
    context = pages.org_policy_context(ctx=ctx, kind=kind, feedback=feedback)
    return _respond(request, ORG_PAGE, context, _org_url(ctx, kind))


def _my_membership(request):
    # Staff acting as Professional Services have no settings of their own here.
    return request.org_ctx.membership


@org_view()
@require_GET
def my_settings(request, kind: str = registry.CALENDAR):
    ctx, membership = request.org_ctx, _my_membership(request)
    if membership is None:
        return redirect("policy:org-policy", org_slug=ctx.org.slug)
    context = pages.my_settings_context(ctx=ctx, membership=membership, kind=_kind(kind))
    page = f"{MY_PAGE}#policy-section" if request.htmx else MY_PAGE
    return render(request, page, context)


def _my_change(request, kind: str, field: str, action, saved: str):
    ctx, membership, kind = request.org_ctx, _my_membership(request), _kind(kind)
    if membership is None:
        raise Http404
    field = _field(kind, field)
    errors, notes, feedback = {}, [], pages.NO_FEEDBACK
    confirmed = request.POST.get("confirm") == "1"
    try:
        change = action(ctx=ctx, membership=membership, kind=kind, field=field, confirmed=confirmed)
        notes = change.notes
        info = tuple(a for a in change.advice if not a.blocking)
        feedback = pages.Feedback(field, saved, info)
    except services.AdviceRequired as exc:
        feedback = pages.Feedback(field, "", tuple(exc.advice), _posted_value(request))
    except ValidationError as exc:
        errors = _errors(exc)
    context = pages.my_settings_context(
        ctx=ctx, membership=membership, kind=kind, errors=errors, notes=notes, feedback=feedback
    )
    url = reverse("policy:my-settings-kind", kwargs={"org_slug": ctx.org.slug, "kind": kind})
    return _respond(request, MY_PAGE, context, url)


@org_view()
@require_POST
def my_settings_set(request, kind: str, field: str):
    def action(*, field, confirmed, **kw):
        return services.user_policy_set(
            values={field: _posted_value(request)}, advice_confirmed=confirmed, **kw
        )

    return _my_change(request, kind, field, action, pages.SET)


@org_view()
@require_POST
def my_settings_reset(request, kind: str, field: str):
    def action(*, confirmed, **kw):
        return services.user_policy_reset_field(advice_confirmed=confirmed, **kw)

    return _my_change(request, kind, field, action, pages.RESET)


@org_view()
@require_POST
def my_time_zone(request):
    ctx = request.org_ctx
    error, saved = "", ""
    try:
        services.member_time_zone_set(ctx=ctx, time_zone=request.POST.get("time_zone", ""))
        saved = f"Saved: {ctx.user.time_zone.replace('_', ' ')}."
    except ValidationError as exc:
        error = " ".join(exc.messages)
    tz = ctx.user.time_zone
    context = {
        "ctx": ctx,
        "time_zone": tz,
        "tz_form": pages.time_zone_form(tz),
        "tz_error": error,
        "tz_saved": saved,
    }
    if request.htmx:
        return render(request, f"{MY_PAGE}#time-zone", context)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, f"Time zone {saved[0].lower()}{saved[1:]}")
    return redirect("policy:my-settings", org_slug=ctx.org.slug)


@org_view()
@require_POST
def my_notice_dismiss(request, notice_id):
    ctx = request.org_ctx
    # Only the caller's own notices: someone else's id is a plain 404.
    notice = get_object_or_404(
        PolicyNotice.objects.open().filter(membership=_my_membership(request)), public_id=notice_id
    )
    services.policy_notice_dismiss(notice=notice)
    if request.htmx:
        notices = selectors.policy_notices_open(membership=notice.membership)
        return render(request, f"{MY_PAGE}#notices", {"ctx": ctx, "notices": notices})
    return redirect("policy:my-settings", org_slug=ctx.org.slug)
