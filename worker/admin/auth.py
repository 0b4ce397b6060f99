"""Who may use the admin server: the token holder, by header (API, scrapers) or by login cookie (browser).

Deny by default: an ASGI middleware in front of every route lets through only the few public
paths (health, login, static assets) and answers everything else 401 unless the request carries
the token. The browser cookie is not the token itself but an HMAC of an expiry keyed by the
token, so the token never sits in a cookie jar, a login lasts a bounded time, and rotating the
token logs everyone out. Comparisons are constant-time (:func:`hmac.compare_digest`).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from pydantic import SecretStr
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocketClose

log = logging.getLogger("abm.admin")

SESSION_COOKIE = "abm_admin_session"
AUTH_SCOPE_KEY = "abm.auth"  # set on the ASGI scope: "bearer" or "cookie"
PUBLIC_PATHS = frozenset({"/healthz", "/login"})
PUBLIC_PREFIXES = ("/static/",)
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def is_api_path(path: str) -> bool:
    """Machine clients (API, Prometheus) get JSON errors; people get the login page."""
    return path.startswith("/api/") or path == "/metrics"


@dataclass(frozen=True)
class AdminAuth:
    token: SecretStr
    session_seconds: int

    def _key(self) -> bytes:
        return hashlib.sha256(b"abm-admin-session\0" + self.token.get_secret_value().encode()).digest()

    def token_matches(self, candidate: str) -> bool:
        return hmac.compare_digest(candidate.encode(), self.token.get_secret_value().encode())

    def new_session(self, now: float | None = None) -> str:
        expires = int((now if now is not None else time.time()) + self.session_seconds)
        return f"{expires}.{self._sign(expires)}"

    def session_valid(self, value: str, now: float | None = None) -> bool:
        expires_text, _, signature = value.partition(".")
        if not expires_text.isdigit():
            return False
        expires = int(expires_text)
        if not hmac.compare_digest(signature.encode(), self._sign(expires).encode()):
            return False
        return expires > (now if now is not None else time.time())

    def _sign(self, expires: int) -> str:
        return hmac.new(self._key(), str(expires).encode(), hashlib.sha256).hexdigest()

    def authenticate(self, conn: HTTPConnection) -> str | None:
        """How the request proved it holds the token ("bearer" or "cookie"), or None."""
        scheme, _, credentials = conn.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and credentials and self.token_matches(credentials.strip()):
            return "bearer"
        cookie = conn.cookies.get(SESSION_COOKIE)
        if cookie and self.session_valid(cookie):
            return "cookie"
        return None


def same_origin(conn: HTTPConnection) -> bool:
    """A cookie-authenticated write must come from our own page (defence in depth beside SameSite)."""
    origin = conn.headers.get("origin")
    if origin is None:
        return True  # not a cross-site browser request: browsers send Origin on cross-site POSTs
    return urlsplit(origin).netloc == conn.headers.get("host", "")


class RequireToken:
    """ASGI middleware: every request outside the public paths must carry the token."""

    def __init__(self, app: ASGIApp, auth: AdminAuth, login_page: Callable[[HTTPConnection], Response]) -> None:
        self.app = app
        self.auth = auth
        self.login_page = login_page

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
            await self.app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        how = self.auth.authenticate(conn)
        if how is None:
            if scope["type"] == "websocket":
                await WebSocketClose(code=1008)(scope, receive, send)  # policy violation
            else:
                await self._refuse(conn)(scope, receive, send)
            return
        if how == "cookie" and scope.get("method") in UNSAFE_METHODS and not same_origin(conn):
            await JSONResponse({"error": "cross-origin request refused"}, status_code=403)(scope, receive, send)
            return
        scope[AUTH_SCOPE_KEY] = how
        await self.app(scope, receive, send)

    def _refuse(self, conn: HTTPConnection) -> Response:
        if is_api_path(conn.url.path):
            return JSONResponse(
                {"error": "authentication required: send Authorization: Bearer <admin token>"},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="abm-sync admin"'},
            )
        return self.login_page(conn)
