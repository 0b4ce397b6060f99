"""Configuration: every problem reported at once with its key path; secrets never in the file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from config import ConfigError, load_config
from config.loader import validate_config
from connectors.registry import CRMS
from worker.cli import app

runner = CliRunner()

FIVE_MISTAKES = """\
database:
  url: mysql://localhost/abm
salesforce:
  enabled: true
  login_url: http://login.salesforce.com
  sync:
    lookback_minutes: ten
hubspot:
  requests_per_10s: 0
logging:
  levle: DEBUG
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "abm.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_five_mistakes_give_five_messages_with_key_paths(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_config(write(tmp_path, FIVE_MISTAKES))
    messages = [str(p) for p in excinfo.value.problems]
    assert len(messages) == 5, messages
    expected_starts = [
        "database.url: must be a sqlite:/// or postgresql:// URL",
        "salesforce.login_url: must be an https URL",
        "salesforce.sync.lookback_minutes: must be a whole number, got 'ten'",
        "hubspot.requests_per_10s: must be at least 1",
        "logging.levle: unknown option (did you mean 'level'?)",
    ]
    for start in expected_starts:
        assert any(m.startswith(start) for m in messages), (start, messages)


def test_config_check_exits_2_and_prints_every_problem(tmp_path: Path) -> None:
    result = runner.invoke(app, ["--config", str(write(tmp_path, FIVE_MISTAKES)), "config", "check"])
    assert result.exit_code == 2
    for path in ("database.url", "salesforce.login_url", "salesforce.sync.lookback_minutes",
                 "hubspot.requests_per_10s", "logging.levle"):
        assert path in result.output


def test_secret_in_yaml_is_refused_naming_the_variable(tmp_path: Path) -> None:
    path = write(tmp_path, "salesforce:\n  client_secret: s3cr3t-value\nhubspot:\n  access_token: pat-na1-xyz\n")
    result = runner.invoke(app, ["--config", str(path), "config", "check"])
    assert result.exit_code == 2
    assert "salesforce.client_secret" in result.output
    assert "ABM_SALESFORCE_CLIENT_SECRET" in result.output
    assert "hubspot.access_token" in result.output and "ABM_HUBSPOT_ACCESS_TOKEN" in result.output
    assert "s3cr3t-value" not in result.output and "pat-na1-xyz" not in result.output


def test_secrets_come_from_the_environment_or_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret_file = tmp_path / "token"
    secret_file.write_text("from-file\n", encoding="utf-8")
    config = validate_config({"hubspot": {"access_token_file": str(secret_file)}})
    assert config.hubspot.secret("access_token").get_secret_value() == "from-file"
    monkeypatch.setenv("ABM_SALESFORCE_CLIENT_SECRET", "from-env")
    config = validate_config({})
    secret = config.salesforce.secret("client_secret")
    assert secret.get_secret_value() == "from-env"
    assert "from-env" not in repr(config) and "from-env" not in str(secret)


def test_missing_secret_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ABM_SALESFORCE_REFRESH_TOKEN", raising=False)
    from config.secrets import MissingSecret

    with pytest.raises(MissingSecret, match="ABM_SALESFORCE_REFRESH_TOKEN"):
        validate_config({}).salesforce.secret("refresh_token")


def test_database_url_with_password_only_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="ABM_DATABASE_URL"):
        load_config(write(tmp_path, "database:\n  url: postgresql://abm:hunter2@db/abm\n"))
    monkeypatch.setenv("ABM_DATABASE_URL", "postgresql://abm:hunter2@db/abm")
    assert load_config(write(tmp_path, "")).database.url == "postgresql://abm:hunter2@db/abm"
    result = runner.invoke(app, ["--config", str(tmp_path / "abm.yaml"), "config", "check"])
    assert result.exit_code == 0, result.output
    assert "hunter2" not in result.output and "db/abm" in result.output


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("salesforce: [1, 2\n", "not valid YAML at line"), ("- a\n- b\n", "must hold a mapping"),
     ("logging:\n  level: LOUD\n", "logging.level: must be one of")],
)
def test_unreadable_files_say_where(tmp_path: Path, text: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        load_config(write(tmp_path, text))


def test_missing_config_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["--config", str(tmp_path / "nope.yaml"), "config", "check"])
    assert result.exit_code == 2
    assert "config file not found" in result.output


def test_example_config_is_valid() -> None:
    example = Path(__file__).resolve().parents[1] / "config" / "example.yaml"
    load_config(example)


def test_db_commands_and_schema_guard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ABM_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    config = ["--config", str(write(tmp_path, ""))]
    status = runner.invoke(app, [*config, "db", "status"])
    assert status.exit_code == 1 and "abm db upgrade" in status.output
    upgrade = runner.invoke(app, [*config, "db", "upgrade"])
    assert upgrade.exit_code == 0 and "upgraded empty" in upgrade.output
    again = runner.invoke(app, [*config, "db", "upgrade"])
    assert "already at" in again.output
    assert runner.invoke(app, [*config, "db", "status"]).exit_code == 0


def test_version_and_help() -> None:
    assert runner.invoke(app, ["--version"]).output.startswith("abm-sync ")
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "config" in result.output and "db" in result.output


def test_the_cli_answers_help_and_mistakes_without_importing_the_product() -> None:
    """`abm --help`, an unknown option and shell completion run the CLI's import and nothing else: the store,
    the configuration models, the matcher, the CRM clients and the sandbox load when a command runs
    (together 1.5-2 s, as long again as the CLI itself)."""
    script = ("import sys, worker.cli\n"
              "heavy = ('sqlalchemy', 'pydantic', 'numpy', 'matching', 'config', 'store', 'connectors',\n"
              "         'writeback', 'scoring', 'sandbox.runner', 'simple_salesforce', 'hubspot', 'yaml')\n"
              "print([m for m in heavy if m in sys.modules])\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    help_text = subprocess.run([sys.executable, "-m", "worker.cli", "sync", "--help"], capture_output=True, text=True,
                               check=True, env={**os.environ, "COLUMNS": "200"}).stdout
    assert "salesforce, hubspot" in help_text  # the CRMs the registry knows, listed without loading it
    assert set(CRMS) == {"salesforce", "hubspot"}


def _option_paths(model, prefix: str = "") -> list[str]:
    from pydantic import BaseModel

    paths = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            paths += _option_paths(annotation, f"{prefix}{name}.")
        else:
            paths.append(f"{prefix}{name}")
    return paths


def test_example_config_shows_every_option() -> None:
    """The example is the reference: an option missing from it is an undocumented option."""
    import yaml

    from config.model import AbmConfig

    example = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "example.yaml").read_text())

    def present(path: str) -> bool:
        node = example
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                return False
            node = node[part]
        return True

    missing = [p for p in _option_paths(AbmConfig) if not present(p)]
    assert missing == []
