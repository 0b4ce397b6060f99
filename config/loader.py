"""Reading ``abm.yaml``: choose the file, parse it, apply environment overrides, validate.

Every problem is collected and reported at once with its key path, so an admin fixes a
file in one pass instead of one error per run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from config.connections import DatabaseConfig
from config.errors import ConfigError, ConfigProblem, problems_from_validation
from config.model import AbmConfig
from config.secrets import SecretsSection

DEFAULT_CONFIG_FILE = Path("abm.yaml")


class EnvironmentOverrides(BaseSettings):
    """What the environment may say over the file (containers set these, not files)."""

    model_config = SettingsConfigDict(env_prefix="ABM_", extra="ignore")

    config: Path | None = None
    database_url: str | None = None


def resolve_config_path(explicit: Path | None, env: EnvironmentOverrides) -> Path | None:
    """``--config``, else ``ABM_CONFIG``, else ``./abm.yaml`` if present, else none (defaults)."""
    if explicit is not None:
        return explicit
    if env.config is not None:
        return env.config
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([ConfigProblem("", f"config file not found: {path}")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigProblem("", f"cannot read {path}: {exc}")]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([ConfigProblem("", f"{path} is not valid YAML{where}: {problem}")]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError([ConfigProblem("", f"{path} must hold a mapping of sections, got {type(data).__name__}")])
    return data


def _literal_secrets(model: type[BaseModel], data: Any, prefix: str = "") -> list[ConfigProblem]:
    """Secrets written into the file itself; removed from ``data`` so they are reported once."""
    problems: list[ConfigProblem] = []
    if not isinstance(data, dict):
        return problems
    if issubclass(model, SecretsSection):
        for name, env in model.SECRETS.items():
            if name in data:
                del data[name]
                problems.append(
                    ConfigProblem(
                        f"{prefix}{name}",
                        f"secrets are not accepted in the config file; set the environment variable {env} "
                        f"(or {name}_file: a path to a file holding it)",
                    )
                )
    for field_name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel) and field_name in data:
            problems += _literal_secrets(annotation, data[field_name], f"{prefix}{field_name}.")
    return problems


def validate_config(data: dict[str, Any], source: str | None = None) -> AbmConfig:
    """Validate a parsed config mapping; raise :class:`ConfigError` with every problem."""
    problems = _literal_secrets(AbmConfig, data)
    try:
        config = AbmConfig.model_validate(data)
    except ValidationError as exc:
        problems += problems_from_validation(exc, AbmConfig)
        raise ConfigError(problems, source) from None
    if problems:
        raise ConfigError(problems, source)
    return config


def load_config(path: Path | None = None) -> AbmConfig:
    """Load and validate the configuration; ``ABM_DATABASE_URL`` overrides ``database.url``."""
    env = EnvironmentOverrides()
    chosen = resolve_config_path(path, env)
    data = _read_yaml(chosen) if chosen is not None else {}
    config = validate_config(data, str(chosen) if chosen else None)
    if env.database_url:
        # The environment's URL may carry a password: it is allowed there, and only there.
        scheme = env.database_url.split(":", 1)[0].split("+", 1)[0]
        if scheme not in ("sqlite", "postgresql", "postgres"):
            raise ConfigError(
                [ConfigProblem("ABM_DATABASE_URL", f"must be a sqlite:/// or postgresql:// URL, got scheme {scheme!r}")]
            )
        config = config.model_copy(update={"database": DatabaseConfig.model_construct(url=env.database_url)})
    return config
