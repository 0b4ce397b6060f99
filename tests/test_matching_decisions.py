"""Hand-checked decision rules: bands, tie-breakers, roll-up, stability, pins and CRM ownership.

Confidences are computed by hand from the weights of ``RULES`` (fixed here, so that tuning the
defaults on the benchmark does not move these tests): confidence = logistic(prior + the weight
of every signal that is known), prior -3. For example domain exact (+6) and name exact (+5) give
logistic(8) = 0.99966.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from config.matching import MatchingConfig
from matching import Pin, PreviousMatch, match
from matching.engine import Matcher
from matching.types import ContactEmail
from store.records import AccountRecord, PersonRecord

RULES_DATA = {
    "prior": -3.0,
    "domain": {"exact": 6.0, "subdomain": 5.5, "contact": 4.0, "other_tld": 2.5, "account_name": 2.0,
               "different": -2.0, "unlisted": -2.0},
    "name": {"exact": 5.0, "typo": 4.5, "high": 3.5, "medium": 1.5, "low": -1.0, "different": -4.0, "acronym": 3.0,
             "prefix": 0.0,
             "domain_label": 3.5, "legal_form_same": 0.0, "legal_form_partial": 0.0, "legal_form_different": 0.0,
             "other_script": 0.0},
    "geo": {"country_same": 1.0, "country_different": -3.0, "state_same": 0.5, "state_different": -0.5,
            "city_same": 0.5, "city_different": 0.0},
    "phone": {"same": 3.0, "same_switchboard": 1.5},
}


def rules(**overrides) -> MatchingConfig:
    """RULES with some options changed (nested sections merged)."""
    data = {k: dict(v) if isinstance(v, dict) else v for k, v in RULES_DATA.items()}
    for key, value in overrides.items():
        if isinstance(value, dict):
            data[key] = {**data.get(key, {}), **value}
        else:
            data[key] = value
    return MatchingConfig.model_validate(data)


DEFAULT = RULES = rules()


def logistic(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def account(i: int, name: str, **kw) -> AccountRecord:
    return AccountRecord(id=i, crm=kw.pop("crm", "salesforce"), crm_id=f"A{i}", name=name, **kw)


def lead(i: int, company: str | None, email: str | None = None, **kw) -> PersonRecord:
    return PersonRecord(id=100 + i, crm=kw.pop("crm", "salesforce"), crm_id=f"L{i}", kind=kw.pop("kind", "lead"),
                        company=company, email=email, **kw)


def one(person: PersonRecord, accounts: list[AccountRecord], config: MatchingConfig = DEFAULT, **kw):
    (result,) = match([person], accounts, config, **kw)
    return result


# -- bands -----------------------------------------------------------------------------------------


def test_domain_and_name_agreement_is_an_auto_match_with_its_reasons() -> None:
    result = one(lead(1, "ACME, Inc.", "jane@acme.com"), [account(1, "Acme Corporation", website="https://www.acme.com")])
    assert result.decision == "auto"
    assert result.account_id == 1 == result.matched_account_id
    assert result.confidence == pytest.approx(logistic(-3 + 6 + 5), abs=1e-4)
    assert result.method == "domain+name"
    assert result.reason == "domain acme.com = acme.com; name acme = acme"
    assert result.reasons["signals"] == {"domain": ["exact", 6.0], "name": ["exact", 5.0]}


def test_name_alone_is_review_and_the_same_country_lifts_it_to_auto() -> None:
    accounts = [account(1, "Acme Corp", country="US")]
    review = one(lead(1, "Acme", "jane@gmail.com"), accounts)
    assert (review.decision, review.account_id) == ("review", 1)
    assert review.confidence == pytest.approx(logistic(-3 + 5), abs=1e-4)  # 0.8808 < 0.9
    auto = one(lead(1, "Acme", "jane@gmail.com", country="United States"), accounts)
    assert auto.decision == "auto"
    assert auto.confidence == pytest.approx(logistic(-3 + 5 + 1), abs=1e-4)
    assert auto.reason == "name acme = acme; country US"


def test_a_different_country_drops_below_review_and_keeps_the_best_for_display() -> None:
    result = one(lead(1, "Acme", country="DE"), [account(1, "Acme Corp", country="US")])
    assert result.decision == "none"
    assert result.account_id is None
    assert result.confidence == pytest.approx(logistic(-3 + 5 - 3), abs=1e-4)
    assert result.reason.startswith("best 0.27 below review threshold; name acme = acme; country DE != US")
    assert result.reasons["best_account_id"] == 1


def test_thresholds_come_from_the_configuration() -> None:
    strict = rules(auto_threshold=0.9999, review_threshold=0.9)
    person, accounts = lead(1, "Acme", "jane@acme.com"), [account(1, "Acme", website="acme.com")]
    assert one(person, accounts, strict).decision == "review"  # 0.99966
    assert one(lead(2, "Acme", "x@gmail.com"), accounts, strict).decision == "none"  # 0.8808


def test_nothing_to_match_on_says_so() -> None:
    result = one(lead(1, None, "jane@gmail.com"), [account(1, "Acme")])
    assert (result.decision, result.account_id, result.reason) == ("none", None, "no company name or corporate domain")
    other_crm = one(lead(2, "Acme", crm="hubspot"), [account(1, "Acme")])
    assert other_crm.decision == "none" and other_crm.reason == "no hubspot accounts to match against"


def test_phone_and_contacts_at_the_domain_are_signals() -> None:
    accounts = [account(1, "Initech", phone="+1 415 555 0100", country="US"), account(2, "Initrode")]
    contact = PersonRecord(id=900, crm="salesforce", crm_id="C1", kind="contact", email="bob@initech-mail.com",
                           account_crm_id="A1")
    result = one(lead(1, "Initech LLC", "peter@initech-mail.com"), accounts, contacts=[contact])
    assert result.account_id == 1
    assert result.confidence == pytest.approx(logistic(-3 + 4 + 5), abs=1e-4)
    assert "contacts at initech-mail.com: 1" in result.reason
    by_phone = one(lead(2, "Initech", "x@gmail.com", phone="(415) 555-0100", country="US"), accounts)
    assert by_phone.confidence == pytest.approx(logistic(-3 + 5 + 1 + 3), abs=1e-4)
    assert by_phone.reason == "name initech = initech; country US; phone same"


def test_one_result_per_person_in_input_order() -> None:
    people = [lead(i, "Acme", f"p{i}@acme.com") for i in (3, 1, 2)]
    results = match(people, [account(1, "Acme", website="acme.com")], DEFAULT)
    assert [r.person_id for r in results] == [103, 101, 102]


# -- tie-breakers ----------------------------------------------------------------------------------


def duplicates(per_account: dict[int, dict] | None = None) -> list[AccountRecord]:
    """Two accounts for the same company (a CRM duplicate): every signal ties."""
    return [account(i, "Acme Corp", website="acme.com", **(per_account or {}).get(i, {})) for i in (1, 2)]


def test_tie_goes_to_the_customer_and_the_reason_says_so() -> None:
    result = one(lead(1, "Acme", "jane@acme.com"), duplicates({2: {"type": "Customer - Direct"}}))
    assert (result.decision, result.account_id) == ("auto", 2)
    assert "tie of 2 broken by customer" in result.reason
    assert result.reasons["tie"] == "tie of 2 broken by customer"


def test_tie_then_goes_to_the_account_with_most_contacts() -> None:
    contacts = [PersonRecord(id=900 + i, crm="salesforce", crm_id=f"C{i}", kind="contact", account_crm_id="A2")
                for i in range(2)]
    result = one(lead(1, "Acme", "jane@acme.com"), duplicates(), contacts=contacts)
    assert result.account_id == 2
    assert "tie of 2 broken by most contacts" in result.reason


def test_tie_then_goes_to_recent_activity_then_to_the_oldest_account() -> None:
    recent = one(lead(1, "Acme", "jane@acme.com"), duplicates(),
                 last_activity={1: datetime(2025, 1, 1, tzinfo=UTC), 2: datetime(2026, 1, 1, tzinfo=UTC)})
    assert recent.account_id == 2 and "broken by recent activity" in recent.reason
    oldest = one(lead(1, "Acme", "jane@acme.com"),
                 duplicates({1: {"created_at": datetime(2024, 1, 1, tzinfo=UTC)},
                             2: {"created_at": datetime(2019, 1, 1, tzinfo=UTC)}}))
    assert oldest.account_id == 2 and "broken by oldest" in oldest.reason
    nothing = one(lead(1, "Acme", "jane@acme.com"), duplicates())
    assert nothing.account_id == 1 and "broken by account id" in nothing.reason


def test_tie_breakers_apply_in_the_configured_order() -> None:
    accounts = duplicates({1: {"type": "Customer"}, 2: {"created_at": datetime(2019, 1, 1, tzinfo=UTC)}})
    default = one(lead(1, "Acme", "jane@acme.com"), accounts)
    assert default.account_id == 1 and "broken by customer" in default.reason
    oldest_first = one(lead(1, "Acme", "jane@acme.com"), accounts, rules(tie_breakers=["oldest", "customer"]))
    assert oldest_first.account_id == 2 and "broken by oldest" in oldest_first.reason


def test_candidates_beyond_the_tie_margin_are_not_tied() -> None:
    accounts = [account(1, "Acme Corp", website="acme.com"), account(2, "Acme Corp", website="acme.com", country="US")]
    result = one(lead(1, "Acme", "jane@acme.com", country="US"), accounts)
    # +1 for the country: 0.99991 vs 0.99966 is inside the 0.02 margin; no breaker differs, so confidence decides
    assert result.account_id == 2
    assert "tie of 2 broken by confidence" in result.reason
    wide = one(lead(1, "Acme", "x@gmail.com", country="US"), accounts, rules(tie_margin=0.0))
    assert wide.account_id == 2 and "tie" not in wide.reason


def test_ambiguity_margin_turns_a_close_auto_match_into_review() -> None:
    accounts = [account(1, "Acme Systems", country="US", state="CA", city="San Francisco"),
                account(2, "Acme Systems", country="US")]
    person = lead(1, "Acme Systems", "x@gmail.com", country="US", state="California", city="San Francisco")
    assert one(person, accounts, rules(tie_margin=0.0)).decision == "auto"
    ambiguous = one(person, accounts, rules(tie_margin=0.0, ambiguity_margin=0.05))
    assert (ambiguous.decision, ambiguous.account_id) == ("review", 1)
    assert "runner-up within 0.05" in ambiguous.reasons["tie"]


# -- hierarchy ------------------------------------------------------------------------------------


def hierarchy() -> list[AccountRecord]:
    return [
        account(1, "Umbrella Holdings", website="umbrella.com"),
        account(2, "Umbrella Europe", website="umbrella.eu", parent_crm_id="A1"),
        account(3, "Umbrella Pharma GmbH", website="umbrella-pharma.de", parent_crm_id="A2"),
    ]


def test_roll_up_to_the_ultimate_parent_when_configured() -> None:
    person = lead(1, "Umbrella Pharma", "alice@umbrella-pharma.de")
    assert one(person, hierarchy()).account_id == 3
    rolled = one(person, hierarchy(), rules(rollup_to_parent=True))
    assert (rolled.account_id, rolled.matched_account_id, rolled.decision) == (1, 3, "auto")
    assert "rolled up from Umbrella Pharma GmbH to Umbrella Holdings" in rolled.reason
    assert rolled.reasons["rolled_up_from"] == 3


def test_roll_up_survives_a_cycle_in_the_crm_hierarchy() -> None:
    accounts = [account(1, "Alpha", website="alpha.com", parent_crm_id="A2"),
                account(2, "Beta", website="beta.com", parent_crm_id="A1")]
    result = one(lead(1, "Alpha", "x@alpha.com"), accounts, rules(rollup_to_parent=True))
    assert (result.account_id, result.matched_account_id) == (2, 1)


# -- stability -------------------------------------------------------------------------------------


STABILITY_ACCOUNTS = [account(1, "Acme Systems", country="US"),
                      account(2, "Acme Systems", country="US", state="CA", city="San Francisco")]
STABILITY_LEAD = lead(1, "Acme Systems", "x@gmail.com", country="US", state="CA", city="San Francisco")
# Account 1: name exact + country = logistic(3) = 0.9526; account 2 adds state and city: logistic(4) = 0.9820.


def test_a_match_only_moves_when_the_new_account_is_better_by_the_margin() -> None:
    fresh = one(STABILITY_LEAD, STABILITY_ACCOUNTS)
    assert fresh.account_id == 2 and fresh.confidence == pytest.approx(logistic(4), abs=1e-4)
    kept = one(STABILITY_LEAD, STABILITY_ACCOUNTS, previous={101: PreviousMatch(1, 0.95, "auto")})
    assert (kept.account_id, kept.decision) == (1, "auto")
    assert kept.confidence == pytest.approx(logistic(3), abs=1e-4)
    assert "kept previous match (new candidate better by 0.03 only)" in kept.reason
    assert kept.reasons["runner_up"]["account_id"] == 2
    moved = one(STABILITY_LEAD, STABILITY_ACCOUNTS, rules(stability_margin=0.02),
                previous={101: PreviousMatch(1, 0.95, "auto")})
    assert moved.account_id == 2 and "kept previous" not in moved.reason


def test_stability_ignores_previous_non_matches_and_weak_previous_accounts() -> None:
    ignored = one(STABILITY_LEAD, STABILITY_ACCOUNTS, previous={101: PreviousMatch(1, 0.4, "none")})
    assert ignored.account_id == 2
    accounts = [*STABILITY_ACCOUNTS, account(3, "Zenith Foods", country="FR")]
    weak = one(STABILITY_LEAD, accounts, previous={101: PreviousMatch(3, 0.9, "auto")})
    assert weak.account_id == 2  # account 3 now scores below review: the previous match is not defended


# -- pins and CRM ownership ------------------------------------------------------------------------


def test_admin_pins_always_win() -> None:
    accounts = [account(1, "Acme", website="acme.com"), account(2, "Other Co")]
    pinned = one(lead(1, "Acme", "jane@acme.com"), accounts, pins={101: Pin(2, "ops@example.com")},
                 previous={101: PreviousMatch(1, 0.99, "auto")})
    assert (pinned.account_id, pinned.decision, pinned.confidence) == (2, "pinned", 1.0)
    assert pinned.pinned_by == "ops@example.com" and pinned.reason == "pinned by ops@example.com"
    no_account = one(lead(1, "Acme", "jane@acme.com"), accounts, pins={101: Pin(None)})
    assert (no_account.account_id, no_account.decision) == (None, "pinned")
    contact = lead(2, "Acme", "jane@acme.com", kind="contact", account_crm_id="A1")
    assert one(contact, accounts, pins={102: Pin(2)}).account_id == 2


def test_contacts_keep_their_crm_account_unless_configured_otherwise() -> None:
    accounts = [account(1, "Acme", website="acme.com"), account(2, "Acme Reseller Partners")]
    contact = lead(1, "Acme", "jane@acme.com", kind="contact", account_crm_id="A2")
    kept = one(contact, accounts)
    assert (kept.account_id, kept.decision, kept.method, kept.confidence) == (2, "crm", "crm", 1.0)
    assert kept.reason == "CRM account Acme Reseller Partners"
    scored = one(contact, accounts, rules(keep_crm_account=False))
    assert (scored.account_id, scored.decision) == (1, "auto")
    orphan = one(lead(2, "Acme", "jane@acme.com", kind="contact", account_crm_id="A404"), accounts)
    assert (orphan.account_id, orphan.decision) == (1, "auto")  # an account we do not hold: scored instead


def test_converted_leads_keep_the_account_they_were_converted_to() -> None:
    accounts = [account(1, "Acme", website="acme.com"), account(2, "Acme Holdings")]
    converted = lead(1, "Acme", "jane@acme.com", is_converted=True, converted_account_crm_id="A2")
    result = one(converted, accounts)
    assert (result.account_id, result.decision, result.method) == (2, "crm", "converted")
    assert result.reason == "converted to Acme Holdings"
    rolled = one(converted, [*accounts[:1], account(2, "Acme Holdings", parent_crm_id="A1")],
                 rules(rollup_to_parent=True))
    assert (rolled.account_id, rolled.matched_account_id) == (1, 2)


def test_a_mistyped_legal_form_still_meets_the_account_name() -> None:
    accounts = [account(1, "Mara Analytik GmbH", country="DE"), account(2, "Mara Inc.", country="US")]
    result = one(lead(1, "Mara Analytik GmH", country="Germany"), accounts)
    assert (result.decision, result.account_id) == ("auto", 1)
    assert result.reasons["signals"]["name"] == ["typo", 4.5]
    assert "legal form mistyped" in result.reason


def test_a_generic_domain_no_account_holds_is_the_companys_other_domain_in_its_country() -> None:
    accounts = [account(1, "Abor Servicios S.L.", website="aborservicios.es", country="ES")]
    home = one(lead(1, "Abor Servicios", "ana@aborservicios.com", country="Spain"), accounts)
    assert home.reasons["signals"]["domain"] == ["other_tld_unlisted", 2.0]
    abroad = one(lead(2, "Abor Servicios", "ana@aborservicios.com", country="Mexico"), accounts)
    assert abroad.reasons["signals"]["domain"] == ["other_tld", 2.5]  # a sister company abroad, as RULES weigh it
    national = one(lead(3, "Abor Servicios", "ana@aborservicios.fr", country="Spain"), accounts)
    assert national.reasons["signals"].get("domain", [""])[0] != "other_tld_unlisted"


def test_a_legal_form_the_accounts_country_does_not_use_is_a_guess_not_another_company() -> None:
    germans = [account(i, f"Firma{i} GmbH", country="DE") for i in range(10, 50)]
    accounts = [account(1, "Lange GmbH", country="DE"), *germans]
    config = rules(name={"legal_form_different": -2.5, "legal_form_foreign": -0.5})
    guess = one(lead(1, "Lange Limited", country="Germany"), accounts, config)
    assert guess.reasons["signals"]["legal"] == ["foreign", -0.5]
    assert guess.decision == "auto"
    assert "legal form limited != gmbh (not used in DE)" in guess.reason
    # in Britain 'Limited' is a legal form of its own: there it says another company
    british = one(lead(2, "Lange Limited", country="United Kingdom"), accounts, config)
    assert british.reasons["signals"]["legal"] == ["different", -2.5]


def test_a_rare_brand_typed_alone_is_the_account_it_begins_unless_another_account_shares_it() -> None:
    config = rules(name={"prefix": 4.5})
    accounts = [account(1, "Pyrwave Partners Ltd", country="GB"),
                account(2, "Pyrwave Technologies, Inc.", country="US")]
    brand = one(lead(1, "Pyrwave", country="United Kingdom"), accounts, config)
    assert (brand.decision, brand.account_id) == ("auto", 1)
    assert brand.reasons["signals"]["name"] == ["prefix", 4.5]
    assert "its first words" in brand.reason
    # a legal form says the full name was typed: a namesake's, not the brand
    assert one(lead(2, "Pyrwave Ltd", country="United Kingdom"), accounts, config).reasons["signals"]["name"][0] \
        != "prefix"
    # two accounts in the person's country begin with it: which one is for a person to say
    rivals = [*accounts, account(3, "Pyrwave Energy Ltd", country="GB")]
    assert one(lead(3, "Pyrwave", country="United Kingdom"), rivals, config).decision == "review"


def test_a_misspelt_word_no_account_has_finds_the_word_it_stands_for() -> None:
    accounts = [account(1, "Dynara Capital LLC", country="US"), account(2, "Casara Capital LLC", country="US"),
                *(account(i, f"Firm{i} Capital LLC", country="US") for i in range(10, 40))]
    result = one(lead(1, "Dnyara Capital LLC", country="US"), accounts, rules(name={"legal_form_same": 0.8}))
    assert (result.decision, result.account_id) == ("auto", 1)
    assert result.reasons["signals"]["name"][0] == "typo"


def test_a_misspelt_romanized_name_finds_the_account_whose_domain_spells_it() -> None:
    accounts = [account(1, "小林製作所株式会社", website="kobayashi-seisakusho.co.jp", country="JP")]
    result = one(lead(1, "Kobayashi Deisakusho", country="Japan"), accounts)
    assert result.account_id == 1
    assert result.reasons["signals"]["name"][0] == "typo"
    # another first letter is another name, not a slip (Corvo, Norvo): a close name at most
    other = one(lead(2, "Nobayashi Seisakusho", country="Japan"), accounts)
    assert other.decision != "auto" and other.reasons.get("signals", {}).get("name", [""])[0] != "typo"


def test_a_japanese_name_meets_its_romanized_account_and_back() -> None:
    """Kanji are read in Japanese (Hepburn, long vowels plain), not as Chinese: 光証券 is Hikari Shoken."""
    config = rules(name={"transliterated": 4.5})
    accounts = [account(1, "光証券株式会社", country="JP"), account(2, "Toyo Hoken Co., Ltd.", country="JP"),
                account(3, "Kyushu Systems Co., Ltd.", country="JP")]
    romanized = one(lead(1, "Hikari Shoken K.K.", country="Japan"), accounts, config)
    assert (romanized.decision, romanized.account_id) == ("auto", 1)
    assert romanized.reasons["signals"]["name"] == ["transliterated", 4.5]
    # kanji typed by a person in Japan (no kana to tell them from Chinese), and kana with a loanword
    assert one(lead(2, "東洋保険", country="Japan"), accounts, config).account_id == 2
    assert one(lead(3, "有限会社九州システムズ", country="JP"), accounts, config).account_id == 3


def test_kanji_outside_japan_are_read_as_chinese() -> None:
    from matching.readings import reading_key

    assert reading_key("光証券", japan=True) == "hikarishoken"
    assert reading_key("光証券") == "guangzhengquan"  # no kana and no Japanese record: Chinese
    assert reading_key("大和ホールディングス") == "yamatoholdings"  # kana say Japanese
    assert reading_key("acme holdings", japan=True) == "acmeholdings"


def test_a_chinese_registered_name_meets_the_account_without_its_place_and_back() -> None:
    """深圳永信咨询有限公司 is registered in Shenzhen; in Latin letters the company is Yongxin Zixun."""
    config = rules(name={"transliterated": 4.5})
    accounts = [account(1, "Yongxin Zixun Co., Ltd.", country="CN"),
                account(2, "杭州中科金桥集团有限公司", country="CN")]
    native = one(lead(1, "深圳永信咨询有限责任公司", country="China"), accounts, config)
    assert (native.decision, native.account_id) == ("auto", 1)
    assert native.reasons["signals"]["name"] == ["transliterated", 4.5]
    assert one(lead(2, "Zhongke Jinqiao Jituan", country="CN"), accounts, config).account_id == 2
    # a name that begins with no place keeps its whole reading
    from matching.readings import place_free_key

    assert place_free_key("长城实业") == "" and place_free_key("武汉新宇安达贸易") == "xinyuandamaoyi"


def test_one_company_entered_in_two_scripts_is_one_company_for_a_tie() -> None:
    config = rules(name={"transliterated": 4.5, "exact": 4.5})  # the two records score alike
    twice = [account(1, "上海汇通天成咨询有限公司", country="CN", city="上海市"),
             account(2, "Huitong Tiancheng Zixun", country="CN", city="上海市")]
    result = one(lead(1, "Huitong Tiancheng Zixun Co. Ltd", country="CN"), twice, config)
    assert result.decision == "auto" and "tie of 2" in result.reason
    # two companies of one reading in two countries (or with two websites) are not
    apart = [twice[0], account(3, "Huitong Tiancheng Zixun", country="SG")]
    assert one(lead(2, "Huitong Tiancheng Zixun Co. Ltd"), apart, config).decision == "review"


def test_one_company_entered_twice_in_one_city_with_a_slip_or_a_legal_form_added_is_one_company() -> None:
    config = rules(name={"typo": 5.0, "legal_form_partial": 0.0})  # the two records score alike
    for second in ("Velia Soluzioni S.p.A. Limited", "Velia Soluzzioni S.p.A."):
        twice = [account(1, "Velia Soluzioni S.p.A.", website="velia-soluzioni.it", country="IT", city="Torino"),
                 account(2, second, country="IT", city="Torino")]
        result = one(lead(1, "Velia Soluzioni", country="Italy"), twice, config)
        assert result.decision == "auto" and "tie of 2" in result.reason, second
    # other legal forms, or the same name in two cities, may be two companies
    for second, city in (("Velia Soluzioni GmbH", "Torino"), ("Velia Soluzioni S.p.A. Limited", "Milano")):
        twice = [account(1, "Velia Soluzioni S.p.A.", website="velia-soluzioni.it", country="IT", city="Torino"),
                 account(2, second, country="IT", city=city)]
        assert one(lead(2, "Velia Soluzioni", country="Italy"), twice, config).decision == "review", second


def test_a_korean_name_meets_its_romanized_account() -> None:
    """Hangul in the Revised Romanization (한국 Hanguk, 새롬 Saerom), loanwords as the English words they are."""
    from matching.readings import reading_key

    assert reading_key("새롬 한국 시스템") == reading_key("saerom hanguk systems") == "saeromhanguksystems"
    assert reading_key("물류 제약 산업") == "mullyujeyaksaneop"
    accounts = [account(1, "Saerom Hanguk System Co., Ltd.", country="KR"), account(2, "한빛 시스템", country="KR")]
    result = one(lead(1, "주식회사 새롬 한국 시스템", country="KR"), accounts, rules(name={"transliterated": 4.5}))
    assert (result.decision, result.account_id) == ("auto", 1)
    assert result.reasons["signals"]["name"] == ["transliterated", 4.5]


def test_shortened_words_are_the_words_they_shorten() -> None:
    accounts = [account(1, "Crystal Port Solutions SA", country="FR"), account(2, "Crystal Port GmbH", country="DE")]
    result = one(lead(1, "Crystal Port Soltns SA", country="France"), accounts, rules(name={"abbreviated": 4.5}))
    assert (result.decision, result.account_id) == ("auto", 1)
    assert result.reasons["signals"]["name"] == ["abbreviated", 4.5]


def test_a_longer_name_elsewhere_does_not_doubt_a_match_in_the_persons_city() -> None:
    config = rules(geo={"city_same": 1.0, "city_different": -1.0}, name={"prefix": 4.5})
    accounts = [account(1, "Globra GmbH", country="DE", city="Frankfurt am Main"),
                account(2, "Globra Gruppe AG", country="DE", city="Hamburg")]
    here = one(lead(1, "Globra", country="Germany", city="Frankfurt am Main"), accounts, config)
    assert (here.decision, here.account_id) == ("auto", 1)
    nowhere = one(lead(2, "Globra", country="Germany"), accounts, config)
    assert nowhere.decision == "review"
    assert "the name also fits Globra Gruppe AG" in nowhere.reason
    # the longer name's city is not known: the person's city is still this account's and not the other's
    unknown = [accounts[0], account(3, "Globra Gruppe AG", country="DE")]
    assert (one(lead(3, "Globra", country="Germany", city="Frankfurt am Main"), unknown, config).decision,
            one(lead(4, "Globra", country="Germany"), unknown, config).decision) == ("auto", "review")


def test_a_city_the_accounts_place_in_one_country_stands_for_that_country() -> None:
    seattle = [account(i, f"Firm{i} LLC", country="US", city="Seattle") for i in range(10, 14)]
    accounts = [account(1, "Norly Limited", city="Seattle"), *seattle]
    result = one(lead(1, "Norly", country="Italy"), accounts)
    assert result.decision == "none"
    assert "country IT != US (city seattle)" in result.reason
    # and a person with a city and no country is placed the same way
    home = one(lead(2, "Norly", city="Seattle"), accounts)
    assert home.reasons["signals"]["country"][0] == "same"


def test_candidates_for_shortened_names_and_for_common_words_with_a_stray_last_word() -> None:
    accounts = [account(1, "Primix Corporation Solutions LLC", country="US"),
                account(2, "Johnson Holdings Inc.", country="US", city="Denver"),
                *(account(10 + i, f"Johnson Holdings {i}", country="US") for i in range(250))]
    shortened, stray = match([lead(1, "Primix Corp Sol LLC", country="US"),
                              lead(2, "Johnson Holdings Ibc.", country="US", city="Denver")], accounts, DEFAULT)
    assert (shortened.account_id, shortened.reasons["signals"]["name"][0]) == (1, "abbreviated")
    assert (stray.decision, stray.account_id) == ("review", 2)  # 'johnson' and 'holdings' are too common to search by


def test_a_brand_found_abroad_but_in_one_account_of_the_persons_country_is_worth_a_review() -> None:
    config = rules(name={"prefix": 4.5, "prefix_country": 3.0})
    abroad = [account(10 + i, f"Norly {kind}", country=c)
              for i, (kind, c) in enumerate([("Limited", "CA"), ("B.V.", "NL"), ("S.A.", "MX"), ("GmbH", "DE")])]
    accounts = [account(1, "Norly Gruppo S.r.l.", country="IT"), *abroad]
    result = one(lead(1, "Norly", country="Italy"), accounts, config)
    assert (result.decision, result.account_id) == ("review", 1)
    assert result.reasons["signals"]["name"] == ["prefix_country", 3.0]
    assert "the only such name in IT" in result.reason


def test_a_slip_in_a_short_word_finds_the_name_spelt_right() -> None:
    namesakes = [account(10 + i, f"Prairie Field{i} LLC", country="US") for i in range(60)]
    accounts = [*namesakes, account(1, "Prairie Way LLC", country="US")]  # beyond the first postings searched
    result = one(lead(1, "Prairie Wya LLC", country="US"), accounts)
    assert (result.account_id or result.reasons["best_account_id"]) == 1  # found and scored, on the name's merits


def test_industry_and_company_size_tell_namesakes_apart() -> None:
    accounts = [account(1, "Quantra Inc.", country="US", industry="Technology", employees=800),
                account(2, "Quantra Corporation", country="US", industry="Retail", employees=40)]
    blind = one(lead(1, "Quantra", country="US"), accounts, DEFAULT)
    assert blind.decision == "review" and "tie of 2" in blind.reason
    by_industry = one(lead(2, "Quantra", country="US", industry="retail"), accounts, DEFAULT)
    assert (by_industry.decision, by_industry.account_id) == ("auto", 2)
    assert "industry retail" in by_industry.reason
    assert by_industry.reasons["signals"]["industry"] == ["same", 1.0]
    by_size = one(lead(3, "Quantra", country="US", employees=1000), accounts, DEFAULT)
    assert (by_size.decision, by_size.account_id) == ("auto", 1)
    assert "employees 1000 ~ 800" in by_size.reason
    # a size between the two ratios says nothing; a different industry counts against the only namesake
    assert "size" not in one(lead(4, "Quantra", country="US", employees=200), accounts[:1]).reasons["signals"]
    alone = one(lead(5, "Quantra", country="US", industry="Food & Beverage"), accounts[:1], DEFAULT)
    assert alone.decision == "review" and "industry food and beverage != technology" in alone.reason


def test_firmographic_weights_come_from_the_configuration() -> None:
    accounts = [account(1, "Quantra Inc.", country="US", industry="Technology")]
    off = rules(firmographic={"industry_same": 0.0, "industry_different": 0.0})
    assert one(lead(1, "Quantra", country="US", industry="Retail"), accounts, off).decision == "auto"


def test_with_no_country_typed_the_phone_code_or_the_mail_suffix_says_where_the_person_is() -> None:
    accounts = [account(1, "Specsys S.r.l.", country="IT"), account(2, "Specsys Corp.", country="CA")]
    by_phone = one(lead(1, "Specsys", "dsantoro@gmail.com", phone="+39 02 8059 4416"), accounts)
    assert (by_phone.decision, by_phone.account_id) == ("auto", 1)
    assert "country IT" in by_phone.reason
    by_mail = one(lead(2, "Specsys", "dsantoro@alice.it"), accounts)
    assert (by_mail.decision, by_mail.account_id) == ("auto", 1)
    # a national number format, a generic suffix or a typed country say nothing more
    assert one(lead(3, "Specsys", "d@gmail.com", phone="02 8059 4416"), accounts).decision == "review"
    assert one(lead(4, "Specsys", "d@santoro.io"), accounts).decision != "auto"
    typed = one(lead(5, "Specsys", "dsantoro@alice.it", country="Canada"), accounts)
    assert typed.account_id == 2


def test_usual_short_forms_of_solutions_networks_and_dienstleistungen() -> None:
    from matching.names import NameNormalizer

    normalize = NameNormalizer().normalize
    assert normalize("Braun Sol GmbH") == normalize("Braun Solutions GmbH") == "braun solutions"
    assert normalize("Green Nets Ltd") == "green networks"
    assert normalize("Weber DL GmbH") == "weber dienstleistungen"


# -- what a review proposes -------------------------------------------------------------------------


def test_a_review_of_tied_namesakes_proposes_the_best_supported_not_the_tie_breakers_pick() -> None:
    contacts = [PersonRecord(id=900 + i, crm="salesforce", crm_id=f"C{i}", kind="contact", account_crm_id="A2")
                for i in range(2)]
    accounts = [account(1, "Acme Corp", website="acme.com", country="US", city="Boston", industry="Retail"),
                account(2, "Acme Corp", website="acme-group.com", country="US", city="Boston")]
    person = lead(1, "Acme", "x@gmail.com", country="US", city="Boston", industry="Retail")
    result = one(person, accounts, contacts=contacts)
    # 0.989 (industry agrees) and 0.971 are tied within 0.02; two websites: maybe two companies, so review
    assert result.decision == "review"
    assert result.account_id == 1
    assert result.confidence == pytest.approx(logistic(-3 + 5 + 1 + 0.5 + 1), abs=1e-4)
    assert result.reasons["proposed"] == "best supported of the tied accounts proposed"
    assert result.reasons["runner_up"]["account_id"] == 2
    # the same tie between records of one company (one website) is written to the tie-breakers' pick
    one_company = [accounts[0], account(2, "Acme Corp", website="acme.com", country="US", city="Boston")]
    written = one(person, one_company, contacts=contacts)
    assert (written.decision, written.account_id) == ("auto", 2)
    assert "proposed" not in written.reasons


def test_a_review_proposes_the_namesake_in_the_persons_city_when_only_one_fits() -> None:
    # 'Phillips' is 'Phillips Energy Ltd.' in medium likeness ('energy' is a common word of company names)
    config = rules(geo={"city_same": 1.0, "city_different": -1.0}, name={"high_at": 0.99})
    energy = [account(10 + i, f"{name} Energy GmbH", country="DE") for i, name in enumerate(("Adler", "Berg", "Dorn"))]
    edinburgh = account(1, "Phillips Ltd", country="GB", city="Edinburgh")
    london = account(2, "Phillips Energy Ltd.", country="GB", city="London")
    person = lead(1, "Phillips", "x@gmail.com", country="GB", city="London")
    result = one(person, [edinburgh, london, *energy], config)
    # the exact name is the better score (0.88 against 0.62), but not written, and the person is in London
    assert result.decision == "review"
    assert result.account_id == 2
    assert result.reasons["signals"] == {"name": ["medium", 1.5], "country": ["same", 1.0], "city": ["same", 1.0]}
    assert result.confidence == pytest.approx(logistic(0.5), abs=1e-4)
    assert result.reasons["proposed"].startswith("Phillips Energy Ltd. proposed")
    # two namesakes in London: nothing tells which, the best score is proposed
    other = account(3, "Phillips Energy PLC", country="GB", city="London")
    assert one(person, [edinburgh, london, other, *energy], config).account_id == 1
    # a namesake in London whose industry is not the person's is no better a proposal
    retail = lead(2, "Phillips", "x@gmail.com", country="GB", city="London", industry="Energy")
    shop = account(4, "Phillips Energy Ltd.", country="GB", city="London", industry="Retail")
    assert one(retail, [edinburgh, shop, *energy], config).account_id == 1


def test_a_brand_crowded_out_by_namesakes_abroad_is_found_in_the_persons_country_and_only_proposed() -> None:
    config = rules(name={"prefix": 4.5}, blocking={"max_candidates": 2})
    # two namesakes abroad take the places blocking gives the closest names, and of the longer names that hold
    # the typed word the first two, American too
    abroad = [account(10, "Norly Inc.", country="US"), account(11, "Norly Ltd", country="GB"),
              *(account(12 + i, f"Norly {word} Inc.", country="US") for i, word in enumerate(("Alpha", "Bravo")))]
    italy = account(1, "Norly Gruppo S.r.l.", country="IT", city="Roma", industry="Retail")
    accounts = [*abroad, italy]
    result = one(lead(1, "Norly", "x@gmail.com", country="Italy"), accounts, config)
    assert (result.decision, result.account_id) == ("review", 1)
    assert result.reasons["signals"]["name"] == ["prefix_country", 3.0]
    assert result.confidence == pytest.approx(logistic(-3 + 3 + 1), abs=1e-4)
    assert "found among the accounts of the person's country" in result.reasons["proposed"]
    # what only the wider search found is proposed, not written, however well it scores
    sure = one(lead(2, "Norly", "x@gmail.com", country="Italy", city="Roma", industry="Retail"), accounts, config)
    assert (sure.decision, sure.account_id) == ("review", 1)
    assert sure.confidence == pytest.approx(logistic(-3 + 3 + 1 + 0.5 + 1), abs=1e-4)
    assert sure.confidence >= config.auto_threshold


def test_a_mistyped_name_cut_by_blocking_is_found_in_the_persons_country_and_only_proposed() -> None:
    config = rules(name={"typo": 4.5}, blocking={"max_candidates": 1})
    # the American namesake of the typed slip takes the one place blocking gives; the Brazilian company is 'close'
    accounts = [account(1, "Granite Harbuor Inc", country="US"), account(2, "Granite Harbour Ltda", country="BR")]
    result = one(lead(1, "Granite Harbuor", "x@gmail.com", country="Brazil"), accounts, config)
    assert (result.decision, result.account_id) == ("review", 2)
    assert result.reasons["signals"] == {"name": ["typo", 4.5], "country": ["same", 1.0]}
    assert result.confidence == pytest.approx(logistic(-3 + 4.5 + 1), abs=1e-4)
    assert result.reasons["runner_up"]["account_id"] == 1


def test_contacts_read_as_plain_tuples_weigh_as_contact_records() -> None:
    """The match stage hands the matcher its million contacts as database tuples (ContactEmail), not records."""
    accounts = [account(1, "Initech"), account(2, "Initrode")]
    records = [
        PersonRecord(id=900, crm="salesforce", crm_id="C1", kind="contact", email="bob@initech-mail.com",
                     account_crm_id="A1"),
        # her own vanity domain, free mail, an unknown account, another CRM: none says where anyone works
        PersonRecord(id=901, crm="salesforce", crm_id="C2", kind="contact", first_name="Jane", last_name="Doe",
                     email="jane@doej.net", account_crm_id="A2"),
        PersonRecord(id=902, crm="salesforce", crm_id="C3", kind="contact", email="x@gmail.com", account_crm_id="A2"),
        PersonRecord(id=903, crm="salesforce", crm_id="C4", kind="contact", email="y@initech-mail.com",
                     account_crm_id="A404"),
        PersonRecord(id=904, crm="hubspot", crm_id="C5", kind="contact", email="z@initrode.net", account_crm_id="A2"),
    ]
    tuples = [ContactEmail(p.crm, p.account_crm_id, p.email, p.first_name, p.last_name) for p in records]
    from_records = Matcher(accounts, RULES, contacts=records)
    from_tuples = Matcher(accounts, RULES, contact_emails=[tuple(t) for t in tuples])
    for matcher in (from_records, from_tuples):
        index = matcher.indexes["salesforce"]
        assert index.contact_domains == {"initech-mail.com": {0: 1}}
        assert index.contact_count == {0: 1, 1: 2}
    people = [lead(1, "Initech LLC", "peter@initech-mail.com"), lead(2, "Doe", "john@doej.net")]
    assert (list(match(people, accounts, RULES, contacts=records))
            == [from_tuples.match_person(p) for p in people])
