"""A SOSL subset for `GET /search/?q=`: the text search the Relate panel needs.

    FIND {terms} [IN ALL|NAME|EMAIL|PHONE FIELDS]
      [RETURNING Object[(field, ... [LIMIT n])], ...] [LIMIT n]

Inside the braces, per the SOSL reference, the characters
``? & | ! { } [ ] ( ) ^ ~ * : \\ " ' + -`` are reserved: a backslash makes one
literal. The sandbox reads `*` (any run) and `?` (one character) as
wildcards and `"…"` as a phrase; every other unescaped reserved character is
a MALFORMED_SEARCH, and so is a backslash before an ordinary character.
Words are AND-ed, `OR` between words makes alternatives. Like the real search
engine, record text is split into tokens at spaces and punctuation and a word
matches whole tokens (case-insensitively); wildcards stretch a token.
The answer is ``{"searchRecords": [{"attributes": {...}, "Id": ...}, ...]}``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .schema import OBJECTS, SEARCH_EMAIL_FIELDS, SEARCH_NAME_FIELDS, canonical_object, field_lookup

RESERVED = set("?&|!{}[]()^~*:\\\"'+-")
DEFAULT_LIMIT = 2000
_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)


class SoslError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Returning:
    sobject: str
    fields: tuple[str, ...]
    limit: int | None


@dataclass(frozen=True)
class Search:
    groups: tuple[tuple[re.Pattern, ...], ...]  # OR of AND-ed word patterns
    scope: str  # all, name, email, phone
    returning: tuple[Returning, ...]
    limit: int


def _malformed(text: str, pos: int, char: str) -> SoslError:
    return SoslError("MALFORMED_SEARCH", f"line 1:{pos}: no viable alternative at character '{char}'")


def _terms(text: str, start: int) -> tuple[list[list[str]], int]:
    """Words of the FIND clause (raw, wildcards kept as * and ?) in OR-groups; the index after '}'."""
    groups: list[list[str]] = [[]]
    word: list[str] = []
    i, phrase = start, False

    def flush():
        if word:
            w = "".join(word)
            word.clear()
            if not phrase and w == "OR":
                groups.append([])
            elif not phrase and w == "AND":
                pass
            else:
                groups[-1].append(w)

    while i < len(text):
        c = text[i]
        if c == "\\":
            nxt = text[i + 1] if i + 1 < len(text) else ""
            if nxt not in RESERVED:
                raise SoslError("MALFORMED_SEARCH", f"line 1:{i}: invalid escape sequence '\\{nxt}'")
            word.append("\x00" + nxt)  # a literal reserved character, never a wildcard
            i += 2
            continue
        if c == "}" and not phrase:
            flush()
            return groups, i + 1
        if c == '"':
            flush()
            phrase = not phrase
        elif c in ("*", "?"):
            word.append(c)
        elif c in RESERVED:
            raise _malformed(text, i, c)
        elif c.isspace():
            flush()
        else:
            word.append(c)
        i += 1
    raise SoslError("MALFORMED_SEARCH", "line 1:0: mismatched character '<EOF>' expecting '}'")


def _pattern(word: str) -> list[re.Pattern]:
    """One search word → patterns over record tokens (punctuation splits a word into several)."""
    out: list[str] = []
    i = 0
    chars: list[str] = []
    while i < len(word):
        c = word[i]
        if c == "\x00":
            chars.append(" ")  # an escaped reserved character is punctuation: it splits tokens
            i += 2
            continue
        chars.append(c)
        i += 1
    for part in re.split(r"[^\w*?]+|_", "".join(chars)):
        if part.strip("*?"):
            out.append("".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch.lower())
                               for ch in part))
    return [re.compile(f"^{p}$") for p in out]


def parse(text: str) -> Search:
    m = re.match(r"\s*FIND\s*\{", text, re.IGNORECASE)
    if not m:
        raise SoslError("MALFORMED_SEARCH", "unexpected token: missing FIND {...}")
    raw_groups, pos = _terms(text, m.end())
    letters = sum(ch.isalnum() for g in raw_groups for w in g for ch in w)
    if letters < 2:
        raise SoslError("INVALID_SEARCH", "search term must be longer than one character")
    groups = tuple(tuple(p for w in g for p in _pattern(w)) for g in raw_groups if g)
    rest = text[pos:]
    scope = "all"
    if sm := re.match(r"\s*IN\s+(ALL|NAME|EMAIL|PHONE)\s+FIELDS", rest, re.IGNORECASE):
        scope, rest = sm.group(1).lower(), rest[sm.end():]
    returning: list[Returning] = []
    if rm := re.match(r"\s*RETURNING\s+", rest, re.IGNORECASE):
        rest = rest[rm.end():]
        while True:
            om = re.match(r"\s*([A-Za-z][A-Za-z0-9_]*)\s*", rest)
            if not om:
                raise SoslError("MALFORMED_SEARCH", "unexpected token after RETURNING")
            name = canonical_object(om.group(1))
            if name is None or name not in SEARCH_NAME_FIELDS:
                raise SoslError("INVALID_TYPE", f"sObject type '{om.group(1)}' is not supported.")
            rest = rest[om.end():]
            fields, limit = ("Id",), None
            if rest.startswith("("):
                close = rest.find(")")
                if close < 0:
                    raise SoslError("MALFORMED_SEARCH", "mismatched parentheses in RETURNING")
                inner, rest = rest[1:close], rest[close + 1:]
                if lm := re.search(r"\s+LIMIT\s+(\d+)\s*$", inner, re.IGNORECASE):
                    limit, inner = int(lm.group(1)), inner[:lm.start()]
                lookup = field_lookup(name)
                names = []
                for raw in (p.strip() for p in inner.split(",")):
                    f = lookup.get(raw.lower())
                    if f is None:
                        raise SoslError("INVALID_FIELD", f"No such column '{raw}' on entity '{name}'.")
                    names.append(f.name)
                fields = tuple(names)
            returning.append(Returning(name, fields, limit))
            if cm := re.match(r"\s*,\s*", rest):
                rest = rest[cm.end():]
                continue
            break
    else:
        returning = [Returning(n, ("Id",), None) for n in SEARCH_NAME_FIELDS]
    limit = DEFAULT_LIMIT
    if lm := re.match(r"\s*LIMIT\s+(\d+)", rest, re.IGNORECASE):
        limit, rest = min(int(lm.group(1)), DEFAULT_LIMIT), rest[lm.end():]
    if rest.strip():
        raise SoslError("MALFORMED_SEARCH", f"unexpected token: '{rest.strip().split()[0]}'")
    return Search(groups=groups, scope=scope, returning=tuple(returning), limit=limit)


def _searched(sobject: str, scope: str) -> tuple[str, ...]:
    if scope == "name":
        return SEARCH_NAME_FIELDS[sobject]
    if scope == "email":
        return SEARCH_EMAIL_FIELDS.get(sobject, ())
    if scope == "phone":
        return tuple(n for n, f in OBJECTS[sobject].items() if f.type == "phone")
    return tuple(n for n, f in OBJECTS[sobject].items()
                 if f.type in ("string", "textarea", "email", "phone", "picklist", "combobox"))


def matches(search: Search, sobject: str, row: dict) -> bool:
    tokens = [t.lower() for name in _searched(sobject, search.scope)
              for t in _TOKEN.findall(str(row.get(name) or ""))]
    return any(all(any(p.match(t) for t in tokens) for p in group) for group in search.groups if group)


__all__ = ["RESERVED", "Returning", "Search", "SoslError", "matches", "parse"]
