"""Compile a parsed SOQL query to parameterized SQLite SQL over the object's table.

SOQL semantics kept: field names are case-insensitive; text comparisons are
case-insensitive (ids compare exactly, so ``Id > '...'`` keyset paging agrees with
``ORDER BY Id``); a comparison with a null field is simply false and ``!=`` / ``NOT IN``
match nulls, so every predicate is two-valued and ``NOT`` behaves; ``ORDER BY`` puts
nulls first unless told otherwise; relative date literals are day ranges in the org's
time zone (UTC in the sandbox). Types are checked against the field registry, as
Salesforce does, before anything runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sandbox.salesforce.schema import NUMBER_TYPES, SfField, SfObject
from sandbox.salesforce.soql import BoolOp, Comparison, InList, Literal, Not, Query, SoqlError
from sandbox.salesforce.values import format_datetime, parse_datetime
from sandbox.storage import quote_ident
from store.ids import InvalidSalesforceId, to_18


@dataclass(frozen=True)
class CompiledQuery:
    obj: SfObject
    fields: list[SfField]
    count_only: bool
    rowid_sql: str  # SELECT rowid ... in result order (or COUNT(*) for count_only)
    params: tuple[Any, ...]


def invalid_field(name: str, obj: SfObject) -> SoqlError:
    return SoqlError(
        f"No such column '{name}' on entity '{obj.name}'. If you are attempting to use a custom field, "
        "be sure to append the '__c' after the custom field name. Please reference your WSDL or the "
        "describe call for the appropriate names.",
        code="INVALID_FIELD",
    )


def _filter_error(message: str) -> SoqlError:
    return SoqlError(message, code="INVALID_QUERY_FILTER_OPERATOR")


class _Compiler:
    def __init__(self, obj: SfObject, now: datetime) -> None:
        self.obj = obj
        self.now = now.astimezone(UTC)
        self.params: list[Any] = []

    def field(self, name: str) -> SfField:
        f = self.obj.field(name)
        if f is None:
            raise invalid_field(name, self.obj)
        return f

    def column(self, f: SfField) -> str:
        return quote_ident(f.name)

    @staticmethod
    def collate(f: SfField) -> str:
        return " COLLATE NOCASE" if f.type in ("string", "textarea", "email", "url", "phone", "picklist") else ""

    # -- values --------------------------------------------------------------------------
    def scalar(self, f: SfField, lit: Literal) -> Any:
        """The stored form of a literal compared with ``f``; errors on a type mismatch."""
        t, kind = f.type, lit.kind
        if kind == "null":
            return None
        if t == "boolean":
            if kind != "boolean":
                raise _filter_error(f"value of filter criterion for field '{f.name}' must be of type boolean")
            return 1 if lit.value else 0
        if t in NUMBER_TYPES:
            if kind != "number":
                raise _filter_error(
                    f"value of filter criterion for field '{f.name}' must be of type {t} "
                    "and should not be enclosed in quotes"
                )
            return lit.value
        if t == "datetime":
            if kind != "datetime":
                raise _filter_error(
                    f"value of filter criterion for field '{f.name}' must be of type dateTime "
                    "and should not be enclosed in quotes"
                )
            return format_datetime(parse_datetime(lit.value))
        if t == "date":
            if kind != "date":
                raise _filter_error(
                    f"value of filter criterion for field '{f.name}' must be of type date "
                    "and should not be enclosed in quotes"
                )
            try:
                return date.fromisoformat(lit.value).isoformat()
            except ValueError:
                raise _filter_error(f"invalid date: {lit.value}") from None
        if kind != "string":
            raise _filter_error(f"value of filter criterion for field '{f.name}' must be of type string")
        if t in ("id", "reference"):
            try:
                return to_18(lit.value)
            except InvalidSalesforceId:
                raise _filter_error(f"invalid ID field: {lit.value}") from None
        return lit.value

    def day_range(self, lit: Literal) -> tuple[date, date]:
        today = self.now.date()
        word, n = lit.value, lit.n or 0
        if word == "TODAY":
            return today, today + timedelta(days=1)
        if word == "YESTERDAY":
            return today - timedelta(days=1), today
        if word == "TOMORROW":
            return today + timedelta(days=1), today + timedelta(days=2)
        if word == "LAST_N_DAYS":
            return today - timedelta(days=n), today + timedelta(days=1)
        if word == "NEXT_N_DAYS":
            return today + timedelta(days=1), today + timedelta(days=n + 1)
        if word == "N_DAYS_AGO":
            return today - timedelta(days=n), today - timedelta(days=n - 1)
        raise SoqlError(f"unsupported date literal {word}")

    def range_bounds(self, f: SfField, lit: Literal) -> tuple[str, str]:
        if f.type not in ("date", "datetime"):
            raise _filter_error(f"date literal {lit.value} can only be compared with a date or dateTime field")
        lo, hi = self.day_range(lit)
        if f.type == "date":
            return lo.isoformat(), hi.isoformat()
        return (
            format_datetime(datetime.combine(lo, time(), tzinfo=UTC)),
            format_datetime(datetime.combine(hi, time(), tzinfo=UTC)),
        )

    # -- predicates ----------------------------------------------------------------------
    def expr(self, node: Any) -> str:
        if isinstance(node, BoolOp):
            return "(" + f" {node.op} ".join(self.expr(item) for item in node.items) + ")"
        if isinstance(node, Not):
            return f"(NOT {self.expr(node.item)})"
        if isinstance(node, InList):
            return self.in_list(node)
        if isinstance(node, Comparison):
            return self.comparison(node)
        raise SoqlError(f"unsupported condition {node!r}")

    def param(self, value: Any) -> str:
        self.params.append(value)
        return "?"

    def comparison(self, node: Comparison) -> str:
        f = self.field(node.field)
        col, op, lit = self.column(f), node.op, node.value
        if op == "LIKE":
            if f.type not in ("string", "textarea", "email", "url", "phone", "picklist", "id", "reference"):
                raise _filter_error(f"invalid operator on field '{f.name}': LIKE needs a text field")
            if lit.kind != "string":
                raise _filter_error("LIKE needs a string pattern")
            return f"IFNULL({col} LIKE {self.param(lit.value)} ESCAPE '\\', 0)"
        if lit.kind == "relative":
            lo, hi = self.range_bounds(f, lit)
            if op == "=":
                return f"IFNULL({col} >= {self.param(lo)} AND {col} < {self.param(hi)}, 0)"
            if op == "!=":
                return f"({col} IS NULL OR {col} < {self.param(lo)} OR {col} >= {self.param(hi)})"
            bound, sql_op = {"<": (lo, "<"), "<=": (hi, "<"), ">": (hi, ">="), ">=": (lo, ">=")}[op]
            return f"IFNULL({col} {sql_op} {self.param(bound)}, 0)"
        value = self.scalar(f, lit)
        if value is None:
            if op == "=":
                return f"({col} IS NULL)"
            if op == "!=":
                return f"({col} IS NOT NULL)"
            raise _filter_error(f"null can only be compared with = or != (field '{f.name}')")
        collate = self.collate(f)
        if op == "!=":
            return f"({col} IS NULL OR {col}{collate} != {self.param(value)})"
        return f"IFNULL({col}{collate} {op} {self.param(value)}, 0)"

    def in_list(self, node: InList) -> str:
        f = self.field(node.field)
        col, collate = self.column(f), self.collate(f)
        for lit in node.values:
            if lit.kind == "relative":
                raise _filter_error("relative date literals cannot be used in IN lists")
        values = [self.scalar(f, lit) for lit in node.values]
        has_null = any(v is None for v in values)
        present = [v for v in values if v is not None]
        marks = ", ".join(self.param(v) for v in present)
        if node.negated:
            parts = [f"{col} IS NOT NULL"] if has_null else [f"{col} IS NULL"]
            if has_null and present:
                return f"({col} IS NOT NULL AND {col}{collate} NOT IN ({marks}))"
            if has_null:
                return f"({col} IS NOT NULL)"
            return f"({parts[0]} OR {col}{collate} NOT IN ({marks}))"
        clauses = []
        if present:
            clauses.append(f"IFNULL({col}{collate} IN ({marks}), 0)")
        if has_null:
            clauses.append(f"{col} IS NULL")
        return "(" + " OR ".join(clauses) + ")"


def compile_query(query: Query, obj: SfObject, include_deleted: bool, now: datetime) -> CompiledQuery:
    comp = _Compiler(obj, now)
    fields = [comp.field(name) for name in query.fields]
    where = [comp.expr(query.where)] if query.where is not None else []
    if not include_deleted:
        where.append('"IsDeleted" = 0')
    table = quote_ident(obj.table)
    where_sql = (" WHERE " + " AND ".join(where)) if where else ""
    if query.count_only:
        if query.order_by:
            raise SoqlError("ORDER BY cannot be used with COUNT()")
        inner = f"SELECT 1 FROM {table}{where_sql}{_limit(query)}"
        return CompiledQuery(obj, [], True, f"SELECT COUNT(*) FROM ({inner})", tuple(comp.params))
    order = []
    for item in query.order_by:
        f = comp.field(item.field)
        if f.type == "textarea" and f.length > 255:
            raise SoqlError(f"field '{f.name}' can not be sorted in a query call")
        direction = "DESC" if item.descending else "ASC"
        nulls = "NULLS LAST" if item.nulls_last else "NULLS FIRST"
        order.append(f"{comp.column(f)}{comp.collate(f)} {direction} {nulls}")
    order.append("rowid ASC")
    sql = f"SELECT rowid FROM {table}{where_sql} ORDER BY {', '.join(order)}{_limit(query)}"
    return CompiledQuery(obj, fields, False, sql, tuple(comp.params))


def _limit(query: Query) -> str:
    if query.limit is None and query.offset is None:
        return ""
    limit = query.limit if query.limit is not None else -1
    return f" LIMIT {int(limit)} OFFSET {int(query.offset or 0)}"
