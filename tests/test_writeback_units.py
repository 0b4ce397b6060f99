"""The pure parts of writeback: catalogue config, canonical values, the diff, planning, backoff, retry
stop rules and the parsing of per-record results."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from config.writeback import WritebackConfig
from connectors.budget import ApiBudget
from connectors.retry import RetrySettings
from writeback.catalogue import Catalogue, FieldNotInCatalogue
from writeback.diff import RecordChange, diff_record, field_names
from writeback.hubspot import batch_outcomes
from writeback.report import NEVER_WRITTEN, Sample
from writeback.retry import RetryPolicy, WritebackStopped
from writeback.run import plan_changes
from writeback.salesforce import bulk_uploads
from writeback.salesforce_bulk import bulk_error
from writeback.state import Backoff, PendingError
from writeback.values import (
    MatchValues,
    ScoreValues,
    TargetRecord,
    canonical,
    desired_values,
    source_value,
    values_reader,
)

CATALOGUE = Catalogue(WritebackConfig())


def field(crm: str, obj: str, source: str):  # noqa: ANN201
    return next(f for f in CATALOGUE.fields(crm, obj) if f.source == source)


# -- config ---------------------------------------------------------------------------------
def test_default_names_and_objects() -> None:
    names = {f.api_name for f in CATALOGUE.fields("salesforce", "Account")}
    assert "ABM_Engagement_Score__c" in names and "ABM_Matched_Account__c" not in names
    assert {f.api_name for f in CATALOGUE.fields("hubspot", "contacts")} >= {"abm_engagement_score",
                                                                             "abm_matched_account"}
    assert CATALOGUE.objects("salesforce") == ["Account", "Lead", "Contact"]
    assert CATALOGUE.objects("hubspot") == ["companies", "contacts"]
    assert len(CATALOGUE.fields("salesforce", "Lead")) == 13 and len(CATALOGUE.fields("hubspot", "companies")) == 10


def test_partial_overrides_keep_the_other_defaults() -> None:
    config = WritebackConfig.model_validate({"prefix": "Acme_", "fields": {
        "grade": {"label": "Tier"}, "trend": {"enabled": False},
        "engagement": {"salesforce_name": "Engagement__c", "hubspot_name": "engagement_idx", "tolerance": 2.5}}})
    catalogue = Catalogue(config)
    grade = next(f for f in catalogue.fields("salesforce", "Account") if f.source == "grade")
    assert (grade.api_name, grade.spec.label, grade.spec.precision) == ("Acme_Grade__c", "Tier", 1)
    assert all(f.source != "trend" for f in catalogue.fields("hubspot", "companies"))
    engagement = next(f for f in catalogue.fields("hubspot", "companies") if f.source == "engagement")
    assert (engagement.api_name, engagement.tolerance) == ("engagement_idx", 2.5)
    assert WritebackConfig(prefix="").fields.grade.name == "Grade"


@pytest.mark.parametrize("data, problem", [
    ({"fields": {"grde": {}}}, "grde"),
    ({"fields": {"trend": {"type": "number"}}}, "cannot hold"),
    ({"fields": {"reasons": {"tolerance": 1}}}, "tolerance applies to number"),
    ({"fields": {"matched_account": {"objects": ["account", "lead"]}}}, "not to an account"),
    ({"fields": {"fit": {"name": "Grade"}}}, "same API name"),
    ({"fields": {"fit": {"salesforce_name": "Fit Score"}}}, "not a valid Salesforce"),
    ({"fields": {"fit": {"salesforce_name": "ABM__Fit__c"}}}, "not a valid Salesforce"),
    ({"fields": {"fit": {"hubspot_name": "Fit"}}}, "not a valid HubSpot"),
    ({"fields": {"fit": {"precision": 3, "scale": 3}}}, "scale"),
    ({"prefix": "abm-"}, "prefix"),
])
def test_bad_catalogue_is_refused_with_a_clear_reason(data: dict, problem: str) -> None:
    with pytest.raises(ValidationError) as error:
        WritebackConfig.model_validate(data)
    assert problem in str(error.value)


def test_guard() -> None:
    CATALOGUE.guard("salesforce", "Lead", ["ABM_Grade__c", "ABM_Matched_Account__c"])
    with pytest.raises(FieldNotInCatalogue, match="Status"):
        CATALOGUE.guard("salesforce", "Lead", ["ABM_Grade__c", "Status"])
    with pytest.raises(FieldNotInCatalogue, match="ABM_Matched_Account__c"):
        CATALOGUE.guard("salesforce", "Account", ["ABM_Matched_Account__c"])
    with pytest.raises(FieldNotInCatalogue, match="deals"):
        CATALOGUE.guard("hubspot", "deals", [])


# -- values ---------------------------------------------------------------------------------
def test_canonical_values() -> None:
    engagement = field("salesforce", "Account", "engagement")
    grade = field("salesforce", "Account", "grade")
    assert [canonical(engagement, v) for v in (57.25, 57.249, 0.04, -0.04, 100, float("nan"), None)] == [
        "57.3", "57.2", "0.0", "0.0", "100.0", None, None]
    assert canonical(grade, 3) == "3" and canonical(grade, 2.5) == "3"
    reasons = field("salesforce", "Account", "reasons")
    assert canonical(reasons, "x" * 300) == "x" * 255 and canonical(reasons, "   ") is None
    scored = field("hubspot", "companies", "scored_at")
    moment = datetime(2026, 3, 1, 8, 0, 0, 987654, tzinfo=UTC)
    assert canonical(scored, moment) == "2026-03-01T08:00:00.987Z"
    assert canonical(scored, moment.astimezone().replace()) == "2026-03-01T08:00:00.987Z"
    with pytest.raises(ValueError, match="naive"):
        canonical(scored, datetime(2026, 3, 1))


def test_match_values() -> None:
    record = TargetRecord("00Q", ScoreValues(), MatchValues("review", "001A", 0.72, "name only"))
    assert source_value("matched_account", record) is None  # a review match is no match for a rep yet
    assert source_value("match_confidence", record) == pytest.approx(72.0)
    assert source_value("match_reason", record) == "name only"
    auto = TargetRecord("00Q", ScoreValues(), MatchValues("auto", "001A", 0.95, "domain"))
    assert source_value("matched_account", auto) == "001A"
    assert desired_values(TargetRecord("00Q", ScoreValues()), CATALOGUE.fields("salesforce", "Lead"))[
        "ABM_Match_Reason__c"] is None


def test_values_reader_formats_as_desired_values() -> None:
    """The per-object reader an incremental run uses gives exactly what the per-value path gives."""
    moment = datetime(2026, 3, 1, 8, 0, 0, 987654, tzinfo=UTC)
    scores = [ScoreValues(), ScoreValues(57.25, 0.04, -0.04, 88.05, 3, float("nan"), "rising", "aligned",
                                         " x " * 200, moment),
              ScoreValues(100, 12.345, float("inf"), 0.0, 1, 99.95, None, None, "   ", moment),
              # values equal to ones read before, of another type or sign, or the same moment in another zone: the
              # reader formats each value once and must not hand one's text to another that formats otherwise
              ScoreValues(100.0, 12.345, -0.0, -0.0, 1.0, float("nan"), "rising", "aligned", "x",
                          moment.astimezone(timezone(timedelta(hours=5))))]
    matches = [None, MatchValues("review", "001A", 0.72, "name only"), MatchValues("auto", "001B", None, None),
               MatchValues("crm", None, 0.999, "the CRM says so")]
    for crm in ("salesforce", "hubspot"):
        for obj in CATALOGUE.objects(crm):
            fields = CATALOGUE.fields(crm, obj)
            read = values_reader(fields)
            for score in scores:
                for match in matches:
                    record = TargetRecord("id", score, match)
                    assert read(record) == desired_values(record, fields)



def test_equal_values_share_one_string() -> None:
    """Two million changes held at once: equal scores, times and account ids are one object each, not one per record."""
    moment = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    fields = CATALOGUE.fields("hubspot", "contacts")
    read = values_reader(fields)
    first, second = (read(TargetRecord(crm_id, ScoreValues(float(f"{61.5:.1f}"), 0.5 + 0.5, None, -0.0, 3, None,
                                                           "rising", None, f"reason of {crm_id}", moment),
                                       MatchValues("auto", "".join(["001", "A"]), 0.5, None)))
                     for crm_id in ("1", "2"))
    assert first == second | {"abm_top_reasons": "reason of 1"}
    for name, value in first.items():
        if name != "abm_top_reasons" and value is not None:
            assert second[name] is value, name
    assert first["abm_fit_score"] == "0.0"  # -0.0 is still written without its sign


# -- diff -----------------------------------------------------------------------------------
def test_diff_against_what_was_written() -> None:
    fields = CATALOGUE.fields("salesforce", "Account")
    desired = {f.api_name: None for f in fields} | {"ABM_Engagement_Score__c": "50.4", "ABM_Grade__c": "2",
                                                    "ABM_Last_Scored_At__c": "2026-01-02T00:00:00.000Z"}
    never = diff_record("001", desired, {}, fields)
    assert never is not None and never.values == desired  # unknown CRM values: everything, nulls included
    baseline = dict(desired)
    assert diff_record("001", desired, baseline, fields) is None

    moved_a_little = baseline | {"ABM_Engagement_Score__c": "49.5", "ABM_Last_Scored_At__c": "2026-01-01T00:00:00.000Z"}
    assert diff_record("001", desired, moved_a_little, fields) is None  # 0.9 < 1 point; scored-at never alone
    moved = baseline | {"ABM_Engagement_Score__c": "49.4", "ABM_Last_Scored_At__c": "2026-01-01T00:00:00.000Z"}
    change = diff_record("001", desired, moved, fields)
    assert change is not None and change.values == {"ABM_Engagement_Score__c": "50.4",
                                                    "ABM_Last_Scored_At__c": "2026-01-02T00:00:00.000Z"}
    assert Sample.of(change, moved).changes["ABM_Engagement_Score__c"] == ("49.4", "50.4")
    assert Sample.of(change, {}).changes["ABM_Engagement_Score__c"] == (NEVER_WRITTEN, "50.4")
    regraded = diff_record("001", desired, baseline | {"ABM_Grade__c": "3"}, fields)
    assert regraded is not None and regraded.values == {"ABM_Grade__c": "2"}  # any grade change is written
    cleared = diff_record("001", desired | {"ABM_Engagement_Score__c": None}, baseline, fields)
    assert cleared is not None and cleared.values == {"ABM_Engagement_Score__c": None}
    forced = diff_record("001", desired, baseline, fields, force=True)
    assert forced is not None and forced.values == desired



def test_a_change_keeps_its_values_and_shares_its_field_names() -> None:
    one = RecordChange("001A", {"ABM_Grade__c": "2", "ABM_Trend__c": None})
    other = RecordChange("001B", {"ABM_Grade__c": "3", "ABM_Trend__c": "rising"})
    assert one.values == {"ABM_Grade__c": "2", "ABM_Trend__c": None}
    assert list(one.items()) == [("ABM_Grade__c", "2"), ("ABM_Trend__c", None)]
    assert one.names is other.names  # one tuple for every change of the same fields
    assert one == RecordChange("001A", {"ABM_Trend__c": None, "ABM_Grade__c": "2"})  # the order does not matter
    assert one != RecordChange("001A", {"ABM_Grade__c": "2"}) and one != other
    assert field_names([one, other, RecordChange("001C", {"ABM_Fit_Score__c": "1.0"})]) == {
        "ABM_Grade__c", "ABM_Trend__c", "ABM_Fit_Score__c"}
    assert repr(one) == "RecordChange(crm_id='001A', values={'ABM_Grade__c': '2', 'ABM_Trend__c': None})"

def test_plan_defers_records_waiting_for_their_retry() -> None:
    fields = CATALOGUE.fields("hubspot", "companies")
    now = datetime(2026, 1, 1, tzinfo=UTC)
    records = [TargetRecord(str(i), ScoreValues(engagement=10.0 * i, grade=1)) for i in range(1, 4)]
    errors = {"1": PendingError(1, now, now + timedelta(minutes=5)), "2": PendingError(3, now, now - timedelta(1))}
    plan = plan_changes(records, fields, {}, errors, now)
    assert [c.crm_id for c in plan.due] == ["2", "3"] and [c.crm_id for c in plan.deferred] == ["1"]
    assert [c.crm_id for c in plan_changes(records, fields, {}, errors, now, force=True).due] == ["1", "2", "3"]


def test_backoff_doubles_up_to_the_cap() -> None:
    backoff = Backoff(timedelta(minutes=15), timedelta(hours=2))
    assert [backoff.after(n) for n in (1, 2, 3, 4, 10)] == [timedelta(minutes=m) for m in (15, 30, 60, 120, 120)]


# -- retries ---------------------------------------------------------------------------------
class RateLimited(Exception):
    pass


class Flaky(Exception):
    pass


def _policy(max_wait: float, budget: ApiBudget | None = None) -> tuple[RetryPolicy, list[float]]:
    slept: list[float] = []
    kinds = {RateLimited: "rate_limit", Flaky: "transient"}
    policy = RetryPolicy("crm", lambda e: kinds.get(type(e), "fatal"),  # type: ignore[arg-type, return-value]
                         lambda e: 2.0 if isinstance(e, RateLimited) else None,
                         settings=RetrySettings(attempts=3, initial_seconds=0.01, max_seconds=0.01),
                         max_rate_limit_wait_s=max_wait, budget=budget, sleep=slept.append)
    return policy, slept


def test_rate_limits_are_waited_out_beyond_the_attempt_count() -> None:
    policy, slept = _policy(max_wait=60)
    answers = iter([RateLimited()] * 10 + ["done"])

    def call() -> str:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert policy.call(call, "writing") == "done"
    assert slept == [2.0] * 10 and policy.rate_limit_waits == 10 and policy.rate_limited_s == 20.0


def test_waiting_past_the_allowance_stops_and_transient_errors_give_up() -> None:
    policy, slept = _policy(max_wait=5)
    with pytest.raises(WritebackStopped, match="rate limited"):
        policy.call(lambda: (_ for _ in ()).throw(RateLimited()), "writing")
    assert slept == [2.0, 2.0]
    policy, slept = _policy(max_wait=5)
    with pytest.raises(WritebackStopped, match="kept failing after 3 attempts"):
        policy.call(lambda: (_ for _ in ()).throw(Flaky()), "writing")
    assert len(slept) == 2
    with pytest.raises(KeyError):  # anything else is not retried
        policy.call(lambda: {}["missing"], "writing")


def test_spent_budget_stops_before_sending() -> None:
    budget = ApiBudget("crm", 0.5, used=50, total=100)
    policy, _ = _policy(max_wait=5, budget=budget)
    sent = []
    with pytest.raises(WritebackStopped, match="daily API calls"):
        policy.call(lambda: sent.append(1), "writing")
    assert sent == []


# -- per-record results ---------------------------------------------------------------------
def test_bulk_error_text() -> None:
    assert bulk_error("FIELD_CUSTOM_VALIDATION_EXCEPTION:Region is required:Region__c --") == (
        "FIELD_CUSTOM_VALIDATION_EXCEPTION", "Region is required (fields: Region__c)")
    assert bulk_error("ENTITY_IS_DELETED:entity is deleted: --") == ("ENTITY_IS_DELETED", "entity is deleted")
    assert bulk_error("something odd") == ("UNKNOWN", "something odd")


def _uploads(changes: list[RecordChange], max_bytes: int) -> list[tuple[list[str], bytes]]:
    return [([c.crm_id for c in part], data) for part, data in bulk_uploads(changes, max_bytes)]


def test_bulk_uploads_are_cut_at_the_size_limit_each_with_the_header() -> None:
    changes = [RecordChange(f"001{i:015d}", {"ABM_Grade__c": "2", "ABM_Reason__c": "Zoë's café, 3 visits"})
               for i in range(50)]
    whole = _uploads(changes, 10**9)
    assert len(whole) == 1 and whole[0][0] == [c.crm_id for c in changes]
    header, *rows = whole[0][1].split(b"\n")[:-1]
    assert header == b"Id,ABM_Grade__c,ABM_Reason__c" and len(rows) == 50
    row_bytes = len(rows[0]) + 1  # the accented letters count twice: bytes are what the limit counts
    assert row_bytes == len(rows[0].decode()) + 1 + 2
    limit = len(header) + 1 + 7 * row_bytes  # seven rows a job, to the byte
    cut = _uploads(changes, limit)
    assert [len(ids) for ids, _ in cut] == [7] * 7 + [1]
    assert all(len(data) <= limit for _, data in cut) and len(cut[0][1]) == limit
    assert all(data.startswith(header + b"\n") for _, data in cut)
    assert [i for ids, _ in cut for i in ids] == [c.crm_id for c in changes]
    assert b"".join(data.split(b"\n", 1)[1] for _, data in cut) == whole[0][1].split(b"\n", 1)[1]
    assert len(_uploads(changes, limit - 1)) == 9  # a byte less: six rows a job


def test_bulk_uploads_keep_fields_alone_or_clear_them() -> None:
    changes = [RecordChange("001A", {"ABM_Grade__c": "1"}), RecordChange("001B", {"ABM_Fit_Score__c": None})]
    [(_, data)] = _uploads(changes, 10**6)
    assert data == b"Id,ABM_Fit_Score__c,ABM_Grade__c\n001A,,1\n001B,#N/A,\n"
    assert _uploads([], 10**6) == []


def test_a_record_bigger_than_an_upload_is_refused_with_its_id() -> None:
    changes = [RecordChange("001A", {"ABM_Grade__c": "1"}), RecordChange("001B", {"ABM_Reason__c": "x" * 500})]
    with pytest.raises(ValueError, match="001B record's values take"):
        _uploads(changes, 200)


def test_hubspot_batch_outcomes() -> None:
    batch = [RecordChange(i, {"abm_grade": "2"}) for i in ("1", "2", "3", "4")]
    body = {"results": [{"id": "1"}, {"id": "4"}], "errors": [
        {"category": "OBJECT_NOT_FOUND", "message": "gone", "context": {"ids": ["2"]}},
        {"category": "VALIDATION_ERROR", "message": "bad value", "context": {"objectWriteTraceId": ["3"]}}]}
    outcomes = batch_outcomes(batch, body)
    assert [(o.crm_id, o.ok, o.code) for o in outcomes] == [
        ("1", True, None), ("2", False, "OBJECT_NOT_FOUND"), ("3", False, "VALIDATION_ERROR"), ("4", True, None)]
    silent = batch_outcomes(batch[:1], {"results": []})
    assert silent[0].ok is False and silent[0].code == "NO_RESULT"
