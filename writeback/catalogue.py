"""The field catalogue resolved per CRM object, and the guard that keeps writes inside it.

abm-sync shares the CRM with people and other integrations, so "never write a field you do
not own" is enforced at the one place every write passes through: a writer asks
:meth:`Catalogue.guard` before it builds a request, and a field outside the catalogue is a
programming error raised before any byte goes out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from config.writeback import FieldSpec, TargetKind, WritebackConfig, hubspot_property_name, salesforce_api_name

# (crm, CRM object) -> which kind of record it holds. HubSpot has no leads: its contacts are people.
TARGETS: dict[tuple[str, str], TargetKind] = {
    ("salesforce", "Account"): "account",
    ("salesforce", "Lead"): "lead",
    ("salesforce", "Contact"): "contact",
    ("hubspot", "companies"): "account",
    ("hubspot", "contacts"): "contact",
}


class FieldNotInCatalogue(ValueError):
    """A writer was asked to send a field abm-sync does not own: a bug, never a CRM problem."""


@dataclass(frozen=True)
class CatalogueField:
    """One catalogue field on one CRM object."""

    source: str
    crm: str
    object: str
    api_name: str
    spec: FieldSpec

    @property
    def type(self) -> str:
        return self.spec.type

    @property
    def tolerance(self) -> float:
        return self.spec.tolerance

    @property
    def triggers_write(self) -> bool:
        return self.spec.triggers_write


class Catalogue:
    """The enabled fields of every CRM object abm-sync writes to."""

    def __init__(self, config: WritebackConfig) -> None:
        self.config = config
        self._fields: dict[tuple[str, str], list[CatalogueField]] = {}
        for (crm, obj), kind in TARGETS.items():
            fields = []
            for source, spec in config.fields.items():
                if spec.enabled and kind in spec.objects:
                    name = (salesforce_api_name(config.prefix, spec) if crm == "salesforce"
                            else hubspot_property_name(config.prefix, spec))
                    fields.append(CatalogueField(source, crm, obj, name, spec))
            self._fields[(crm, obj)] = fields
        self._names = {key: frozenset(f.api_name for f in fields) for key, fields in self._fields.items()}

    def objects(self, crm: str) -> list[str]:
        """The CRM objects that carry at least one catalogue field."""
        return [obj for (c, obj), fields in self._fields.items() if c == crm and fields]

    def fields(self, crm: str, obj: str) -> list[CatalogueField]:
        return list(self._fields.get((crm, obj), []))

    def kind(self, crm: str, obj: str) -> TargetKind:
        return TARGETS[(crm, obj)]

    def guard(self, crm: str, obj: str, names: Iterable[str]) -> None:
        """Raise :class:`FieldNotInCatalogue` unless every name is a catalogue field of ``crm`` ``obj``."""
        allowed = self._names.get((crm, obj))
        if allowed is None:
            raise FieldNotInCatalogue(f"abm-sync does not write to {crm} {obj}")
        stray = sorted(set(names) - allowed)
        if stray:
            raise FieldNotInCatalogue(
                f"refusing to write {', '.join(stray)} on {crm} {obj}: not in the writeback field catalogue"
            )
