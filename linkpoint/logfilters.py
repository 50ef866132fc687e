"""Logging filters: keep the request log readable for support."""

from __future__ import annotations

import logging


class ClientErrorWithoutTraceback(logging.Filter):
    """A 4xx response is the caller's mistake, not a crash: one warning line, no traceback.

    Django logs a PermissionDenied (403) with the exception's full traceback; in
    the dev server log an ordinary "you may not see this page" then reads like a
    crash. The exception's message stays in the line, so support still sees why.
    5xx records pass untouched, traceback included.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if not isinstance(status, int) or not 400 <= status < 500:
            return True
        if record.exc_info:
            exc = record.exc_info[1]
            reason = f" ({type(exc).__name__}: {exc})" if exc is not None and str(exc) else ""
            record.msg, record.args = record.getMessage() + reason, ()
            record.exc_info, record.exc_text = None, None
        if record.levelno > logging.WARNING:
            record.levelno, record.levelname = (
                logging.WARNING,
                logging.getLevelName(logging.WARNING),
            )
        return True
