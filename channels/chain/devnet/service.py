"""The devnet as a shared daemon: one ``Devnet`` served over libp2p to many node processes.

The data directory holds everything that must survive a restart:

* ``devnet.db``     the ledger (SQLite, WAL, synchronous=FULL);
* ``identity.key``  the libp2p identity seed (mode 0600): same peer id, same multiaddr;
* ``devnet.addr``   the full multiaddr while the daemon runs (clients with ``--data-dir``);
* ``devnet.lock``   held while running: two daemons on one ledger would fork it;
* ``devnet.pid``    the serving process's pid while it holds the lock (``channels devnet stop``
  signals it; a file left by a killed daemon is ignored, as its lock is free).

Clients sign transactions locally; the daemon only verifies and applies them, so keys
never leave the client. Requests are served concurrently per stream, but every ledger
step is synchronous, so transactions apply one at a time in arrival order.

Resource bounds (``proto/03-ledger.md`` section 9.4): event subscriptions per peer and
in total, and a faucet budget per peer and in total (token buckets); the ledger's logs
are bounded by the store (``store.LOG_KEPT``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from contextlib import aclosing
from pathlib import Path
from typing import Any

import attrs
import trio

from ...chain.base import ChainEvent, Malformed
from ...core.app import DEFAULT_APPS, AppRegistry
from ...core.state import amount_field
from ...datadir import lock_data_dir, pid_file, write_atomic
from ...errors import ChannelsError, ConfigError, LedgerError
from ...keyfile import LIBP2P_IDENTITY, load_or_create_key
from ...net import open_host
from ...net.request_response import SendFn, serve_rpc, serve_subscription
from . import codec as rc
from .constants import ADDR_FILE, DB_FILE, DEFAULT_CHAIN_ID, IDENTITY_FILE, LOCK_FILE, PID_FILE
from .errors import RateLimited, TooManySubscriptions
from .ledger import Devnet
from .rules import faucet_receipt
from .scheme import ADJUDICATOR

logger = logging.getLogger(__name__)

MAX_PAGE_BYTES = 48 * 1024  # an EVENTS answer stays well under the 64 KiB frame cap
MAX_BATCH = 256  # transactions per group commit
MAX_SUBSCRIPTIONS_PER_PEER = 8  # open event subscriptions of one peer id
MAX_SUBSCRIPTIONS = 256  # open event subscriptions in total (~120 KiB each, idle, in py-libp2p)


@attrs.frozen
class Rate:
    """A token bucket: ``burst`` requests at once, refilled at ``per_second``."""

    per_second: float
    burst: float


FAUCET_PER_PEER = Rate(per_second=2.0, burst=20.0)
FAUCET_TOTAL = Rate(per_second=10.0, burst=100.0)


@attrs.define
class _Bucket:
    rate: Rate
    tokens: float
    stamp: float

    def refill(self, now: float) -> None:
        self.tokens = min(self.rate.burst, self.tokens + (now - self.stamp) * self.rate.per_second)
        self.stamp = now


class _FaucetLimit:
    """Faucet budgets: one bucket per peer and one for the daemon.

    The total bucket is the bound (peer ids cost nothing to make); the per-peer one keeps
    one client from taking all of it without the effort of new identities. Only peers
    that were granted a request get a bucket, and full buckets are dropped, so the table
    holds at most the peers served within one refill period."""

    def __init__(self, per_peer: Rate, total: Rate, clock: Callable[[], float]) -> None:
        self._per_peer, self._clock = per_peer, clock
        self._total = _Bucket(total, total.burst, clock())
        self._peers: dict[str, _Bucket] = {}

    def take(self, peer_id: str) -> None:
        now = self._clock()
        self._total.refill(now)
        peer = self._peers.get(peer_id) or _Bucket(self._per_peer, self._per_peer.burst, now)
        peer.refill(now)
        if peer.tokens < 1:
            raise RateLimited(f"this peer may take {self._per_peer.per_second:g} faucet requests a second "
                              f"(bursts of {self._per_peer.burst:g}); retry later")
        if self._total.tokens < 1:
            raise RateLimited(f"the devnet grants {self._total.rate.per_second:g} faucet requests a second "
                              "to all peers together; retry later")
        peer.tokens -= 1
        self._total.tokens -= 1
        self._peers[peer_id] = peer
        if len(self._peers) > 2 * self._total.rate.burst:
            for key, bucket in list(self._peers.items()):
                bucket.refill(now)
                if bucket.tokens >= self._per_peer.burst:
                    del self._peers[key]


@attrs.frozen(kw_only=True)
class DaemonInfo:
    """What a started daemon reports: where to reach it and which chain it runs."""

    address: str  # full multiaddr, ending in /p2p/<peer id>
    peer_id: str
    chain_id: int
    data_dir: Path


@attrs.define
class _Pending:
    """One submitted transaction waiting for its batch to be durable."""

    data: bytes
    done: trio.Event = attrs.Factory(trio.Event)
    result: list[ChainEvent] | LedgerError | None = None


class DevnetService:
    """Answers devnet RPC requests from one ``Devnet``; never raises to the transport.

    Transactions go through one committer task (``run_committer``) that applies whatever
    arrived while the previous commit was being written, in arrival order, under one
    fsync: the group commit that lets the daemon go past one commit per transaction."""

    def __init__(self, devnet: Devnet, *, max_subscriptions_per_peer: int = MAX_SUBSCRIPTIONS_PER_PEER,
                 max_subscriptions: int = MAX_SUBSCRIPTIONS, faucet_per_peer: Rate = FAUCET_PER_PEER,
                 faucet_total: Rate = FAUCET_TOTAL, clock: Callable[[], float] = trio.current_time) -> None:
        self.devnet = devnet
        self._queue_in, self._queue_out = trio.open_memory_channel[_Pending](math.inf)
        self.max_subscriptions_per_peer = max_subscriptions_per_peer
        self.max_subscriptions = max_subscriptions
        self._subscriptions: dict[str, int] = {}  # peer id -> open subscriptions (no zero entries)
        self._faucet = _FaucetLimit(faucet_per_peer, faucet_total, clock)

    @property
    def subscriptions(self) -> int:
        """Event subscriptions open now."""
        return sum(self._subscriptions.values())

    async def run_committer(self) -> None:
        async for first in self._queue_out:
            await trio.lowlevel.checkpoint()  # let requests already read join this batch
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._queue_out.receive_nowait())
                except trio.WouldBlock:
                    break
            try:
                results: list[list[ChainEvent] | LedgerError] = self.devnet.submit_many([p.data for p in batch])
            except ChannelsError as exc:  # the commit itself failed: none of the batch is applied
                logger.error("devnet commit failed: %s", exc)
                results = [_internal(exc)] * len(batch)
            for pending, result in zip(batch, results, strict=True):
                pending.result = result
                pending.done.set()

    async def _submit(self, data: bytes) -> list[ChainEvent]:
        pending = _Pending(data=data)
        self._queue_in.send_nowait(pending)
        await pending.done.wait()
        if isinstance(pending.result, LedgerError):
            raise pending.result
        assert pending.result is not None
        return pending.result

    async def handle(self, request: bytes, peer_id: str = "") -> bytes:
        try:
            type_id, fields = rc.decode_request(request)
            if type_id == rc.SUBMIT:
                return rc.ok([rc.encode_event(e) for e in await self._submit(fields[0])])
            if type_id == rc.SUBSCRIBE:
                raise Malformed("subscribe on the events protocol, not the rpc protocol")
            if type_id == rc.FAUCET and self.devnet.receipt(faucet_receipt(fields[3])) is None:
                # Faucet flood: every grant adds rows (a Minted event, a receipt, maybe a new
                # balance), so grants are rationed; a retry of a granted request mints
                # nothing and costs nothing.
                self._faucet.take(peer_id)
            return self._dispatch(type_id, fields)
        except LedgerError as exc:
            return rc.error(exc)
        except ChannelsError as exc:  # storage failure: report it, keep serving
            logger.error("devnet request failed: %s", exc)
            return rc.error(_internal(exc))
        finally:
            await trio.lowlevel.checkpoint()

    def _dispatch(self, type_id: int, f: list[Any]) -> bytes:
        d, store = self.devnet, self.devnet.store
        if type_id == rc.STATUS:
            head = d.head
            return rc.ok(head.height, head.time, head.chain_id, ADJUDICATOR, block_time_ms(d.block_time),
                         store.genesis)
        if type_id == rc.NONCE:
            return rc.ok(store.nonce(f[0]))
        if type_id == rc.BALANCE:
            return rc.ok(amount_field(store.balance(f[0], f[1])))
        if type_id == rc.BALANCES:
            return rc.ok(rc.amounts_fields(store.balances(f[0])))
        if type_id == rc.CHANNEL:
            return rc.ok(rc.channel_fields(d.channel_sync(f[0])))
        if type_id == rc.SECRET_TIME:
            secret = store.secret(f[0])
            return rc.ok(None if secret is None else secret.time)
        if type_id == rc.FAUCET:
            return rc.ok(amount_field(d.faucet_sync(f[0], rc.amount_from_field(f[2]), f[1], request_id=f[3])))
        if type_id == rc.RECEIPT:
            found = d.receipt(f[0])
            if found is None:
                return rc.ok(None, [])
            return rc.ok(found[0], [rc.encode_event(e) for e in found[1]])
        if type_id == rc.EVENTS:
            return rc.ok(self._page(f[0], min(f[1], rc.MAX_EVENTS_PER_CALL)))
        raise Malformed(f"unknown request type {type_id}")

    def _page(self, after: int, limit: int) -> list[Any]:
        out: list[Any] = []
        size = 0
        for ev in self.devnet.store.events_after(after, limit):
            data = rc.encode_event(ev)
            size += len(data)
            if out and size > MAX_PAGE_BYTES:
                break
            out.append(data)
        return out

    async def subscribe(self, request: bytes, send: SendFn, peer_id: str = "") -> None:
        """Push every event after the requested cursor, then new ones, until the client leaves.

        A refusal ends the stream with the text ``LedgerError: <code>: <message>``."""
        try:
            type_id, fields = rc.decode_request(request)
            if type_id != rc.SUBSCRIBE:
                raise Malformed("the events protocol takes one SUBSCRIBE request")
            self._open_subscription(peer_id)
        except LedgerError as exc:
            raise rc.subscription_error(exc) from None
        try:
            async with aclosing(self.devnet.events(after=fields[0])) as events:  # type: ignore[type-var]
                async for ev in events:
                    await send(rc.encode_event(ev))
        except LedgerError as exc:  # the cursor was pruned, now or while this reader lagged
            raise rc.subscription_error(exc) from None
        finally:
            self._close_subscription(peer_id)

    def _open_subscription(self, peer_id: str) -> None:
        # Memory exhaustion: each idle subscription holds a stream and its buffers (300 of
        # them cost 37 MB); without a bound any client could open them until the daemon dies.
        mine = self._subscriptions.get(peer_id, 0)
        if mine >= self.max_subscriptions_per_peer:
            raise TooManySubscriptions(f"this peer already has {mine} event subscriptions open, the most the "
                                       f"devnet serves one peer; close one or poll with EVENTS")
        if self.subscriptions >= self.max_subscriptions:
            raise TooManySubscriptions(f"the devnet serves {self.max_subscriptions} event subscriptions at most "
                                       "and all are taken; poll with EVENTS or retry later")
        self._subscriptions[peer_id] = mine + 1

    def _close_subscription(self, peer_id: str) -> None:
        left = self._subscriptions[peer_id] - 1
        if left:
            self._subscriptions[peer_id] = left
        else:
            del self._subscriptions[peer_id]


def block_time_ms(seconds: float) -> int:
    """The block interval on the wire: whole milliseconds, at least 1 (msgpack has no floats here)."""
    return max(1, round(seconds * 1000))


def _internal(exc: Exception) -> LedgerError:
    err = LedgerError(f"{type(exc).__name__}: {exc}")
    err.code = "internal"
    return err


def identity_seed(data_dir: Path) -> bytes:
    """The daemon's libp2p identity, created once (mode 0600) so its peer id never changes."""
    return load_or_create_key(data_dir / IDENTITY_FILE, use=LIBP2P_IDENTITY).seed


async def serve_devnet(data_dir: str | Path, *, listen: str = "/ip4/127.0.0.1/tcp/0", block_time: float = 1.0,
                       chain_id: int = DEFAULT_CHAIN_ID, apps: AppRegistry = DEFAULT_APPS,
                       task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    """Run the daemon until cancelled; ``task_status.started(DaemonInfo)`` once it accepts clients.

    ``chain_id`` applies when the data directory is new; afterwards the ledger keeps its own."""
    if not block_time > 0:
        raise ConfigError("--block-time must be positive")
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    addr_file = data_dir / ADDR_FILE
    with lock_data_dir(data_dir, LOCK_FILE, _busy(data_dir, addr_file)), pid_file(data_dir / PID_FILE):
        seed = identity_seed(data_dir)
        devnet: Devnet | None = None
        try:
            # Listen before opening the ledger: a taken port fails with the chain untouched.
            async with open_host(identity_seed=seed, listen=[listen]) as host:
                devnet = Devnet(data_dir / DB_FILE, chain_id=chain_id, auto_mine=False, block_time=block_time,
                                apps=apps)
                devnet.mine()  # a block at start-up: the chain's time catches up with the clock
                service = DevnetService(devnet)
                serve_rpc(host, rc.RPC_PROTOCOL, service.handle)
                serve_subscription(host, rc.EVENTS_PROTOCOL, service.subscribe)
                address = host.addresses[0]
                write_atomic(addr_file, address + "\n")
                try:
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(service.run_committer)
                        task_status.started(DaemonInfo(address=address, peer_id=host.peer_id,
                                                       chain_id=devnet.chain_id, data_dir=data_dir))
                        while True:
                            await trio.sleep(block_time)
                            devnet.mine()
                finally:
                    addr_file.unlink(missing_ok=True)
        finally:
            if devnet is not None:  # after the host: no handler is left to use it
                devnet.close()


def _busy(data_dir: Path, addr_file: Path) -> str:
    """The error when another daemon holds the data dir: where it listens, how to stop it."""
    try:
        address = addr_file.read_text().strip()
    except OSError:
        address = ""
    where = f" (listening on {address})" if address else ""
    return f"another devnet daemon is running on {data_dir}{where}; stop it first: channels devnet stop --data-dir " \
           f"{data_dir}"
