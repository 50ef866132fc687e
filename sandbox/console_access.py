"""Who may open the sandbox's demo consoles: platform staff, and only where the sandbox is on.

The consoles show and edit every sandbox mailbox and org, whoever they belong to,
so an ordinary member (of any org) must not reach them; to them the page does not
exist (404), as for a page outside their org.
"""

from __future__ import annotations

from functools import wraps

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import Http404


def staff_only(view):
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not getattr(settings, "SANDBOX_ENABLED", False):  # never in production settings
            raise Http404("No such page")
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not request.user.is_staff:
            raise Http404("No such page")
        return view(request, *args, **kwargs)

    return wrapper
