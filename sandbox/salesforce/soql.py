"""A SOQL subset: tokenizer and recursive-descent parser to a small AST.

Covered: ``SELECT f1, f2 | COUNT() FROM Obj [WHERE ...] [ORDER BY f [ASC|DESC] [NULLS FIRST|LAST],
...] [LIMIT n] [OFFSET n]`` with AND/OR/NOT and parentheses, = != <> < <= > >=, [NOT] IN,
LIKE, null, booleans, numbers, strings, date and datetime literals and the relative date
literals TODAY, YESTERDAY, TOMORROW, LAST_N_DAYS:n, NEXT_N_DAYS:n, N_DAYS_AGO:n. Anything
else (relationship fields, aggregates, GROUP BY, semi-joins, bind variables...) is refused
with MALFORMED_QUERY: a wrong answer would be worse than none. As in Salesforce, AND and OR
cannot be mixed at one level without parentheses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sandbox.salesforce.errors import SalesforceError


class SoqlError(SalesforceError):
    def __init__(self, message: str, code: str = "MALFORMED_QUERY") -> None:
        super().__init__(400, code, message)


# ---------------------------------------------------------------------------------------
# AST
@dataclass(frozen=True)
class Literal:
    kind: str  # string | number | boolean | null | date | datetime | relative
    value: Any
    n: int | None = None  # for LAST_N_DAYS:n and friends


@dataclass(frozen=True)
class Comparison:
    field: str
    op: str  # = != < <= > >= LIKE
    value: Literal


@dataclass(frozen=True)
class InList:
    field: str
    negated: bool
    values: tuple[Literal, ...]


@dataclass(frozen=True)
class BoolOp:
    op: str  # AND | OR
    items: tuple[Any, ...]


@dataclass(frozen=True)
class Not:
    item: Any


@dataclass(frozen=True)
class OrderItem:
    field: str
    descending: bool = False
    nulls_last: bool = False


@dataclass
class Query:
    object: str
    fields: list[str] = field(default_factory=list)
    count_only: bool = False
    where: Any = None
    order_by: list[OrderItem] = field(default_factory=list)
    limit: int | None = None
    offset: int | None = None


# ---------------------------------------------------------------------------------------
# Tokens
_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})(?![\dT])
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<op>!=|<>|<=|>=|=|<|>)
  | (?P<punct>[(),:])
    """,
    re.VERBOSE,
)

RELATIVE_DATES = {"TODAY", "YESTERDAY", "TOMORROW"}
RELATIVE_N_DATES = {"LAST_N_DAYS", "NEXT_N_DAYS", "N_DAYS_AGO"}
_UNSUPPORTED_CLAUSES = {
    "GROUP", "HAVING", "WITH", "FOR", "USING", "TYPEOF", "INCLUDES", "EXCLUDES", "UPDATE", "SCOPE",
}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    pos: int

    @property
    def upper(self) -> str:
        return self.text.upper()


def tokenize(soql: str) -> list[Token]:
    tokens, pos = [], 0
    while pos < len(soql):
        match = _TOKEN_RE.match(soql, pos)
        if not match:
            raise SoqlError(f"unexpected character {soql[pos]!r} at column {pos + 1}")
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append(Token(kind, match.group(), pos))
        pos = match.end()
    return tokens


def _unescape(raw: str) -> str:
    body, out, i = raw[1:-1], [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            nxt = body[i + 1]
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
            elif nxt in "%_":
                out.append("\\" + nxt)  # kept escaped: only meaningful inside LIKE
            else:
                raise SoqlError(f"Invalid string literal {raw}: illegal escape sequence \\{nxt}")
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


# ---------------------------------------------------------------------------------------
# Parser
class _Parser:
    def __init__(self, soql: str) -> None:
        self.soql = soql
        self.tokens = tokenize(soql)
        self.i = 0

    def peek(self, offset: int = 0) -> Token | None:
        j = self.i + offset
        return self.tokens[j] if j < len(self.tokens) else None

    def next(self) -> Token:
        tok = self.peek()
        if tok is None:
            raise SoqlError("unexpected end of query")
        self.i += 1
        return tok

    def at_keyword(self, *words: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == "ident" and tok.upper in words

    def expect_keyword(self, word: str) -> None:
        tok = self.next()
        if tok.kind != "ident" or tok.upper != word:
            raise SoqlError(f"unexpected token: '{tok.text}' (expected {word})")

    def expect_punct(self, char: str) -> None:
        tok = self.next()
        if tok.text != char:
            raise SoqlError(f"unexpected token: '{tok.text}' (expected '{char}')")

    def field_name(self) -> str:
        tok = self.next()
        if tok.kind != "ident":
            raise SoqlError(f"unexpected token: '{tok.text}' (expected a field name)")
        if "." in tok.text:
            raise SoqlError(f"relationship field {tok.text} is not supported by the sandbox's SOQL subset")
        return tok.text

    def parse(self) -> Query:
        self.expect_keyword("SELECT")
        query = Query(object="")
        if self.at_keyword("COUNT") and self.peek(1) is not None and self.peek(1).text == "(":  # type: ignore[union-attr]
            self.next()
            self.expect_punct("(")
            if self.peek() is not None and self.peek().text != ")":  # type: ignore[union-attr]
                raise SoqlError("only COUNT() is supported by the sandbox (no COUNT(field) aggregates)")
            self.expect_punct(")")
            query.count_only = True
        else:
            while True:
                tok = self.peek()
                if tok is not None and tok.text == "(":
                    raise SoqlError("nested (child relationship) queries are not supported by the sandbox")
                if self.at_keyword("FIELDS", "TYPEOF") or (self.peek(1) is not None and self.peek(1).text == "("):  # type: ignore[union-attr]
                    raise SoqlError(f"{self.peek().text}(...) is not supported by the sandbox")  # type: ignore[union-attr]
                name = self.field_name()
                if name.upper() == "FROM":
                    raise SoqlError("unexpected token: 'FROM' (expected a field name)")
                if any(existing.lower() == name.lower() for existing in query.fields):
                    raise SoqlError(f"duplicate field selected: {name}")
                query.fields.append(name)
                if self.peek() is not None and self.peek().text == ",":  # type: ignore[union-attr]
                    self.next()
                    continue
                break
        self.expect_keyword("FROM")
        obj = self.next()
        if obj.kind != "ident" or "." in obj.text:
            raise SoqlError(f"unexpected token: '{obj.text}' (expected an object name)")
        query.object = obj.text
        if self.peek() is not None and self.peek().text == ",":  # type: ignore[union-attr]
            raise SoqlError("queries over several objects are not supported")
        if self.at_keyword("WHERE"):
            self.next()
            query.where = self.condition()
        if self.at_keyword("ORDER"):
            self.next()
            self.expect_keyword("BY")
            query.order_by = self.order_list()
        if self.at_keyword("LIMIT"):
            self.next()
            query.limit = self.integer("LIMIT")
        if self.at_keyword("OFFSET"):
            self.next()
            query.offset = self.integer("OFFSET")
            if query.offset > 2000:
                raise SoqlError("maximum SOQL offset allowed is 2000", code="NUMBER_OUTSIDE_VALID_RANGE")
        tok = self.peek()
        if tok is not None:
            if tok.kind == "ident" and tok.upper in _UNSUPPORTED_CLAUSES:
                raise SoqlError(f"{tok.upper} clauses are not supported by the sandbox's SOQL subset")
            raise SoqlError(f"unexpected token: '{tok.text}'")
        return query

    def integer(self, clause: str) -> int:
        tok = self.next()
        if tok.kind != "number" or not tok.text.isdigit():
            raise SoqlError(f"{clause} needs a non-negative integer, got '{tok.text}'")
        return int(tok.text)

    def order_list(self) -> list[OrderItem]:
        items = []
        while True:
            name = self.field_name()
            descending = False
            if self.at_keyword("ASC", "DESC"):
                descending = self.next().upper == "DESC"
            nulls_last = False
            if self.at_keyword("NULLS"):
                self.next()
                tok = self.next()
                if tok.upper not in ("FIRST", "LAST"):
                    raise SoqlError(f"unexpected token: '{tok.text}' (expected FIRST or LAST)")
                nulls_last = tok.upper == "LAST"
            items.append(OrderItem(name, descending, nulls_last))
            if self.peek() is not None and self.peek().text == ",":  # type: ignore[union-attr]
                self.next()
                continue
            return items

    def condition(self) -> Any:
        first = self.unary()
        items, op = [first], None
        while self.at_keyword("AND", "OR"):
            word = self.next().upper
            if op is not None and word != op:
                raise SoqlError(f"unexpected token: '{word}' (use parentheses to mix AND and OR)")
            op = word
            items.append(self.unary())
        return first if op is None else BoolOp(op, tuple(items))

    def unary(self) -> Any:
        if self.at_keyword("NOT"):
            self.next()
            return Not(self.unary())
        tok = self.peek()
        if tok is not None and tok.text == "(":
            self.next()
            inner = self.condition()
            self.expect_punct(")")
            return inner
        return self.predicate()

    def predicate(self) -> Any:
        name = self.field_name()
        tok = self.next()
        if tok.kind == "op":
            op = "!=" if tok.text == "<>" else tok.text
            return Comparison(name, op, self.literal())
        word = tok.upper if tok.kind == "ident" else ""
        if word == "LIKE":
            return Comparison(name, "LIKE", self.literal())
        if word == "NOT" and self.at_keyword("IN"):
            self.next()
            return InList(name, True, self.literal_list())
        if word == "IN":
            return InList(name, False, self.literal_list())
        if word in ("INCLUDES", "EXCLUDES"):
            raise SoqlError(f"{word} (multi-select picklists) is not supported by the sandbox")
        raise SoqlError(f"unexpected token: '{tok.text}' (expected an operator)")

    def literal_list(self) -> tuple[Literal, ...]:
        self.expect_punct("(")
        if self.at_keyword("SELECT"):
            raise SoqlError("semi-join subqueries (IN (SELECT ...)) are not supported by the sandbox")
        values = [self.literal()]
        while self.peek() is not None and self.peek().text == ",":  # type: ignore[union-attr]
            self.next()
            values.append(self.literal())
        self.expect_punct(")")
        return tuple(values)

    def literal(self) -> Literal:
        tok = self.next()
        if tok.kind == "string":
            return Literal("string", _unescape(tok.text))
        if tok.kind == "number":
            return Literal("number", float(tok.text) if "." in tok.text else int(tok.text))
        if tok.kind == "date":
            return Literal("date", tok.text)
        if tok.kind == "datetime":
            return Literal("datetime", tok.text)
        if tok.kind == "punct" and tok.text == ":":
            raise SoqlError("bind variables (:name) only exist in Apex, not in API queries")
        if tok.kind == "ident":
            word = tok.upper
            if word in ("TRUE", "FALSE"):
                return Literal("boolean", word == "TRUE")
            if word == "NULL":
                return Literal("null", None)
            if word in RELATIVE_DATES:
                return Literal("relative", word)
            if word in RELATIVE_N_DATES:
                self.expect_punct(":")
                n_tok = self.next()
                if n_tok.kind != "number" or not n_tok.text.isdigit():
                    raise SoqlError(f"{word} needs a whole number of days, e.g. {word}:7")
                return Literal("relative", word, int(n_tok.text))
            raise SoqlError(f"unexpected token: '{tok.text}' (unsupported literal or date function)")
        raise SoqlError(f"unexpected token: '{tok.text}' (expected a value)")


def parse(soql: str) -> Query:
    """Parse ``soql`` or raise ``SoqlError`` (MALFORMED_QUERY) saying what is wrong."""
    if not soql or not soql.strip():
        raise SoqlError("empty query")
    return _Parser(soql).parse()
