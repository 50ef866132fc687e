from urllib.parse import urlsplit

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


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


def content_security_policy() -> str:
    """The policy of every product page: our own files only, nothing inline.

    form-action also covers the redirects that follow a form submission (Chromium
    checks each hop), so the Connect buttons' POST → 302 → Microsoft / Salesforce
    sign-in needs those origins; the sandbox's sign-in pages may live on another
    origin of the dev server (SANDBOX_BROWSER_PREFIXES).
    """
    sign_in = [settings.MICROSOFT_AUTHORITY_HOST, settings.SALESFORCE_LOGIN_URL]
    sign_in += settings.CSP_FORM_ACTION_EXTRA
    if settings.SANDBOX_ENABLED:
        sign_in += [local for _remote, local in getattr(settings, "SANDBOX_BROWSER_PREFIXES", ())]
    form_action = ["'self'"]
    for url in sign_in:
        origin = url if "*" in url else _origin(url)
        if origin and origin not in form_action:
            form_action.append(origin)
    directives = {
        "default-src": "'self'",
        "script-src": "'self'",
        "style-src": "'self'",
        # allauth shows the TOTP enrolment QR code as a data: image
        "img-src": "'self' data:",
        "object-src": "'none'",
        "base-uri": "'none'",
        "frame-ancestors": "'none'",
        "form-action": " ".join(form_action),
    }
    return "; ".join(f"{name} {value}" for name, value in directives.items())


# Browser features no LinkPoint page uses; () denies them to us and to anything we embed.
PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer", "autoplay", "camera", "display-capture", "encrypted-media",
        "geolocation", "gyroscope", "hid", "magnetometer", "microphone", "midi", "payment",
        "picture-in-picture", "screen-wake-lock", "serial", "usb", "xr-spatial-tracking",
    )
)


class SecurityHeadersMiddleware:
    """Content-Security-Policy and Permissions-Policy on every response of the product.

    Not on the sandbox: its pages stand in for Microsoft's and Salesforce's own
    servers (which send their own headers) and never run in production. Not on
    Django's DEBUG error pages either, whose inline CSS and JS would be blocked.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        if settings.SANDBOX_ENABLED and request.path_info.startswith("/sandbox/"):
            return response
        if settings.DEBUG and response.status_code >= 400:
            return response
        response.headers.setdefault("Content-Security-Policy", content_security_policy())
        return response
