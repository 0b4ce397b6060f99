"""HubSpot's error bodies: ``{"status": "error", "message", "correlationId", "category", ...}``.

hubspot-api-client keeps the body as ``ApiException.body`` and connectors branch on
``category`` (``VALIDATION_ERROR``, ``OBJECT_NOT_FOUND``, ``EXPIRED_AUTHENTICATION``...) and, for
429s, on ``policyName``; the sandbox sends the same fields so that code is exercised for real.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.responses import Response

from sandbox.middleware import ErrorAnswer

JSON_TYPE = "application/json;charset=utf-8"


def correlation_id() -> str:
    return str(uuid.uuid4())


class HubSpotError(Exception):
    """An error answer; raised anywhere below an endpoint, rendered by the endpoint wrapper."""

    def __init__(
        self,
        status: int,
        category: str,
        message: str,
        context: dict[str, Any] | None = None,
        sub_category: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.category = category
        self.message = message
        self.context = context
        self.sub_category = sub_category
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "status": "error",
            "message": self.message,
            "correlationId": correlation_id(),
            "category": self.category,
        }
        if self.sub_category:
            body["subCategory"] = self.sub_category
        if self.context is not None:
            body["context"] = self.context
        return body

    def response(self) -> Response:
        body = self.body()
        headers = {**self.headers, "X-HubSpot-Correlation-Id": str(body["correlationId"])}
        return Response(json.dumps(body), status_code=self.status, media_type=JSON_TYPE, headers=headers)


class RateLimitError(HubSpotError):
    """A 429; its body names the policy (``TEN_SECONDLY_ROLLING``, ``SECONDLY``, ``DAILY``)."""

    def __init__(self, policy: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(429, "RATE_LIMITS", message, headers=headers)
        self.policy = policy

    def body(self) -> dict[str, Any]:
        return {
            "status": "error",
            "message": self.message,
            "errorType": "RATE_LIMIT",
            "correlationId": correlation_id(),
            "policyName": self.policy,
            "groupName": "sandbox:private-app",
        }


def ten_secondly_limit(headers: dict[str, str] | None = None) -> RateLimitError:
    return RateLimitError("TEN_SECONDLY_ROLLING", "You have reached your ten_secondly_rolling limit.", headers)


def secondly_limit(headers: dict[str, str] | None = None) -> RateLimitError:
    return RateLimitError("SECONDLY", "You have reached your secondly limit.", headers)


def daily_limit(headers: dict[str, str] | None = None) -> RateLimitError:
    return RateLimitError("DAILY", "You have reached your daily limit.", headers)


def not_found(message: str = "resource not found") -> HubSpotError:
    return HubSpotError(404, "OBJECT_NOT_FOUND", message)


def validation(message: str, context: dict[str, Any] | None = None) -> HubSpotError:
    return HubSpotError(400, "VALIDATION_ERROR", message, context)


def missing_credentials() -> HubSpotError:
    return HubSpotError(
        401,
        "INVALID_AUTHENTICATION",
        "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more "
        "details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
    )


def invalid_token() -> HubSpotError:
    return HubSpotError(
        401,
        "INVALID_AUTHENTICATION",
        "The access token provided is invalid or has been revoked. Authenticate again with a valid token.",
    )


def expired_token(minutes_ago: int, expired_at: str) -> HubSpotError:
    return HubSpotError(
        401,
        "EXPIRED_AUTHENTICATION",
        f"The OAuth token used to make this call expired {minutes_ago} minute(s) ago.",
        context={"expiredAt": [expired_at]},
    )


_FAULT_ERRORS: dict[int, HubSpotError] = {
    400: validation("There was a problem with the request."),
    403: HubSpotError(403, "MISSING_SCOPES", "This app hasn't been granted all required scopes to make this call."),
    404: not_found(),
    409: HubSpotError(409, "CONFLICT", "There was a conflict with the current state of the resource."),
    429: ten_secondly_limit(),
    500: HubSpotError(500, "INTERNAL_ERROR", "Internal server error"),
    502: HubSpotError(502, "BAD_GATEWAY", "Bad gateway"),
    503: HubSpotError(503, "SERVICE_UNAVAILABLE", "Service unavailable"),
    504: HubSpotError(504, "GATEWAY_TIMEOUT", "The request timed out"),
}


def render_fault(status: int) -> ErrorAnswer:
    """The body HubSpot sends for ``status``, for injected faults (a fresh correlation id each)."""
    if status == 401:
        error = expired_token(0, datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"))
    else:
        error = _FAULT_ERRORS.get(status) or HubSpotError(status, "ERROR", f"HTTP {status}")
    body = error.body()
    return ErrorAnswer(json.dumps(body).encode(), JSON_TYPE, (("X-HubSpot-Correlation-Id", body["correlationId"]),))
