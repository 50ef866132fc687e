"""Request bodies read the way the real services' JSON readers do: strictly.

Both Graph and Salesforce answer a body that is not UTF-8, not JSON, nested beyond
reason, or carries non-numbers (NaN, Infinity, 1e999) with a 400 in their own envelope;
the views call `read_json` and turn BadJson into that envelope. A string the stores
cannot keep (U+0000, a lone surrogate: PostgreSQL's jsonb refuses both) is refused
(`unstorable` says why) before anything is written.
"""

from __future__ import annotations

import json
import math

from django.core.exceptions import RequestDataTooBig

MAX_DEPTH = 64  # far deeper than any Graph or Salesforce resource; Python's parser recurses


class BadJson(ValueError):
    def __init__(self, message: str, *, too_large: bool = False):
        super().__init__(message)
        self.message = message
        self.too_large = too_large


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BadJson(f"The number {text[:40]} is out of range.")
    return value


def _no_constant(name: str):
    raise BadJson(f"Unexpected token '{name}': not a JSON value.")


def _depth(raw: str) -> int:
    """The deepest bracket nesting outside strings, found without recursion."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in raw:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def read_json(request):
    """The body as JSON (None when empty); raises BadJson."""
    try:
        body = request.body
    except RequestDataTooBig:
        raise BadJson("The request body is too large.", too_large=True) from None
    if not body:
        return None
    try:
        raw = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadJson(f"The request body is not valid UTF-8 (byte {exc.start}).") from None
    raw = raw.removeprefix("\ufeff")
    if not raw.strip():
        return None
    if _depth(raw) > MAX_DEPTH:
        raise BadJson(f"The JSON is nested more than {MAX_DEPTH} levels deep.")
    try:
        return json.loads(raw, parse_float=_finite, parse_int=_int, parse_constant=_no_constant)
    except BadJson:
        raise
    except ValueError as exc:
        raise BadJson(f"Unexpected character at line {getattr(exc, 'lineno', 1)}, column "
                      f"{getattr(exc, 'colno', 1)}: the body is not valid JSON.") from None


def _int(text: str) -> int:
    if len(text) > 30:  # beyond any 64-bit value; also spares int() its digit limit
        raise BadJson(f"The number {text[:40]}... is out of range.")
    return int(text)


def unstorable(text: str) -> str:
    """Why the text cannot be stored ("" when it can)."""
    if "\x00" in text:
        return "contains the character U+0000"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains an unpaired surrogate"
    return ""
