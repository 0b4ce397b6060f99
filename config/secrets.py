"""Secrets come from environment variables or files they point to, never from the YAML.

A config file is copied, committed and pasted into tickets; a password inside it leaks.
Each secret ``x`` of a section is configured as ``x_env`` (the variable's name, with a
sensible default) or ``x_file`` (a path, e.g. a mounted Kubernetes or systemd credential).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, SecretStr, model_validator


class MissingSecret(RuntimeError):
    """A secret the configuration needs is not set."""


class SecretsSection(BaseModel):
    """A config section with secrets. Subclasses list them in ``SECRETS``: name -> default env var."""

    model_config = ConfigDict(extra="forbid")
    SECRETS: ClassVar[dict[str, str]] = {}

    @model_validator(mode="before")
    @classmethod
    def _refuse_literal_secrets(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name, env in cls.SECRETS.items():
                if name in data:
                    raise ValueError(
                        f"{name}: secrets are not accepted in the config file; set the environment "
                        f"variable {env} (or {name}_file: a path to a file holding it)"
                    )
        return data

    def secret(self, name: str, *, required: bool = True) -> SecretStr | None:
        """Read secret ``name`` from its file or environment variable."""
        default_env = self.SECRETS[name]
        path: Path | None = getattr(self, f"{name}_file", None)
        env: str = getattr(self, f"{name}_env", None) or default_env
        if path is not None:
            try:
                return SecretStr(Path(path).read_text(encoding="utf-8").strip())
            except OSError as exc:
                raise MissingSecret(f"cannot read {name} from {path}: {exc.strerror}") from exc
        value = os.environ.get(env)
        if value:
            return SecretStr(value)
        if required:
            raise MissingSecret(f"{name} is not set: export {env}=... (or set {name}_file in the config)")
        return None
