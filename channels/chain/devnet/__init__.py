"""The embedded devnet L1: Ed25519 accounts, tokens, blocks and the adjudicator.

``Devnet`` runs in-process; ``open_remote_devnet`` reaches a shared daemon
(``channels devnet start``). Both implement ``channels.chain.base.Ledger``. The remote
client is imported lazily: it pulls in libp2p, which the scheme's users do not need.
"""

from __future__ import annotations

from typing import Any

from .errors import CursorPruned, RateLimited, TooManySubscriptions
from .ledger import DEFAULT_CHAIN_ID, Devnet
from .ops import Status
from .scheme import ADJUDICATOR, DevnetKey, DevnetScheme

__all__ = ["ADJUDICATOR", "DEFAULT_CHAIN_ID", "CursorPruned", "Devnet", "DevnetKey", "DevnetScheme", "RateLimited",
           "RemoteDevnet", "Status", "TooManySubscriptions", "open_remote_devnet", "serve_devnet"]


def __getattr__(name: str) -> Any:
    if name in ("RemoteDevnet", "open_remote_devnet"):
        from . import client

        return getattr(client, name)
    if name == "serve_devnet":
        from .daemon import serve_devnet

        return serve_devnet
    raise AttributeError(name)
