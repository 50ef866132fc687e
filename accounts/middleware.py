import contextlib
import zoneinfo

from django.utils import timezone


class UserTimezoneMiddleware:
    """Show times in the signed-in user's own time zone (stored as UTC)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        tz = getattr(user, "time_zone", "") if user is not None and user.is_authenticated else ""
        timezone.deactivate()
        if tz:
            with contextlib.suppress(zoneinfo.ZoneInfoNotFoundError, ValueError):
                timezone.activate(zoneinfo.ZoneInfo(tz))
        return self.get_response(request)
