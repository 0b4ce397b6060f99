"""Putting the rows changed since a kept copy in place (store.kept_copies.merge): the same rows as the copy's
with each changed row replaced and each new one where its id belongs, whatever the ids, in the copy's types."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from store.kept_copies import merge


def _by_dict(base: list[np.ndarray], newer: list[np.ndarray]) -> list[list]:
    rows = {int(i): tuple(column[n].item() for column in base[1:]) for n, i in enumerate(base[0])}
    rows.update({int(i): tuple(column[n].item() for column in newer[1:]) for n, i in enumerate(newer[0])})
    ids = sorted(rows)
    return [ids, *([rows[i][c] for i in ids] for c in range(len(base) - 1))]


def _columns(ids: list[int], values: list[int], id_type: str, value_type: str) -> list[np.ndarray]:
    return [np.array(ids, dtype=id_type), np.array(values, dtype=value_type),
            np.array([v % 2 == 0 for v in values], dtype=bool)]


@st.composite
def copies(draw: st.DrawFn) -> tuple[list[np.ndarray], list[np.ndarray]]:
    base_ids = sorted(draw(st.sets(st.integers(1, 200), max_size=40)))
    newer_ids = sorted(draw(st.sets(st.integers(1, 260), max_size=40)))  # changed ones, new ones inside and after
    values = st.integers(-(2**31), 2**31 - 1)
    base = _columns(base_ids, draw(st.lists(values, min_size=len(base_ids), max_size=len(base_ids))), "int64", "int32")
    newer = _columns(newer_ids, draw(st.lists(values, min_size=len(newer_ids), max_size=len(newer_ids))), "int64",
                     "int64")  # read from the table in another type than the copy keeps
    return base, newer


@settings(max_examples=300, deadline=None)
@given(copies())
def test_merged_rows_are_the_copys_with_every_changed_and_new_row_in_place(pair: tuple) -> None:
    base, newer = pair
    merged = merge(base, newer)
    assert [column.tolist() for column in merged] == _by_dict(base, newer)
    assert [column.dtype for column in merged] == [column.dtype for column in base]


def test_a_copy_decoded_from_its_bytes_is_merged_without_being_written_to() -> None:
    """A decoded copy's columns are read-only views of its parts: merging copies them, whether the rows added
    come after the copy (every new touch, person and match: the fast way) or fall inside it."""
    ids = np.arange(0, 20, 2, dtype=np.int64)
    base = [np.frombuffer(ids.tobytes(), dtype=np.int64), np.frombuffer(np.arange(10, dtype=np.int32).tobytes(),
                                                                        dtype=np.int32)]
    after = merge(base, [np.array([4, 30, 31]), np.array([-1, -2, -3])])
    assert after[0].tolist() == [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 30, 31]
    assert after[1].tolist() == [0, 1, -1, 3, 4, 5, 6, 7, 8, 9, -2, -3]
    inside = merge(base, [np.array([5, 30]), np.array([-5, -30])])
    assert inside[0].tolist() == [0, 2, 4, 5, 6, 8, 10, 12, 14, 16, 18, 30]
    assert inside[1].tolist() == [0, 1, 2, -5, 3, 4, 5, 6, 7, 8, 9, -30]
    assert base[1].tolist() == list(range(10))
