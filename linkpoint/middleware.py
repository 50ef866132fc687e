from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django_htmx.http import HttpResponseClientRedirect


class HtmxLoginRedirectMiddleware:
    """An expired session on an htmx request sends the whole page to the login.

    Without this, htmx would swap the login page into a table cell.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            getattr(request, "htmx", False)
            and response.status_code == 302
            and not request.user.is_authenticated
        ):
            location = response.get("Location", "")
            login = settings.LOGIN_URL if settings.LOGIN_URL.startswith("/") else "/accounts/login/"
            if location.startswith(login):
                return HttpResponseClientRedirect(location)
        return response


class SandboxGateMiddleware:
    """The emulators under /sandbox/ exist only while SANDBOX_ENABLED is on."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith("/sandbox/") and not settings.SANDBOX_ENABLED:
            raise Http404("The sandbox is not enabled.")
        return self.get_response(request)
