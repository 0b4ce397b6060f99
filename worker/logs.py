"""Logging for a long-running worker: readable text for people, one JSON object a line for shippers.

Two guarantees matter more than format. Secrets never reach a log line: every secret the
configuration loaded is registered here and masked wherever it appears (in a message, an argument,
an exception, a field), as is anything that looks like a bearer token. And INFO lines carry counts
and ids, never personal data; names and emails only ever appear at DEBUG.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from datetime import UTC, datetime
from typing import Any, TextIO

_STANDARD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}
_BEARER = re.compile(r"(?i)\b(bearer|oauth)\s+[A-Za-z0-9._~+/!=-]{12,}")
_MASK = "***"


class SecretMasker(logging.Filter):
    """Replaces registered secret values (and bearer tokens) in every record, before any handler."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        self._lock = threading.Lock()
        self._pattern: re.Pattern[str] | None = None

    def register(self, *values: str | None) -> None:
        with self._lock:
            self._secrets.update(v for v in values if v and len(v) >= 4)
            ordered = sorted(self._secrets, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(s) for s in ordered)) if ordered else None

    def mask(self, text: str) -> str:
        pattern = self._pattern
        if pattern is not None:
            text = pattern.sub(_MASK, text)
        return _BEARER.sub(lambda m: f"{m.group(1)} {_MASK}", text)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.mask(record.getMessage())
        record.args = ()
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = self.mask(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        for key, value in list(record.__dict__.items()):
            if key not in _STANDARD_ATTRS and isinstance(value, str):
                setattr(record, key, self.mask(value))
        return True


masker = SecretMasker()


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the record's structured extras."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                out[key] = value
        if record.exc_text:
            out["exception"] = record.exc_text
        elif record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def configure_logging(level: str = "INFO", fmt: str = "text", stream: TextIO | None = None) -> None:
    """Route abm-sync's (and its libraries') logs to ``stream`` (stderr) in ``fmt``, masking secrets."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(masker)
    handler.setFormatter(
        JsonFormatter() if fmt == "json" else logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_abm", False):
            root.removeHandler(old)
    handler._abm = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    quiet_noisy_libraries(logging.getLevelName(level))


# Libraries that log request URLs and headers at DEBUG, and the scheduler's line per job run.
NOISY_LOGGERS = ("urllib3", "httpx", "httpcore", "zeep", "apscheduler.executors.default")


def quiet_noisy_libraries(level: int) -> None:
    """Keep :data:`NOISY_LOGGERS` at WARNING or above unless ``level`` asks for less."""
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, level))
