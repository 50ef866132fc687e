"""The requests Session every remote call goes through, and the retry policy.

The session comes from `settings.HTTP_SESSION_FACTORY` (production: a plain
requests.Session; tests and the demo: the sandbox's in-process transport), so
production and the sandbox differ only in configuration.
"""

from __future__ import annotations

import random
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field

import requests
from django.conf import settings
from django.utils.module_loading import import_string

DEFAULT_TIMEOUT = 30  # seconds; requests has no default and a hung socket would hang a worker

MAX_ATTEMPTS = 5
BACKOFF_BASE = 1.0  # seconds
BACKOFF_CAP = 30.0
# A Retry-After longer than this is not slept through inside a run: the caller is told
# (RateLimited.retry_after) and the scheduler comes back later.
MAX_RETRY_AFTER = 120.0


@dataclass
class RequestCounter:
    """Requests sent during one run, per side (retries and token refreshes included).

    A run's worker threads send requests at the same time: the count is taken under a lock."""

    outlook: int = 0
    salesforce: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def bump(self, side: str) -> None:
        with self._lock:
            setattr(self, side, getattr(self, side) + 1)


def concurrency(side: str) -> int:
    """How much a client may have in flight at once (settings.SYNC_CONCURRENCY; 1 = one
    request after another). Graph's unit is a mailbox slot (see GraphClient.slots_for)."""
    conf = getattr(settings, "SYNC_CONCURRENCY", None) or {}
    try:
        return max(1, int(conf.get(side, 1)))
    except (TypeError, ValueError):
        return 1


class Slots:
    """The share of a remote's concurrency one client holds: a request waits until its
    units are free, so however many threads a run starts, no more is in flight."""

    def __init__(self, capacity: int):
        self.capacity = max(1, int(capacity))
        self._used = 0
        self._cond = threading.Condition()

    @contextmanager
    def hold(self, units: int = 1):
        units = max(1, min(int(units), self.capacity))
        with self._cond:
            while self._used + units > self.capacity:
                self._cond.wait()
            self._used += units
        try:
            yield
        finally:
            with self._cond:
                self._used -= units
                self._cond.notify_all()


def make_session(*, side: str, counter: RequestCounter | None = None) -> requests.Session:
    """A Session from settings that counts every request it sends and always has a timeout."""
    session = import_string(settings.HTTP_SESSION_FACTORY)()
    send = session.request

    def request(method, url, *args, **kwargs):
        if counter is not None:
            counter.bump(side)
        kwargs.setdefault("timeout", DEFAULT_TIMEOUT)
        return send(method, url, *args, **kwargs)

    # msal calls session.get/post and simple-salesforce session.request: both land here.
    session.request = request
    return session


def backoff_delay(attempt: int, retry_after: float | None = None) -> float:
    """Exponential backoff with full jitter; a server's Retry-After is the floor.

    attempt 0 is the first retry. Without Retry-After: uniform(0, min(cap, base·2^attempt)).
    With it: Retry-After plus that jitter, so many workers told "7 s" do not all return at once.
    """
    jitter = random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * (2**attempt)))
    return (retry_after or 0) + jitter


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        # The HTTP-date form: neither Graph nor Salesforce sends it; treat as "soon".
        return BACKOFF_BASE
