"""Marketing engagement: email events and web analytics events as canonical activities.

Marketing email events (``/email/public/v1/events``) name the recipient by email address, not
by contact id, so the caller passes a lookup built from the contacts already in the store; an
event whose recipient is not (yet) a known contact keeps the address in ``extra`` and is linked
by a later run (see ``link_email_events``). Web analytics events (``/events/v3/events``) carry
the contact's id directly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from connectors.hubspot import values as v
from connectors.hubspot.activities import EMAIL_EVENTS, WEB_EVENTS, HubSpotActivities
from connectors.hubspot.objects import CRM
from store.activity_types import team_of

EVENT_OBJECTS = (EMAIL_EVENTS, WEB_EVENTS)


def _row(
    object_name: str,
    crm_id: str,
    activity_type: str,
    occurred: Any,
    crm_type: str,
    subject: str | None,
    person: str | None,
    campaign: str | None,
    campaign_type: str | None,
    extra: dict[str, Any] | None,
) -> dict[str, Any]:
    occurred_at = v.timestamp(occurred)
    return {
        "crm": CRM,
        "object": object_name,
        "crm_id": crm_id,
        "created_at": occurred_at,
        "modified_at": occurred_at,
        "is_deleted": False,
        "merged_into": None,
        "extra": extra or None,
        "activity_type": activity_type,
        "crm_type": crm_type,
        "team": team_of(activity_type),
        "subject": subject[:1000] if subject else None,
        "occurred_at": occurred_at,
        "duration_seconds": None,
        "ends_at": None,
        "person_crm_id": person,
        "account_crm_id": None,
        "campaign_crm_id": campaign,
        "campaign_type": campaign_type,
    }


def map_email_event(
    event: Mapping[str, Any], rules: HubSpotActivities, contact_of: Callable[[str], str | None]
) -> dict[str, Any] | None:
    """An activity row for one marketing email event, None for types the rules do not keep."""
    event_type = str(event.get("type") or "")
    activity_type = rules.email_event_type(event)
    if activity_type is None:
        return None
    recipient = (event.get("recipient") or "").strip().lower()
    campaign = event.get("emailCampaignId")
    created = event.get("created")
    return _row(
        EMAIL_EVENTS,
        str(event["id"]),
        activity_type,
        int(created) if created is not None else None,
        f"email_event:{event_type}",
        v.text(event.get("subject")),
        contact_of(recipient) if recipient else None,
        str(campaign) if campaign is not None else None,
        "marketing_email" if campaign is not None else None,
        {"recipient": recipient} if recipient else None,
    )


def map_web_event(event: Mapping[str, Any], rules: HubSpotActivities) -> dict[str, Any] | None:
    """An activity row for one event analytics occurrence on a contact."""
    props: dict[str, str | None] = {k: (str(x) if x is not None else None)
                                    for k, x in (event.get("properties") or {}).items()}
    event_type = str(event.get("eventType") or "")
    activity_type = rules.web_event_type(event_type, props)
    if activity_type is None:
        return None
    subject = props.get("hs_url") or props.get("hs_form_title") or props.get("hs_title")
    extra = {k: props[k] for k in ("hs_url", "hs_form_id", "hs_form_title", "hs_title", "hs_referrer")
             if props.get(k)}
    object_id = event.get("objectId")
    return _row(
        WEB_EVENTS,
        str(event["id"]),
        activity_type,
        event.get("occurredAt"),
        event_type,
        subject,
        str(object_id) if object_id is not None else None,
        None,
        None,
        extra,
    )
