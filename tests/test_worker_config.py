"""The worker section: schedule expressions and time zones are checked before a run trips on them."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from config.worker import ScheduleConfig, WorkerConfig


def test_defaults_are_valid() -> None:
    config = WorkerConfig()
    assert config.schedule.incremental_every_minutes == 15 and config.schedule.full_cron == "0 3 * * sun"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"full_cron": "every sunday"}, "crontab expression"),
        ({"full_cron": "61 3 * * *"}, "crontab expression"),
        ({"timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"incremental_every_minutes": 0}, "greater than or equal to 1"),
    ],
)
def test_bad_schedules_are_refused_with_a_hint(values: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ScheduleConfig(**values)


def test_full_run_can_be_switched_off() -> None:
    assert ScheduleConfig(full_cron=None).full_cron is None


def test_runs_cover_the_enabled_crms_or_those_asked_for() -> None:
    from config import AbmConfig

    both = AbmConfig.model_validate({"salesforce": {"enabled": True}, "hubspot": {"enabled": True}})
    assert both.chosen_crms() == ["salesforce", "hubspot"] and both.chosen_crms(["hubspot"]) == ["hubspot"]
    only_hubspot = AbmConfig.model_validate({"hubspot": {"enabled": True}})
    with pytest.raises(ValueError, match="salesforce is not enabled.*salesforce.enabled: true"):
        only_hubspot.chosen_crms(["salesforce"])
    with pytest.raises(ValueError, match="unknown CRM 'dynamics'"):
        only_hubspot.chosen_crms(["dynamics"])
