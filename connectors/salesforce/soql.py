"""The SOQL the connector sends: one object's fields over a window of ``SystemModstamp``.

Ordered reads (REST) sort by ``SystemModstamp, Id`` and restart after a position with the
keyset predicate ``SystemModstamp > ts OR (SystemModstamp = ts AND Id > id)``, so thousands
of records sharing one stamp page through without loss or loop. Bulk reads leave ``ORDER BY``
out (see :mod:`connectors.salesforce.bulk`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

from connectors.cursor import Window
from connectors.salesforce.values import soql_datetime

_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
STAMP = "SystemModstamp"


def _id_literal(value: str) -> str:
    if not _ID.match(value):
        raise ValueError(f"not a Salesforce id: {value!r}")
    return f"'{value}'"


def after(ts: datetime, record_id: str) -> str:
    """Records strictly after the position (ts, id) in (SystemModstamp, Id) order."""
    stamp = soql_datetime(ts)
    return f"({STAMP} > {stamp} OR ({STAMP} = {stamp} AND Id > {_id_literal(record_id)}))"


def window_query(
    object_name: str,
    fields: Iterable[str],
    window: Window,
    *,
    position: tuple[datetime, str] | None = None,
    ordered: bool = True,
) -> str:
    """SELECT the fields of records in ``window`` (after ``position`` when resuming an ordered read)."""
    names = list(fields)
    for name in [object_name, *names]:
        if not _NAME.match(name):
            raise ValueError(f"not a Salesforce API name: {name!r}")
    where: list[str] = []
    if position is not None:
        where.append(after(*position))
    elif window.lower is not None and window.after_id is not None:
        where.append(after(window.lower, window.after_id))
    elif window.lower is not None:
        where.append(f"{STAMP} >= {soql_datetime(window.lower)}")
    where.append(f"{STAMP} < {soql_datetime(window.upper)}")
    soql = f"SELECT {', '.join(names)} FROM {object_name} WHERE {' AND '.join(where)}"
    if ordered:
        soql += f" ORDER BY {STAMP} ASC, Id ASC"
    return soql
