"""Full rescore throughput of the scoring core: 10,000,000 activities, 200,000 accounts, 1,000,000 people.

The data is synthesized in columns, deterministically (seeded), with a realistic shape: a
skewed number of touches per person, every canonical type, timestamps over 18 months, 80% of
people matched to an account and 10% of touches naming their account directly. Prints the
time of each stage, activities/s and the process's peak RSS.

    python -m benchmarks.scoring [--activities 10000000] [--accounts 200000] [--people 1000000]

Target (issue 7): full rescore <= 30 s wall on the 2-core machine, peak memory < 4 GB. Also prints
the time to write every account's reasons (text and breakdown; the score stage writes them for
changed rows) and of an hourly incremental rescore (0.1% new touches), for comparison.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

import numpy as np

from config.scoring import ScoringConfig
from scoring.columns import ActivityColumns
from scoring.fit import AccountSegments
from scoring.outcomes import OpportunityColumns
from scoring.personas import PersonaColumns
from scoring.reasons import ReasonWriter
from scoring.scores import Population, dirty_entities, rescore_incremental, score

AS_OF = 1_780_000_000  # 2026-05-28
SPAN = 540 * 86_400


def synthesize(n_acts: int, n_accounts: int, n_people: int, seed: int = 7):
    rng = np.random.default_rng(seed)
    # Skewed activity per person: a few very active people, many quiet ones.
    weights = rng.pareto(1.5, n_people) + 0.1
    weights /= weights.sum()
    person = rng.choice(n_people, size=n_acts, p=weights).astype(np.int32)
    person_account = np.where(rng.random(n_people) < 0.8, rng.integers(0, n_accounts, n_people), -1).astype(np.int32)
    direct = rng.random(n_acts) < 0.1
    account = np.where(direct, person_account[person], -1).astype(np.int32)
    person[direct & (rng.random(n_acts) < 0.3)] = -1  # account-level touches without a person
    account[(person < 0) & (account < 0)] = rng.integers(0, n_accounts, 1)[0]
    type_code = rng.integers(0, 28, n_acts).astype(np.int8)
    ts = (AS_OF - rng.integers(1, SPAN, n_acts)).astype(np.int64)
    acts = ActivityColumns(person, account, type_code, ts)
    personas = PersonaColumns(
        persona=rng.integers(0, 4, n_people).astype(np.int8),
        seniority=rng.integers(-1, 5, n_people).astype(np.int8),
        department=rng.integers(-1, 9, n_people).astype(np.int16),
        departments=("finance", "it", "engineering", "marketing", "sales", "operations", "procurement", "hr", "legal"),
    )
    segments = AccountSegments(
        codes=np.stack(
            [rng.integers(-1, 30, n_accounts), rng.integers(-1, 7, n_accounts),
             rng.integers(-1, 7, n_accounts), rng.integers(-1, 40, n_accounts)], axis=1
        ).astype(np.int32),
        names=(
            tuple(f"Industry {i}" for i in range(30)), tuple(f"band {i}" for i in range(7)),
            tuple(f"rev {i}" for i in range(7)), tuple(f"C{i}" for i in range(40)),
        ),
    )
    population = Population(
        account_names=[f"Account {i}" for i in range(n_accounts)],
        segments=segments,
        person_account=person_account,
        personas=personas,
        person_titles=["VP Finance"] * n_people,
    )
    n_opps = n_accounts // 4
    closed = AS_OF - rng.integers(0, SPAN, n_opps)
    opps = OpportunityColumns(
        account=rng.integers(0, n_accounts, n_opps).astype(np.int64),
        created=closed - 60 * 86_400,
        closed=closed.astype(np.int64),
        won=rng.random(n_opps) < 0.3,
        amount=rng.random(n_opps) * 100_000,
    )
    return acts, population, opps


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--activities", type=int, default=10_000_000)
    parser.add_argument("--accounts", type=int, default=200_000)
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--reasons", type=int, default=200_000, help="accounts to write reasons text for")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    acts, population, opps = synthesize(args.activities, args.accounts, args.people)
    t1 = time.perf_counter()
    print(f"synthesized {len(acts):,} activities in {t1 - t0:.1f} s (not part of the rescore)")
    print(f"peak RSS after synthesis: {peak_rss_mb():,.0f} MB")

    config = ScoringConfig()
    t2 = time.perf_counter()
    scores = score(acts, population, opps, config, AS_OF)
    t3 = time.perf_counter()
    wall = t3 - t2
    print(f"full rescore (aggregate + scores, {args.accounts:,} accounts, {args.people:,} people): {wall:.1f} s  "
          "[target <= 30 s]")
    print(f"  {len(acts) / wall:,.0f} activities/s")
    n = min(args.reasons, args.accounts)
    writer = ReasonWriter(scores, population, config)
    texts = [reasons.text for reasons in writer.accounts(np.arange(n, dtype=np.int64))]
    t4 = time.perf_counter()
    print(f"reasons text + breakdown for {n:,} accounts: {t4 - t3:.1f} s ({len(texts):,} texts)")
    print(f"grade 4 accounts: {int((scores.grade == 4).sum()):,}; surging: {int((scores.trend == 3).sum()):,}")
    print(f"rescore + account reasons: {t4 - t2:.1f} s")

    # An hourly incremental run: 0.1% new touches in the last hour, one hour of decay.
    rng = np.random.default_rng(11)
    n_new = max(1, len(acts) // 1000)
    new = ActivityColumns(
        rng.integers(0, args.people, n_new).astype(np.int32), np.full(n_new, -1, np.int32),
        rng.integers(0, 28, n_new).astype(np.int8), (AS_OF + rng.integers(0, 3600, n_new)).astype(np.int64),
    )
    later = AS_OF + 3600
    t5 = time.perf_counter()
    all_acts = ActivityColumns.concat([acts, new])
    dirty_accounts, dirty_people = dirty_entities(scores, all_acts, population, config, later, new_activities=new)
    rescore_incremental(scores, all_acts, population, opps, config, later, dirty_accounts, dirty_people)
    t6 = time.perf_counter()
    print(f"incremental rescore an hour later ({n_new:,} new touches, {int(dirty_accounts.sum()):,} accounts and "
          f"{int(dirty_people.sum()):,} people recomputed, the rest aged): {t6 - t5:.1f} s")
    print(f"peak RSS: {peak_rss_mb():,.0f} MB  [target < 4096 MB]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
