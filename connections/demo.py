"""Connect a demo member to both sandbox accounts through the real OAuth journeys.

`seed_demo` calls `demo_connect()`. It drives our own views and the sandbox's
consent pages with Django's test Client, exactly as a person in a browser
would: connect → consent page → accept → our callback. No Connection row is
written by hand, so the demo exercises (and proves) the product's code paths.
"""

from __future__ import annotations

import urllib.parse as up

from django.conf import settings
from django.contrib.messages import get_messages
from django.core.management import call_command, get_commands
from django.test import Client

from orgs.models import Membership

from .models import Connection, Status


def _host() -> str:
    host = up.urlsplit(settings.SITE_URL).hostname or "127.0.0.1"
    return host if host in settings.ALLOWED_HOSTS or "*" in settings.ALLOWED_HOSTS else settings.ALLOWED_HOSTS[0]


def _follow_to_callback(client: Client, provider: str, slug: str, email: str) -> str:
    """Run one journey; return the message our page showed, or raise with what went wrong."""
    start = client.post(f"/o/{slug}/connections/{provider}/connect/")
    if start.status_code != 302:
        raise RuntimeError(f"connect {provider}: HTTP {start.status_code}")
    authorize = start["Location"]
    if provider == "microsoft":
        answer = client.post(authorize, {"decision": "accept", "mailbox": email})
    else:
        form = {k: v for k, v in up.parse_qsl(up.urlsplit(authorize).query) if k != "login_hint"}
        answer = client.post(up.urlsplit(authorize).path, {**form, "username": email, "action": "allow"})
    if answer.status_code != 302 or "/connections/callback/" not in answer["Location"]:
        raise RuntimeError(f"{provider} consent page answered HTTP {answer.status_code}")
    back = client.get(answer["Location"], follow=True)
    # The messages the page showed, read from the request that rendered them:
    # `response.context` exists only under the test runner, not in a real run.
    notes = [str(m) for m in get_messages(back.wsgi_request)]
    return "; ".join(notes) or f"{provider} consent accepted (the page showed no message)"


def demo_connect(*, email: str, org_slug: str, seed: dict | None = None, out=None) -> list[str]:
    """Connect `email`'s membership in `org_slug` to both sandbox accounts (idempotent)."""
    from sandbox.microsoft.services import mailbox_ensure
    from sandbox.salesforce.services import sf_user_ensure

    say = out or (lambda line: None)
    membership = Membership.objects.select_related("user").get(user__email=email, organization__slug=org_slug)
    mailbox_ensure(email)
    sf_user_ensure(email=email)
    done = {c.provider for c in Connection.objects.filter(membership=membership, status=Status.CONNECTED)}
    client = Client(SERVER_NAME=_host())
    client.force_login(membership.user, backend="django.contrib.auth.backends.ModelBackend")
    lines = []

    def note(line: str) -> None:
        # Said as it happens, so it reads in order with what sandbox_seed prints.
        lines.append(line)
        say(line)

    for provider in ("microsoft", "salesforce"):
        if provider in done:
            note(f"{email}: {provider} already connected")
            continue
        note(f"{email}: {_follow_to_callback(client, provider, org_slug, email)}")
        if not Connection.objects.filter(membership=membership, provider=provider, status=Status.CONNECTED).exists():
            raise RuntimeError(f"{provider} did not connect: {lines[-1]}")
    if seed is not None and "sandbox_seed" in get_commands():
        call_command("sandbox_seed", mailbox=email, sf_user=email, **seed)
        note(f"{email}: sandbox data seeded ({', '.join(f'{k}={v}' for k, v in seed.items())})")
    return lines
