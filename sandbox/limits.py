"""Concurrency limits of the emulated services (off by default; the benchmarks turn them on).

`settings.SANDBOX_LIMITS` (None: no limit is enforced) holds, per side:

- `outlook`: `concurrent_per_mailbox` (Graph's Outlook limit, 4 concurrent requests per app ID
  and mailbox; the 5th in flight gets 429 `ApplicationThrottled` "Application is over its
  MailboxConcurrency limit." with `Retry-After`), `batch_parallel` (Graph hands Outlook at most 4
  unordered requests of one `$batch` at a time, a `dependsOn` batch one by one) and
  `retry_after_seconds`. Graph evaluates the requests of a `$batch` one by one against the
  limits: a batch holds the mailbox slots its parallel requests use, and a request that finds no
  slot answers 429 inside the batch (with its own Retry-After) while the batch itself answers 200.
- `salesforce`: `long_running_seconds` and `concurrent_long_running` (Salesforce's concurrent
  API request limit: requests that have run 20 s or longer, 25 per production org; while that
  many are running, the org's new requests are refused with 403 REQUEST_LIMIT_EXCEEDED
  "ConcurrentRequests (Concurrent API Requests) Limit exceeded."). Emulated time counts: a
  request is long-running once its response time (sandbox/latency.py: the emulated delay, or
  the emulator's own time where that is longer) passes the threshold.

Where the count lives: the Django "default" cache, not the sandbox database. Every process
that serves the sandbox (gunicorn workers, qcluster workers, on any machine) shares one Redis
in production and CI, so they see each other's requests; within one process locmem does the
same for threads. The database would put a write and a row lock on every request, and the
emulator's rows in a test live inside the test's transaction, invisible to another process.
The cache also expires what a killed process leaves behind, which a counter in a table cannot.

A limit of N is N slot keys; taking a slot is the cache's atomic `add` (SET NX on Redis), so two
processes can never hold the same slot. Each slot expires after the request's own emulated time
plus `slot_ttl_seconds`: a process killed mid-request frees its slots by itself. (A plain
counter with incr/decr would either leak a killed holder's count forever or, with an expiry on
the key, reset under the feet of the requests still holding it.)

Graph's request budget (always on, whatever `SANDBOX_LIMITS` says; its values can be set there):
`outlook.requests_per_window` (10,000) requests per `outlook.window_seconds` (600) for each app
ID and mailbox combination, as Graph's "Outlook service limits" are evaluated: another app on the
same mailbox has a budget of its own. Each inner request of a `$batch` counts, and so does a
refused one. Over the budget a request answers 429 `ApplicationThrottled` with `Retry-After`: the
seconds until its window ends. The count is one cache key per (app, mailbox, window), windows
aligned on multiples of the window; the key lives a minute past its window, so the atomic
`incr` (INCRBY on Redis) never meets a key expiring under it and a new window starts at 0.
"""

from __future__ import annotations

import json
import math
import threading
import time
import uuid
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import cache
from django.http import HttpResponse

from .faults import graph_error, salesforce_error

# The vendors' documented values: Graph throttling-limits "Outlook service limits"; Salesforce
# "API Request Limits and Allocations" (concurrent requests lasting 20 s or longer).
DEFAULT_LIMITS = {
    "outlook": {"concurrent_per_mailbox": 4, "batch_parallel": 4, "retry_after_seconds": 1,
                "requests_per_window": 10_000, "window_seconds": 600},
    "salesforce": {"long_running_seconds": 20, "concurrent_long_running": 25},
    "slot_ttl_seconds": 60,
    "namespace": "sbxlim",
}

# Answers the limits gave in this process, per side (each throttled $batch request counts): a
# benchmark prints them; a run that stays within the limits leaves them at 0.
refused = {"outlook": 0, "salesforce": 0}
_refused_lock = threading.Lock()


def _count_refused(side: str, n: int = 1) -> None:
    with _refused_lock:
        refused[side] += n


def refused_reset() -> None:
    with _refused_lock:
        for side in refused:
            refused[side] = 0


GRAPH_CODE = "ApplicationThrottled"
GRAPH_MESSAGE = "Application is over its MailboxConcurrency limit."
SALESFORCE_MESSAGE = "ConcurrentRequests (Concurrent API Requests) Limit exceeded."


def limits_config() -> dict | None:
    """The limits in force (None: none); `True` stands for the documented values."""
    conf = getattr(settings, "SANDBOX_LIMITS", None)
    if conf is True:
        return DEFAULT_LIMITS
    return conf or None


def _option(conf: dict, side: str, name: str):
    return (conf.get(side) or {}).get(name, DEFAULT_LIMITS[side][name])


def _global(conf: dict, name: str):
    return conf.get(name, DEFAULT_LIMITS[name])


# --- slots --------------------------------------------------------------------------------------


@dataclass
class SlotPool:
    """`size` numbered cache keys; a request holds a slot while its key carries its token."""

    name: str
    size: int
    namespace: str = "sbxlim"

    def keys(self) -> list[str]:
        return [f"{self.namespace}:{self.name}:{i}" for i in range(self.size)]

    def occupied(self) -> int:
        return len(cache.get_many(self.keys()))

    def acquire(self, want: int, ttl: float) -> list[tuple[str, str]]:
        """Take up to `want` free slots (fewer if the pool is busy); never waits."""
        keys = self.keys()
        taken = cache.get_many(keys)
        held: list[tuple[str, str]] = []
        timeout = max(1, math.ceil(ttl))  # Redis expiries are whole seconds; 0 would mean "now"
        for key in keys:
            if len(held) >= want:
                break
            if key in taken:
                continue
            token = uuid.uuid4().hex
            if cache.add(key, token, timeout=timeout):  # atomic: a racing process gets False
                held.append((key, token))
        return held

    @staticmethod
    def release(held: list[tuple[str, str]]) -> None:
        for key, token in held:
            # Only our own: had the slot expired and been taken again, the key is someone else's.
            if cache.get(key) == token:
                cache.delete(key)


# --- admission ----------------------------------------------------------------------------------


@dataclass
class Admission:
    """What the limits decided for one request; `close()` gives its slots back."""

    body: bytes
    refusal: HttpResponse | None = None
    held: list[tuple[str, str]] = field(default_factory=list)
    throttled: list[dict] = field(default_factory=list)  # $batch entries answered 429 here
    order: list[str] = field(default_factory=list)  # the batch's ids in the caller's order
    timer: threading.Timer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _closed: bool = False

    def merge(self, response: HttpResponse) -> HttpResponse:
        """Put the sub-requests throttled here back into the batch's answer, in the caller's order."""
        if not self.throttled or response.status_code != 200:
            return response
        try:
            data = json.loads(response.content)
        except ValueError:
            return response
        if not isinstance(data, dict) or not isinstance(data.get("responses"), list):
            return response
        rank = {rid: i for i, rid in enumerate(self.order)}
        entries = data["responses"] + self.throttled
        entries.sort(key=lambda e: rank.get(str(e.get("id", "")).lower(), len(rank)))
        data["responses"] = entries
        response.content = json.dumps(data)
        return response

    def hold(self, slots: list[tuple[str, str]]) -> None:
        with self._lock:
            if self._closed:
                SlotPool.release(slots)
            else:
                self.held.extend(slots)

    def close(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        with self._lock:
            self._closed = True
            held, self.held = self.held, []
        SlotPool.release(held)


def admit(*, side: str, hostname: str, method: str, path: str, body: bytes, token: str,
          seconds: float) -> Admission:
    """Decide whether this request may run now; `seconds` is its emulated latency."""
    conf = limits_config()
    if conf is None:
        return Admission(body)
    hostname = (hostname or "").lower()
    if side == "outlook" and conf.get("outlook") and hostname.startswith("graph."):
        return _admit_graph(conf, method, path, body, token, seconds)
    if side == "salesforce" and conf.get("salesforce") and ".my.salesforce." in hostname:
        return _admit_salesforce(conf, hostname, body, seconds)
    return Admission(body)


# --- Graph --------------------------------------------------------------------------------------

_identities: dict[str, tuple[str, int, float]] = {}


def _graph_identity(token: str) -> tuple[str, int] | None:
    """(app client_id, mailbox id) the token speaks for; None for a token Graph will refuse (401).

    Remembered per process: a token never changes hands, only expires."""
    if not token:
        return None
    from .microsoft.models import AccessToken
    from .microsoft.services import token_hash

    digest = token_hash(token)
    known = _identities.get(digest)
    if known is None:
        row = (AccessToken.objects.filter(token_hash=digest, revoked=False)
               .values_list("client_id", "mailbox_id", "expires_at").first())
        if row is None:
            return None
        if len(_identities) > 10_000:
            _identities.clear()
        known = _identities[digest] = (row[0], row[1], row[2].timestamp())
    if known[2] <= time.time():
        return None
    return known[0], known[1]


def mailbox_slots(client_id: str, mailbox_id: int, conf: dict | None = None) -> SlotPool:
    """The slots of one (app, mailbox) pair: Graph counts per app ID and mailbox."""
    conf = conf or limits_config() or DEFAULT_LIMITS
    return SlotPool(f"graph:{client_id}:{mailbox_id}", int(_option(conf, "outlook", "concurrent_per_mailbox")),
                    str(_global(conf, "namespace")))


def graph_request_budget(client_id: str, mailbox_key: str, conf: dict | None = None) -> int | None:
    """Count one request of this app on this mailbox; None while within Graph's budget, else
    the Retry-After (seconds to the end of the window). The caller answers 429 with it."""
    conf = conf or limits_config() or DEFAULT_LIMITS
    limit = int(_option(conf, "outlook", "requests_per_window"))
    window = float(_option(conf, "outlook", "window_seconds"))
    moment = time.time()
    index = int(moment // window)
    key = f"{_global(conf, 'namespace')}:graph-budget:{client_id}:{mailbox_key}:{index}"
    try:
        count = cache.incr(key)
    except ValueError:  # the window's first request (here or in another process)
        cache.add(key, 0, timeout=math.ceil(window) + 60)
        count = cache.incr(key)
    if count <= limit:
        return None
    _count_refused("outlook")
    return max(1, math.ceil((index + 1) * window - moment))


def _throttled_entry(rid: str, retry_after: int) -> dict:
    return {"id": rid, "status": 429,
            "headers": {"Retry-After": str(retry_after), "Content-Type": "application/json"},
            "body": {"error": {"code": GRAPH_CODE, "message": GRAPH_MESSAGE}}}


def _batch_requests(method: str, path: str, body: bytes) -> tuple[dict, list[dict]] | None:
    """The batch's payload and requests when it is one the batch view will run, else None
    (a malformed batch is the view's 400 and takes one slot like any request)."""
    if method.upper() != "POST" or not path.split("?", 1)[0].rstrip("/").endswith("$batch"):
        return None
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        return None
    requests_ = data.get("requests") if isinstance(data, dict) else None
    if not isinstance(requests_, list) or not 0 < len(requests_) <= 20:
        return None
    if not all(isinstance(r, dict) and isinstance(r.get("id"), str | int) and str(r["id"]) for r in requests_):
        return None
    ids = [str(r["id"]).lower() for r in requests_]
    if len(set(ids)) != len(ids):
        return None
    return data, requests_


def _admit_graph(conf: dict, method: str, path: str, body: bytes, token: str, seconds: float) -> Admission:
    identity = _graph_identity(token)
    if identity is None:
        return Admission(body)
    pool = mailbox_slots(*identity, conf=conf)
    ttl = seconds + float(_global(conf, "slot_ttl_seconds"))
    retry_after = int(_option(conf, "outlook", "retry_after_seconds"))
    batch = _batch_requests(method, path, body)
    if batch is None:
        held = pool.acquire(1, ttl)
        if not held:
            _count_refused("outlook")
            return Admission(body, refusal=graph_error(429, GRAPH_CODE, GRAPH_MESSAGE,
                                                       {"Retry-After": str(retry_after)}))
        return Admission(body, held=held)
    data, requests_ = batch
    sequential = any(r.get("dependsOn") for r in requests_)
    lanes = 1 if sequential else max(1, min(int(_option(conf, "outlook", "batch_parallel")), len(requests_)))
    held = pool.acquire(lanes, ttl)
    running = [r for i, r in enumerate(requests_) if i % lanes < len(held)]
    throttled = [_throttled_entry(str(r["id"]), retry_after)
                 for i, r in enumerate(requests_) if i % lanes >= len(held)]
    admission = Admission(body, held=held, throttled=throttled, order=[str(r["id"]).lower() for r in requests_])
    if not throttled:
        return admission
    _count_refused("outlook", len(throttled))
    if not running:  # no lane free: every request is answered 429, the batch itself 200
        admission.refusal = admission.merge(_graph_json({"responses": []}))
        admission.throttled = []
        return admission
    admission.body = json.dumps({**data, "requests": running}).encode()
    return admission


def _graph_json(body: dict) -> HttpResponse:
    return HttpResponse(json.dumps(body), status=200, content_type="application/json")


# --- Salesforce ---------------------------------------------------------------------------------


def long_running_slots(hostname: str, conf: dict | None = None) -> SlotPool:
    """The org's long-running requests (its instance host names the org). Room for twice the
    limit: requests that started before the limit was reached still turn long-running."""
    conf = conf or limits_config() or DEFAULT_LIMITS
    limit = int(_option(conf, "salesforce", "concurrent_long_running"))
    return SlotPool(f"sf:{hostname.lower()}:long", 2 * limit, str(_global(conf, "namespace")))


def _admit_salesforce(conf: dict, hostname: str, body: bytes, seconds: float) -> Admission:
    """Refuse a new request while the org's long-running requests are at the limit; this one
    joins them (from another thread, on time) once it has run `long_running_seconds`."""
    limit = int(_option(conf, "salesforce", "concurrent_long_running"))
    threshold = float(_option(conf, "salesforce", "long_running_seconds"))
    pool = long_running_slots(hostname, conf)
    if pool.occupied() >= limit:
        _count_refused("salesforce")
        return Admission(body, refusal=salesforce_error(403, "REQUEST_LIMIT_EXCEEDED", SALESFORCE_MESSAGE))
    admission = Admission(body)
    ttl = max(0.0, seconds - threshold) + float(_global(conf, "slot_ttl_seconds"))
    admission.timer = threading.Timer(threshold, lambda: admission.hold(pool.acquire(1, ttl)))
    admission.timer.daemon = True
    admission.timer.start()
    return admission
