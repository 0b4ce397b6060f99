"""Creating the catalogue's properties in HubSpot, in their own property group.

One call lists an object's groups, one lists its properties; the group and each missing
property cost one call more. Every call takes a slot of the connector's rate limiter.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from hubspot import HubSpot
from hubspot.crm.properties import PropertyCreate, PropertyGroupCreate
from hubspot.crm.properties.exceptions import ApiException

from config.writeback import WritebackConfig
from connectors.hubspot.ratelimit import HubSpotRateLimiter
from connectors.retry import RetrySettings
from writeback.catalogue import Catalogue, CatalogueField
from writeback.hubspot import CRM, classify, retry_after
from writeback.provision import FieldStatus, ProvisionReport
from writeback.retry import RetryPolicy

T = TypeVar("T")
# catalogue type -> (HubSpot type, fieldType)
PROPERTY_TYPES = {
    "number": ("number", "number"),
    "text": ("string", "text"),
    "datetime": ("datetime", "date"),
    "account_reference": ("string", "text"),  # the company's record id
}


def property_create(field: CatalogueField, group: str) -> PropertyCreate:
    type_, field_type = PROPERTY_TYPES[field.type]
    description = field.spec.help_text or f"Written by abm-sync ({field.source})."
    return PropertyCreate(name=field.api_name, label=field.spec.label, type=type_, field_type=field_type,
                          group_name=group, description=description, form_field=False)


def incompatibility(field: CatalogueField, existing: Any) -> str | None:
    """Why an existing property cannot hold the catalogue field's values, or None when it can."""
    wanted = PROPERTY_TYPES[field.type][0]
    if existing.type != wanted:
        return f"is of type {existing.type}, abm-sync writes {wanted} values"
    metadata = existing.modification_metadata
    if existing.calculated or (metadata is not None and metadata.read_only_value):
        return "is read-only (calculated or HubSpot-defined)"
    return None


class _Calls:
    """Provisioning calls, paced by the rate limiter, retried, and counted."""

    def __init__(self, limiter: HubSpotRateLimiter, retry: RetrySettings) -> None:
        self.limiter = limiter
        self.policy = RetryPolicy(CRM, classify, retry_after, settings=retry)
        self.count = 0

    def __call__(self, fn: Callable[[], T], what: str) -> T:
        def once() -> T:
            with self.limiter.slot():
                self.count += 1
                return fn()

        return self.policy.call(once, what)


def provision_hubspot(
    client: HubSpot,
    catalogue: Catalogue,
    config: WritebackConfig,
    report: ProvisionReport,
    *,
    limiter: HubSpotRateLimiter | None = None,
    retry: RetrySettings = RetrySettings(),
) -> None:
    """Find and (unless ``report.dry_run``) create the property group and every missing property."""
    call = _Calls(limiter or HubSpotRateLimiter(100, 4.0), retry)
    properties = client.crm.properties
    created_any = False
    try:
        for obj in catalogue.objects(CRM):
            groups = call(lambda o=obj: properties.groups_api.get_all(o).results, f"listing {obj} property groups")
            has_group = any(g.name == config.hubspot_group for g in groups)
            existing = {p.name: p for p in call(lambda o=obj: properties.core_api.get_all(o).results,
                                                 f"listing {obj} properties")}
            missing: list[CatalogueField] = []
            for field in catalogue.fields(CRM, obj):
                found = existing.get(field.api_name)
                if found is None:
                    missing.append(field)
                    continue
                problem = incompatibility(field, found)
                report.fields.append(FieldStatus(CRM, obj, field.api_name, "incompatible" if problem else "exists",
                                                 problem or ""))
            if report.dry_run:
                report.fields.extend(FieldStatus(CRM, obj, f.api_name, "would_create", PROPERTY_TYPES[f.type][0])
                                     for f in missing)
                created_any = created_any or bool(missing)
                continue
            if missing and not has_group:
                group = PropertyGroupCreate(name=config.hubspot_group, label=config.hubspot_group_label)
                call(lambda o=obj, g=group: properties.groups_api.create(o, g), f"creating the {obj} property group")
            for field in missing:
                report.fields.append(_create(call, client, field, config.hubspot_group))
                created_any = True
    finally:
        report.api_calls[CRM] = report.api_calls.get(CRM, 0) + call.count
    if created_any:
        report.admin_steps.extend(permission_steps(catalogue, config))


def _create(call: _Calls, client: HubSpot, field: CatalogueField, group: str) -> FieldStatus:
    body = property_create(field, group)
    try:
        call(lambda: client.crm.properties.core_api.create(field.object, body), f"creating {field.api_name}")
    except ApiException as exc:
        if exc.status == 409:  # created meanwhile, by another run or an admin
            return FieldStatus(CRM, field.object, field.api_name, "exists", "created concurrently")
        return FieldStatus(CRM, field.object, field.api_name, "failed", f"HTTP {exc.status}: {_message(exc)}")
    return FieldStatus(CRM, field.object, field.api_name, "created")


def _message(exc: ApiException) -> str:
    import json

    try:
        return str(json.loads(exc.body or b"{}").get("message", ""))[:300]
    except (TypeError, ValueError, AttributeError):
        return str(exc.reason)


def permission_steps(catalogue: Catalogue, config: WritebackConfig) -> list[str]:
    names: Sequence[str] = [f"{obj} ({len(catalogue.fields(CRM, obj))})" for obj in catalogue.objects(CRM)]
    return [
        f"HubSpot: the properties are in the group '{config.hubspot_group_label}' on {', '.join(names)}. HubSpot lets "
        "anyone who can edit a record change them:",
        "  On Enterprise, restrict them in Settings > Properties > (property) > Field-level permissions: edit for "
        "super admins and the private app only, view for everyone else.",
        "  Add them to the company and contact record sidebars and to the saved views reps use.",
    ]
