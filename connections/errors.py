"""Typed remote errors: the contract between the clients and the sync engine.

Messages are plain words from the remote service's error body; never a token.
"""

from __future__ import annotations


class RemoteError(Exception):
    side: str = ""

    def __init__(
        self,
        message: str = "",
        *,
        side: str = "",
        status: int | None = None,
        code: str = "",
    ):
        super().__init__(message)
        self.message = message
        self.side = side or self.side
        self.status = status
        self.code = code

    def __str__(self) -> str:
        head = " ".join(str(x) for x in (self.side, self.status, self.code) if x)
        return f"{head}: {self.message}" if head else self.message


class AuthError(RemoteError):
    """The stored credentials no longer work; the connection is already `needs_reauth`."""


class ConsentRequired(AuthError):
    """A permission is missing (Graph 403 ErrorAccessDenied, Entra AADSTS65001): the sign-in works,
    consent must be given again; the connection is already `needs_consent`."""


class RateLimited(RemoteError):
    def __init__(self, message: str = "", *, retry_after: float = 0, **kw):
        super().__init__(message, **kw)
        self.retry_after = retry_after


class Throttled(RateLimited):
    """The service asked for a longer pause than a run waits (a Retry-After past
    `connections.http.MAX_RETRY_AFTER`, as Graph's 10,000 requests per 10 minutes per app and
    mailbox answers): the run stops with what it wrote kept, and the next one waits
    `retry_after` seconds. Sending on would only be refused again (and Graph counts refused
    requests against the same budget)."""


class TransientError(RemoteError):
    """5xx, timeout or lost connection after retries: a write may or may not have happened."""


class NotFound(RemoteError):
    pass


class PreconditionFailed(RemoteError):
    pass


class SyncStateGone(RemoteError):
    pass


class RequestLimitExceeded(RemoteError):
    pass


class ValidationFailed(RemoteError):
    def __init__(self, message: str = "", *, fields: list[str] | tuple[str, ...] = (), **kw):
        super().__init__(message, **kw)
        self.fields = list(fields)


# What ends a run rather than one item's write: the sign-in, Salesforce's daily limit, a
# service asking for a long pause.
RUN_STOPPERS: tuple[type[RemoteError], ...] = (AuthError, RequestLimitExceeded, Throttled)
