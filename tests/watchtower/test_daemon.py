"""The tower's shell in one process: the L1 follower and submitter on an in-process devnet (mock
clock), and the libp2p service with the client API over loopback."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import attrs
import pytest
import trio
from trio.testing import MockClock

from channels.chain.devnet.ledger import Devnet
from channels.chain.devnet.scheme import ADJUDICATOR, DevnetKey
from channels.core.ids import ChannelId
from channels.crypto import SigningKey
from channels.errors import ConfigError
from channels.net import Host, open_host
from channels.net.request_response import serve_rpc
from channels.watchtower.appointment import Appointment
from channels.watchtower.client import open_tower_client, seal, send_appointment
from channels.watchtower.core import Limits, Rate, Tower
from channels.watchtower.daemon import TowerService, Watcher, check_ledger, tower_info
from channels.watchtower.errors import BadReceipt, NonMonotonic, RateLimited, TowerUnavailable, Unsigned
from channels.watchtower.protocol import PROTOCOL_TOWER
from channels.watchtower.store import TowerStore
from tests.watchtower.helpers import ALICE, BOB, SCHEME, TOWER_KEY, appointment, channel, lock, preimage, signed

L1_KEY = DevnetKey.from_label("tower-l1-account")


def open_tower(store: TowerStore, devnet: Devnet, limits: Limits | None = None) -> Tower:
    return Tower(signer=TOWER_KEY, scheme=SCHEME, chain_id=devnet.chain_id, adjudicator=ADJUDICATOR, records=store,
                 limits=limits, usage=store.usage(), disputes=store.disputes())


def give(tower: Tower, store: TowerStore, appt: Appointment, client: str = "alice") -> None:
    with store.transaction():
        store.save_accepted(tower.accept(appt, client, 0))


@asynccontextmanager
async def watching(tower: Tower, store: TowerStore, devnet: Devnet) -> AsyncIterator[Watcher]:
    watcher = Watcher(tower, store, devnet, L1_KEY, poll=1.0)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(watcher.follow)
        nursery.start_soon(watcher.submit_loop)
        yield watcher
        nursery.cancel_scope.cancel()


async def held_version(devnet: Devnet, cid: ChannelId) -> int:
    view = await devnet.channel(cid)
    return -1 if view.registered is None else view.registered.state.version


async def wait_version(devnet: Devnet, cid: ChannelId, version: int, timeout: float = 60) -> None:
    with trio.fail_after(timeout):
        while await held_version(devnet, cid) != version:
            await trio.sleep(0.5)


async def test_a_stale_registration_is_refuted_from_the_store(tmp_path: Path, autojump_clock: MockClock) -> None:
    devnet = Devnet(None, clock=None, auto_mine=False)
    store = TowerStore(tmp_path / "tower.db")
    tower = open_tower(store, devnet)
    p = channel(duration=100)
    give(tower, store, appointment(p, 5))
    async with watching(tower, store, devnet) as watcher:
        await devnet.register(BOB, p, signed(p, 2))
        await wait_version(devnet, p.channel_id, 5)
        assert [a.signed.state.version for a in watcher.submitted] == [5]  # type: ignore[union-attr]
        devnet.advance_time(10)
        await trio.sleep(5)
        assert len(watcher.submitted) == 1  # refuted once: never a transaction the ledger would refuse
    assert store.cursor() > 0 and store.disputes()[0].version == 5
    assert await devnet.balance(L1_KEY.address) == 0  # the devnet charges nothing: an unfunded account will do
    store.close()


async def test_a_tower_restarted_mid_window_catches_up_from_its_cursor(tmp_path: Path,
                                                                       autojump_clock: MockClock) -> None:
    devnet = Devnet(None, clock=None, auto_mine=False)
    store = TowerStore(tmp_path / "tower.db")
    tower = open_tower(store, devnet)
    p = channel(duration=100)
    give(tower, store, appointment(p, 5))
    other = channel(b"other", duration=100)
    async with watching(tower, store, devnet):
        await devnet.register(ALICE, other, signed(other, 1))  # an event it follows past
        with trio.fail_after(10):
            while store.cursor() == 0:
                await trio.sleep(0.5)
    seen = store.cursor()
    # The tower is down: the cheater registers and half the window passes.
    await devnet.register(BOB, p, signed(p, 1))
    devnet.advance_time(50)
    store.close()
    store = TowerStore(tmp_path / "tower.db")
    tower = open_tower(store, devnet)
    async with watching(tower, store, devnet):
        await wait_version(devnet, p.channel_id, 5)
    assert store.cursor() > seen
    store.close()


async def test_preimages_are_registered_and_a_late_refute_is_not_sent(tmp_path: Path,
                                                                      autojump_clock: MockClock) -> None:
    devnet = Devnet(None, clock=None, auto_mine=False)
    store = TowerStore(tmp_path / "tower.db")
    tower = open_tower(store, devnet)
    now = await devnet.now()
    x = lock("x", expiry=now + 1000)
    p, late = channel(duration=100), channel(b"late", duration=100)
    give(tower, store, appointment(p, 5, locks=[x], preimages=[preimage("x")]))
    give(tower, store, appointment(late, 5))
    await devnet.register(BOB, late, signed(late, 1))
    devnet.advance_time(100)  # its window is over before the tower ever looks
    async with watching(tower, store, devnet) as watcher:
        await devnet.register(BOB, p, signed(p, 5, locks=[x]))
        with trio.fail_after(60):
            while await devnet.secret_time(x.hashlock) is None:
                await trio.sleep(0.5)
        await trio.sleep(5)
        assert await held_version(devnet, late.channel_id) == 1
        assert [type(a).__name__ for a in watcher.submitted] == ["RegisterSecret"]
    store.close()


async def test_an_encrypted_appointment_is_opened_by_the_registration_and_refuted(
        tmp_path: Path, autojump_clock: MockClock) -> None:
    devnet = Devnet(None, clock=None, auto_mine=False)
    store = TowerStore(tmp_path / "tower.db")
    tower = open_tower(store, devnet)
    p = channel(duration=100)
    with store.transaction():
        for v in (1, 2, 3):
            store.save_blob(tower.accept_encrypted(seal(appointment(p, v + 1), signed(p, v), 0, seq=v + 1),
                                                   "alice", 0))
    async with watching(tower, store, devnet):
        await devnet.register(BOB, p, signed(p, 2))
        await wait_version(devnet, p.channel_id, 4)
    stored = store.appointment(p.channel_id)
    assert stored is not None and stored.appointment.version == 4
    store.close()


def test_a_store_of_another_ledger_is_refused(tmp_path: Path) -> None:
    store = TowerStore(tmp_path / "tower.db")
    check_ledger(store, 1337, b"\x01" * 32)
    check_ledger(store, 1337, b"\x01" * 32)
    with pytest.raises(ConfigError, match="chain 1337"):
        check_ledger(store, 7, b"\x01" * 32)
    with pytest.raises(ConfigError, match="another ledger"):
        check_ledger(store, 1337, b"\x02" * 32)
    store.close()


# --- the service over libp2p ------------------------------------------------------------------------


@asynccontextmanager
async def served(tmp_path: Path, limits: Limits | None = None) -> AsyncIterator[tuple[str, TowerStore, Tower]]:
    devnet = Devnet(None, clock=None, auto_mine=False)
    store = TowerStore(tmp_path / "tower.db")
    identity = SigningKey.from_label("tower-identity")
    tower = Tower(signer=DevnetKey(identity), scheme=SCHEME, chain_id=devnet.chain_id, adjudicator=ADJUDICATOR,
                  records=store, limits=limits)
    service = TowerService(tower, store, tower_info(tower, identity, None))
    async with open_host(identity_seed=identity.seed, listen=["/ip4/127.0.0.1/tcp/0"]) as host, \
            trio.open_nursery() as nursery:
        serve_rpc(host, PROTOCOL_TOWER, service.handle)
        nursery.start_soon(service.run_committer)
        yield host.addresses[0], store, tower
        nursery.cancel_scope.cancel()
    store.close()


@asynccontextmanager
async def client_host() -> AsyncIterator[Host]:
    async with open_host(identity_seed=os.urandom(32), listen=[]) as host:
        yield host


async def test_the_client_api_gets_checked_receipts_and_typed_refusals(tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with served(tmp_path) as (address, store, tower), client_host() as host:
            p = channel()
            receipt = await send_appointment(host, address, appointment(p, 3))
            assert receipt.version == 3 and receipt.subject == p.channel_id and receipt.verifies()
            assert store.appointment(p.channel_id) is not None  # committed before the receipt left
            async with open_tower_client(host, address) as tc:
                info = await tc.info()
                assert info.chain_id == 1337 and info.tower_key == receipt.tower_key
                with pytest.raises(NonMonotonic):
                    await tc.send(appointment(p, 2))
                half = appointment(p, 4)
                with pytest.raises(Unsigned):
                    await tc.send(attrs.evolve(half, signed=half.signed.with_signature(0, b"")))
                blob = seal(appointment(p, 4), signed(p, 3), 0, seq=4)
                r = await tc.send_encrypted(blob)
                assert r.subject == blob.locator and r.version == 4
                assert await tc.forget([blob.locator]) == 1
            assert store.appointment(p.channel_id).appointment.version == 3  # type: ignore[union-attr]
            assert tower.usage(host.peer_id).appointments == 1


async def test_a_receipt_from_another_key_is_refused(tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with served(tmp_path) as (address, _store, tower), client_host() as host:
            tower.signer = TOWER_KEY  # the server signs with a key other than its peer id's
            with pytest.raises(BadReceipt):
                await send_appointment(host, address, appointment(channel(), 1))


async def test_a_rate_limited_client_is_told_so_and_an_unreachable_tower_is_unavailable(tmp_path: Path) -> None:
    limits = Limits(client_rate=Rate(per_second=0.001, burst=2.0))
    with trio.fail_after(60):
        async with served(tmp_path, limits) as (address, _store, _tower), client_host() as host:
            async with open_tower_client(host, address) as tc:
                await tc.send(appointment(channel(b"1"), 1))
                await tc.send(appointment(channel(b"2"), 1))
                with pytest.raises(RateLimited):
                    await tc.send(appointment(channel(b"3"), 1))
        async with client_host() as host:
            with pytest.raises(TowerUnavailable):
                await send_appointment(host, address, appointment(channel(), 1), timeout=5)


async def test_a_move_forced_from_a_stale_state_is_answered_on_the_l1(tmp_path: Path,
                                                                      autojump_clock: MockClock) -> None:
    from channels.core.ids import NATIVE, Version
    from channels.core.state import Allocation, SignedState, State
    from tests.devnet.devnet_util import TEST_APPS, counter_data

    devnet = Devnet(None, clock=None, auto_mine=False, apps=TEST_APPS)
    store = TowerStore(tmp_path / "tower.db")
    tower = open_tower(store, devnet)
    p = channel(b"game", duration=100, app_id="test-counter")

    def state(v: int) -> State:  # each move pays one coin to the other player: balances alternate
        alloc = Allocation(assets=(NATIVE,), balances=((500 - v % 2, 500 + v % 2),))
        return State(channel_id=p.channel_id, version=Version(v), allocation=alloc, app_data=counter_data(v))

    def cosigned(v: int) -> SignedState:
        return SignedState(state=state(v), signatures=tuple(SCHEME.sign(k, p, state(v)) for k in (ALICE, BOB)))

    give(tower, store, Appointment(params=p, signed=cosigned(6)))
    # While the tower is down, bob registers version 1 and forces his move to 2 from it.
    await devnet.register(BOB, p, cosigned(1))
    await devnet.progress(BOB, p, cosigned(1), state(2), 1, SCHEME.sign(BOB, p, state(2)))
    view = await devnet.channel(p.channel_id)
    assert view.registered is not None and view.registered.state.version == 2
    async with watching(tower, store, devnet) as watcher:
        await wait_version(devnet, p.channel_id, 6)
        assert [a.against for a in watcher.submitted] == [2]  # type: ignore[union-attr]
    store.close()
