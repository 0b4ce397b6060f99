"""Creating the catalogue's custom fields in Salesforce with the Metadata API.

Existing fields are found with one describe call per object (cheaper than reading metadata ten
fields at a time); missing ones are created with ``createMetadata``, ten per call (the API's
limit). Field-level security cannot sensibly be granted from here (it is per profile or
permission set, an admin's decision), so the steps are printed instead.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from simple_salesforce import Salesforce

from writeback.catalogue import Catalogue, CatalogueField
from writeback.provision import FieldStatus, ProvisionReport
from writeback.salesforce import CRM, SessionObserver

METADATA_PER_CALL = 10
# catalogue type -> describe types a field may already have and still hold our values
COMPATIBLE_TYPES = {
    "number": {"double"},
    "text": {"string", "textarea"},
    "datetime": {"datetime"},
    "account_reference": {"reference"},
}
_CREATE_ERROR = re.compile(r"^(?P<name>\S+): \((?P<code>[^,]+), (?P<message>.*)\),\s*$")


def relationship_name(field: CatalogueField) -> str:
    """The child relationship name on Account; one per object, since they must be unique there."""
    return f"{field.api_name[:-3]}_{field.object}s"


def metadata_spec(field: CatalogueField) -> dict[str, Any]:
    """The ``CustomField`` metadata of one catalogue field."""
    spec = field.spec
    out: dict[str, Any] = {
        "fullName": f"{field.object}.{field.api_name}",
        "label": spec.label,
        "description": f"Written by abm-sync (source: {field.source}). {spec.help_text}".strip()[:1000],
    }
    if spec.help_text:
        out["inlineHelpText"] = spec.help_text
    if field.type == "number":
        out.update(type="Number", precision=spec.precision, scale=spec.scale)
    elif field.type == "text":
        out.update(type="Text", length=spec.length)
    elif field.type == "datetime":
        out.update(type="DateTime")
    else:
        out.update(type="Lookup", referenceTo="Account", relationshipName=relationship_name(field),
                   relationshipLabel=f"{spec.label} ({field.object}s)", deleteConstraint="SetNull")
    return out


def incompatibility(field: CatalogueField, described: dict[str, Any]) -> str | None:
    """Why an existing field cannot hold the catalogue field's values, or None when it can."""
    kind = described.get("type")
    if kind not in COMPATIBLE_TYPES[field.type]:
        wanted = " or ".join(sorted(COMPATIBLE_TYPES[field.type]))
        return f"is of type {kind}, abm-sync writes {field.type} values (needs {wanted})"
    spec = field.spec
    if field.type == "number":
        whole_digits = int(described.get("precision") or 0) - int(described.get("scale") or 0)
        if whole_digits < spec.precision - spec.scale:
            return (f"holds {whole_digits} digits before the decimal point, abm-sync needs "
                    f"{spec.precision - spec.scale}")
    if field.type == "text" and int(described.get("length") or 0) < spec.length:
        return f"holds {described.get('length')} characters, abm-sync writes up to {spec.length}"
    if field.type == "account_reference" and "Account" not in (described.get("referenceTo") or []):
        return f"looks up {', '.join(described.get('referenceTo') or []) or 'nothing'}, not Account"
    if not described.get("updateable", True):
        return "is not updateable by the integration user (read-only, formula, or field-level security)"
    return None


def provision_salesforce(sf: Salesforce, catalogue: Catalogue, report: ProvisionReport) -> None:
    """Find and (unless ``report.dry_run``) create every missing catalogue field on Salesforce."""
    to_create: list[CatalogueField] = []
    metadata_calls = 0
    with SessionObserver().watching(sf.session) as observer:
        for obj in catalogue.objects(CRM):
            described = {f["name"].lower(): f for f in getattr(sf, obj).describe()["fields"]}
            for field in catalogue.fields(CRM, obj):
                existing = described.get(field.api_name.lower())
                if existing is None:
                    to_create.append(field)
                    continue
                problem = incompatibility(field, existing)
                report.fields.append(FieldStatus(CRM, obj, field.api_name, "incompatible" if problem else "exists",
                                                 problem or ""))
    if report.dry_run:
        report.fields.extend(FieldStatus(CRM, f.object, f.api_name, "would_create", metadata_spec(f)["type"])
                             for f in to_create)
    else:
        for start in range(0, len(to_create), METADATA_PER_CALL):
            chunk = to_create[start : start + METADATA_PER_CALL]
            metadata_calls += 1
            report.fields.extend(_create(sf, chunk))
    report.api_calls[CRM] = report.api_calls.get(CRM, 0) + observer.responses + metadata_calls
    created = [f for f in report.fields if f.crm == CRM and f.status in ("created", "would_create")]
    if created:
        report.admin_steps.extend(field_security_steps(created))


def _create(sf: Salesforce, chunk: Sequence[CatalogueField]) -> list[FieldStatus]:
    mdapi = sf.mdapi
    try:
        mdapi.CustomField.create([mdapi.CustomField(**metadata_spec(f)) for f in chunk])
    except Exception as exc:  # simple-salesforce raises a bare Exception listing each failed field
        failures = _parse_create_errors(str(exc))
        if not failures:  # the whole call failed (session, limits, transport): nothing was created
            return [FieldStatus(CRM, f.object, f.api_name, "failed", _one_line(exc)) for f in chunk]
        return [
            FieldStatus(CRM, f.object, f.api_name, "failed", failures[f"{f.object}.{f.api_name}"])
            if f"{f.object}.{f.api_name}" in failures else FieldStatus(CRM, f.object, f.api_name, "created")
            for f in chunk
        ]
    return [FieldStatus(CRM, f.object, f.api_name, "created") for f in chunk]


def _parse_create_errors(text: str) -> dict[str, str]:
    """``\\nAccount.X__c: (CODE, message), `` lines of simple-salesforce's error, by full name."""
    out = {}
    for line in text.splitlines():
        match = _CREATE_ERROR.match(line.strip())
        if match:
            detail = f"{match['code']}: {match['message']}"
            if match["code"] == "DUPLICATE_DEVELOPER_NAME":
                # describe did not show it: the field exists but the integration user cannot see it
                detail += " (the field exists but is hidden from the integration user: grant it field-level security)"
            out[match["name"]] = detail
    return out


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}"


def field_security_steps(fields: Sequence[FieldStatus]) -> list[str]:
    """What an admin must still do in Salesforce Setup: new fields are hidden from every profile."""
    by_object: dict[str, list[str]] = {}
    for f in fields:
        by_object.setdefault(f.object, []).append(f.name)
    steps = [
        "Salesforce: fields created through the Metadata API are visible to no profile yet. In Setup, create a "
        "permission set (for example 'ABM Scoring Fields'), and under Object Settings give it:",
    ]
    for obj, names in by_object.items():
        steps.append(f"  - {obj}: Edit access to {', '.join(names)}")
    steps += [
        "  Assign it to the integration user abm-sync logs in as (writes fail with INVALID_FIELD_FOR_INSERT_UPDATE "
        "until you do).",
        "  Give reps and managers Read access only (a second permission set, or their profiles), so only abm-sync "
        "changes these values.",
        "  Add the fields to the Account, Lead and Contact page layouts and to the list views reps use.",
    ]
    return steps
