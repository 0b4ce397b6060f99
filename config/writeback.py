"""The ``writeback:`` section: which CRM fields abm-sync owns, how they are named, and when they change.

The field catalogue is the contract with the CRM admin: abm-sync creates these fields
(``abm init``) and writes nothing else. Each field has one *source* (the key under
``fields:``) and everything a CRM admin may want to change: names, labels, help texts, type
details, which objects carry it, and a tolerance below which a new value is not worth an
API call (scores drift by fractions of a point every day; reps only care about real moves).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

FieldType = Literal["number", "text", "datetime", "account_reference"]
TargetKind = Literal["account", "lead", "contact"]

SALESFORCE_STEM = re.compile(r"^[A-Za-z](?:[A-Za-z0-9]|_(?!_))*(?<!_)$")
HUBSPOT_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
SALESFORCE_NAME_MAX = 43  # 40 characters plus "__c"
HUBSPOT_NAME_MAX = 100


class FieldSpec(BaseModel):
    """One CRM field of the catalogue, written on every object listed in ``objects``."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="false: never created nor written")
    name: str = Field(
        pattern=r"^[A-Za-z][A-Za-z0-9_]*$", description="stem of the API names: prefix + name (+ __c on Salesforce)"
    )
    label: str = Field(min_length=1, max_length=40)
    help_text: str = Field("", max_length=255, description="shown next to the field in the CRM")
    type: FieldType
    precision: int = Field(5, ge=1, le=18, description="number: total digits")
    scale: int = Field(1, ge=0, le=8, description="number: digits after the decimal point")
    length: int = Field(255, ge=1, le=255, description="text: maximum characters (longer values are cut)")
    tolerance: float = Field(0.0, ge=0, description="number: a move smaller than this is not rewritten")
    triggers_write: bool = Field(True, description="false: written along with other changes, never alone")
    objects: list[TargetKind] = Field(min_length=1)
    salesforce_name: str | None = Field(None, description="full Salesforce API name, overriding prefix + name")
    hubspot_name: str | None = Field(None, description="full HubSpot property name, overriding prefix + name")

    @model_validator(mode="after")
    def _consistent(self) -> FieldSpec:
        if self.scale >= self.precision and self.type == "number":
            raise ValueError(f"scale ({self.scale}) must be smaller than precision ({self.precision})")
        if self.tolerance and self.type != "number":
            raise ValueError("tolerance applies to number fields only")
        if self.salesforce_name is not None:
            check_salesforce_name(self.salesforce_name)
        if self.hubspot_name is not None:
            check_hubspot_name(self.hubspot_name)
        return self


def check_salesforce_name(name: str) -> str:
    stem, suffix = name[:-3], name[-3:]
    if len(name) > SALESFORCE_NAME_MAX or suffix != "__c" or not SALESFORCE_STEM.match(stem):
        raise ValueError(
            f"{name!r} is not a valid Salesforce custom field name: letters, digits and single underscores, "
            f"starting with a letter, ending in __c, at most 40 characters before __c"
        )
    return name


def check_hubspot_name(name: str) -> str:
    if len(name) > HUBSPOT_NAME_MAX or not HUBSPOT_NAME.match(name):
        raise ValueError(
            f"{name!r} is not a valid HubSpot property name: lower-case letters, digits and underscores, "
            "starting with a letter"
        )
    return name


def _spec(name: str, label: str, help_text: str, type_: str, objects: tuple[str, ...] = ("account", "lead",
          "contact"), **extra: Any) -> dict[str, Any]:
    return {"name": name, "label": label, "help_text": help_text, "type": type_, "objects": list(objects), **extra}


_PEOPLE = ("lead", "contact")
# source -> default spec. Scores are 0-100 with one decimal; a move under 1 point is noise to a rep.
DEFAULT_FIELDS: dict[str, dict[str, Any]] = {
    "engagement": _spec("Engagement_Score", "Engagement Score", "abm-sync: 0-100, recent touches by the "
                        "people at this account, decayed over time", "number", tolerance=1.0),
    "grade": _spec("Grade", "Grade", "abm-sync: 1 (low) to 4 (high) priority, from fit and engagement",
                   "number", precision=1, scale=0),
    "sales_activity": _spec("Sales_Activity_Score", "Sales Activity Score", "abm-sync: decayed points of "
                            "calls, meetings and emails by sales", "number", precision=8, tolerance=1.0),
    "marketing": _spec("Marketing_Score", "Marketing Score", "abm-sync: decayed points of marketing touches "
                       "(web, email, events, content)", "number", precision=8, tolerance=1.0),
    "fit": _spec("Fit_Score", "Fit Score", "abm-sync: 0-100, how much this account looks like the ones that buy",
                 "number", tolerance=1.0),
    "predictive": _spec("Predictive_Score", "Predictive Score", "abm-sync: 0-100, modelled chance of a won deal "
                        "within the horizon", "number", tolerance=1.0),
    "trend": _spec("Trend", "Engagement Trend", "abm-sync: surging, rising, steady or cooling", "text",
                   length=32),
    "alignment": _spec("Alignment", "Sales/Marketing Alignment", "abm-sync: whether sales and marketing "
                       "activity agree (aligned_high, aligned_low, ...)", "text", length=32),
    "reasons": _spec("Top_Reasons", "Top Reasons", "abm-sync: why the score is what it is", "text", length=255),
    "scored_at": _spec("Last_Scored_At", "Last Scored At", "abm-sync: when these scores were computed",
                       "datetime", triggers_write=False),
    "matched_account": _spec("Matched_Account", "Matched Account", "abm-sync: the account this person was "
                             "matched to", "account_reference", _PEOPLE),
    "match_confidence": _spec("Match_Confidence", "Match Confidence (%)", "abm-sync: how sure the match is, "
                              "0-100", "number", _PEOPLE, tolerance=1.0),
    "match_reason": _spec("Match_Reason", "Match Reason", "abm-sync: the evidence behind the match", "text",
                          _PEOPLE, length=255),
}

# Which field types a source's values can be written as.
SOURCE_TYPES: dict[str, frozenset[str]] = {
    **{s: frozenset({"number"}) for s in ("engagement", "grade", "sales_activity", "marketing", "fit",
                                          "predictive", "match_confidence")},
    **{s: frozenset({"text"}) for s in ("trend", "alignment", "reasons", "match_reason")},
    "scored_at": frozenset({"datetime", "text"}),
    "matched_account": frozenset({"account_reference", "text"}),
}
PERSON_ONLY_SOURCES = frozenset({"matched_account", "match_confidence", "match_reason"})


class FieldCatalogue(BaseModel):
    """One entry per source; a partial entry in abm.yaml only overrides the keys it names."""

    model_config = ConfigDict(extra="forbid")

    engagement: FieldSpec
    grade: FieldSpec
    sales_activity: FieldSpec
    marketing: FieldSpec
    fit: FieldSpec
    predictive: FieldSpec
    trend: FieldSpec
    alignment: FieldSpec
    reasons: FieldSpec
    scored_at: FieldSpec
    matched_account: FieldSpec
    match_confidence: FieldSpec
    match_reason: FieldSpec

    @model_validator(mode="before")
    @classmethod
    def _merge_defaults(cls, data: Any) -> Any:
        if data is None:
            data = {}
        if not isinstance(data, dict):
            return data
        merged: dict[str, Any] = {}
        for source, default in DEFAULT_FIELDS.items():
            given = data.get(source, {})
            merged[source] = {**default, **given} if isinstance(given, dict) else given
        merged.update({k: v for k, v in data.items() if k not in DEFAULT_FIELDS})  # unknown keys: rejected
        return merged

    @model_validator(mode="after")
    def _types_fit_sources(self) -> FieldCatalogue:
        for source, spec in self.items():
            if spec.type not in SOURCE_TYPES[source]:
                raise ValueError(f"{source}: type {spec.type!r} cannot hold this value; use one of "
                                 f"{sorted(SOURCE_TYPES[source])}")
            if source in PERSON_ONLY_SOURCES and "account" in spec.objects:
                raise ValueError(f"{source}: a match belongs to a lead or contact, not to an account")
        return self

    def items(self) -> list[tuple[str, FieldSpec]]:
        return [(source, getattr(self, source)) for source in DEFAULT_FIELDS]


def _default_catalogue() -> FieldCatalogue:
    return FieldCatalogue.model_validate({})


class WritebackConfig(BaseModel):
    """How scores reach the CRMs."""

    model_config = ConfigDict(extra="forbid")

    prefix: str = Field("ABM_", pattern=r"^([A-Za-z][A-Za-z0-9]*_)?$",
                        description="prepended to every field name (lower-cased on HubSpot)")
    hubspot_group: str = Field("abm_scoring", pattern=r"^[a-z][a-z0-9_]*$", description="HubSpot property group")
    hubspot_group_label: str = Field("ABM scoring", min_length=1)
    bulk_threshold: int = Field(
        2_000, ge=1, description="records per object above which Bulk API 2.0 is used (Salesforce advises it past "
        "2,000 records, and sObject Collections below)")
    bulk_poll_seconds: float = Field(0.5, gt=0, le=60, description="wait before a Bulk job's first status check "
                                     "(then every second for 20 s, every 2 s until a minute, then doubling up "
                                     "to 30 s)")
    hubspot_concurrency: int = Field(4, ge=1, le=16, description="HubSpot batch calls in flight at once")
    hubspot_import_threshold: int = Field(
        10_000, ge=0, description="changed records of one HubSpot object above which they are sent as one CRM "
        "import instead of batch calls (needs the crm.import scope; 0: always batch calls)")
    hubspot_import_timeout_minutes: float = Field(
        60.0, gt=0, description="a HubSpot import still running after this is canceled (its records are sent "
        "again by the next run)")
    retry_base_minutes: float = Field(15.0, ge=0, description="a failed record is retried after this, doubling")
    retry_max_hours: float = Field(24.0, gt=0, description="longest wait before retrying a failed record")
    max_rate_limit_wait_seconds: float = Field(
        900.0, ge=0, description="total rate-limit waiting a run accepts before it stops (state is kept)"
    )
    sample_size: int = Field(5, ge=0, le=100, description="old -> new examples shown per object")
    fields: FieldCatalogue = Field(default_factory=_default_catalogue)

    @model_validator(mode="after")
    def _names_valid(self) -> WritebackConfig:
        salesforce: dict[str, str] = {}
        hubspot: dict[str, str] = {}
        for source, spec in self.fields.items():
            sf_name = check_salesforce_name(salesforce_api_name(self.prefix, spec))
            hs_name = check_hubspot_name(hubspot_property_name(self.prefix, spec))
            for seen, name in ((salesforce, sf_name.lower()), (hubspot, hs_name)):
                if name in seen:
                    raise ValueError(f"fields {seen[name]} and {source} have the same API name {name!r}")
                seen[name] = source
        return self


def salesforce_api_name(prefix: str, spec: FieldSpec) -> str:
    return spec.salesforce_name or f"{prefix}{spec.name}__c"


def hubspot_property_name(prefix: str, spec: FieldSpec) -> str:
    return spec.hubspot_name or f"{prefix}{spec.name}".lower()
