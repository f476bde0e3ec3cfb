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
* Inbound connections go through our own admission (``limits.py``): see
  "Inbound connections" below.

py-libp2p 0.8.1 quirks handled here:

* ``BasicHost.connect`` waits out a 250 ms "happy eyeballs" delay even when
  the dial succeeded at once, and a failed dial puts the peer in a 60 s
  negative cache (a restarted peer would stay unreachable). ``Host.connect``
  dials the given address directly with ``Swarm.dial_addr`` instead.
* Listen failures are only logged by py-libp2p; ``open_host`` checks that every
  address got a listener, and probes fixed ports first because the listener
  sets SO_REUSEPORT (a second daemon on the same port would start silently).

Inbound connections (``_InboundGate``): py-libp2p 0.8.1's
``Swarm._handle_inbound_connection`` takes one of 250 ``_inbound_limiter``
slots per accepted connection and gives it back only when its handler returns,
but after a successful upgrade the handler waits for the *swarm* to finish. So
a closed connection never freed its slot, and the 251st inbound connection of
a process's life was reset (a node or devnet daemon stopped accepting anyone,
e.g. after ~250 ``channels devnet`` CLI calls); every parked handler also kept
its TCP socket. We replace that method on our swarm instance (the listener
looks it up per connection): our handler admits by IP and total count before
the Noise handshake, by peer id after it, and returns when *that* connection
closes (by us, by the peer's FIN/RST, or by the swarm). The swarm's limiter is
never taken any more, so it cannot leak.

Streams and their own cancellation workarounds live in ``stream.py``.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Protocol

import multiaddr
import trio
from libp2p import new_host
from libp2p.abc import IMuxedConn, INetConn, INetStream, INetwork, INotifee
from libp2p.crypto.keys import KeyPair
from libp2p.crypto.x25519 import create_new_key_pair as create_x25519_key_pair
from libp2p.custom_types import TProtocol
from libp2p.exceptions import BaseLibp2pError
from libp2p.host.basic_host import BasicHost
from libp2p.host.exceptions import StreamFailure
from libp2p.identity_utils import create_identity_from_seed
from libp2p.io.abc import ReadWriteCloser
from libp2p.network.config import RetryConfig
from libp2p.network.connection.raw_connection import RawConnection
from libp2p.network.swarm import Swarm
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo, info_from_p2p_addr
from libp2p.protocol_muxer.exceptions import ProtocolNotSupportedError
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_PROTOCOL_ID
from libp2p.stream_muxer.yamux.yamux import Yamux

from ..encoding import MAX_FRAME
from ..errors import ConfigError, RemoteProtocolError
from .errors import (
    InboundLimitReached,
    InvalidAddress,
    NetError,
    PeerUnreachable,
    ProtocolNotSupported,
)
from .limits import ConnectionLimits, InboundSlot, InboundSlots
from .stream import Stream

__all__ = ["ConnectionLimits", "Handler", "Host", "Stream", "open_host"]

logger = logging.getLogger(__name__)

if not os.environ.get("LIBP2P_DEBUG"):
    # libp2p's logger does not propagate and has no handler, so its warnings
    # (duplicates of the typed errors we raise) would hit stderr through
    # logging.lastResort. LIBP2P_DEBUG=... still turns them on.
    logging.getLogger("libp2p").addHandler(logging.NullHandler())

SHUTDOWN_TIMEOUT = 5.0
MAX_KNOWN_ADDRESSES = 4096  # peers we remember a dial address for (``open_stream`` re-dials them)
# How often a parked inbound handler re-checks its connection, in case a close
# event is never set (belt and braces; the events are the normal wake-up).
CLOSE_POLL_INTERVAL = 5.0


Handler = Callable[[Stream], Awaitable[None]]


class QuietNotifee(INotifee):
    """A libp2p notifee that ignores everything: subclasses override the events they watch."""

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        return None

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        return None

    async def opened_stream(self, network: INetwork, stream: INetStream) -> None:
        return None

    async def closed_stream(self, network: INetwork, stream: INetStream) -> None:
        return None

    async def listen(self, network: INetwork, multiaddr: multiaddr.Multiaddr) -> None:
        return None

    async def listen_close(self, network: INetwork, multiaddr: multiaddr.Multiaddr) -> None:
        return None


class _DisconnectWatcher(QuietNotifee):
    """Wakes ``Host.wait_disconnected`` callers when a connection closes."""

    def __init__(self) -> None:
        self.events: dict[str, trio.Event] = {}

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        peer = conn.muxed_conn.peer_id.to_base58()
        event = self.events.pop(peer, None)
        if event is not None:
            event.set()


def _alive(conn: INetConn) -> bool:
    muxed = getattr(conn, "muxed_conn", None)
    return not conn.is_closed and not getattr(muxed, "is_closed", False)


class _Closable(Protocol):
    async def close(self) -> None: ...


async def _close_quietly(closer: _Closable) -> None:
    with trio.CancelScope(shield=True), trio.move_on_after(SHUTDOWN_TIMEOUT):
        try:
            await closer.close()
        except Exception as exc:
            logger.debug("closing an inbound connection failed: %s", exc)


class _InboundGate:
    """Our replacement for ``Swarm._handle_inbound_connection``: bounded, and it lets go on close."""

    def __init__(self, swarm: Swarm, slots: InboundSlots) -> None:
        self._swarm = swarm
        self.slots = slots

    def install(self) -> None:
        for name in ("_handle_inbound_connection", "upgrade_inbound_raw_conn", "connections"):
            if not hasattr(self._swarm, name):
                raise NetError(f"py-libp2p's Swarm has no {name!r}; this version is not supported")
        # An instance attribute shadows the method; the listener's callback
        # looks ``self._handle_inbound_connection`` up for every connection.
        self._swarm._handle_inbound_connection = self.handle  # type: ignore[method-assign]

    async def handle(self, read_write_closer: ReadWriteCloser, maddr: multiaddr.Multiaddr) -> None:
        """Serve one accepted TCP connection until it closes; trio closes the socket when we return."""
        remote = read_write_closer.get_remote_address()
        remote_ip = remote[0] if remote is not None else "unknown"
        try:
            # Checked before the handshake: a flood of connections (from one
            # source or many) is refused for the price of an accept and a
            # close, without making us run a Noise key exchange for each.
            slot = self.slots.acquire(remote_ip)
        except InboundLimitReached as exc:
            logger.debug("refusing inbound connection from %s: %s", remote_ip, exc)
            await _close_quietly(read_write_closer)
            return
        try:
            await self._serve(read_write_closer, maddr, slot, remote_ip)
        finally:
            self.slots.release(slot)

    async def _serve(
        self, read_write_closer: ReadWriteCloser, maddr: multiaddr.Multiaddr, slot: InboundSlot, remote_ip: str
    ) -> None:
        swarm = self._swarm
        remote_maddr = swarm._build_remote_multiaddr(read_write_closer)
        if remote_maddr is not None and not await swarm.connection_gate.is_allowed(remote_maddr):
            await _close_quietly(read_write_closer)  # py-libp2p's allow/deny lists, kept as they were
            return
        raw = RawConnection(read_write_closer, False)
        try:
            # Bounded by the swarm's inbound_upgrade_timeout (10 s): a dialer
            # that stalls the handshake (slowloris) holds its slot that long only.
            muxed = await swarm.upgrade_inbound_raw_conn(raw, maddr)
        except Exception as exc:
            logger.debug("inbound connection from %s failed to upgrade: %s", remote_ip, _root_cause(exc))
            await _close_quietly(raw)
            return
        conn = next((c for c in swarm.connections.get(muxed.peer_id, []) if c.muxed_conn is muxed), None)
        try:
            self.slots.bind_peer(slot, muxed.peer_id.to_base58())
        except InboundLimitReached as exc:
            logger.debug("refusing inbound connection from %s: %s", remote_ip, exc)
            await _close_quietly(conn if conn is not None else muxed)
            return
        await self._wait_closed(muxed, conn, raw)

    @staticmethod
    async def _wait_closed(muxed: IMuxedConn, conn: INetConn | None, raw: RawConnection) -> None:
        """Return once this connection is closed: by us, by the peer (FIN, RST, exit) or by the swarm.

        Yamux sets ``event_closed`` after closing the socket, both when the
        peer goes away (its reader hits EOF) and when anyone calls ``close()``.
        """
        closed = getattr(muxed, "event_closed", None)
        closing_since: float | None = None
        while not getattr(muxed, "is_closed", True):
            with trio.move_on_after(CLOSE_POLL_INTERVAL):
                if isinstance(closed, trio.Event):
                    await closed.wait()
                else:
                    await trio.sleep_forever()
            if getattr(muxed, "is_closed", True):
                break
            if conn is not None and conn.is_closed:
                # A peer that stops reading can wedge the muxer's close on its
                # GO_AWAY write, keeping the socket (and this slot) forever;
                # give the close SHUTDOWN_TIMEOUT, then close the socket under it.
                now = trio.current_time()
                closing_since = closing_since if closing_since is not None else now
                if now - closing_since >= SHUTDOWN_TIMEOUT:
                    await _close_quietly(raw)
                    return


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
        if not _peer_id_multihash(peer.to_bytes()):
            raise ValueError("not a libp2p peer id (an identity or sha2-256 multihash)")
        return peer
    except Exception as exc:
        raise InvalidAddress(f"invalid peer id {text[:100]!r}: {exc}") from None


def _peer_id_multihash(raw: bytes) -> bool:
    """Whether ``raw`` is a peer id's multihash: the public key inline (identity, at most 42
    bytes) or its sha2-256. py-libp2p takes any base58 text for an id ("notapeerid" too)."""
    if len(raw) < 2 or raw[1] >= 0x80:
        return False
    code, length = raw[0], raw[1]
    if code == 0x00:
        return 0 < length <= 42 and len(raw) == 2 + length
    return code == 0x12 and length == 32 and len(raw) == 34


def _is_unsupported(exc: BaseException) -> bool:
    """Whether a failed negotiation means "the peer said no" (not "the connection broke")."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ProtocolNotSupportedError) or "protocols not supported" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _closed_during_handshake(cause: str) -> bool:
    """Whether a failed dial means the listener hung up mid-handshake (EOF or reset), e.g. at a connection limit."""
    return any(sign in cause for sign in ("IncompleteReadError", "ConnectionResetError", "reset by"))


def _root_cause(exc: BaseException) -> str:
    """The innermost cause, so an operator reads "connection refused", not libp2p's wrappers."""
    while True:
        if exc.__cause__ is not None:
            exc = exc.__cause__
        elif isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
            exc = exc.exceptions[0]  # trio's "all attempts to connect failed" around the one attempt
        else:
            break
    if isinstance(exc, OSError) and exc.errno is not None:
        return os.strerror(exc.errno).lower()
    return f"{type(exc).__name__}: {exc}"


class Host:
    """A running libp2p host; obtain one with ``open_host``."""

    def __init__(
        self,
        lp: BasicHost,
        nursery: trio.Nursery,
        max_frame: int,
        listen: list[multiaddr.Multiaddr],
        inbound: InboundSlots | None = None,
    ) -> None:
        self._lp = lp
        self._inbound = inbound if inbound is not None else InboundSlots()
        self._listen = listen
        self._nursery = nursery
        self._max_frame = max_frame
        self._known_addrs: dict[str, str] = {}
        self._reached: dict[str, str] = {}  # peer -> the address its last successful dial used
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
        """Full multiaddrs we listen on (in ``listen`` order), each ending in ``/p2p/<peer_id>``."""
        suffix = f"/p2p/{self.peer_id}"
        listeners = self._lp.get_network().listeners
        return [
            str(a) + suffix for req in self._listen if str(req) in listeners for a in listeners[str(req)].get_addrs()
        ]

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
        self._check_open()
        maddr = _parse_multiaddr(address)
        try:
            info = info_from_p2p_addr(maddr)
        except Exception:  # parsed, so the one failure left: the last part is not /p2p/<id>
            raise InvalidAddress(f"{address!r} must end in /p2p/<peer id> (as a node's node.addr does)") from None
        peer = info.peer_id.to_base58()
        if peer == self.peer_id:
            raise InvalidAddress(f"{address!r} is this host's own address")
        previous = self._known_addrs.pop(peer, None)
        self._known_addrs[peer] = address  # newest last; the oldest goes first past the bound
        if len(self._known_addrs) > MAX_KNOWN_ADDRESSES:
            del self._known_addrs[next(iter(self._known_addrs))]
        lock = self._dial_locks.setdefault(peer, trio.Lock())
        try:
            async with lock:
                if self.is_connected(peer) and (self._reached.get(peer) == address or self._via(peer, address)):
                    return peer
                # Connected by another address (or inbound): this one is dialled all the same,
                # so an address where nothing listens is reported, not hidden by the connection.
                try:
                    await self._dial(maddr, info, address, timeout)
                except PeerUnreachable as exc:
                    if not self.is_connected(peer):
                        raise
                    if previous is not None:  # the working address stays the one to re-dial
                        self._known_addrs[peer] = previous
                    via = self._connection_addresses(peer)
                    raise PeerUnreachable(f"already connected to {peer}" + (f" via {via[0]}" if via else "")
                                          + f", but {exc}") from None
                self._reached.pop(peer, None)
                self._reached[peer] = address
                if len(self._reached) > MAX_KNOWN_ADDRESSES:
                    del self._reached[next(iter(self._reached))]
        finally:
            if not lock.locked() and not lock.statistics().tasks_waiting:
                self._dial_locks.pop(peer, None)  # keyed by peer ids, which are free: keep none idle
        return peer

    async def _dial(self, maddr: multiaddr.Multiaddr, info: PeerInfo, address: str, timeout: float) -> None:
        """One dial, its failures as typed errors (the caller holds the per-peer dial lock)."""
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
            cause = _root_cause(exc)
            if _closed_during_handshake(cause):
                raise PeerUnreachable(
                    f"cannot connect to {address}: the peer closed the connection during the handshake "
                    f"(it may be at its connection limit; retry later) [{cause}]"
                ) from exc
            raise PeerUnreachable(f"cannot connect to {address}: {cause}; is the peer running?") from exc

    async def open_stream(self, peer_id: str, protocol_id: str, *, timeout: float = 10.0) -> Stream:
        """Open a stream speaking ``protocol_id``.

        A peer we dialled before is re-dialled if needed, and once more if the
        connection we still held turns out dead (the peer restarted before we
        noticed it was gone).
        """
        self._check_open()
        peer = _parse_peer_id(peer_id)
        address = self._known_addrs.get(peer_id)
        was_connected = self.is_connected(peer_id)
        if not was_connected:
            if address is None:
                raise PeerUnreachable(f"not connected to {peer_id}; call connect() first")
            await self.connect(address, timeout=timeout)
        try:
            return await self._negotiate(peer, peer_id, protocol_id, timeout)
        except PeerUnreachable:
            if not was_connected or address is None:
                raise
        logger.debug("stale connection to %s; re-dialling %s", peer_id, address)
        with trio.CancelScope(shield=True), trio.move_on_after(SHUTDOWN_TIMEOUT):
            await self._lp.disconnect(peer)
        await self.connect(address, timeout=timeout)
        return await self._negotiate(peer, peer_id, protocol_id, timeout)

    async def _negotiate(self, peer: ID, peer_id: str, protocol_id: str, timeout: float) -> Stream:
        await trio.lowlevel.checkpoint_if_cancelled()
        raw: INetStream | None = None
        with trio.CancelScope(shield=True):  # negotiation writes on the shared connection
            with trio.move_on_after(timeout):
                try:
                    raw = await self._lp.new_stream(peer, [TProtocol(protocol_id)])
                except StreamFailure as exc:
                    if _is_unsupported(exc):
                        raise ProtocolNotSupported(f"{peer_id} does not serve protocol {protocol_id!r}") from exc
                    raise PeerUnreachable(
                        f"cannot open a {protocol_id!r} stream to {peer_id}: {_root_cause(exc)}"
                    ) from exc
                except BaseLibp2pError as exc:
                    raise PeerUnreachable(f"cannot open a stream to {peer_id}: {_root_cause(exc)}") from exc
        if raw is None:
            raise PeerUnreachable(f"opening {protocol_id!r} to {peer_id} timed out after {timeout}s")
        return self._wrap(raw, peer_id, protocol_id)

    def check_peer_id(self, peer_id: str) -> None:
        """Raise ``InvalidAddress`` unless ``peer_id`` is a libp2p peer id (canonical base58)."""
        _parse_peer_id(peer_id)

    def _connection_addresses(self, peer_id: str) -> list[str]:
        """Transport addresses (``/ip4/../tcp/..``) of the live connections to ``peer_id``."""
        conns = self._lp.get_network().connections.get(_parse_peer_id(peer_id), [])
        out = []
        for conn in conns:
            if _alive(conn):
                try:
                    out += [str(a) for a in conn.get_transport_addresses()]
                except Exception:  # best effort: only used to describe or skip a dial
                    continue
        return out

    def _via(self, peer_id: str, address: str) -> bool:
        """Whether a live connection to ``peer_id`` already runs over ``address``."""
        bare = address.split("/p2p/")[0]
        return any(a.split("/p2p/")[0] == bare for a in self._connection_addresses(peer_id))

    def connected_peers(self) -> list[str]:
        """Peer ids with at least one open connection."""
        swarm = self._lp.get_network()
        return [p.to_base58() for p, conns in swarm.connections.items() if any(_alive(c) for c in conns)]

    def connection_stats(self) -> dict[str, int]:
        """Live connection counts, refusals so far and the inbound bounds (for metrics / getinfo).

        ``inbound`` counts connections holding an inbound slot (handshaking or
        open); ``connections`` is every open connection, both directions.
        """
        stats = self._inbound.snapshot()
        stats["connections"] = len(self._lp.get_network().get_connections())
        return stats

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

    def _check_open(self) -> None:
        if self._closing:
            raise NetError("the host is closed; open a new one with open_host()")

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


def _check_port_free(maddr: multiaddr.Multiaddr) -> None:
    """Fail if a fixed TCP port is already taken, even by a SO_REUSEPORT listener.

    py-libp2p's TCP listener sets SO_REUSEPORT (for hole punching), so a second
    daemon on the same port would start silently and the kernel would split
    incoming connections between the two. A probe bind without SO_REUSEPORT
    fails in that case (and still succeeds over TIME_WAIT leftovers).
    """
    protocols = {p.name for p in maddr.protocols()}
    if "tcp" not in protocols or not int(maddr.value_for_protocol("tcp")):
        return
    family, ip = (
        (socket.AF_INET6, maddr.value_for_protocol("ip6"))
        if "ip6" in protocols
        else (socket.AF_INET, maddr.value_for_protocol("ip4"))
    )
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((ip, int(maddr.value_for_protocol("tcp"))))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(f"address {maddr} is in use: cannot listen on it (choose another port, or "
                                  "tcp/0 for any free one)") from None
            raise ConfigError(f"cannot listen on {maddr}: {exc.strerror}") from None


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
async def open_host(
    *,
    identity_seed: bytes,
    listen: Sequence[str],
    max_frame: int = MAX_FRAME,
    limits: ConnectionLimits | None = None,
) -> AsyncIterator[Host]:
    """Run a libp2p host for the duration of the block.

    ``identity_seed`` (32 bytes) fixes the Ed25519 key, hence the peer id.
    ``listen`` are multiaddrs such as ``/ip4/127.0.0.1/tcp/0`` (port 0 picks a
    free port; ``Host.addresses`` reports the real one). ``limits`` bounds live
    inbound connections (default ``ConnectionLimits()``). On exit every stream
    and connection is closed and every task we started has finished.
    """
    key_pair = _key_pair(identity_seed)
    addrs = [_parse_multiaddr(a) for a in listen]
    if limits is not None and not isinstance(limits, ConnectionLimits):
        raise ConfigError("limits must be a ConnectionLimits")
    for addr in addrs:
        _check_port_free(addr)
    lp = _new_libp2p_host(key_pair, addrs)
    swarm = lp.get_network()
    if not isinstance(swarm, Swarm):
        raise NetError(f"py-libp2p gave a {type(swarm).__name__}, not a Swarm; this version is not supported")
    inbound = InboundSlots(limits)
    _InboundGate(swarm, inbound).install()  # before listening: no connection takes the old path
    async with lp.run(addrs):
        try:
            await swarm.auto_connector.stop()
            missing = [str(a) for a in addrs if str(a) not in swarm.listeners]
            if missing:
                raise ConfigError(f"cannot listen on {missing} (address in use or unsupported)")
            async with trio.open_nursery() as nursery:
                host = Host(lp, nursery, max_frame, addrs, inbound)
                try:
                    yield host
                finally:
                    host._closing = True
                    nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                with trio.move_on_after(SHUTDOWN_TIMEOUT):
                    await lp.close()
