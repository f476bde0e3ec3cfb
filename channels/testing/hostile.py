"""A scriptable hostile peer: a real libp2p host that speaks the channel protocol, or not.

Why: a node's defences (limits, timeouts, refusals, "never sign twice") are only
proven once something attacks it over a real transport. ``HostilePeer`` has its
own libp2p identity and its own devnet L1 key. It can play an honest counterparty
with the pure core (open a funded channel, pay, countersign) and deviate at any
point: send any frame, skip or forge ``Init``, flood, replay, stop answering, or
answer through a ``policy`` hook instead of the core.

    async with open_remote_devnet(addr) as ledger, open_hostile_peer(ledger=ledger) as peer:
        await peer.fund(10_000)
        await peer.connect(victim_multiaddr)
        cid = await peer.open_channel(1_000)
        await peer.pay(cid, 600)
        peer.policy = reject_updates(retry=True)   # from now on, refuse everything

Every wait takes a timeout: a victim that stays silent fails a test, it never hangs it.
The peer does not watch the L1 by itself; L1 moves are explicit (``fund``,
``register_stale``, ``withdraw``; deposits are made when a channel is accepted).
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio

from ..chain.base import AlreadyWithdrawn, Ledger
from ..chain.devnet.scheme import ADJUDICATOR, DevnetKey, DevnetScheme
from ..core import effects as fx
from ..core import inputs as ins
from ..core.channel import Channel, Env, Phase, accept_channel, propose_channel, transition
from ..core.ids import NATIVE, Address, AssetId, ChannelId, PaymentId, Version
from ..core.messages import ChannelAccept, ChannelDecline, ChannelProposal, Init, UpdateProposal, UpdateReject
from ..core.ops import Payment
from ..core.state import Allocation, ChannelParams, SignedState, State
from ..encoding import MAX_FRAME, encode
from ..errors import ChannelsError, DecodeError, LedgerError, LocalProtocolError, sole_error
from ..net import Host, Stream, open_host
from ..node.identity import init_digest
from ..wire import PROTOCOL_CHANNEL, decode_message, encode_message

__all__ = ["Declined", "HostilePeer", "HostileStream", "NoMessage", "Policy", "Received", "open_hostile_peer",
           "open_hostile_peers", "reject_updates"]

log = logging.getLogger("channels.testing.hostile")

# Our own frames may exceed the protocol's 64 KiB cap on purpose (to test the victim's).
SEND_CAP = 16 * MAX_FRAME
RESEND_AFTER = 1.0  # seconds an honest update waits before it is sent again (the reference's resync)

# ``policy(message)`` sees every decoded message from the victim before the honest
# answer: it returns the frames to send instead (``[]``: say nothing), or ``None``
# to let the honest core answer.
Policy = Callable[[Any], list[bytes] | None]


class NoMessage(TimeoutError):
    """The victim did not send the awaited message in time."""


class Declined(ChannelsError):
    """The victim declined our channel proposal; the message is its reason."""


@attrs.frozen
class Received:
    """One frame the victim sent us, with its decoding (``message`` None: odd type or undecodable)."""

    index: int
    frame: bytes
    message: Any
    error: str | None
    at: float  # trio.current_time() on arrival
    stream: int  # which of the victim's streams to us (0, 1, ... in opening order)


class HostileStream:
    """One channel stream we opened to the victim; remembers what we sent on it.

    The victim never writes on our stream (it answers on its own), so reading it
    only tells when the victim closed or reset it."""

    def __init__(self, stream: Stream, nursery: trio.Nursery) -> None:
        self.raw = stream
        self.sent: list[bytes] = []
        self.closed_at: float | None = None
        self._closed = trio.Event()
        nursery.start_soon(self._watch)

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    async def send_raw(self, frame: bytes) -> None:
        await self.raw.send(frame)
        self.sent.append(frame)

    async def wait_closed(self, timeout: float) -> bool:
        """True once the victim (or we) ended the stream; False if still open after ``timeout``."""
        with trio.move_on_after(timeout):
            await self._closed.wait()
        return self.closed

    async def reset(self) -> None:
        await self.raw.reset()

    async def _watch(self) -> None:
        try:
            while True:
                await self.raw.receive()
        except ChannelsError:
            pass
        finally:
            self.closed_at = trio.current_time()
            self._closed.set()


class HostilePeer:
    """A peer whose every move is scripted. Create it with ``open_hostile_peer``.

    ``inbox`` holds every frame the victim sent, ``stream`` is our outbound stream
    (``sent`` its frames, for ``replay``), ``channels`` our core view of each channel
    and ``signed`` every state both sides signed (for ``register_stale``)."""

    def __init__(self, host: Host, ledger: Ledger, l1_key: DevnetKey, chain_id: int, nursery: trio.Nursery) -> None:
        self.host = host
        self.ledger = ledger
        self.l1_key = l1_key
        self.chain_id = chain_id
        self.adjudicator: bytes = bytes(getattr(ledger, "adjudicator", ADJUDICATOR))
        self.env = Env(scheme=DevnetScheme(), signer=l1_key)
        self.now = 0  # L1 time handed to the core (only deadlines use it; refreshed by open_channel)
        self.remote: str | None = None  # the victim's peer id
        self.remote_init: Init | None = None  # the victim's latest Init
        self.stream: HostileStream | None = None
        self.inbox: list[Received] = []
        self.inbound: list[float] = []  # when each of the victim's streams to us opened (dials back)
        self.channels: dict[ChannelId, Channel] = {}
        self.signed: dict[ChannelId, dict[int, SignedState]] = {}
        self.payments: dict[bytes, str] = {}  # our payment id -> "sent" or "failed: reason"
        self.policy: Policy | None = None
        self.honest = True  # answer through the core when no policy took the message
        self.withholding = False
        self._nursery = nursery
        self._taken: set[int] = set()
        self._arrived = trio.Event()
        self._changed = trio.Event()

    # ------------------------------------------------------------------ identity

    @property
    def peer_id(self) -> str:
        return self.host.peer_id

    @property
    def addresses(self) -> list[str]:
        return self.host.addresses

    @property
    def l1_address(self) -> Address:
        return self.l1_key.address

    @property
    def sent(self) -> list[bytes]:
        """Frames sent on our current outbound stream, ``Init`` included."""
        return self.stream.sent if self.stream is not None else []

    async def fund(self, amount: int, asset: AssetId = NATIVE) -> int:
        """Take ``amount`` from the devnet faucet (at most 2**64 - 1 per call); return the balance."""
        faucet = getattr(self.ledger, "faucet", None)
        if faucet is None:
            raise LocalProtocolError("this ledger has no faucet")
        return int(await faucet(self.l1_address, amount, asset))

    # ------------------------------------------------------------------ streams

    def init_message(self, *, sign_with: DevnetKey | None = None, signed_peer_id: str | None = None,
                     **overrides: Any) -> Init:
        """Our ``Init``, valid unless told otherwise.

        ``overrides`` replace fields (``l1_address``, ``chain_id``, ``addresses``,
        ``signature``). Unless ``signature`` is given, the Init is signed by
        ``sign_with`` (default: our L1 key) over ``signed_peer_id`` (default: ours)
        and the Init's chain id: so ``chain_id=7`` is a genuine Init of chain 7,
        ``l1_address=victim`` claims a foreign account we cannot sign for."""
        fields: dict[str, Any] = {"l1_address": self.l1_address, "chain_id": self.chain_id,
                                  "addresses": tuple(self.addresses[:8])}
        fields.update(overrides)
        if "signature" not in fields:
            digest = init_digest(signed_peer_id or self.peer_id, fields["chain_id"])
            fields["signature"] = (sign_with or self.l1_key).sign_digest(digest)
        return Init(**fields)

    async def connect(self, address: str, *, init: bool = True) -> str:
        """Dial the victim and open our channel stream; send a valid ``Init`` unless ``init=False``."""
        self.remote = await self.host.connect(address)
        self.stream = await self.open_stream(init=init)
        return self.remote

    async def open_stream(self, *, init: bool = False, **init_overrides: Any) -> HostileStream:
        """Open one more channel stream to the victim (not our main one), by default without ``Init``."""
        if self.remote is None:
            raise LocalProtocolError("connect() first")
        stream = HostileStream(await self.host.open_stream(self.remote, PROTOCOL_CHANNEL), self._nursery)
        if init:
            await stream.send_raw(encode_message(self.init_message(**init_overrides)))
        return stream

    async def reconnect(self, *, init: bool = True) -> None:
        """Open a fresh main stream (an honest peer does so after the victim restarted)."""
        if self.remote is None:
            raise LocalProtocolError("connect() first")
        self.stream = await self.open_stream(init=init)

    async def send_init(self, **overrides: Any) -> None:
        """Send an ``Init`` on the main stream (see ``init_message`` for the overrides)."""
        await self.send(self.init_message(**overrides))

    async def disconnect(self) -> None:
        """Close every connection to the victim (its streams to us end too)."""
        if self.remote is not None:
            await self.host.disconnect(self.remote)

    # ------------------------------------------------------------------ sending

    async def send(self, message: Any) -> None:
        """Send any message object of ``channels.core.messages``."""
        await self.send_raw(encode_message(message))

    async def send_raw(self, frame: bytes) -> None:
        """Send one frame's payload on the main stream, as is (it may break every rule, and the
        64 KiB cap). A victim that dialed us first gets a main stream, with ``Init``, on demand."""
        if self.stream is None:
            await self.reconnect()
        assert self.stream is not None
        await self.stream.send_raw(frame)

    async def send_fields(self, type_id: int, fields: Sequence[Any]) -> None:
        """Send ``[type_id, *fields]`` with whatever values, unchecked (wrong kinds, counts, ids)."""
        await self.send_raw(encode([type_id, *fields], validate=False))

    async def flood(self, frame: bytes, count: int) -> None:
        """Send ``frame`` ``count`` times, as fast as the stream takes them."""
        for _ in range(count):
            await self.send_raw(frame)

    async def replay(self, index: int) -> None:
        """Send again the ``index``-th frame of ``sent`` (0 is our ``Init``)."""
        await self.send_raw(self.sent[index])

    def withhold(self, on: bool = True) -> None:
        """Stop answering (frames are still read and recorded), or answer again."""
        self.withholding = on

    # ------------------------------------------------------------------ receiving

    async def received(self, *, timeout: float, since: int = 0) -> AsyncIterator[Received]:
        """Every frame from the victim (from ``inbox[since]`` on) as it arrives, for ``timeout`` seconds."""
        deadline = trio.current_time() + timeout
        i = since
        while True:
            while i < len(self.inbox):
                yield self.inbox[i]
                i += 1
            with trio.move_on_at(deadline):
                await self._arrived.wait()
            if trio.current_time() >= deadline:
                return

    async def next_message(self, kind: type | tuple[type, ...], *, timeout: float = 10.0,
                           where: Callable[[Any], bool] | None = None, since: int = 0) -> Any:
        """The oldest message of ``kind`` (and ``where``, from ``inbox[since]`` on) not returned
        before; ``NoMessage`` after ``timeout``."""
        with trio.move_on_after(timeout):
            while True:
                for r in self.inbox[since:]:
                    if r.index not in self._taken and isinstance(r.message, kind) and (where is None
                                                                                       or where(r.message)):
                        self._taken.add(r.index)
                        return r.message
                await self._arrived.wait()
        got = ", ".join(type(r.message).__name__ if r.message is not None else f"<{r.error}>"
                        for r in self.inbox[-12:]) or "nothing"
        raise NoMessage(f"no {getattr(kind, '__name__', kind)} from the victim within {timeout} s; "
                        f"latest frames: {got}")

    def messages(self, kind: type | tuple[type, ...], *, since: int = 0) -> list[Any]:
        """Every message of ``kind`` received so far."""
        return [r.message for r in self.inbox[since:] if isinstance(r.message, kind)]

    async def victim_init(self, timeout: float = 10.0) -> Init:
        """The victim's ``Init`` (it opens its stream to us once it accepted ours)."""
        if self.remote_init is None:
            await self.next_message(Init, timeout=timeout)
        assert self.remote_init is not None
        return self.remote_init

    async def _serve(self, stream: Stream) -> None:
        """One stream the victim opened to us: its ``Init``, then its messages."""
        number = len(self.inbound)
        self.inbound.append(trio.current_time())
        self.remote = self.remote or stream.remote_peer_id
        try:
            if self.stream is not None and self.stream.closed and self.honest and not self.withholding:
                await self.reconnect()  # the victim came back (a restart): so do we
            while True:
                record = self._record(await stream.receive(), number)
                if isinstance(record.message, Init):
                    self.remote_init = record.message
                elif record.message is not None:
                    await self._react(record.message)
        except ChannelsError as exc:
            log.debug("stream %d from the victim ended: %s", number, exc)

    def _record(self, frame: bytes, stream: int) -> Received:
        try:
            message, error = decode_message(frame), None
        except DecodeError as exc:
            message, error = None, f"{type(exc).__name__}: {exc}"
        record = Received(index=len(self.inbox), frame=frame, message=message, error=error,
                          at=trio.current_time(), stream=stream)
        self.inbox.append(record)
        self._arrived.set()  # wake every waiter, then arm a fresh event
        self._arrived = trio.Event()
        return record

    async def _react(self, message: Any) -> None:
        if self.withholding:
            return
        try:
            if self.policy is not None:
                frames = self.policy(message)
                if frames is not None:
                    for frame in frames:
                        await self.send_raw(frame)
                    return
            if self.honest:
                await self._answer(message)
        except ChannelsError as exc:
            log.info("answering %s failed: %s", type(message).__name__, exc)

    # ------------------------------------------------------------------ honest channel play

    async def _answer(self, message: Any) -> None:
        """What an honest peer does: the core decides, we carry its effects out."""
        if isinstance(message, ChannelProposal):
            try:
                ch, effects = accept_channel(message, env=self.env)
            except ChannelsError as exc:
                await self.send(ChannelDecline(channel_id=message.params.channel_id, reason=str(exc)[:256]))
                return
            await self._commit(ch, effects)
            return
        inp = ins.receive(message)
        cid = getattr(message, "channel_id", None)
        if inp is not None and cid in self.channels:
            await self._step(cid, inp)

    async def _step(self, channel_id: ChannelId, inp: ins.Input) -> Channel:
        ch, effects = transition(self.channels[channel_id], inp, now=self.now, env=self.env)
        await self._commit(ch, effects)
        return ch

    async def _commit(self, ch: Channel, effects: list[fx.Effect]) -> None:
        self.channels[ch.channel_id] = ch
        if ch.latest.is_fully_signed:
            self.signed.setdefault(ch.channel_id, {})[ch.version] = ch.latest
        self._changed.set()
        self._changed = trio.Event()
        for e in effects:
            if isinstance(e, fx.Send):
                await self.send(e.message)
            elif isinstance(e, fx.SubmitDeposit):
                try:
                    await self.ledger.deposit(self.l1_key, e.channel_id, e.asset, e.amount)
                except LedgerError as exc:
                    log.warning("deposit into %s refused: %s", e.channel_id.hex()[:12], exc)
            elif isinstance(e, fx.NotifyPaymentSent):
                self.payments[e.payment_id] = "sent"
            elif isinstance(e, fx.NotifyPaymentFailed):
                self.payments[e.payment_id] = f"failed: {e.reason}"

    async def propose(self, deposit: int, peer_deposit: int = 0, *, challenge_duration: int = 60,
                      asset: AssetId = NATIVE, nonce: bytes | None = None, **param_overrides: Any) -> ChannelProposal:
        """Propose a channel with any parameters (``chain_id``, ``participants``, ``app_id``...).

        A proposal the core accepts is tracked in ``channels`` (honest play goes on
        from there); one it refuses (zero deposits are fine, a window of 0 is not) is
        signed by hand and sent untracked."""
        fields: dict[str, Any] = {"chain_id": self.chain_id, "adjudicator": self.adjudicator,
                                  "challenge_duration": challenge_duration, "nonce": nonce or os.urandom(32)}
        fields.update(param_overrides)
        if "participants" not in fields:  # us and the account the victim's Init proved
            fields["participants"] = (self.l1_address, Address((await self.victim_init()).l1_address))
        params = ChannelParams(**fields)
        allocation = Allocation(assets=(asset,), balances=((deposit, peer_deposit),))
        try:
            ch, effects = propose_channel(params, allocation, env=self.env)
        except (LocalProtocolError, ValueError):
            state = State(channel_id=params.channel_id, version=Version(0), allocation=allocation)
            proposal = ChannelProposal(params=params, allocation=allocation, signature=self._sign_anything(params,
                                                                                                          state))
            await self.send(proposal)
            return proposal
        await self._commit(ch, effects)
        sent = effects[0]
        assert isinstance(sent, fx.Send) and isinstance(sent.message, ChannelProposal)
        return sent.message

    async def open_channel(self, deposit: int, peer_deposit: int = 0, *, challenge_duration: int = 60,
                           asset: AssetId = NATIVE, timeout: float = 30.0) -> ChannelId:
        """Open a channel funded with ``deposit`` by us; return its id once the escrow holds
        every deposit (our core is then ``open``). ``Declined`` if the victim says no."""
        self.now = await self.ledger.now()
        proposal = await self.propose(deposit, peer_deposit, challenge_duration=challenge_duration, asset=asset)
        cid = proposal.params.channel_id
        answer = await self.next_message((ChannelAccept, ChannelDecline), timeout=timeout,
                                         where=lambda m: m.channel_id == cid)
        if isinstance(answer, ChannelDecline):
            raise Declined(answer.reason)
        with trio.fail_after(timeout):
            while True:  # our deposit went out when the accept arrived (see ``_commit``)
                held = (await self.ledger.channel(cid)).holdings.get(asset, 0)
                if held >= deposit + peer_deposit:
                    break
                await trio.sleep(0.1)
        await self._step(cid, ins.ChainDeposited(asset=asset, holdings=held))
        assert self.channels[cid].phase is Phase.OPEN
        return cid

    async def pay(self, channel_id: ChannelId, amount: int, *, asset: AssetId | None = None,
                  timeout: float = 10.0) -> Channel:
        """Pay the victim honestly (any amount our balance covers, 2**64 - 1 included) and wait
        for its countersignature, sending the update again every second meanwhile (the victim
        ignores updates until it has seen the funding itself)."""
        ch = self.channels[channel_id]
        payment_id = PaymentId(os.urandom(16))
        await self._step(channel_id, ins.ActionPay(payment_id=payment_id, asset=asset or ch.allocation.assets[0],
                                                   amount=amount))
        with trio.fail_after(timeout):
            while payment_id not in self.payments:
                with trio.move_on_after(RESEND_AFTER) as idle:
                    await self._changed.wait()
                if idle.cancelled_caught:
                    await self._step(channel_id, ins.ActionResync())
        if self.payments[payment_id] != "sent":
            raise LocalProtocolError(f"payment {payment_id.hex()} {self.payments[payment_id]}")
        return self.channels[channel_id]

    async def propose_update(self, channel_id: ChannelId, payments: Sequence[Payment], *,
                             version: int | None = None, signature: bytes | None = None) -> UpdateProposal:
        """Sign and send an update the rules forbid (overdraft, foreign asset, version leap...).

        Our core never learns of it. The signature covers the state the payments would
        give (or is 64 zero bytes when that state cannot even be laid out)."""
        ch = self.channels[channel_id]
        version = max(ch.version, ch.highest_signed) + 1 if version is None else version
        if signature is None:
            alloc = ch.allocation
            try:
                for p in payments:
                    alloc = alloc.with_transfer(p.asset, p.amount, ch.me, ch.peer)
            except ValueError:
                pass
            state = attrs.evolve(ch.latest.state, version=Version(version), allocation=alloc)
            signature = self._sign_anything(ch.params, state)
        message = UpdateProposal(channel_id=channel_id, version=Version(version), operations=tuple(payments),
                                 signature=signature)
        await self.send(message)
        return message

    def _sign_anything(self, params: ChannelParams, state: State) -> bytes:
        try:
            return self.env.scheme.sign(self.l1_key, params, state)
        except Exception:  # a state the layout cannot hold (negative or huge balances)
            return bytes(64)

    # ------------------------------------------------------------------ the L1

    def stale_state(self, channel_id: ChannelId, version: int) -> SignedState:
        """A state both sides signed at ``version`` (kept even after newer ones)."""
        return self.signed[channel_id][version]

    async def register_stale(self, channel_id: ChannelId, version: int) -> None:
        """Register an old co-signed state on the L1: the stale-state attack."""
        await self.ledger.register(self.l1_key, self.channels[channel_id].params, self.stale_state(channel_id,
                                                                                                    version))

    async def withdraw(self, channel_id: ChannelId, *, timeout: float = 60.0) -> None:
        """Withdraw once the challenge window is over (waits for the L1 deadline). A withdraw
        pays every participant, so the victim having done it first counts as done."""
        params = self.channels[channel_id].params
        with trio.fail_after(timeout):
            while True:
                view = await self.ledger.channel(channel_id)
                if view.withdrawn:
                    return
                if view.deadline is not None and await self.ledger.now() >= view.deadline:
                    break
                await trio.sleep(0.2)
        try:
            await self.ledger.withdraw(self.l1_key, params)
        except AlreadyWithdrawn:
            pass


def reject_updates(*, retry: bool = True, reason: str = "version already signed") -> Policy:
    """A policy answering every ``UpdateProposal`` with ``UpdateReject(retry)``: with
    ``retry=True`` an honest proposer re-proposes at once, and again, and again."""

    def policy(message: Any) -> list[bytes] | None:
        if not isinstance(message, UpdateProposal):
            return None
        return [encode_message(UpdateReject(channel_id=message.channel_id, version=message.version, retry=retry,
                                            reason=reason))]

    return policy


@asynccontextmanager
async def open_hostile_peer(*, ledger: Ledger, listen: str | None = "/ip4/127.0.0.1/tcp/0",
                            identity_seed: bytes | None = None,
                            l1_key: DevnetKey | None = None) -> AsyncIterator[HostilePeer]:
    """Run a hostile peer for the block: a fresh libp2p identity and L1 key unless given.

    ``listen=None`` announces no address (the victim can then never dial us back)."""
    chain_id = int((await ledger.status()).chain_id)  # type: ignore[attr-defined]
    try:
        async with open_host(identity_seed=identity_seed or os.urandom(32), listen=[listen] if listen else [],
                             max_frame=SEND_CAP) as host, trio.open_nursery() as nursery:
            peer = HostilePeer(host, ledger, l1_key or DevnetKey.generate(), chain_id, nursery)
            host.set_handler(PROTOCOL_CHANNEL, peer._serve)
            try:
                yield peer
            finally:
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # The nurseries wrap the caller's own error (a failed assertion): hand it back as itself.
        leaf = sole_error(group, Exception)
        if leaf is None:
            raise
        raise leaf from None


@asynccontextmanager
async def open_hostile_peers(count: int, *, ledger: Ledger, **kwargs: Any) -> AsyncIterator[list[HostilePeer]]:
    """``count`` hostile peers, each with its own identity and L1 key (Sybil attacks).

    They start one after the other but stop together: a libp2p host takes a moment to close."""
    done = trio.Event()

    async def hold(*, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        async with open_hostile_peer(ledger=ledger, **kwargs) as peer:
            task_status.started(peer)
            await done.wait()

    try:
        async with trio.open_nursery() as nursery:
            try:
                yield [await nursery.start(hold) for _ in range(count)]
            finally:
                done.set()
    except BaseExceptionGroup as group:
        leaf = sole_error(group, Exception)
        if leaf is None:
            raise
        raise leaf from None
