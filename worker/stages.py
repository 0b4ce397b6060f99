"""The stages of a run, bound to the real connectors, matcher, scorer and writers.

:mod:`worker.pipeline` knows how to run stages; this module knows which ones a run needs:
- pull each CRM the run covers (the enabled ones, or those asked for),
- match people to accounts: all of them in a full run (a new account can be the better match for
  anyone), in other runs those whose match can have moved (see :mod:`worker.match_stage`),
- score: everything in a full run or a resync of everything (a full run also retrains the
  predictive models); in an incremental run, what new data touched (see :mod:`worker.score_scope`),
  plus the accounts of an account resync with all their people, or everyone once a day
  (``worker.schedule.rescore_everyone_hours``) so time decay and grades stay current,
- write back to each CRM: in an incremental run only the records whose score or match changed
  since that CRM's last successful writeback (see :func:`writeback.run.run_writeback`); scoped to
  some accounts and forced for an account resync; everything, forced, for a rewrite. Writes to a
  CRM whose pull ran out of API budget wait for the next run.

The matching and scoring code is imported by the stages that run it: a run's pulls and writebacks go to
processes forked from a server that imports this module first (worker.stage_process), and the first pull
waits for those imports.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import suppress
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING

from sqlalchemy import or_, select

from config import AbmConfig
from connectors.registry import pull_for
from store.ids import InvalidSalesforceId, to_18
from store.runs import StageReport, last_stage_start
from store.schema import Account
from store.touch_refs import resolve_touch_refs
from store.types import utcnow
from worker.pipeline import RunContext, Stage, Step
from worker.triggers import RunOptions

if TYPE_CHECKING:
    from worker.match_read_ahead import MatchReadAhead
    from worker.score_prefetch import ScorePrefetch


class StopBetweenBatches(Exception):
    """Raised from a pull's progress callback when the run is asked to stop (SIGTERM, lost lock).

    Pulls commit each page with its cursor before reporting it, so stopping here keeps every
    committed page and the next run resumes after the last one.
    """


def pull_stage(crm: str) -> Stage:
    """Pull ``crm``, then resolve its new touches' people and accounts. It runs in a process of its own beside
    the other CRM's pull (worker.stage_process), so its ``run`` pickles."""
    return Stage(f"pull:{crm}", partial(pull, crm), crm=crm, own_process=True)


def pull(crm: str, ctx: RunContext) -> StageReport:
    def between_batches(_event: object) -> None:
        if ctx.stop.is_set():
            raise StopBetweenBatches(crm)

    try:
        result = pull_for(crm)(ctx.engine, ctx.config, run_id=ctx.run_id, full=ctx.options.full,
                               progress=between_batches)
    except StopBetweenBatches:
        return StageReport(f"pull:{crm}", state="cancelled",
                           detail={"reason": "stop requested: committed pages kept, the next run resumes"})
    report = result.stage_report(f"pull:{crm}")
    if result.paused:
        report.state = "paused"
    # part of the stage, and of its time: the L org's 1% increment spent 2 s here after its Salesforce pull
    started = time.perf_counter()
    people, accounts = resolve_touch_refs(ctx.engine, crm)
    resolving = time.perf_counter() - started
    report.seconds += resolving
    report.detail["touches_resolved"] = {"person": people, "account": accounts, "seconds": round(resolving, 3)}
    return report


def read_match_inputs(ctx: RunContext, mark: datetime) -> MatchReadAhead | None:
    """The match stage's reading of every account and contact, done while the pulls run (worker.match_read_ahead);
    None for a full run, which reads every contact again."""
    from worker.match_read_ahead import read_ahead

    return None if ctx.options.full else read_ahead(ctx.engine, ctx.config.matching, mark)


def start_score_reading(ctx: RunContext, mark: datetime) -> ScorePrefetch | None:
    """The score stage's process (worker.score_prefetch), started with the pulls so that it reads the kept copies
    while they run; the match stage sets it going. None where the score stage will not take it."""
    from worker.score_prefetch import start_prefetch

    since, refresh = _score_since(ctx)
    if since is None or refresh:
        return None
    return start_prefetch(ctx.engine, None, ctx.config.scoring, ctx.config.worker.stage_processes)


def _score_prefetch(ctx: RunContext) -> ScorePrefetch | None:
    """The process reading for an incremental score stage beside the matching (worker.score_prefetch), set going:
    the one started with the pulls (:func:`start_score_reading`), else one started now."""
    from worker.score_prefetch import start_prefetch

    reading = ctx.read_ahead.pop("score", None)
    early: ScorePrefetch | None = reading.result() if reading is not None else None
    try:
        since, refresh = _score_since(ctx)
    except BaseException:
        if early is not None:
            early.close()
        raise
    if since is None or refresh:
        if early is not None:
            early.close()
        return None
    if early is None:
        return start_prefetch(ctx.engine, since, ctx.config.scoring, ctx.config.worker.stage_processes)
    early.begin(since)
    return early


def match_stage(ctx: RunContext) -> StageReport:
    from worker.match_stage import run_match_stage

    # What an incremental score stage reads of everyone is read beside the matching (worker.score_prefetch).
    prefetch = _score_prefetch(ctx)
    reading = ctx.read_ahead.pop("match", None)
    try:
        ahead = reading.result() if reading is not None else None
        outcome = run_match_stage(ctx.engine, ctx.config.matching, incremental=not ctx.options.full, ahead=ahead,
                                  stop=ctx.stop)
    except BaseException:
        if prefetch is not None:
            prefetch.close()
        raise
    if outcome.stopped:
        if prefetch is not None:
            prefetch.close()
        return StageReport("match", state="cancelled", counts={"matched": outcome.matched,
                                                               "upserted": len(outcome.changed_people)},
                           detail={"reason": "stop requested: the people matched so far were committed; the next "
                                             "run's match stage works from the last one that finished",
                                   "people": outcome.people})
    if prefetch is not None:
        ctx.shared["score_prefetch"] = prefetch
    ctx.shared["match_left_accounts"] = outcome.left_accounts | outcome.relinked_accounts
    if outcome.accounts is not None:
        ctx.shared["live_accounts"] = outcome.accounts
    return StageReport("match", counts={"matched": outcome.matched, "upserted": len(outcome.changed_people)},
                       detail={"decisions": outcome.by_decision, "people": outcome.people,
                               "scope": "changed people" if outcome.incremental else "everyone",
                               "started_at": outcome.started_at.isoformat(),
                               "cross_crm_links": outcome.links, "links_changed": outcome.changed_links,
                               "account_features_read": outcome.features_read,
                               **({"read_ahead": f"every account and contact read beside the pulls in "
                                                 f"{reading.seconds:.1f} s"} if reading and outcome.read_ahead else {}),
                               "phase_seconds": {k: round(v, 3) for k, v in outcome.phase_seconds.items()}})


def scoped(options: RunOptions) -> bool:
    """Whether a run scores and writes back only what changed: not a full run, nor a resync of
    everything (with or without ``--rewrite``), which redo every account and person."""
    return not options.full and (bool(options.accounts) or not (options.resync or options.rewrite))


def _account_ids(ctx: RunContext) -> list[int]:
    """The store ids of the accounts an account resync names (resolved once per run)."""
    account_ids = ctx.shared.get("account_ids")
    if account_ids is None:
        account_ids = ctx.shared["account_ids"] = resolve_accounts(ctx, ctx.options.accounts)
    return account_ids


def _score_since(ctx: RunContext) -> tuple[datetime | None, bool]:
    """The start of the last successful score stage, which a scoped run's score stage rescores from (None: it
    scores everyone), and whether the rescore of everyone is due instead (time decay, grades)."""
    from worker.score_scope import everyone_due

    if not scoped(ctx.options):
        return None, False
    with ctx.engine.connect() as conn:
        since = last_stage_start(conn, "score")
        refresh = since is not None and everyone_due(conn, utcnow(), ctx.config.worker.schedule.rescore_everyone_hours)
    return since, refresh


def score_stage(ctx: RunContext) -> StageReport:
    prefetch: ScorePrefetch | None = ctx.shared.pop("score_prefetch", None)
    try:
        return _score(ctx, prefetch)
    finally:
        if prefetch is not None:
            prefetch.close()


def _score(ctx: RunContext, prefetch: ScorePrefetch | None) -> StageReport:
    from worker.score_stage import Incremental, run_score_stage

    incremental = None
    since, refresh = _score_since(ctx)
    if refresh:
        since = None
    if since is not None:  # else no score stage recorded: score everyone
        incremental = Incremental(
            since, extra_accounts=frozenset(ctx.shared.get("match_left_accounts", ())),
            resync_accounts=frozenset(_account_ids(ctx) if ctx.options.accounts else ()))
    outcome = run_score_stage(ctx.engine, ctx.config.scoring, utcnow(), retrain=ctx.options.full,
                              incremental=incremental, accounts=ctx.shared.pop("live_accounts", None),
                              prefetch=prefetch)
    detail: dict[str, object] = {"accounts": outcome.accounts, "people": outcome.people,
                                 "activities": outcome.activities, "models": outcome.models,
                                 "history_rows": outcome.saved.history_rows,
                                 "started_at": outcome.started_at.isoformat(),
                                 "phase_seconds": {k: round(v, 3) for k, v in outcome.phase_seconds.items()}}
    if outcome.since is None:
        detail["scope"] = "everyone"
        if refresh:
            detail["reason"] = (f"no rescore of everyone in the last "
                                f"{ctx.config.worker.schedule.rescore_everyone_hours} h (time decay, grades)")
    else:
        detail["scope"] = f"touched since {outcome.since.isoformat()}"
        detail["dirty"] = {"accounts": outcome.dirty_accounts, "people": outcome.dirty_people}
    if outcome.prefetch is not None:
        detail["prefetch"] = outcome.prefetch
    if outcome.unknown_types:
        detail["unknown_activity_types"] = outcome.unknown_types
    return StageReport("score", counts=outcome.counts(), detail=detail)


def resolve_accounts(ctx: RunContext, crm_ids: Sequence[str]) -> list[int]:
    """Store ids of the accounts an admin named by CRM id (Salesforce ids in 15 or 18 characters)."""
    wanted: set[str] = set()
    for value in crm_ids:
        value = value.strip()
        wanted.add(value)
        with suppress(InvalidSalesforceId):  # a HubSpot id or a store id is not a Salesforce id
            wanted.add(to_18(value))
    with ctx.engine.connect() as conn:
        found = conn.execute(select(Account.id, Account.crm_id).where(
            or_(Account.crm_id.in_(sorted(wanted)), Account.id.in_([int(v) for v in wanted if v.isdigit()])))).all()
    if not found:
        raise LookupError(f"no account with id {', '.join(crm_ids)} in the store; pull it first or check the id")
    return sorted({row.id for row in found})


def writeback_stage(crm: str) -> Stage:
    """Write changed fields to ``crm``: in an incremental run only records whose score or match
    changed since the last successful writeback to ``crm`` (everything when none is recorded);
    an account resync writes (forced) only its accounts and people; a rewrite, everything. It runs in a
    process of its own beside the other CRM's (worker.stage_process), so its ``run`` pickles."""
    return Stage(f"writeback:{crm}", partial(write_back, crm), crm=crm, writes_to_crm=True, own_process=True)


def write_back(crm: str, ctx: RunContext) -> StageReport:
    """The writeback stage of ``crm`` (see :func:`writeback_stage`)."""
    from writeback.connect import writers
    from writeback.run import run_writeback

    started_at = utcnow()
    options = ctx.options
    account_ids = _account_ids(ctx) if options.accounts else None
    changed_since = None
    if scoped(options) and not options.accounts:
        with ctx.engine.connect() as conn:
            changed_since = last_stage_start(conn, f"writeback:{crm}")
    report = run_writeback(ctx.engine, ctx.config.writeback, writers(ctx.config, [crm]),
                           force=options.rewrite or bool(options.accounts), run_id=ctx.run_id,
                           account_ids=account_ids, changed_since=changed_since)
    stage = report.stage_report(f"writeback:{crm}")
    stage.detail["started_at"] = started_at.isoformat()
    stage.detail["scope"] = ("everything" if account_ids is None and changed_since is None else
                             f"changed since {changed_since.isoformat()}" if changed_since else "accounts")
    return stage


def build_plan(config: AbmConfig, options: RunOptions) -> list[Step]:
    """The stages of a run with ``options``, in order; the pulls of the CRMs run concurrently, as
    do the writebacks (neither depends on the other CRM's), so each pair costs the slower one."""
    crms = config.chosen_crms(options.crms)
    return [tuple(pull_stage(crm) for crm in crms), Stage("match", match_stage, read_ahead=read_match_inputs),
            Stage("score", score_stage, read_ahead=start_score_reading),
            tuple(writeback_stage(crm) for crm in crms)]
