"""What the admin API and page read from the store, as plain JSON-ready dicts.

Both the API and the page show the same facts, so they read them here once. Every list is
bounded (a large org has hundreds of thousands of accounts and a bad day thousands of record
errors): callers page or see the top of a list plus its total.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, or_, select

from store.runs import get_run, list_runs
from store.schema import Account, AccountLink, Match, Person, Score, ScoreHistory, WritebackError

GRADES = (4, 3, 2, 1)
DISAGREEING = ("marketing_high_sales_low", "sales_high_marketing_low")
SCORE_FIELDS = ("engagement", "sales_activity", "marketing", "fit", "grade", "predictive", "breadth", "velocity",
                "trend", "alignment")


def plain(value: Any) -> Any:
    """Dates as ISO text, so every dict here goes straight into JSON."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _row(mapping: Mapping[str, Any], names: tuple[str, ...] | list[str]) -> dict[str, Any]:
    return {name: plain(mapping[name]) for name in names}


# -- runs ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunsPage:
    runs: list[dict[str, Any]]
    next_before: int | None  # pass as ``before`` for the next (older) page; None on the last page


def runs_page(engine: Engine, limit: int, before_id: int | None = None) -> RunsPage:
    runs = list_runs(engine, limit + 1, before_id)
    more = len(runs) > limit
    runs = runs[:limit]
    return RunsPage(runs, runs[-1]["id"] if more and runs else None)


ERROR_FIELDS = ("crm", "object", "crm_id", "fields", "code", "message", "attempts", "first_failed_at",
                "last_failed_at", "next_retry_at")


def run_with_errors(engine: Engine, run_id: int, error_limit: int = 500) -> dict[str, Any] | None:
    """The run record plus the records its writeback could not write (still failing), newest first."""
    run = get_run(engine, run_id)
    if run is None:
        return None
    failing = WritebackError.run_id == run_id
    query = (
        select(*(getattr(WritebackError, f) for f in ERROR_FIELDS), Account.id.label("account_id"))
        .outerjoin(Account, and_(Account.crm == WritebackError.crm, Account.object == WritebackError.object,
                                 Account.crm_id == WritebackError.crm_id))
        .where(failing)
        .order_by(WritebackError.last_failed_at.desc(), WritebackError.id.desc())
        .limit(error_limit)
    )
    with engine.connect() as conn:
        errors = [_row(r._mapping, [*ERROR_FIELDS, "account_id"]) for r in conn.execute(query)]
        total = conn.execute(select(func.count()).select_from(WritebackError).where(failing)).scalar_one()
    return {**run, "errors": errors, "errors_total": int(total)}


# -- portfolio -------------------------------------------------------------------------------
def _scored_accounts() -> Any:
    """Accounts with a score of their own (a linked account shows its canonical one's), live only."""
    return (
        select(Account.id, Account.crm, Account.crm_id, Account.name, *(getattr(Score, f) for f in SCORE_FIELDS),
               Score.reasons_text)
        .join(Score, and_(Score.entity_kind == "account", Score.entity_id == Account.id))
        .where(Account.is_deleted.is_(False))
    )


ACCOUNT_ROW = ("id", "crm", "crm_id", "name", *SCORE_FIELDS, "reasons_text")


def grade_distribution(engine: Engine) -> dict[str, int]:
    """Scored accounts per grade ("4" best ... "1"), plus "ungraded"."""
    query = (
        select(Score.grade, func.count())
        .join(Account, Account.id == Score.entity_id)
        .where(Score.entity_kind == "account", Account.is_deleted.is_(False))
        .group_by(Score.grade)
    )
    with engine.connect() as conn:
        counts = {grade: int(n) for grade, n in conn.execute(query)}
    out = {str(g): counts.pop(g, 0) for g in GRADES}
    out["ungraded"] = sum(counts.values())
    return out


def alignment_counts(engine: Engine) -> dict[str, int]:
    query = (
        select(Score.alignment, func.count())
        .join(Account, Account.id == Score.entity_id)
        .where(Score.entity_kind == "account", Account.is_deleted.is_(False), Score.alignment.isnot(None))
        .group_by(Score.alignment)
    )
    with engine.connect() as conn:
        return {str(a): int(n) for a, n in conn.execute(query)}


def alignment_points(engine: Engine, limit: int = 400) -> list[dict[str, Any]]:
    """The most engaged accounts by sales plus marketing, for the scatter (all of them would not fit)."""
    sales, marketing = func.coalesce(Score.sales_activity, 0.0), func.coalesce(Score.marketing, 0.0)
    query = _scored_accounts().order_by((sales + marketing).desc(), Account.id).limit(limit)
    with engine.connect() as conn:
        return [_row(r._mapping, ACCOUNT_ROW) for r in conn.execute(query)]


def alignment_gaps(engine: Engine, limit: int = 10) -> list[dict[str, Any]]:
    """Accounts where sales and marketing disagree most: the ones to talk about."""
    gap = func.abs(func.coalesce(Score.sales_activity, 0.0) - func.coalesce(Score.marketing, 0.0))
    query = _scored_accounts().where(Score.alignment.in_(DISAGREEING)).order_by(gap.desc(), Account.id).limit(limit)
    with engine.connect() as conn:
        return [_row(r._mapping, ACCOUNT_ROW) for r in conn.execute(query)]


def surging_accounts(engine: Engine, limit: int = 10) -> list[dict[str, Any]]:
    query = (
        _scored_accounts()
        .where(Score.trend == "surging")
        .order_by(func.coalesce(Score.velocity, 0.0).desc(), Account.id)
        .limit(limit)
    )
    with engine.connect() as conn:
        return [_row(r._mapping, ACCOUNT_ROW) for r in conn.execute(query)]


def find_accounts(engine: Engine, text: str = "", limit: int = 50) -> list[dict[str, Any]]:
    """Scored accounts whose name, domain or CRM id contains ``text``; best grade first."""
    query = _scored_accounts()
    text = text.strip()
    if text:
        query = query.where(or_(Account.name.icontains(text, autoescape=True),
                                Account.domain.icontains(text, autoescape=True), Account.crm_id == text))
    query = query.order_by(func.coalesce(Score.grade, 0).desc(), func.coalesce(Score.engagement, 0.0).desc(),
                           Account.id).limit(limit)
    with engine.connect() as conn:
        return [_row(r._mapping, ACCOUNT_ROW) for r in conn.execute(query)]


# -- one account -----------------------------------------------------------------------------
ACCOUNT_FIELDS = ("id", "crm", "object", "crm_id", "name", "website", "domain", "industry", "employees",
                  "annual_revenue", "country", "state", "city", "type", "is_deleted", "modified_at", "synced_at")
PERSON_FIELDS = ("id", "crm", "object", "crm_id", "kind", "first_name", "last_name", "email", "title", "company")
MATCH_FIELDS = ("decision", "method", "confidence", "reason", "pinned", "matched_at")


def _linked_group(conn: Connection, account_id: int) -> tuple[int, set[int]]:
    """The account's canonical account and every account linked to it (the same business in both CRMs)."""
    canonical = conn.execute(
        select(AccountLink.canonical_account_id).where(AccountLink.account_id == account_id)
    ).scalar_one_or_none() or account_id
    members = set(conn.execute(
        select(AccountLink.account_id).where(AccountLink.canonical_account_id == canonical)
    ).scalars())
    return canonical, members | {canonical, account_id}


def _score_of(conn: Connection, kind: str, entity_ids: list[int]) -> dict[str, Any] | None:
    """The first of ``entity_ids`` that has a score (the canonical account before the account itself)."""
    for entity_id in entity_ids:
        row = conn.execute(
            select(Score).where(Score.entity_kind == kind, Score.entity_id == entity_id)
        ).first()
        if row is not None:
            m = row._mapping
            return {
                "scored_entity_id": entity_id,
                **_row(m, SCORE_FIELDS),
                "reasons_text": m["reasons_text"],
                "breakdown": m["breakdown"] or {},
                "model_version": m["model_version"],
                "scored_at": plain(m["scored_at"]),
            }
    return None


def _history(conn: Connection, entity_id: int) -> list[dict[str, Any]]:
    query = (
        select(ScoreHistory.day, *(getattr(ScoreHistory, f) for f in SCORE_FIELDS))
        .where(ScoreHistory.entity_kind == "account", ScoreHistory.entity_id == entity_id)
        .order_by(ScoreHistory.day)
    )
    return [_row(r._mapping, ("day", *SCORE_FIELDS)) for r in conn.execute(query)]


def _people(conn: Connection, group: set[int], limit: int) -> tuple[list[dict[str, Any]], int]:
    matched = and_(Match.account_id.in_(sorted(group)), Match.decision != "none")
    query = (
        select(*(getattr(Person, f) for f in PERSON_FIELDS), *(getattr(Match, f) for f in MATCH_FIELDS),
               Match.account_id.label("matched_account_id"), Score.engagement, Score.grade, Score.trend)
        .join(Match, Match.person_id == Person.id)
        .outerjoin(Score, and_(Score.entity_kind == "person", Score.entity_id == Person.id))
        .where(matched, Person.is_deleted.is_(False))
        .order_by(func.coalesce(Score.engagement, -1.0).desc(), Match.confidence.desc(), Person.id)
        .limit(limit)
    )
    names = (*PERSON_FIELDS, *MATCH_FIELDS, "matched_account_id", "engagement", "grade", "trend")
    people = [_row(r._mapping, names) for r in conn.execute(query)]
    total = conn.execute(
        select(func.count()).select_from(Match).join(Person, Person.id == Match.person_id)
        .where(matched, Person.is_deleted.is_(False))
    ).scalar_one()
    return people, int(total)


def account_detail(engine: Engine, account_id: int, people_limit: int = 200) -> dict[str, Any] | None:
    """An account with its scores, reasons, breakdown, daily history and matched people."""
    with engine.connect() as conn:
        row = conn.execute(select(Account).where(Account.id == account_id)).first()
        if row is None:
            return None
        account = _row(row._mapping, ACCOUNT_FIELDS)
        canonical, group = _linked_group(conn, account_id)
        linked = [
            _row(r._mapping, ("id", "crm", "object", "crm_id", "name"))
            for r in conn.execute(
                select(Account.id, Account.crm, Account.object, Account.crm_id, Account.name)
                .where(Account.id.in_(sorted(group - {account_id}))).order_by(Account.id)
            )
        ]
        score = _score_of(conn, "account", [canonical, account_id])
        history = _history(conn, score["scored_entity_id"]) if score else []
        people, people_total = _people(conn, group, people_limit)
    return {
        "account": account,
        "canonical_account_id": canonical,
        "linked_accounts": linked,
        "score": score,
        "history": history,
        "people": people,
        "people_total": people_total,
    }
