"""Kept account features: a kept value is used only while everything it was read from is unchanged.

The match stage trusts the digest to skip reading an account's features again, so a field or setting that
shapes the features but is left out of the digest would leave an account indexed under stale features.
"""

from __future__ import annotations

import dataclasses

import pytest

from config.matching import MatchingConfig
from matching import feature_cache
from matching.domains import FreeMail
from matching.index import _features
from matching.names import NameNormalizer
from store.records import AccountRecord
from tests.test_matching_accuracy import small_org
from tests.test_matching_inputs_key import _other_value

ACCOUNTS = [
    AccountRecord(1, "salesforce", "001A", "Acme Corporation", "https://www.acme.com", "acme.com", country="US",
                  state="CA", city="San Francisco"),
    AccountRecord(2, "salesforce", "001B", "株式会社小林テクノ運輸", None, "kobayashi-techno.co.jp", country="Japan"),
    AccountRecord(3, "hubspot", "9", "深圳永信咨询有限公司", "yongxin.cn", None, country="CN", city="深圳"),
    AccountRecord(4, "hubspot", "10", "삼성물산", None, None, country="KR"),
    AccountRecord(5, "salesforce", "001C", None, None, None),
    AccountRecord(6, "salesforce", "001D", "Müller & Söhne GmbH", "mueller-soehne.de", None, country="Deutschland"),
]


def _read(accounts: list[AccountRecord], config: MatchingConfig | None = None) -> list:
    config = config or MatchingConfig()
    normalizer = NameNormalizer(config.extra_legal_terms, config.abbreviations)
    return _features(accounts, normalizer, FreeMail(config.extra_free_mail_domains))


def test_kept_features_come_back_as_read() -> None:
    for features in _read(ACCOUNTS):
        assert feature_cache.restore(feature_cache.dump(features)) == features


def test_every_field_features_are_read_from_moves_the_digest() -> None:
    key = feature_cache.fingerprint(MatchingConfig())
    account = ACCOUNTS[0]
    digest = feature_cache.inputs_digest(key, account)
    for name in feature_cache.ACCOUNT_FIELDS:
        edited = dataclasses.replace(account, **{name: _other_value(account, name)})
        assert feature_cache.inputs_digest(key, edited) != digest, name


def test_fields_left_out_of_the_digest_never_change_features() -> None:
    accounts = small_org(2)[0][:300]
    before = _read(accounts)
    left_out = [f.name for f in dataclasses.fields(AccountRecord)
                if f.name not in feature_cache.ACCOUNT_FIELDS and f.name not in ("id", "crm_id")]
    assert {"type", "phone", "industry", "parent_crm_id", "crm"} <= set(left_out)
    key = feature_cache.fingerprint(MatchingConfig())
    for name in left_out:
        edited = [dataclasses.replace(a, **{name: _other_value(a, name)}) for a in accounts]
        assert all(feature_cache.inputs_digest(key, e) == feature_cache.inputs_digest(key, a)
                   for e, a in zip(edited, accounts, strict=True)), name
        assert _read(edited) == before, name


@pytest.mark.parametrize("setting", [
    {"extra_legal_terms": ["holdco"]},
    {"abbreviations": {"intl": "international"}},
    {"extra_free_mail_domains": ["acme.com"]},
])
def test_settings_that_shape_features_move_every_digest(setting: dict) -> None:
    plain, changed = MatchingConfig(), MatchingConfig(**setting)
    assert feature_cache.fingerprint(plain) == feature_cache.fingerprint(MatchingConfig())
    assert feature_cache.fingerprint(changed) != feature_cache.fingerprint(plain)
    account = ACCOUNTS[0]
    assert (feature_cache.inputs_digest(feature_cache.fingerprint(changed), account)
            != feature_cache.inputs_digest(feature_cache.fingerprint(plain), account))


def test_a_setting_that_changes_features_is_one_the_digest_reads() -> None:
    # the free-mail setting does change what is read of acme.com: a kept value would be wrong under it
    assert _read(ACCOUNTS[:1], MatchingConfig(extra_free_mail_domains=["acme.com"])) != _read(ACCOUNTS[:1])


def test_a_cut_short_value_is_refused() -> None:
    kept = feature_cache.dump(_read(ACCOUNTS[:1])[0])
    with pytest.raises(ValueError):
        feature_cache.restore(kept[: kept.index(",", 20)] + "]")
    with pytest.raises(ValueError):
        feature_cache.restore(kept[:-5])
