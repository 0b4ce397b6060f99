"""Score rows: breakdowns encoded once, as the store writes JSON, with no NaN left in them; and
the reasons' top touch types."""

from __future__ import annotations

import json
import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from scoring.reasons import _top_types
from scoring.rows import _json_text
from store.types import JsonText


def test_a_clean_breakdown_is_encoded_as_json_text() -> None:
    breakdown = {"engagement": {"parts": {"Webinar": 12.5, "Café visit": 3.0}, "persona": "exec"}, "grade": 2,
                 "days": {7: 1.5}, "weight": np.float64(0.25), "count": np.int64(3)}
    encoded = _json_text(breakdown)
    assert isinstance(encoded, JsonText) and type(str(encoded)) is str
    assert json.loads(encoded) == {**breakdown, "days": {"7": 1.5}, "weight": 0.25, "count": 3}
    assert "Café" in encoded  # UTF-8, not \\u escapes


def test_what_orjson_refuses_is_encoded_by_json() -> None:
    breakdown = {"big": 2**70, "ratio": math.nan}
    assert json.loads(_json_text(breakdown)) == {"big": 2**70, "ratio": None}


def test_nan_and_infinities_anywhere_become_null() -> None:
    breakdown = {"a": math.nan, "b": {"c": math.inf, "d": [1.0, -math.inf, {"e": math.nan}]}, "f": (2.0, math.nan)}
    assert json.loads(_json_text(breakdown)) == {"a": None, "b": {"c": None, "d": [1.0, None, {"e": None}]},
                                                 "f": [2.0, None]}


@given(st.lists(st.sampled_from([0.0, -1.0, 0.5, 1.0, 2.0, 3.5]), min_size=1, max_size=30), st.integers(0, 6),
       st.randoms(use_true_random=False))
def test_top_types_are_the_most_scored_types_ties_in_catalogue_order(points: list[float], n: int, rnd) -> None:
    """The reasons' top touch types: the full sort of every type (most first, stable) with the
    types that scored nothing left out."""
    types = list(range(len(points)))
    rnd.shuffle(types)
    reference = [t for t in sorted(types, key=lambda t: -points[t])[:n] if points[t] > 0]
    assert _top_types(points, types, n) == reference
