"""Which fields of a record need writing: desired values against the last value successfully written.

Comparing with the last *successful* write (not with what was computed last run) is what makes
failed writes retry by themselves. A tolerance keeps score noise off the API budget: a number
moving by less than its field's tolerance stays as written, and since the comparison is always
with what the CRM holds, slow drift still gets written once it adds up to a real move.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

from writeback.catalogue import CatalogueField

# One tuple per set of field names a change can carry (a handful per object), shared by every change with that set.
_NAMES: dict[tuple[str, ...], tuple[str, ...]] = {}


class RecordChange:
    """The fields to send for one record (canonical text, None clears); not to be changed once made.

    Kept as the shared tuple of its field names and a tuple of their values rather than a dict: a full
    L writeback holds close to two million changes at once (one object written while the next is diffed,
    on both CRMs), and a dict of 13 fields weighs 464 bytes where its values' tuple weighs 144. What
    they held before is not kept here either; only the report's few samples show it (see
    :meth:`writeback.report.Sample.of`).
    """

    __slots__ = ("crm_id", "names", "texts")

    def __init__(self, crm_id: str, values: Mapping[str, str | None]) -> None:
        names = tuple(values)
        self.crm_id = crm_id
        self.names: tuple[str, ...] = _NAMES.setdefault(names, names)
        self.texts: tuple[str | None, ...] = tuple(values.values())

    @classmethod
    def of(cls, crm_id: str, names: tuple[str, ...], texts: tuple[str | None, ...]) -> RecordChange:
        """The change setting ``names`` to ``texts``, made without a dict (the differ makes millions)."""
        change = cls.__new__(cls)
        change.crm_id, change.names, change.texts = crm_id, _NAMES.setdefault(names, names), texts
        return change

    @property
    def values(self) -> dict[str, str | None]:
        """{field: value}, made on each call: in a loop, read it once."""
        return dict(zip(self.names, self.texts, strict=True))

    def items(self) -> Iterator[tuple[str, str | None]]:
        """(field, value) pairs, without building the dict."""
        return zip(self.names, self.texts, strict=True)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RecordChange):
            return NotImplemented
        return self.crm_id == other.crm_id and self.values == other.values

    __hash__ = None  # type: ignore[assignment]  # equal changes may list their fields in another order

    def __repr__(self) -> str:
        return f"RecordChange(crm_id={self.crm_id!r}, values={self.values!r})"


def field_names(changes: Iterable[RecordChange]) -> set[str]:
    """Every field any of ``changes`` sets (their name tuples are shared: each set is read once)."""
    distinct = {id(c.names): c.names for c in changes}
    return {name for names in distinct.values() for name in names}


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


Differ = Callable[[str, Mapping[str, "str | None"], Mapping[str, "str | None"]], "RecordChange | None"]


def differ(fields: Sequence[CatalogueField], force: bool = False) -> Differ:
    """:func:`diff_record` for one object's ``fields``, with what each field needs looked up once.

    An incremental L run diffs about a million field values; reading each field's name, type
    and tolerance through its spec once per value cost as much as the comparisons themselves.
    """
    names = tuple(f.api_name for f in fields)
    if force:
        return lambda crm_id, desired, baseline: RecordChange.of(crm_id, names, tuple(map(desired.get, names)))
    # (name, triggers a write, tolerance when the field is a number compared with one, else 0)
    checks = [(f.api_name, f.triggers_write, f.tolerance if f.type == "number" and f.tolerance > 0 else 0.0)
              for f in fields]
    # a record never written sends every field: those that trigger a write first, then their companions
    unwritten = tuple([n for n, triggers, _ in checks if triggers] + [n for n, triggers, _ in checks if not triggers])
    any_trigger = any(triggers for _, triggers, _ in checks)

    def diff(crm_id: str, desired: Mapping[str, str | None],
             baseline: Mapping[str, str | None]) -> RecordChange | None:
        if not baseline:  # what the CRM holds is unknown (the whole of a first full writeback): everything
            return RecordChange.of(crm_id, unwritten, tuple(map(desired.get, unwritten))) if any_trigger else None
        changed: dict[str, str | None] = {}
        companions: dict[str, str | None] = {}
        for name, triggers, tolerance in checks:
            new = desired.get(name)
            if name not in baseline:  # never written: what the CRM holds is unknown
                if triggers:
                    changed[name] = new
                else:
                    companions[name] = new
                continue
            old = baseline[name]
            if old == new:
                continue
            if not triggers:
                companions[name] = new
            elif old is None or new is None or not tolerance or _moved(old, new, tolerance):
                changed[name] = new
        if not changed:
            return None
        if companions:
            changed.update(companions)
        return RecordChange.of(crm_id, tuple(changed), tuple(changed.values()))

    return diff


def _moved(old: str, new: str, tolerance: float) -> bool:
    try:
        return abs(float(new) - float(old)) >= tolerance
    except ValueError:
        return True  # a baseline in an older format: rewrite it in the current one


def diff_record(
    crm_id: str,
    desired: Mapping[str, str | None],
    baseline: Mapping[str, str | None],
    fields: Sequence[CatalogueField],
    force: bool = False,
) -> RecordChange | None:
    """The change to write for one record, or None when nothing needs writing.

    Fields that do not trigger a write on their own (``last scored at``) ride along with any
    other change. ``force`` sends every field, whatever the baseline says. (A pass over many
    records builds one :func:`differ` per object instead.)
    """
    return differ(fields, force)(crm_id, desired, baseline)

