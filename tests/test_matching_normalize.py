"""Normalization: properties over any input (hypothesis) and hand-checked examples.

Every normalizer sees whatever a CRM field or a CSV cell holds, so they must never raise and
must be idempotent (normalizing twice changes nothing: the matcher compares normalized values
that may themselves come from normalized data). Free-mail domains must never be usable to match.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config.matching import MatchingConfig
from matching import match
from matching.domains import FreeMail, email_domain, host_of, registrable_domain
from matching.engine import Matcher
from matching.geo import city_key, country_code, state_code
from matching.names import NameNormalizer, acronym, fold
from matching.phones import compare, digits, e164
from store.records import AccountRecord, PersonRecord

NORMALIZER = NameNormalizer()
FREE = FreeMail()

# Any code point, surrogates included: a CSV decoded with errors="surrogateescape" yields them.
ANY_TEXT = st.text(alphabet=st.characters(exclude_categories=()), max_size=120)
NAME_PIECES = st.lists(
    st.sampled_from([
        "Acme", "Globex", "Inc.", "inc", "GmbH", "&", "+", "and", "the", "Intl", "Co.", "Ltd", "S.A.", "LLC",
        "Holdings", "株式会社", "(株)", "ООО", "«Газпром»", "Société", "Générale", "l'Oréal", "I.B.M.", "Group",
        "Corp", "corporation", "n", "co", "ltd", "sa", "ag", "plc", "Pty", "Ltd.", ",", "-", "’", ".com", "Ünïcödé",
        "ß", "Æ", "ﬁ", "ＡＣＭＥ", "주식회사", "בע\"מ", "شركة",
    ]),
    max_size=8,
).map(" ".join)
DOMAIN_PIECES = st.lists(
    st.sampled_from([
        "www.", "www", "acme", ".", "..", "co", "uk", "com", "de", "eu.", "xn--", "é", "@", "http://", "https://",
        "/x", ":8080", " ", "?q=1", "#top", "-", "bücher", "例え", "mail.", "gmail.com",
    ]),
    max_size=8,
).map("".join)
PROPERTY = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TEXT_NORMALIZERS = {
    "name": NORMALIZER.normalize,
    "fold": fold,
    "host": host_of,
    "registrable_domain": registrable_domain,
    "country": country_code,
    "state": lambda s: state_code(s, "US"),
    "city": city_key,
    "e164": lambda s: e164(s, "US"),
}


@pytest.mark.parametrize("which", sorted(TEXT_NORMALIZERS))
@PROPERTY
@given(value=ANY_TEXT)
def test_normalizers_never_raise_and_are_idempotent_on_any_text(which: str, value: str) -> None:
    normalize = TEXT_NORMALIZERS[which]
    once = normalize(value)
    assert isinstance(once, str)
    assert normalize(once) == once


@PROPERTY
@given(value=NAME_PIECES)
def test_company_names_are_idempotent_on_name_like_text(value: str) -> None:
    once = NORMALIZER.normalize(value)
    assert NORMALIZER.normalize(once) == once
    assert once == once.strip() and "  " not in once


@PROPERTY
@given(value=st.one_of(DOMAIN_PIECES, ANY_TEXT))
def test_domains_are_idempotent_on_url_like_text(value: str) -> None:
    host = host_of(value)
    assert host_of(host) == host
    assert registrable_domain(registrable_domain(value)) == registrable_domain(value)
    # the registrable domain of a host is a suffix of it
    if registrable_domain(value):
        assert host.endswith(registrable_domain(value))


@PROPERTY
@given(value=ANY_TEXT, region=st.sampled_from(["", "US", "GB", "DE", "zz", "JP"]))
def test_other_helpers_never_raise(value: str, region: str) -> None:
    acronym(NORMALIZER.normalize(value))
    email_domain(value)
    digits(value)
    compare(value, region, value, region, 3)
    assert (value in FREE) in (True, False)


@PROPERTY
@given(
    free=st.sampled_from(sorted(FREE.domains)[:: max(1, len(FREE.domains) // 500)] + ["gmail.com", "yahoo.co.jp",
                                                                                      "gmx.at", "hotmail.co.uk"]),
    local=st.from_regex(r"[a-z][a-z0-9.]{0,12}", fullmatch=True),
    subdomain=st.sampled_from(["", "mail.", "eu."]),
)
def test_free_mail_never_matches_by_domain(free: str, local: str, subdomain: str) -> None:
    """A person on a free provider never gets a domain signal, even against an account using that domain."""
    account = AccountRecord(1, "salesforce", "A1", name="Zyxquo Fabrication", website=f"https://{free}")
    person = PersonRecord(10, "salesforce", "L1", "lead", email=f"{local}@{subdomain}{free}", company="Unrelated Plc",
                          website=f"http://{free}")
    matcher = Matcher([account], MatchingConfig())
    assert matcher.query_for(person).domains == ()
    assert matcher.indexes["salesforce"].reg == [""]
    (result,) = match([person], [account], MatchingConfig())
    assert result.decision == "none"
    assert "domain" not in result.reasons.get("signals", {})


# -- hand-checked examples ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("Acme, Inc.", "acme"),
        ("ACME Corporation", "acme"),
        ("The Acme Group Holdings Ltd.", "the acme group holdings"),
        ("Société Générale S.A.", "societe generale"),
        ("Müller & Söhne GmbH", "muller and sohne"),
        ("Ben + Jerry's LLC", "ben and jerrys"),
        ("Globex Intl. Svcs", "globex international services"),
        ("I.B.M.", "ibm"),
        ("Apex Systems Pty Ltd", "apex systems"),
        ("ООО «Газпром»", "gazprom"),
        ("株式会社ソニー", "ソニー"),
        ("ソニー株式会社", "ソニー"),
        ("(주)삼성", "삼성"),
        ("acme.com", "acme"),
        ("Inc.", "inc"),  # never stripped down to nothing
        ("", ""),
        ("   ", ""),
    ],
)
def test_company_name_normalization(typed: str, expected: str) -> None:
    assert NORMALIZER.normalize(typed) == expected


def test_configured_legal_terms_and_abbreviations_apply() -> None:
    normalizer = NameNormalizer(extra_legal_terms=["Genossenschaft"], abbreviations={"Dl": "dienstleistungen"})
    assert normalizer.normalize("Alpen Dl Genossenschaft") == "alpen dienstleistungen"


def test_acronym_skips_and_the() -> None:
    assert acronym("international business machines") == "ibm"
    assert acronym("the acme and sons") == "as"
    assert acronym("acme") == ""


@pytest.mark.parametrize(
    ("value", "host", "registrable"),
    [
        ("https://www.Acme.com/about?x=1", "acme.com", "acme.com"),
        ("jane.doe@EU.Acme.co.uk", "eu.acme.co.uk", "acme.co.uk"),
        ("ACME.COM.", "acme.com", "acme.com"),
        ("http://user:pw@shop.acme.de:8080/x", "shop.acme.de", "acme.de"),
        ("bücher.de", "xn--bcher-kva.de", "xn--bcher-kva.de"),
        ("www.www.acme.com", "acme.com", "acme.com"),
        ("localhost", "", ""),
        ("co.uk", "co.uk", ""),
        ("not a url", "", ""),
        (None, "", ""),
    ],
)
def test_domains(value: str | None, host: str, registrable: str) -> None:
    assert host_of(value) == host
    assert registrable_domain(value) == registrable


def test_free_mail_recognizes_packaged_country_variants_and_configured_extras() -> None:
    assert {"gmail.com", "yahoo.co.jp", "web.de", "hotmail.co.uk", "mail.gmail.com"} <= {
        d for d in ("gmail.com", "yahoo.co.jp", "web.de", "hotmail.co.uk", "mail.gmail.com") if d in FREE
    }
    assert "acme.com" not in FREE
    assert "acme.com" in FreeMail(["acme.com"])
    assert email_domain("not-an-email") == ""


@pytest.mark.parametrize(
    ("value", "expected"),
    [("United States of America", "US"), ("usa", "US"), ("U.S.A.", "US"), ("Deutschland", "DE"), ("de", "DE"),
     ("United Kingdom", "GB"), ("England", "GB"), ("日本", "JP"), ("Atlantis", "atlantis"), ("", "")],
)
def test_country_codes(value: str, expected: str) -> None:
    assert country_code(value) == expected


def test_states_and_cities() -> None:
    assert state_code("California", "US") == "ca"
    assert state_code("CA", "US") == "ca"
    assert state_code("Bavaria", "US") == "bavaria"  # a German state is not read as a US code
    assert city_key("São Paulo") == "sao paulo"
    assert city_key("  MÜNCHEN ") == "munchen"


def test_phones_in_e164() -> None:
    assert e164("(415) 555-0100", "US") == "+14155550100"
    assert e164("+44 20 7946 0958") == "+442079460958"
    assert e164("020 7946 0958", "GB") == "+442079460958"
    assert e164("12", "US") == ""
    assert compare("+1 415 555 0100", "", "(415) 555-0100", "US", 3) == "same"
    assert compare("+1 415 555 0100", "", "(415) 555-0199", "US", 3) == "switchboard"
    assert compare("+1 415 555 0100", "", "(415) 556-0100", "US", 3) == ""


@pytest.mark.parametrize(
    ("typed", "name", "legal"),
    [
        ("Mara Analytik GmH", "mara analytik", "gmbh"),  # a dropped letter
        ("Stone Star Group Incc.", "stone star group", "incorporated"),  # a doubled letter
        ("Casworks Gruppo rSl", "casworks gruppo", "srl"),  # two letters swapped
        ("Fortton Coporation Inc", "fortton", "corporation incorporated"),
        ("Giordano  Sr.l.", "giordano", "srl"),  # a stray space in the legal form
        ("Cook Group Pty Ld", "cook group", "limited proprietary"),
        ("Feedback Loop", "", ""),  # a word, not a slip of a common legal form
        ("Blue Ink", "", ""),  # 3-letter forms are only read through swapped or doubled letters
        ("Acme", "", ""),
    ],
)
def test_legal_forms_typed_with_a_slip_are_read_as_legal_forms(typed: str, name: str, legal: str) -> None:
    slip_name, slip_legal = NORMALIZER.legal_slip(NORMALIZER.normalize(typed))
    assert slip_name == name
    if name:
        merged = {*NORMALIZER.legal_form(typed).split(), *slip_legal.split()}
        assert " ".join(sorted(merged)) == legal


def test_known_words_one_edit_away() -> None:
    from matching.slips import known_one_edit_away

    vocabulary = {"dynara", "capital", "cenly", "amora"}
    assert known_one_edit_away("dnyara", vocabulary) == ["dynara"]  # swapped
    assert known_one_edit_away("capitl", vocabulary) == ["capital"]  # dropped
    assert known_one_edit_away("cenlyy", vocabulary) == ["cenly"]  # added
    assert known_one_edit_away("amors", vocabulary) == ["amora"]  # the key beside
    assert known_one_edit_away("amorp", vocabulary) == []  # a key far from the right one is not a slip
    assert known_one_edit_away("globex", vocabulary) == []


def test_abbreviations_not_in_the_table() -> None:
    from matching.score import abbreviates

    assert abbreviates("sol", "solutions") and abbreviates("nets", "networks") and abbreviates("dl", "dienstleistungen")
    assert not abbreviates("sol", "sol") and not abbreviates("nets", "ntworks") and not abbreviates("olu", "solutions")
