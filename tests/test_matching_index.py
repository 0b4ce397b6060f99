"""The account index's building blocks, against the numpy operations they stand in for."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from matching.index import sorted_intersection

POSTINGS = st.sets(st.integers(min_value=0, max_value=300), max_size=80).map(
    lambda positions: np.array(sorted(positions), dtype=np.int32))


@given(POSTINGS, POSTINGS)
def test_the_intersection_of_two_postings_is_numpys(mine: np.ndarray, theirs: np.ndarray) -> None:
    found = sorted_intersection(mine, theirs)
    assert found.dtype == mine.dtype
    assert found.tolist() == np.intersect1d(mine, theirs, assume_unique=True).tolist()
