"""Typed identifiers: a ChannelId is never confused with an Address by a type checker."""

from __future__ import annotations

from typing import NewType

ChannelId = NewType("ChannelId", bytes)  # 32 bytes, derived from ChannelParams
Address = NewType("Address", bytes)  # an L1 account: 32-byte Ed25519 public key on devnet
AssetId = NewType("AssetId", str)  # "native" or a token symbol known to the ledger
Version = NewType("Version", int)  # state version, strictly increasing per channel
PeerId = NewType("PeerId", str)  # libp2p peer id (base58)
PaymentId = NewType("PaymentId", bytes)  # caller-chosen, unique per payer

NATIVE = AssetId("native")
MAX_U64 = 2**64 - 1
MAX_AMOUNT = 2**256 - 1  # amounts, balances and totals: an EVM uint256 (proto/02 section 4)
