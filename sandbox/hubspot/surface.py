"""The HubSpot surface of the sandbox: its portal, auth, limits and routes in one place."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sandbox.faults import FaultInjector
from sandbox.hubspot import associations_api, events, imports, objects, properties, search
from sandbox.hubspot.auth import DEFAULT_ACCESS_TOKEN_TTL, HubSpotAuth, HubSpotCredentials, OAuthTokenError
from sandbox.hubspot.context import HubSpotContext
from sandbox.hubspot.errors import render_fault
from sandbox.hubspot.limits import DEFAULT_DAILY, DEFAULT_PER_TEN_SECONDS, DEFAULT_SEARCH_PER_SECOND, HubSpotLimits
from sandbox.hubspot.loader import GeneratedHubSpot, load_generated_portal
from sandbox.hubspot.portal import PORTAL_ID, HubSpotPortal
from sandbox.hubspot.schema import HubSpotSchema
from sandbox.storage import Storage


class HubSpotSurface:
    """Implements the surface protocol the sandbox app assembles (name, prefixes, routes...)."""

    name = "hubspot"
    path_prefixes = ("/crm/", "/oauth/", "/email/public/", "/events/")

    def __init__(
        self,
        storage: Storage,
        faults: FaultInjector,
        requests_per_ten_seconds: int = DEFAULT_PER_TEN_SECONDS,
        daily_requests: int = DEFAULT_DAILY,
        search_per_second: int = DEFAULT_SEARCH_PER_SECOND,
        access_token_ttl: int = DEFAULT_ACCESS_TOKEN_TTL,
    ) -> None:
        portal = HubSpotPortal(storage, faults)
        self.events = events.EventStore(storage, portal.schema)
        self.context = HubSpotContext(
            portal,
            HubSpotAuth(PORTAL_ID, access_token_ttl),
            HubSpotLimits(requests_per_ten_seconds, daily_requests, search_per_second),
        )
        self.imports = imports.ImportJobs(self.context)

    @property
    def portal(self) -> HubSpotPortal:
        return self.context.portal

    @property
    def limits(self) -> HubSpotLimits:
        return self.context.limits

    @property
    def credentials(self) -> HubSpotCredentials:
        return self.context.auth.credentials

    def load_generated(self, view: GeneratedHubSpot) -> dict[str, int]:
        """Seed from the generator's HubSpot view (no-op when the portal already holds data)."""
        return load_generated_portal(self.portal, self.events, view)

    def reload_schema(self) -> None:
        """Re-read the property definitions after a seed filled the tables from another process
        (``sandbox.parallel_seed``); every reader looks the schema up through the portal or here."""
        self.portal.schema = HubSpotSchema(self.portal.storage)
        self.events.schema = self.portal.schema

    def issue_access_token(self, ttl: float | None = None) -> str:
        """A fresh OAuth access token, as if the refresh flow had just run (``ttl`` seconds, default 30 min)."""
        return self.context.auth.issue_access_token(ttl)[0]

    def expire_sessions(self) -> None:
        self.context.auth.expire_all()

    def exhaust_daily_limit(self) -> None:
        self.context.limits.exhaust_daily()

    def reset(self) -> None:
        """Fresh rate-limit windows and daily budget, no imports; the data stays (tests create their own records)."""
        self.context.limits.reset()
        self.imports.clear()

    render_fault = staticmethod(render_fault)

    def routes(self) -> list[BaseRoute]:
        auth = self.context.auth

        async def token(request: Request) -> Response:
            form = dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))
            try:
                return JSONResponse(auth.token(form))
            except OAuthTokenError as exc:
                return JSONResponse(exc.body(), status_code=400)

        async def token_info(request: Request) -> Response:
            info = auth.token_info(request.path_params["token"])
            if info is None:
                return JSONResponse({"status": "error", "message": "The access token is expired or invalid",
                                     "category": "EXPIRED_AUTHENTICATION"}, status_code=404)
            return JSONResponse(info)

        return [
            Route("/oauth/v1/token", token, methods=["POST"]),
            Route("/oauth/v1/access-tokens/{token}", token_info, methods=["GET"]),
            *search.routes(self.context),
            *objects.routes(self.context),
            *properties.routes(self.context),
            *associations_api.routes(self.context),
            *events.routes(self.context, self.events),
            *imports.routes(self.context, self.imports),
        ]
