"""CRM search (``POST /crm/v3/objects/{type}/search``) compiled to SQL.

HubSpot's search has traps connectors must survive, and the sandbox keeps them: at most 200
results a page, offsets as the paging cursor over live data (records modified while you page
move), ``total`` counting every match, and a hard 400 once ``after`` reaches 10,000. Only one
sort is allowed; ties are broken by record id. Its own per-second limit applies (see limits).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.hubspot.context import HubSpotContext, api_endpoint, json_object, json_response
from sandbox.hubspot.errors import validation
from sandbox.hubspot.schema import ARCHIVED, HsObjectType, HsProperty
from sandbox.hubspot.values import filter_value
from sandbox.storage import quote_ident

SEARCH_LIMIT_MAX = 200
RESULT_CAP = 10_000
MAX_GROUPS = 5
MAX_FILTERS_PER_GROUP = 6
MAX_FILTERS = 18
OPERATORS = ("EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN", "IN", "NOT_IN", "HAS_PROPERTY", "NOT_HAS_PROPERTY",
             "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN")
_COMPARE = {"LT": "<", "LTE": "<=", "GT": ">", "GTE": ">="}


def _property(obj: HsObjectType, name: Any) -> HsProperty:
    prop = obj.get_property(str(name)) if name else None
    if prop is None:
        raise validation(f"There was a problem with the request: property {name!r} does not exist on {obj.name}",
                         {"propertyName": [str(name)]})
    return prop


def _value(prop: HsProperty, raw: Any, key: str) -> Any:
    if raw is None:
        raise validation(f"filter on {prop.name} needs a {key!r}")
    try:
        return filter_value(prop, raw)
    except ValueError as exc:
        raise validation(str(exc)) from None


def compile_filter(obj: HsObjectType, spec: Any) -> tuple[str, list[Any]]:
    """One filter as an SQL condition on the stored columns."""
    if not isinstance(spec, dict):
        raise validation("each filter must be an object with propertyName and operator")
    prop = _property(obj, spec.get("propertyName"))
    operator = str(spec.get("operator", "")).upper()
    if operator not in OPERATORS:
        raise validation(f"Invalid operator {spec.get('operator')!r}; expected one of {', '.join(OPERATORS)}")
    col = quote_ident(prop.name)
    text = prop.sql_type == "TEXT"
    nocase = " COLLATE NOCASE" if text else ""
    if operator == "HAS_PROPERTY":
        return (f"({col} IS NOT NULL AND {col} != '')" if text else f"{col} IS NOT NULL"), []
    if operator == "NOT_HAS_PROPERTY":
        return (f"({col} IS NULL OR {col} = '')" if text else f"{col} IS NULL"), []
    if operator in ("IN", "NOT_IN"):
        raw_values = spec.get("values")
        if not isinstance(raw_values, list) or not raw_values:
            raise validation(f"{operator} on {prop.name} needs a non-empty 'values' list")
        values = [_value(prop, v, "values") for v in raw_values]
        marks = ", ".join("?" for _ in values)
        if operator == "IN":
            return f"{col}{nocase} IN ({marks})", values
        return f"({col} IS NULL OR {col}{nocase} NOT IN ({marks}))", values
    if operator == "BETWEEN":
        low, high = _value(prop, spec.get("value"), "value"), _value(prop, spec.get("highValue"), "highValue")
        return f"{col} BETWEEN ? AND ?", [low, high]
    if operator in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        token = str(spec.get("value") or "").replace("%", r"\%").replace("_", r"\_").replace("*", "%")
        pattern = token if "%" in token else f"%{token}%"
        if operator == "CONTAINS_TOKEN":
            return f"{col} LIKE ? ESCAPE '\\'", [pattern]
        return f"({col} IS NULL OR {col} NOT LIKE ? ESCAPE '\\')", [pattern]
    value = _value(prop, spec.get("value"), "value")
    if operator == "EQ":
        return f"{col} = ?{nocase}", [value]
    if operator == "NEQ":
        return f"({col} IS NULL OR {col} != ?{nocase})", [value]
    return f"{col} {_COMPARE[operator]} ?", [value]


def compile_where(obj: HsObjectType, body: dict[str, Any]) -> tuple[str, list[Any]]:
    """``filterGroups`` (OR of ANDs) and ``query`` (text in the default searchable properties)."""
    groups = body.get("filterGroups") or []
    if not isinstance(groups, list):
        raise validation("filterGroups must be a list")
    if len(groups) > MAX_GROUPS:
        raise validation(f"Too many filter groups: at most {MAX_GROUPS} are allowed, got {len(groups)}")
    total = 0
    clauses: list[str] = []
    params: list[Any] = []
    for group in groups:
        filters = (group or {}).get("filters") or []
        if len(filters) > MAX_FILTERS_PER_GROUP:
            raise validation(f"Too many filters in a group: at most {MAX_FILTERS_PER_GROUP} are allowed, got "
                             f"{len(filters)}")
        total += len(filters)
        parts = []
        for spec in filters:
            sql, values = compile_filter(obj, spec)
            parts.append(sql)
            params.extend(values)
        if parts:
            clauses.append("(" + " AND ".join(parts) + ")")
    if total > MAX_FILTERS:
        raise validation(f"Too many filters: at most {MAX_FILTERS} are allowed across all groups, got {total}")
    where = [f'"{ARCHIVED}" = 0']
    if clauses:
        where.append("(" + " OR ".join(clauses) + ")")
    query = body.get("query")
    if query:
        like = f"%{str(query).replace('%', '')}%"
        text_cols = [quote_ident(p) for p in obj.search_text_properties if obj.get_property(p) is not None]
        where.append("(" + " OR ".join(f"{c} LIKE ?" for c in text_cols) + ")")
        params.extend(like for _ in text_cols)
    return " AND ".join(where), params


def compile_order(obj: HsObjectType, sorts: Any) -> str:
    if not sorts:
        return '"hs_object_id" ASC'
    if not isinstance(sorts, list):
        raise validation("sorts must be a list")
    if len(sorts) > 1:
        raise validation("Only one sort is supported per search request")
    spec = sorts[0]
    if isinstance(spec, str):  # HubSpot also takes "propertyName" or "-propertyName"
        descending, name = spec.startswith("-"), spec.lstrip("-")
    elif isinstance(spec, dict):
        name = spec.get("propertyName")
        direction = str(spec.get("direction", "ASCENDING")).upper()
        if direction not in ("ASCENDING", "DESCENDING"):
            raise validation(f"sort direction must be ASCENDING or DESCENDING, got {spec.get('direction')!r}")
        descending = direction == "DESCENDING"
    else:
        raise validation("each sort must be an object with propertyName and direction")
    prop = _property(obj, name)
    order = "DESC" if descending else "ASC"
    if prop.name == "hs_object_id":  # no tie to break (twice the same term also kept SQLite from using an index)
        return f'"hs_object_id" {order}'
    return f'{quote_ident(prop.name)} {order}, "hs_object_id" {order}'


def _limit_after(body: dict[str, Any]) -> tuple[int, int]:
    try:
        limit = int(body.get("limit") or 10)
        after = int(body.get("after") or 0)
    except (TypeError, ValueError):
        raise validation("limit must be an integer and after the paging cursor from paging.next.after") from None
    if not 1 <= limit <= SEARCH_LIMIT_MAX:
        raise validation(f"limit must be between 1 and {SEARCH_LIMIT_MAX}, got {limit}")
    if after < 0:
        raise validation(f"after must be >= 0, got {after}")
    if after >= RESULT_CAP:
        raise validation(f"There was a problem with the request: the search API returns at most {RESULT_CAP} "
                         f"results for a query, and after={after} pages past them. Narrow the query instead.",
                         {"after": [str(after)]})
    return limit, after


@dataclass(frozen=True)
class SearchSql:
    """A search body as SQL: ``count`` gives ``total``, ``page`` the ids of a page (``params`` then limit, offset)."""

    count: str
    page: str
    params: list[Any]


def search_sql(obj: HsObjectType, body: dict[str, Any]) -> SearchSql:
    """The SQL of a search; the connectors' windows (a range of ``hs_lastmodifieddate``, or one date's ids
    after an id) read one range of the ``(_archived, modified, hs_object_id)`` index in page order."""
    where, params = compile_where(obj, body)
    order = compile_order(obj, body.get("sorts"))
    table = quote_ident(obj.table)
    return SearchSql(count=f"SELECT COUNT(*) FROM {table} WHERE {where}",
                     page=f'SELECT "hs_object_id" FROM {table} WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?',
                     params=params)


def routes(ctx: HubSpotContext) -> list[Route]:
    portal = ctx.portal

    async def do_search(request: Request) -> Response:
        obj = portal.object_type(request.path_params["objectType"])
        body = await json_object(request)
        limit, after = _limit_after(body)
        sql = search_sql(obj, body)
        props = portal.returned_properties(obj, body.get("properties") or [])
        total_row = portal.storage.fetchone(sql.count, sql.params)
        total = int(total_row[0]) if total_row else 0
        page_size = min(limit, RESULT_CAP - after)
        ids = [r[0] for r in portal.storage.fetchall(sql.page, [*sql.params, page_size, after])]
        rows = portal.rows_by_ids(obj, ids)
        results = [portal.to_json(obj, rows[i], props) for i in ids if i in rows]
        out: dict[str, Any] = {"total": total, "results": results}
        if after + len(ids) < total:
            out["paging"] = {"next": {"after": str(after + len(ids))}}
        return json_response(out)

    return [Route("/crm/v3/objects/{objectType}/search", api_endpoint(ctx, do_search, search=True),
                  methods=["POST"])]
