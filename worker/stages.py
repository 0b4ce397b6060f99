"""The stages of a run, bound to the real connectors, matcher, scorer and writers.

:mod:`worker.pipeline` knows how to run stages; this module knows which ones a run needs:
- pull each CRM the run covers (the enabled ones, or those asked for),
- match people to accounts (all of them: a new account can be the better match for anyone),
- score everything (a full run also retrains the predictive models),
- write back to each CRM (scoped to some accounts and forced for an account resync; forced for
  a rewrite).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import suppress

from sqlalchemy import or_, select

from config import AbmConfig
from connectors.result import SyncResult
from store.ids import InvalidSalesforceId, to_18
from store.runs import StageReport
from store.schema import Account
from store.types import utcnow
from worker.match_stage import run_match_stage
from worker.pipeline import RunContext, Stage
from worker.score_stage import run_score_stage
from worker.triggers import RunOptions

CRM_ORDER = ("salesforce", "hubspot")


def _pull_salesforce(ctx: RunContext) -> SyncResult:
    from connectors.salesforce.pull import pull_salesforce

    return pull_salesforce(ctx.engine, ctx.config, run_id=ctx.run_id, full=ctx.options.full)


def _pull_hubspot(ctx: RunContext) -> SyncResult:
    from connectors.hubspot.sync import pull_hubspot

    return pull_hubspot(ctx.engine, ctx.config.hubspot, run_id=ctx.run_id, full=ctx.options.full)


PULLS: dict[str, Callable[[RunContext], SyncResult]] = {"salesforce": _pull_salesforce, "hubspot": _pull_hubspot}


def enabled_crms(config: AbmConfig) -> list[str]:
    return [crm for crm in CRM_ORDER if getattr(config, crm).enabled]


def run_crms(config: AbmConfig, options: RunOptions) -> list[str]:
    """The CRMs a run covers; asking for a CRM that is not enabled is an error worth saying."""
    enabled = enabled_crms(config)
    if not options.crms:
        return enabled
    off = [c for c in options.crms if c not in enabled]
    if off:
        raise ValueError(f"{', '.join(off)} is not enabled in the configuration (set {off[0]}.enabled: true)")
    return [c for c in CRM_ORDER if c in options.crms]


def pull_stage(crm: str) -> Stage:
    def run(ctx: RunContext) -> StageReport:
        result = PULLS[crm](ctx)
        report = result.stage_report(f"pull:{crm}")
        if result.paused:
            report.state = "paused"
        return report

    return Stage(f"pull:{crm}", run, crm=crm)


def match_stage(ctx: RunContext) -> StageReport:
    outcome = run_match_stage(ctx.engine, ctx.config.matching)
    ctx.shared["changed_people"] = outcome.changed_people
    return StageReport("match", counts={"matched": outcome.matched, "upserted": len(outcome.changed_people)},
                       detail={"decisions": outcome.by_decision, "people": outcome.people,
                               "cross_crm_links": outcome.links, "links_changed": outcome.changed_links})


def score_stage(ctx: RunContext) -> StageReport:
    outcome = run_score_stage(ctx.engine, ctx.config.scoring, utcnow(), retrain=ctx.options.full)
    detail: dict[str, object] = {"accounts": outcome.accounts, "people": outcome.people,
                                 "activities": outcome.activities, "models": outcome.models,
                                 "history_rows": outcome.saved.history_rows}
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


def build_plan(config: AbmConfig, options: RunOptions) -> list[Stage]:
    """The stages of a run with ``options``, in order."""
    crms = run_crms(config, options)
    return [*(pull_stage(crm) for crm in crms), Stage("match", match_stage), Stage("score", score_stage)]
