"""Shared helpers of the tower tests: two parties, their channel, co-signed states, a tower."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from channels.chain.base import ChainEvent
from channels.chain.devnet.scheme import ADJUDICATOR, DevnetKey
from channels.core.ids import NATIVE, ChannelId
from channels.core.state import ChannelParams, Lock, SignedState
from channels.crypto import sha256
from channels.watchtower.appointment import Appointment
from channels.watchtower.core import Limits, MemoryRecords, Rate, Tower
from tests.devnet.devnet_util import CHAIN_ID, SCHEME, make_params, make_state, sign_all

ALICE, BOB = DevnetKey.from_label("tower-alice"), DevnetKey.from_label("tower-bob")
TOWER_KEY = DevnetKey.from_label("the-tower")
TOTAL = 1_000
UNLIMITED_RATE = Rate(per_second=1e9, burst=1e9)

__all__ = ["ALICE", "BOB", "CHAIN_ID", "SCHEME", "TOTAL", "TOWER_KEY", "appointment", "channel", "event",
           "lock", "make_tower", "preimage", "signed"]


def channel(nonce: bytes = b"c1", *, duration: int = 100, app_id: str = "payment", **kw: Any) -> ChannelParams:
    return make_params([ALICE, BOB], duration=duration, app_id=app_id, nonce=nonce, **kw)


def preimage(name: str) -> bytes:
    return sha256(b"preimage/" + name.encode())


def lock(name: str, *, expiry: int, amount: int = 10, payer: int = 1, payee: int = 0) -> Lock:
    return Lock(asset=NATIVE, amount=amount, hashlock=sha256(preimage(name)), expiry=expiry, payer=payer,
                payee=payee, lock_id=name.encode())


def signed(params: ChannelParams, version: int, *, to_alice: int | None = None, locks: Sequence[Lock] = (),
           app_data: bytes = b"", final: bool = False) -> SignedState:
    """Version ``version``: alice holds ``to_alice`` (default: ``version``), bob the rest minus locks."""
    alice = version if to_alice is None else to_alice
    bob = TOTAL - alice - sum(lk.amount for lk in locks)
    state = make_state(params, version, [alice, bob], locks=locks, app_data=app_data, final=final)
    return sign_all(params, state, [ALICE, BOB])


def appointment(params: ChannelParams, version: int, *, preimages: Sequence[bytes] = (),
                **kw: Any) -> Appointment:
    return Appointment(params=params, signed=signed(params, version, **kw), preimages=tuple(preimages))


def make_tower(records: MemoryRecords | None = None, **limits: Any) -> Tower:
    limits.setdefault("client_rate", UNLIMITED_RATE)
    limits.setdefault("total_rate", UNLIMITED_RATE)
    return Tower(signer=TOWER_KEY, scheme=SCHEME, chain_id=CHAIN_ID, adjudicator=ADJUDICATOR,
                 records=records if records is not None else MemoryRecords(), limits=Limits(**limits))


def event(kind: str, cid: ChannelId | None, *, cursor: int = 1, time: int = 1_000, **data: Any) -> ChainEvent:
    return ChainEvent(cursor=cursor, kind=kind, channel_id=cid, data=data, height=cursor, time=time)


def registered(params: ChannelParams, state: SignedState, *, deadline: int, kind: str = "Registered",
               cursor: int = 1, time: int = 1_000) -> ChainEvent:
    return event(kind, params.channel_id, cursor=cursor, time=time, version=state.state.version, deadline=deadline,
                 registrar=ALICE.address, state=state)
