"""Which account a review proposes, once the matcher has decided not to write one.

An auto match is picked to be written: among tied candidates the tie-breakers (customer, most
contacts, recent activity, oldest) choose which record of one company gets the person, and that
is right when the tied records are one company. A review is kept because the matcher doubts, most
often that the tied or close candidates are one company at all. Then the proposal a person reads
should be the company the evidence points to, not the record a tie-breaker prefers:

- among candidates tied within ``tie_margin``, the best-supported one (a legal form, an industry or
  a company size that agrees adds a little confidence) is proposed; the tie-breakers only choose
  between candidates the evidence cannot tell apart;
- when the proposal disagrees with what the person says of their company beside its name (their
  city, industry, company size) and exactly one other candidate whose name still agrees has all of
  those right and nothing against it, that one is proposed: someone in London who typed 'Phillips'
  works more likely at Phillips Energy Ltd. of London than at Phillips Ltd of Edinburgh.

Nothing here changes what is written: it runs only for review decisions, and the decision stays
review.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from matching.score import Signal

Candidate = tuple[float, int, dict[str, Signal]]

# Name levels under which a candidate still answers to the typed name (medium: the typed words are most of it).
_NAME_AGREES = frozenset({"exact", "typo", "abbreviated", "high", "medium", "acronym", "prefix", "prefix_country",
                          "domain_label", "transliterated"})
# What a person says of their company beside its name that tells two namesakes apart.
_TELLING = ("city", "industry", "size")
# Confidences closer than this are equal (sums of the same weights in another order).
_EQUAL = 1e-9


def _level(signals: dict[str, Signal], key: str) -> str:
    return signals.get(key, ("",))[0]


def best_supported(ranked: Sequence[Candidate], chosen: Candidate, tie_margin: float,
                   tie_key: Callable[[Candidate], tuple]) -> Candidate:
    """The tied candidate with the highest confidence when a tie-breaker chose a less supported one.

    ``ranked`` is best first; of candidates equally supported, ``tie_key`` (the tie-breakers) chooses.
    """
    top = max(c[0] for c in ranked)
    if chosen[0] >= top - _EQUAL or chosen[0] < top - tie_margin:
        return chosen
    return min((c for c in ranked if c[0] >= top - _EQUAL), key=tie_key)


def telling_alternative(ranked: Sequence[Candidate], chosen: Candidate, floor: float) -> Candidate | None:
    """The one other candidate that has right what the chosen one has wrong (city, industry, size), if any.

    It must reach the review ``floor``, answer to the typed name, agree on each of the chosen one's
    disagreements and disagree on nothing (country and state included). Two such candidates are no
    better a proposal than the chosen one: None.
    """
    wrong = [k for k in _TELLING if _level(chosen[2], k) == "different"]
    if not wrong:
        return None
    found = [c for c in ranked
             if c[1] != chosen[1] and c[0] >= floor and _level(c[2], "name") in _NAME_AGREES
             and all(_level(c[2], k) == "same" for k in wrong)
             and not any(_level(c[2], k) == "different" for k in ("country", "state", *_TELLING))]
    return found[0] if len(found) == 1 else None
