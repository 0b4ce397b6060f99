"""Configuration: one YAML file, validated up front, secrets only from the environment."""

from config.errors import ConfigError, ConfigProblem
from config.loader import load_config
from config.model import AbmConfig

__all__ = ["AbmConfig", "ConfigError", "ConfigProblem", "load_config"]
