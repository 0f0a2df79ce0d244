"""The composition root: builds every long-lived object once and wires the ASGI app.

One module per concern: ``keys`` (signing keys, hashing, the outbound guard),
``storage`` (the database and column encryption), ``observability`` (audit, alerts,
SIEM), ``identity`` (DPoP, external OpenID Providers), ``services`` (everything built
once per process), ``lifespan`` (start-up, background tasks, shutdown), ``api`` (the
FastAPI application) and ``asgi`` (the guards around it).
"""

from bastion.app.api import create_api
from bastion.app.asgi import Bastion, create_app, guarded, transport_guards
from bastion.app.identity import (
    dpop_nonces,
    dpop_replay_store,
    dpop_validator,
    external_identities,
)
from bastion.app.keys import (
    key_store,
    outbound_guard,
    rotation_policy,
    secret_hasher,
    signing_keys,
)
from bastion.app.observability import audit_log, checkpoints, log_ip, monitoring
from bastion.app.services import build_services
from bastion.app.storage import column_cipher, database, key_source

__all__ = [
    "Bastion",
    "audit_log",
    "build_services",
    "checkpoints",
    "column_cipher",
    "create_api",
    "create_app",
    "database",
    "dpop_nonces",
    "dpop_replay_store",
    "dpop_validator",
    "external_identities",
    "guarded",
    "key_source",
    "key_store",
    "log_ip",
    "monitoring",
    "outbound_guard",
    "rotation_policy",
    "secret_hasher",
    "signing_keys",
    "transport_guards",
]
