"""The JSON API: trigger runs, read runs and accounts, health and Prometheus metrics.

Triggers go through :func:`worker.triggers.request_run`, the same entry point as the CLI and
the scheduler, so the API can never start a second run beside one that is queued or running:
it answers 409 with the id of the run in the way unless the caller asked to queue.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, text
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from worker.admin import queries
from worker.admin.auth import AUTH_SCOPE_KEY
from worker.admin.metrics import metrics_registry, render_metrics
from worker.admin.redact import Redactor
from worker.triggers import InvalidRunOptions, RunConflict, RunOptions, request_run

log = logging.getLogger("abm.admin")

MAX_BODY_BYTES = 64 * 1024
MAX_PAGE = 200


class BadRequest(ValueError):
    """A request the API cannot act on; its message goes back to the caller as is."""


def error(message: str, status: int, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def int_param(request: Request, name: str, default: int | None, low: int, high: int) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a whole number, got {raw!r}") from None
    if not low <= value <= high:
        raise BadRequest(f"{name} must be between {low} and {high}, got {value}")
    return value


async def run_request(request: Request) -> tuple[RunOptions, bool]:
    """The run options and ``queue`` flag of a ``POST /api/runs`` body; raises :class:`BadRequest`."""
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise BadRequest(f"request body over {MAX_BODY_BYTES} bytes")
    try:
        data = json.loads(body) if body.strip() else {}
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadRequest("body must be a JSON object of run options")
    queue = data.pop("queue", False)
    if not isinstance(queue, bool):
        raise BadRequest(f"queue must be true or false, got {queue!r}")
    try:
        return RunOptions.from_json(data), queue
    except InvalidRunOptions as exc:
        raise BadRequest(str(exc)) from None


class AdminApi:
    def __init__(self, engine: Engine, redactor: Redactor, executor_notify: Callable[[], None] | None) -> None:
        self.engine = engine
        self.redactor = redactor
        self.notify = executor_notify
        self.registry = metrics_registry(engine)

    def routes(self) -> list[Route]:
        return [
            Route("/api/runs", self.create_run, methods=["POST"]),
            Route("/api/runs", self.list_runs, methods=["GET"]),
            Route("/api/runs/{run_id:int}", self.get_run, methods=["GET"]),
            Route("/api/accounts", self.find_accounts, methods=["GET"]),
            Route("/api/accounts/{account_id:int}", self.get_account, methods=["GET"]),
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/metrics", self.metrics, methods=["GET"]),
        ]

    async def create_run(self, request: Request) -> Response:
        """Queue a run: 202 with its id, 409 with the active run's id, 400 for options that cannot run."""
        try:
            options, queue = await run_request(request)
        except BadRequest as exc:
            return error(str(exc), 400)
        trigger = "page" if request.scope.get(AUTH_SCOPE_KEY) == "cookie" else "api"
        try:
            run_id = await run_in_threadpool(request_run, self.engine, options, trigger, queue=queue)
        except RunConflict as conflict:
            return error(f"run {conflict.run_id} is already {conflict.state}; wait for it or ask to queue "
                         "behind it (\"queue\": true)", 409, running_run_id=conflict.run_id, state=conflict.state)
        except InvalidRunOptions as exc:
            return error(str(exc), 400)
        log.info("run %s (%s) queued from the admin %s", run_id, options.kind, trigger)
        if self.notify is not None:
            self.notify()
        return JSONResponse({"run_id": run_id, "kind": options.kind, "state": "queued"}, status_code=202,
                            headers={"Location": f"/api/runs/{run_id}"})

    def list_runs(self, request: Request) -> Response:
        """Newest first; ``limit`` (1-200, default 50) and ``before`` (a run id) page backwards."""
        try:
            limit = int_param(request, "limit", 50, 1, MAX_PAGE)
            before = int_param(request, "before", None, 1, 2**62)
        except BadRequest as exc:
            return error(str(exc), 400)
        assert limit is not None
        page = queries.runs_page(self.engine, limit, before)
        return JSONResponse({"runs": self.redactor.deep(page.runs), "next_before": page.next_before})

    def get_run(self, request: Request) -> Response:
        run = queries.run_with_errors(self.engine, request.path_params["run_id"])
        if run is None:
            return error(f"no run {request.path_params['run_id']}", 404)
        return JSONResponse(self.redactor.deep(run))

    def find_accounts(self, request: Request) -> Response:
        """Scored accounts matching ``q`` (name, domain or CRM id), best first."""
        try:
            limit = int_param(request, "limit", 50, 1, MAX_PAGE)
        except BadRequest as exc:
            return error(str(exc), 400)
        assert limit is not None
        found = queries.find_accounts(self.engine, request.query_params.get("q", ""), limit)
        return JSONResponse({"accounts": found})

    def get_account(self, request: Request) -> Response:
        detail = queries.account_detail(self.engine, request.path_params["account_id"])
        if detail is None:
            return error(f"no account {request.path_params['account_id']}", 404)
        return JSONResponse(detail)

    def healthz(self, request: Request) -> Response:
        """Liveness for load balancers and container probes, which carry no credentials.

        That is why it is the one unauthenticated endpoint, and why it says nothing but whether
        the server answers and reaches its database: no version, no run, no URL, no error text.
        """
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # the type only: driver messages may name hosts and users
            log.warning("health check: the database is unreachable (%s)", type(exc).__name__)
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ok"})

    def metrics(self, request: Request) -> Response:
        body, content_type = render_metrics(self.registry)
        return Response(body, media_type=content_type)
