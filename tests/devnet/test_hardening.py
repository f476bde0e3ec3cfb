"""Security review fixes of the devnet (proto/03-ledger.md sections 5, 8, 9.4 and 11).

* a payout never fails for the receiver's balance (balances have no cap), and a data dir
  written by the released version (schema 1) opens and pays out;
* any event cursor gets an answer or ``malformed``, never an internal error;
* event subscriptions are bounded per peer and in total, and a closed one frees its slot;
* the faucet is rationed and the logs are pruned: a flood leaves the database bounded,
  and a pruned cursor is refused with ``cursor_pruned``;
* the status reports the block interval.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from daemon_util import DaemonProc
from devnet_util import keys, make_params, signed
from test_cli import run

from channels import encoding
from channels.chain.base import AlreadyWithdrawn, Malformed, Overflow
from channels.chain.devnet import client as client_module
from channels.chain.devnet import codec as rc
from channels.chain.devnet.client import RemoteDevnet, open_remote_devnet
from channels.chain.devnet.errors import CursorPruned, RateLimited, TooManySubscriptions
from channels.chain.devnet.ledger import Devnet
from channels.chain.devnet.rules import ChannelRecord, faucet_receipt
from channels.chain.devnet.service import FAUCET_PER_PEER, FAUCET_TOTAL, DevnetService
from channels.chain.devnet.store import SCHEMA_VERSION
from channels.core.ids import MAX_AMOUNT, MAX_U64, NATIVE
from channels.core.state import Lock
from channels.crypto import sha256
from channels.errors import ConfigError, DecodeError, LedgerError
from channels.net import Host, RpcRemoteError, open_host
from channels.net.request_response import open_subscription

A, B, C = keys("alice", "bob", "carol")
RELEASED_V1 = Path(__file__).parent / "data" / "devnet_v1.sql"
RELEASED_V1_LOCKS = Path(__file__).parent / "data" / "devnet_v1_locks.sql"


def released_data_dir(tmp_path: Path, dump: Path = RELEASED_V1) -> Path:
    """A devnet.db exactly as the released version (schema 1) wrote it: see data/devnet_v1.sql."""
    path = tmp_path / "devnet.db"
    db = sqlite3.connect(path)
    db.executescript(dump.read_text())
    db.close()
    return path


def rows(path: Path, table: str) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    finally:
        db.close()


# --- 1. a payout never fails for the receiver's balance -------------------------------------------


async def test_a_withdraw_pays_a_receiver_whose_balance_is_at_2_64(tmp_path: Path) -> None:
    params = make_params([A, B], duration=100, nonce=b"full-receiver")
    path = tmp_path / "devnet.db"
    with Devnet(path, clock=None) as dn:
        await dn.faucet(A.address, 100)
        await dn.faucet(B.address, 100)
        await dn.deposit(A, params.channel_id, NATIVE, 100)
        await dn.deposit(B, params.channel_id, NATIVE, 100)
        await dn.faucet(B.address, MAX_U64)  # bob's L1 balance: 2^64-1
        await dn.register(A, params, signed(params, [A, B], 1, (120, 80)))
        dn.advance_time(100)
        await dn.withdraw(A, params)  # used to fail with overflow, freezing alice's 120
        assert await dn.balance(A.address) == 120
        assert await dn.balance(B.address) == MAX_U64 + 80
        assert (await dn.channel(params.channel_id)).withdrawn
        await dn.transfer(B, C.address, MAX_U64)  # the big balance is spendable, one u64 at a time
    with Devnet(path, clock=None) as again:  # stored losslessly
        assert await again.balance(B.address) == 80
        await again.faucet(B.address, MAX_U64)
        await again.faucet(B.address, MAX_U64)
    with Devnet(path, clock=None) as again:
        assert await again.balance(B.address) == 2 * MAX_U64 + 80
        # Holdings stay within 2^256-1 (so every payout does): only the depositor's own deposit is refused.
        other = make_params([A, B], nonce=b"other")
        await again.faucet(B.address, MAX_AMOUNT)
        await again.deposit(B, other.channel_id, NATIVE, MAX_AMOUNT)
        before = again.state_digest()
        with pytest.raises(Overflow):
            await again.deposit(B, other.channel_id, NATIVE, 1)
        assert again.state_digest() == before


async def test_a_released_data_dir_opens_and_its_frozen_payout_goes_through(tmp_path: Path) -> None:
    path = released_data_dir(tmp_path)
    params = make_params([A, B], duration=100)
    with Devnet(path, clock=None) as dn:  # schema 1 -> 3 on open
        assert (dn.head.height, dn.head.time, dn.chain_id) == (1, 1_700_000_010, 1337)
        assert await dn.balances(B.address) == {"native": MAX_U64, "GOLD": 7}
        assert await dn.balance(A.address) == 400 and await dn.nonce(A.address) == 6
        view = await dn.channel(params.channel_id)
        assert view.holdings == {"native": 200} and view.deadline == 1_700_000_110
        assert view.registered is not None and view.registered.state.version == 3
        assert await dn.secret_time(sha256(b"secret")) == 1_700_000_000
        assert [ev.kind for ev in dn.store.events_after(0)][:2] == ["Minted", "Minted"]
        dn.advance_time(100)
        await dn.withdraw(A, params)  # the released version refused this: bob sits at 2^64-1
        assert await dn.balance(A.address) == 400 + 150
        assert await dn.balance(B.address) == MAX_U64 + 50
    with Devnet(path, clock=None) as again:  # and the upgraded file opens again
        assert await again.balance(B.address) == MAX_U64 + 50
    db = sqlite3.connect(path)
    assert dict(db.execute("SELECT key, value FROM meta"))["schema"] == SCHEMA_VERSION == 3
    db.close()


async def test_released_locks_open_and_a_disputed_one_is_escrowed(tmp_path: Path) -> None:
    """A released file with locks (6 fields, no lock id; see data/devnet_v1_locks.sql): every
    record and event decodes after the upgrade, each lock has an id distinct in its state, the
    channel the released rule paid out stays paid out, and the disputed one pays its locks by
    the new rule."""
    path = released_data_dir(tmp_path, RELEASED_V1_LOCKS)
    paid = make_params([A, B], duration=100, nonce=b"locks-paid")
    open_ = make_params([A, B], duration=100, nonce=b"locks-open")
    with Devnet(path, clock=None) as dn:  # schema 1 -> 3 on open
        assert dn.head.time == 1_700_000_100
        assert await dn.balance(A.address) == 400 and await dn.balance(B.address) == 400
        events = dn.store.events_after(0)
        assert [ev.kind for ev in events].count("Registered") == 2 and events[-1].kind == "Withdrawn"
        view = await dn.channel(paid.channel_id)
        assert view.withdrawn and view.holdings == {}  # its lock was paid by the released rule
        with pytest.raises(AlreadyWithdrawn):
            await dn.withdraw(A, paid)
        view = await dn.channel(open_.channel_id)
        assert view.registered is not None and view.holdings == {"native": 200}
        locks = view.registered.state.allocation.locks
        assert [(lk.amount, lk.payer, lk.lock_id) for lk in locks] == [(30, 0, b"\x00"), (5, 1, b"\x01")]
        assert locks[0].hashlock == sha256(b"open preimage") and locks[0].expiry == 1_700_003_600
        assert [ev.data["state"] for ev in events if ev.kind == "Registered"][-1] == view.registered
        await dn.withdraw(A, open_)  # the window ended at 1700000100
        assert (await dn.balance(A.address), await dn.balance(B.address)) == (470, 495)
        assert (await dn.channel(open_.channel_id)).holdings == {"native": 35}
        dn.advance_time(1000)
        await dn.register_secret(B, b"open preimage")  # long after the withdraw, before the expiry
        await dn.withdraw(A, open_)
        assert (await dn.balance(A.address), await dn.balance(B.address)) == (470, 525)
        dn.advance_time(2500)  # the second lock expires: back to bob, its payer
        await dn.withdraw(A, open_)
        assert (await dn.balance(A.address), await dn.balance(B.address)) == (470, 530)
    with Devnet(path, clock=None) as again:  # the upgraded file opens again, as it is
        resolved = [ev.data for ev in again.store.events_after(0) if ev.kind == "LockResolved"]
        assert [(lk["lock_id"], lk["fulfilled"]) for lk in resolved] == [(b"\x00", True), (b"\x01", False)]


async def test_a_channel_withdrawn_before_lock_escrow_reads_as_paid_out(tmp_path: Path) -> None:
    """Schemas 1 and 2 kept 7-field channel records and paid every lock at the withdraw:
    such a withdrawn record opens as fully paid, with nothing left in escrow."""
    params = make_params([A, B], duration=100, nonce=b"old-withdrawn")
    path = tmp_path / "devnet.db"
    with Devnet(path, clock=None) as dn:
        await dn.faucet(A.address, 100)
        await dn.deposit(A, params.channel_id, NATIVE, 100)
        t0 = await dn.now()
        lock = Lock(asset=NATIVE, amount=30, hashlock=sha256(b"p"), expiry=t0 + 3600, payer=0, payee=1)
        await dn.register(A, params, signed(params, [A, B], 1, (70, 0), locks=[lock]))
        dn.advance_time(100)
        await dn.withdraw(A, params)
        assert (await dn.channel(params.channel_id)).holdings == {"native": 30}
    db = sqlite3.connect(path)  # as the earlier releases wrote it (they had paid the lock already)
    (blob,) = db.execute("SELECT record FROM channels").fetchone()
    fields = encoding.decode(blob)
    assert len(fields) == 8 and fields[6] is True and fields[7] == [0]
    db.execute("UPDATE channels SET record = ?", (encoding.encode(fields[:7]),))
    db.execute("UPDATE meta SET value = 2 WHERE key = 'schema'")
    db.commit()
    db.close()
    with Devnet(path, clock=None) as dn:  # schema 2 -> 3 on open
        view = await dn.channel(params.channel_id)
        assert view.withdrawn and view.holdings == {}
        before = dn.state_digest()
        with pytest.raises(AlreadyWithdrawn):
            await dn.withdraw(A, params)
        assert dn.state_digest() == before
    db = sqlite3.connect(path)
    assert dict(db.execute("SELECT key, value FROM meta"))["schema"] == 3
    db.close()


def test_a_channel_record_with_bad_pending_locks_does_not_decode() -> None:
    params = make_params([A, B], nonce=b"record")
    state = signed(params, [A, B], 1, (1, 1), locks=[Lock(asset=NATIVE, amount=1, hashlock=sha256(b"p"),
                                                              expiry=9, payer=0, payee=1)])
    good = ChannelRecord(channel_id=params.channel_id, params=params, state=state, withdrawn=True, pending=(0,))
    assert ChannelRecord.from_fields(good.to_fields()) == good
    for pending in ([1], [0, 0], [-1], "0", [True]):  # out of range, repeated, negative, not a list, bool
        with pytest.raises(DecodeError):
            ChannelRecord.from_fields([*good.to_fields()[:7], pending])


def test_a_client_skips_an_event_kind_it_does_not_know() -> None:
    """Kinds may be added (LockResolved was): an unknown one decodes with empty data, so a
    subscription moves past it; a known kind with wrong fields is still malformed."""
    ev = rc.decode_event(encoding.encode([7, "SomethingNew", None, 3, 1_700_000_000, [1, b"x"]]))
    assert (ev.cursor, ev.kind, ev.data) == (7, "SomethingNew", {})
    with pytest.raises(Malformed):
        rc.decode_event(encoding.encode([7, "LockResolved", b"\x00" * 32, 3, 1_700_000_000, [1, b"x"]]))


async def test_a_released_data_dir_starts_a_daemon(tmp_path: Path) -> None:
    released_data_dir(tmp_path)
    with DaemonProc(tmp_path, block_time=0.1) as proc:
        async with open_remote_devnet(proc.address) as dn:
            status = await dn.status()
            assert status.chain_id == 1337 and status.height >= 2  # a block at start-up
            assert await dn.balance(B.address) == MAX_U64
            assert [ev.kind for ev in await dn.events_page(after=8)] == ["Registered", "Minted"]


async def test_a_database_newer_than_this_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "devnet.db"
    Devnet(path, clock=None).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = 99 WHERE key = 'schema'")
    db.commit()
    db.close()
    with pytest.raises(ConfigError, match="schema 99"):
        Devnet(path, clock=None)
    with pytest.raises(ConfigError, match="chain id"):  # SQLite integers stop at 2^63-1
        Devnet(tmp_path / "other.db", chain_id=2**63)


async def test_balances_above_2_64_travel_over_the_rpc(daemon: DaemonProc) -> None:
    rich = keys(f"rich-{os.getpid()}-{os.urandom(4).hex()}")[0]
    async with open_remote_devnet(daemon.address) as dn:
        assert await dn.faucet(rich.address, MAX_U64) == MAX_U64
        assert await dn.faucet(rich.address, 5) == MAX_U64 + 5
        assert await dn.balance(rich.address) == MAX_U64 + 5
        assert await dn.balances(rich.address) == {"native": MAX_U64 + 5}
        await dn.transfer(rich, C.address, 6)
        assert await dn.balance(rich.address) == MAX_U64 - 1


def test_big_amounts_have_one_wire_form() -> None:
    for n in (0, 1, MAX_U64, MAX_U64 + 1, 2**200):
        assert rc.amount_from_field(encoding.decode(encoding.encode([rc.amount_field(n)]))[0]) == n
    assert rc.amount_field(MAX_U64 + 1) == b"\x01" + bytes(8)
    for bad in (-1, b"\x00" + b"\xff" * 8, b"\xff" * 8, "1", None):
        with pytest.raises(Malformed):
            rc.amount_from_response(bad)


# --- 2. any cursor gets an answer -----------------------------------------------------------------


async def test_any_event_cursor_gets_an_answer_over_the_rpc(daemon: DaemonProc) -> None:
    async with open_remote_devnet(daemon.address) as dn, _host(daemon) as (host, peer):
        await dn.faucet(C.address, 1)
        for after in (2**63 - 2, 2**63 - 1, 2**63, 2**64 - 1):  # beyond the head: no events
            assert await dn.call_raw(rc.encode_request(rc.EVENTS, after, 10)) == [[]]
            assert await dn.events_page(after=after) == []
        assert await dn.call_raw(rc.encode_request(rc.EVENTS, 0, 2**64 - 1))  # a huge limit is capped
        for bad in (-1, -(2**63), b"\x00", "1", None):
            with pytest.raises(Malformed):
                await dn.call_raw(rc.encode_request(rc.EVENTS, bad, 10))
        for bad in (-1, 2**64, 1.5):  # refused before it is sent
            with pytest.raises(Malformed):
                await dn.events_page(after=bad)  # type: ignore[arg-type]
            with pytest.raises(Malformed):
                await anext(dn.events(after=bad))  # type: ignore[arg-type]

        async with open_subscription(host, peer, rc.EVENTS_PROTOCOL,
                                     rc.encode_request(rc.SUBSCRIBE, 2**64 - 1)) as sub:
            with trio.move_on_after(0.3) as idle:
                await sub.__anext__()  # nothing after that cursor (yet), and no error
            assert idle.cancelled_caught
        async with open_subscription(host, peer, rc.EVENTS_PROTOCOL, rc.encode_request(rc.SUBSCRIBE, -1)) as sub:
            with pytest.raises(RpcRemoteError) as info:
                await sub.__anext__()
            assert isinstance(rc.subscription_refusal(str(info.value)), Malformed)
        with trio.move_on_after(0.3) as idle:
            async for _ in dn.events(after=2**63):
                raise AssertionError("no event has a cursor above 2^63")
        assert idle.cancelled_caught
        assert (await dn.status()).chain_id == 1337  # still serving


# --- 3. subscriptions are bounded -----------------------------------------------------------------


async def test_subscriptions_are_bounded_per_peer_and_in_total(dn: Devnet) -> None:
    service = DevnetService(dn, max_subscriptions_per_peer=2, max_subscriptions=3)
    request = rc.encode_request(rc.SUBSCRIBE, 0)
    scopes: dict[str, list[trio.CancelScope]] = {}

    async def nothing(_: bytes) -> None:
        await trio.lowlevel.checkpoint()

    async def subscribe(peer: str) -> None:
        with trio.CancelScope() as scope:
            scopes.setdefault(peer, []).append(scope)
            await service.subscribe(request, nothing, peer)

    async def refused(peer: str, match: str) -> None:
        with pytest.raises(LedgerError) as info:
            await service.subscribe(request, nothing, peer)
        assert isinstance(rc.subscription_refusal(f"{type(info.value).__name__}: {info.value}"),
                          TooManySubscriptions)
        assert match in str(info.value)

    async with trio.open_nursery() as nursery:
        for peer in ("p", "p", "q"):
            nursery.start_soon(subscribe, peer)
        await trio.testing.wait_all_tasks_blocked()
        assert service.subscriptions == 3
        await refused("p", "this peer")  # its own bound
        await refused("r", "all are taken")  # the total bound
        scopes["p"][0].cancel()  # a client leaves: its slot is free again
        await trio.testing.wait_all_tasks_blocked()
        assert service.subscriptions == 2
        nursery.start_soon(subscribe, "r")
        await trio.testing.wait_all_tasks_blocked()
        assert service.subscriptions == 3
        nursery.cancel_scope.cancel()
    assert service.subscriptions == 0 and service._subscriptions == {}


async def test_the_daemon_refuses_a_ninth_subscription_of_a_peer_and_reuses_a_freed_slot(
        daemon: DaemonProc, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_module, "POLL_INTERVAL", 0.05, raising=False)
    async with open_remote_devnet(daemon.address) as funder, _host(daemon) as (host, peer):
        await funder.faucet(C.address, 1)
        async with AsyncExitStack() as subs:
            streams = []
            for _ in range(8):
                sub = await subs.enter_async_context(
                    open_subscription(host, peer, rc.EVENTS_PROTOCOL, rc.encode_request(rc.SUBSCRIBE, 0)))
                await sub.__anext__()  # the daemon serves it (so it is counted)
                streams.append(sub)
            async with open_subscription(host, peer, rc.EVENTS_PROTOCOL, rc.encode_request(rc.SUBSCRIBE, 0)) as sub:
                with pytest.raises(RpcRemoteError) as info:
                    await sub.__anext__()
            assert isinstance(rc.subscription_refusal(str(info.value)), TooManySubscriptions)

            # A watcher of this peer still sees every event: it polls while it is refused.
            async with open_remote_devnet(daemon.address, host=host) as dn:
                head = 0
                while page := await dn.events_page(after=head):
                    head = page[-1].cursor
                seen: list[int] = []
                with trio.fail_after(10):
                    async with trio.open_nursery() as nursery:
                        async def watch() -> None:
                            async for ev in dn.events(after=head):
                                seen.append(ev.cursor)
                                if len(seen) == 2:
                                    return

                        nursery.start_soon(watch)
                        await funder.faucet(C.address, 2)
                        await funder.faucet(C.address, 3)
                assert seen == [head + 1, head + 2]

            await subs.aclose()  # the eight leave: their slots are free again
        with trio.fail_after(10):
            while True:
                async with open_subscription(host, peer, rc.EVENTS_PROTOCOL,
                                             rc.encode_request(rc.SUBSCRIBE, 0)) as sub:
                    try:
                        await sub.__anext__()
                        break
                    except RpcRemoteError:
                        await trio.sleep(0.05)  # the daemon has not seen every close yet


@asynccontextmanager
async def _host(daemon: DaemonProc) -> AsyncIterator[tuple[Host, str]]:
    async with open_host(identity_seed=os.urandom(32), listen=[]) as host:
        yield host, await host.connect(daemon.address)


# --- 4. the faucet is rationed and the logs are pruned --------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def faucet(service: DevnetService, peer: str, request_id: bytes, to: bytes = A.address) -> Any:
    answer = await service.handle(rc.encode_request(rc.FAUCET, to, NATIVE, 1, request_id), peer)
    try:
        return rc.decode_response(answer)[0]
    except LedgerError as exc:
        return exc


async def test_a_faucet_flood_is_rationed_per_peer_and_in_total(dn: Devnet) -> None:
    clock = Clock()
    service = DevnetService(dn, clock=clock)
    peer_burst, total_burst = int(FAUCET_PER_PEER.burst), int(FAUCET_TOTAL.burst)
    got = [await faucet(service, "p", b"p-%06d" % i) for i in range(peer_burst + 5)]
    assert got[:peer_burst] == list(range(1, peer_burst + 1))
    assert all(isinstance(r, RateLimited) and "this peer" in str(r) for r in got[peer_burst:])
    assert (await faucet(service, "p", b"p-%06d" % 0)) == peer_burst  # a retry of a grant is free
    for peer in range(1, 10):  # the total budget holds whatever the number of peer ids
        for i in range(peer_burst):
            got.append(await faucet(service, f"x{peer}", b"x%03d-%04d" % (peer, i), to=B.address))
    granted = [r for r in got if not isinstance(r, LedgerError)]
    assert len(granted) == total_burst and await dn.balance(A.address) + await dn.balance(B.address) == total_burst
    before = dn.state_digest()
    refused = await faucet(service, "fresh", b"fresh-00")
    assert isinstance(refused, RateLimited) and "all peers together" in str(refused)
    assert dn.state_digest() == before  # a refusal changes nothing
    clock.now += 1.0  # a second later: 10 more in total, 2 more for p
    assert isinstance(await faucet(service, "p", b"p-later-0"), int)
    assert isinstance(await faucet(service, "p", b"p-later-1"), int)
    assert isinstance(await faucet(service, "p", b"p-later-2"), RateLimited)


async def test_a_faucet_flood_leaves_the_database_bounded(tmp_path: Path) -> None:
    path = tmp_path / "devnet.db"
    with Devnet(path, clock=None, log_kept=50) as dn:
        size = []
        for round_ in range(3):
            for i in range(300):
                dn.faucet_sync(A.address, 1, request_id=b"flood-%d-%04d" % (round_, i))
                if i % 3 == 0:
                    dn.mine()
            dn.store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            size.append(path.stat().st_size)
            assert (rows(path, "events"), rows(path, "receipts"), rows(path, "blocks")) == (50, 50, 50)
        assert size[2] <= size[1] <= size[0] + 4096  # freed pages are reused: the file stops growing
        assert await dn.balance(A.address) == 900
        assert dn.store.pruned_through == 850 and dn.store.last_cursor() == 900


async def test_a_pruned_cursor_gets_cursor_pruned_and_a_kept_one_is_served(tmp_path: Path) -> None:
    path = tmp_path / "devnet.db"
    with Devnet(path, clock=None, log_kept=5) as dn:
        for i in range(12):
            dn.faucet_sync(A.address, 1, request_id=b"req-%04d" % i)
        with pytest.raises(CursorPruned) as info:
            dn.store.events_after(0)
        assert info.value.pruned_through == 7 and info.value.code == "cursor_pruned"
        assert [ev.cursor for ev in dn.store.events_after(7)] == [8, 9, 10, 11, 12]
        assert [ev.cursor for ev in dn.store.events_after(10)] == [11, 12]
        # receipts go with their events: a pruned request is unknown, a kept one lists its event
        assert dn.receipt(faucet_receipt(b"req-0000")) is None
        kept = dn.receipt(faucet_receipt(b"req-0011"))
        assert kept is not None and [ev.cursor for ev in kept[1]] == [12]

        with pytest.raises(CursorPruned):
            await anext(dn.events(after=6))
        service = DevnetService(dn)
        with pytest.raises(CursorPruned) as info:
            rc.decode_response(await service.handle(rc.encode_request(rc.EVENTS, 3, 10)))
        assert info.value.pruned_through == 7  # the client learns where to resume
        assert len(rc.decode_response(await service.handle(rc.encode_request(rc.EVENTS, 7, 10)))[0]) == 5
        with pytest.raises(LedgerError) as sub_info:
            await service.subscribe(rc.encode_request(rc.SUBSCRIBE, 0), _no_send, "p")
        refusal = rc.subscription_refusal(f"peer ended the subscription: LedgerError: {sub_info.value}")
        assert isinstance(refusal, CursorPruned) and refusal.pruned_through == 7
        assert service.subscriptions == 0

        # a reader that falls behind the kept log is told so instead of skipping events
        reader = dn.events(after=7)
        assert (await anext(reader)).cursor == 8
        for i in range(12, 30):
            dn.faucet_sync(A.address, 1, request_id=b"req-%04d" % i)
        for _ in range(4):  # the rest of the page it already read
            await anext(reader)
        with pytest.raises(CursorPruned):
            await anext(reader)
    with Devnet(path, clock=None, log_kept=5) as again:  # the pruned point survives a restart
        assert again.store.pruned_through == 25
        with pytest.raises(CursorPruned):
            again.store.events_after(24)


async def _no_send(_: bytes) -> None:
    raise AssertionError("nothing is sent on a refused subscription")


# --- 5. the block interval ------------------------------------------------------------------------


async def test_status_reports_the_block_time(dn: Devnet, daemon: DaemonProc) -> None:
    assert (await dn.status()).block_time == 1.0
    with Devnet(clock=None, block_time=0.25) as fast:
        assert (await fast.status()).block_time == 0.25
        fields = rc.decode_response(await DevnetService(fast).handle(rc.encode_request(rc.STATUS)))
        assert fields[:3] == [fast.head.height, fast.head.time, fast.chain_id] and fields[4] == 250  # ms
    for bad in (0, -1, 0.0001, float("nan")):
        with pytest.raises(ConfigError):
            Devnet(clock=None, block_time=bad)
    async with open_remote_devnet(daemon.address) as remote:
        status = await remote.status()
        assert status.block_time == pytest.approx(0.1) and status.chain_id == 1337

        async def old_daemon(type_id: int, *fields: Any, idempotent: bool = True) -> list[Any]:
            return [7, 1_700_000_000, 1337, b"\x00" * 32]  # a daemon from before block_time

        remote._call = old_daemon  # type: ignore[method-assign]
        assert (await remote.status()).block_time is None


def test_cli_status_adds_the_block_time(daemon: DaemonProc, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "devnet", "status", "--devnet", daemon.address, "--json")
    assert code == 0 and out["block_time"] == pytest.approx(0.1)  # type: ignore[index]
    assert {"height", "time", "chain_id", "devnet"} <= set(out)  # type: ignore[arg-type]


async def test_remote_status_refuses_a_bad_block_time() -> None:
    remote = RemoteDevnet(None, "", "", None, timeout=1)  # type: ignore[arg-type]

    async def answer(type_id: int, *fields: Any, idempotent: bool = True) -> list[Any]:
        return [7, 1_700_000_000, 1337, b"\x00" * 32, 0]

    remote._call = answer  # type: ignore[method-assign]
    with pytest.raises(Malformed):
        await remote.status()


async def test_the_client_waits_out_the_faucet_ration_with_one_request_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_module, "FAUCET_RETRY_DELAY", 0.0)
    remote = RemoteDevnet(None, "", "", None, timeout=1)  # type: ignore[arg-type]
    ids: list[bytes] = []

    async def rationed(type_id: int, *fields: Any, idempotent: bool = True) -> list[Any]:
        ids.append(fields[3])
        if len(ids) < 3:
            raise RateLimited("retry later")
        return [MAX_U64 + 1]

    remote._call = rationed  # type: ignore[method-assign]
    assert await remote.faucet(A.address, 1) == MAX_U64 + 1
    assert len(ids) == 3 and len(set(ids)) == 1  # a retry can never mint twice
    monkeypatch.setattr(client_module, "FAUCET_PATIENCE", 0.0)
    ids.clear()
    ids.append(b"")  # fails once more, then gives up
    with pytest.raises(RateLimited):
        await remote.faucet(A.address, 1)
