"""Which canonical activity type each HubSpot engagement and marketing event becomes.

The rules are the ``activities.hubspot`` list of the configuration (:mod:`config.activities`), applied
by the classifier every connector shares (:mod:`connectors.activity_rules`): ordered rules, the
first match wins, ``type: null`` means "not a touch, not stored". Rule objects are HubSpot's
object names (``calls``, ``emails``, ``meetings``, ``notes``, ``tasks``) plus ``email_events`` and
``web_events``; rule fields are HubSpot property names, the email event's own fields (``type``,
``subject``...) and, for web events, ``eventType`` and the event's properties (``hs_url``,
``hs_form_title``...).

When the configuration lists no HubSpot rule, these defaults apply, and why:
- calls: every logged call is a ``call``; the shared duration refinement makes it
  ``call_connected`` / ``meaningful_conversation`` (``activities.call_connected_seconds``...);
- emails: replies (``INCOMING_EMAIL``) are ``email_reply``, the rest ``email_sent``;
- meetings: a ``COMPLETED`` outcome is ``meeting_completed``; cancelled and no-show meetings are
  no touch; anything else ``meeting_scheduled`` (``meeting_completed`` once its end has passed);
- notes and tasks: no touch. Notes are the rep's own writing and tasks are to-dos; the call or
  email a task leads to is logged as its own engagement, so counting tasks would count it twice.
  An object whose rules can only say "no touch" is not pulled at all;
- marketing email events: ``OPEN`` and ``CLICK`` (sends, deliveries and bounces say nothing
  about the buyer), and only those types are requested;
- web analytics events: page views by URL (pricing, blog, other pages) and form submissions by
  form title (demo requests, webinar and newsletter sign-ups, other forms).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from config.activities import ActivityMappingConfig, ActivityRule
from connectors.activity_rules import ActivityClassifier

EMAIL_EVENTS = "email_events"
WEB_EVENTS = "web_events"


def _rule(object_: str, type_: str | None, equals: dict[str, list[str]] | None = None,
          matches: dict[str, str] | None = None) -> ActivityRule:
    return ActivityRule(object=object_, type=type_, equals=equals or {}, matches=matches or {})


def default_hubspot_rules() -> list[ActivityRule]:
    page = {"eventType": ["e_visited_page"]}
    form = {"eventType": ["e_submitted_form"]}
    return [
        _rule("calls", "call"),
        _rule("emails", "email_reply", equals={"hs_email_direction": ["INCOMING_EMAIL"]}),
        _rule("emails", "email_sent"),
        _rule("meetings", None, equals={"hs_meeting_outcome": ["CANCELED", "NO_SHOW"]}),
        _rule("meetings", "meeting_completed", equals={"hs_meeting_outcome": ["COMPLETED"]}),
        _rule("meetings", "meeting_scheduled"),
        _rule("notes", None),
        _rule("tasks", None),
        _rule(EMAIL_EVENTS, "email_open", equals={"type": ["OPEN"]}),
        _rule(EMAIL_EVENTS, "email_click", equals={"type": ["CLICK"]}),
        _rule(EMAIL_EVENTS, None),
        _rule(WEB_EVENTS, "pricing_page_visit", equals=page, matches={"hs_url": r"/pricing"}),
        _rule(WEB_EVENTS, "blog_visit", equals=page, matches={"hs_url": r"/blog"}),
        _rule(WEB_EVENTS, "web_visit", equals=page),
        _rule(WEB_EVENTS, "demo_request", equals=form, matches={"hs_form_title": r"\bdemo\b"}),
        _rule(WEB_EVENTS, "webinar_registration", equals=form, matches={"hs_form_title": r"webinar"}),
        _rule(WEB_EVENTS, "newsletter_subscription", equals=form, matches={"hs_form_title": r"newsletter"}),
        _rule(WEB_EVENTS, "form_submission", equals=form),
        _rule(WEB_EVENTS, None),
    ]


class HubSpotActivities:
    """The HubSpot rules, compiled once per pull."""

    def __init__(self, config: ActivityMappingConfig | None = None) -> None:
        config = config or ActivityMappingConfig()
        self.rules: list[ActivityRule] = list(config.hubspot) or default_hubspot_rules()
        self.classifier = ActivityClassifier(self.rules, config)

    def _of(self, object_name: str) -> list[ActivityRule]:
        return [r for r in self.rules if r.object.lower() == object_name.lower()]

    def pulls(self, object_name: str) -> bool:
        """Whether any rule can give ``object_name`` a type: if none can, it is not worth pulling."""
        return any(r.type for r in self._of(object_name))

    def fields_used(self, object_name: str) -> set[str]:
        """The properties the rules test, so the pull requests them."""
        return self.classifier.fields_used(object_name)

    def requested_values(self, object_name: str, field: str) -> list[str] | None:
        """The values of ``field`` worth requesting (e.g. email event types), or None for "all of them".

        Only the rules before the first rule that types records without testing ``field`` can be
        skipped by value: from there on every value may matter.
        """
        values: list[str] = []
        for rule in self._of(object_name):
            accepted = rule.equals.get(field)
            if accepted is None:
                return None if rule.type else sorted(set(values))
            if rule.type:
                values.extend(accepted)
        return sorted(set(values))

    def engagement_type(self, object_name: str, properties: Mapping[str, Any], duration_seconds: int | None,
                        meeting_end: datetime | None, now: datetime) -> str | None:
        return self.classifier.classify(object_name, properties, duration_seconds=duration_seconds,
                                        meeting_end=meeting_end, now=now)

    def email_event_type(self, event: Mapping[str, Any]) -> str | None:
        return self.classifier.classify(EMAIL_EVENTS, event)

    def web_event_type(self, event_type: str, properties: Mapping[str, Any]) -> str | None:
        return self.classifier.classify(WEB_EVENTS, {**properties, "eventType": event_type})
