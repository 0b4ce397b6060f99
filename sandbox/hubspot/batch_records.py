"""The live records a batch write names, read in one query rather than one (or three) per input.

A batch update of 100 records used to read each record three times: once to answer "not
found", once inside ``HubSpotPortal.update``, once after the write. ``BatchRecords`` reads the
records named by plain ids in one ``IN (...)`` query when the batch starts and keeps each one
as the batch last wrote it, so an id sent twice in a batch sees its first write, as a read of
the table would. Ids found another way (``idProperty``) are read when their input comes up,
as before, so a lookup that fails still fails at its input's turn, after the earlier writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sandbox.hubspot.schema import HsObjectType

if TYPE_CHECKING:
    from sandbox.hubspot.portal import HubSpotPortal, Row

MAX_SQLITE_INTEGER = 2**63 - 1


def plain_id(item: dict[str, Any]) -> int | None:
    """The record id of a batch input addressed by ``hs_object_id``, as ``_resolve_id`` reads it;
    None for other inputs, and for ids that make ``_resolve_id`` or SQLite raise (those raise
    at their input's turn, as before)."""
    id_property = item.get("idProperty")
    if id_property and id_property != "hs_object_id":
        return None
    text = str(item.get("id", "")).strip()
    if not text.isdigit():
        return None
    try:
        record_id = int(text)
    except ValueError:  # digits that int() rejects, such as superscripts
        return None
    return record_id if record_id <= MAX_SQLITE_INTEGER else None


class BatchRecords:
    """The records of one batch request, for ``HubSpotPortal.update(..., current=...)`` or a batch read.

    A batch that writes holds the storage (``Storage.batch``) meanwhile, so no other writer can
    change a record between this read and the batch's write.
    """

    def __init__(self, portal: HubSpotPortal, obj: HsObjectType, inputs: Sequence[dict[str, Any]],
                 archived: bool = False) -> None:
        self._portal = portal
        self._obj = obj
        self._archived = archived
        ids = list(dict.fromkeys(i for item in inputs if (i := plain_id(item)) is not None))
        self._read = set(ids)
        self._rows = portal.rows_by_ids(obj, ids, archived) if ids else {}

    def get(self, record_id: int) -> Row | None:
        """The record ``record_id`` (live, or archived for an archived batch) as it stands at this
        point of the batch, or None: what ``portal.row`` would answer now."""
        if record_id in self._read:
            return self._rows.get(record_id)
        return self._portal.row(self._obj, record_id, self._archived)

    def written(self, record_id: int, row: Row) -> None:
        """Remember ``row`` (what ``update`` returned) as the record's state from now on."""
        self._rows[record_id] = row
        self._read.add(record_id)
