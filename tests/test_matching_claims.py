"""Which unheld people changed accounts could claim: found by their blocking keys, cheaply."""

from __future__ import annotations

import random

from config.matching import MatchingConfig
from matching import match
from matching.claims import Claims
from matching.domains import email_domain
from matching.engine import Matcher
from store.records import AccountRecord
from tests.test_matching_accuracy import small_org


def _matcher() -> Matcher:
    accounts = [
        AccountRecord(1, "salesforce", "A1", "Acme Corporation", "https://www.acme.com", "acme.com", country="US"),
        AccountRecord(2, "salesforce", "A2", "International Business Machines", "ibm.example", country="US"),
        AccountRecord(3, "salesforce", "A3", "瑞华信息", country="CN"),
        AccountRecord(4, "salesforce", "A4", "Globex GmbH", "globex.de", country="DE"),
    ]
    return Matcher(accounts, MatchingConfig())


def test_a_person_sharing_a_key_with_a_changed_account_may_be_claimed() -> None:
    claims = Claims(_matcher(), [1, 2, 3])
    assert claims.may_claim("salesforce", "jo@acme.com", None, None)  # the domain
    assert claims.may_claim("salesforce", None, "shop.acme.com", None)
    assert claims.may_claim("salesforce", None, None, "ACME Inc.")  # a word of the name
    assert claims.may_claim("salesforce", None, None, "IBM")  # the acronym
    assert claims.may_claim("salesforce", None, None, "Ruihua Xinxi")  # the other script's ASCII key


def test_nobody_else_is_claimed() -> None:
    claims = Claims(_matcher(), [1, 2, 3])
    assert not claims.may_claim("salesforce", "jo@globex.de", None, "Globex")  # an unchanged account's
    assert not claims.may_claim("salesforce", "jo@gmail.com", None, None)  # free mail names no company
    assert not claims.may_claim("hubspot", "jo@acme.com", None, "Acme")  # no changed account in that CRM
    assert not Claims(_matcher(), []).may_claim("salesforce", "jo@acme.com", None, "Acme")


def test_people_a_changed_account_wins_are_nearly_all_claimed() -> None:
    """On a generated org: of the leads the matcher gives to (or proposes for) some accounts, blocking offers
    those accounts to nearly all; the rest reach them through a slip of the keyboard or the wider search in
    their country (left for the full run). Far fewer of the other leads are flagged than all of them."""
    accounts, leads, _, _ = small_org(3)
    config = MatchingConfig()
    matcher = Matcher(accounts, config)
    results = match(leads, accounts, config)
    changed = set(random.Random(7).sample([a.id for a in accounts], len(accounts) // 10))
    won = [lead for lead, r in zip(leads, results, strict=True)
           if r.account_id in changed and r.decision in ("auto", "review") and not lead.is_converted]
    claims = Claims(matcher, changed)
    flagged = [lead for lead in won if claims.may_claim(lead.crm, lead.email, lead.website, lead.company)]
    assert len(won) > 100, len(won)
    assert len(flagged) / len(won) >= 0.97, (len(flagged), len(won))
    others = [lead for lead, r in zip(leads, results, strict=True) if r.account_id not in changed]
    flagged_others = sum(claims.may_claim(p.crm, p.email, p.website, p.company) for p in others)
    # measured: 641 of 1,843 on this small org, where a tenth of 500 accounts changed (on the L org, 1% of
    # the accounts changed flag 17,091 of the 105,941 people no account holds)
    assert flagged_others < 0.5 * len(others), (flagged_others, len(others))


def test_a_record_already_read_is_claimed_as_its_raw_fields_are() -> None:
    """The cross-CRM linker asks with each HubSpot company's index features instead of its raw fields."""
    accounts, _, _, _ = small_org(2)
    salesforce = [a for a in accounts if a.crm == "salesforce"]
    matcher = Matcher(salesforce, MatchingConfig())
    companies = Matcher(accounts, MatchingConfig(), keep_features=True)
    read = {a.id: f for index in companies.indexes.values()
            for a, f in zip(index.accounts, index.features or [], strict=True)}
    random.seed(7)
    claims = Claims(matcher, random.sample([a.id for a in salesforce], 25))
    answers = []
    for account in accounts:
        name, _legal, _latin, _host, reg = read[account.id][:5]
        raw = claims.may_claim("salesforce", None, account.domain or account.website, account.name)
        assert claims.may_claim_read("salesforce", (reg,), name) == raw, account
        answers.append(raw)
    assert any(answers) and not all(answers)


def test_a_person_read_beforehand_is_claimed_as_from_their_record() -> None:
    """The email host and normalized company read ahead of the stage (worker.match_read_ahead) give what the
    record itself gives, on every lead of a generated org."""
    accounts, leads, _, _ = small_org(3)
    matcher = Matcher(accounts, MatchingConfig())
    changed = random.Random(11).sample([a.id for a in accounts], len(accounts) // 10)
    from_records, read_before = Claims(matcher, changed), Claims(matcher, changed)
    normalize = matcher.normalizer.normalize
    flags = [(from_records.may_claim(p.crm, p.email, p.website, p.company),
              read_before.may_claim_person_read(p.crm, email_domain(p.email), p.website,
                                                normalize(p.company) if p.company else ""))
             for p in leads]
    assert all(a == b for a, b in flags) and 100 < sum(a for a, _ in flags) < len(flags)
