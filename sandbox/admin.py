"""The sandbox-only admin endpoint (``/__sandbox__/...``): faults, request log, limits, reset.

It exists so tools outside the Python process (a shell, another language's test suite, a
demo) can drive the same fault injection and read the same counters as the Python API.
It is never logged or counted, and it is only served on 127.0.0.1.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

if TYPE_CHECKING:
    from sandbox.app import Sandbox


def _error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def admin_routes(sandbox: Sandbox, prefix: str) -> list[BaseRoute]:
    async def faults(request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse({
                "rules": [r.to_dict() for r in sandbox.faults.rules()],
                "rejected_writes": [r.__dict__ for r in sandbox.faults.rejections()],
            })
        if request.method == "DELETE":
            sandbox.faults.clear()
            return Response(status_code=204)
        try:
            spec: Any = json.loads(await request.body())
            added = sandbox.faults.add_from_json(spec)
        except (ValueError, TypeError) as exc:
            return _error(str(exc))
        if isinstance(added, list):
            return JSONResponse({"rejected_writes": [r.__dict__ for r in added]}, status_code=201)
        return JSONResponse(added.to_dict(), status_code=201)

    async def fault(request: Request) -> Response:
        rule_id = request.path_params["rule"]
        if not sandbox.faults.remove(rule_id):
            return _error(f"no fault rule {rule_id}", 404)
        return Response(status_code=204)

    async def requests_log(request: Request) -> Response:
        if request.method == "DELETE":
            sandbox.request_log.clear()
            return Response(status_code=204)
        method, path = request.query_params.get("method"), request.query_params.get("path")
        try:
            entries = sandbox.request_log.entries(method, path)
        except Exception as exc:  # a bad regex from the caller
            return _error(f"invalid filter: {exc}")
        return JSONResponse({"requests": [e.to_dict() for e in entries], "counters": sandbox.request_log.counters()})

    async def reset(request: Request) -> Response:
        sandbox.reset()
        return Response(status_code=204)

    async def expire_sessions(request: Request) -> Response:
        sandbox.expire_sessions()
        return Response(status_code=204)

    async def limits(request: Request) -> Response:
        return JSONResponse(sandbox.limits.snapshot())

    async def limit_action(request: Request) -> Response:
        name, action = request.path_params["name"], request.path_params["action"]
        try:
            if action == "exhaust":
                sandbox.limits.exhaust(name)
            elif action == "reset":
                sandbox.limits.reset(name)
            else:
                return _error(f"unknown action {action!r} (exhaust or reset)", 404)
        except KeyError as exc:
            return _error(str(exc), 404)
        return JSONResponse(sandbox.limits.snapshot())

    async def hubspot_limits(request: Request) -> Response:
        """GET the HubSpot limits; POST ``{"per_ten_seconds", "search_per_second", "daily"}`` to change them."""
        limits = sandbox.hubspot.limits
        if request.method == "POST":
            try:
                spec: Any = json.loads(await request.body() or b"{}")
                if not isinstance(spec, dict) or set(spec) - {"per_ten_seconds", "search_per_second", "daily"}:
                    raise ValueError("expected an object with per_ten_seconds, search_per_second and/or daily")
                limits.configure(**{k: int(v) for k, v in spec.items()})
            except (ValueError, TypeError) as exc:
                return _error(str(exc))
        return JSONResponse(limits.snapshot())

    async def hubspot_limit_action(request: Request) -> Response:
        action = request.path_params["action"]
        if action == "exhaust":
            sandbox.hubspot.limits.exhaust_daily()
        elif action == "reset":
            sandbox.hubspot.limits.reset()
        else:
            return _error(f"unknown action {action!r} (exhaust or reset)", 404)
        return JSONResponse(sandbox.hubspot.limits.snapshot())

    return [
        Route(prefix + "/faults", faults, methods=["GET", "POST", "DELETE"]),
        Route(prefix + "/faults/{rule:int}", fault, methods=["DELETE"]),
        Route(prefix + "/requests", requests_log, methods=["GET", "DELETE"]),
        Route(prefix + "/reset", reset, methods=["POST"]),
        Route(prefix + "/sessions/expire", expire_sessions, methods=["POST"]),
        Route(prefix + "/limits", limits, methods=["GET"]),
        Route(prefix + "/limits/{name}/{action}", limit_action, methods=["POST"]),
        Route(prefix + "/hubspot/limits", hubspot_limits, methods=["GET", "POST"]),
        Route(prefix + "/hubspot/limits/{action}", hubspot_limit_action, methods=["POST"]),
    ]
