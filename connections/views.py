from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from orgs.access import org_view

from . import flows, selectors
from .errors import RemoteError
from .models import Provider

PAGE = "connections/my_connections.html"


def _provider(value: str) -> str:
    if value not in Provider.values:
        raise Http404
    return value


def _page_context(ctx) -> dict:
    providers = selectors.my_connections(membership=ctx.membership) if ctx.membership else []
    return {"ctx": ctx, "providers": providers}


@org_view()
@require_GET
def my_connections(request):
    return render(request, PAGE, _page_context(request.org_ctx))


@org_view()
@require_POST
def connect(request, provider: str):
    ctx, provider = request.org_ctx, _provider(provider)
    if ctx.membership is None:
        messages.error(request, "Connections belong to members: staff cannot connect accounts in this org.")
        return redirect("connections:my-connections", org_slug=ctx.org.slug)
    try:
        url = flows.connect_start(request, ctx=ctx, provider=provider)
    except RemoteError as exc:
        messages.error(request, exc.message)
        return redirect("connections:my-connections", org_slug=ctx.org.slug)
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


@org_view()
@require_POST
def disconnect(request, provider: str):
    ctx, provider = request.org_ctx, _provider(provider)
    conn = selectors.connection_for(ctx.membership, provider) if ctx.membership else None
    if conn is None:
        raise Http404
    note = flows.disconnect(ctx=ctx, connection=conn)
    if request.htmx:
        return render(request, f"{PAGE}#connections", {**_page_context(ctx), "note": note})
    messages.success(request, note)
    return redirect("connections:my-connections", org_slug=ctx.org.slug)


@login_required
@require_GET
@sensitive_variables()
def oauth_callback(request, provider: str):
    """Where Microsoft and Salesforce send the browser back; the org comes from the state."""
    outcome = flows.connect_finish(request, provider=_provider(provider))
    if not outcome.org_slug:
        return render(request, "connections/callback_refused.html", {"message": outcome.message}, status=400)
    (messages.success if outcome.ok else messages.error)(request, outcome.message)
    return redirect("connections:my-connections", org_slug=outcome.org_slug)
