"""How leads and contacts are tied to accounts (the ``matching:`` section of abm.yaml).

The pair score is a sum of log-odds weights, one per comparison level, in the spirit of
Fellegi-Sunter / splink: each signal either agrees (positive weight), disagrees (negative weight)
or is unknown (zero). The sum, plus a prior, goes through a logistic into a confidence in [0, 1].
Defaults were tuned on the sandbox generator's ground truth (see benchmarks/matching.py).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

TieBreaker = Literal["customer", "most_contacts", "recent_activity", "oldest"]
# What forms and reps type when the company is unknown or required ("[not provided]" is Salesforce web-to-lead's).
PLACEHOLDER_NAMES = (
    "[not provided]", "not provided", "n/a", "na", "none", "unknown", "-", "--", "?", "self", "self-employed",
    "self employed", "freelance", "freelancer", "private", "individual", "personal", "student", "retired",
    "no company", "test", "company", "home",
)


class DomainWeights(BaseModel):
    """Email or website domain of the person vs. the account's website domain."""

    model_config = ConfigDict(extra="forbid")

    exact: float = Field(6.0, description="same host, e.g. acme.com = acme.com")
    subdomain: float = Field(5.5, description="same registrable domain, different host: eu.acme.com vs acme.com")
    contact: float = Field(5.5, description="a contact of the account already uses this email domain")
    other_tld: float = Field(
        -1.5, description="same label, other suffix (acme.de vs acme.com, not two country suffixes): most often "
        "a sister company or a namesake abroad, not the account itself"
    )
    other_tld_unlisted: float = Field(
        2.0, description="same label, other suffix, the person's domain is a generic one (.com, .net) no account "
        "holds and the person is in the account's country: the company's other domain (acme.com beside acme.de)"
    )
    account_name: float = Field(
        2.0, description="the account has no website and the person's domain label is its name (ultus.com ~ Ultus)"
    )
    different: float = Field(-4.0, description="the person's corporate domain is another account's")
    unlisted: float = Field(
        -3.0, description="the person's corporate domain is no account's (a personal or new domain) and differs"
    )
    unlisted_no_website: float = Field(
        -1.5,
        description="the account has no website and the person's corporate domain is no account's and not the "
        "account's name: most companies in a CRM list their website, so it is more often a namesake's domain",
    )


class NameWeights(BaseModel):
    """Company name similarity (0-1, term-frequency aware) mapped to weights by thresholds."""

    model_config = ConfigDict(extra="forbid")

    exact: float = Field(5.5, description="identical normalized names")
    typo: float = Field(4.5, description="the same words but one, off by a single slip ('Acme Sytems')")
    abbreviated: float = Field(
        4.5, description="the same words in the same order, some shortened ('Crystal Port Sol' ~ Crystal Port "
        "Solutions)"
    )
    high: float = Field(3.0, description="similarity >= high_at")
    medium: float = Field(1.0, description="similarity >= medium_at")
    low: float = Field(-1.0, description="similarity >= low_at")
    different: float = Field(-4.0, description="similarity below low_at")
    acronym: float = Field(3.0, description="one name is the initials of the other (IBM)")
    prefix: float = Field(
        4.5, description="the typed words (rare ones, no legal form) are the first words of the account's name "
        "('Pyrwave' for Pyrwave Partners Ltd: the brand); another account the words fit sends it to review"
    )
    prefix_country: float = Field(
        3.0, description="the typed words begin the name of the only account of the person's country that has "
        "them, though accounts abroad have them too ('Norly' in Italy: Norly Gruppo S.r.l.): worth a review"
    )
    domain_label: float = Field(
        4.5, description="the typed name is the account's domain label: 'Nagoya Tsushin' ~ nagoya-tsushin.co.jp"
    )
    legal_form_same: float = Field(0.8, description="both names carry the same legal form (Ltd = Limited)")
    legal_form_partial: float = Field(-1.0, description="legal forms overlap: 'GmbH' vs 'GmbH & Co. KG'")
    legal_form_different: float = Field(-2.5, description="both names carry a legal form and they differ")
    legal_form_foreign: float = Field(
        0.0, description="they differ, and the person's is one the accounts of the account's country hardly ever "
        "carry ('Lange Limited' for Lange GmbH in Germany): a guess at the legal form, not another company's"
    )
    transliterated: float = Field(
        4.5, description="names in different scripts that read the same ('Hikari Shoken' ~ 光証券株式会社): as sure "
        "as a name typed with a slip, not as one spelt the account's way (romanizations vary)"
    )
    other_script: float = Field(
        0.0, description="names in different scripts whose transliterations do not agree: unknown, not different"
    )
    high_at: float = Field(0.92, ge=0, le=1)
    medium_at: float = Field(0.82, ge=0, le=1)
    low_at: float = Field(0.65, ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> NameWeights:
        if not self.low_at <= self.medium_at <= self.high_at:
            raise ValueError("thresholds must satisfy low_at <= medium_at <= high_at")
        return self


class GeoWeights(BaseModel):
    """Country, state/region and city agreement; a blank side counts as unknown (weight 0)."""

    model_config = ConfigDict(extra="forbid")

    country_same: float = Field(1.0, description="same ISO country")
    country_different: float = Field(-3.0, description="different countries: near-duplicate companies abroad")
    state_same: float = Field(0.3, description="same state / region")
    state_different: float = Field(-1.0, description="different state / region")
    city_same: float = Field(1.0, description="same city")
    city_different: float = Field(-1.0, description="different city (offices move: mild)")


class PhoneWeights(BaseModel):
    """Phone numbers compared in E.164."""

    model_config = ConfigDict(extra="forbid")

    same: float = Field(3.0, description="identical E.164 number")
    same_switchboard: float = Field(1.5, description="identical except the last switchboard_digits digits")
    switchboard_digits: int = Field(3, ge=1, le=6)
    default_region: str | None = Field(
        None, min_length=2, max_length=2, description="ISO country used when a number has no + and no country"
    )


class FirmographicWeights(BaseModel):
    """What the person says about their company beside its name (a lead's Industry and NumberOfEmployees,
    from the form or enrichment) vs. the account's: tells namesakes apart ('Quantra Inc.' in software,
    'Quantra Corporation' in retail). Values come from different sources, so agreement counts for less than
    a name or a domain, and only a plain disagreement counts against."""

    model_config = ConfigDict(extra="forbid")

    industry_same: float = Field(1.0, description="same industry value (case and punctuation aside)")
    industry_different: float = Field(-2.0, description="both give an industry and they differ")
    size_same: float = Field(0.7, description="employee counts within size_close_ratio of each other")
    size_different: float = Field(-1.5, description="employee counts more than size_far_ratio apart")
    size_close_ratio: float = Field(3.0, ge=1, description="a company size given by a person is a guess or a band")
    size_far_ratio: float = Field(10.0, ge=1, description="...but not off by an order of magnitude")

    @model_validator(mode="after")
    def _ordered(self) -> FirmographicWeights:
        if self.size_close_ratio > self.size_far_ratio:
            raise ValueError("size_close_ratio must not exceed size_far_ratio")
        return self


class BlockingConfig(BaseModel):
    """Which accounts are even considered for a person: never all pairs."""

    model_config = ConfigDict(extra="forbid")

    max_candidates: int = Field(8, ge=1, le=500, description="accounts fully scored per person, after blocking")
    prerank_cutoff: float = Field(
        75.0, ge=0, le=100, description="rapidfuzz WRatio (0-100) of the names below which a candidate is not scored"
    )
    prerank_spread: float = Field(
        10.0, ge=0, le=100, description="...or this far below the best candidate's WRatio: far behind it, not scored"
    )
    max_token_share: float = Field(
        0.02, gt=0, le=1, description="name tokens in more than this share of accounts are too common to block on"
    )
    min_token_accounts: int = Field(
        200, ge=1, description="...but a token is always usable when it appears in at most this many accounts"
    )
    shared_domain_accounts: int = Field(
        3,
        ge=2,
        description="an email domain used by contacts of this many accounts, none of which has it as website, "
        "is a shared mail provider (treated as free mail)",
    )
    ngram: int = Field(3, ge=2, le=5, description="character n-gram size of the typo index")
    max_ngram_tokens: int = Field(2000, ge=1, description="n-grams found in more distinct name words are skipped")
    min_ngram_overlap: float = Field(0.5, gt=0, le=1, description="share of a name's n-grams a candidate must share")


class MatchingConfig(BaseModel):
    """Lead/contact to account matching: thresholds, weights, blocking and decision rules."""

    model_config = ConfigDict(extra="forbid")

    auto_threshold: float = Field(0.9, ge=0, le=1, description="confidence at or above which a match is written")
    review_threshold: float = Field(
        0.5, ge=0, le=1, description="confidence at or above which a match is kept for review"
    )
    prior: float = Field(-3.0, description="log-odds of a random candidate pair being a match before any signal")
    tie_margin: float = Field(
        0.02, ge=0, le=1, description="candidates within this confidence of the best are tied; tie-breakers decide"
    )
    ambiguity_margin: float = Field(
        0.0, ge=0, le=1, description="if the runner-up (after tie-breakers) is this close, an auto match becomes review"
    )
    review_ambiguous: bool = Field(
        True,
        description="an auto match becomes review when a tie-breaker chose between accounts not all tied to the "
        "person's domain (or to one website), or when it rests on the name alone and the city differs or a longer "
        "account name contains it too",
    )
    tie_breakers: list[TieBreaker] = Field(
        default_factory=lambda: ["customer", "most_contacts", "recent_activity", "oldest"],
        description="applied in order among tied candidates",
    )
    customer_types: list[str] = Field(
        default_factory=lambda: ["customer", "customer - direct", "customer - channel", "customer - partner"],
        description="account type values (case-insensitive) that count as customers",
    )
    rollup_to_parent: bool = Field(False, description="write the ultimate parent account instead of the matched one")
    stability_margin: float = Field(
        0.05, ge=0, le=1, description="a previous match only moves when the new account is better by this much"
    )
    keep_crm_account: bool = Field(True, description="contacts (and converted leads) keep the CRM's account")
    domain: DomainWeights = DomainWeights()
    name: NameWeights = NameWeights()
    geo: GeoWeights = GeoWeights()
    phone: PhoneWeights = PhoneWeights()
    firmographic: FirmographicWeights = FirmographicWeights()
    blocking: BlockingConfig = BlockingConfig()
    extra_free_mail_domains: list[str] = Field(
        default_factory=list, description="added to the packaged free and disposable mail lists"
    )
    placeholder_names: list[str] = Field(
        default_factory=lambda: list(PLACEHOLDER_NAMES),
        description="company values that mean 'not given' (web-to-lead fillers): treated as no name",
    )
    extra_legal_terms: list[str] = Field(
        default_factory=list, description="more legal-form words to strip from company names (beyond cleanco's)"
    )
    abbreviations: dict[str, str] = Field(
        default_factory=dict, description="more abbreviation -> expansion pairs, e.g. {svcs: services}"
    )
    link_threshold: float = Field(
        0.9, ge=0, le=1, description="HubSpot company <-> Salesforce account links by domain+name need this confidence"
    )

    @model_validator(mode="after")
    def _ordered(self) -> MatchingConfig:
        if self.review_threshold > self.auto_threshold:
            raise ValueError("review_threshold must not exceed auto_threshold")
        return self
