"""Load the generator's HubSpot view (``generate(...).hubspot``) into the HubSpot surface.

The view yields CRM v3 records per object type, association pairs and marketing events in
the APIs' own shapes; parents load first so associations point at records that exist. A
portal kept with ``--state`` is not seeded twice.
"""

from __future__ import annotations

from typing import Any, Protocol

from sandbox.hubspot.events import EMAIL_TABLE, WEB_TABLE, EventStore
from sandbox.hubspot.portal import HubSpotPortal
from sandbox.storage import quote_ident

LOAD_ORDER = ("companies", "contacts", "deals", "calls", "emails", "meetings", "notes", "tasks")


class GeneratedHubSpot(Protocol):
    """What ``sandbox.seed.generate(...).hubspot`` provides."""

    def records(self, object_type: str) -> Any: ...

    def associations(self) -> Any: ...

    def email_events(self) -> Any: ...

    def web_events(self) -> Any: ...


def portal_is_seeded(portal: HubSpotPortal) -> bool:
    table = portal.object_type("companies").table
    return portal.storage.fetchone(f"SELECT 1 FROM {quote_ident(table)} LIMIT 1") is not None


def load_generated_portal(portal: HubSpotPortal, events: EventStore, view: GeneratedHubSpot) -> dict[str, int]:
    """Load every object type, the associations and the events; returns counts keyed ``hubspot.<what>``
    (empty when the portal already holds data)."""
    if portal_is_seeded(portal):
        return {}
    counts = {f"hubspot.{t}": portal.load(t, view.records(t)) for t in LOAD_ORDER}
    counts["hubspot.associations"] = portal.load_associations(view.associations())
    with portal.storage.deferred_indexes(EMAIL_TABLE, WEB_TABLE):
        counts["hubspot.email_events"] = events.load_email_events(view.email_events())
        counts["hubspot.web_events"] = events.load_web_events(view.web_events())
    return counts
