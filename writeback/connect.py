"""Writers and provisioning clients built from ``abm.yaml``, on the connectors' sign-in, budget and limits.

The writers themselves take ready clients (so tests hand them sandbox clients); this is the one
place that knows how the product signs in: the Salesforce connector's OAuth client (with its
API budget guard and retry settings), HubSpot's token source and rate limiter.
"""

from __future__ import annotations

from collections.abc import Sequence

from hubspot import HubSpot
from simple_salesforce import Salesforce

from config import AbmConfig
from connectors.budget import ApiBudget
from connectors.hubspot.auth import TokenSource
from connectors.hubspot.ratelimit import HubSpotRateLimiter, portal_limiter
from connectors.retry import RetrySettings
from connectors.salesforce.client import SalesforceClient
from writeback.catalogue import Catalogue
from writeback.hubspot import HubSpotWriter
from writeback.provision import ProvisionReport
from writeback.provision_hubspot import provision_hubspot
from writeback.provision_salesforce import provision_salesforce
from writeback.run import Writer
from writeback.salesforce import SalesforceWriter


def salesforce_client(config: AbmConfig) -> SalesforceClient:
    """The connector's signed-in client (its Metadata API client, when used, trusts the configured CA too)."""
    return SalesforceClient(config.salesforce, ApiBudget("salesforce", config.salesforce.sync.max_api_share))


def _retry(config: AbmConfig) -> RetrySettings:
    pull = config.salesforce.pull
    return RetrySettings(pull.retry_attempts, pull.retry_initial_seconds, pull.retry_max_seconds)


def salesforce_writer(config: AbmConfig, client: SalesforceClient | None = None) -> SalesforceWriter:
    client = client or salesforce_client(config)
    options = config.writeback
    return SalesforceWriter(client.sf, Catalogue(options), bulk_threshold=options.bulk_threshold,
                            bulk_poll_seconds=options.bulk_poll_seconds, retry=_retry(config),
                            max_rate_limit_wait_s=options.max_rate_limit_wait_seconds, budget=client.budget)


def hubspot_sdk(config: AbmConfig, tokens: TokenSource) -> HubSpot:
    # urllib3's own retries off: the writer's retry policy decides, and counts every attempt
    hs = config.hubspot
    return HubSpot(access_token=tokens.token(), host=hs.base_url,
                   ssl_ca_cert=str(hs.ca_file) if hs.ca_file else None, retry=False)


def hubspot_limiter(config: AbmConfig) -> HubSpotRateLimiter:
    """The portal's one limiter in this process, shared with the pulls (see ``portal_limiter``)."""
    hs = config.hubspot
    return portal_limiter(hs.base_url, hs.requests_per_10s, hs.search_requests_per_second)


def hubspot_writer(config: AbmConfig, limiter: HubSpotRateLimiter | None = None) -> HubSpotWriter:
    tokens = TokenSource(config.hubspot)
    options = config.writeback
    return HubSpotWriter(hubspot_sdk(config, tokens), Catalogue(options), limiter=limiter or hubspot_limiter(config),
                         retry=_retry(config), max_rate_limit_wait_s=options.max_rate_limit_wait_seconds,
                         budget=ApiBudget("hubspot", config.hubspot.sync.max_api_share), tokens=tokens,
                         concurrency=options.hubspot_concurrency, import_threshold=options.hubspot_import_threshold,
                         import_timeout_s=options.hubspot_import_timeout_minutes * 60)


def writers(config: AbmConfig, crms: Sequence[str]) -> list[Writer]:
    built: list[Writer] = []
    for crm in crms:
        built.append(salesforce_writer(config) if crm == "salesforce" else hubspot_writer(config))
    return built


def provision(config: AbmConfig, crms: Sequence[str], dry_run: bool) -> ProvisionReport:
    """``abm init``: find and create the catalogue's fields in each CRM."""
    report = ProvisionReport(dry_run=dry_run)
    catalogue = Catalogue(config.writeback)
    for crm in crms:
        if crm == "salesforce":
            sf: Salesforce = salesforce_client(config).sf
            provision_salesforce(sf, catalogue, report)
        else:
            tokens = TokenSource(config.hubspot)
            provision_hubspot(hubspot_sdk(config, tokens), catalogue, config.writeback, report,
                              limiter=hubspot_limiter(config), retry=_retry(config))
    return report
