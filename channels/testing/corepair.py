"""``CorePair``: two channel cores in one process, their effects relayed by hand.

The frames go through the real wire encoding. It is the harness of the core's own
tests, the in-process demo and the core benchmark, and it is small enough to read.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from ..chain.devnet.scheme import ADJUDICATOR, DevnetKey, DevnetScheme
from ..core import effects as fx
from ..core import inputs as ins
from ..core.app import DEFAULT_APPS, AppRegistry
from ..core.channel import Channel, Env, accept_channel, propose_channel, transition
from ..core.ids import NATIVE, AssetId, PaymentId
from ..core.messages import (
    ChannelProposal,
)
from ..core.state import Allocation, ChannelParams
from ..crypto import sha256
from ..wire import decode_message, encode_message


def receive_input(message: Any) -> ins.Input:
    """The core input for a decoded peer message (``KeyError`` if it is none)."""
    inp = ins.receive(message)
    if inp is None:
        raise KeyError(type(message).__name__)
    return inp


class RecordingScheme(DevnetScheme):
    """The devnet scheme, remembering which version each digest it computed belongs to."""

    def __init__(self) -> None:
        self.versions: dict[bytes, int] = {}
        self.finals: set[bytes] = set()

    def state_digest(self, params: ChannelParams, state: Any) -> bytes:
        digest = super().state_digest(params, state)
        self.versions[digest] = state.version
        if state.is_final:
            self.finals.add(digest)
        return digest


@attrs.define
class Side:
    channel: Channel
    env: Env
    inbox: deque[bytes] = attrs.Factory(deque)
    effects: list[fx.Effect] = attrs.Factory(list)


class CorePair:
    """Two cores, A (index 0) and B (index 1), with an in-memory, hand-driven link."""

    def __init__(self, deposits: Sequence[int] = (1000, 1000), *, asset: AssetId = NATIVE,
                 challenge_duration: int = 60, labels: tuple[str, str] = ("alice", "bob"),
                 app_id: str = "payment", apps: AppRegistry = DEFAULT_APPS) -> None:
        self.keys = [DevnetKey.from_label(label) for label in labels]
        self.scheme = RecordingScheme()
        self.signed_log: list[tuple[int, bytes]] = []  # (side, digest) of every signature made
        envs = [Env(scheme=self.scheme, signer=_LoggingSigner(k, i, self), apps=apps)
                for i, k in enumerate(self.keys)]
        self.params = ChannelParams(chain_id=1337, adjudicator=ADJUDICATOR,
                                    participants=tuple(k.address for k in self.keys),
                                    challenge_duration=challenge_duration, nonce=sha256("/".join(labels).encode()),
                                    app_id=app_id)
        self.allocation = Allocation(assets=(asset,), balances=(tuple(deposits),))
        self.asset = asset
        self.now = 0
        self._ids = itertools.count()
        a, out_a = propose_channel(self.params, self.allocation, env=envs[0])
        sent = out_a[0]
        assert isinstance(sent, fx.Send)
        proposal = decode_message(encode_message(sent.message))  # through the real wire encoding
        assert isinstance(proposal, ChannelProposal)
        b, out_b = accept_channel(proposal, env=envs[1])
        self.sides = [Side(channel=a, env=envs[0]), Side(channel=b, env=envs[1])]
        self._route(1, out_b)
        self.deliver_all()
        for side in self.sides:
            self.apply(self.sides.index(side), ins.ChainDeposited(asset=asset, holdings=sum(deposits)))

    # -- driving
    def apply(self, i: int, inp: ins.Input) -> list[fx.Effect]:
        side = self.sides[i]
        side.channel, out = transition(side.channel, inp, now=self.now, env=side.env)
        self._route(i, out)
        return out

    def propose(self, i: int, operation: Any) -> list[fx.Effect]:
        """Side ``i`` queues a lock, lock settlement or app move."""
        return self.apply(i, ins.ActionPropose(operation=operation))

    def pay(self, i: int, amount: int) -> PaymentId:
        pid = PaymentId(next(self._ids).to_bytes(8, "big"))
        self.apply(i, ins.ActionPay(payment_id=pid, asset=self.asset, amount=amount))
        return pid

    def _route(self, i: int, out: Iterable[fx.Effect]) -> None:
        for effect in out:
            if isinstance(effect, fx.Send):
                self.sides[1 - i].inbox.append(encode_message(effect.message))
            else:
                self.sides[i].effects.append(effect)

    def deliver(self, i: int) -> list[fx.Effect]:
        """Deliver the oldest frame waiting for side ``i``."""
        frame = self.sides[i].inbox.popleft()
        return self.apply(i, receive_input(decode_message(frame)))

    def deliver_all(self, limit: int = 100_000) -> None:
        for _ in range(limit):
            pending = [i for i in (0, 1) if self.sides[i].inbox]
            if not pending:
                return
            self.deliver(pending[0])
        raise RuntimeError("the pair did not go quiet")

    def reconnect(self) -> None:
        """Drop frames in flight and run the reestablish exchange."""
        for side in self.sides:
            side.inbox.clear()
        for i in (0, 1):
            self.apply(i, ins.ActionReconnect())

    # -- looking
    def channel(self, i: int) -> Channel:
        return self.sides[i].channel

    def balances(self, i: int) -> tuple[int, ...]:
        return self.sides[i].channel.allocation.balances[0]

    def signed_versions(self, i: int) -> dict[int, set[bytes]]:
        """Every version side ``i`` ever signed, with the digests it signed there."""
        out: dict[int, set[bytes]] = {}
        for side, digest in self.signed_log:
            if side == i:
                out.setdefault(self.scheme.versions[digest], set()).add(digest)
        return out

    def signed_in_order(self, i: int) -> list[tuple[int, bool]]:
        """(version, is_final) of every signature side ``i`` made, in order."""
        return [(self.scheme.versions[d], d in self.scheme.finals) for side, d in self.signed_log if side == i]

    def notified(self, i: int, kind: type) -> list[Any]:
        return [e for e in self.sides[i].effects if isinstance(e, kind)]


@attrs.frozen
class _LoggingSigner:
    key: DevnetKey
    side: int
    pair: CorePair

    @property
    def address(self) -> Any:
        return self.key.address

    def sign_digest(self, digest: bytes) -> bytes:
        self.pair.signed_log.append((self.side, digest))
        return self.key.sign_digest(digest)
