"""The embedded devnet L1: Ed25519 accounts, tokens, blocks and the adjudicator.

``Devnet`` runs in-process; ``open_remote_devnet`` reaches a shared daemon
(``channels devnet start``). Both implement ``channels.chain.base.Ledger``. Everything
is imported lazily: the client pulls in libp2p, the ledger trio.
"""

from __future__ import annotations

from typing import Any

from .constants import DEFAULT_CHAIN_ID

__all__ = ["ADJUDICATOR", "DEFAULT_CHAIN_ID", "CursorPruned", "Devnet", "DevnetKey", "DevnetScheme", "RateLimited",
           "RemoteDevnet", "Status", "TooManySubscriptions", "open_remote_devnet", "serve_devnet"]


_LAZY = {"CursorPruned": "errors", "RateLimited": "errors", "TooManySubscriptions": "errors", "Devnet": "ledger",
         "Status": "ops", "ADJUDICATOR": "scheme", "DevnetKey": "scheme", "DevnetScheme": "scheme"}


def __getattr__(name: str) -> Any:
    """Everything but the constants is imported on first use: the ledger pulls in trio and
    the client libp2p, which a CLI call that only reads a file does not need."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    if name in ("RemoteDevnet", "open_remote_devnet"):
        from . import client

        return getattr(client, name)
    if name == "serve_devnet":
        from .service import serve_devnet

        return serve_devnet
    raise AttributeError(name)
