"""`abm sandbox serve` as a newcomer runs it: a real process, its written config, a clean stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from simple_salesforce import Salesforce

from sandbox.clients import sandbox_requests_session
from sandbox.hubspot.limits import DEFAULT_PER_TEN_SECONDS, DEFAULT_SEARCH_PER_SECOND


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.1)


def test_serve_writes_a_working_config_and_stops_on_sigterm(tmp_path: Path) -> None:
    config = tmp_path / "abm.yaml"
    cmd = [sys.executable, "-m", "worker.cli", "sandbox", "serve", "--no-seed", "--port", "0",
           "--dir", str(tmp_path / "sb"), "--write-config", str(config),
           "--database-url", f"sqlite:///{tmp_path / 'abm.db'}"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ABM_")}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            cwd=Path(__file__).resolve().parents[1])
    try:
        _wait_for(config, proc)
        info = json.loads((tmp_path / "sb" / "sandbox.json").read_text())
        check = subprocess.run([sys.executable, "-m", "worker.cli", "--config", str(config), "config", "check"],
                               capture_output=True, text=True, env=env)
        assert check.returncode == 0, check.stdout + check.stderr
        assert info["salesforce"]["client_secret"] not in config.read_text()  # secrets live in files only
        # the worker paces itself by the sandbox's own HubSpot allowances, the search one included
        hubspot = yaml.safe_load(config.read_text())["hubspot"]
        assert (hubspot["requests_per_10s"], hubspot["search_requests_per_second"]) == (
            DEFAULT_PER_TEN_SECONDS, DEFAULT_SEARCH_PER_SECOND)
        # A newcomer follows the README: a token from the token endpoint, then simple-salesforce.
        session = sandbox_requests_session(info["ca_file"])
        token = session.post(info["salesforce"]["token_url"], data={
            "grant_type": "client_credentials", "client_id": info["salesforce"]["client_id"],
            "client_secret": info["salesforce"]["client_secret"]}).json()
        sf = Salesforce(instance_url=token["instance_url"], session_id=token["access_token"], session=session)
        assert sf.query("SELECT Id FROM Account")["totalSize"] == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "Sandbox ready" in out and "Sandbox stopped." in out
