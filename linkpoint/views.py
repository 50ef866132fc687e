import logging

from django.db import connection
from django.http import JsonResponse
from django.shortcuts import redirect
from django.templatetags.static import static
from django.utils import timezone
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)


@require_GET
def favicon(request):
    """Browsers ask for /favicon.ico on pages that name no icon (the sandbox's, the admin's,
    a JSON response): answer with ours rather than a 404 warning in the log each time."""
    return redirect(static("img/favicon.svg"))


# The dispatcher ticks every minute; three missed ticks mean the scheduler is down.
HEALTH_TICK_MAX_SECONDS = 180


@require_GET
def healthz(request):
    """Load balancers and monitors: database, broker and the scheduler's last tick.

    No login; the answer names each check and its state, never an address, a
    version or an error text (those go to the log, where support reads them).
    """
    checks = {"database": _check(_database), "broker": _check(_broker)}
    age = _check(_last_tick_age)
    tick_ok = isinstance(age, float) and age <= HEALTH_TICK_MAX_SECONDS
    checks["scheduler"] = "ok" if tick_ok else ("never ticked" if age is None else "late")
    if isinstance(age, float):
        checks["scheduler_last_tick_seconds_ago"] = round(age)
    ok = checks["database"] == "ok" and checks["broker"] == "ok" and tick_ok
    response = JsonResponse({"status": "ok" if ok else "failing", "checks": checks},
                            status=200 if ok else 503)
    response["Cache-Control"] = "no-store"
    return response


def _check(fn):
    try:
        return fn()
    except Exception:
        logger.exception("health check %s failed", fn.__name__.strip("_"))
        return "failing"


def _database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return "ok"


def _broker() -> str:
    from django_q.brokers import get_broker

    return "ok" if get_broker().ping() else "failing"


def _last_tick_age() -> float | None:
    from syncengine.dispatch import STATE_NAME
    from syncengine.models import DispatcherState

    last = DispatcherState.objects.filter(name=STATE_NAME).values_list("last_tick_at", flat=True).first()
    return None if last is None else (timezone.now() - last).total_seconds()
