"""One Salesforce API call at a time: budget check, retries, re-authentication, usage tracking.

Every call the connector makes goes through :meth:`SalesforceClient.call`:

- the budget guard counts it first and stops the run before the org's usage would pass the
  configured share (:mod:`connectors.budget`);
- 429, 5xx, timeouts and dropped connections are retried with backoff (:mod:`connectors.retry`);
  simple-salesforce's exceptions carry no headers, so a response hook on the requests session
  keeps the last ``Retry-After`` for the wait strategy, and reads ``Sforce-Limit-Info`` from
  every response (Bulk ones included, which simple-salesforce does not parse);
- an expired session (401) signs in again once and repeats the call;
- ``REQUEST_LIMIT_EXCEEDED`` (the org's daily limit) ends the run as paused, not failed.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceRefusedRequest,
)

from config.connections import SalesforceConfig
from connectors.budget import ApiBudget, BudgetExhausted
from connectors.retry import RetrySettings, parse_retry_after, retrying
from connectors.salesforce.auth import SalesforceAuthError, fetch_token
from connectors.salesforce.ca_trust import CaTrustingSalesforce

log = logging.getLogger(__name__)
T = TypeVar("T")
_USAGE = re.compile(r"api-usage=(\d+)/(\d+)")
DAILY_LIMIT_CODE = "REQUEST_LIMIT_EXCEEDED"
_NETWORK_ERRORS = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
)


def error_code(error: SalesforceError) -> str | None:
    """Salesforce's ``errorCode`` from an error body (a JSON list of ``{message, errorCode}``)."""
    content = error.content
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return content[0].get("errorCode")
    if isinstance(content, dict):
        return content.get("errorCode")
    return None


def error_message(error: SalesforceError) -> str:
    content = error.content
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return str(content[0].get("message", ""))
    return str(content)[:300]


class _TimeoutSession(requests.Session):
    """requests has no default timeout; a hung server must not hang the worker."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.default_timeout = timeout

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.default_timeout
        return super().request(method, url, *args, **kwargs)


def requests_session(config: SalesforceConfig) -> requests.Session:
    """The session simple-salesforce uses: verifies TLS against the configured CA (never off).

    ``trust_env`` is turned off with a CA file, because requests lets ``REQUESTS_CA_BUNDLE``
    override ``session.verify``.
    """
    session = _TimeoutSession(config.pull.timeout_seconds)
    if config.ca_file is not None:
        session.verify = str(config.ca_file)
        session.trust_env = False
    return session


class SalesforceClient:
    def __init__(self, config: SalesforceConfig, budget: ApiBudget, *, sleep: Callable[[float], Any] = time.sleep):
        self.config = config
        self.budget = budget
        self.sleep = sleep
        options = config.pull
        self.retry = RetrySettings(options.retry_attempts, options.retry_initial_seconds, options.retry_max_seconds)
        self.session = requests_session(config)
        self.session.hooks["response"].append(self._observe)
        # the Retry-After of the last 429/503, per thread: a pull's lanes call at once (connectors.concurrency),
        # and the response hook runs in the thread that sent the request
        self._waits = threading.local()
        self._signing_in = threading.Lock()
        self.sf: Salesforce = self._sign_in()

    # -- session -------------------------------------------------------------------------------
    def _sign_in(self) -> Salesforce:
        token = fetch_token(self.config, timeout=self.config.pull.timeout_seconds, retry=self.retry)
        signed_in = {"instance_url": token.instance_url, "session_id": token.token.get_secret_value(),
                     "session": self.session, "version": self.config.api_version}
        if self.config.ca_file is not None:
            return CaTrustingSalesforce(**signed_in, ca_path=self.config.ca_file)
        return Salesforce(**signed_in)

    def _observe(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        usage = _USAGE.search(response.headers.get("Sforce-Limit-Info", ""))
        if usage:
            self.budget.observe(int(usage.group(1)), int(usage.group(2)))
        if response.status_code in (429, 503):
            self._waits.retry_after = parse_retry_after(response.headers.get("Retry-After"))

    # -- calls ---------------------------------------------------------------------------------
    def call(self, what: str, fn: Callable[[Salesforce], T]) -> T:
        """Run one API call (``fn`` makes exactly one request) with the guard, retries and re-auth."""
        for attempt in retrying(self._transient, self._take_retry_after, self.retry, what=f"Salesforce {what}",
                                sleep=self.sleep):
            with attempt:
                return self._once(what, fn)
        raise AssertionError("unreachable: tenacity re-raises the last error")

    def _once(self, what: str, fn: Callable[[Salesforce], T]) -> T:
        self.budget.before_call(what)
        self._waits.retry_after = None
        try:
            sf = self.sf
            try:
                return fn(sf)
            except SalesforceExpiredSession:
                with self._signing_in:
                    if self.sf is sf:  # else another lane signed in again meanwhile: its session is new
                        log.info("Salesforce session expired during %s; signing in again", what)
                        self.sf = self._sign_in()
                self.budget.before_call(what)
                try:
                    return fn(self.sf)
                except SalesforceExpiredSession as exc:
                    raise SalesforceAuthError(
                        f"Salesforce rejected a session it had just issued ({what}); check that the integration "
                        "user is active and allowed to use the API"
                    ) from exc
        except SalesforceRefusedRequest as exc:
            if error_code(exc) == DAILY_LIMIT_CODE:
                raise BudgetExhausted(
                    "salesforce",
                    f"salesforce: the org's daily API limit is spent ({error_message(exc)}); the run is paused "
                    "and the next one continues where this one stopped",
                ) from exc
            raise

    @staticmethod
    def _transient(error: BaseException) -> bool:
        if isinstance(error, SalesforceGeneralError):
            return error.status == 429 or error.status >= 500
        if isinstance(error, requests.exceptions.SSLError):
            return False  # a certificate problem does not go away by retrying
        return isinstance(error, _NETWORK_ERRORS)

    def _take_retry_after(self, error: BaseException) -> float | None:
        if isinstance(error, SalesforceGeneralError) and error.status in (429, 503):
            return getattr(self._waits, "retry_after", None)
        return None

    # -- the calls the connector makes ---------------------------------------------------------
    def limits(self) -> dict[str, Any]:
        return self.call("limits", lambda sf: sf.limits())

    def describe(self, object_name: str) -> dict[str, Any]:
        return self.call(f"describe {object_name}", lambda sf: getattr(sf, object_name).describe())

    def query(self, soql: str, page_size: int, what: str) -> dict[str, Any]:
        headers = {"Sforce-Query-Options": f"batchSize={page_size}"}
        return self.call(what, lambda sf: sf.query(soql, include_deleted=True, headers=headers))

    def query_more(self, next_url: str, page_size: int, what: str) -> dict[str, Any]:
        headers = {"Sforce-Query-Options": f"batchSize={page_size}"}
        return self.call(what, lambda sf: sf.query_more(next_url, identifier_is_url=True, headers=headers))
