"""The account index's building blocks, against the numpy operations they stand in for, and its look-ups."""

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


def _index_of(names: list[str]):
    from config.matching import MatchingConfig
    from matching.engine import Matcher
    from store.records import AccountRecord

    accounts = [AccountRecord(id=i, crm="salesforce", crm_id=f"A{i}", name=name) for i, name in enumerate(names, 1)]
    return Matcher(accounts, MatchingConfig()).indexes["salesforce"]


def test_a_misspelt_word_finds_the_accounts_with_the_word_it_stands_for_the_same_each_time() -> None:
    index = _index_of(["Dynara Labs", "Dynara Systems", "Capital Dynamics", "Globex", "Capitol Foods",
                       "Dynamo Works"])
    named = {position for position, name in enumerate(index.name) if "dynara" in name.split()}
    assert set(index.slip_candidates("dnyara", 40)) == named  # two letters swapped
    assert index.slip_candidates("dnyara", 40) == index.slip_candidates("dnyara", 40)
    assert index.slip_candidates("dnyara", 1) == index.slip_candidates("dnyara", 40)[:1]
    # several misspelt words: each one's accounts in turn, up to the limit, whether they were kept or not
    for limit in (1, 2, 40):
        together = index.ngram_candidates(["dynarra", "capitall"], limit)
        index._misspelt.clear()
        alone = index.ngram_candidates(["dynarra"], limit) + index.ngram_candidates(["capitall"], limit)
        assert together == alone[:limit]
        assert index.ngram_candidates(["dynarra", "capitall"], limit) == together
    assert named <= set(index.ngram_candidates(["dynarra"], 40))
