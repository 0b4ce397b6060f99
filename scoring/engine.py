"""Activity aggregation: decay, daily caps, persona weights and windows, vectorized.

Everything is a handful of sorts and ``np.bincount`` calls over the activity columns, so a
full rescore of ten million touches is seconds, not an hour of Python loops. The result,
:class:`Aggregates`, is per-entity arrays; turning them into scores is :mod:`scoring.scores`.

Many touches are aggregated in two halves on two threads (numpy lets go of the interpreter lock in its
sorts and counts): every sum is per person, or per account added up from its people's touches, so one half's
people and the other's make up everyone's sums, and the halves' account sums add up to the whole's
(floating-point ones up to their last bits, added in another order).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields, replace

import numpy as np

from scoring.catalogue import DAY, Catalogue
from scoring.columns import ActivityColumns

N_PERSONAS = 4


@dataclass(frozen=True)
class Aggregates:
    """Per-account and per-person sums as of ``as_of`` (seconds since the epoch)."""

    as_of: int
    window_seconds: int
    account_type_points: np.ndarray  # float64[n_accounts, n_types], decayed, capped, persona-weighted
    account_recent: np.ndarray  # float64[n_accounts], undecayed engagement points in the recent window
    account_previous: np.ndarray  # float64[n_accounts], same in the window before it
    account_new_people: np.ndarray  # int64[n_accounts], people whose first touch is in the recent window
    account_people: np.ndarray  # int64[n_accounts], distinct engaged people
    account_persona_people: np.ndarray  # int64[n_accounts, 4], distinct engaged people per persona
    account_type_people: np.ndarray  # int64[n_accounts, n_types], distinct people per type
    person_type_points: np.ndarray  # float64[n_people, n_types]
    person_recent: np.ndarray  # float64[n_people]
    person_previous: np.ndarray  # float64[n_people]

    @property
    def n_accounts(self) -> int:
        return self.account_type_points.shape[0]

    @property
    def n_people(self) -> int:
        return self.person_type_points.shape[0]


_ACCOUNT_FIELDS = [f.name for f in fields(Aggregates) if f.name.startswith("account_")]
_PERSON_FIELDS = [f.name for f in fields(Aggregates) if f.name.startswith("person_")]


def gather(table: np.ndarray, index: np.ndarray, missing: float | int) -> np.ndarray:
    """``table[index]`` where ``index >= 0``, ``missing`` elsewhere; safe when ``table`` is empty
    (an org with touches but no people yet)."""
    if len(table) == 0:
        return np.full(len(index), missing, dtype=np.result_type(table.dtype, np.min_scalar_type(missing)))
    return np.where(index >= 0, table[np.maximum(index, 0)], missing)


def resolve_accounts(acts: ActivityColumns, person_account: np.ndarray) -> np.ndarray:
    """The account each touch counts for: its own account if it names one, else its person's match."""
    via_person = gather(person_account, acts.person, -1)
    return np.where(acts.account >= 0, acts.account, via_person).astype(np.int64)


def _sum_by(index: np.ndarray, weights: np.ndarray, size: int) -> np.ndarray:
    """Weighted bincount that stays float64 when there is nothing to count (numpy returns int64 then)."""
    return np.bincount(index, weights=weights, minlength=size).astype(np.float64, copy=False)


def _time_order(key: np.ndarray, account: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(permutation sorting ``key``, sorted ``key``). Equal keys (the same person, type and second)
    are ordered by account, then as they came, so which of them a cap keeps never depends on which
    other touches were loaded (an incremental rescore loads a subset, a large scoring splits them in
    halves): nor, among touches alike in all that, where the kept one sits, so that its entity's sums
    add the same numbers in the same order, to the last bit. Unstable sort: three times faster; only
    the tied touches are sorted again."""
    order = np.argsort(key)
    sorted_key = key[order]
    tie = sorted_key[1:] == sorted_key[:-1]
    if tie.any():
        in_tie = np.zeros(len(key), dtype=bool)
        in_tie[1:] |= tie
        in_tie[:-1] |= tie
        at = np.flatnonzero(in_tie)
        tied = np.sort(order[at])  # as they came: lexsort is stable
        order[at] = tied[np.lexsort((account[tied], key[tied]))]
    return order, sorted_key


def _group_starts(sorted_keys: np.ndarray) -> np.ndarray:
    if len(sorted_keys) == 0:
        return np.empty(0, dtype=np.int64)
    return np.flatnonzero(np.concatenate(([True], sorted_keys[1:] != sorted_keys[:-1])))


def _rank_in_group(sorted_groups: np.ndarray) -> np.ndarray:
    """0, 1, 2... within each run of equal values of an already sorted array."""
    n = len(sorted_groups)
    if n == 0:
        return np.empty(0, dtype=np.int64)
    is_start = np.concatenate(([True], sorted_groups[1:] != sorted_groups[:-1]))
    start_pos = np.where(is_start, np.arange(n), 0)
    np.maximum.accumulate(start_pos, out=start_pos)
    return np.arange(n) - start_pos


# Touches from which they are aggregated in two halves on two threads (below it, starting threads costs more than it
# saves). On the L org's 8 million touches, 4.2-4.4 s on one thread, 2.0-2.6 s on two (a 2-core machine).
HALVED_TOUCHES = 200_000


def aggregate(
    acts: ActivityColumns,
    *,
    person_account: np.ndarray,
    persona: np.ndarray,
    catalogue: Catalogue,
    as_of: int,
    window_days: int,
    n_accounts: int,
) -> Aggregates:
    """Aggregate every touch in ``(as_of - lookback, as_of)`` for each account and person.

    ``person_account`` is the match roll-up (person index -> account index or -1); ``persona``
    the persona code per person. Touches at or after ``as_of`` are ignored, which is what lets
    a backtest score "as of" a past date without leaking the future.

    From ``HALVED_TOUCHES`` touches on, the touches are split by the entity their daily cap counts them for: the
    touches of the first half of the people in one half, of the others in the other, a touch with no person by
    its account's parity. A daily cap, a person's sums and an account's distinct people so each see the touches
    of one half only. Each half holds the per-person arrays of its own people alone: the whole's are the
    largest arrays of a scoring (an L org's 1.8 million people by 28 types, 400 MB).
    """
    n_people = len(person_account)
    rollup = _Rollup(person_account, persona, catalogue, as_of, window_days, n_accounts)
    if len(acts) < HALVED_TOUCHES:
        return _aggregate(acts, rollup, (0, n_people))
    split = n_people // 2
    first = np.where(acts.person >= 0, acts.person < split, (acts.account & 1) == 0)
    halves = ((acts.take(first), (0, split)), (acts.take(~first), (split, n_people)))
    del first
    # everyone's per-person arrays, each half's copied in as soon as it has them (and let go): the halves' and
    # the whole's are so never all held at once
    whole = {"person_type_points": np.empty((n_people, catalogue.n_types)),
             "person_recent": np.empty(n_people), "person_previous": np.empty(n_people)}

    def aggregate_half(half: tuple[ActivityColumns, tuple[int, int]]) -> Aggregates:
        part = _aggregate(half[0], rollup, half[1])
        start, end = half[1]
        for name in _PERSON_FIELDS:
            whole[name][start:end] = getattr(part, name)
        return replace(part, **{name: whole[name][start:end] for name in _PERSON_FIELDS})

    with ThreadPoolExecutor(2, thread_name_prefix="abm-aggregate") as pool:
        low, high = pool.map(aggregate_half, halves)
    return replace(low, **{name: getattr(low, name) + getattr(high, name) for name in _ACCOUNT_FIELDS}, **whole)


@dataclass(frozen=True)
class _Rollup:
    """What :func:`aggregate` reads besides the touches (see there)."""

    person_account: np.ndarray
    persona: np.ndarray
    catalogue: Catalogue
    as_of: int
    window_days: int
    n_accounts: int


def _aggregate(acts: ActivityColumns, rollup: _Rollup, people: tuple[int, int]) -> Aggregates:
    """:func:`aggregate` on one thread, of touches whose people all lie in ``people`` (``[start, end)``), whose
    arrays it returns."""
    person_account, persona, catalogue = rollup.person_account, rollup.persona, rollup.catalogue
    as_of, n_accounts = rollup.as_of, rollup.n_accounts
    n_people = len(person_account)
    start, end = people
    n_types = catalogue.n_types
    window = rollup.window_days * DAY

    age_all = as_of - acts.ts
    in_range = (age_all > 0) & (age_all <= catalogue.lookback_seconds)
    person = acts.person[in_range].astype(np.int64)
    ttype = acts.type_code[in_range]  # as small as it comes: it only indexes, or adds to int64 keys
    ts = acts.ts[in_range]
    own_account = acts.account[in_range]
    account = np.where(own_account >= 0, own_account, gather(person_account, person, -1)).astype(np.int64)
    del own_account, age_all, in_range
    attributable = (person >= 0) | (account >= 0)
    if not attributable.all():
        person, ttype, ts, account = person[attributable], ttype[attributable], ts[attributable], account[attributable]

    # Daily caps: per (person, type, UTC day), keep the first `cap` touches. Touches without a
    # person are capped per account instead.
    # The group's key is built in place from the entity's: a temporary the size of the touches is freed first.
    group = np.where(person >= 0, person, n_people + account)
    day = ts // DAY
    day0 = int(day.min()) if len(day) else 0
    n_days = int(day.max()) - day0 + 1 if len(day) else 1
    if (n_people + n_accounts + 1) * n_types * n_days >= (1 << 63) // DAY:  # pragma: no cover
        raise ValueError("too many people, accounts and days to cap in one pass (beyond ~10^13 entity-days)")
    group *= n_types
    group += ttype
    group *= n_days
    day -= day0
    group += day
    del day
    group *= DAY  # the second of the day within the group: the time order within it
    group += ts % DAY
    order, sorted_key = _time_order(group, account)
    del group
    sorted_group = sorted_key // DAY
    keep_sorted = _rank_in_group(sorted_group) < catalogue.daily_cap[(sorted_group // n_days) % n_types]
    kept = np.empty(len(order), dtype=bool)
    kept[order] = keep_sorted  # back to the original order: the columns are filtered, never permuted
    del order, sorted_key, sorted_group, keep_sorted
    if not kept.all():
        person, ttype, ts, account = person[kept], ttype[kept], ts[kept], account[kept]
    del kept

    age = as_of - ts
    mult = gather(catalogue.persona_multiplier[persona], person, 1.0)
    base = catalogue.points[ttype] * mult
    weight = base * catalogue.decay(ttype, age)
    engaging = catalogue.engagement[ttype]
    recent = engaging & (age <= window)
    previous = engaging & (age > window) & (age <= 2 * window)

    # Accounts
    on_acc = account >= 0
    acc = account[on_acc]
    account_type_points = _sum_by(acc * n_types + ttype[on_acc], weight[on_acc], n_accounts * n_types).reshape(
        n_accounts, n_types
    )
    account_recent = _sum_by(acc, np.where(recent[on_acc], base[on_acc], 0.0), n_accounts)
    account_previous = _sum_by(acc, np.where(previous[on_acc], base[on_acc], 0.0), n_accounts)

    # Distinct engaged people per account, per type, per persona, and people new in the window.
    # One value sort (no argsort: the key itself carries account, person and type, and whether
    # the touch is older than the window in its lowest bit, so old touches sort first).
    sel = on_acc & (person >= 0) & engaging
    triple = (account[sel] * n_people + person[sel]) * n_types + ttype[sel]
    key = np.sort(triple * 2 + (ts[sel] > as_of - window))
    del triple
    t_starts = _group_starts(key >> 1)
    triple = key[t_starts] >> 1
    triple_new = (key[t_starts] & 1).astype(bool)  # its first (oldest) touch is in the window
    del key
    a, t = triple // (n_people * n_types), triple % n_types
    account_type_people = np.bincount(a * n_types + t, minlength=n_accounts * n_types).reshape(n_accounts, n_types)
    pair = triple // n_types  # sorted, since triple is
    p_starts = _group_starts(pair)
    pair_acc, pair_person = a[p_starts], pair[p_starts] % n_people
    account_people = np.bincount(pair_acc, minlength=n_accounts)
    pair_persona = persona[pair_person].astype(np.int64)
    account_persona_people = np.bincount(
        pair_acc * N_PERSONAS + pair_persona, minlength=n_accounts * N_PERSONAS
    ).reshape(n_accounts, N_PERSONAS)
    # A person is new to the account when none of their touches there is older than the window.
    pair_new = np.logical_and.reduceat(triple_new, p_starts) if len(p_starts) else np.empty(0, bool)
    account_new_people = np.bincount(pair_acc[pair_new], minlength=n_accounts)

    # People
    has_p = person >= 0
    pp = person[has_p] - start
    person_type_points = _sum_by(pp * n_types + ttype[has_p], weight[has_p], (end - start) * n_types).reshape(
        end - start, n_types
    )
    person_recent = _sum_by(pp, np.where(recent[has_p], base[has_p], 0.0), end - start)
    person_previous = _sum_by(pp, np.where(previous[has_p], base[has_p], 0.0), end - start)

    return Aggregates(
        as_of=as_of,
        window_seconds=window,
        account_type_points=account_type_points,
        account_recent=account_recent,
        account_previous=account_previous,
        account_new_people=account_new_people,
        account_people=account_people,
        account_persona_people=account_persona_people,
        account_type_people=account_type_people,
        person_type_points=person_type_points,
        person_recent=person_recent,
        person_previous=person_previous,
    )


# ---------------------------------------------------------------- incremental rescoring


def window_crossings(
    acts: ActivityColumns, since: int, until: int, *, lookback_seconds: int, window_days: int
) -> np.ndarray:
    """Touches whose membership in a window changed between two as-of times (a boolean mask).

    Between ``since`` and ``until`` scores change three ways: new touches (handled by the caller),
    exponential decay (applied analytically, see :func:`advance`) and touches crossing a window
    edge: becoming past, leaving the lookback, or moving between the velocity windows. Only the
    last needs the touches themselves; this finds them.
    """
    w = window_days * DAY
    ts = acts.ts
    mask = (ts >= since) & (ts < until)
    for edge in (lookback_seconds, w, 2 * w):
        mask |= (ts >= since - edge) & (ts < until - edge)
    return mask


def advance(agg: Aggregates, as_of: int, catalogue: Catalogue) -> Aggregates:
    """The same aggregates, ``as_of - agg.as_of`` seconds later, assuming no touch crossed a window.

    Exponential decay composes: a sum of ``2^(-age/h)`` terms ages by one factor per type.
    """
    if as_of < agg.as_of:
        raise ValueError("cannot advance aggregates backwards in time")
    factor = np.exp2(-((as_of - agg.as_of) / (catalogue.half_life_days * DAY)))
    return replace(
        agg,
        as_of=as_of,
        account_type_points=agg.account_type_points * factor,
        person_type_points=agg.person_type_points * factor,
    )


def pad(agg: Aggregates, n_accounts: int, n_people: int) -> Aggregates:
    """Grow arrays to new entity counts (new accounts and people start empty)."""
    changes: dict[str, np.ndarray] = {}
    for name in _ACCOUNT_FIELDS + _PERSON_FIELDS:
        arr = getattr(agg, name)
        target = n_accounts if name.startswith("account_") else n_people
        if arr.shape[0] < target:
            extra = np.zeros((target - arr.shape[0], *arr.shape[1:]), dtype=arr.dtype)
            changes[name] = np.concatenate([arr, extra])
    return replace(agg, **changes) if changes else agg


def merge(
    aged: Aggregates,
    fresh: Aggregates,
    dirty_accounts: np.ndarray,
    dirty_people: np.ndarray,
    fresh_account_row: np.ndarray,
    fresh_person_row: np.ndarray,
) -> Aggregates:
    """``aged`` with the rows of dirty entities replaced by their ``fresh`` rows.

    ``fresh`` may be compact (only the entities the recomputed touches involve):
    ``fresh_account_row[i]`` / ``fresh_person_row[i]`` is the fresh row of account / person ``i``.
    The decayed-point matrices of ``aged`` were just made by :func:`advance` and are written in
    place (no second copy of the largest arrays); the others are copied.
    """
    changes: dict[str, np.ndarray] = {}
    accounts, people = np.flatnonzero(dirty_accounts), np.flatnonzero(dirty_people)
    for name in _ACCOUNT_FIELDS + _PERSON_FIELDS:
        target, rows = (accounts, fresh_account_row) if name.startswith("account_") else (people, fresh_person_row)
        out = getattr(aged, name)
        if name not in _ADVANCED:
            out = out.copy()
        out[target] = getattr(fresh, name)[rows[target]]
        changes[name] = out
    return replace(aged, as_of=fresh.as_of, **changes)


_ADVANCED = ("account_type_points", "person_type_points")


@dataclass(frozen=True)
class CompactTouches:
    """Touches re-indexed onto the few entities they involve, so an incremental rescore aggregates
    arrays the size of what changed rather than of the whole org."""

    acts: ActivityColumns
    person_account: np.ndarray  # compact person -> compact account
    persona: np.ndarray
    n_accounts: int
    account_row: np.ndarray  # full account index -> compact index, -1 when not involved
    person_row: np.ndarray  # full person index -> compact index, -1 when not involved


def compact(
    acts: ActivityColumns, person_account: np.ndarray, persona: np.ndarray, n_accounts: int,
    dirty_accounts: np.ndarray, dirty_people: np.ndarray,
) -> CompactTouches:
    """Index maps keep the full order (sorted unions), so caps break ties exactly as in full."""
    people = np.union1d(np.flatnonzero(dirty_people), acts.person[acts.person >= 0])
    linked = person_account[people]
    accounts = np.union1d(
        np.union1d(np.flatnonzero(dirty_accounts), acts.account[acts.account >= 0]), linked[linked >= 0]
    )
    person_row = np.full(len(person_account), -1, dtype=np.int64)
    person_row[people] = np.arange(len(people))
    account_row = np.full(n_accounts, -1, dtype=np.int64)
    account_row[accounts] = np.arange(len(accounts))
    moved = ActivityColumns(
        gather(person_row, acts.person, -1).astype(np.int32),
        gather(account_row, acts.account, -1).astype(np.int32),
        acts.type_code,
        acts.ts,
    )
    return CompactTouches(
        acts=moved,
        person_account=gather(account_row, linked, -1).astype(np.int32),
        persona=persona[people],
        n_accounts=len(accounts),
        account_row=account_row,
        person_row=person_row,
    )
