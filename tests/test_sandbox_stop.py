"""Stopping a sandbox: idle client connections are dropped at once, a request being answered is answered.

A test that starts a sandbox of its own stops it at teardown while its clients still hold pooled keep-alive
connections; a graceful TLS close of those waits for a ``close_notify`` no idle client sends."""

from __future__ import annotations

import logging
import threading
import time

import pytest
import requests

from sandbox.clients import sandbox_requests_session
from sandbox.runner import _QuietShutdown, run_sandbox


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_an_idle_kept_alive_connection_does_not_hold_the_stop(monkeypatch: pytest.MonkeyPatch) -> None:
    # what uvicorn says when connections outlive the graceful stop, which the sandbox keeps out of test logs
    errors = logging.getLogger("uvicorn.error")
    monkeypatch.setattr(errors, "filters", [f for f in errors.filters if not isinstance(f, _QuietShutdown)])
    records = _Records()
    try:
        with run_sandbox() as handle:
            errors.addHandler(records)  # now: configuring uvicorn's logging, as starting does, drops handlers
            session = sandbox_requests_session(handle.ca_path)
            assert session.get(f"{handle.base_url}/services/data", timeout=10).status_code == 200
            # the session's pool keeps the connection open and idle
    finally:
        errors.removeHandler(records)
    assert not [m for m in records.messages if "graceful shutdown exceeded" in m], records.messages


def test_a_request_being_answered_at_stop_gets_its_answer() -> None:
    answers: list[requests.Response | BaseException] = []
    with run_sandbox() as handle:
        slow = handle.faults.delay(0.5, "GET", r"/services/data$")
        session = sandbox_requests_session(handle.ca_path)

        def ask() -> None:
            try:
                answers.append(session.get(f"{handle.base_url}/services/data", timeout=10))
            except BaseException as exc:  # reported by the assertion below
                answers.append(exc)

        asking = threading.Thread(target=ask)
        asking.start()
        while slow.fired == 0 and asking.is_alive():  # then the server is sleeping on the request: stop it
            time.sleep(0.01)
    asking.join(timeout=10)
    assert len(answers) == 1 and isinstance(answers[0], requests.Response), answers
    assert answers[0].status_code == 200
