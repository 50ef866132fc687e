from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render

from .access import org_view
from .models import Membership


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
    return render(request, "orgs/no_org.html")


@org_view()
def org_home(request):
    return render(request, "orgs/org_home.html", {"ctx": request.org_ctx})
