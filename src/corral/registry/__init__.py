"""Model registries: pull and push, by source (OCI distribution v2; Hugging Face by prefix).

Sits beside ``store/`` and imports nothing above it. One module per concern:
``sources`` (name -> source and URL), ``credentials`` (``corral login``), ``auth`` (basic and
bearer challenges), ``oci`` (the protocol), ``download`` (resumable verified blob download),
``pull`` and ``push`` (orchestration), ``service`` (what the API holds).
"""

from corral.registry.credentials import Credential, CredentialStore
from corral.registry.download import DownloadOptions
from corral.registry.progress import Progress
from corral.registry.service import RegistryService

__all__ = ["Credential", "CredentialStore", "DownloadOptions", "Progress", "RegistryService"]
