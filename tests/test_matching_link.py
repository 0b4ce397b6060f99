"""Cross-CRM identity: HubSpot companies linked to Salesforce accounts.

HubSpot's own ``salesforceaccountid`` wins (in either id form); without it only a confident,
unambiguous domain or exact-name match links, because a wrong link merges two companies' scores.
"""

from __future__ import annotations

from config.matching import MatchingConfig
from matching import link_accounts
from matching.engine import Matcher
from matching.link import Linker, salesforce_linker
from store.ids import to_18
from store.records import AccountRecord

# Weights fixed here so that tuning the defaults does not move these hand-checked cases.
CONFIG = MatchingConfig.model_validate({
    "prior": -3.0, "link_threshold": 0.9,
    "domain": {"exact": 6.0, "subdomain": 5.5, "other_tld": 2.5, "different": -2.0, "unlisted": -2.0},
    "name": {"exact": 5.0, "high": 3.5, "legal_form_same": 0.0, "legal_form_partial": 0.0,
             "legal_form_different": 0.0},
    "geo": {"country_same": 1.0, "country_different": -3.0},
})


def sf(i: int, name: str, **kw) -> AccountRecord:
    return AccountRecord(id=i, crm="salesforce", crm_id=to_18(f"001{i:012d}"), name=name, **kw)


def hs(i: int, name: str | None, **kw) -> AccountRecord:
    return AccountRecord(id=1000 + i, crm="hubspot", crm_id=str(5000 + i), name=name, **kw)


SALESFORCE = [
    sf(1, "Acme Corporation", website="https://acme.com", country="US"),
    sf(2, "Globex GmbH", website="globex.de", country="DE"),
    sf(3, "Initech", country="US"),
    sf(4, "Initech", country="US"),  # a duplicate: a name-only link would be a coin toss
    sf(5, "Umbrella Pharma", website="umbrella-pharma.com", country="US"),
]


def links_by_company(companies: list[AccountRecord], config: MatchingConfig = CONFIG) -> dict[int, tuple[int, str]]:
    return {link.account_id: (link.canonical_account_id, link.method)
            for link in link_accounts(companies, SALESFORCE, config)}


def test_salesforceaccountid_wins_in_15_or_18_character_form_over_any_name() -> None:
    companies = [
        hs(1, "Totally Different Name", linked_salesforce_id="001000000000002"),  # 15 characters
        hs(2, "Acme", linked_salesforce_id=to_18("001000000000005")),
    ]
    assert links_by_company(companies) == {1001: (2, "salesforceaccountid"), 1002: (5, "salesforceaccountid")}
    (link, _) = link_accounts(companies, SALESFORCE, CONFIG)
    assert link.confidence == 1.0


def test_unknown_or_malformed_salesforce_ids_fall_back_to_domain_and_name() -> None:
    companies = [
        hs(1, "Acme Corp", domain="acme.com", linked_salesforce_id="001999999999999"),  # not an account we hold
        hs(2, "Globex", website="www.globex.de", linked_salesforce_id="not-an-id"),
    ]
    assert links_by_company(companies) == {1001: (1, "domain+name"), 1002: (2, "domain+name")}


def test_links_by_domain_or_by_exact_name_when_unambiguous() -> None:
    companies = [
        hs(1, "ACME Inc.", domain="acme.com", country="United States"),
        hs(2, "Umbrella Pharma LLC", country="US"),  # exact normalized name and same country, no domain
        hs(3, "Acme Widgets", domain="acmewidgets.io"),  # no link: different domain, partial name
    ]
    assert links_by_company(companies) == {1001: (1, "domain+name"), 1002: (5, "name")}


def test_no_link_when_the_best_account_is_tied_or_below_the_threshold() -> None:
    tied = hs(1, "Initech", country="US")
    assert links_by_company([tied]) == {}
    weak = hs(2, "Umbrella Pharma LLC")  # exact name alone: logistic(2) = 0.88 < 0.9
    assert links_by_company([weak]) == {}
    assert links_by_company([weak], CONFIG.model_copy(update={"link_threshold": 0.85})) == {1002: (5, "name")}


def test_no_salesforce_accounts_means_no_links() -> None:
    assert link_accounts([hs(1, "Acme", domain="acme.com")], [], CONFIG) == []
    assert link_accounts([hs(1, None)], SALESFORCE, CONFIG) == []


def test_a_linker_over_the_match_stages_matcher_links_as_one_over_the_salesforce_accounts() -> None:
    """The match stage lends its matcher (both CRMs' accounts) rather than index the Salesforce accounts again."""
    companies = [
        hs(1, "ACME Inc.", domain="acme.com", country="United States"),
        hs(2, "Umbrella Pharma LLC", country="US"),
        hs(3, "Initech", country="US"),
        hs(4, "Totally Different Name", linked_salesforce_id="001000000000002"),
        hs(5, "Acme Widgets", domain="acmewidgets.io"),
    ]
    stage = Linker(Matcher([*SALESFORCE, *companies], CONFIG))
    alone = salesforce_linker([*SALESFORCE, *companies], CONFIG)  # the HubSpot companies are left out of its index
    assert set(alone.matcher.indexes) == {"salesforce"}
    assert [stage.link(c) for c in companies] == [alone.link(c) for c in companies]
    assert [(link.account_id, link.method) for link in filter(None, (stage.link(c) for c in companies))] == [
        (1001, "domain+name"), (1002, "name"), (1004, "salesforceaccountid")]
