"""The ``admin:`` config section, secret redaction and the chart geometry (no database, no server)."""

from __future__ import annotations

from pathlib import Path

import pytest

from config import AbmConfig, ConfigError
from config.admin import AdminConfig, WeakSecret
from config.loader import validate_config
from config.secrets import MissingSecret
from store.db import make_engine
from worker.admin import charts, create_admin_app
from worker.admin.redact import MASK, Redactor


def test_defaults_keep_the_admin_server_on_this_machine() -> None:
    admin = AbmConfig().admin
    assert admin.host == "127.0.0.1" and admin.port == 8765 and admin.session_hours == 12


def test_a_token_written_into_the_file_is_refused() -> None:
    with pytest.raises(ConfigError) as error:
        validate_config({"admin": {"token": "in-the-yaml-0123456789"}})
    message = str(error.value)
    assert "admin.token" in message and "ABM_ADMIN_TOKEN" in message and "in-the-yaml" not in message


def test_token_from_env_file_or_nowhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ABM_ADMIN_TOKEN", raising=False)
    with pytest.raises(MissingSecret, match="ABM_ADMIN_TOKEN"):
        AdminConfig().token()
    monkeypatch.setenv("ABM_ADMIN_TOKEN", "from-the-environment-42")
    assert AdminConfig().token().get_secret_value() == "from-the-environment-42"
    monkeypatch.setenv("OTHER_VAR", "from-another-variable-42")
    assert AdminConfig(token_env="OTHER_VAR").token().get_secret_value() == "from-another-variable-42"
    secret_file = tmp_path / "admin-token"
    secret_file.write_text("from-a-mounted-file-1234\n")
    assert AdminConfig(token_file=secret_file).token().get_secret_value() == "from-a-mounted-file-1234"
    with pytest.raises(MissingSecret, match="cannot read token"):
        AdminConfig(token_file=tmp_path / "missing").token()
    secret_file.write_text("tiny")
    with pytest.raises(WeakSecret, match="secrets.token_urlsafe"):
        AdminConfig(token_file=secret_file).token()


def test_the_app_is_not_built_without_a_usable_token(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = make_engine("sqlite://")
    monkeypatch.delenv("ABM_ADMIN_TOKEN", raising=False)
    with pytest.raises(MissingSecret, match="ABM_ADMIN_TOKEN"):
        create_admin_app(engine, AbmConfig(), None)
    monkeypatch.setenv("ABM_ADMIN_TOKEN", "tiny-tok")
    with pytest.raises(WeakSecret, match="at least 16") as weak:
        create_admin_app(engine, AbmConfig(), None)
    assert "tiny-tok" not in str(weak.value)


def test_redactor_masks_every_configured_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ABM_SALESFORCE_PASSWORD", "hunter2-and-token")
    monkeypatch.setenv("ABM_HUBSPOT_ACCESS_TOKEN", "pat-eu1-abcdef")
    redactor = Redactor.from_config(AbmConfig(), extra=["admin-token-xyz", "abc"])
    text = "login hunter2-and-token failed; pat-eu1-abcdef refused; admin-token-xyz; abc stays"
    assert redactor.text(text) == f"login {MASK} failed; {MASK} refused; {MASK}; abc stays"
    nested = redactor.deep({"stages": {"pull": {"error": "bad pat-eu1-abcdef", "seconds": 1.5}}, "ids": [1, "x"]})
    assert nested == {"stages": {"pull": {"error": f"bad {MASK}", "seconds": 1.5}}, "ids": [1, "x"]}


def test_axis_maxima_are_round_numbers() -> None:
    assert [charts.nice_ceiling(v) for v in (0, 0.3, 1, 7, 12, 26, 99, 101, 4200)] == [
        1.0, 0.5, 1.0, 10.0, 20.0, 50.0, 100.0, 200.0, 5000.0]


def test_scatter_places_accounts_on_square_root_axes_with_thresholds() -> None:
    points = [
        {"id": 1, "name": "Both", "sales_activity": 100.0, "marketing": 100.0, "alignment": "aligned_high"},
        {"id": 2, "name": "Sales", "sales_activity": 25.0, "marketing": 0.0, "alignment": "sales_high_marketing_low"},
        {"id": 3, "name": None, "sales_activity": None, "marketing": 4.0, "alignment": "aligned_low"},
    ]
    s = charts.scatter(points, "sales_activity", "marketing", 25.0, 25.0, ("sales_high_marketing_low",))
    by_id = {p.account_id: p for p in s.points}
    assert by_id[1].cx == s.right and by_id[1].cy == s.top  # the maximum (100) sits in the corner
    assert by_id[2].cx == pytest.approx((s.left + s.right) / 2, abs=0.1)  # sqrt(25/100) = half way
    assert by_id[2].cx == s.x_threshold and by_id[2].cy == s.bottom
    assert by_id[3].cx == s.left and by_id[3].label == "3"
    assert [p.account_id for p in s.points][-1] == 2  # flagged accounts are drawn last, on top
    assert by_id[2].flagged and not by_id[1].flagged
    assert [t.label for t in s.x_ticks][0] == "0" and [t.label for t in s.x_ticks][-1] == "100"


def test_line_chart_spans_the_days_and_skips_missing_values() -> None:
    rows = [
        {"day": "2026-03-01", "engagement": 10.0, "fit": None},
        {"day": "2026-03-03", "engagement": 50.0, "fit": 60.0},
        {"day": "2026-03-05", "engagement": 120.0, "fit": 60.0},
    ]
    chart = charts.line_chart(rows, [("engagement", "Engagement", "e"), ("fit", "Fit", "f")])
    engagement, fit = chart.series
    xs = [float(p.split(",")[0]) for p in engagement.points.split()]
    assert xs == [chart.left, (chart.left + chart.right) / 2, chart.right]
    assert len(fit.points.split()) == 2 and fit.last_value == 60.0
    assert chart.y_ticks[-1].label == "200" and chart.days == 3  # 120 rounds the axis up to 200
