"""``CoreGroup``: n channel cores (n >= 3) in one process, their effects relayed by hand.

The n-party counterpart of ``CorePair`` (proto/02 section 13): one queue of frames per
ordered pair of participants, through the real wire encoding, so a test decides exactly
which frame is delivered, dropped or held back, and when a core restarts from its record.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Sequence
from typing import Any

import attrs

from ..chain.devnet.scheme import ADJUDICATOR, DevnetKey
from ..core import effects as fx
from ..core import inputs as ins
from ..core.app import AppRegistry
from ..core.channel import Channel, Env, accept_channel, propose_channel, transition
from ..core.ids import NATIVE
from ..core.messages import ChannelProposal
from ..core.ops import AppMove
from ..core.state import Allocation, ChannelParams
from ..crypto import sha256
from ..encoding import encode
from ..wire import decode_message, encode_message
from .corepair import RecordingScheme


@attrs.define
class Member:
    env: Env
    channel: Channel | None = None
    effects: list[fx.Effect] = attrs.Factory(list)  # everything but sends, in order


class CoreGroup:
    """n cores; participant ``i`` is ``members[i]``. Participant 0 opens the channel."""

    def __init__(self, deposits: Sequence[int], *, app_id: str, apps: AppRegistry,
                 challenge_duration: int = 60, label: str = "group") -> None:
        self.n = len(deposits)
        self.keys = [DevnetKey.from_label(f"{label}-{i}") for i in range(self.n)]
        self.scheme = RecordingScheme()
        self.signed_log: list[tuple[int, bytes]] = []  # (participant, digest) of every signature made
        self.members = [Member(env=Env(scheme=self.scheme, signer=_LoggingSigner(k, i, self), apps=apps))
                        for i, k in enumerate(self.keys)]
        self.params = ChannelParams(chain_id=1337, adjudicator=ADJUDICATOR,
                                    participants=tuple(k.address for k in self.keys),
                                    challenge_duration=challenge_duration, nonce=sha256(label.encode()),
                                    app_id=app_id)
        self.allocation = Allocation(assets=(NATIVE,), balances=(tuple(deposits),))
        self.queues: dict[tuple[int, int], deque[bytes]] = {
            (i, j): deque() for i in range(self.n) for j in range(self.n) if i != j}
        self.now = 0
        self.rejects: list[tuple[int, fx.Reject]] = []
        self.sent: list[tuple[int, int | None, bytes]] = []  # (sender, to: None = every other, frame)
        self._ids = itertools.count()

    # ------------------------------------------------------------- plumbing

    def channel(self, i: int) -> Channel:
        ch = self.members[i].channel
        assert ch is not None, f"participant {i} holds no channel"
        return ch

    def _emit(self, i: int, effects: list[fx.Effect]) -> None:
        for e in effects:
            if isinstance(e, fx.Send):
                frame = encode_message(e.message)
                self.sent.append((i, e.to, frame))
                for j in ([e.to] if e.to is not None else [j for j in range(self.n) if j != i]):
                    self.queues[(i, j)].append(frame)
            elif isinstance(e, fx.Reject):
                self.rejects.append((i, e))
                self.members[i].effects.append(e)
            else:
                self.members[i].effects.append(e)

    def apply(self, i: int, inp: ins.Input) -> list[fx.Effect]:
        """Apply one input to participant ``i`` and queue what it sends."""
        ch, effects = transition(self.channel(i), inp, now=self.now, env=self.members[i].env)
        self.members[i].channel = ch
        self._emit(i, effects)
        return effects

    def deliver(self, src: int, dst: int) -> list[fx.Effect]:
        """Deliver the oldest frame from ``src`` to ``dst``; returns what ``dst`` did."""
        message = decode_message(self.queues[(src, dst)].popleft())
        member = self.members[dst]
        if isinstance(message, ChannelProposal):
            if member.channel is not None:
                return self.apply(dst, ins.ActionReconnect(peer=src))
            member.channel, effects = accept_channel(message, env=member.env, proposer=src)
            self._emit(dst, effects)
            return effects
        if member.channel is None:
            return []  # a frame for a channel this core does not know yet is dropped, as by a node
        inp = ins.receive(message, sender=src)
        assert inp is not None, type(message).__name__
        return self.apply(dst, inp)

    def drop(self, src: int, dst: int) -> bytes:
        return self.queues[(src, dst)].popleft()

    def run(self, limit: int = 10_000) -> None:
        """Deliver every queued frame, round robin, until none is left."""
        for _ in range(limit):
            busy = [pair for pair, q in self.queues.items() if q]
            if not busy:
                return
            for src, dst in busy:
                if self.queues[(src, dst)]:
                    self.deliver(src, dst)
        raise AssertionError("the cores kept talking")

    def restart(self, i: int) -> None:
        """Participant ``i`` restarts from its stored record (frames in flight to it are lost)."""
        from ..store.records import channel_from_bytes, channel_to_bytes

        self.members[i].channel = channel_from_bytes(channel_to_bytes(self.channel(i)))
        for j in range(self.n):
            if j != i:
                self.queues[(j, i)].clear()
                self.queues[(i, j)].clear()

    # ------------------------------------------------------------- scenarios

    def open(self) -> None:
        """Propose, accept, deposit: every core ends OPEN."""
        ch, effects = propose_channel(self.params, self.allocation, env=self.members[0].env)
        self.members[0].channel = ch
        self._emit(0, effects)
        self.run()
        self.fund()

    def fund(self) -> None:
        """Every participant's deposit lands on the L1 and every core sees each one."""
        held = 0
        for j in range(self.n):
            amount = self.allocation.balances[0][j]
            held += amount
            for i in range(self.n):
                self.apply(i, ins.ChainDeposited(asset=NATIVE, holdings=held, amount=amount, ours=i == j))

    def move(self, i: int, value: Any) -> list[fx.Effect]:
        """Participant ``i`` queues an app move (its payload: the encoded ``value``)."""
        op = AppMove(move_id=b"m%d" % next(self._ids), payload=encode(value))
        return self.apply(i, ins.ActionPropose(operation=op))

    def versions(self) -> list[int]:
        return [self.channel(i).version for i in range(self.n)]

    def signed_twice(self) -> list[tuple[int, int]]:
        """(participant, version) pairs at which a participant signed two different states."""
        seen: dict[tuple[int, int], set[bytes]] = {}
        for who, digest in self.signed_log:
            seen.setdefault((who, self.scheme.versions[digest]), set()).add(digest)
        return sorted(key for key, digests in seen.items() if len(digests) > 1)


@attrs.frozen
class _LoggingSigner:
    key: DevnetKey
    who: int
    group: CoreGroup

    @property
    def address(self) -> Any:
        return self.key.address

    def sign_digest(self, digest: bytes) -> bytes:
        self.group.signed_log.append((self.who, digest))
        return self.key.sign_digest(digest)
