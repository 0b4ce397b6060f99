"""The HubSpot connector: CRM objects, associations and marketing events into the canonical store."""

from connectors.hubspot.activities import HubSpotActivities, default_hubspot_rules
from connectors.hubspot.record_pull import HubSpotSyncTuning
from connectors.hubspot.sync import ALL_OBJECTS, pull_hubspot

__all__ = ["ALL_OBJECTS", "HubSpotActivities", "HubSpotSyncTuning", "default_hubspot_rules", "pull_hubspot"]
