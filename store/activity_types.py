"""The canonical activity vocabulary shared by connectors, the sandbox and scoring.

Connectors map each CRM's tasks, events, engagements and marketing events onto these
names; scoring's catalogue gives each one points, a team and a decay half-life. One
vocabulary means a webinar attended counts the same whether HubSpot or Salesforce saw it.
"""

from __future__ import annotations

from typing import Final

SALES: Final = "sales"
MARKETING: Final = "marketing"
CUSTOMER_SUCCESS: Final = "customer_success"
SUPPORT: Final = "support"
TEAMS: Final = (SALES, MARKETING, CUSTOMER_SUCCESS, SUPPORT)

# canonical type -> default team, in rough funnel order within each team
ACTIVITY_TYPES: Final[dict[str, str]] = {
    # sales
    "email_sent": SALES,
    "email_reply": SALES,
    "call": SALES,
    "call_connected": SALES,
    "meaningful_conversation": SALES,
    "meeting_scheduled": SALES,
    "meeting_completed": SALES,
    "demo": SALES,
    "proposal": SALES,
    "post_close_followup": SALES,
    # marketing
    "email_open": MARKETING,
    "email_click": MARKETING,
    "web_visit": MARKETING,
    "blog_visit": MARKETING,
    "pricing_page_visit": MARKETING,
    "newsletter_subscription": MARKETING,
    "video_view": MARKETING,
    "content_download": MARKETING,
    "form_submission": MARKETING,
    "webinar_registration": MARKETING,
    "webinar_attended": MARKETING,
    "event_registration": MARKETING,
    "event_attended": MARKETING,
    "booth_visit": MARKETING,
    "demo_request": MARKETING,
    "campaign_response": MARKETING,
    # after the sale
    "cs_meeting": CUSTOMER_SUCCESS,
    "support_case": SUPPORT,
}


def team_of(activity_type: str) -> str:
    """The default team of a canonical type; unknown types are a mapping bug, so they raise."""
    try:
        return ACTIVITY_TYPES[activity_type]
    except KeyError:
        raise ValueError(
            f"unknown canonical activity type {activity_type!r}; known: {', '.join(ACTIVITY_TYPES)}"
        ) from None
