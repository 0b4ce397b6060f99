"""`abm serve` as a service manager runs it: a real process, a run triggered over HTTP, SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "t0ken-for-the-serve-test-0123456789"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _abm(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "worker.cli", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=120)


def test_serve_runs_triggered_runs_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    port = _free_port()
    config = tmp_path / "abm.yaml"
    config.write_text(f"database:\n  url: sqlite:///{tmp_path / 'abm.db'}\nadmin:\n  port: {port}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ABM_")} | {
        "ABM_CONFIG": str(config), "ABM_ADMIN_TOKEN": TOKEN}
    assert _abm("db", "upgrade", env=env).returncode == 0
    proc = subprocess.Popen([sys.executable, "-m", "worker.cli", "--log-format", "json", "serve", "--no-schedule"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.communicate()[0]
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "abm serve did not start"
            time.sleep(0.2)
        assert httpx.post(f"{base}/api/runs", json={}, timeout=5).status_code == 401
        answer = httpx.post(f"{base}/api/runs", json={"resync": True}, headers=headers, timeout=5)
        assert answer.status_code == 202, answer.text
        run_id = answer.json()["run_id"]
        while True:  # the executor thread picks it up at once (notified), not at its next poll
            run = httpx.get(f"{base}/api/runs/{run_id}", headers=headers, timeout=5).json()
            if run["state"] not in ("queued", "running"):
                break
            assert time.monotonic() < deadline, run
            time.sleep(0.2)
        assert run["state"] == "succeeded" and list(run["stages"]) == ["match", "score"], run
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert "abm serve stopped cleanly" in out and TOKEN not in out
