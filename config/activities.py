"""The ``activities:`` section: which CRM tasks, events and responses count as which canonical activity.

Orgs log activity differently (a call may be a Task with ``TaskSubtype = Call`` in one org and
``Type = Call`` in another; a demo may only be recognisable from its subject), so the mapping
is data: per CRM, an ordered list of rules, the first matching rule wins. A rule names the
CRM object, conditions on the record's fields (all must hold) and the canonical type from
:mod:`store.activity_types`, or ``null`` for records that are not touches at all (an open
to-do, a campaign member who never responded): those are not stored.

Two refinements apply after a rule matched, because they depend on numbers rather than
labels: a ``call`` lasting at least ``call_connected_seconds`` becomes ``call_connected`` and
at least ``meaningful_conversation_seconds`` becomes ``meaningful_conversation``; a
``meeting_scheduled`` whose end has passed when it is read becomes ``meeting_completed`` (and one
read before its end becomes ``meeting_completed`` in the store on the first pull after it:
store.held_meetings).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from store.activity_types import ACTIVITY_TYPES


class ActivityRule(BaseModel):
    """Records of ``object`` whose fields meet every condition get ``type``.

    ``equals``: field -> accepted values (case-insensitive; ``""`` matches an empty field,
    booleans are ``"true"``/``"false"``). ``matches``: field -> regular expression searched
    case-insensitively. No condition at all makes a catch-all rule for the object.
    """

    model_config = ConfigDict(extra="forbid")

    object: str = Field(min_length=1, description="CRM object, e.g. Task, Event, CampaignMember")
    equals: dict[str, list[str]] = Field(default_factory=dict)
    matches: dict[str, str] = Field(default_factory=dict)
    type: str | None = Field(description="canonical activity type, or null: not an activity, not stored")

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str | None) -> str | None:
        if value is not None and value not in ACTIVITY_TYPES:
            raise ValueError(f"unknown activity type {value!r}; known: {', '.join(ACTIVITY_TYPES)}")
        return value

    @field_validator("matches")
    @classmethod
    def _valid_patterns(cls, value: dict[str, str]) -> dict[str, str]:
        for field_name, pattern in value.items():
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{field_name}: invalid regular expression {pattern!r}: {exc}") from None
        return value


def _rule(object_: str, type_: str | None, equals: dict[str, list[str]] | None = None,
          matches: dict[str, str] | None = None) -> dict[str, Any]:
    return {"object": object_, "type": type_, "equals": equals or {}, "matches": matches or {}}


OPEN_TASK_STATUSES = ["Not Started", "In Progress", "Waiting on someone else", "Deferred"]
# Email tasks logged from Outlook or Gmail get "Email: " before the message's own subject.
REPLY_SUBJECT = r"^\s*(email:\s*)?(re|aw|sv|antw|r)\s*:"
DEMO_SUBJECT = r"\bdemo\b"
PROPOSAL_SUBJECT = r"\b(proposal|quote)\b"
EVENT_CAMPAIGNS = ["Event", "Trade Show", "Conference"]

DEFAULT_SALESFORCE_RULES: list[dict[str, Any]] = [
    _rule("Task", None, equals={"Status": OPEN_TASK_STATUSES}),
    _rule("Task", "demo", equals={"Type": ["Demo"]}),
    _rule("Task", "demo", matches={"Subject": DEMO_SUBJECT}),
    _rule("Task", "proposal", equals={"Type": ["Proposal"]}),
    _rule("Task", "proposal", matches={"Subject": PROPOSAL_SUBJECT}),
    _rule("Task", "call", equals={"TaskSubtype": ["Call"]}),
    _rule("Task", "call", equals={"Type": ["Call"]}),
    _rule("Task", "email_reply", equals={"TaskSubtype": ["Email", "ListEmail"]}, matches={"Subject": REPLY_SUBJECT}),
    _rule("Task", "email_sent", equals={"TaskSubtype": ["Email", "ListEmail"]}),
    _rule("Task", "email_sent", equals={"Type": ["Email"]}),
    _rule("Task", "meeting_completed", equals={"Type": ["Meeting"]}),
    _rule("Task", None),
    _rule("Event", "demo", equals={"Type": ["Demo"]}),
    _rule("Event", "demo", matches={"Subject": DEMO_SUBJECT}),
    _rule("Event", "proposal", matches={"Subject": PROPOSAL_SUBJECT}),
    _rule("Event", "meeting_scheduled"),
    # Registrations count before the response flag: Salesforce marks only attendance as a response.
    _rule("CampaignMember", "webinar_registration", equals={"CampaignType": ["Webinar"]},
          matches={"Status": r"regist"}),
    _rule("CampaignMember", "event_registration", equals={"CampaignType": EVENT_CAMPAIGNS},
          matches={"Status": r"regist"}),
    _rule("CampaignMember", None, equals={"HasResponded": ["false"]}),
    _rule("CampaignMember", "webinar_attended", equals={"CampaignType": ["Webinar"]}),
    _rule("CampaignMember", "booth_visit", equals={"CampaignType": EVENT_CAMPAIGNS}, matches={"Status": r"booth"}),
    _rule("CampaignMember", "event_attended", equals={"CampaignType": EVENT_CAMPAIGNS}),
    _rule("CampaignMember", "email_click", equals={"CampaignType": ["Email"]}, matches={"Status": r"click"}),
    _rule("CampaignMember", "email_open", equals={"CampaignType": ["Email"]}, matches={"Status": r"open"}),
    _rule("CampaignMember", "content_download", equals={"CampaignType": ["Content"]}),
    _rule("CampaignMember", "campaign_response"),
]


class ActivityMappingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    call_connected_seconds: int = Field(30, ge=0, description="a call at least this long was connected")
    meaningful_conversation_seconds: int = Field(300, ge=0, description="a call at least this long was a "
                                                 "meaningful conversation")
    salesforce: list[ActivityRule] = Field(
        default_factory=lambda: [ActivityRule(**r) for r in DEFAULT_SALESFORCE_RULES]
    )
    hubspot: list[ActivityRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _durations_ordered(self) -> ActivityMappingConfig:
        if self.meaningful_conversation_seconds < self.call_connected_seconds:
            raise ValueError(
                f"meaningful_conversation_seconds ({self.meaningful_conversation_seconds}) must be at least "
                f"call_connected_seconds ({self.call_connected_seconds})"
            )
        return self
