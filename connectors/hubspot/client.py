"""Every HubSpot call the connector makes, paced, retried, counted and budgeted in one place.

The CRM endpoints go through hubspot-api-client (``host=`` and ``ssl_ca_cert=`` point it at any
HubSpot-compatible server, the sandbox included); marketing email events, which the client
lacks, go through httpx. Responses are read raw (``_preload_content=False``) and parsed as
JSON: the client's model objects cost more CPU than the rest of a page's processing, and the
raw response keeps the ``X-HubSpot-RateLimit-*`` headers the budget needs.

Each logical call:
1. waits for the client-side rate limiter (10-second window, and search's per-second one),
   so a well-configured sync never meets a 429;
2. asks the daily budget guard (:class:`connectors.budget.ApiBudget`) whether it may be sent;
3. is retried by the shared policy (:mod:`connectors.retry`) on 429, 5xx, timeouts and dropped
   connections, honouring ``Retry-After``; a 401 renews the OAuth token and retries at once;
4. turns HubSpot's daily-limit 429 into :class:`BudgetExhausted` (the run pauses, it does not fail)
   and other 4xx into :class:`HubSpotApiError` with HubSpot's category and message.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import urllib3
from hubspot import HubSpot
from hubspot.crm.associations.v4.exceptions import ApiException as AssociationsApiException
from hubspot.crm.objects.exceptions import ApiException as ObjectsApiException
from hubspot.crm.properties.exceptions import ApiException as PropertiesApiException
from hubspot.events.exceptions import ApiException as EventsApiException

from config.connections import HubSpotConfig
from connectors.budget import ApiBudget, BudgetExhausted
from connectors.hubspot.auth import TokenSource, ssl_context
from connectors.hubspot.ratelimit import HubSpotRateLimiter, portal_limiter
from connectors.retry import RetrySettings, parse_retry_after, retrying
from store.json_codec import loads as json_loads

log = logging.getLogger(__name__)

CRM = "hubspot"
CONNECT_TIMEOUT_S = 10.0
# Each generated sub-client has its own exception class; all carry .status, .headers and .body.
SDK_ERRORS = (ObjectsApiException, AssociationsApiException, PropertiesApiException, EventsApiException)


class HubSpotApiError(RuntimeError):
    """HubSpot refused a request for a reason retrying will not fix (bad request, missing scope...)."""

    def __init__(self, status: int, message: str, category: str | None = None, what: str = "") -> None:
        self.status = status
        self.category = category
        self.what = what
        detail = f"{category}: {message}" if category else message
        super().__init__(f"HubSpot {what} answered {status} ({detail})" if what else f"HubSpot {status}: {detail}")


class HubSpotTransientError(HubSpotApiError):
    """Worth retrying: rate limited, server error, network trouble, or a token just renewed."""

    def __init__(self, status: int, message: str, category: str | None = None, what: str = "",
                 retry_after: float | None = None) -> None:
        super().__init__(status, message, category, what)
        self.retry_after = retry_after


class PagingLoopError(HubSpotApiError):
    """A page pointed back at itself: following it would read the same page forever."""


def next_token(page: Mapping[str, Any], previous: str | None, what: str) -> str | None:
    """``paging.next.after`` of a page, refusing a token that does not move."""
    after = ((page.get("paging") or {}).get("next") or {}).get("after")
    return check_progress(str(after) if after else None, previous, what)


def check_progress(token: str | None, previous: str | None, what: str) -> str | None:
    if token is not None and token == previous:
        raise PagingLoopError(200, f"the next page token {token!r} is the one just used; stopping rather than "
                              "reading the same page again", what=what)
    return token


def _is_transient(error: BaseException) -> bool:
    return isinstance(error, HubSpotTransientError | ConnectionError)


def _retry_after(error: BaseException) -> float | None:
    return getattr(error, "retry_after", None)


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The JSON body; a body that is not JSON becomes ``{"message": <its start>}``."""
        if not self.body:
            return {}
        try:
            return json_loads(self.body)
        except ValueError:
            return {"message": self.body[:200].decode("utf-8", "replace")}


class HubSpotApi:
    """The connector's view of one HubSpot portal."""

    def __init__(
        self,
        config: HubSpotConfig,
        *,
        tokens: TokenSource | None = None,
        limiter: HubSpotRateLimiter | None = None,
        budget: ApiBudget | None = None,
        retry: RetrySettings = RetrySettings(),
        timeout_s: float = 60.0,
        sleep: Callable[[float], Any] = time.sleep,
    ) -> None:
        self.config = config
        self.tokens = tokens or TokenSource(config)
        self.limiter = limiter or portal_limiter(config.base_url, config.requests_per_10s,
                                                 config.search_requests_per_second)
        self.budget = budget or ApiBudget(CRM, config.sync.max_api_share)
        self.retry = retry
        self.timeout = (CONNECT_TIMEOUT_S, timeout_s)
        self.sleep = sleep
        self.calls: Counter[str] = Counter()  # sent requests by kind ("list:contacts", "search:deals"...)
        self.rate_limited = 0  # 429 answers received (other than the daily limit)
        # Objects are pulled side by side (connectors.hubspot.sync): counters and budget are shared.
        self._count_lock = threading.Lock()
        # urllib3 retries off: the retry policy above decides, and counts every attempt.
        sdk = HubSpot(host=config.base_url, ssl_ca_cert=str(config.ca_file) if config.ca_file else None,
                      retry=False)
        self._objects = sdk.crm.objects.basic_api
        self._batch = sdk.crm.objects.batch_api
        self._search = sdk.crm.objects.search_api
        self._associations = sdk.crm.associations.v4.batch_api
        self._properties = sdk.crm.properties.core_api
        self._events = sdk.events.events_api
        self._http = httpx.Client(base_url=config.base_url, verify=ssl_context(config), trust_env=False,
                                  timeout=httpx.Timeout(timeout_s, connect=CONNECT_TIMEOUT_S))

    def close(self) -> None:
        self._http.close()

    # -- endpoints -------------------------------------------------------------------------
    def list_page(
        self,
        object_type: str,
        *,
        after: str | None,
        properties: Sequence[str],
        associations: Sequence[str] = (),
        archived: bool = False,
        limit: int = 100,
    ) -> dict[str, Any]:
        """``GET /crm/v3/objects/{type}``: one page in id order, associations inline."""
        kwargs: dict[str, Any] = {"limit": limit, "properties": list(properties), "archived": archived}
        if after:
            kwargs["after"] = after
        if associations:
            kwargs["associations"] = list(associations)
        kind = f"{'archived' if archived else 'list'}:{object_type}"
        return self._sdk(kind, f"GET /crm/v3/objects/{object_type}",
                         lambda **kw: self._objects.get_page(object_type, **kwargs, **kw))

    def search(self, object_type: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /crm/v3/objects/{type}/search`` (paced by the search limiter too)."""
        return self._sdk(f"search:{object_type}", f"POST /crm/v3/objects/{object_type}/search",
                         lambda **kw: self._search.do_search(object_type, dict(body), **kw), search=True)

    def batch_read(self, object_type: str, ids: Sequence[str], properties: Sequence[str]) -> dict[str, Any]:
        """``POST /crm/v3/objects/{type}/batch/read`` of live records (ids not found are left out)."""
        body = {"inputs": [{"id": i} for i in ids], "properties": list(properties)}
        return self._sdk(f"batch_read:{object_type}", f"POST /crm/v3/objects/{object_type}/batch/read",
                         lambda **kw: self._batch.read(object_type, body, archived=False, **kw))

    def associations(self, from_type: str, to_type: str, ids: Sequence[str]) -> list[dict[str, Any]]:
        """``POST /crm/v4/associations/{from}/{to}/batch/read``, following per-record paging.

        Ids without associations come back as per-input errors (HTTP 207); they simply have none.
        """
        results: list[dict[str, Any]] = []
        inputs: list[dict[str, str]] = [{"id": i} for i in ids]
        while inputs:
            body = {"inputs": inputs}
            page = self._sdk(
                f"associations:{from_type}", f"POST /crm/v4/associations/{from_type}/{to_type}/batch/read",
                lambda body=body, **kw: self._associations.get_page(from_type, to_type, body, **kw),
            )
            inputs = []
            for result in page.get("results") or []:
                results.append(result)
                after = ((result.get("paging") or {}).get("next") or {}).get("after")
                if after:
                    inputs.append({"id": str(result["from"]["id"]), "after": str(after)})
        return results

    def property_names(self, object_type: str) -> set[str]:
        """``GET /crm/v3/properties/{type}``: the names of the portal's properties of one object."""
        page = self._sdk(f"properties:{object_type}", f"GET /crm/v3/properties/{object_type}",
                         lambda **kw: self._properties.get_all(object_type, archived=False, **kw))
        return {str(p["name"]) for p in page.get("results") or []}

    def web_events(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """``GET /events/v3/events``: event analytics occurrences (page views, form submissions)."""
        return self._sdk("web_events", "GET /events/v3/events",
                         lambda **kw: self._events.get_page(**dict(params), **kw))

    def email_events(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """``GET /email/public/v1/events``: marketing email events (not in hubspot-api-client)."""
        path = "/email/public/v1/events"

        def send(headers: dict[str, str]) -> Answer:
            response = self._http.get(path, params=dict(params), headers=headers)
            return Answer(response.status_code, response.headers, response.content)

        return self._call("email_events", f"GET {path}", send)

    # -- the call machinery ----------------------------------------------------------------
    def _sdk(self, kind: str, what: str, fn: Callable[..., Any], *, search: bool = False) -> dict[str, Any]:
        def send(headers: dict[str, str]) -> Answer:
            try:
                raw = fn(_preload_content=False, _request_timeout=self.timeout, _headers=headers)
            except SDK_ERRORS as exc:
                if not exc.status:  # the client's wrapper for TLS failures
                    raise HubSpotApiError(0, f"{exc.reason}".strip() + "; check hubspot.ca_file and "
                                          "hubspot.base_url", what=what) from None
                # Error statuses are raised even when the body is left unread: same answer either way.
                return Answer(int(exc.status), exc.headers or {}, exc.body or b"")
            try:
                return Answer(raw.status, raw.headers, raw.data)
            finally:
                raw.release_conn()

        return self._call(kind, what, send, search=search)

    def _call(self, kind: str, what: str, send: Callable[[dict[str, str]], Answer], *,
              search: bool = False) -> dict[str, Any]:
        for attempt in retrying(_is_transient, _retry_after, self.retry, what=f"HubSpot {what}", sleep=self.sleep):
            with attempt:
                return self._attempt(kind, what, send, search)
        raise AssertionError("unreachable: the retry policy re-raises the last error")

    def _attempt(self, kind: str, what: str, send: Callable[[dict[str, str]], Answer], search: bool
                 ) -> dict[str, Any]:
        token = self.tokens.token()
        with self._count_lock:
            self.budget.before_call(what)
        with self.limiter.slot(search=search):
            with self._count_lock:
                self.calls[kind] += 1
            try:
                answer = send({"Authorization": f"Bearer {token}", "Accept": "application/json"})
            except (urllib3.exceptions.HTTPError, httpx.TransportError) as exc:
                if _is_tls_failure(exc):
                    raise HubSpotApiError(0, f"TLS verification failed ({exc}); check hubspot.ca_file",
                                          what=what) from None
                raise HubSpotTransientError(0, f"network error: {type(exc).__name__}", what=what) from None
        self._observe_usage(answer.headers)
        if answer.status < 300:
            body = answer.json()
            if not isinstance(body, dict) or set(body) == {"message"}:
                # A proxy's HTML page or a truncated body: read as "no results" it would end paging early.
                raise HubSpotTransientError(answer.status, "the answer is not a JSON object", what=what)
            return body
        return self._raise_for(answer, what, token)

    def _observe_usage(self, headers: Mapping[str, str]) -> None:
        daily, remaining = headers.get("X-HubSpot-RateLimit-Daily"), headers.get("X-HubSpot-RateLimit-Daily-Remaining")
        if daily and remaining and daily.isdigit() and remaining.isdigit():
            with self._count_lock:
                self.budget.observe(int(daily) - int(remaining), int(daily))

    def _raise_for(self, answer: Answer, what: str, token: str) -> dict[str, Any]:
        body = answer.json()
        body = body if isinstance(body, dict) else {}
        message = str(body.get("message") or f"HTTP {answer.status}")
        category = body.get("category") or body.get("errorType")
        if answer.status == 429:
            if str(body.get("policyName", "")).upper() == "DAILY":
                raise BudgetExhausted(
                    CRM,
                    "hubspot: the portal's daily API limit is spent (HubSpot answered 429 DAILY); the run is "
                    "paused and the next one continues where this one stopped",
                )
            with self._count_lock:
                self.rate_limited += 1
            retry_after = parse_retry_after(answer.headers.get("Retry-After"))
            if retry_after is None:
                interval = answer.headers.get("X-HubSpot-RateLimit-Interval-Milliseconds")
                retry_after = int(interval) / 1000 if interval and interval.isdigit() else None
            raise HubSpotTransientError(429, message, str(body.get("policyName") or category), what, retry_after)
        if answer.status == 401:
            self.tokens.rejected(token)  # renews an OAuth token, or raises HubSpotAuthError
            raise HubSpotTransientError(401, message, category, what, retry_after=0.0)
        if answer.status >= 500:
            raise HubSpotTransientError(answer.status, message, category, what,
                                        parse_retry_after(answer.headers.get("Retry-After")))
        raise HubSpotApiError(answer.status, message, category, what)


def _is_tls_failure(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLCertVerificationError | urllib3.exceptions.SSLError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False
