"""Load the synthetic org from the generator (``sandbox.seed``) into the Salesforce and HubSpot surfaces.

Objects load parents first so references in the data point at rows that already exist.
Records are generated on a background thread while the previous batch is written (the
L org has millions of rows; see ``sandbox.seed_prefetch``), and for M and L a worker process
seeds HubSpot while this one seeds Salesforce (``sandbox.parallel_seed``).
An org kept with ``--state`` is not seeded twice: restarting on the same file keeps its data
(and whatever tests or demos wrote since).
"""

from __future__ import annotations

import importlib
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sandbox.hubspot.surface import HubSpotSurface
from sandbox.parallel_seed import BackgroundHubSpotSeed
from sandbox.salesforce.org import SalesforceOrg
from sandbox.seed_prefetch import Prefetched
from sandbox.sizes import SIZES
from sandbox.storage import quote_ident

if TYPE_CHECKING:  # the generator loads only when an org is seeded
    from sandbox.seed_plan import OrgSize

LOAD_ORDER = ("User", "Account", "Campaign", "Lead", "Contact", "Opportunity", "Task", "Event", "CampaignMember")
# Past this many generated records (L has 6.1 million) an org without --state goes to a scratch file.
LARGE_ORG_ROWS = 2_000_000
# From this many (M has 245,000) HubSpot is seeded by a second process while Salesforce loads.
PARALLEL_ORG_ROWS = 100_000


def is_large(size: str | OrgSize) -> bool:
    """Whether an org of ``size`` is better kept in a scratch file than in memory (the L org)."""
    return planned_rows(size) >= LARGE_ORG_ROWS


def org_is_seeded(org: SalesforceOrg) -> bool:
    table = org.object("Account").table
    return org.storage.fetchone(f"SELECT 1 FROM {quote_ident(table)} LIMIT 1") is not None


def planned_rows(size: str | OrgSize) -> int:
    from sandbox.seed_plan import resolve_size

    plan = resolve_size(size.upper() if isinstance(size, str) else size)
    return plan.accounts + plan.leads + plan.contacts + plan.activities


def load_generated_org(
    org: SalesforceOrg, seed: int, size: str | OrgSize = "S", as_of: datetime | None = None,
    hubspot: HubSpotSurface | None = None, parallel: bool | None = None, work_dir: Path | None = None,
    salesforce: bool = True,
) -> dict[str, int]:
    """Generate the org for (``seed``, ``size``) and load it into ``org`` (unless not ``salesforce``) and
    ``hubspot`` (if given); returns rows loaded per object (empty when the storage already holds an org).
    ``size`` is S, M, L or an :class:`OrgSize` (tests use small custom orgs). With ``parallel`` (by default
    for orgs of ``PARALLEL_ORG_ROWS`` records or more), HubSpot is seeded by a worker process meanwhile
    (``sandbox.parallel_seed``), its file in ``work_dir`` (the system's temporary directory by default)."""
    if isinstance(size, str):
        size = size.upper()
        if size not in SIZES:
            raise ValueError(f"unknown org size {size!r}; expected one of {', '.join(SIZES)}")
    if org_is_seeded(org):
        return {}
    try:
        seed_module = importlib.import_module("sandbox.seed")
    except ModuleNotFoundError as exc:
        if exc.name != "sandbox.seed":
            raise
        raise RuntimeError("the org generator (sandbox/seed.py) is not installed in this checkout; "
                           "start the sandbox without --seed for an empty org") from None
    as_of = as_of or datetime.now(UTC)
    generated = seed_module.generate(seed=seed, size=size, as_of=as_of)
    if parallel is None:
        parallel = planned_rows(size) >= PARALLEL_ORG_ROWS
    background = (BackgroundHubSpotSeed(seed, size, as_of, work_dir)
                  if hubspot is not None and parallel and salesforce else None)
    try:
        counts = load_salesforce(org, generated) if salesforce else {}
    except BaseException:
        if background is not None:
            background.cancel()
        raise
    if background is not None and hubspot is not None:
        counts.update(background.merge_into(hubspot))
    elif hubspot is not None:
        counts.update(load_hubspot(hubspot, generated))
    return counts


def load_salesforce(org: SalesforceOrg, generated: Any) -> dict[str, int]:
    """Load a generated org's Salesforce view (``sandbox.seed.GeneratedOrg``); rows per object."""
    counts: dict[str, int] = {}
    for object_name in LOAD_ORDER:
        records = Prefetched(generated.salesforce.records(object_name))
        try:
            counts[object_name] = org.load(object_name, records)
        finally:
            records.close()
    generated.release_salesforce()
    return counts


def load_hubspot(hubspot: HubSpotSurface, generated: Any) -> dict[str, int]:
    """Load a generated org's HubSpot view; counts keyed ``hubspot.<what>``."""
    counts = hubspot.load_generated(_PrefetchedHubSpot(generated.hubspot))
    generated.release_hubspot()
    return counts


class _PrefetchedHubSpot:
    """The generator's HubSpot view with each stream produced ahead on a thread (see seed_prefetch)."""

    def __init__(self, view: Any) -> None:
        self._view = view

    def records(self, object_type: str) -> Prefetched[dict[str, Any]]:
        return Prefetched(self._view.records(object_type))

    def associations(self) -> Prefetched[tuple[str, str, str, str]]:
        return Prefetched(self._view.associations())

    def email_events(self) -> Prefetched[dict[str, Any]]:
        return Prefetched(self._view.email_events())

    def web_events(self) -> Prefetched[dict[str, Any]]:
        return Prefetched(self._view.web_events())
