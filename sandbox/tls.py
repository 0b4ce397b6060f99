"""TLS for the sandbox: a throwaway local CA (trustme) and a server certificate for 127.0.0.1.

Clients must verify TLS against the sandbox's own CA file (never ``verify=False``), exactly
as they verify a real CRM; the CA only lives as long as the sandbox's directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True)
class TlsFiles:
    ca_path: Path
    cert_path: Path
    key_path: Path


def make_tls_files(directory: Path, hostnames: tuple[str, ...] = ("127.0.0.1", "localhost")) -> TlsFiles:
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="abm-sync sandbox")
    server = ca.issue_cert(*hostnames)
    files = TlsFiles(directory / "sandbox-ca.pem", directory / "server-cert.pem", directory / "server-key.pem")
    ca.cert_pem.write_to_path(str(files.ca_path))
    server.cert_chain_pems[0].write_to_path(str(files.cert_path))
    for extra in server.cert_chain_pems[1:]:
        extra.write_to_path(str(files.cert_path), append=True)
    server.private_key_pem.write_to_path(str(files.key_path))
    files.key_path.chmod(0o600)
    return files
