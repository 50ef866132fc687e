from .models import Membership


def orgs(request):
    """The org switcher's list and the current org context, for base.html."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}

    def my_memberships():
        return list(
            Membership.objects.active()
            .filter(user=user)
            .select_related("organization")
            .order_by("organization__name")
        )

    return {"my_memberships": my_memberships, "org_ctx": getattr(request, "org_ctx", None)}
