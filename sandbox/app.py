"""The sandbox: shared machinery (storage, faults, request log, daily limits) plus CRM surfaces.

A surface (Salesforce today, HubSpot next) brings its routes, the error body it sends for an
injected status, and hooks to expire its sessions and spend its daily budget. Everything
else (TLS, the runner, fault injection, the request log and counters, the admin endpoint)
is shared, so adding a CRM means writing a surface and one line in ``Sandbox.__init__``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from starlette.applications import Starlette
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from sandbox.admin import admin_routes
from sandbox.faults import FaultInjector
from sandbox.hubspot.surface import HubSpotSurface
from sandbox.limits import DailyLimits
from sandbox.middleware import ErrorAnswer, SandboxMiddleware
from sandbox.requestlog import RequestLog
from sandbox.salesforce.surface import SalesforceSurface
from sandbox.storage import Storage

ADMIN_PREFIX = "/__sandbox__"
SCRATCH_FILE = "org-scratch.sqlite"


class Surface(Protocol):
    name: str
    path_prefixes: tuple[str, ...]

    def routes(self) -> list[BaseRoute]: ...

    def render_fault(self, status: int) -> ErrorAnswer: ...

    def expire_sessions(self) -> None: ...

    def exhaust_daily_limit(self) -> None: ...

    def reset(self) -> None: ...


class Sandbox:
    """All state of one sandbox instance; ``asgi_app()`` serves it."""

    def __init__(
        self,
        directory: Path,
        state_path: Path | None = None,
        daily_api_requests: int | None = None,
        hubspot_options: dict[str, int] | None = None,
        scratch: bool = False,
    ) -> None:
        """``scratch`` keeps an org that is not kept (no ``state_path``) in a scratch file in
        ``directory`` rather than in memory: the L org's tables would otherwise take ~5 GB of RAM."""
        self.directory = directory
        if state_path is None and scratch:
            self.storage = Storage(directory / SCRATCH_FILE, scratch=True)
        else:
            self.storage = Storage(state_path)
        self.faults = FaultInjector()
        self.request_log = RequestLog()
        self.limits = DailyLimits()
        sf_options = {"daily_api_requests": daily_api_requests} if daily_api_requests is not None else {}
        self.salesforce = SalesforceSurface(self.storage, self.faults, self.limits, directory, **sf_options)
        self.hubspot = HubSpotSurface(self.storage, self.faults, **(hubspot_options or {}))
        self.surfaces: list[Surface] = [self.salesforce, self.hubspot]

    def expire_sessions(self) -> None:
        for surface in self.surfaces:
            surface.expire_sessions()

    def exhaust_daily_limits(self) -> None:
        for surface in self.surfaces:
            surface.exhaust_daily_limit()

    def reset(self) -> None:
        """Back to a clean slate between tests: no faults, empty log, fresh daily budgets."""
        self.faults.clear()
        self.request_log.clear()
        self.limits.reset()
        for surface in self.surfaces:
            surface.reset()

    def asgi_app(self) -> ASGIApp:
        routes: list[BaseRoute] = admin_routes(self, ADMIN_PREFIX)
        renderers = []
        for surface in self.surfaces:
            routes.extend(surface.routes())
            renderers.extend((prefix, surface.render_fault) for prefix in surface.path_prefixes)
        app = Starlette(routes=routes)
        app.router.redirect_slashes = False
        return SandboxMiddleware(_OptionalTrailingSlash(app), self.faults, self.request_log, renderers,
                                 ADMIN_PREFIX)

    def close(self) -> None:
        self.salesforce.jobs.wait_processed()
        self.hubspot.imports.wait_processed()
        self.storage.close()


class _OptionalTrailingSlash:
    """CRM clients add trailing slashes inconsistently (``query/``, ``sobjects/Account/``); route
    both forms to one handler instead of answering redirects that cost an extra API call."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and len(scope["path"]) > 1 and scope["path"].endswith("/"):
            scope["path"] = scope["path"].rstrip("/")
            scope["raw_path"] = scope["path"].encode()
        await self.app(scope, receive, send)
