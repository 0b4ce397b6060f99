"""JSON decoded with orjson gives what ``json`` gives: in property tests, and through the store's JSON columns."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, insert, select

from store import schema
from store.json_codec import loads
from store.types import utcnow


def same(a: Any, b: Any) -> bool:
    """Equal values of the same types all the way down (an int is not its float; NaN is NaN; keys in any
    order, as PostgreSQL's JSONB keeps them)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@given(json_values, st.booleans(), st.sampled_from(["str", "bytes"]))
@settings(max_examples=500, deadline=None)
def test_any_value_json_writes_decodes_as_json_decodes_it(value: Any, ascii_only: bool, kind: str) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)  # NaN and infinities as json writes them
    data = text if kind == "str" else text.encode("utf-8", "surrogatepass")
    assert same(loads(data), json.loads(data))


@pytest.mark.parametrize("text", [
    "123456789012345678901234567890",  # past 64 bits: orjson would give a float
    "-9223372036854775809",
    '{"id": 18446744073709551616}',
    "[NaN, Infinity, -Infinity]",
    '"\\ud800"',  # a lone surrogate escape
    '{"a": 1, "a": 2}',  # the last of a repeated key
    "1e400",
    "-0",
    "0.1",
])
def test_what_orjson_would_decode_otherwise_is_decoded_as_json_does(text: str) -> None:
    assert same(loads(text), json.loads(text))
    assert same(loads(text.encode()), json.loads(text.encode()))


@pytest.mark.parametrize("text", ["", "{", "[1,]", "nul", b"\xff\xfe"])
def test_what_json_refuses_is_refused_with_its_error(text: str | bytes) -> None:
    with pytest.raises(ValueError) as expected:
        json.loads(text)
    with pytest.raises(type(expected.value)):
        loads(text)


def test_json_columns_read_back_big_integers_and_nested_values_exactly(engine: Engine) -> None:
    values = {"ABM_Grade__c": "4", "big": 2**70 + 1, "nested": [1, 2.5, None, {"x": "é"}], "small": -3}
    with engine.begin() as conn:
        conn.execute(insert(schema.WritebackState.__table__), [{
            "crm": "salesforce", "object": "Account", "crm_id": "001D000000IRFmaIAH", "field_values": values,
            "written_at": utcnow(), "run_id": 1}])
        stored = conn.execute(select(schema.WritebackState.field_values)).scalar_one()
    assert same(stored, values)
