"""The admin server's ASGI app: API, page, metrics and health, behind the token check.

``abm serve`` builds it with :func:`create_admin_app` and serves it with uvicorn beside the
scheduler; tests build it the same way. The app never runs pipelines itself: a trigger queues a
run and calls ``executor_notify`` so the executor thread picks it up at once.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from config import AbmConfig
from worker.admin.api import AdminApi
from worker.admin.auth import AdminAuth, RequireToken
from worker.admin.pages import AdminPages
from worker.admin.redact import Redactor

STATIC = Path(__file__).parent / "static"

# Everything the page uses comes from this app; inline scripts and styles are not needed.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


class SecurityHeaders:
    """Headers for every answer: no framing, no sniffing, no referrer, and no caching of admin data."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("Referrer-Policy", "no-referrer")
                if not static:
                    headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_admin_app(
    engine: Engine, config: AbmConfig, executor_notify: Callable[[], None] | None = None
) -> ASGIApp:
    """The admin app. Raises :class:`config.secrets.MissingSecret` when no usable token is configured."""
    token = config.admin.token()
    auth = AdminAuth(token, session_seconds=config.admin.session_hours * 3600)
    redactor = Redactor.from_config(config, extra=[token.get_secret_value()])
    api = AdminApi(engine, redactor, executor_notify)
    pages = AdminPages(engine, config, auth, redactor)
    return Starlette(
        debug=False,  # tracebacks can hold secrets and CRM data: a 500 says only that it failed
        routes=[*api.routes(), *pages.routes(), Mount("/static", StaticFiles(directory=STATIC), name="static")],
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(RequireToken, auth=auth, login_page=pages.login_page),
        ],
    )
