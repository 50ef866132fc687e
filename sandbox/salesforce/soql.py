"""A SOQL subset: parse, check against the schema, evaluate over rows in Python.

    SELECT f1, f2, Rel.f3 | COUNT() FROM Event|Task|Contact|Account|User
      [WHERE cond] [ORDER BY f [ASC|DESC] [NULLS FIRST|LAST], ...] [LIMIT n] [OFFSET n]

cond: AND / OR / NOT and parentheses (mixing AND and OR at one level needs
parentheses, as in real SOQL), =, !=, <>, <, >, <=, >=, [NOT] IN (...), LIKE
with % and _, string / number / true / false / null literals, unquoted
date-time (`2024-01-01T00:00:00Z`, `+00:00`, `.000+0000`) and date literals,
and TODAY / YESTERDAY / TOMORROW / LAST_N_DAYS:n / NEXT_N_DAYS:n.

Rows are dicts of canonical field name → API value (datetimes as
`YYYY-MM-DDTHH:MM:SS.mmm+0000`, dates as `YYYY-MM-DD`), so equal-format strings
compare correctly; a relationship's row sits under `"@" + name` (e.g.
`row["@Account"]`). Errors carry the real error codes and message style.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from . import clock
from .ids import to18
from .schema import OBJECTS, Field, canonical_object, field_lookup, relationships

KEYWORDS = {
    "select", "from", "where", "and", "or", "not", "in", "like", "order", "by", "asc", "desc", "nulls",
    "first", "last", "limit", "offset", "true", "false", "null", "includes", "excludes", "group", "having",
}
STRINGISH = {"id", "reference", "string", "textarea", "email", "phone", "url", "picklist", "combobox"}
DATE_KEYWORDS = {"today", "yesterday", "tomorrow", "last_n_days", "next_n_days"}


class SoqlError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


# --- tokens ---------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2}(?![\dT]))
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*(?::\d+)?)
  | (?P<op>!=|<>|<=|>=|=|<|>)
  | (?P<punct>[(),])
    """,
    re.VERBOSE,
)


@dataclass
class Token:
    kind: str
    value: str
    pos: int

    @property
    def word(self) -> str:
        return self.value.lower() if self.kind == "ident" else ""


def _tokenize(text: str) -> list[Token]:
    tokens, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise _error_at(text, pos, "MALFORMED_QUERY", f"unexpected token: '{text[pos]}'")
        if m.lastgroup != "ws":
            tokens.append(Token(m.lastgroup, m.group(), pos))
        pos = m.end()
    tokens.append(Token("eof", "", len(text)))
    return tokens


def _error_at(text: str, pos: int, code: str, message: str) -> SoqlError:
    """Real SOQL errors echo the query line with a caret under the offending column."""
    row = text.count("\n", 0, pos) + 1
    line_start = text.rfind("\n", 0, pos) + 1
    line_end = text.find("\n", pos)
    line = text[line_start : line_end if line_end != -1 else len(text)]
    column = pos - line_start + 1
    return SoqlError(code, f"\n{line}\n{' ' * (column - 1)}^\nERROR at Row:{row}:Column:{column}\n{message}")


# --- the parsed query ---------------------------------------------------------------------


@dataclass(frozen=True)
class FieldRef:
    field: Field  # the field read on the row (or on the related row)
    relationship: Field | None = None  # the reference field followed, e.g. AccountId
    target: str = ""  # the related sObject type

    @property
    def key(self) -> str:
        return f"{self.relationship.relationship}.{self.field.name}" if self.relationship else self.field.name

    def value(self, row: dict):
        if self.relationship is None:
            return row.get(self.field.name)
        related = row.get("@" + self.relationship.relationship)
        return None if related is None else related.get(self.field.name)


@dataclass
class Compare:
    ref: FieldRef
    op: str
    value: object  # normalised literal; a (start, end) tuple for date ranges; a list for IN

    def test(self, row: dict) -> bool:
        actual = _norm(self.ref.field, self.ref.value(row))
        op, want = self.op, self.value
        if op in ("in", "not in"):
            hit = actual is not None and actual in want
            return hit if op == "in" else not hit
        if op == "like":
            return actual is not None and want.match(actual) is not None
        if isinstance(want, _Range):
            if actual is None:
                return op == "!="
            inside = want.start <= actual < want.end
            return {
                "=": inside, "!=": not inside, "<": actual < want.start, "<=": actual < want.end,
                ">": actual >= want.end, ">=": actual >= want.start,
            }[op]
        if op == "=":
            return actual == want
        if op == "!=":
            return actual != want
        if actual is None or want is None:
            return False
        return {"<": actual < want, "<=": actual <= want, ">": actual > want, ">=": actual >= want}[op]


@dataclass
class BoolOp:
    op: str  # and / or
    parts: list

    def test(self, row: dict) -> bool:
        if self.op == "and":
            return all(p.test(row) for p in self.parts)
        return any(p.test(row) for p in self.parts)


@dataclass
class Not:
    part: object

    def test(self, row: dict) -> bool:
        return not self.part.test(row)


@dataclass(frozen=True)
class _Range:
    start: str
    end: str


@dataclass
class OrderItem:
    ref: FieldRef
    descending: bool = False
    nulls_last: bool = False


@dataclass
class Query:
    text: str
    sobject: str
    select: list[FieldRef] = field(default_factory=list)
    count_only: bool = False
    where: object = None
    order: list[OrderItem] = field(default_factory=list)
    limit: int | None = None
    offset: int = 0

    # -- what the database can narrow down before Python evaluates the rest --
    def prefilter(self) -> dict:
        """Equality / range hints from top-level AND terms on indexed columns."""
        hints: dict = {}
        terms = self.where.parts if isinstance(self.where, BoolOp) and self.where.op == "and" else [self.where]
        for term in terms:
            if not isinstance(term, Compare) or term.ref.relationship is not None:
                continue
            name = term.ref.field.name
            if name == "LinkPoint_Key__c" and term.op in ("=", "in") and term.value is not None:
                hints["link_key_in"] = [term.value] if term.op == "=" else list(term.value)
            elif name == "Id" and term.op in ("=", "in") and term.value is not None:
                hints["id_in"] = [term.value] if term.op == "=" else list(term.value)
            elif name == "SystemModstamp" and term.op in (">", ">=") and isinstance(term.value, str):
                hints["modstamp_from"] = clock.parse_datetime(term.value)
        return hints

    def relationships_used(self) -> dict[str, FieldRef]:
        """Relationship name → a ref through it, for every relationship the query reads."""
        used: dict[str, FieldRef] = {}

        def visit(node):
            if isinstance(node, Compare) and node.ref.relationship:
                used.setdefault(node.ref.relationship.relationship, node.ref)
            elif isinstance(node, BoolOp):
                for p in node.parts:
                    visit(p)
            elif isinstance(node, Not):
                visit(node.part)

        for ref in self.select + [o.ref for o in self.order]:
            if ref.relationship:
                used.setdefault(ref.relationship.relationship, ref)
        visit(self.where)
        return used

    def matches(self, row: dict) -> bool:
        return self.where is None or self.where.test(row)

    def sort(self, rows: list[dict]) -> list[dict]:
        for item in reversed(self.order):
            rows.sort(key=lambda row, item=item: _order_key(item, row), reverse=item.descending)
        return rows

    def order_keys(self, row: dict) -> tuple:
        """The ORDER BY keys of one row, so rows can be sorted without being kept."""
        return tuple(_order_key(item, row) for item in self.order)

    def sort_keyed(self, entries: list[tuple[tuple, int]]) -> list[tuple[tuple, int]]:
        """`sort` over (order_keys(row), pk) pairs: the same stable passes, compact."""
        for i in reversed(range(len(self.order))):
            entries.sort(key=lambda e, i=i: e[0][i], reverse=self.order[i].descending)
        return entries

    def window(self, rows: list) -> list:
        rows = rows[self.offset :]
        return rows if self.limit is None else rows[: self.limit]

    def project(self, row: dict, *, url_prefix: str) -> dict:
        out = {"attributes": {"type": self.sobject, "url": f"{url_prefix}/sobjects/{self.sobject}/{row['Id']}"}}
        for ref in self.select:
            if ref.relationship is None:
                out[ref.field.name] = row.get(ref.field.name)
                continue
            rel = ref.relationship.relationship
            related = row.get("@" + rel)
            if related is None:
                out[rel] = None
                continue
            nested = out.get(rel)
            if nested is None:
                nested = out[rel] = {
                    "attributes": {"type": ref.target, "url": f"{url_prefix}/sobjects/{ref.target}/{related['Id']}"}
                }
            nested[ref.field.name] = related.get(ref.field.name)
        return out


def _norm(f: Field, value):
    """The comparable form of a row value: strings case-folded unless the field is case-sensitive."""
    if value is None:
        return None
    if f.type in ("id", "reference"):
        return value
    if f.type in STRINGISH and not f.case_sensitive:
        return value.casefold()
    if f.type in ("int", "double"):
        return float(value)
    return value


# --- parser ---------------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0
        self.sobject = ""

    # token helpers
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def unexpected(self, tok: Token | None = None) -> SoqlError:
        tok = tok or self.tok
        shown = "<EOF>" if tok.kind == "eof" else tok.value
        return _error_at(self.text, tok.pos, "MALFORMED_QUERY", f"unexpected token: '{shown}'")

    def expect_word(self, word: str) -> Token:
        if self.tok.word != word:
            raise self.unexpected()
        return self.advance()

    def accept_word(self, word: str) -> bool:
        if self.tok.word == word:
            self.advance()
            return True
        return False

    def expect_punct(self, char: str) -> Token:
        if not (self.tok.kind == "punct" and self.tok.value == char):
            raise self.unexpected()
        return self.advance()

    # grammar
    def parse(self) -> Query:
        self.expect_word("select")
        raw_select: list[Token] = []
        count_only = False
        if self.tok.word == "count" and self.tokens[self.i + 1].value == "(":
            self.advance()
            self.expect_punct("(")
            self.expect_punct(")")
            count_only = True
        else:
            while True:
                if self.tok.kind != "ident" or self.tok.word in KEYWORDS:
                    raise self.unexpected()
                raw_select.append(self.advance())
                if self.tok.value != ",":
                    break
                self.advance()
        self.expect_word("from")
        obj_tok = self.advance()
        if obj_tok.kind != "ident" or obj_tok.word in KEYWORDS:
            raise self.unexpected(obj_tok)
        sobject = canonical_object(obj_tok.value)
        if sobject is None:
            raise _error_at(
                self.text, obj_tok.pos, "INVALID_TYPE",
                f"sObject type '{obj_tok.value}' is not supported. If you are attempting to use a custom object, "
                "be sure to append the '__c' after the entity name. Please reference your WSDL or the describe "
                "call for the appropriate names.",
            )
        self.sobject = sobject
        query = Query(text=self.text, sobject=sobject, count_only=count_only)
        seen = set()
        for tok in raw_select:
            ref = self.resolve(tok)
            if ref.key not in seen:
                seen.add(ref.key)
                query.select.append(ref)
        if self.accept_word("where"):
            query.where = self.condition()
        if self.tok.word == "order":
            self.advance()
            self.expect_word("by")
            while True:
                tok = self.advance()
                if tok.kind != "ident" or tok.word in KEYWORDS:
                    raise self.unexpected(tok)
                item = OrderItem(ref=self.resolve(tok, purpose="sort"))
                if self.accept_word("desc"):
                    item.descending = True
                else:
                    self.accept_word("asc")
                if self.accept_word("nulls"):
                    if self.accept_word("last"):
                        item.nulls_last = True
                    else:
                        self.expect_word("first")
                query.order.append(item)
                if self.tok.value != ",":
                    break
                self.advance()
        if self.accept_word("limit"):
            query.limit = self.integer()
        if self.accept_word("offset"):
            query.offset = self.integer()
            if query.offset > 2000:
                raise SoqlError("NUMBER_OUTSIDE_VALID_RANGE", "Maximum SOQL offset allowed is 2000")
        if self.tok.kind != "eof":
            raise self.unexpected()
        return query

    def integer(self) -> int:
        tok = self.advance()
        if tok.kind != "number" or not tok.value.isdigit():
            raise self.unexpected(tok)
        return int(tok.value)

    def resolve(self, tok: Token, purpose: str = "select") -> FieldRef:
        parts = tok.value.split(".")
        if len(parts) > 1 and parts[0].lower() == self.sobject.lower():
            parts = parts[1:]  # `Contact.Email` on FROM Contact
        lookup = field_lookup(self.sobject)
        if len(parts) == 1:
            f = lookup.get(parts[0].lower())
            if f is None:
                raise self._no_column(tok, parts[0], self.sobject)
            return FieldRef(field=f)
        if len(parts) == 2:
            rel = relationships(self.sobject).get(parts[0].lower())
            if rel is None:
                raise _error_at(
                    self.text, tok.pos, "INVALID_FIELD",
                    f"Didn't understand relationship '{parts[0]}' in field path. If you are attempting to use a "
                    "custom relationship, be sure to append the '__r' after the custom relationship name. Please "
                    "reference your WSDL or the describe call for the appropriate names.",
                )
            target = rel.reference_to[0]
            f = field_lookup(target).get(parts[1].lower())
            if f is None:
                raise self._no_column(tok, parts[1], target)
            return FieldRef(field=f, relationship=rel, target=target)
        raise _error_at(self.text, tok.pos, "INVALID_FIELD", f"Didn't understand relationship '{parts[0]}' in field path.")

    def _no_column(self, tok: Token, name: str, sobject: str) -> SoqlError:
        return _error_at(
            self.text, tok.pos, "INVALID_FIELD",
            f"No such column '{name}' on entity '{sobject}'. If you are attempting to use a custom field, be sure "
            "to append the '__c' after the custom field name. Please reference your WSDL or the describe call for "
            "the appropriate names.",
        )

    def condition(self):
        parts = [self.unary()]
        connective = None
        while self.tok.word in ("and", "or"):
            word = self.tok.word
            if connective and word != connective:
                raise self.unexpected()  # SOQL needs parentheses to mix AND and OR
            connective = word
            self.advance()
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else BoolOp(connective, parts)

    def unary(self):
        if self.accept_word("not"):
            return Not(self.unary())
        if self.tok.kind == "punct" and self.tok.value == "(":
            self.advance()
            inner = self.condition()
            self.expect_punct(")")
            return inner
        return self.comparison()

    def comparison(self) -> Compare:
        tok = self.advance()
        if tok.kind != "ident" or tok.word in KEYWORDS:
            raise self.unexpected(tok)
        ref = self.resolve(tok, purpose="filter")
        f = ref.field
        if f.type == "textarea" and f.length > 255:
            raise _error_at(self.text, tok.pos, "INVALID_FIELD", f"field '{f.name}' can not be filtered in a query call")
        if self.tok.word == "not" and self.tokens[self.i + 1].word == "in":
            self.advance()
            self.advance()
            return Compare(ref, "not in", self.value_list(ref))
        if self.accept_word("in"):
            return Compare(ref, "in", self.value_list(ref))
        if self.accept_word("like"):
            lit = self.advance()
            if lit.kind != "string":
                raise self.unexpected(lit)
            if f.type not in STRINGISH:
                raise _error_at(self.text, lit.pos, "INVALID_FIELD",
                                f"Invalid operator on {f.type} field: LIKE can only be used on string fields")
            return Compare(ref, "like", _like(_unquote(lit.value)))
        if self.tok.kind != "op":
            raise self.unexpected()
        op = self.advance().value
        op = "!=" if op == "<>" else op
        value = self.literal(ref)
        if isinstance(value, list):
            raise self.unexpected()
        return Compare(ref, op, value)

    def value_list(self, ref: FieldRef) -> set:
        self.expect_punct("(")
        values = set()
        while True:
            value = self.literal(ref)
            if isinstance(value, _Range):
                raise self.unexpected()
            values.add(value)
            if self.tok.value != ",":
                break
            self.advance()
        self.expect_punct(")")
        return values

    def literal(self, ref: FieldRef):
        tok = self.advance()
        f = ref.field
        kind = tok.kind
        if kind == "ident" and tok.word in ("true", "false", "null"):
            kind = tok.word if tok.word == "null" else "boolean"
        elif kind == "ident" and tok.word.split(":")[0] in DATE_KEYWORDS:
            kind = "datekeyword"
        elif kind not in ("string", "number", "datetime", "date"):
            raise self.unexpected(tok)
        if kind == "null":
            return None

        def mismatch(expected: str, quoted: bool):
            note = "should be enclosed in quotes" if quoted else "should not be enclosed in quotes"
            return _error_at(self.text, tok.pos, "INVALID_FIELD",
                             f"value of filter criterion for field '{f.name}' must be of type {expected} and {note}")

        if f.type in STRINGISH:
            if kind != "string":
                raise mismatch("string" if f.type not in ("id", "reference") else "id", True)
            text = _unquote(tok.value)
            if f.type in ("id", "reference"):
                full = to18(text)
                if full is None:
                    raise _error_at(self.text, tok.pos, "INVALID_QUERY_FILTER_OPERATOR", f"invalid ID field: {text}")
                return full
            return text if f.case_sensitive else text.casefold()
        if f.type == "boolean":
            if kind != "boolean":
                raise mismatch("boolean", False)
            return tok.word == "true"
        if f.type in ("int", "double"):
            if kind != "number":
                raise mismatch("double" if f.type == "double" else "integer", False)
            return float(tok.value)
        if f.type == "datetime":
            if kind == "datekeyword":
                return self.date_range(tok, datetimes=True)
            if kind != "datetime":
                raise mismatch("dateTime", False)
            return clock.fmt_datetime(clock.parse_datetime(tok.value))
        if f.type == "date":
            if kind == "datekeyword":
                return self.date_range(tok, datetimes=False)
            if kind != "date":
                raise mismatch("date", False)
            return tok.value
        raise self.unexpected(tok)

    def date_range(self, tok: Token, *, datetimes: bool) -> _Range:
        word, _, n = tok.value.lower().partition(":")
        today = clock.now().date()
        if word in ("last_n_days", "next_n_days") and not n:
            raise self.unexpected(tok)
        start, days = {
            "today": (today, 1),
            "yesterday": (today - dt.timedelta(days=1), 1),
            "tomorrow": (today + dt.timedelta(days=1), 1),
            "last_n_days": (today - dt.timedelta(days=int(n or 0)), int(n or 0) + 1),
            "next_n_days": (today + dt.timedelta(days=1), int(n or 0)),
        }[word]
        end = start + dt.timedelta(days=days)
        if datetimes:
            as_dt = lambda d: clock.fmt_datetime(dt.datetime(d.year, d.month, d.day, tzinfo=clock.UTC))  # noqa: E731
            return _Range(as_dt(start), as_dt(end))
        return _Range(start.isoformat(), end.isoformat())


def _unquote(literal: str) -> str:
    body = literal[1:-1]
    escapes = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}
    return re.sub(r"\\(.)", lambda m: escapes.get(m.group(1), "\\" + m.group(1)), body)


def _like(pattern: str) -> re.Pattern:
    out = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern) and pattern[i + 1] in "%_":
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if char == "%" else "." if char == "_" else re.escape(char))
        i += 1
    return re.compile("".join(out), re.DOTALL | re.IGNORECASE)


def parse(text: str) -> Query:
    """Parse and check a SOQL statement; raises SoqlError (MALFORMED_QUERY, INVALID_FIELD, INVALID_TYPE)."""
    if not text or not text.strip():
        raise SoqlError("MALFORMED_QUERY", "SOQL statement cannot be empty")
    return _Parser(text).parse()


__all__ = ["OBJECTS", "Query", "SoqlError", "parse"]


def _order_key(item, row: dict) -> tuple:
    value = _norm(item.ref.field, item.ref.value(row))
    if value is None:
        # Nulls first by default, in either direction, unless NULLS LAST.
        first = not item.nulls_last
        return (0 if first != item.descending else 2, 0)
    return (1, value)
