"""Shared helpers of the devnet tests: keys, channels, signed states, a turn-based test app."""

from __future__ import annotations

import struct
from collections.abc import Sequence

import attrs

from channels.chain.devnet.scheme import ADJUDICATOR, DevnetKey, DevnetScheme
from channels.core.app import DEFAULT_APPS, check_common
from channels.core.ids import NATIVE, AssetId, Version
from channels.core.state import Allocation, ChannelParams, Lock, SignedState, State
from channels.crypto import sha256
from channels.errors import InvalidTransition

SCHEME = DevnetScheme()
CHAIN_ID = 1337


def keys(*labels: str) -> list[DevnetKey]:
    return [DevnetKey.from_label(label) for label in labels]


def make_params(parties: Sequence[DevnetKey], *, duration: int = 100, app_id: str = "payment",
                nonce: bytes = b"n", chain_id: int = CHAIN_ID, adjudicator: bytes = ADJUDICATOR) -> ChannelParams:
    return ChannelParams(chain_id=chain_id, adjudicator=adjudicator, participants=tuple(k.address for k in parties),
                         challenge_duration=duration, nonce=sha256(nonce), app_id=app_id)


def make_state(params: ChannelParams, version: int, balances: Sequence[int], *, asset: AssetId = NATIVE,
               locks: Sequence[Lock] = (), final: bool = False, app_data: bytes = b"") -> State:
    alloc = Allocation(assets=(asset,), balances=(tuple(balances),), locks=tuple(locks))
    return State(channel_id=params.channel_id, version=Version(version), allocation=alloc, app_data=app_data,
                 is_final=final)


def sign_all(params: ChannelParams, state: State, parties: Sequence[DevnetKey]) -> SignedState:
    return SignedState(state=state, signatures=tuple(SCHEME.sign(k, params, state) for k in parties))


def signed(params: ChannelParams, parties: Sequence[DevnetKey], version: int, balances: Sequence[int],
           **kw: object) -> SignedState:
    return sign_all(params, make_state(params, version, balances, **kw), parties)  # type: ignore[arg-type]


@attrs.frozen
class CounterApp:
    """A turn-based test game: app_data is a u64 counter; the player to move (version % n)
    adds 1 and pays the other player 1 coin. Anything else is an invalid move."""

    app_id = "test-counter"

    def validate_transition(self, params: ChannelParams, prev: State, next: State, mover: int) -> None:
        check_common(params, prev, next)
        if mover != prev.version % len(params.participants):
            raise InvalidTransition("not your turn")
        if counter(next) != counter(prev) + 1:
            raise InvalidTransition("the counter must go up by one")
        expect = prev.allocation.with_transfer(prev.allocation.assets[0], 1, mover, 1 - mover)
        if next.allocation != expect:
            raise InvalidTransition("the mover pays one coin")


def counter(state: State) -> int:
    return int(struct.unpack(">Q", state.app_data)[0])


def counter_data(n: int) -> bytes:
    return struct.pack(">Q", n)


TEST_APPS = DEFAULT_APPS.with_apps(CounterApp())  # handed to every devnet of the tests
