"""The HubSpot connector: CRM objects, associations and marketing events into the canonical store."""

from connectors.hubspot.activity_map import HubSpotActivityMapping
from connectors.hubspot.record_pull import HubSpotSyncTuning
from connectors.hubspot.sync import ALL_OBJECTS, pull_hubspot

__all__ = ["ALL_OBJECTS", "HubSpotActivityMapping", "HubSpotSyncTuning", "pull_hubspot"]
