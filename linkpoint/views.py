from django.shortcuts import redirect
from django.templatetags.static import static
from django.views.decorators.http import require_GET


@require_GET
def favicon(request):
    """Browsers ask for /favicon.ico on pages that name no icon (the sandbox's, the admin's,
    a JSON response): answer with ours rather than a 404 warning in the log each time."""
    return redirect(static("img/favicon.svg"))
