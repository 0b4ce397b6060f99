"""The configured CA for the Metadata API too.

simple-salesforce sends REST and Bulk 2.0 calls through the requests session it is given, whose
``verify`` is the configured CA file, but its Metadata API client (zeep) builds a session of its own.
Against an org reached through a TLS-inspecting proxy, or against the sandbox, every call but the
Metadata API's would then verify: turning verification off, or a process-wide ``REQUESTS_CA_BUNDLE``,
is not the answer. The client is built on first use, as simple-salesforce does: it parses a 1.5 MB
WSDL (0.7 s), which only provisioning (`abm init`) needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from simple_salesforce import Salesforce
from simple_salesforce.metadata import SfdcMetadataApi


def trust_ca_for_mdapi(mdapi: SfdcMetadataApi, ca_path: Path | str) -> None:
    """Make a Metadata API client verify TLS against ``ca_path`` (zeep ignores ``sf.session``)."""
    zeep_session = mdapi._client.transport.session
    zeep_session.verify = str(ca_path)
    zeep_session.trust_env = False


class CaTrustingSalesforce(Salesforce):
    """simple-salesforce whose ``mdapi``, when first used, verifies against ``ca_path`` as the rest does."""

    def __init__(self, *args: Any, ca_path: Path | str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ca_path = str(ca_path)

    @property
    def mdapi(self) -> SfdcMetadataApi:
        fresh = self._mdapi is None
        api = super().mdapi
        if fresh:
            trust_ca_for_mdapi(api, self._ca_path)
        return api
