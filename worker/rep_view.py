"""What a rep would see after a run, read from the store: for `make demo`, `abm run` and the README.

Reps never open abm-sync; they see its fields on accounts and people. This view is the same
information in a terminal: the accounts to act on first (grade, scores, trend and the reasons in
the words written to the CRM), how many people were tied to an account, where sales and marketing
disagree, and what the run cost in API calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.console import Console, Group
from rich.markup import escape
from rich.text import Text
from sqlalchemy import Engine, case, func, select

from store.runs import get_run
from store.schema import Account, AccountLink, Match, Person, Score

_GRADE_STYLE = {4: "bold green", 3: "green", 2: "yellow", 1: "dim"}
_TREND_STYLE = {"surging": "bold magenta", "rising": "magenta", "steady": "", "cooling": "blue"}
_GAPS = {"marketing_high_sales_low": "marketing engaged, sales not yet",
         "sales_high_marketing_low": "sales active, marketing quiet"}


@dataclass(frozen=True)
class AccountLine:
    account_id: int
    crm: str
    crm_id: str
    name: str
    grade: int | None
    engagement: float | None
    sales: float | None
    marketing: float | None
    fit: float | None
    trend: str | None
    alignment: str | None
    reasons: str | None


def _scored_accounts():
    linked = select(AccountLink.account_id)  # HubSpot companies shown through their Salesforce account
    return (
        select(Account.id, Account.crm, Account.crm_id, Account.name, Score.grade, Score.engagement,
               Score.sales_activity, Score.marketing, Score.fit, Score.trend, Score.alignment, Score.reasons_text)
        .join(Score, (Score.entity_kind == "account") & (Score.entity_id == Account.id))
        .where(Account.is_deleted.is_(False), Account.id.not_in(linked))
    )


def top_accounts(engine: Engine, limit: int = 10) -> list[AccountLine]:
    # Engagement is 0-100 and the hottest accounts share 100: the predictive probability and then
    # the raw activity (sales + marketing points) order them.
    query = _scored_accounts().order_by(
        Score.grade.desc(), Score.engagement.desc(), Score.predictive.desc().nulls_last(),
        (func.coalesce(Score.sales_activity, 0) + func.coalesce(Score.marketing, 0)).desc(), Account.id,
    ).limit(limit)
    with engine.connect() as conn:
        return [AccountLine(*row) for row in conn.execute(query)]


def alignment_gaps(engine: Engine, limit: int = 5) -> list[AccountLine]:
    query = (_scored_accounts().where(Score.alignment.in_(list(_GAPS)))
             .order_by(Score.engagement.desc(), Account.id).limit(limit))
    with engine.connect() as conn:
        return [AccountLine(*row) for row in conn.execute(query)]


def match_summary(engine: Engine) -> dict[str, Any]:
    """People tied to an account, by how, and the leads among them (the hard part of matching)."""
    tied = case((Match.decision.in_(("auto", "pinned", "crm")), 1), else_=0)
    with engine.connect() as conn:
        rows = conn.execute(
            select(Person.kind, func.count(Person.id), func.sum(tied), func.sum(case((Match.decision == "review", 1),
                                                                                     else_=0)))
            .join(Match, Match.person_id == Person.id, isouter=True)
            .where(Person.is_deleted.is_(False))
            .group_by(Person.kind)
        ).all()
        grades = dict(conn.execute(select(Score.grade, func.count()).where(Score.entity_kind == "account")
                                   .group_by(Score.grade)).all())
    out: dict[str, Any] = {"grades": {g: grades.get(g, 0) for g in (4, 3, 2, 1)}}
    for kind, total, matched, review in rows:
        out[kind] = {"total": int(total), "matched": int(matched or 0), "review": int(review or 0)}
    return out


def _styled(text: str, style: str) -> str:
    return f"[{style}]{escape(text)}[/]" if style else escape(text)


def _fmt(value: float | None) -> str:
    return f"{value:.0f}" if value is not None else "-"


def _account_block(rank: int, a: AccountLine, gap: bool = False) -> Text:
    """One account as a rep reads it: a headline of numbers, then the reasons (wraps at any width)."""
    grade = _styled(f"grade {a.grade}", _GRADE_STYLE.get(a.grade or 0, "")) if a.grade else "no grade"
    last = _GAPS.get(a.alignment or "", escape(a.alignment or "")) if gap else (
        _styled(a.trend, _TREND_STYLE.get(a.trend, "")) if a.trend else "")
    # Names and reasons come from the CRM: escaped, so a "[" in them is text, not markup.
    headline = (f"{rank:>2}. [bold]{escape(a.name or a.crm_id)}[/] [dim]({a.crm} {a.crm_id})[/]  {grade} · "
                f"engagement {_fmt(a.engagement)} · sales {_fmt(a.sales)} · marketing {_fmt(a.marketing)} · "
                f"fit {_fmt(a.fit)}" + (f" · {last}" if last else ""))
    text = Text.from_markup(headline)
    if a.reasons:
        text.append("\n    " + a.reasons, style="italic")
    return text


def _account_list(title: str, lines: list[AccountLine], gap: bool = False) -> Group:
    blocks: list[Any] = [Text.from_markup(f"[bold underline]{title}[/]")]
    blocks += [_account_block(i, a, gap) for i, a in enumerate(lines, 1)] or [Text("  (no scored accounts yet)")]
    return Group(*blocks)


def render(engine: Engine, run_id: int | None = None, top: int = 10) -> Group:
    """The rep's view as rich renderables (top accounts, matching, gaps, API calls of ``run_id``)."""
    parts: list[Any] = [_account_list(f"Top {top} accounts to act on", top_accounts(engine, top))]
    summary = match_summary(engine)
    lines = []
    for kind in ("lead", "contact"):
        if kind in summary and summary[kind]["total"]:
            s = summary[kind]
            lines.append(f"{s['matched']:,} of {s['total']:,} {kind}s tied to an account "
                         f"({s['matched'] / s['total']:.1%}); {s['review']:,} waiting for review")
    grades = summary["grades"]
    lines.append("Accounts by grade: " + ", ".join(f"{g}: {n:,}" for g, n in grades.items()))
    parts.append("\n".join(["", "[bold]Matching and grades[/]", *lines]))
    gaps = alignment_gaps(engine)
    if gaps:
        parts.append("")
        parts.append(_account_list("Where sales and marketing disagree", gaps, gap=True))
    if run_id is not None:
        run = get_run(engine, run_id)
        if run:
            calls = ", ".join(f"{crm}: {n:,}" for crm, n in run["api_calls"].items()) or "none"
            parts.append(f"\n[bold]Run {run_id}[/] {run['state']} in {run['seconds'] or 0:.0f} s; API calls {calls}")
    return Group(*parts)


def print_rep_view(engine: Engine, run_id: int | None = None, console: Console | None = None) -> None:
    (console or Console()).print(render(engine, run_id))
