"""The ``scoring:`` section: what each touchpoint is worth, who counts, and how scores become a grade.

Every number here has a default that follows common ABM practice (lower-funnel touches worth
more, live beats digital, decision makers weigh more). ``abm evaluate`` prints the evidence
(suggested points from the org's own bookings) next to these values so they can be tuned
from data rather than opinion.
"""

from __future__ import annotations

import difflib
import re
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from store.activity_types import ACTIVITY_TYPES

PERSONAS = ("decision_maker", "influencer", "end_user", "other")
SENIORITIES = ("c_level", "vp", "director", "manager", "individual")


class ActivityTypeConfig(BaseModel):
    """How one canonical activity type scores."""

    model_config = ConfigDict(extra="forbid")

    team: Literal["sales", "marketing", "customer_success", "support"]
    points: float = Field(ge=0, description="points of one touch, before decay and persona multiplier")
    half_life_days: float = Field(gt=0, le=3650, description="days after which a touch is worth half")
    daily_cap: int = Field(ge=1, le=1000, description="touches of this type per person per UTC day that count")
    engagement: bool = Field(True, description="counts toward engagement (false for outbound-only touches)")


# type: (points, half-life days, daily cap per person, counts toward engagement)
_DEFAULTS: dict[str, tuple[float, float, int, bool]] = {
    "email_sent": (1, 14, 3, False),
    "email_reply": (6, 30, 3, True),
    "call": (1, 14, 3, False),
    "call_connected": (5, 30, 2, True),
    "meaningful_conversation": (10, 45, 2, True),
    "meeting_scheduled": (12, 45, 2, True),
    "meeting_completed": (20, 60, 2, True),
    "demo": (25, 60, 1, True),
    "proposal": (30, 90, 1, True),
    "post_close_followup": (5, 60, 1, True),
    "email_open": (1, 14, 3, True),
    "email_click": (3, 21, 3, True),
    "web_visit": (1, 14, 5, True),
    "blog_visit": (1, 14, 3, True),
    "pricing_page_visit": (8, 21, 2, True),
    "newsletter_subscription": (3, 60, 1, True),
    "video_view": (2, 21, 3, True),
    "content_download": (6, 30, 2, True),
    "form_submission": (8, 30, 2, True),
    "webinar_registration": (6, 30, 2, True),
    "webinar_attended": (12, 45, 2, True),
    "event_registration": (6, 30, 2, True),
    "event_attended": (15, 60, 2, True),
    "booth_visit": (12, 45, 2, True),
    "demo_request": (30, 60, 1, True),
    "campaign_response": (5, 30, 2, True),
    "cs_meeting": (5, 60, 2, True),
    "support_case": (1, 30, 2, True),
}


def default_catalogue() -> dict[str, ActivityTypeConfig]:
    return {
        name: ActivityTypeConfig(
            team=ACTIVITY_TYPES[name], points=p, half_life_days=h, daily_cap=c, engagement=e  # type: ignore[arg-type]
        )
        for name, (p, h, c, e) in _DEFAULTS.items()
    }


class TitleRule(BaseModel):
    """A case-insensitive regular expression on the job title and what a match means."""

    model_config = ConfigDict(extra="forbid")

    pattern: str
    value: str

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value, re.IGNORECASE)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return value


# Multilingual defaults: English, German, French, Spanish, Portuguese, Japanese. First match wins.
_SENIORITY_RULES = [
    ("c_level", r"\b(ceo|cfo|cto|cio|coo|cmo|cro|ciso|cdo|chief|president|founder|co-founder|owner|"
     r"gesch[äa]ftsf[üu]hrer\w*|vorstand\w*|inhaber\w*|pdg|pr[ée]sident\w*|directeur g[ée]n[ée]ral|"
     r"presidente|director general|diretor[a]? geral|fundador\w*|s[óo]ci[oa])\b|社長|代表取締役|取締役|CEO"),
    ("vp", r"\b(vp|svp|evp|vice[- ]president\w*|head of|bereichsleiter\w*|vice-pr[ée]sident\w*|"
     r"vicepresidente|vice-presidente)\b|本部長|執行役員"),
    ("director", r"\b(director\w*|directeur\w*|directrice\w*|direktor\w*|diretor\w*|leiter\w*|"
     r"abteilungsleiter\w*|gerente general|responsable)\b|部長"),
    ("manager", r"\b(manager\w*|lead|principal|teamleiter\w*|gerente|coordinador\w*|coordenador\w*|"
     r"supervisor\w*|encargad[oa]|jef[ea] de|chef de)\b|課長|係長|マネージャー|主任"),
    ("individual", r"\b(analyst|engineer|specialist|associate|coordinator|administrator|developer|"
     r"consultant|assistant|representative|accountant|sachbearbeiter\w*|ingenieur\w*|entwickler\w*|"
     r"berater\w*|mitarbeiter\w*|referent\w*|analyste|ing[ée]nieur\w*|charg[ée]e? de|assistant\w*|"
     r"d[ée]veloppeu\w*|technicien\w*|comptable|analista|ingenier[oa]|especialista|asistente|"
     r"desarrollador\w*|t[ée]cnic[oa]|contador\w*|engenheir[oa]|assistente|desenvolvedor\w*)\b|"
     r"担当|エンジニア|アナリスト|社員"),
]
_DEPARTMENT_RULES = [
    ("finance", r"\b(cfo|finance|financial|controller|accounting|accountant|finanz\w*|buchhalt\w*|"
     r"financ\w*|comptab\w*|finanzas|contabilidad|finan[çc]as|contador\w*)\b|経理|財務"),
    ("it", r"\b(cio|cto|ciso|it|information technology|infrastructure|security|informatique|"
     r"inform[áa]tica|sistemas|tecnologia)\b|情報システム"),
    ("engineering", r"\b(engineering|engineer|developer|software|r&d|entwicklung|ingenieur\w*|"
     r"ing[ée]nierie|ingenier[íi]a|engenharia)\b|開発|技術"),
    ("marketing", r"\b(cmo|marketing|brand|growth|demand gen\w*|mercadeo|marketing)\b|マーケティング"),
    ("sales", r"\b(cro|sales|account executive|business development|vertrieb\w*|verkauf\w*|ventes?|"
     r"commercial\w*|ventas|vendas|comercial)\b|営業"),
    ("operations", r"\b(coo|operations|supply chain|logistics|betrieb\w*|logistik|op[ée]rations|"
     r"operaciones|opera[çc][õo]es)\b|業務|物流"),
    ("procurement", r"\b(procurement|purchasing|buyer|einkauf\w*|achats?|compras)\b|購買"),
    ("hr", r"\b(hr|human resources|people|talent|personal\w*|rh|ressources humaines|recursos humanos)\b|人事"),
    ("legal", r"\b(legal|counsel|compliance|recht\w*|juridique|jur[íi]dico)\b|法務"),
]


class PersonaConfig(BaseModel):
    """Who engaged: persona from the title's seniority, department for buying-committee breadth."""

    model_config = ConfigDict(extra="forbid")

    seniority_rules: list[TitleRule] = Field(
        default_factory=lambda: [TitleRule(value=v, pattern=p) for v, p in _SENIORITY_RULES]
    )
    department_rules: list[TitleRule] = Field(
        default_factory=lambda: [TitleRule(value=v, pattern=p) for v, p in _DEPARTMENT_RULES]
    )
    persona_of_seniority: dict[str, Literal["decision_maker", "influencer", "end_user", "other"]] = Field(
        default_factory=lambda: {
            "c_level": "decision_maker",
            "vp": "decision_maker",
            "director": "decision_maker",
            "manager": "influencer",
            "individual": "end_user",
        }
    )
    multipliers: dict[Literal["decision_maker", "influencer", "end_user", "other"], float] = Field(
        default_factory=lambda: {"decision_maker": 1.5, "influencer": 1.2, "end_user": 1.0, "other": 0.8}
    )
    buying_committee: list[Literal["decision_maker", "influencer", "end_user"]] = Field(
        default_factory=lambda: ["decision_maker", "influencer", "end_user"]
    )

    @field_validator("seniority_rules")
    @classmethod
    def _known_seniority(cls, rules: list[TitleRule]) -> list[TitleRule]:
        for rule in rules:
            if rule.value not in SENIORITIES:
                raise ValueError(f"unknown seniority {rule.value!r}; use one of {', '.join(SENIORITIES)}")
        return rules

    @field_validator("persona_of_seniority")
    @classmethod
    def _known_levels(cls, mapping: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(mapping) - set(SENIORITIES))
        if unknown:
            raise ValueError(f"unknown seniority {unknown[0]!r}; use one of {', '.join(SENIORITIES)}")
        return mapping

    @field_validator("multipliers")
    @classmethod
    def _all_personas(cls, mapping: dict[str, float]) -> dict[str, float]:
        missing = [p for p in PERSONAS if p not in mapping]
        if missing:
            raise ValueError(f"needs a multiplier for every persona; missing {', '.join(missing)}")
        negative = [p for p, m in mapping.items() if m < 0]
        if negative:
            raise ValueError(f"multipliers cannot be negative ({negative[0]})")
        return mapping


class EngagementConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scale_points: float = Field(
        60.0, gt=0, description="raw points at which engagement reaches 63 (100*(1-exp(-raw/scale)))"
    )
    new_person_points: float = Field(
        8.0, ge=0, description="bonus points per person newly engaging in the recent window"
    )


class VelocityConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Defaults from evidence (`abm evaluate` on the sandbox's M org): a three-week window holds a
    # whole buying burst, so the window before it is the baseline rather than half of the burst
    # (recall of surging accounts 0.91 with 14 days, 0.99 with 21); the minimum recent points and
    # the smoothing keep a handful of touches at a quiet account from reading as a surge.
    window_days: int = Field(21, ge=1, le=180, description="recent window, compared with the one before")
    smoothing_points: float = Field(15.0, gt=0, description="added to both windows so tiny counts do not swing")
    new_person_points: float = Field(5.0, ge=0, description="a new person engaging counts this much in the ratio")
    surging_ratio: float = Field(2.0, gt=1)
    rising_ratio: float = Field(1.5, gt=1)
    cooling_ratio: float = Field(0.7, gt=0, lt=1)
    min_recent_points: float = Field(30.0, ge=0, description="below this in the recent window, never rising or surging")

    @model_validator(mode="after")
    def _ordered(self) -> VelocityConfig:
        if self.rising_ratio >= self.surging_ratio:
            raise ValueError(
                f"rising_ratio ({self.rising_ratio}) must be below surging_ratio ({self.surging_ratio})"
            )
        return self


class FitRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: Literal["industry", "employee_band", "revenue_band", "country"]
    values: list[str]
    points: float


class FitConfig(BaseModel):
    """ICP fit: learned from customers versus lost accounts per segment, or rules when too few labels."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["learned", "rules"] = "learned"
    min_labelled_accounts: int = Field(30, ge=1, description="fewer won+lost accounts: rules are used")
    smoothing: float = Field(10.0, gt=0, description="pseudo-accounts at the overall rate per segment value")
    employee_bands: list[int] = Field(default_factory=lambda: [10, 50, 200, 500, 1000, 5000])
    revenue_bands: list[float] = Field(default_factory=lambda: [1e6, 10e6, 50e6, 100e6, 500e6, 1e9])
    base: float = Field(50.0, ge=0, le=100, description="rules mode: fit before rule points")
    rules: list[FitRule] = Field(default_factory=list)

    @field_validator("employee_bands", "revenue_bands")
    @classmethod
    def _increasing(cls, bands: list[float]) -> list[float]:
        if any(b <= a for a, b in zip(bands, bands[1:], strict=False)) or any(b <= 0 for b in bands):
            raise ValueError("band edges must be positive and strictly increasing")
        return bands


class GradeThresholds(BaseModel):
    """Minimum grade score (0-100) for grades 4, 3 and 2; below grade_2 is grade 1."""

    model_config = ConfigDict(extra="forbid")

    grade_4: float = Field(65.0, ge=0, le=100)
    grade_3: float = Field(40.0, ge=0, le=100)
    grade_2: float = Field(20.0, ge=0, le=100)

    @field_validator("grade_3", "grade_2")
    @classmethod
    def _below_higher(cls, value: float, info: ValidationInfo) -> float:
        higher = "grade_4" if info.field_name == "grade_3" else "grade_3"
        above = info.data.get(higher)
        if above is not None and value >= above:
            raise ValueError(
                f"overlapping grade thresholds: {info.field_name} ({value}) must be below {higher} ({above})"
            )
        return value


class GradePercentiles(BaseModel):
    """Share of scored accounts to put in grades 4, 3 and 2 (the rest are grade 1)."""

    model_config = ConfigDict(extra="forbid")

    grade_4: float = Field(0.1, gt=0, lt=1)
    grade_3: float = Field(0.2, gt=0, lt=1)
    grade_2: float = Field(0.3, gt=0, lt=1)

    @model_validator(mode="after")
    def _fits(self) -> GradePercentiles:
        total = self.grade_4 + self.grade_3 + self.grade_2
        if total >= 1:
            raise ValueError(f"shares of grades 4, 3 and 2 must sum below 1, got {total:g}")
        return self


class GradeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["thresholds", "percentiles"] = "thresholds"
    fit_weight: float = Field(0.4, ge=0, le=1, description="grade score = fit_weight*fit + (1-fit_weight)*engagement")
    thresholds: GradeThresholds = GradeThresholds()
    percentiles: GradePercentiles = GradePercentiles()
    use_predictive: bool = Field(True, description="grade from the predictive probability when a model is active")
    predictive_thresholds: GradeThresholds = GradeThresholds(grade_4=30.0, grade_3=15.0, grade_2=5.0)


class AlignmentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sales_high_points: float = Field(25.0, ge=0, description="sales activity score at or above this is high")
    marketing_high_points: float = Field(25.0, ge=0, description="marketing score at or above this is high")


class PredictiveConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    target: Literal["won", "opened"] = "won"
    horizon_days: int = Field(90, ge=7, le=730)
    snapshot_every_days: int = Field(30, ge=1, le=365, description="spacing of training snapshots")
    max_snapshots: int = Field(12, ge=2, le=60)
    holdout_share: float = Field(0.3, gt=0, lt=1, description="latest share of snapshots kept for testing")
    min_positive_labels: int = Field(20, ge=1, description="fewer positive training labels: no model")
    min_labelled_rows: int = Field(200, ge=10, description="fewer training rows: no model")
    min_holdout_positives: int = Field(5, ge=1)
    max_training_rows: int = Field(
        200_000, ge=1_000, description="above this, rows without the outcome are sampled (and weighted back)"
    )
    algorithm: Literal["gradient_boosting", "logistic"] = "gradient_boosting"
    calibration: Literal["isotonic", "sigmoid"] = "sigmoid"
    random_state: int = 0


class HistoryConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    trend_window_days: int = Field(28, ge=1, le=365, description="engagement change reported over this window")
    keep_days: int = Field(730, ge=30, description="daily snapshots older than this are deleted")


class ReasonsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_chars: int = Field(255, ge=40, le=10_000, description="length of the reasons text field in the CRM")
    top_n: int = Field(3, ge=1, le=10, description="activity contributions named in the text")


class ReportConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tracked_min_grade: int = Field(3, ge=1, le=4, description="accounts at or above this grade are 'tracked'")
    icp_min_fit: float = Field(60.0, ge=0, le=100, description="fit at or above this is an ICP account")
    engaged_min_engagement: float = Field(20.0, ge=0, le=100, description="engagement that counts as engaged")
    impact_days: int = Field(365, ge=30, le=3650, description="impact (win rate, deal velocity) over this period")


class ScoringConfig(BaseModel):
    """Everything scoring reads. Catalogue entries given in the file override the defaults per field."""

    model_config = ConfigDict(extra="forbid")

    lookback_days: int = Field(365, ge=7, le=3650, description="touches older than this are ignored")
    catalogue: dict[str, ActivityTypeConfig] = Field(default_factory=default_catalogue)
    personas: PersonaConfig = PersonaConfig()
    engagement: EngagementConfig = EngagementConfig()
    velocity: VelocityConfig = VelocityConfig()
    fit: FitConfig = FitConfig()
    grade: GradeConfig = GradeConfig()
    alignment: AlignmentConfig = AlignmentConfig()
    predictive: PredictiveConfig = PredictiveConfig()
    history: HistoryConfig = HistoryConfig()
    reasons: ReasonsConfig = ReasonsConfig()
    report: ReportConfig = ReportConfig()

    @field_validator("catalogue", mode="wrap")
    @classmethod
    def _merge_over_defaults(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> dict[str, ActivityTypeConfig]:
        """Entries override the defaults field by field; every problem keeps its own key path.

        An unknown type is reported at ``scoring.catalogue.<name>`` next to any problem in the
        known entries, so a typo does not hide the other mistakes in the same file.
        """
        if not isinstance(value, dict):
            return handler(value)
        merged: dict[str, Any] = {k: v.model_dump() for k, v in default_catalogue().items()}
        problems: list[InitErrorDetails] = []
        for name, override in value.items():
            if name not in ACTIVITY_TYPES:
                close = difflib.get_close_matches(str(name), list(ACTIVITY_TYPES), n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"known types: {', '.join(ACTIVITY_TYPES)}"
                message = f"unknown activity type {name!r} ({hint})"
                problems.append(
                    InitErrorDetails(
                        type=PydanticCustomError("unknown_activity_type", message), loc=(str(name),), input=override
                    )
                )
                continue
            if isinstance(override, ActivityTypeConfig):
                override = override.model_dump()
            merged[name] = {**merged[name], **override} if isinstance(override, dict) else override
        try:
            result = handler(merged)
        except ValidationError as exc:
            problems += [
                InitErrorDetails(type=e["type"], loc=e["loc"], input=e["input"], ctx=e.get("ctx", {}))  # type: ignore[typeddict-item]
                for e in exc.errors()
            ]
            result = None
        if problems:
            raise ValidationError.from_exception_data("catalogue", problems)
        return result
