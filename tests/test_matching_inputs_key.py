"""The matching-inputs fingerprint: it must move with every field the matcher reads, and only those.

An incremental run trusts it to skip people whose edits cannot move their match, so a field the
matcher reads but the fingerprint leaves out would leave stale matches until the nightly full run.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from config.matching import MatchingConfig
from matching import match
from matching.inputs_key import MATCH_FIELDS, match_inputs_key
from store.records import PersonRecord
from tests.test_matching_accuracy import small_org


def _other_value(person: PersonRecord, name: str) -> object:
    value = getattr(person, name)
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 4242
    if isinstance(value, datetime):
        return datetime(2020, 1, 2, tzinfo=UTC)
    return "zz-edited-value"


def test_every_field_the_matcher_reads_moves_the_key() -> None:
    person = PersonRecord(1, "salesforce", "00Q1", "lead", "Ann", "Lee", "ann@acme.com", "CFO", "Acme", "acme.com",
                          "+1 415 555 0100", "US", "CA", "San Francisco", "Software", 120, None, "Open")
    key = match_inputs_key(person)
    for name in MATCH_FIELDS:
        assert match_inputs_key(dataclasses.replace(person, **{name: _other_value(person, name)})) != key, name


def test_fields_left_out_of_the_key_never_move_a_match() -> None:
    accounts, leads, contacts, _ = small_org(2)
    config = MatchingConfig()
    people = leads[:400]
    before = match(people, accounts, config, contacts=contacts)
    left_out = [f.name for f in dataclasses.fields(PersonRecord) if f.name not in MATCH_FIELDS and f.name != "id"]
    assert {"title", "status", "source", "created_at"} <= set(left_out)
    for name in left_out:
        edited = [dataclasses.replace(p, **{name: _other_value(p, name)}) for p in people]
        assert all(match_inputs_key(e) == match_inputs_key(p) for e, p in zip(edited, people, strict=True))
        assert match(edited, accounts, config, contacts=contacts) == before, name
