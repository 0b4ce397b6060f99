"""Orchestration rules of a run: order, recording, budget pauses, failures, stop requests."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import StatementError

from config import AbmConfig
from store.runs import StageReport, claim_run, create_run, get_run
from worker.pipeline import RunContext, Stage, run_stages
from worker.triggers import RunOptions


def _ctx(engine: Engine, stop: threading.Event | None = None) -> RunContext:
    run_id = create_run(engine, "incremental", "cli")
    assert claim_run(engine, run_id)
    return RunContext(engine, AbmConfig(), run_id, RunOptions(), stop or threading.Event())


def stage(name: str, calls: list[str], state: str = "succeeded", crm: str | None = None, writes: bool = False,
          **counts: int) -> Stage:
    def run(ctx: RunContext) -> StageReport:
        calls.append(name)
        return StageReport(name, state=state, counts=dict(counts), api_calls={crm: 1} if crm else {})

    return Stage(name, run, crm=crm, writes_to_crm=writes)


def test_stages_run_in_order_and_are_recorded(engine: Engine) -> None:
    calls: list[str] = []
    ctx = _ctx(engine)
    plan = [stage("pull:salesforce", calls, crm="salesforce", read=5), stage("match", calls, matched=4),
            stage("score", calls, scored=4), stage("writeback:salesforce", calls, crm="salesforce", writes=True,
                                                   written=2)]
    assert run_stages(ctx, plan) == "succeeded"
    assert calls == ["pull:salesforce", "match", "score", "writeback:salesforce"]
    run = get_run(engine, ctx.run_id)
    assert list(run["stages"]) == calls
    assert run["counts"]["read"] == 5 and run["counts"]["written"] == 2 and run["api_calls"] == {"salesforce": 2}
    assert all(s["seconds"] >= 0 for s in run["stages"].values())


def test_a_paused_pull_skips_only_that_crms_writeback_and_pauses_the_run(engine: Engine) -> None:
    calls: list[str] = []
    ctx = _ctx(engine)
    plan = [stage("pull:salesforce", calls, "paused", crm="salesforce"), stage("pull:hubspot", calls, crm="hubspot"),
            stage("match", calls), stage("score", calls),
            stage("writeback:salesforce", calls, crm="salesforce", writes=True),
            stage("writeback:hubspot", calls, crm="hubspot", writes=True)]
    assert run_stages(ctx, plan) == "paused"
    assert "writeback:salesforce" not in calls and "writeback:hubspot" in calls
    stages = get_run(engine, ctx.run_id)["stages"]
    assert stages["writeback:salesforce"]["state"] == "skipped"
    assert "budget" in stages["writeback:salesforce"]["detail"]["reason"]


def test_a_failing_stage_is_recorded_with_its_error_and_stops_the_run(engine: Engine) -> None:
    calls: list[str] = []
    ctx = _ctx(engine)

    def broken(ctx: RunContext) -> StageReport:
        raise ValueError("scoring config names an unknown activity type 'fax'")

    with pytest.raises(ValueError):
        run_stages(ctx, [stage("match", calls), Stage("score", broken), stage("writeback:hubspot", calls)])
    stages = get_run(engine, ctx.run_id)["stages"]
    assert stages["match"]["state"] == "succeeded"
    assert stages["score"]["state"] == "failed" and "unknown activity type" in stages["score"]["error"]
    assert "writeback:hubspot" not in stages and calls == ["match"]


def test_a_stop_request_cancels_before_the_next_stage(engine: Engine) -> None:
    stop = threading.Event()
    calls: list[str] = []
    ctx = _ctx(engine, stop)

    def pull_then_sigterm(ctx: RunContext) -> StageReport:
        calls.append("pull")
        stop.set()
        return StageReport("pull:salesforce", counts={"read": 1})

    assert run_stages(ctx, [Stage("pull:salesforce", pull_then_sigterm), stage("match", calls)]) == "cancelled"
    stages = get_run(engine, ctx.run_id)["stages"]
    assert stages["pull:salesforce"]["state"] == "succeeded" and stages["match"]["state"] == "cancelled"
    assert calls == ["pull"]


def _write_marker(engine: Engine, name: str, started: threading.Barrier) -> StageReport:
    """A stage that writes a run of its own through its own connection while its sibling writes too."""
    started.wait(timeout=30)  # both stages are running at once
    for n in range(20):
        run_id = create_run(engine, f"marker:{name}", str(n))
        assert run_id
    return StageReport(name, counts={"upserted": 20})


def test_independent_stages_of_one_step_run_at_once_and_are_all_recorded(engine: Engine) -> None:
    ctx = _ctx(engine)
    started = threading.Barrier(2)
    threads: dict[str, str] = {}

    def pull(name: str) -> Stage:
        def run(ctx: RunContext) -> StageReport:
            threads[name] = threading.current_thread().name
            return _write_marker(ctx.engine, name, started)

        return Stage(name, run, crm=name.split(":")[1])

    calls: list[str] = []
    assert run_stages(ctx, [(pull("pull:salesforce"), pull("pull:hubspot")), stage("match", calls)]) == "succeeded"
    assert threads["pull:salesforce"] != threads["pull:hubspot"]  # the barrier proves they overlapped
    run = get_run(engine, ctx.run_id)
    assert set(run["stages"]) == {"pull:salesforce", "pull:hubspot", "match"}
    assert list(run["stages"])[-1] == "match" and run["counts"]["upserted"] == 40
    for name in ("pull:salesforce", "pull:hubspot"):
        detail = run["stages"][name]["detail"]
        assert run["stages"][name]["state"] == "succeeded" and detail["peak_rss_mb"] > 0
        assert detail["stage_rss_mb"] > 0
    from store.runs import list_runs

    kinds = [r["kind"] for r in list_runs(engine, limit=100)]
    assert kinds.count("marker:pull:salesforce") == 20 and kinds.count("marker:pull:hubspot") == 20


def test_a_failing_stage_lets_its_sibling_finish_and_commit_then_fails_the_run(engine: Engine) -> None:
    ctx = _ctx(engine)
    started = threading.Barrier(2)
    calls: list[str] = []

    def broken(ctx: RunContext) -> StageReport:
        started.wait(timeout=30)
        raise ConnectionError("hubspot is down")

    def salesforce(ctx: RunContext) -> StageReport:
        return _write_marker(ctx.engine, "pull:salesforce", started)

    with pytest.raises(ConnectionError):
        run_stages(ctx, [(Stage("pull:hubspot", broken, crm="hubspot"),
                          Stage("pull:salesforce", salesforce, crm="salesforce")), stage("match", calls)])
    run = get_run(engine, ctx.run_id)
    assert run["stages"]["pull:hubspot"]["state"] == "failed"
    assert "hubspot is down" in run["stages"]["pull:hubspot"]["error"]
    assert run["stages"]["pull:salesforce"]["state"] == "succeeded" and run["counts"]["upserted"] == 20
    assert "match" not in run["stages"] and calls == []


def test_a_stop_request_during_a_step_cancels_the_next_one(engine: Engine) -> None:
    stop = threading.Event()
    ctx = _ctx(engine, stop)
    calls: list[str] = []

    def pull_then_sigterm(ctx: RunContext) -> StageReport:
        stop.set()
        return StageReport("pull:salesforce", state="cancelled")

    plan = [(Stage("pull:salesforce", pull_then_sigterm), stage("pull:hubspot", calls)), stage("match", calls)]
    assert run_stages(ctx, plan) == "cancelled"
    stages = get_run(engine, ctx.run_id)["stages"]
    assert stages["pull:salesforce"]["state"] == "cancelled" and stages["match"]["state"] == "cancelled"
    assert list(stages)[-1] == "match" and "match" not in calls


def test_a_stage_whose_record_cannot_be_written_fails_the_run_rather_than_vanish(engine: Engine) -> None:
    """Seen on the L org: the HubSpot writeback's record met a locked SQLite database, the exception died
    with the stage's thread and the run ended 'succeeded' without the stage."""
    ctx = _ctx(engine)
    calls: list[str] = []

    def unrecordable(ctx: RunContext) -> StageReport:
        return StageReport("writeback:hubspot", state="succeeded", detail={"not json": object()})

    with pytest.raises((StatementError, TypeError), match="not JSON serializable"):  # SQLite, PostgreSQL
        run_stages(ctx, [(stage("writeback:salesforce", calls, crm="salesforce"),
                          Stage("writeback:hubspot", unrecordable, crm="hubspot")), stage("after", calls)])
    run = get_run(engine, ctx.run_id)
    assert run["stages"]["writeback:salesforce"]["state"] == "succeeded"
    assert calls == ["writeback:salesforce"]


@pytest.mark.parametrize("huge_pages", [False, True])
def test_a_run_sets_numpy_huge_pages_from_config_in_every_stage_and_puts_them_back(engine: Engine,
                                                                                   huge_pages: bool) -> None:
    """``worker.numpy_huge_pages`` holds for every stage, those on threads of their own included, and the process
    gets numpy's setting back when the run ends, failed or not."""
    from worker.huge_pages import numpy_asks_for_huge_pages, numpy_huge_pages
    from worker.pipeline import Pipeline

    assert numpy_asks_for_huge_pages() is not None, "this numpy has no huge-page switch: the setting does nothing"
    seen: dict[str, bool | None] = {}

    def looking(name: str, fail: bool = False) -> Stage:
        def run(ctx: RunContext) -> StageReport:
            seen[name] = numpy_asks_for_huge_pages()
            if fail:
                raise RuntimeError("the CRM went away")
            return StageReport(name)

        return Stage(name, run)

    config = AbmConfig.model_validate({"worker": {"numpy_huge_pages": huge_pages}})
    for fail in (False, True):
        seen.clear()
        plan = [(looking("pull:salesforce"), looking("pull:hubspot")), looking("score", fail)]
        pipeline = Pipeline(engine, config, lambda _config, _options, plan=plan: plan)
        run_id = create_run(engine, "incremental", "cli")
        assert claim_run(engine, run_id)
        with numpy_huge_pages(not huge_pages):
            if fail:
                with pytest.raises(RuntimeError):
                    pipeline(run_id, RunOptions(), threading.Event())
            else:
                assert pipeline(run_id, RunOptions(), threading.Event()) == "succeeded"
            assert numpy_asks_for_huge_pages() is (not huge_pages)
        assert seen == {"pull:salesforce": huge_pages, "pull:hubspot": huge_pages, "score": huge_pages}


def test_numpy_huge_pages_are_off_by_default_and_the_switch_nests() -> None:
    from worker.huge_pages import numpy_asks_for_huge_pages, numpy_huge_pages

    assert AbmConfig().worker.numpy_huge_pages is False
    before = numpy_asks_for_huge_pages()
    with numpy_huge_pages(False):
        assert numpy_asks_for_huge_pages() is False
        with numpy_huge_pages(True):
            assert numpy_asks_for_huge_pages() is True
        assert numpy_asks_for_huge_pages() is False
    assert numpy_asks_for_huge_pages() is before
