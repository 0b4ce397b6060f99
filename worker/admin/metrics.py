"""Prometheus metrics computed from the store at scrape time.

In-process counters would restart at zero with every worker restart and would only count the
runs of the process that was scraped, while the store holds every run of every worker. So each
scrape reads the run records (a handful of aggregate queries) and reports what they say: it is
right across restarts, across several workers on one PostgreSQL, and for runs made by the CLI.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry
from sqlalchemy import Connection, Engine, case, func, select

from store.runs import COUNT_KEYS, FINAL_STATES
from store.schema import CRMS, Account, Run, Score, WritebackError

DURATION_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0)
RUN_STATES = ("queued", "running", "paused", "succeeded", "failed", "cancelled")


def _seconds_between(conn: Connection, start: Any, end: Any) -> Any:
    if conn.dialect.name == "postgresql":
        return func.extract("epoch", end - start)
    # julianday() is a float of days: rounded to the millisecond it no longer shows 91.99998 s.
    return func.round((func.julianday(end) - func.julianday(start)) * 86400.0, 3)


class StoreCollector(Collector):
    """Reads the run records, writeback errors and scores on every ``collect()``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        with self.engine.connect() as conn:
            yield self._runs(conn)
            yield self._durations(conn)
            yield self._last_stage_seconds(conn)
            yield self._records(conn)
            yield self._api_calls(conn)
            yield self._writeback_errors(conn)
            yield from self._last_success(conn)
            yield self._grades(conn)

    def _runs(self, conn: Connection) -> Metric:
        family = GaugeMetricFamily("abm_runs", "Run records by state.", labels=["state"])
        counts = dict(conn.execute(select(Run.state, func.count()).group_by(Run.state)).all())
        for state in RUN_STATES:  # every state has a series, so an alert on failed runs starts from 0
            family.add_metric([state], int(counts.get(state, 0)))
        return family

    def _durations(self, conn: Connection) -> Metric:
        family = HistogramMetricFamily(
            "abm_run_duration_seconds", "Wall time of finished runs, start to finish.", labels=["kind"])
        seconds = _seconds_between(conn, Run.started_at, Run.finished_at)
        bucket_columns = [func.sum(case((seconds <= edge, 1), else_=0)) for edge in DURATION_BUCKETS]
        query = (
            select(Run.kind, func.count(), func.coalesce(func.sum(seconds), 0.0), *bucket_columns)
            .where(Run.state.in_(FINAL_STATES), Run.started_at.isnot(None), Run.finished_at.isnot(None))
            .group_by(Run.kind)
            .order_by(Run.kind)
        )
        for kind, count, total, *cumulative in conn.execute(query):
            buckets = [(str(edge), int(n or 0)) for edge, n in zip(DURATION_BUCKETS, cumulative, strict=True)]
            family.add_metric([kind], buckets + [("+Inf", int(count))], float(total))
        return family

    def _last_stage_seconds(self, conn: Connection) -> Metric:
        family = GaugeMetricFamily(
            "abm_last_run_stage_seconds", "Duration of each stage of the latest finished run.", labels=["stage"])
        stages = conn.execute(
            select(Run.stages).where(Run.state.in_(FINAL_STATES)).order_by(Run.id.desc()).limit(1)
        ).scalar_one_or_none() or {}
        for name, stage in sorted(stages.items(), key=lambda item: item[1].get("seq", 0)):
            family.add_metric([name], float(stage.get("seconds") or 0.0))
        return family

    def _records(self, conn: Connection) -> Metric:
        family = CounterMetricFamily(
            "abm_run_records", "Records handled by all runs, per counter (read, upserted, written...).",
            labels=["counter"])
        sums = [func.coalesce(func.sum(Run.counts[key].as_integer()), 0) for key in COUNT_KEYS]
        for key, total in zip(COUNT_KEYS, conn.execute(select(*sums)).one(), strict=True):
            family.add_metric([key], int(total))
        return family

    def _api_calls(self, conn: Connection) -> Metric:
        family = CounterMetricFamily("abm_api_calls", "CRM API calls made by all runs.", labels=["crm"])
        sums = [func.coalesce(func.sum(Run.api_calls[crm].as_integer()), 0) for crm in CRMS]
        for crm, total in zip(CRMS, conn.execute(select(*sums)).one(), strict=True):
            family.add_metric([crm], int(total))
        return family

    def _writeback_errors(self, conn: Connection) -> Metric:
        family = GaugeMetricFamily(
            "abm_writeback_errors", "CRM records whose latest write failed (retried by later runs).", labels=["crm"])
        counts = dict(conn.execute(select(WritebackError.crm, func.count()).group_by(WritebackError.crm)).all())
        for crm in CRMS:
            family.add_metric([crm], int(counts.get(crm, 0)))
        return family

    def _last_success(self, conn: Connection) -> Iterator[Metric]:
        last = conn.execute(select(func.max(Run.finished_at)).where(Run.state == "succeeded")).scalar_one_or_none()
        if last is not None:  # no sample before the first success: absent() alerts on it
            yield GaugeMetricFamily("abm_last_success_timestamp_seconds",
                                    "When the latest successful run finished (Unix time).", value=last.timestamp())

    def _grades(self, conn: Connection) -> Metric:
        family = GaugeMetricFamily("abm_accounts_by_grade", "Scored live accounts per grade.", labels=["grade"])
        counts = dict(conn.execute(
            select(Score.grade, func.count()).join(Account, Account.id == Score.entity_id)
            .where(Score.entity_kind == "account", Account.is_deleted.is_(False), Score.grade.isnot(None))
            .group_by(Score.grade)
        ).all())
        for grade in (4, 3, 2, 1):
            family.add_metric([str(grade)], int(counts.get(grade, 0)))
        return family


def metrics_registry(engine: Engine) -> CollectorRegistry:
    """A registry of its own: the process-wide default would mix in other apps' metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(engine))
    return registry


def render_metrics(registry: CollectorRegistry) -> tuple[bytes, str]:
    """The exposition text and its content type."""
    return generate_latest(registry), CONTENT_TYPE_LATEST
