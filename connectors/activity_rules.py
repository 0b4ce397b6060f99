"""Applying the ``activities:`` rules to CRM records (shared by every connector).

Rules are compiled once per object (lower-cased value sets, compiled patterns) because they
run on every activity of the org: millions of records in a full pull.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from config.activities import ActivityMappingConfig, ActivityRule

NOT_AN_ACTIVITY = None


def rule_text(value: Any) -> str:
    """How a field value is compared: text, booleans as ``true``/``false``, empty as ``""``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class _CompiledRule:
    equals: tuple[tuple[str, frozenset[str]], ...]
    matches: tuple[tuple[str, re.Pattern[str]], ...]
    type: str | None

    def applies(self, record: Mapping[str, Any]) -> bool:
        for field, accepted in self.equals:
            if rule_text(record.get(field)).lower() not in accepted:
                return False
        return all(pattern.search(rule_text(record.get(field))) for field, pattern in self.matches)


def _compile(rule: ActivityRule) -> _CompiledRule:
    return _CompiledRule(
        equals=tuple((f, frozenset(v.lower() for v in values)) for f, values in rule.equals.items()),
        matches=tuple((f, re.compile(p, re.IGNORECASE)) for f, p in rule.matches.items()),
        type=rule.type,
    )


class ActivityClassifier:
    """Canonical activity type of a CRM record, from one CRM's rules.

    The rules' answer depends only on the few fields they test, and activities repeat the same
    few values (subtypes, statuses, templated subjects), so answers are memoized by those values.
    """

    MEMO_LIMIT = 200_000

    def __init__(self, rules: Iterable[ActivityRule], config: ActivityMappingConfig) -> None:
        self._rules: dict[str, list[_CompiledRule]] = {}
        for rule in rules:
            self._rules.setdefault(rule.object.lower(), []).append(_compile(rule))
        self._tested: dict[str, tuple[str, ...]] = {
            name: tuple(sorted({f for r in rules_ for f, _ in (*r.equals, *r.matches)}))
            for name, rules_ in self._rules.items()
        }
        self._memo: dict[tuple[str, tuple[str, ...]], str | None] = {}
        self.connected_seconds = config.call_connected_seconds
        self.meaningful_seconds = config.meaningful_conversation_seconds

    def fields_used(self, object_name: str) -> set[str]:
        """Fields the rules of ``object_name`` test, so the connector can read them."""
        out: set[str] = set()
        for rule in self._rules.get(object_name.lower(), []):
            out.update(f for f, _ in rule.equals)
            out.update(f for f, _ in rule.matches)
        return out

    def classify(
        self,
        object_name: str,
        record: Mapping[str, Any],
        *,
        duration_seconds: int | None = None,
        meeting_end: datetime | None = None,
        now: datetime | None = None,
    ) -> str | None:
        """The canonical type, or None when the record is not an activity (or no rule matches)."""
        name = object_name.lower()
        key = (name, tuple(rule_text(record.get(f)) for f in self._tested.get(name, ())))
        try:
            matched = self._memo[key]
        except KeyError:
            matched = next((r.type for r in self._rules.get(name, []) if r.applies(record)), NOT_AN_ACTIVITY)
            if len(self._memo) >= self.MEMO_LIMIT:
                self._memo.clear()
            self._memo[key] = matched
        return self._refine(matched, duration_seconds, meeting_end, now)

    def _refine(
        self, activity_type: str | None, duration: int | None, meeting_end: datetime | None, now: datetime | None
    ) -> str | None:
        if activity_type == "call" and duration:
            if duration >= self.meaningful_seconds:
                return "meaningful_conversation"
            if duration >= self.connected_seconds:
                return "call_connected"
        if activity_type == "meeting_scheduled" and meeting_end is not None and now is not None and meeting_end <= now:
            return "meeting_completed"
        return activity_type
