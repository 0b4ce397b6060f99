"""The rep's view reads scores, matches and the run record from the store."""

from __future__ import annotations

import io

from rich.console import Console
from sqlalchemy import Engine, select

from store.runs import StageReport, claim_run, create_run, finish_run, record_stage
from store.schema import Account, Match, Person, Score
from store.types import utcnow
from store.upsert import upsert
from worker.rep_view import alignment_gaps, match_summary, print_rep_view, top_accounts


def _seed(engine: Engine) -> None:
    with engine.begin() as conn:
        upsert(conn, Account.__table__, [
            {"crm": "salesforce", "object": "Account", "crm_id": f"001{i:015d}", "name": name}
            for i, name in enumerate(["Acme", "Globex", "Initech"])])
        upsert(conn, Person.__table__, [
            {"crm": "salesforce", "object": "Lead", "crm_id": f"00Q{i:015d}", "kind": "lead"} for i in range(4)])
        accounts = dict(conn.execute(select(Account.name, Account.id)).all())
        people = conn.execute(select(Person.id).order_by(Person.id)).scalars().all()
        now = utcnow()
        rows = [("Acme", 4, 88.0, "surging", "aligned_high", "3 people from Acme attended a webinar (+40)"),
                ("Globex", 2, 35.0, "steady", "marketing_high_sales_low", "2 people from Globex opened an email"),
                ("Initech", 1, 3.0, "cooling", "aligned_low", None)]
        upsert(conn, Score.__table__, [
            {"entity_kind": "account", "entity_id": accounts[n], "grade": g, "engagement": e, "sales_activity": e / 2,
             "marketing": e / 3, "fit": 50.0, "trend": t, "alignment": a, "reasons_text": r, "scored_at": now}
            for n, g, e, t, a, r in rows], key=("entity_kind", "entity_id"))
        upsert(conn, Match.__table__, [
            {"person_id": people[0], "account_id": accounts["Acme"], "decision": "auto"},
            {"person_id": people[1], "account_id": accounts["Acme"], "decision": "review"},
            {"person_id": people[2], "account_id": None, "decision": "none"}], key=("person_id",))


def test_rep_view_orders_accounts_and_summarises_matching(engine: Engine) -> None:
    _seed(engine)
    assert [a.name for a in top_accounts(engine)] == ["Acme", "Globex", "Initech"]
    assert [a.name for a in alignment_gaps(engine)] == ["Globex"]
    summary = match_summary(engine)
    assert summary["lead"] == {"total": 4, "matched": 1, "review": 1}
    assert summary["grades"] == {4: 1, 3: 0, 2: 1, 1: 1}

    run_id = create_run(engine, "full", "cli")
    claim_run(engine, run_id)
    record_stage(engine, run_id, StageReport("pull:salesforce", api_calls={"salesforce": 12}))
    finish_run(engine, run_id, "succeeded")
    out = io.StringIO()
    print_rep_view(engine, run_id, Console(file=out, width=160))
    text = out.getvalue()
    assert "3 people from Acme attended a webinar" in text and "marketing engaged, sales not yet" in text
    assert "1 of 4 leads tied to an account (25.0%)" in text and "salesforce: 12" in text
