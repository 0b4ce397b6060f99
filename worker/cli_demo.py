"""`abm demo` (behind `make demo`): the whole product against the sandbox, in one command.

It starts the sandbox with a seeded org in both CRMs (kept in ``.abm/`` so it can be reopened),
writes a config pointing at it, brings the SQLite store up to date, creates the custom fields
(`abm init`), runs a full pipeline run, and prints what a rep would see. It ends by saying how
to open the admin page on the same state.
"""

from __future__ import annotations

import secrets
import shutil
import threading
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.rule import Rule

from sandbox.sizes import SIZES

console = Console()


def demo_command(
    size: str = typer.Option("M", help=f"Org size: {', '.join(SIZES)} (M: 5k accounts, 40k people, 200k touches)."),
    seed: int = typer.Option(1, help="Seed of the synthetic org."),
    directory: Path = typer.Option(Path(".abm"), "--dir", help="Where the demo keeps its store, org and config."),
    fresh: bool = typer.Option(True, "--fresh/--reuse", help="Start from a new org and an empty store."),
) -> None:
    """Run the whole pipeline against the built-in sandbox and show what reps would see."""
    from worker.stage_process import start_server_early

    start_server_early(True)  # its imports overlap the seeding (the demo's config keeps stage processes on)
    import yaml

    from config import AbmConfig
    from sandbox.runner import run_sandbox
    from store import migrate
    from store.db import make_engine
    from worker.cli_sandbox import sandbox_config
    from worker.executor import Executor
    from worker.lock import LeaseLock
    from worker.logs import configure_logging
    from worker.pipeline import Pipeline
    from worker.rep_view import print_rep_view
    from worker.stages import build_plan
    from worker.triggers import RunOptions, request_run
    from writeback.connect import provision

    size = size.upper()
    if size not in SIZES:
        raise typer.BadParameter(f"expected one of {', '.join(SIZES)}", param_hint="--size")
    configure_logging("WARNING", "text")  # the demo narrates itself; warnings still show
    if fresh and directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state, store_path, config_path = directory / "sandbox.db", directory / "abm.db", directory / "abm.yaml"
    database_url = f"sqlite:///{store_path}"
    started = time.monotonic()

    def step(text: str) -> float:
        console.print(f"[bold cyan]>[/] {text}")
        return time.monotonic()

    t = step(f"Starting the sandbox and seeding a size {size} org in Salesforce and HubSpot (seed {seed})")
    with run_sandbox(seed=seed, size=size, state_path=state, directory=directory / "sandbox") as handle:
        seeded = handle.seeded
        console.print(f"  {sum(n for k, n in seeded.items() if not k.startswith('hubspot')):,} Salesforce and "
                      f"{sum(n for k, n in seeded.items() if k.startswith('hubspot')):,} HubSpot records "
                      f"in {time.monotonic() - t:.0f} s, at {handle.base_url}")
        settings = sandbox_config(handle, directory / "sandbox" / "secrets", database_url)
        config_path.write_text("# Written by `abm demo`: points abm-sync at the local sandbox.\n"
                               + yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")
        config = AbmConfig.model_validate(settings)

        t = step("Creating the store (SQLite) and the custom fields in both CRMs (abm init)")
        engine = make_engine(database_url)
        migrate.upgrade(engine)
        fields = provision(config, config.chosen_crms(), dry_run=False)
        created = sum(1 for f in fields.fields if f.status == "created")
        console.print(f"  {created} fields created in {time.monotonic() - t:.0f} s")

        t = step("Running the pipeline: pull both CRMs, match people to accounts, score, write back")
        run_id = request_run(engine, RunOptions(full=True), "cli")
        executor = Executor(engine, Pipeline(engine, config, build_plan), LeaseLock(engine), threading.Event())
        state_name = executor.run_queued(run_id)
        console.print(f"  run {run_id} {state_name} in {time.monotonic() - t:.0f} s")

    console.print(Rule("What reps see in their CRM"))
    print_rep_view(engine, run_id, console)
    token_file = directory / "admin-token"
    if not token_file.exists():
        token_file.write_text(secrets.token_urlsafe(24) + "\n", encoding="utf-8")
        token_file.chmod(0o600)
    console.print(Rule("Next"))
    console.print(f"Demo finished in {time.monotonic() - started:.0f} s. To explore the admin page on the same state:")
    console.print(f"  1. .venv/bin/abm sandbox serve --state {state} --dir {directory / 'sandbox'} "
                  f"--write-config {config_path} --database-url {database_url}")
    console.print(f"  2. (another terminal) ABM_ADMIN_TOKEN=$(cat {token_file}) "
                  f".venv/bin/abm --config {config_path} serve")
    console.print(f"  3. open http://127.0.0.1:8765 and sign in with the token in {token_file}")
    if state_name != "succeeded":
        raise typer.Exit(1)
