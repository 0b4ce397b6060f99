"""Which canonical activity type each HubSpot engagement and marketing event becomes.

The vocabulary is :mod:`store.activity_types`; the rules are data (a pydantic model with
defaults) so a portal that logs its calls or meeting outcomes differently can say so in
config instead of code. Rules are tried in order and the first match wins; a rule whose
``activity_type`` is null says "this is not a touch" (an internal note, a cancelled meeting),
and such a record is not stored as an activity (one stored earlier is flagged deleted).

Defaults, and why:
- calls: HubSpot's "Connected" disposition of 5 minutes or more is a meaningful conversation,
  a shorter connected call is ``call_connected``, anything else (no answer, voicemail) ``call``;
- emails: replies (``INCOMING_EMAIL``) are ``email_reply``, the rest ``email_sent``;
- meetings: a ``COMPLETED`` outcome is ``meeting_completed``; cancelled and no-show meetings
  are no touch; anything else (scheduled, rescheduled, not yet logged) ``meeting_scheduled``;
- notes and tasks: no touch. Notes are the rep's own writing and tasks are to-dos; the call or
  email a task leads to is logged as its own engagement, so counting tasks would count it twice.
  Objects whose rules can only give "no touch" are not pulled at all;
- marketing email events: ``OPEN`` and ``CLICK`` (sends, deliveries and bounces say nothing
  about the buyer);
- web analytics events: page views by URL (pricing pages, blog posts, other pages), form
  submissions, and demo-request forms by form title.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from store.activity_types import ACTIVITY_TYPES, TEAMS

ENGAGEMENT_OBJECTS = ("calls", "emails", "meetings", "notes", "tasks")
EngagementObject = Literal["calls", "emails", "meetings", "notes", "tasks"]
# HubSpot's built-in call outcome "Connected" (the other built-ins are busy, no answer,
# left voicemail, left live message, wrong number).
CONNECTED_DISPOSITION = "f240bbac-87c9-4f6e-bf70-924b57d47db7"


def _known_type(value: str | None) -> str | None:
    if value is not None and value not in ACTIVITY_TYPES:
        raise ValueError(f"unknown canonical activity type {value!r}; known: {', '.join(ACTIVITY_TYPES)}")
    return value


class EngagementRule(BaseModel):
    """One rule: the object it applies to, the property values it needs, the type it gives."""

    model_config = ConfigDict(extra="forbid")

    object: EngagementObject
    when: dict[str, list[str]] = Field(
        default_factory=dict,
        description="property -> accepted values (case-insensitive); every listed property must match",
    )
    min_duration_seconds: int | None = Field(None, ge=0)
    activity_type: str | None
    team: str | None = Field(None, description="overrides the type's default team")

    _type = field_validator("activity_type")(classmethod(lambda cls, v: _known_type(v)))

    @field_validator("team")
    @classmethod
    def _team(cls, value: str | None) -> str | None:
        if value is not None and value not in TEAMS:
            raise ValueError(f"unknown team {value!r}; known: {', '.join(TEAMS)}")
        return value

    def matches(self, properties: dict[str, str | None], duration_seconds: int | None) -> bool:
        for name, accepted in self.when.items():
            value = (properties.get(name) or "").strip().lower()
            if value not in {a.lower() for a in accepted}:
                return False
        return self.min_duration_seconds is None or (duration_seconds or 0) >= self.min_duration_seconds


class PageRule(BaseModel):
    """A web event whose page URL (or form title) contains ``contains`` becomes ``activity_type``."""

    model_config = ConfigDict(extra="forbid")

    contains: str = Field(min_length=1)
    activity_type: str

    _type = field_validator("activity_type")(classmethod(lambda cls, v: _known_type(v)))


def _default_engagement_rules() -> list[EngagementRule]:
    connected = {"hs_call_disposition": [CONNECTED_DISPOSITION]}
    return [
        EngagementRule(object="calls", when=connected, min_duration_seconds=300,
                       activity_type="meaningful_conversation"),
        EngagementRule(object="calls", when=connected, activity_type="call_connected"),
        EngagementRule(object="calls", activity_type="call"),
        EngagementRule(object="emails", when={"hs_email_direction": ["INCOMING_EMAIL"]}, activity_type="email_reply"),
        EngagementRule(object="emails", activity_type="email_sent"),
        EngagementRule(object="meetings", when={"hs_meeting_outcome": ["COMPLETED"]},
                       activity_type="meeting_completed"),
        EngagementRule(object="meetings", when={"hs_meeting_outcome": ["CANCELED", "NO_SHOW"]}, activity_type=None),
        EngagementRule(object="meetings", activity_type="meeting_scheduled"),
        EngagementRule(object="notes", activity_type=None),
        EngagementRule(object="tasks", activity_type=None),
    ]


class HubSpotActivityMapping(BaseModel):
    """The whole mapping; every part has defaults, so configure only what differs."""

    model_config = ConfigDict(extra="forbid")

    engagements: list[EngagementRule] = Field(default_factory=_default_engagement_rules)
    email_events: dict[str, str | None] = Field(
        default_factory=lambda: {"OPEN": "email_open", "CLICK": "email_click"},
        description="marketing email event type -> canonical type; unlisted types are not stored",
    )
    web_events: dict[str, str | None] = Field(
        default_factory=lambda: {"e_visited_page": "web_visit", "e_submitted_form": "form_submission"},
        description="event analytics event type -> canonical type; unlisted types are not pulled",
    )
    page_rules: list[PageRule] = Field(
        default_factory=lambda: [
            PageRule(contains="/pricing", activity_type="pricing_page_visit"),
            PageRule(contains="/blog", activity_type="blog_visit"),
        ],
        description="page views whose URL contains the text take the rule's type instead (first match wins)",
    )
    form_rules: list[PageRule] = Field(
        default_factory=lambda: [
            PageRule(contains="demo", activity_type="demo_request"),
            PageRule(contains="webinar", activity_type="webinar_registration"),
            PageRule(contains="newsletter", activity_type="newsletter_subscription"),
        ],
        description="form submissions whose form title contains the text (case-insensitive) take the rule's type",
    )

    @field_validator("email_events", "web_events")
    @classmethod
    def _types(cls, value: dict[str, str | None]) -> dict[str, str | None]:
        for canonical in value.values():
            _known_type(canonical)
        return value

    @model_validator(mode="after")
    def _every_object_has_a_last_resort(self) -> HubSpotActivityMapping:
        for name in ENGAGEMENT_OBJECTS:
            rules = [r for r in self.engagements if r.object == name]
            if not rules or rules[-1].when or rules[-1].min_duration_seconds is not None:
                raise ValueError(
                    f"engagement rules for {name} must end with a rule without conditions "
                    "(its activity_type may be null), so every record has a defined outcome"
                )
        return self

    def engagement_type(
        self, object_name: str, properties: dict[str, str | None], duration_seconds: int | None
    ) -> tuple[str | None, str | None]:
        """(canonical type or None for "not a touch", team override) of one engagement."""
        for rule in self.engagements:
            if rule.object == object_name and rule.matches(properties, duration_seconds):
                return rule.activity_type, rule.team
        return None, None

    def pulls(self, object_name: str) -> bool:
        """Whether any rule of an engagement object gives a type: if none does, skip pulling it."""
        return any(r.activity_type for r in self.engagements if r.object == object_name)

    def web_event_type(self, event_type: str, properties: dict[str, str | None]) -> str | None:
        canonical = self.web_events.get(event_type)
        if canonical is None:
            return None
        if canonical == "web_visit":
            url = (properties.get("hs_url") or "").lower()
            for rule in self.page_rules:
                if rule.contains.lower() in url:
                    return rule.activity_type
        elif canonical == "form_submission":
            title = " ".join(
                (properties.get(k) or "") for k in ("hs_form_title", "hs_form_name", "hs_title")
            ).lower()
            for rule in self.form_rules:
                if rule.contains.lower() in title:
                    return rule.activity_type
        return canonical
