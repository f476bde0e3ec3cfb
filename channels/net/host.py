"""A thin, trio-style wrapper over a py-libp2p host: the only place libp2p is driven.

Configuration (and why):

* Security: Noise only. py-libp2p's default host also offers TLS, SECIO and
  *plaintext*; a responder accepts whatever the dialer proposes, so the default
  would let a peer downgrade us to an unauthenticated, unencrypted connection.
* Muxer: yamux only (the py-libp2p and go-libp2p default; mplex is deprecated).
* No dial retries (``RetryConfig(max_retries=0)``): the caller decides when to
  retry, and a dead peer fails fast instead of after ~1 s of hidden backoff.
* The auto-connector is stopped: it would silently re-dial every peer in the
  peerstore while we are below 100 connections.
* ``addresses`` come from our listeners only (never Identify-observed ones).

Cancellation hazards in py-libp2p 0.8.1 that this module works around:

* Noise encrypts (advancing its nonce) *before* the write is awaited, so a write
  cancelled at the wrong moment desynchronises the cipher and kills the whole
  connection, not just one stream. Every write here is shielded, bounded by
  its own timeout, and started only if the caller is not already cancelled.
* A yamux ``read`` sends a WINDOW_UPDATE (a write) and takes a lock *after*
  removing data from its buffer; cancelling it can lose bytes or hit the hazard
  above. So each ``Stream`` has one reader task, living in the host's nursery,
  that is never cancelled before the stream is dead; ``receive()`` only waits
  on a memory channel, which is always safe to cancel.
* ``BasicHost.connect`` waits out a 250 ms "happy eyeballs" delay even when
  the dial succeeded at once, and a failed dial puts the peer in a 60 s
  negative cache (a restarted peer would stay unreachable). ``Host.connect``
  dials the given address directly with ``Swarm.dial_addr`` instead.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager

import multiaddr
import trio
from libp2p import new_host
from libp2p.abc import INetConn, INetStream, INetwork, INotifee
from libp2p.crypto.keys import KeyPair
from libp2p.crypto.x25519 import create_new_key_pair as create_x25519_key_pair
from libp2p.custom_types import TProtocol
from libp2p.exceptions import BaseLibp2pError
from libp2p.host.basic_host import BasicHost
from libp2p.host.exceptions import StreamFailure
from libp2p.identity_utils import create_identity_from_seed
from libp2p.network.config import RetryConfig
from libp2p.network.stream.exceptions import StreamEOF as _Libp2pEOF
from libp2p.network.stream.exceptions import StreamReset as _Libp2pReset
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_PROTOCOL_ID
from libp2p.stream_muxer.yamux.yamux import Yamux

from ..encoding import MAX_FRAME
from ..errors import ConfigError, DecodeError, RemoteProtocolError
from .errors import (
    InvalidAddress,
    NetError,
    PeerUnreachable,
    ProtocolNotSupported,
    StreamClosed,
    StreamReset,
)
from .frames import FrameReader, encode_frame

__all__ = ["Handler", "Host", "Stream", "open_host"]

logger = logging.getLogger(__name__)

SEND_TIMEOUT = 30.0  # a frame not written by then means the connection is stuck
CLOSE_GRACE = 5.0  # how long close() waits for the remote to finish its side
SHUTDOWN_TIMEOUT = 5.0
RECEIVE_QUEUE = 16  # frames buffered per stream before we stop reading (backpressure)


@contextmanager
def _translated(what: str) -> Iterator[None]:
    """Map libp2p stream errors to ours; ``what`` names the operation."""
    try:
        yield
    except _Libp2pEOF:
        raise StreamClosed(f"{what}: the remote closed the stream") from None
    except _Libp2pReset:
        raise StreamReset(f"{what}: the stream was reset") from None
    except BaseLibp2pError as exc:
        raise StreamReset(f"{what}: connection lost ({type(exc).__name__}: {exc})") from exc


class _RawIO:
    """Adapt a libp2p ``INetStream`` to ``frames.ByteStream`` (EOF -> ``b""``)."""

    def __init__(self, raw: INetStream) -> None:
        self.raw = raw

    async def read(self, n: int) -> bytes:
        try:
            with _translated("receive"):
                return await self.raw.read(n)
        except StreamClosed as exc:
            if type(exc) is StreamClosed:
                return b""
            raise

    async def write(self, data: bytes) -> None:
        with _translated("send"):
            await self.raw.write(data)


class Stream:
    """One libp2p stream carrying length-prefixed frames.

    ``send``/``receive`` move one frame each and are safe to call from several
    tasks (sends are serialised; a frame is never interleaved). ``receive`` is
    safe to cancel. Use ``close()`` for a clean end (the remote sees EOF) and
    ``reset()`` to abort; ``async with stream:`` closes, or resets on error.
    """

    def __init__(self, raw: INetStream, *, remote_peer_id: str, protocol_id: str, max_frame: int) -> None:
        self.remote_peer_id = remote_peer_id
        self.protocol_id = protocol_id
        self._raw = raw
        self._io = _RawIO(raw)
        self._max_frame = max_frame
        self._send_lock = trio.Lock()
        self._frames_in, self._frames_out = trio.open_memory_channel[bytes](RECEIVE_QUEUE)
        self._reader_done = trio.Event()
        self._end: tuple[type[Exception], str] | None = None
        self._closed = False
        self._discard = False
        self._reader_scope = trio.CancelScope()

    def _start(self, nursery: trio.Nursery) -> None:
        nursery.start_soon(self._read_loop)

    async def send(self, data: bytes) -> None:
        """Send one frame; raises ``MessageTooLarge`` or ``StreamClosed``."""
        frame = encode_frame(data, max_size=self._max_frame)
        async with self._send_lock:
            if self._closed:
                raise StreamClosed("send: the stream was closed locally")
            await self._shielded(lambda: self._io.write(frame), "send")

    async def receive(self) -> bytes:
        """Receive one frame; ``StreamClosed`` at the end, ``DecodeError`` on bad framing."""
        try:
            return await self._frames_out.receive()
        except trio.ClosedResourceError:
            raise StreamClosed("receive: the stream was closed locally") from None
        except trio.EndOfChannel:
            if self._end is None:
                raise StreamClosed("receive: the host is shutting down") from None
            cls, message = self._end
            raise cls(message) from None

    async def close(self, *, grace: float = CLOSE_GRACE) -> None:
        """End the stream cleanly: send EOF, then wait (bounded) for the remote's EOF.

        Frames that still arrive are discarded. If the remote does not finish
        within ``grace`` seconds, or we are cancelled, the stream is reset.
        """
        if self._closed:
            return
        self._closed = True
        self._frames_out.close()
        try:
            async with self._send_lock:
                await self._shielded(self._raw_close, "close")
            with trio.move_on_after(grace):
                await self._reader_done.wait()
        except StreamClosed:
            pass
        finally:
            if not self._reader_done.is_set():
                await self.reset()

    async def reset(self) -> None:
        """Abort the stream in both directions; the remote sees ``StreamReset``."""
        self._closed = True
        self._frames_out.close()
        if self._end is None:
            self._end = (StreamReset, "the stream was reset locally")
        wake = _reader_wakeup(self._raw)
        with trio.CancelScope(shield=True):
            try:
                await self._raw.reset()
            except Exception:  # already dead: nothing left to abort
                pass
        if wake is not None:
            wake()
        else:  # unknown muxer internals: fall back to cancelling the reader
            self._reader_scope.cancel()

    async def __aenter__(self) -> Stream:
        return self

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            await self.close()
        else:
            await self.reset()

    async def _raw_close(self) -> None:
        with _translated("close"):
            await self._raw.close()

    async def _shielded(self, op: Callable[[], Awaitable[None]], what: str) -> None:
        """Run a write to completion even if cancelled (see the module docstring)."""
        await trio.lowlevel.checkpoint_if_cancelled()
        with trio.CancelScope(shield=True):
            with trio.move_on_after(SEND_TIMEOUT) as scope:
                await op()
        if scope.cancelled_caught:
            await self.reset()
            raise StreamReset(f"{what}: timed out after {SEND_TIMEOUT}s; the remote is not reading")

    async def _read_loop(self) -> None:
        reader = FrameReader(self._io, max_size=self._max_frame)
        try:
            with self._reader_scope:
                while True:
                    frame = await reader.read_frame()
                    if self._discard:
                        continue
                    try:
                        await self._frames_in.send(frame)
                    except trio.BrokenResourceError:
                        self._discard = True  # nobody will receive: drain until EOF
        except StreamClosed as exc:
            if self._end is None:
                self._end = (type(exc), str(exc))
        except DecodeError as exc:
            self._end = (type(exc), f"receive: {exc}")
            await self.reset()  # the peer broke framing: abort
        except Exception as exc:  # a libp2p bug must not take the host down
            logger.exception("unexpected error reading from %s", self.remote_peer_id)
            self._end = (StreamReset, f"receive: unexpected {type(exc).__name__}: {exc}")
            await self.reset()
        finally:
            self._frames_in.close()
            self._reader_done.set()


Handler = Callable[[Stream], Awaitable[None]]


def _reader_wakeup(raw: INetStream) -> Callable[[], None] | None:
    """Return a callable that wakes a reader parked in yamux's ``read``.

    py-libp2p 0.8.1's yamux drops (without setting) a stream's wake-up event on
    a *local* reset, so a pending ``read`` would sleep until the connection
    closes. Grab the event before resetting and set it afterwards.
    """
    muxed = getattr(raw, "muxed_stream", None)
    events = getattr(getattr(muxed, "conn", None), "stream_events", None)
    stream_id = getattr(muxed, "stream_id", None)
    if not isinstance(events, dict) or stream_id is None:
        return None
    event = events.get(stream_id)
    return event.set if event is not None else (lambda: None)


class _DisconnectWatcher(INotifee):
    """Wakes ``Host.wait_disconnected`` callers when a connection closes."""

    def __init__(self) -> None:
        self.events: dict[str, trio.Event] = {}

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        peer = conn.muxed_conn.peer_id.to_base58()
        event = self.events.pop(peer, None)
        if event is not None:
            event.set()

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        return None

    async def opened_stream(self, network: INetwork, stream: INetStream) -> None:
        return None

    async def closed_stream(self, network: INetwork, stream: INetStream) -> None:
        return None

    async def listen(self, network: INetwork, multiaddr: multiaddr.Multiaddr) -> None:
        return None

    async def listen_close(self, network: INetwork, multiaddr: multiaddr.Multiaddr) -> None:
        return None


def _parse_multiaddr(text: str) -> multiaddr.Multiaddr:
    try:
        return multiaddr.Multiaddr(text)
    except Exception as exc:
        raise InvalidAddress(f"invalid multiaddr {text!r}: {exc}") from None


def _parse_peer_id(text: str) -> ID:
    try:
        peer = ID.from_base58(text)
        if peer.to_base58() != text:
            raise ValueError("not canonical base58")
        return peer
    except Exception as exc:
        raise InvalidAddress(f"invalid peer id {text!r}: {exc}") from None


def _root_cause(exc: BaseException) -> str:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return f"{type(exc).__name__}: {exc}"


class Host:
    """A running libp2p host; obtain one with ``open_host``."""

    def __init__(self, lp: BasicHost, nursery: trio.Nursery, max_frame: int) -> None:
        self._lp = lp
        self._nursery = nursery
        self._max_frame = max_frame
        self._known_addrs: dict[str, str] = {}
        self._dial_locks: dict[str, trio.Lock] = {}
        self._watcher = _DisconnectWatcher()
        self._closing = False
        lp.get_network().register_notifee(self._watcher)

    @property
    def peer_id(self) -> str:
        """Our base58 peer id (derived from the identity seed)."""
        return self._lp.get_id().to_base58()

    @property
    def addresses(self) -> list[str]:
        """Full multiaddrs we listen on, each ending in ``/p2p/<peer_id>``."""
        suffix = f"/p2p/{self.peer_id}"
        return [str(a) + suffix for a in self._lp.get_transport_addrs()]

    def set_handler(self, protocol_id: str, handler: Handler) -> None:
        """Serve ``protocol_id``: ``handler(stream)`` runs once per inbound stream.

        When the handler returns the stream is closed cleanly; if it raises, the
        stream is reset and the error logged (it never takes the host down).
        """

        async def on_stream(raw: INetStream) -> None:
            await self._serve_inbound(raw, protocol_id, handler)

        self._lp.set_stream_handler(TProtocol(protocol_id), on_stream)

    def remove_handler(self, protocol_id: str) -> None:
        """Stop serving ``protocol_id`` (streams already open are not touched)."""
        self._lp.remove_stream_handler(TProtocol(protocol_id))

    async def connect(self, address: str, *, timeout: float = 10.0) -> str:
        """Dial a full multiaddr (with ``/p2p/<id>``); return the remote peer id."""
        maddr = _parse_multiaddr(address)
        try:
            info = info_from_p2p_addr(maddr)
        except Exception as exc:
            raise InvalidAddress(f"{address!r} must end in /p2p/<peer id>: {exc}") from None
        peer = info.peer_id.to_base58()
        if peer == self.peer_id:
            raise InvalidAddress(f"{address!r} is this host's own address")
        self._known_addrs[peer] = address
        async with self._dial_locks.setdefault(peer, trio.Lock()):
            if self.is_connected(peer):
                return peer
            try:
                with trio.fail_after(timeout):
                    # Swarm.dial_addr, not BasicHost.connect: the latter waits out a
                    # 250 ms "happy eyeballs" delay even after a successful dial.
                    conn = await self._lp.get_network().dial_addr(maddr, info.peer_id)
                    started = getattr(conn, "event_started", None)
                    if started is not None:
                        await started.wait()
            except trio.TooSlowError:
                raise PeerUnreachable(f"dialing {address} timed out after {timeout}s") from None
            except BaseLibp2pError as exc:
                raise PeerUnreachable(f"cannot connect to {address}: {_root_cause(exc)}; is the peer running?") from exc
        return peer

    async def open_stream(self, peer_id: str, protocol_id: str, *, timeout: float = 10.0) -> Stream:
        """Open a stream speaking ``protocol_id``; re-dials a known peer if needed."""
        peer = _parse_peer_id(peer_id)
        if not self.is_connected(peer_id):
            address = self._known_addrs.get(peer_id)
            if address is None:
                raise PeerUnreachable(f"not connected to {peer_id}; call connect() first")
            await self.connect(address, timeout=timeout)
        await trio.lowlevel.checkpoint_if_cancelled()
        raw: INetStream | None = None
        with trio.CancelScope(shield=True):  # negotiation writes on the shared connection
            with trio.move_on_after(timeout):
                try:
                    raw = await self._lp.new_stream(peer, [TProtocol(protocol_id)])
                except StreamFailure as exc:
                    raise ProtocolNotSupported(
                        f"{peer_id} refused protocol {protocol_id!r} ({_root_cause(exc)})"
                    ) from exc
                except BaseLibp2pError as exc:
                    raise PeerUnreachable(f"cannot open a stream to {peer_id}: {_root_cause(exc)}") from exc
        if raw is None:
            raise PeerUnreachable(f"opening {protocol_id!r} to {peer_id} timed out after {timeout}s")
        return self._wrap(raw, peer_id, protocol_id)

    def connected_peers(self) -> list[str]:
        """Peer ids with at least one open connection."""
        swarm = self._lp.get_network()
        return [p.to_base58() for p, conns in swarm.connections.items() if conns]

    def is_connected(self, peer_id: str) -> bool:
        """Whether at least one connection to ``peer_id`` is open."""
        return peer_id in self.connected_peers()

    async def disconnect(self, peer_id: str) -> None:
        """Close every connection to ``peer_id`` (its streams are reset)."""
        await self._lp.disconnect(_parse_peer_id(peer_id))

    async def wait_disconnected(self, peer_id: str) -> None:
        """Return once no connection to ``peer_id`` remains."""
        while self.is_connected(peer_id):
            event = self._watcher.events.setdefault(peer_id, trio.Event())
            with trio.move_on_after(1.0):  # belt and braces if a notification is missed
                await event.wait()

    def _wrap(self, raw: INetStream, peer_id: str, protocol_id: str) -> Stream:
        stream = Stream(raw, remote_peer_id=peer_id, protocol_id=protocol_id, max_frame=self._max_frame)
        stream._start(self._nursery)
        return stream

    async def _serve_inbound(self, raw: INetStream, protocol_id: str, handler: Handler) -> None:
        if self._closing:
            with trio.CancelScope(shield=True):
                await raw.reset()
            return
        peer_id = raw.muxed_conn.peer_id.to_base58()
        stream = self._wrap(raw, peer_id, protocol_id)
        try:
            await handler(stream)
        except (NetError, RemoteProtocolError) as exc:
            logger.debug("%s handler for %s ended: %s", protocol_id, peer_id, exc)
            await stream.reset()
            return
        except Exception:
            logger.exception("%s handler for %s failed", protocol_id, peer_id)
            await stream.reset()
            return
        except BaseException:
            await stream.reset()
            raise
        await stream.close()


def _key_pair(seed: bytes) -> KeyPair:
    if not isinstance(seed, bytes) or len(seed) != 32:
        raise ConfigError("identity_seed must be exactly 32 bytes")
    try:
        return create_identity_from_seed(seed)
    except ValueError as exc:
        raise ConfigError(f"identity_seed is unusable: {exc}") from None


def _new_libp2p_host(key_pair: KeyPair, listen: list[multiaddr.Multiaddr]) -> BasicHost:
    noise = NoiseTransport(key_pair, noise_privkey=create_x25519_key_pair().private_key)
    lp = new_host(
        key_pair=key_pair,
        sec_opt={TProtocol(NOISE_PROTOCOL_ID): noise},
        muxer_opt={TProtocol(YAMUX_PROTOCOL_ID): Yamux},
        listen_addrs=listen,
        disable_identify_address_discovery=True,
    )
    assert isinstance(lp, BasicHost)
    lp.get_network().retry_config = RetryConfig(max_retries=0)  # type: ignore[attr-defined]
    return lp


@asynccontextmanager
async def open_host(*, identity_seed: bytes, listen: Sequence[str], max_frame: int = MAX_FRAME) -> AsyncIterator[Host]:
    """Run a libp2p host for the duration of the block.

    ``identity_seed`` (32 bytes) fixes the Ed25519 key, hence the peer id.
    ``listen`` are multiaddrs such as ``/ip4/127.0.0.1/tcp/0`` (port 0 picks a
    free port; ``Host.addresses`` reports the real one). On exit every stream
    and connection is closed and every task we started has finished.
    """
    key_pair = _key_pair(identity_seed)
    addrs = [_parse_multiaddr(a) for a in listen]
    lp = _new_libp2p_host(key_pair, addrs)
    swarm = lp.get_network()
    async with lp.run(addrs):
        try:
            await swarm.auto_connector.stop()  # type: ignore[attr-defined]
            missing = [str(a) for a in addrs if str(a) not in swarm.listeners]
            if missing:
                raise ConfigError(f"cannot listen on {missing} (address in use or unsupported)")
            async with trio.open_nursery() as nursery:
                host = Host(lp, nursery, max_frame)
                try:
                    yield host
                finally:
                    host._closing = True
                    nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                with trio.move_on_after(SHUTDOWN_TIMEOUT):
                    await lp.close()
