"""A small org in both sandbox CRMs, fields provisioned, and an abm.yaml pointing at it.

Shared by the tests that run the whole product (tests/test_worker_e2e.py, the admin page's
browser test): the same org and config they would get from `abm sandbox serve --write-config`
followed by `abm init`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from config import AbmConfig
from sandbox.runner import SandboxHandle, run_sandbox
from sandbox.seed_plan import OrgSize
from writeback.connect import provision

TINY = OrgSize(accounts=60, leads=150, contacts=150, activities=2500)


@contextmanager
def provisioned_crm(directory: Path, seed: int = 5) -> Iterator[tuple[SandboxHandle, Path]]:
    """Both CRMs seeded with ``TINY``, the custom fields created, and ``directory/abm.yaml``."""
    with run_sandbox(seed=seed, size=TINY) as handle:
        secret, token = directory / "sf-secret", directory / "hs-token"
        secret.write_text(handle.salesforce_credentials.client_secret)
        token.write_text(handle.hubspot_access_token)
        settings = {
            "salesforce": {"enabled": True, "login_url": handle.base_url, "ca_file": str(handle.ca_path),
                           "client_id": handle.salesforce_credentials.client_id,
                           "client_secret_file": str(secret)},
            "hubspot": {"enabled": True, "base_url": handle.base_url, "ca_file": str(handle.ca_path),
                        "access_token_file": str(token)},
            "scoring": {"predictive": {"enabled": False}},  # thin history; predictive has its own tests
            "worker": {"lease_seconds": 5},
        }
        path = directory / "abm.yaml"
        path.write_text(yaml.safe_dump(settings))
        provision(AbmConfig.model_validate(settings), ["salesforce", "hubspot"], dry_run=False)
        yield handle, path


def config_for(path: Path, database_url: str) -> AbmConfig:
    """The config at ``path`` with the store at ``database_url``."""
    return AbmConfig.model_validate({**yaml.safe_load(path.read_text()), "database": {"url": database_url}})
