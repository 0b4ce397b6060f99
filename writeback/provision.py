"""What ``abm init`` found and did, field by field, for both CRMs.

Provisioning never changes a field that exists: a field of the right name but the wrong type
belongs to someone (or to an older configuration) and is reported for an admin to resolve.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Status = Literal["exists", "created", "would_create", "incompatible", "failed"]


@dataclass(frozen=True)
class FieldStatus:
    crm: str
    object: str
    name: str
    status: Status
    detail: str = ""


@dataclass
class ProvisionReport:
    dry_run: bool
    fields: list[FieldStatus] = field(default_factory=list)
    admin_steps: list[str] = field(default_factory=list)
    api_calls: dict[str, int] = field(default_factory=dict)

    def with_status(self, status: Status) -> list[FieldStatus]:
        return [f for f in self.fields if f.status == status]

    @property
    def ok(self) -> bool:
        return not self.with_status("incompatible") and not self.with_status("failed")
