"""Cross-CRM identity: which Salesforce account a HubSpot company is.

HubSpot's Salesforce integration stamps ``salesforceaccountid`` on synced companies; that id is
authoritative when it points at an account we have. Otherwise the company is scored against the
Salesforce accounts like a person would be (domain, name, geography, phone), and only a
confident, unambiguous match on domain or exact name becomes a link: a wrong link would merge
two companies' scores.
"""

from __future__ import annotations

from collections.abc import Sequence

from config.matching import MatchingConfig
from matching.engine import Matcher
from matching.types import AccountLinkResult
from store.ids import InvalidSalesforceId, to_18
from store.records import AccountRecord


def _sf_id(value: str) -> str | None:
    try:
        return to_18(value.strip())
    except InvalidSalesforceId:
        return None


def named_salesforce_id(company: AccountRecord) -> str | None:
    """The Salesforce account id (18 characters) HubSpot's integration stamped on a company, if valid."""
    return _sf_id(company.linked_salesforce_id) if company.linked_salesforce_id else None


class Linker:
    """Links HubSpot companies to the Salesforce accounts a matcher indexes.

    The match stage lends it the matcher it has just built over every account rather than have it index the
    Salesforce accounts again (2.4 s on the L org's 100,000, in each run that relinks): the same accounts,
    read alike, and what the matcher learnt from the HubSpot companies too (where a city lies, which domains
    several companies share) informs a link as it informs a person's match. On the L org both link every
    company alike. Elsewhere :func:`salesforce_linker` indexes the Salesforce accounts alone.
    """

    def __init__(self, matcher: Matcher) -> None:
        self.matcher = matcher
        self.config = matcher.config
        self.index = matcher.indexes.get("salesforce")

    def link(self, company: AccountRecord) -> AccountLinkResult | None:
        """The Salesforce account this HubSpot company is, or None."""
        index, config = self.index, self.config
        if index is None:
            return None
        sf_id = named_salesforce_id(company)
        position = index.by_crm_id.get(("salesforce", sf_id)) if sf_id else None
        if position is not None:
            return AccountLinkResult(company.id, index.accounts[position].id, "salesforceaccountid", 1.0)
        q = self.matcher.company_query(company.name, (company.domain or company.website,), company.country,
                                       company.state, company.city)
        ranked = self.matcher.candidates("salesforce", q)
        if not ranked:
            return None
        conf, position, signals = ranked[0]
        runner = ranked[1][0] if len(ranked) > 1 else 0.0
        if conf < config.link_threshold or conf - runner <= config.tie_margin:
            return None
        domain_level = signals.get("domain", ("",))[0]
        name_level = signals.get("name", ("",))[0]
        if domain_level in ("exact", "subdomain", "other_tld") or name_level == "exact":
            method = "+".join(k for k in ("domain", "name") if k in signals and signals[k][1] > 0)
            return AccountLinkResult(company.id, index.accounts[position].id, method, round(conf, 4))
        return None


def salesforce_linker(salesforce_accounts: Sequence[AccountRecord], config: MatchingConfig) -> Linker:
    """A linker over an index of the Salesforce accounts alone."""
    return Linker(Matcher([a for a in salesforce_accounts if a.crm == "salesforce"], config))


def link_accounts(
    hubspot_companies: Sequence[AccountRecord],
    salesforce_accounts: Sequence[AccountRecord],
    config: MatchingConfig,
) -> list[AccountLinkResult]:
    """One link per HubSpot company that is a Salesforce account; unlinked companies are left out."""
    linker = salesforce_linker(salesforce_accounts, config)
    return [link for company in hubspot_companies if (link := linker.link(company)) is not None]
