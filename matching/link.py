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


def link_accounts(
    hubspot_companies: Sequence[AccountRecord],
    salesforce_accounts: Sequence[AccountRecord],
    config: MatchingConfig,
) -> list[AccountLinkResult]:
    """One link per HubSpot company that is a Salesforce account; unlinked companies are left out."""
    matcher = Matcher([a for a in salesforce_accounts if a.crm == "salesforce"], config)
    index = matcher.indexes.get("salesforce")
    if index is None:
        return []
    links: list[AccountLinkResult] = []
    for company in hubspot_companies:
        sf_id = _sf_id(company.linked_salesforce_id) if company.linked_salesforce_id else None
        position = index.by_crm_id.get(("salesforce", sf_id)) if sf_id else None
        if position is not None:
            links.append(AccountLinkResult(company.id, index.accounts[position].id, "salesforceaccountid", 1.0))
            continue
        q = matcher.company_query(company.name, (company.domain or company.website,), company.country, company.state,
                                  company.city)
        ranked = matcher.candidates("salesforce", q)
        if not ranked:
            continue
        conf, position, signals = ranked[0]
        runner = ranked[1][0] if len(ranked) > 1 else 0.0
        if conf < config.link_threshold or conf - runner <= config.tie_margin:
            continue
        domain_level = signals.get("domain", ("",))[0]
        name_level = signals.get("name", ("",))[0]
        if domain_level in ("exact", "subdomain", "other_tld") or name_level == "exact":
            method = "+".join(k for k in ("domain", "name") if k in signals and signals[k][1] > 0)
            links.append(AccountLinkResult(company.id, index.accounts[position].id, method, round(conf, 4)))
    return links
