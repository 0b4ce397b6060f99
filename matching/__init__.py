"""Lead-to-account matching: a pure functional core (plain records in, plain results out).

Public API: :func:`match` (:func:`match_iter` yields the same results one at a time, in input order, for
callers that need not hold them all; :func:`match_each` yields them as fast as they come, each with its
person's position), :class:`Matcher` (reusable index), :func:`link_accounts` (cross-CRM identity) and the
normalizers used by both.
"""

from matching.compiled import choose_sources_or_compiled

choose_sources_or_compiled()  # before the core is imported: compiled, unless stale or ABM_MATCHING_SOURCES is set

from matching.engine import Matcher, match, match_each, match_iter  # noqa: E402
from matching.link import link_accounts  # noqa: E402
from matching.types import AccountLinkResult, MatchResult, Pin, PreviousMatch  # noqa: E402

__all__ = ["AccountLinkResult", "MatchResult", "Matcher", "Pin", "PreviousMatch", "link_accounts", "match",
           "match_each", "match_iter"]
