"""Salesforce's REST error format: a JSON list of ``{"message", "errorCode", "fields"?}``.

simple-salesforce maps the status to its exception classes and keeps the body as
``.content``, so connectors branch on ``errorCode``; the sandbox must send the same codes.
"""

from __future__ import annotations

import json

from starlette.responses import Response

from sandbox.middleware import ErrorAnswer

JSON_TYPE = "application/json;charset=UTF-8"


class SalesforceError(Exception):
    def __init__(self, status: int, code: str, message: str, fields: list[str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields

    def body(self) -> list[dict[str, object]]:
        item: dict[str, object] = {"message": self.message, "errorCode": self.code}
        if self.fields is not None:
            item["fields"] = self.fields
        return [item]

    def response(self) -> Response:
        return Response(json.dumps(self.body()), status_code=self.status, media_type=JSON_TYPE)


def session_invalid() -> SalesforceError:
    return SalesforceError(401, "INVALID_SESSION_ID", "Session expired or invalid")


def limit_exceeded() -> SalesforceError:
    return SalesforceError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")


def not_found(message: str = "The requested resource does not exist") -> SalesforceError:
    return SalesforceError(404, "NOT_FOUND", message)


_FAULT_ERRORS = {
    401: session_invalid(),
    403: limit_exceeded(),
    404: not_found(),
    429: SalesforceError(429, "REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded."),
    500: SalesforceError(500, "UNKNOWN_EXCEPTION", "An unexpected error occurred. Please include this ErrorId."),
    502: SalesforceError(502, "SERVER_UNAVAILABLE", "Bad gateway"),
    503: SalesforceError(503, "SERVER_UNAVAILABLE", "Server is unavailable; retry later."),
}


def render_fault(status: int) -> ErrorAnswer:
    """The body Salesforce sends for ``status``, for injected faults."""
    error = _FAULT_ERRORS.get(status) or SalesforceError(status, "UNKNOWN_EXCEPTION", f"HTTP {status}")
    return ErrorAnswer(json.dumps(error.body()).encode(), JSON_TYPE)
