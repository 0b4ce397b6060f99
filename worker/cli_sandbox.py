"""`abm sandbox serve`: the CRM emulator as a long-running process, for trying abm-sync without a CRM.

With ``--write-config`` it also writes an ``abm.yaml`` pointing at itself, with the sandbox's
credentials in files next to it (secrets never go in the YAML), so ``abm --config FILE run``
works against it at once. Those credentials are sandbox-only and regenerated at every start, so
printing them is fine; a real CRM's never are.
"""

from __future__ import annotations

import json
import signal
import threading
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from sandbox.sizes import SIZES

if TYPE_CHECKING:
    from sandbox.runner import SandboxHandle

app = typer.Typer(help="The built-in CRM sandbox (a local HTTPS emulator of Salesforce and HubSpot).",
                  no_args_is_help=True)
console = Console()


def _write_atomic(path: Path, text: str) -> None:
    """Scripts wait for these files to appear: they must never see one half-written."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)


def _write_secret(directory: Path, name: str, value: str) -> Path:
    path = directory / name
    path.write_text(value + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


def sandbox_config(handle: SandboxHandle, secrets_dir: Path, database_url: str) -> dict[str, Any]:
    """An abm.yaml (as a dict) pointing at ``handle``, its secrets written as files in ``secrets_dir``."""
    secrets_dir.mkdir(parents=True, exist_ok=True)
    secrets_dir.chmod(0o700)
    creds = handle.salesforce_credentials
    config: dict[str, Any] = {
        "database": {"url": database_url},
        "salesforce": {
            "enabled": True,
            "login_url": handle.base_url,
            "auth": "client_credentials",
            "client_id": creds.client_id,
            "client_secret_file": str(_write_secret(secrets_dir, "salesforce-client-secret", creds.client_secret)),
            "ca_file": str(handle.ca_path),
        },
    }
    hubspot = getattr(handle, "hubspot_access_token", None)
    if hubspot:
        config["hubspot"] = {
            "enabled": True,
            "base_url": handle.base_url,
            "auth": "private_app",
            "access_token_file": str(_write_secret(secrets_dir, "hubspot-access-token", hubspot)),
            "ca_file": str(handle.ca_path),
            # The sandbox's own allowances (a real portal's 10-second one depends on its tier; its search
            # one is HubSpot's documented 5 a second, which the configuration's default keeps under).
            "requests_per_10s": handle.hubspot_limits.per_ten_seconds,
            "search_requests_per_second": float(handle.hubspot_limits.search_per_second),
        }
    return config


def _describe(handle: SandboxHandle) -> dict[str, Any]:
    creds = handle.salesforce_credentials
    out: dict[str, Any] = {
        "base_url": handle.base_url,
        "ca_file": str(handle.ca_path),
        "salesforce": {
            "instance_url": handle.base_url,
            "token_url": handle.salesforce_token_url,
            "client_id": creds.client_id,
            "client_secret": creds.client_secret,
            "username": creds.username,
            "refresh_token": creds.refresh_token,
            "jwt_private_key": str(creds.jwt_private_key_path),
        },
        "seeded": handle.seeded,
    }
    token = getattr(handle, "hubspot_access_token", None)
    if token:
        out["hubspot"] = {"base_url": handle.base_url, "access_token": token}
    return out


@app.command("serve")
def serve(
    port: int = typer.Option(8443, help="Port on 127.0.0.1 (0 = any free port)."),
    seed: int | None = typer.Option(1, help="Seed of the synthetic org; --no-seed for an empty org."),
    no_seed: bool = typer.Option(False, "--no-seed", help="Start with an empty org."),
    size: str = typer.Option("S", help=f"Org size: {', '.join(SIZES)} (S 500 accounts, M 5k, L 100k)."),
    state: Path | None = typer.Option(None, help="Keep the org in this SQLite file across restarts."),
    directory: Path = typer.Option(Path(".abm/sandbox"), "--dir", help="Where TLS, JWT and secret files go."),
    write_config: Path | None = typer.Option(
        None, help="Write an abm.yaml pointing at this sandbox (secrets as files in --dir)."
    ),
    database_url: str = typer.Option("sqlite:///abm.db", help="Database URL written into --write-config."),
) -> None:
    """Serve the sandbox over HTTPS until interrupted, printing its URLs, CA file and credentials."""
    import yaml

    from sandbox.runner import run_sandbox

    size = size.upper()
    if size not in SIZES:
        raise typer.BadParameter(f"expected one of {', '.join(SIZES)}", param_hint="--size")
    directory.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with ExitStack() as running:
        with console.status(f"Starting the sandbox{'' if no_seed else f' and seeding a size {size} org'}..."):
            handle = running.enter_context(run_sandbox(seed=None if no_seed else seed, size=size, state_path=state,
                                                       port=port, directory=directory))
        info = _describe(handle)
        _write_atomic(directory / "sandbox.json", json.dumps(info, indent=2))
        if write_config is not None:
            config = sandbox_config(handle, directory / "secrets", database_url)
            _write_atomic(write_config, "# Written by `abm sandbox serve`: points abm-sync at the local sandbox.\n"
                          + yaml.safe_dump(config, sort_keys=False))
        console.print(f"[bold green]Sandbox ready[/] at [bold]{handle.base_url}[/] (CA file {handle.ca_path})")
        console.print(f"  Salesforce instance/login URL: {handle.base_url}")
        console.print(f"  Salesforce client id: {info['salesforce']['client_id']}")
        console.print(f"  Salesforce client secret: {info['salesforce']['client_secret']}")
        if "hubspot" in info:
            console.print(f"  HubSpot base URL: {handle.base_url}")
            console.print(f"  HubSpot private-app token: {info['hubspot']['access_token']}")
        if handle.seeded:
            console.print("  Seeded: " + ", ".join(f"{n:,} {obj}" for obj, n in handle.seeded.items()))
        console.print(f"  Everything above, as JSON: {directory / 'sandbox.json'}")
        if write_config is not None:
            console.print(f"  Config for abm-sync: {write_config}  (try: abm --config {write_config} config check)")
        console.print("Press Ctrl-C to stop.")
        stop.wait()
    console.print("Sandbox stopped.")
