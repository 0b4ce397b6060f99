"""Score rows' breakdowns: encoded once, as the store writes JSON, with no NaN left in them."""

from __future__ import annotations

import json
import math

from scoring.rows import _json_text
from store.types import JsonText


def test_a_clean_breakdown_is_encoded_as_the_store_would() -> None:
    breakdown = {"engagement": {"parts": {"Webinar": 12.5, "Café visit": 3.0}, "persona": "exec"}, "grade": 2}
    encoded = _json_text(breakdown)
    assert isinstance(encoded, JsonText)
    assert encoded == json.dumps(breakdown, ensure_ascii=False)


def test_nan_and_infinities_anywhere_become_null() -> None:
    breakdown = {"a": math.nan, "b": {"c": math.inf, "d": [1.0, -math.inf, {"e": math.nan}]}, "f": (2.0, math.nan)}
    assert json.loads(_json_text(breakdown)) == {"a": None, "b": {"c": None, "d": [1.0, None, {"e": None}]},
                                                 "f": [2.0, None]}
