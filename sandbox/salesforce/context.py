"""What every Salesforce endpoint shares, and the wrapper that makes an endpoint an API call.

Each API call is authenticated (401 INVALID_SESSION_ID), checked against the API version
list (404), counted against the daily budget (403 REQUEST_LIMIT_EXCEEDED past it) and
answered with ``Sforce-Limit-Info``; Salesforce errors raised anywhere become its JSON list.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from sandbox.limits import DailyLimits
from sandbox.salesforce.auth import SalesforceAuth
from sandbox.salesforce.errors import SalesforceError, limit_exceeded, not_found, session_invalid
from sandbox.salesforce.org import SalesforceOrg
from sandbox.salesforce.query import QueryCursors

API_VERSIONS = ("59.0", "60.0", "61.0", "62.0", "63.0")
VERSION_LABELS = {"59.0": "Winter '24", "60.0": "Spring '24", "61.0": "Summer '24", "62.0": "Winter '25",
                  "63.0": "Spring '25"}
API_LIMIT = "DailyApiRequests"
BULK_QUERY_LIMIT = "DailyBulkV2QueryJobs"


@dataclass
class SalesforceContext:
    org: SalesforceOrg
    auth: SalesforceAuth
    cursors: QueryCursors
    limits: DailyLimits

    def limit_info(self) -> str:
        return f"api-usage={self.limits.used(API_LIMIT)}/{self.limits.maximum(API_LIMIT)}"


@dataclass(frozen=True)
class Call:
    """The authenticated caller of one API request."""

    user_id: str
    version: str


Handler = Callable[[Request, Call], Awaitable[Response]]


def check_version(version: str | None) -> str:
    if version is None:
        return API_VERSIONS[0]
    if version not in API_VERSIONS:
        raise not_found(f"The requested resource does not exist (API version {version} is not supported; "
                        f"the sandbox serves {', '.join(API_VERSIONS)})")
    return version


def api_endpoint(ctx: SalesforceContext, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            version = check_version(request.path_params.get("version"))
            user_id = ctx.auth.user_for(request.headers.get("authorization"))
            if user_id is None:
                raise session_invalid()
            if not ctx.limits.try_consume(API_LIMIT):
                raise limit_exceeded()
            response = await handler(request, Call(user_id, version))
        except SalesforceError as exc:
            response = exc.response()
        response.headers["Sforce-Limit-Info"] = ctx.limit_info()
        return response

    endpoint.__name__ = handler.__name__
    return endpoint


async def json_body(request: Request) -> object:
    import json

    raw = await request.body()
    if not raw:
        raise SalesforceError(400, "JSON_PARSER_ERROR", "The request body is empty; a JSON body is required")
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise SalesforceError(400, "JSON_PARSER_ERROR", f"Unexpected character in the JSON body: {exc}") from None
