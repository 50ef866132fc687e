from functools import cache

from .models import ROLE_RANK, Membership, Role


def orgs(request):
    """The org switcher's list, the org the nav points at, and the current org context.

    Values are callables the template calls lazily, memoized so the nav costs at
    most one query however often the template asks.
    """
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}

    @cache
    def my_memberships():
        return list(
            Membership.objects.active()
            .filter(user=user)
            .select_related("organization")
            .order_by("organization__name")
        )

    def nav_org():
        ctx = getattr(request, "org_ctx", None)
        if ctx is not None:
            return ctx.org
        mine = my_memberships()
        return mine[0].organization if mine else None

    def nav_is_admin():
        ctx = getattr(request, "org_ctx", None)
        if ctx is not None:
            return ctx.is_admin
        mine = my_memberships()
        return bool(mine) and ROLE_RANK[mine[0].role] >= ROLE_RANK[Role.ADMIN]

    return {
        "my_memberships": my_memberships,
        "nav_org": nav_org,
        "nav_is_admin": nav_is_admin,
        "org_ctx": getattr(request, "org_ctx", None),
    }
