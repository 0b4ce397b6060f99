"""Configuration problems, each with the key path it is about and what was expected."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError


@dataclass(frozen=True)
class ConfigProblem:
    path: str  # dotted key path, e.g. "salesforce.login_url"; "" for the whole file
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ConfigError(Exception):
    """All the problems found in one configuration, reported together."""

    def __init__(self, problems: list[ConfigProblem], source: str | None = None) -> None:
        self.problems = problems
        self.source = source
        where = f" in {source}" if source else ""
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{len(problems)} configuration problem(s){where}:\n{lines}")


_TYPE_WORDS = {
    "int_parsing": "must be a whole number",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "string_type": "must be text",
    "dict_type": "must be a mapping of keys to values",
    "model_type": "must be a mapping of keys to values",
    "list_type": "must be a list",
    "missing": "is required",
    "greater_than": "must be greater than {gt}",
    "greater_than_equal": "must be at least {ge}",
    "less_than": "must be less than {lt}",
    "less_than_equal": "must be at most {le}",
    "literal_error": "must be one of {expected}",
    "enum": "must be one of {expected}",
    "string_pattern_mismatch": "must match the pattern {pattern}",
}


def _path(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts)


def _known_keys(model: Any, loc: tuple[Any, ...]) -> list[str]:
    """The option names allowed where an unknown key was found, for a 'did you mean'."""
    from pydantic import BaseModel

    current: Any = model
    for item in loc[:-1]:
        if isinstance(current, type) and issubclass(current, BaseModel) and isinstance(item, str):
            field = current.model_fields.get(item)
            if field is None:
                return []
            current = field.annotation
        else:
            return []
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def problems_from_validation(error: ValidationError, model: Any) -> list[ConfigProblem]:
    problems = []
    for item in error.errors():
        loc = tuple(item["loc"])
        kind = item["type"]
        got = item.get("input")
        if kind == "extra_forbidden":
            options = _known_keys(model, loc)
            close = difflib.get_close_matches(str(loc[-1]), options, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else (
                f" (known options: {', '.join(options)})" if options else ""
            )
            problems.append(ConfigProblem(_path(loc), f"unknown option{hint}"))
            continue
        if kind in ("value_error", "assertion_error"):
            message = str(item["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
        elif kind in _TYPE_WORDS:
            message = _TYPE_WORDS[kind].format(**(item.get("ctx") or {}))
            if kind != "missing" and got is not None and not isinstance(got, dict | list):
                message += f", got {got!r}"
        else:
            message = str(item["msg"])
        problems.append(ConfigProblem(_path(loc), message))
    return problems
