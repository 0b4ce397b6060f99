"""ASGI middleware that applies fault rules and records every request.

It sits outside routing so a fault hits even requests the app would reject, and so the log
sees the final status of every answer. Surfaces register an error renderer for their path
prefix: a 429 from the Salesforce surface must look like Salesforce's, a 429 from HubSpot
like HubSpot's.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sandbox.faults import FaultInjector, FaultRule
from sandbox.requestlog import RequestLog

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ErrorAnswer:
    body: bytes
    content_type: str = "application/json;charset=UTF-8"
    headers: tuple[tuple[str, str], ...] = ()


ErrorRenderer = Callable[[int], ErrorAnswer]


def default_renderer(status: int) -> ErrorAnswer:
    return ErrorAnswer(json.dumps({"status": status, "message": "sandbox fault"}).encode())


class SandboxMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        faults: FaultInjector,
        request_log: RequestLog,
        renderers: list[tuple[str, ErrorRenderer]],
        admin_prefix: str = "/__sandbox__",
    ) -> None:
        self.app = app
        self.faults = faults
        self.log = request_log
        self.renderers = sorted(renderers, key=lambda item: -len(item[0]))
        self.admin_prefix = admin_prefix

    def _renderer(self, path: str) -> ErrorRenderer:
        for prefix, renderer in self.renderers:
            if path.startswith(prefix):
                return renderer
        return default_renderer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.admin_prefix):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        method, path = scope["method"], scope["path"]
        query = scope.get("query_string", b"").decode("latin-1")
        scope.setdefault("state", {})
        status: dict[str, int] = {}
        recorded: list[bool] = []
        rule = self.faults.take(method, path)
        fault = rule.kind if rule else None

        def record() -> None:
            # Logged before the status line goes out, so a client that got its answer always
            # finds its request in the log (tests count calls right after making them); a 204
            # is complete for the client as soon as its headers are sent.
            if recorded:
                return
            recorded.append(True)
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or path
            state: dict[str, Any] = scope.get("state", {})
            self.log.record(
                method, path, query, endpoint, status.get("code"), started,
                tuple(state.get("fields_written", ())), fault,
            )

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                record()
            await send(message)

        async def swallow(message: Message) -> None:
            # lose_answer: the request is served (its change made, its status logged), the answer never sent
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                record()

        try:
            if rule is not None and rule.kind == "lose_answer":
                await self.app(scope, receive, swallow)
                record()
                await _drop_connection(send)
            elif rule is not None and rule.kind != "latency":
                await self._apply(rule, path, send, send_wrapper, record)
            else:
                if rule is not None:
                    await asyncio.sleep(rule.seconds)
                await self.app(scope, receive, send_wrapper)
        finally:
            record()

    async def _apply(
        self, rule: FaultRule, path: str, raw_send: Send, send: Send, record: Callable[[], None]
    ) -> None:
        if rule.kind == "status":
            assert rule.status is not None
            if rule.body is not None:
                answer = ErrorAnswer(json.dumps(rule.body).encode())
            else:
                answer = self._renderer(path)(rule.status)
            headers = [(b"content-type", answer.content_type.encode())]
            headers += [(k.encode(), v.encode()) for k, v in answer.headers]
            if rule.retry_after is not None:
                headers.append((b"retry-after", _seconds(rule.retry_after).encode()))
            headers.append((b"content-length", str(len(answer.body)).encode()))
            await send({"type": "http.response.start", "status": rule.status, "headers": headers})
            await send({"type": "http.response.body", "body": answer.body})
            return
        if rule.kind == "hang":
            await asyncio.sleep(rule.seconds)
        # Logged before the connection drops, for the reason record() gives: the client's
        # ConnectionError must not arrive before its request is in the log.
        record()
        await _drop_connection(raw_send)



def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


async def _drop_connection(send: Send) -> None:
    """Close the TCP connection without writing a response.

    ASGI has no "abort" message, so this reaches the server's transport through the bound
    ``send`` of uvicorn's request cycle (both its h11 and httptools cycles keep ``transport``).
    """
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        raise RuntimeError("cannot drop the connection: the ASGI server does not expose its transport")
    transport.abort()
    # Let the server notice the disconnect so it does not try to answer on a closed socket.
    for _ in range(3):
        await asyncio.sleep(0)
