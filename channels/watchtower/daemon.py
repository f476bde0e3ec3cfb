"""The tower daemon: the pure ``Tower`` plus a libp2p server, an L1 follower and a submitter.

The data directory holds what must survive a restart:

* ``tower.db``      appointments, clients, disputes, the L1 cursor (SQLite, WAL; ``store``);
* ``identity.key``  the libp2p identity (0600): the peer id clients know, and the key that
  signs receipts;
* ``l1.key``        the L1 account that signs refutes and secret registrations (the devnet has
  no fees: it needs no funds);
* ``tower.addr``    the full multiaddr while it runs; ``tower.lock`` held while it runs;
  ``tower.pid`` its pid (``channels tower stop``).

Three tasks share one ``Tower``, all on one trio thread so no two of them interleave inside
a store transaction:

* the committer writes batches of accepted appointments in one transaction and only then
  releases their receipts (persist, then acknowledge);
* the follower reads L1 events from the persisted cursor (so a restart catches up on what
  happened while it was down) and persists each reaction with the cursor;
* the submitter asks the core what is due every ``poll`` seconds (and at once after an
  event), checks the L1's view first, so it never sends a transaction the ledger would
  refuse, and retries until the L1 shows it done or the window is over.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import trio

from ..chain.base import ChainEvent, ChannelOnChain, Ledger, Signer
from ..chain.devnet.scheme import ADJUDICATOR, DevnetKey, DevnetScheme
from ..core.ids import ChannelId
from ..crypto import SigningKey
from ..datadir import lock_data_dir, pid_file, write_atomic
from ..errors import ChannelsError, ConfigError, LedgerError, StorageError
from ..keyfile import L1_ACCOUNT, LIBP2P_IDENTITY, load_or_create_key
from .appointment import Appointment, EncryptedAppointment
from .constants import ADDR_FILE, DB_FILE, IDENTITY_FILE, L1_KEY_FILE, LOCK_FILE, PID_FILE
from .core import Action, Limits, Reaction, Refute, RegisterSecret, Tower
from .errors import MalformedAppointment, TowerError, TowerUnavailable
from .protocol import (
    PROTOCOL_TOWER,
    ForgetRequest,
    InfoRequest,
    TowerInfo,
    decode_request,
    encode_forgotten,
    encode_info,
    encode_receipt,
    encode_refusal,
)
from .store import TowerStore

log = logging.getLogger("channels.watchtower")

MAX_BATCH = 256  # appointments per group commit
POLL = 1.0  # seconds between looks at what is due (and after an event, at once)
EXPIRE_EVERY = 30.0  # seconds between drops of finished disputes
MAX_BACKOFF = 4.0  # seconds between attempts of one failing submission


@attrs.frozen(kw_only=True)
class DaemonInfo:
    address: str
    peer_id: str
    chain_id: int
    l1_account: str
    data_dir: Path


@attrs.define
class _Pending:
    request: Appointment | EncryptedAppointment
    client: str
    done: trio.Event = attrs.Factory(trio.Event)
    response: bytes = b""


class TowerService:
    """Answers ``/channels/tower/1.0.0`` requests; never raises to the transport."""

    def __init__(self, tower: Tower, store: TowerStore, info: TowerInfo,
                 clock: Callable[[], float] = time.time) -> None:
        self.tower, self.store, self.info, self._clock = tower, store, info, clock
        self._in, self._out = trio.open_memory_channel[_Pending](math.inf)

    async def handle(self, request: bytes, peer_id: str = "") -> bytes:
        try:
            req = decode_request(request)
        except MalformedAppointment as exc:
            return encode_refusal(exc)
        if isinstance(req, InfoRequest):
            return encode_info(self.info)
        if isinstance(req, ForgetRequest):
            return self._forget(peer_id, list(req.locators))
        pending = _Pending(request=req, client=peer_id)
        self._in.send_nowait(pending)
        await pending.done.wait()
        return pending.response

    def _forget(self, client: str, locators: list[bytes]) -> bytes:
        try:
            self.tower.take_rate(client, self._clock())  # each FORGET costs a commit: rationed like appointments
        except TowerError as exc:
            return encode_refusal(exc)
        gone, deltas = self.tower.forget_blobs(client, locators)
        try:
            with self.store.transaction():
                self.store.delete_blobs(client, gone, deltas, int(self._clock()))
        except StorageError as exc:
            self.tower.reset_usage(self.store.usage())
            log.error("tower store failed: %s", exc)
            return encode_refusal(TowerUnavailable("the tower could not write; retry later"))
        return encode_forgotten(len(gone))

    async def run_committer(self) -> None:
        async for first in self._out:
            await trio.lowlevel.checkpoint()  # let requests already read join this batch
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._out.receive_nowait())
                except trio.WouldBlock:
                    break
            self._commit(batch)
            for p in batch:
                p.done.set()

    def _commit(self, batch: list[_Pending]) -> None:
        now = self._clock()
        try:
            with self.store.transaction():
                for p in batch:
                    try:
                        if isinstance(p.request, Appointment):
                            acc = self.tower.accept(p.request, p.client, now)
                            self.store.save_accepted(acc)
                            receipt = acc.receipt
                        else:
                            blob = self.tower.accept_encrypted(p.request, p.client, now)
                            self.store.save_blob(blob)
                            receipt = blob.receipt
                        p.response = encode_receipt(receipt)
                    except TowerError as exc:
                        p.response = encode_refusal(exc)
        except StorageError as exc:
            # Nothing of the batch is stored, so no receipt may leave: every request is refused.
            self.tower.reset_usage(self.store.usage())
            log.error("tower store failed: %s", exc)
            refusal = encode_refusal(TowerUnavailable("the tower could not store the appointment; retry later"))
            for p in batch:
                p.response = refusal


class Watcher:
    """Follows the L1 and submits what the core decides."""

    def __init__(self, tower: Tower, store: TowerStore, ledger: Ledger, key: Signer, *, poll: float = POLL) -> None:
        self.tower, self.store, self.ledger, self.key, self.poll = tower, store, ledger, key, poll
        self._wake = trio.Event()
        self._in_flight: set[tuple[str, bytes, int]] = set()
        self._retry: dict[tuple[str, bytes, int], tuple[float, float]] = {}  # key -> (not before, backoff)
        self.submitted: list[Action] = []  # what this process sent (tests, logs)
        self.caught_up = trio.Event()

    # --- following ---------------------------------------------------------------------------------

    def handle_event(self, ev: ChainEvent) -> Reaction:
        """Apply one event: the core's reaction and the cursor, in one transaction."""
        reaction = self.tower.on_chain_event(ev)
        with self.store.transaction(durable=reaction.writes):
            self.store.apply(reaction, ev.time)
            self.store.set_cursor(ev.cursor)
        if reaction.learned:
            log.info("a registration of channel %s opened %d encrypted appointment(s)", ev.channel_id.hex()
                     if ev.channel_id else "?", len(reaction.blobs_used))
        if reaction.actions:
            self._wake.set()
        return reaction

    async def follow(self) -> None:
        cursor = self.store.cursor()
        while True:
            try:
                async for ev in self.ledger.events(after=cursor):
                    self.handle_event(ev)
                    cursor = ev.cursor
                return
            except LedgerError as exc:
                if getattr(exc, "code", "") != "cursor_pruned":
                    raise
                pruned = int(getattr(exc, "pruned_through", None) or cursor)
                log.error("L1 events after %d were pruned before the tower read them; re-reading the channels of "
                          "plain appointments (encrypted ones cannot be matched without their events)", cursor)
                await self.resync(pruned)
                cursor = max(cursor, pruned)

    async def resync(self, cursor: int) -> None:
        """Bring every plain appointment's channel up to the L1's view of it (after lost events)."""
        for cid in list(self.store.channel_ids()):
            view = await self.ledger.channel(cid)
            for ev in view_events(cid, view, cursor):
                self.handle_event(ev)
        with self.store.transaction(durable=False):
            self.store.set_cursor(max(cursor, self.store.cursor()))

    # --- submitting --------------------------------------------------------------------------------

    async def submit_loop(self) -> None:
        last_expire = -math.inf
        async with trio.open_nursery() as nursery:
            while True:
                try:
                    now = await self.ledger.now()
                except LedgerError as exc:
                    log.warning("cannot reach the L1 (%s); disputes are unguarded until it is back", exc)
                    await trio.sleep(self.poll)
                    continue
                due = self.tower.pending(now)
                clock = trio.current_time()
                keys = {a.key for a in due}
                for key in [k for k in self._retry if k not in keys]:
                    del self._retry[key]
                for action in due:
                    if action.key in self._in_flight or self._retry.get(action.key, (0.0, 0.0))[0] > clock:
                        continue
                    self._in_flight.add(action.key)
                    nursery.start_soon(self._submit, action)
                if clock - last_expire >= EXPIRE_EVERY:
                    last_expire = clock
                    self._expire(now)
                with trio.move_on_after(self.poll):
                    await self._wake.wait()
                self._wake = trio.Event()

    def _expire(self, now: int) -> None:
        reaction = self.tower.expire(now)
        with self.store.transaction(durable=False):
            self.store.apply(reaction, now)
        if reaction.closed:
            log.info("dropped %d finished dispute(s) and their appointments", len(reaction.closed))

    async def _submit(self, action: Action) -> None:
        key = action.key
        clock = trio.current_time()
        try:
            if isinstance(action, Refute):
                await self._refute(action)
            else:
                await self._register_secret(action)
            self._retry[key] = (clock + self.poll, self.poll)
        except (LedgerError, ChannelsError) as exc:
            backoff = min(MAX_BACKOFF, self._retry.get(key, (0.0, self.poll / 2))[1] * 2)
            self._retry[key] = (clock + backoff, backoff)
            log.warning("tower submission for channel %s failed (%s); retrying in %.1f s",
                        action.channel_id.hex(), exc, backoff)
        finally:
            self._in_flight.discard(key)
            self._wake.set()

    async def _refute(self, a: Refute) -> None:
        view = await self.ledger.channel(a.channel_id)
        now = await self.ledger.now()
        ours = a.signed.state.version
        held = view.registered
        if view.withdrawn or view.concluded or held is None or view.deadline is None:
            return  # nothing to refute (the event that would say so is on its way)
        if held.state.version >= ours or now >= view.deadline:
            return  # refuted already, or too late: the ledger would refuse it
        await self.ledger.refute(self.key, a.params, a.signed)
        self.submitted.append(a)
        log.info("refuted channel %s: version %d registered, %d submitted (window ends at %d)",
                 a.channel_id.hex(), held.state.version, ours, view.deadline)

    async def _register_secret(self, a: RegisterSecret) -> None:
        if await self.ledger.secret_time(a.hashlock) is not None:
            # Registered before this dispute (its event is behind us): the core must learn it here.
            reaction = self.tower.secret_registered(a.hashlock)
            with self.store.transaction(durable=False):
                self.store.apply(reaction)
            return
        if await self.ledger.now() >= a.expiry:
            return  # too late to count: registering would only reveal it
        await self.ledger.register_secret(self.key, a.preimage)
        self.submitted.append(a)
        log.info("registered the preimage of lock %s of channel %s (expiry %d)", a.hashlock.hex()[:16],
                 a.channel_id.hex(), a.expiry)


def view_events(cid: ChannelId, view: ChannelOnChain, cursor: int) -> list[ChainEvent]:
    """Events that bring the core to the L1's current view of a channel (lost events)."""
    out = []
    if view.registered is not None and not view.concluded:
        out.append(ChainEvent(cursor=cursor, kind="Registered", channel_id=cid, height=0, time=0,
                              data={"version": view.registered.state.version, "deadline": int(view.deadline or 0),
                                    "registrar": b"", "state": view.registered}))
    if view.concluded and view.registered is not None:
        out.append(ChainEvent(cursor=cursor, kind="Concluded", channel_id=cid, height=0, time=0,
                              data={"version": view.registered.state.version, "state": view.registered}))
    if view.withdrawn and view.registered is not None:
        out.append(ChainEvent(cursor=cursor, kind="Withdrawn", channel_id=cid, height=0, time=0,
                              data={"version": view.registered.state.version, "refunded": False, "payouts": ()}))
    return out


# --- the daemon ------------------------------------------------------------------------------------


def _busy(data_dir: Path) -> str:
    try:
        address = (data_dir / ADDR_FILE).read_text().strip()
    except OSError:
        address = ""
    where = f" (listening on {address})" if address else ""
    return f"another tower is running on {data_dir}{where}; stop it first: channels tower stop --data-dir {data_dir}"


def check_ledger(store: TowerStore, chain_id: int, genesis: bytes | None) -> None:
    """Refuse a ledger other than the one the store's appointments and cursor belong to."""
    known = store.get_meta("chain_id")
    if known is None:
        with store.transaction():
            store.set_meta("chain_id", str(chain_id).encode())
            if genesis is not None:
                store.set_meta("genesis", genesis)
        return
    if int(known.decode()) != chain_id:
        raise ConfigError(f"this tower's data belongs to chain {known.decode()}, the devnet runs chain {chain_id}; "
                          "use another --data-dir")
    stored = store.get_meta("genesis")
    if stored is not None and genesis is not None and stored != genesis:
        raise ConfigError("this tower's data belongs to another ledger (its genesis id differs: a reset devnet?); "
                          "use another --data-dir")


async def serve_tower(data_dir: str | Path, *, listen: str = "/ip4/127.0.0.1/tcp/0", devnet: str,
                      limits: Limits | None = None, poll: float = POLL,
                      task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    """Run the tower until cancelled; ``task_status.started(DaemonInfo)`` once it serves clients."""
    from ..chain.devnet.client import open_remote_devnet
    from ..net import open_host
    from ..net.request_response import serve_rpc

    data_dir = Path(data_dir).expanduser()
    data_dir.mkdir(parents=True, exist_ok=True)
    with lock_data_dir(data_dir, LOCK_FILE, _busy(data_dir)), pid_file(data_dir / PID_FILE):
        identity = load_or_create_key(data_dir / IDENTITY_FILE, use=LIBP2P_IDENTITY)
        l1_key = DevnetKey(load_or_create_key(data_dir / L1_KEY_FILE, use=L1_ACCOUNT))
        store = TowerStore(data_dir / DB_FILE)
        addr_file = data_dir / ADDR_FILE
        try:
            async with open_host(identity_seed=identity.seed, listen=[listen]) as host, \
                    open_remote_devnet(devnet, host=host) as ledger:
                head = await ledger.status()
                check_ledger(store, int(head.chain_id), head.genesis)
                tower = Tower(signer=DevnetKey(identity), scheme=DevnetScheme(), chain_id=int(head.chain_id),
                              adjudicator=ADJUDICATOR, records=store, limits=limits, usage=store.usage(),
                              disputes=store.disputes())
                info = tower_info(tower, identity, head.genesis)
                service = TowerService(tower, store, info)
                watcher = Watcher(tower, store, ledger, l1_key, poll=poll)
                serve_rpc(host, PROTOCOL_TOWER, service.handle)
                address = host.addresses[0]
                write_atomic(addr_file, address + "\n")
                try:
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(service.run_committer)
                        nursery.start_soon(watcher.follow)
                        nursery.start_soon(watcher.submit_loop)
                        task_status.started(DaemonInfo(address=address, peer_id=host.peer_id,
                                                       chain_id=int(head.chain_id),
                                                       l1_account=l1_key.address.hex(), data_dir=data_dir))
                finally:
                    addr_file.unlink(missing_ok=True)
        finally:
            store.close()


def tower_info(tower: Tower, identity: SigningKey, genesis: bytes | None) -> TowerInfo:
    lim = tower.limits
    return TowerInfo(tower_key=identity.public_key, chain_id=tower.chain_id, adjudicator=tower.adjudicator,
                     genesis=genesis, max_appointment_bytes=lim.max_appointment_bytes,
                     per_client_appointments=lim.per_client_appointments, per_client_bytes=lim.per_client_bytes)
