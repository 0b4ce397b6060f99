"""What every HubSpot endpoint shares, and the wrapper that makes an endpoint an API call.

Each API call is authenticated (401 as HubSpot answers), admitted by the rate limits (429 with
HubSpot's body), answered with the ``X-HubSpot-RateLimit-*`` headers (not on search, as in
HubSpot) and a correlation id; HubSpot errors raised anywhere become its JSON error body.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from sandbox.hubspot.auth import HubSpotAuth
from sandbox.hubspot.errors import JSON_TYPE, HubSpotError, correlation_id, validation
from sandbox.hubspot.limits import HubSpotLimits
from sandbox.hubspot.portal import HubSpotPortal


@dataclass
class HubSpotContext:
    portal: HubSpotPortal
    auth: HubSpotAuth
    limits: HubSpotLimits


Handler = Callable[[Request], Awaitable[Response]]


def api_endpoint(ctx: HubSpotContext, handler: Handler, search: bool = False) -> Handler:
    async def endpoint(request: Request) -> Response:
        try:
            ctx.auth.check(request.headers.get("authorization"))
            ctx.limits.admit(search=search)
            response = await handler(request)
            if not search:
                response.headers.update(ctx.limits.headers())
        except HubSpotError as exc:
            response = exc.response()
        if "X-HubSpot-Correlation-Id" not in response.headers:
            response.headers["X-HubSpot-Correlation-Id"] = correlation_id()
        return response

    endpoint.__name__ = handler.__name__
    return endpoint


def json_response(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status_code=status, media_type=JSON_TYPE)


async def json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        raise validation("Invalid input JSON: the request body is empty")
    return decoded_object(raw, "Invalid input JSON on line 1, column 1", "Invalid input JSON: expected a JSON object")


def decoded_object(raw: str | bytes, not_json: str, not_object: str) -> dict[str, Any]:
    """A JSON object sent as text; a validation error (400) saying ``not_json`` or ``not_object`` otherwise."""
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise validation(f"{not_json}: {exc}") from None
    if not isinstance(body, dict):
        raise validation(not_object)
    return body


def query_list(request: Request, name: str) -> list[str]:
    """A list parameter sent either repeated (``a=1&a=2``) or comma-separated (``a=1,2``)."""
    out: list[str] = []
    for raw in request.query_params.getlist(name):
        out.extend(part.strip() for part in raw.split(",") if part.strip())
    return out


def query_bool(request: Request, name: str, default: bool = False) -> bool:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if raw.lower() not in ("true", "false"):
        raise validation(f"Unable to process JSON: {name} must be true or false, got {raw!r}")
    return raw.lower() == "true"


def query_int(request: Request, name: str, default: int, minimum: int = 0) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise validation(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise validation(f"{name} must be >= {minimum}, got {value}")
    return value


def record_id(raw: Any, what: str = "id") -> int:
    """HubSpot ids are positive integers (sent as strings); anything else cannot exist."""
    text = str(raw).strip()
    if not text.isdigit():
        raise validation(f"{what} must be a numeric record id, got {raw!r}")
    return int(text)
