"""The match stage's kept account features: read the valid ones before the index build, keep the new ones after.

The matcher reads every account's features to build its index; most of them are the same as last run's.
:mod:`matching.feature_cache` says when a kept value is still valid; this module is its database edge.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, delete, select

from config.matching import MatchingConfig
from matching import feature_cache
from matching.engine import Matcher
from matching.index import Features
from store.cursor_rows import driver_batches
from store.records import AccountRecord
from store.schema import Account, MatchFeatures
from store.upsert import upsert

_READ_BATCH = 50_000
_WRITE_BATCH = 10_000


@dataclass
class KeptFeatures:
    """The digest each account's features should carry, and the kept features that do."""

    digests: dict[int, str]
    valid: dict[int, Features]


def load_kept_features(conn: Connection, accounts: Sequence[AccountRecord], config: MatchingConfig) -> KeptFeatures:
    """The kept features that still describe these accounts as they are now, under these settings.

    A row that does not (the account changed, a setting or the product did) or that cannot be read is left
    out, and the matcher reads that account again.
    """
    key = feature_cache.fingerprint(config)
    digests = {a.id: feature_cache.inputs_digest(key, a) for a in accounts}
    valid: dict[int, Features] = {}
    query = select(MatchFeatures.account_id, MatchFeatures.digest, MatchFeatures.features)
    for rows in driver_batches(conn, query, _READ_BATCH):
        _keep_valid(rows, digests, valid)
    return KeptFeatures(digests, valid)


def _keep_valid(rows: Iterable[tuple[int, str, str]], digests: Mapping[int, str], valid: dict[int, Features]) -> None:
    """Into ``valid``, the kept features of these rows whose digest is the account's."""
    for account_id, digest, kept in rows:
        if digests.get(account_id) != digest:
            continue
        try:
            valid[account_id] = feature_cache.restore(kept)
        except (ValueError, TypeError, IndexError):
            continue  # unreadable (edited by hand, cut short): read again, kept anew by keep_new_features


def refresh_kept_features(conn: Connection, kept: KeptFeatures, changed: Sequence[AccountRecord],
                          gone: Iterable[int], config: MatchingConfig) -> None:
    """Bring ``kept`` (what :func:`load_kept_features` gave for earlier records of the accounts) to the accounts
    as they are now: those ``changed`` since (live, new ones among them) and those ``gone`` (no longer live)."""
    for account_id in gone:
        kept.digests.pop(account_id, None)
        kept.valid.pop(account_id, None)
    key = feature_cache.fingerprint(config)
    digests: dict[int, str] = {}
    for account in changed:
        digests[account.id] = kept.digests[account.id] = feature_cache.inputs_digest(key, account)
        kept.valid.pop(account.id, None)
    ids = sorted(digests)
    query = select(MatchFeatures.account_id, MatchFeatures.digest, MatchFeatures.features)
    for start in range(0, len(ids), _WRITE_BATCH):
        _keep_valid(conn.execute(query.where(MatchFeatures.account_id.in_(ids[start:start + _WRITE_BATCH]))),
                    digests, kept.valid)


def keep_new_features(conn: Connection, matcher: Matcher, kept: KeptFeatures) -> int:
    """Keep the features ``matcher`` read anew (those ``kept`` lacked); returns how many rows were written.

    ``matcher`` must have been built with ``keep_features`` and ``kept.valid`` as its known features. Rows of
    accounts no longer live are dropped: their ids never come back.
    """
    rows = [
        {"account_id": account.id, "digest": kept.digests[account.id], "features": feature_cache.dump(features)}
        for index in matcher.indexes.values() if index.features is not None
        for account, features in zip(index.accounts, index.features, strict=True)
        if account.id not in kept.valid and account.id in kept.digests
    ]
    for start in range(0, len(rows), _WRITE_BATCH):
        upsert(conn, MatchFeatures.__table__, rows[start:start + _WRITE_BATCH], key=("account_id",))
    live = select(Account.id).where(Account.is_deleted.is_(False))
    conn.execute(delete(MatchFeatures).where(MatchFeatures.account_id.not_in(live)))
    return len(rows)


def features_by_account(matcher: Matcher) -> Mapping[int, Features]:
    """Account id -> index features, of every account a matcher built with ``keep_features`` indexed."""
    return {account.id: features for index in matcher.indexes.values() if index.features is not None
            for account, features in zip(index.accounts, index.features, strict=True)}
