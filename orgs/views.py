from copy import copy
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect, HttpResponseClientRefresh

from accounts import selectors as account_selectors
from accounts import services as account_services

from . import selectors, services
from .access import org_view
from .dashboard import panels_for
from .forms import InviteForm, OrganizationForm, RoleForm, assignable_roles
from .models import Invitation, Membership, Role

# `org_view` always sits outermost: tenancy is resolved before anything else (even the
# method check), so an outsider gets the same 404 from every URL of another org.
MEMBER_PAGE = "orgs/member_list.html"


def _messages_of(error: ValidationError) -> str:
    return " ".join(error.messages)


@login_required
def home(request):
    first = (
        Membership.objects.active()
        .filter(user=request.user)
        .select_related("organization")
        .order_by("organization__name")
        .first()
    )
    if first is not None:
        return redirect("orgs:home", org_slug=first.organization.slug)
    if request.user.is_staff:
        return redirect("orgs:staff-directory")
    return render(request, "orgs/no_org.html")


@org_view()
@require_GET
def org_home(request):
    ctx = request.org_ctx
    members = list(selectors.membership_list(org=ctx.org))
    return render(request, "orgs/org_home.html", {
        "ctx": ctx,
        "members": members,
        "active_count": sum(m.is_active for m in members),
        "panels": panels_for(ctx),
    })


# --- member management ---------------------------------------------------------------


def _member_page_context(request, *, invite_form=None, invite_notice=""):
    ctx = request.org_ctx
    return {
        "ctx": ctx,
        "members": selectors.membership_list(org=ctx.org),
        "invitations": selectors.invitation_list_open(org=ctx.org),
        "invite_form": invite_form or InviteForm(ctx=ctx),
        "invite_notice": invite_notice,
        "roles": assignable_roles(ctx),
    }


@org_view(min_role=Role.ADMIN)
@require_GET
def member_list(request):
    return render(request, MEMBER_PAGE, _member_page_context(request))


@org_view(min_role=Role.ADMIN)
@require_POST
def invitation_create(request):
    ctx = request.org_ctx
    form = InviteForm(request.POST, ctx=ctx)
    notice = ""
    if form.is_valid():
        try:
            invitation = services.invitation_create(ctx=ctx, **form.cleaned_data)
        except ValidationError as exc:
            form.add_error(None, _messages_of(exc))
        else:
            notice = f"Invitation sent to {invitation.email}."
            form = None
    if not request.htmx:
        if form is None:
            messages.success(request, notice)
            return redirect("orgs:member-list", org_slug=ctx.org.slug)
        return render(request, MEMBER_PAGE, _member_page_context(request, invite_form=form), status=400)
    context = _member_page_context(request, invite_form=form, invite_notice=notice)
    return render(request, MEMBER_PAGE + "#invitations-section", context)


def _row_response(request, *, partial: str, obj, error: str = "", notice: str = ""):
    """One table row for htmx, or back to the page (with a flash message) without JS."""
    if not request.htmx:
        if error:
            messages.error(request, error)
        elif notice:
            messages.success(request, notice)
        return redirect("orgs:member-list", org_slug=request.org_ctx.org.slug)
    if obj is None:
        return HttpResponse("")  # the row is gone; htmx swaps it out
    return render(request, f"{MEMBER_PAGE}#{partial}", {
        "ctx": request.org_ctx, "m": obj, "inv": obj, "roles": assignable_roles(request.org_ctx),
        "row_error": error, "row_notice": notice,
    })


def _membership_or_404(request, membership_id) -> Membership:
    try:
        return selectors.membership_get(org=request.org_ctx.org, public_id=membership_id)
    except Membership.DoesNotExist as exc:
        raise Http404 from exc


def _invitation_or_404(request, invitation_id) -> Invitation:
    try:
        return selectors.invitation_get_open(org=request.org_ctx.org, public_id=invitation_id)
    except Invitation.DoesNotExist as exc:
        raise Http404 from exc


def _membership_action(request, membership_id, action, notice):
    ctx = request.org_ctx
    membership = _membership_or_404(request, membership_id)
    try:
        result = action(ctx=ctx, membership=membership)
    except ValidationError as exc:
        membership.refresh_from_db()
        return _row_response(request, partial="member-row", obj=membership, error=_messages_of(exc))
    if membership.user_id == request.user.pk and request.htmx:
        # Your own standing changed: the whole page (and maybe your access) changes with it.
        if result is None or not result.is_active:
            return HttpResponseClientRedirect(reverse("home"))
        return HttpResponseClientRefresh()
    return _row_response(request, partial="member-row", obj=result, notice=notice)


@org_view(min_role=Role.ADMIN)
@require_POST
def membership_change_role(request, membership_id):
    form = RoleForm(request.POST)
    if not form.is_valid():
        membership = _membership_or_404(request, membership_id)
        return _row_response(request, partial="member-row", obj=membership, error="Choose a role.")
    role = form.cleaned_data["role"]

    def action(*, ctx, membership):
        return services.membership_change_role(ctx=ctx, membership=membership, role=role)

    return _membership_action(request, membership_id, action, "Role changed.")


@org_view(min_role=Role.ADMIN)
@require_POST
def membership_deactivate(request, membership_id):
    return _membership_action(request, membership_id, services.membership_deactivate, "Deactivated.")


@org_view(min_role=Role.ADMIN)
@require_POST
def membership_reactivate(request, membership_id):
    return _membership_action(request, membership_id, services.membership_reactivate, "Reactivated.")


@org_view(min_role=Role.ADMIN)
@require_POST
def membership_remove(request, membership_id):
    return _membership_action(request, membership_id, services.membership_remove, "Removed.")


def _invitation_action(request, invitation_id, action, notice, *, keeps_row: bool):
    invitation = _invitation_or_404(request, invitation_id)
    try:
        action(ctx=request.org_ctx, invitation=invitation)
    except ValidationError as exc:
        return _row_response(request, partial="invitation-row", obj=invitation, error=_messages_of(exc))
    return _row_response(
        request, partial="invitation-row", obj=invitation if keeps_row else None, notice=notice
    )


@org_view(min_role=Role.ADMIN)
@require_POST
def invitation_resend(request, invitation_id):
    return _invitation_action(
        request, invitation_id, services.invitation_resend, "Sent again.", keeps_row=True
    )


@org_view(min_role=Role.ADMIN)
@require_POST
def invitation_revoke(request, invitation_id):
    return _invitation_action(
        request, invitation_id, services.invitation_revoke, "Invitation revoked.", keeps_row=False
    )


# --- audit log, settings ---------------------------------------------------------------


@org_view(min_role=Role.ADMIN)
@require_GET
def audit_log(request):
    page = selectors.audit_list(org=request.org_ctx.org, cursor=request.GET.get("cursor"))
    template = "orgs/audit_log.html#audit-rows" if request.htmx else "orgs/audit_log.html"
    return render(request, template, {"ctx": request.org_ctx, "page": page})


@org_view(min_role=Role.ADMIN)
def org_settings(request):
    ctx = request.org_ctx
    form = OrganizationForm(request.POST or None, instance=_unsaved_copy(ctx.org))
    if request.method == "POST" and form.is_valid():
        try:
            services.organization_update(ctx=ctx, **{f: form.cleaned_data[f] for f in form.Meta.fields})
        except ValidationError as exc:
            form.add_error(None, _messages_of(exc))
        else:
            messages.success(request, "Organization settings saved.")
            return redirect("orgs:settings", org_slug=ctx.org.slug)
    return render(request, "orgs/org_settings.html", {"ctx": ctx, "form": form})


def _unsaved_copy(org):
    # ModelForm validation writes cleaned values onto its instance; the service must
    # see the org as stored to audit the right "before" values.
    return copy(org)


# --- invitation acceptance (the token finds the invitation; the verified address is the credential) --


def invitation_accept(request, token):
    invitation = selectors.invitation_get_by_token(token=token)
    if invitation is None:
        return _invitation_page(request, None, "This invitation link is not valid.", status=404)
    if not request.user.is_authenticated:
        # One page for every visitor: whether the address already has an account is not shown.
        problem = _invitation_problem(None, invitation)
        account_services.after_verification_remember(request=request, url=request.path)
        return _invitation_page(request, invitation, problem, signed_out=not problem)
    if request.user.email.lower() != invitation.email.lower():
        return _not_for_you(request)
    problem = _invitation_problem(request.user, invitation)
    needs_verification = not problem and _needs_verification(request, invitation)
    if request.method == "POST":
        try:
            membership = services.invitation_accept(token=token, user=request.user)
        except ValidationError as exc:
            # An unverified address gets the page's own "verify first" block, not a bare error.
            error = "" if needs_verification else _messages_of(exc)
            return _invitation_page(request, invitation, error, status=400,
                                    needs_verification=needs_verification)
        messages.success(request, f"Welcome to {membership.organization.name}.")
        return redirect("orgs:home", org_slug=membership.organization.slug)
    return _invitation_page(request, invitation, problem, needs_verification=needs_verification)


@login_required
def invitation_send_verification(request, token):
    invitation = selectors.invitation_get_by_token(token=token)
    if invitation is None:
        return _invitation_page(request, None, "This invitation link is not valid.", status=404)
    if request.user.email.lower() != invitation.email.lower():
        return _not_for_you(request)
    if request.method != "POST":  # after the checks above, like org_view: a stranger sees only 404
        return HttpResponseNotAllowed(["POST"])
    account_services.after_verification_remember(
        request=request, url=reverse("orgs:invitation-accept", args=[token]))
    if not account_services.email_verification_send(
            request=request, user=request.user, email=invitation.email):
        messages.info(request, f"A verification e-mail went to {invitation.email} a few minutes ago; "
                               "its link still works. Check your inbox and spam folder, or ask again "
                               "in a few minutes.")
    return redirect("orgs:invitation-accept", token=token)


def _not_for_you(request):
    # Same answer as a missing token: nothing about the org leaks to another account.
    return _invitation_page(request, None, (
        f"This invitation is not for {request.user.email}. Sign out, then open the link "
        "again and sign in with the address the invitation was sent to."), status=404)


def _needs_verification(request, invitation) -> bool:
    if account_selectors.email_is_verified(user=request.user, email=invitation.email):
        return False
    account_services.after_verification_remember(request=request, url=request.path)
    return True


def _invitation_problem(user, invitation) -> str:
    if invitation.revoked_at:
        return "This invitation was revoked."
    if invitation.accepted_at:
        return "This invitation was already used."
    if invitation.is_expired:
        return "This invitation has expired. Ask an admin to send a new one."
    if user is not None and selectors.membership_exists(org=invitation.organization, user=user):
        return f"You are already a member of {invitation.organization.name}."
    return ""


def _invitation_page(request, invitation, error, status=200, *, signed_out=False,
                     needs_verification=False):
    next_query = urlencode({"next": request.path})
    return render(request, "orgs/invitation_accept.html", {
        "invitation": invitation, "error": error, "signed_out": signed_out,
        "needs_verification": needs_verification, "next_query": next_query,
    }, status=status)


# --- Professional Services directory -----------------------------------------------------------


@login_required
@require_GET
def staff_directory(request):
    # Not a tenant page: platform staff only; anyone else sees the same 404 as a missing page.
    if not (request.user.is_staff and request.user.is_active):
        raise Http404
    q = (request.GET.get("q") or "").strip()[:100]
    page = selectors.organization_directory(q=q, cursor=request.GET.get("after", ""))
    from .dashboard import directory_table

    headers, rows = directory_table(page.orgs)
    return render(request, "orgs/staff_directory.html",
                  {"q": q, "page": page, "headers": headers, "rows": rows})


@org_view()
@require_POST
def staff_enter(request):
    """Staff open an org from the directory: the visit lands in the org's audit log."""
    ctx = request.org_ctx
    if ctx.acting_as_staff:
        from .audit import audit_record

        audit_record(ctx=ctx, action="support.enter", target=ctx.org.name,
                     after={"from": "Professional Services directory"})
    return redirect("orgs:home", org_slug=ctx.org.slug)
