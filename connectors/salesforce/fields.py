"""Which fields to read from each object: what we want, intersected with what the org has.

Orgs differ: a field can be missing, renamed, or hidden from the integration user by field
level security. A configured field the org lacks is reported once (not on every run, which
would bury the warning) and skipped; the pull goes on. Describe results are kept in the
cursor's state and refreshed daily or when the wanted fields change, so an incremental run
with nothing to do costs no describe call. Fields abm-sync owns (the writeback prefix) are
never read: their changes are our own doing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from connectors.cursor import Cursor, set_state_datetime, state_datetime
from connectors.salesforce.objects import REQUIRED, ObjectSpec

DESCRIBE_KEY = "describe"
REPORTED_KEY = "reported_missing"


class ObjectNotReadable(RuntimeError):
    """The org does not let the integration user read an object the pull needs."""


@dataclass
class FieldSelection:
    fields: dict[str, str]  # API name -> describe type, in query order
    missing: list[str]  # wanted but absent from the org (or hidden from the user)
    newly_missing: list[str] = field(default_factory=list)  # missing and not reported before
    owned: list[str] = field(default_factory=list)  # configured but owned by abm-sync: never read


def wanted_fields(spec: ObjectSpec, extra_fields: list[str], rule_fields: set[str]) -> list[str]:
    names = [*spec.wanted(), *spec.optional, *sorted(rule_fields), *extra_fields]
    return list(dict.fromkeys(names))


def _fingerprint(names: list[str]) -> str:
    return hashlib.sha256(json.dumps(names).encode()).hexdigest()[:16]


def describe_is_fresh(cursor: Cursor, wanted: list[str], now: datetime, refresh: timedelta) -> bool:
    cached = cursor.state.get(DESCRIBE_KEY)
    if not cached or cached.get("wanted") != _fingerprint(wanted):
        return False
    at = state_datetime(cursor, "described_at")
    return at is not None and now - at < refresh


def remember_describe(cursor: Cursor, describe: dict[str, Any], wanted: list[str], now: datetime) -> None:
    """Keep the wanted fields' names and types (not the whole describe: it can be hundreds of fields)."""
    available = {f["name"].lower(): [f["name"], f["type"]] for f in describe.get("fields", [])}
    kept = {w.lower(): available[w.lower()] for w in wanted if w.lower() in available}
    cursor.state[DESCRIBE_KEY] = {"wanted": _fingerprint(wanted), "fields": kept}
    set_state_datetime(cursor, "described_at", now)


def forget_describe(cursor: Cursor) -> None:
    cursor.state.pop(DESCRIBE_KEY, None)


def select_fields(
    spec: ObjectSpec,
    cursor: Cursor,
    wanted: list[str],
    is_owned: Callable[[str], bool],
) -> FieldSelection:
    """The fields to query, from the describe kept in ``cursor`` (call :func:`remember_describe` first)."""
    available: dict[str, list[str]] = cursor.state[DESCRIBE_KEY]["fields"]
    missing_required = [name for name in REQUIRED if name.lower() not in available]
    if missing_required:
        raise ObjectNotReadable(
            f"Salesforce {spec.name}: the integration user cannot read {', '.join(missing_required)}; "
            f"grant read access to {spec.name} and these fields (they are needed to sync it incrementally)"
        )
    fields: dict[str, str] = {}
    missing: list[str] = []
    owned: list[str] = []
    for name in wanted:
        if is_owned(name):
            owned.append(name)
            continue
        found = available.get(name.lower())
        if found is None:
            if name not in spec.optional:
                missing.append(name)
            continue
        fields[found[0]] = found[1]
    reported = set(cursor.state.get(REPORTED_KEY, []))
    newly = [m for m in missing if m not in reported]
    cursor.state[REPORTED_KEY] = sorted(set(missing))
    return FieldSelection(fields, missing, newly, owned)
