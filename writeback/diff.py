"""Which fields of a record need writing: desired values against the last value successfully written.

Comparing with the last *successful* write (not with what was computed last run) is what makes
failed writes retry by themselves. A tolerance keeps score noise off the API budget: a number
moving by less than its field's tolerance stays as written, and since the comparison is always
with what the CRM holds, slow drift still gets written once it adds up to a real move.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from writeback.catalogue import CatalogueField


@dataclass(frozen=True)
class RecordChange:
    """The fields to send for one record (canonical text, None clears) and what they held before.

    ``previous`` has an entry only for fields written before; a missing key means never written.
    """

    crm_id: str
    values: dict[str, str | None]
    previous: dict[str, str | None]


def is_change(field: CatalogueField, old: str | None, new: str | None, written_before: bool) -> bool:
    """Whether ``new`` differs from the last written ``old`` enough to be rewritten."""
    if not written_before:
        # What the CRM holds is unknown (never written, or the baseline was dropped): write it, even an
        # empty value, so the CRM ends equal to the store. It costs no call: the record is sent anyway.
        return True
    if old == new:
        return False
    if old is None or new is None:
        return True
    if field.type == "number" and field.tolerance > 0:
        try:
            return abs(float(new) - float(old)) >= field.tolerance
        except ValueError:
            return True  # a baseline in an older format: rewrite it in the current one
    return True


def diff_record(
    crm_id: str,
    desired: Mapping[str, str | None],
    baseline: Mapping[str, str | None],
    fields: Sequence[CatalogueField],
    force: bool = False,
) -> RecordChange | None:
    """The change to write for one record, or None when nothing needs writing.

    Fields that do not trigger a write on their own (``last scored at``) ride along with any
    other change. ``force`` sends every field, whatever the baseline says.
    """
    if force:
        return RecordChange(crm_id, {f.api_name: desired.get(f.api_name) for f in fields}, _previous(baseline, fields))
    changed: dict[str, str | None] = {}
    companions: dict[str, str | None] = {}
    for f in fields:
        name = f.api_name
        new = desired.get(name)
        written = name in baseline
        if f.triggers_write:
            if is_change(f, baseline.get(name), new, written):
                changed[name] = new
        elif not written or baseline[name] != new:
            companions[name] = new
    if not changed:
        return None
    return RecordChange(crm_id, {**changed, **companions}, _previous(baseline, fields))


def _previous(baseline: Mapping[str, str | None], fields: Sequence[CatalogueField]) -> dict[str, str | None]:
    # built only for records that are written: most of an incremental run's targets are not
    return {f.api_name: baseline[f.api_name] for f in fields if f.api_name in baseline}
