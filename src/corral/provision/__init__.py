"""Declarative model provisioning: the models a server must have, pulled or created at start-up
(``CORRAL_PROVISION`` file, ``CORRAL_PULL`` names) or once by ``corral provision FILE``.

The server is live at once and provisions in the background; readiness follows the
:class:`Provisioner` through :func:`readiness_listener` (503 with the model in progress and how
far, 200 once every required model is there). See :mod:`corral.provision.spec` for the file.
"""

from __future__ import annotations

from typing import Any, Protocol

from corral.provision.backend import STATE_FILE, ServerBackend, StoreBackend, offline_backend
from corral.provision.runner import Backend, EntryStatus, Listener, Provisioner, is_transient
from corral.provision.spec import (
    ModelEntry,
    ProvisionError,
    ProvisionPlan,
    RetryPolicy,
    load_plan,
    parse_plan,
)

__all__ = [
    "STATE_FILE",
    "Backend",
    "EntryStatus",
    "ModelEntry",
    "ProvisionError",
    "ProvisionPlan",
    "Provisioner",
    "ReadinessSink",
    "RetryPolicy",
    "ServerBackend",
    "StoreBackend",
    "is_transient",
    "load_plan",
    "offline_backend",
    "parse_plan",
    "readiness_listener",
]


class ReadinessSink(Protocol):
    """What the server's readiness probe state offers (``corral.api.health.Readiness``)."""

    def set_ready(self) -> None: ...

    def set_waiting(self, reason: str, **detail: Any) -> None: ...


def readiness_listener(sink: ReadinessSink) -> Listener:
    """Ready once every required model is done; else the reason and the progress report."""

    def update(provisioner: Provisioner) -> None:
        if provisioner.required_done:
            sink.set_ready()
        else:
            sink.set_waiting(provisioner.reason(), **provisioner.report())

    return update
