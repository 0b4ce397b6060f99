"""The Salesforce surface of the sandbox: its org, auth, limits and routes in one place."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.faults import FaultInjector
from sandbox.limits import DailyLimits
from sandbox.salesforce import bulk2, metadata, rest
from sandbox.salesforce.auth import OAuthError, SalesforceAuth, SalesforceCredentials
from sandbox.salesforce.context import API_LIMIT, BULK_QUERY_LIMIT, SalesforceContext
from sandbox.salesforce.errors import render_fault
from sandbox.salesforce.org import INTEGRATION_USERNAME, SalesforceOrg
from sandbox.salesforce.query import QueryCursors
from sandbox.storage import Storage

DEFAULT_DAILY_API_REQUESTS = 100_000
DEFAULT_DAILY_BULK_QUERY_JOBS = 10_000


class SalesforceSurface:
    """Implements the surface protocol the sandbox app assembles (name, prefixes, routes...)."""

    name = "salesforce"
    path_prefixes = ("/services/",)

    def __init__(
        self,
        storage: Storage,
        faults: FaultInjector,
        limits: DailyLimits,
        directory: Path,
        daily_api_requests: int = DEFAULT_DAILY_API_REQUESTS,
        daily_bulk_query_jobs: int = DEFAULT_DAILY_BULK_QUERY_JOBS,
    ) -> None:
        limits.define(API_LIMIT, daily_api_requests)
        limits.define(BULK_QUERY_LIMIT, daily_bulk_query_jobs)
        org = SalesforceOrg(storage, faults)
        auth = SalesforceAuth(directory, INTEGRATION_USERNAME, org.integration_user_id)
        self.context = SalesforceContext(org, auth, QueryCursors(org), limits)
        self.jobs = bulk2.BulkJobs(self.context)

    @property
    def org(self) -> SalesforceOrg:
        return self.context.org

    @property
    def credentials(self) -> SalesforceCredentials:
        return self.context.auth.credentials

    def issue_session(self) -> str:
        return self.context.auth.issue_session()

    def expire_sessions(self) -> None:
        self.context.auth.expire_all()

    def exhaust_daily_limit(self) -> None:
        self.context.limits.exhaust(API_LIMIT)

    def reset(self) -> None:
        """Forget cursors and jobs; the data stays (tests isolate by creating their own records)."""
        self.context.cursors.clear()
        self.jobs.clear()

    render_fault = staticmethod(render_fault)

    def routes(self) -> list[Route]:
        auth = self.context.auth

        async def token(request: Request) -> Response:
            # OAuth token requests are application/x-www-form-urlencoded
            form = dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))
            instance_url = f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"
            try:
                return JSONResponse(auth.token(form, instance_url))
            except OAuthError as exc:
                return JSONResponse(exc.body(), status_code=exc.status)

        return [
            Route("/services/oauth2/token", token, methods=["POST"]),
            *rest.routes(self.context),
            *bulk2.routes(self.context, self.jobs),
            *metadata.routes(self.context),
        ]
