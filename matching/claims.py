"""Which unheld people a few changed accounts could claim, told without scoring anyone.

When an account is created or edited, the people no account holds (review and none decisions)
may now match it. Rematching all of them costs a full matching pass each (a hundred thousand
people on a large org, about half a minute) for the few a day's account edits can claim. A
person can only be claimed by an account that blocking offers as a candidate, so this asks the
index's own blocking (domains, then the name's exact keys, acronym, rarest words and the n-grams
of unknown words) for each unheld person's candidates and keeps the people offered a changed
account. It normalizes the typed company once and scores nothing.

What it does not see, left for the next full run: candidates the matcher adds beyond blocking
(a word one slip from an account's, a Japanese reading, the wider search in the person's
country that only proposes an account for review).
"""

from __future__ import annotations

from collections.abc import Iterable

from matching.domains import email_domain
from matching.engine import Matcher
from matching.names import ascii_key


class Claims:
    """The positions of some accounts in a built :class:`Matcher`'s indexes, per CRM."""

    def __init__(self, matcher: Matcher, account_ids: Iterable[int]) -> None:
        self.matcher = matcher
        wanted = set(account_ids)
        self.positions: dict[str, set[int]] = {}
        for crm, index in matcher.indexes.items():
            found = {index.position[a] for a in wanted if a in index.position}
            if found:
                self.positions[crm] = found
        # as wide as the matcher's own name lookup (see Matcher._name_ranking)
        self.limit = matcher.config.blocking.max_candidates * 5
        self._normalized: dict[str, str] = {}  # a company's people type its name alike
        self._by_name: dict[tuple[str, str], bool] = {}  # (crm, normalized name) -> whether blocking offers one

    def may_claim(self, crm: str, email: str | None, website: str | None, company: str | None) -> bool:
        """Whether blocking would offer any of the accounts to a person with these fields."""
        if crm not in self.positions:
            return False
        name = ""
        if company:
            known = self._normalized.get(company)
            name = self._normalized[company] = self.matcher.normalizer.normalize(company) if known is None else known
        return self.may_claim_person_read(crm, email_domain(email), website, name)

    def may_claim_person_read(self, crm: str, email_host: str, website: str | None, normalized_name: str) -> bool:
        """:meth:`may_claim` for a person read beforehand: the host of their email (``email_domain``) and their
        company's name as the matcher's normalizer gives it (``normalize``), which spares reading them again."""
        positions = self.positions.get(crm)
        if not positions:
            return False
        domains = self.matcher.corporate_domains(email_host or None, website)
        if domains and self._by_domain(crm, positions, [reg for _, reg in domains]):
            return True
        if not normalized_name:
            return False
        known = self._by_name.get((crm, normalized_name))
        if known is None:
            known = self._by_name[(crm, normalized_name)] = self._named(crm, positions, normalized_name)
        return known

    def may_claim_read(self, crm: str, registrable_domains: Iterable[str], normalized_name: str) -> bool:
        """:meth:`may_claim` for a record already read (an account's index features: its corporate registrable
        domains and normalized name), which spares reading its domain and name again."""
        positions = self.positions.get(crm)
        if not positions:
            return False
        regs = [reg for reg in registrable_domains if reg]
        if regs and self._by_domain(crm, positions, regs):
            return True
        return self._named(crm, positions, normalized_name)

    def _by_domain(self, crm: str, positions: set[int], regs: list[str]) -> bool:
        return not positions.isdisjoint(self.matcher.indexes[crm].domain_candidates(regs))

    def _named(self, crm: str, positions: set[int], name: str) -> bool:
        return bool(name) and not positions.isdisjoint(
            self.matcher.indexes[crm].name_candidates(name, name.split(), self.limit, ascii_key(name)))
