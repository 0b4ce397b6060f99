"""Copies of a big table kept between runs as a few columns of numbers (``kept_copies``, one copy per name),
and the two operations every such copy needs: putting the rows changed since in place, and checking that
no row was added behind the change stamp.

A stage that reads every row of a big table on each run, while a run changes a few percent of them, keeps
what it reads of a row as fixed-width numbers (strings become codes into names the header holds), reads the
copy back, then only the rows whose ``changed_at`` moved since (see :mod:`worker.kept_touches`,
:mod:`worker.kept_people` and :mod:`worker.kept_contacts`; :mod:`worker.kept_titles` keeps a table of its
own). Parts hold ``PART_ROWS`` rows each, well inside any blob limit.

A copy is read only by the code that wrote it: its header names the schema revision and the format of its
owner, and a copy of another revision, format or shape is ignored (the owner reads the table instead and
keeps a new copy).

A copy can be read early, while other tables are still being written (:class:`Spec`, ``ahead``): decoding one is
most of what reading it costs, and it stands apart from the table it copies. Every copy written gets an id of its
own in its header, so a copy read early is used only while it is still the one stored.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np
from sqlalchemy import ColumnElement, Connection, delete, func, insert, select

from store.migrate import head_revision
from store.schema import KeptCopy

PART_ROWS = 1_000_000
T = TypeVar("T")


class Codes(dict[Any, int]):
    """Value -> code, a new value getting the next code: how a copy holds strings as numbers (the header keeps
    the values in code order). Looked up by ``map`` in C; hits never leave it."""

    def __missing__(self, value: Any) -> int:
        code = self[value] = len(self)
        return code

    @classmethod
    def of(cls, values: Iterable[Any]) -> Codes:
        """The codes of these values, in their order (as a header keeps them)."""
        return cls((value, code) for code, value in enumerate(values))


@dataclass(frozen=True)
class Kept:
    """A copy as read back: its header (what its owner wrote, with ``rows``) and its columns."""

    header: dict[str, Any]
    columns: list[np.ndarray]


TEXT = "text"  # the dtype of a column of strings (or None), kept as a JSON array per part


@dataclass(frozen=True)
class Encoded:
    """A copy ready to be kept: its header and its parts' bytes (see :func:`encode`). Encoding is most of what
    keeping a copy costs (a million titles to JSON), and needs no database: a process reading the table beside
    a stage can encode the copy, and the stage then only writes it (:func:`write`)."""

    name: str
    header: dict[str, Any]
    parts: list[bytes]


@dataclass(frozen=True)
class Current(Generic[T]):
    """What a stage reads of a kept table as it is now (``value``), and the copy to keep in place of the stored one
    when it was not read or has grown stale (None: the stored copy stays). Read without writing, so a process
    beside the stage can read it (:mod:`worker.score_prefetch`); :func:`keep` then writes the copy."""

    value: T
    rewrite: Encoded | None


def keep(conn: Connection, current: Current[T]) -> T:
    """The value of ``current``, its copy kept first when one is due."""
    if current.rewrite is not None:
        write(conn, current.rewrite)
    return current.value


def encode(name: str, fmt: int, columns: Sequence[Any], dtypes: Sequence[str], header: Mapping[str, Any],
           part_rows: int = PART_ROWS) -> Encoded:
    """``columns`` (one length, kept as ``dtypes``) as the copy ``name``: numbers in parts 1..P, a part's columns
    one after the other; each ``TEXT`` column then in P parts of its own, after them."""
    rows = len(columns[0]) if len(columns) else 0
    parts = (rows + part_rows - 1) // part_rows
    full = {**header, "format": fmt, "revision": head_revision(), "rows": rows, "parts": parts,
            "copy": uuid.uuid4().hex}
    numbers = [(c, d) for c, d in zip(columns, dtypes, strict=True) if d != TEXT]
    texts = [c for c, d in zip(columns, dtypes, strict=True) if d == TEXT]
    windows = [slice(part * part_rows, (part + 1) * part_rows) for part in range(parts)]
    blobs = [b"".join(np.ascontiguousarray(column[window], dtype=dtype).tobytes() for column, dtype in numbers)
             for window in windows]
    blobs += [json.dumps(list(column[window]), ensure_ascii=False).encode("utf-8", "surrogatepass")
              for column in texts for window in windows]
    return Encoded(name, full, blobs)


def write(conn: Connection, copy: Encoded) -> None:
    """Keep ``copy`` in place of any earlier copy of its name."""
    conn.execute(delete(KeptCopy).where(KeptCopy.name == copy.name))
    conn.execute(insert(KeptCopy), [{"name": copy.name, "part": 0, "header": copy.header, "data": b""}])
    for part, blob in enumerate(copy.parts, start=1):
        conn.execute(insert(KeptCopy), [{"name": copy.name, "part": part, "header": None, "data": blob}])


def save(conn: Connection, name: str, fmt: int, columns: Sequence[Any], dtypes: Sequence[str],
         header: Mapping[str, Any], part_rows: int = PART_ROWS) -> None:
    """Keep ``columns`` (one length, stored as ``dtypes``) as the copy ``name``, in place of any earlier one
    (see :func:`encode`)."""
    write(conn, encode(name, fmt, columns, dtypes, header, part_rows))


def load(conn: Connection, name: str, fmt: int, dtypes: Sequence[str]) -> Kept | None:
    """The copy ``name``, or None when there is none or it is not one of this format and schema revision.
    ``TEXT`` columns come back as numpy arrays of objects."""
    header = stored_header(conn, name)
    if not header or header.get("format") != fmt or header.get("revision") != head_revision():
        return None
    blobs = [bytes(blob) for blob in conn.execute(select(KeptCopy.data).where(KeptCopy.name == name, KeptCopy.part > 0)
                                                  .order_by(KeptCopy.part)).scalars()]
    numeric = [d for d in dtypes if d != TEXT]
    n_text = len(dtypes) - len(numeric)
    parts = header.get("parts")
    if not isinstance(parts, int) or len(blobs) != parts * (1 + n_text):
        return None
    try:
        numbers = [_unpack(blob, numeric) for blob in blobs[:parts]]
        texts = [[json.loads(blob.decode("utf-8", "surrogatepass")) for blob in blobs[parts * (1 + j):parts * (2 + j)]]
                 for j in range(n_text)]
    except ValueError:  # a part cut short or edited by hand: the copy is not read
        return None
    numeric_columns = iter([np.concatenate([p[i] for p in numbers]) if numbers else np.empty(0, dtype=dtype)
                            for i, dtype in enumerate(numeric)])
    text_columns = iter([np.array([value for piece in pieces for value in piece], dtype=object) for pieces in texts])
    columns = [next(text_columns) if dtype == TEXT else next(numeric_columns) for dtype in dtypes]
    if any(len(column) != header.get("rows") for column in columns):
        return None
    return Kept(header, columns)


ReadEarlier = Mapping[str, Kept]
"""Copies read before they are wanted, by name (see :meth:`Spec.load`)."""


@dataclass(frozen=True)
class Spec:
    """What one owner keeps under its name: the format it reads and the kind of each column."""

    name: str
    fmt: int
    dtypes: tuple[str, ...]

    def load(self, conn: Connection, ahead: ReadEarlier | None = None) -> Kept | None:
        """The copy as :func:`load` reads it: the one in ``ahead`` when that is still the copy stored (the stored
        header, a row, is all that is read then), else read now."""
        early = ahead.get(self.name) if ahead is not None else None
        if early is not None and still_stored(conn, self.name, early):
            return early
        return load(conn, self.name, self.fmt, self.dtypes)


def stored_header(conn: Connection, name: str) -> dict[str, Any] | None:
    """The header of the copy ``name`` as stored, or None when there is none."""
    return conn.execute(select(KeptCopy.header).where(KeptCopy.name == name, KeptCopy.part == 0)).scalar_one_or_none()


def still_stored(conn: Connection, name: str, kept: Kept) -> bool:
    """Whether ``kept``, read earlier, is still the copy ``name`` stored: the id every copy is written with
    (:func:`encode`; a copy written before ids were given is never taken for another)."""
    return kept.header.get("copy") is not None and stored_header(conn, name) == kept.header


def _unpack(blob: bytes, dtypes: Sequence[str]) -> list[np.ndarray]:
    width = sum(np.dtype(dtype).itemsize for dtype in dtypes)
    n, rest = divmod(len(blob), width)
    if rest:
        raise ValueError(f"a kept part of {len(blob)} bytes holds no whole number of rows")
    out, offset = [], 0
    for dtype in dtypes:
        column = np.frombuffer(blob, dtype=dtype, count=n, offset=offset)
        out.append(column.astype(np.dtype(dtype).newbyteorder("="), copy=False))
        offset += n * column.itemsize
    return out


def merge(base: Sequence[np.ndarray], newer: Sequence[np.ndarray]) -> list[np.ndarray]:
    """``base`` with the rows of ``newer`` in place of the rows of the same ids, and after them by id where
    they are new. The first column is the id: ascending in both, distinct in ``newer``; the other columns
    must already be in ``base``'s codes; each column keeps ``base``'s type.

    The tables kept give a new row an id past every earlier one, so what an increment adds comes after the copy:
    then each column is copied once, with the new rows after it, and the changed rows are written over theirs.
    Removing the changed rows and inserting the rows where they belong copied every column twice: 0.8-1.0 s of
    fresh memory for the L org's 10 million touches in the score stage's process, which reads them after the
    pulls while the match stage runs (0.2 s once the memory is the process's own)."""
    if len(newer[0]) == 0:
        return list(base)
    ids, new_ids = base[0], newer[0]
    at = np.searchsorted(ids, new_ids)
    found = at < len(ids)
    found[found] = ids[at[found]] == new_ids[found]
    added = ~found
    if not len(ids) or not added.any() or new_ids[added][0] > ids[-1]:
        out = [np.concatenate([old, new[added].astype(old.dtype, copy=False)]) for old, new in zip(base, newer,
                                                                                                    strict=True)]
        replaced = at[found]
        for column, new in zip(out, newer, strict=True):
            column[replaced] = new[found]
        return out
    kept = np.ones(len(ids), dtype=bool)
    kept[at[found]] = False
    remaining = [column[kept] for column in base]
    where = np.searchsorted(remaining[0], new_ids)
    return [np.insert(old, where, new) for old, new in zip(remaining, newer, strict=True)]


def holds_every_added(conn: Connection, id_column: ColumnElement[int], kept_through: int, ids: np.ndarray) -> bool:
    """Whether ``ids`` (ascending: a copy of a table's rows up to id ``kept_through``, with the rows changed
    since read on top) hold every row added since. Rows are never removed from the tables kept this way, and
    a new row takes an id past every earlier one, so only the ids past ``kept_through`` are counted, through
    the primary key: counting every row of a big table costs seconds."""
    count, highest = conn.execute(select(func.count(), func.max(id_column)).where(id_column > kept_through)).one()
    return count == int(np.count_nonzero(ids > kept_through)) and (count == 0 or highest == int(ids[-1]))
