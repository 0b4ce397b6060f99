"""Logs: secrets masked everywhere they could leak, JSON lines with structured fields."""

from __future__ import annotations

import io
import json
import logging

from worker.logs import configure_logging, masker


def _capture(fmt: str) -> io.StringIO:
    stream = io.StringIO()
    configure_logging("INFO", fmt, stream)
    return stream


def test_registered_secrets_and_bearer_tokens_never_reach_a_log_line() -> None:
    masker.register("s3cr3t-client-secret-value")
    stream = _capture("text")
    log = logging.getLogger("abm.test")
    log.info("token request with %s", "s3cr3t-client-secret-value")
    log.warning("retrying with header Authorization: Bearer 00D5b000001!AQ4AQ.abcdefghijklmnopqrstuvwxyz")
    try:
        raise RuntimeError("login failed for client_secret=s3cr3t-client-secret-value")
    except RuntimeError:
        log.exception("auth error")
    out = stream.getvalue()
    assert "s3cr3t-client-secret-value" not in out and "abcdefghijklmnop" not in out
    assert out.count("***") >= 3 and "Traceback" in out


def test_json_lines_carry_structured_fields() -> None:
    stream = _capture("json")
    logging.getLogger("abm.pipeline").info("run 3 stage match succeeded", extra={"run_id": 3, "stage": "match",
                                                                                "counts": {"matched": 12}})
    line = json.loads(stream.getvalue().strip().splitlines()[-1])
    assert line["level"] == "INFO" and line["logger"] == "abm.pipeline" and line["run_id"] == 3
    assert line["counts"] == {"matched": 12} and line["message"] == "run 3 stage match succeeded"


def test_reconfiguring_replaces_our_handler_instead_of_doubling_lines() -> None:
    _capture("text")
    stream = _capture("text")
    logging.getLogger("abm.test").info("once")
    assert stream.getvalue().count("once") == 1
    assert sum(1 for h in logging.getLogger().handlers if getattr(h, "_abm", False)) == 1
