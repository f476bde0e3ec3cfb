"""Hash-time locks through the node's library calls, over the memory network and the devnet."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from trio.testing import MockClock

from channels.core.channel import Phase
from channels.core.ops import hash_preimage
from channels.errors import InvalidTransition
from tests.node.test_memory_network import network, open_pair

SECRET = b"\x07" * 32


async def test_a_lock_is_added_and_fulfilled_through_the_node(tmp_path: Path, autojump_clock: MockClock) -> None:
    async with network(tmp_path, ["a", "b"]) as (dev, _net, nodes):
        a, b = nodes["a"], nodes["b"]
        with trio.fail_after(20):
            cid = await open_pair(a, b, 1_000)
            expiry = await dev.now() + 3_600
            lock_id = await a.add_lock(cid, 300, hash_preimage(SECRET), expiry)
            assert [lk.lock_id for lk in b.channel(cid).allocation.locks] == [lock_id]
            assert a.channel(cid).allocation.balances[0] == (700, 0)
            with pytest.raises(InvalidTransition):
                await b.fulfill_lock(cid, lock_id, b"not the secret")
            await b.fulfill_lock(cid, lock_id, SECRET)
            await a.wait_version(cid, b.channel(cid).version)
        assert a.channel(cid).allocation.balances[0] == (700, 300) and not a.channel(cid).allocation.locks


async def test_the_payee_fails_a_lock_back(tmp_path: Path, autojump_clock: MockClock) -> None:
    async with network(tmp_path, ["a", "b"]) as (dev, _net, nodes):
        a, b = nodes["a"], nodes["b"]
        with trio.fail_after(20):
            cid = await open_pair(a, b, 1_000)
            lock_id = await a.add_lock(cid, 300, hash_preimage(SECRET), await dev.now() + 3_600)
            await b.fail_lock(cid, lock_id, reason=3)
            await a.wait_version(cid, b.channel(cid).version)
        assert a.channel(cid).allocation.balances[0] == (1_000, 0)


async def test_a_payee_claims_on_chain_when_the_payer_vanishes(tmp_path: Path, autojump_clock: MockClock) -> None:
    """The payer stops answering; the payee goes to the L1 before the expiry with the secret,
    and the lock pays it after the window, although the window ends long before the expiry."""
    async with network(tmp_path, ["a", "b"]) as (dev, net, nodes):
        a, b = nodes["a"], nodes["b"]
        with trio.fail_after(30):
            cid = await open_pair(a, b, 1_000)
            expiry = await dev.now() + 1_000
            lock_id = await a.add_lock(cid, 300, hash_preimage(SECRET), expiry)
            await b.wait_version(cid, a.channel(cid).version)
            before = {n: await dev.balance(nodes[n].l1_address) for n in nodes}
            net.transports["a"].up = False  # the payer vanishes
            net.disconnect("a", "b")
            with trio.move_on_after(0.3):
                await b.fulfill_lock(cid, lock_id, SECRET)  # never countersigned
            assert b.channel(cid).preimages == ((lock_id, SECRET),)
            dev.advance_time(expiry - 60 - await dev.now())  # the lock margin before the expiry
            while b.channel(cid).phase is not Phase.DISPUTED:
                await trio.sleep(0.02)
            while await dev.secret_time(hash_preimage(SECRET)) is None:
                await trio.sleep(0.02)
            dev.advance_time(101)  # the window ends; the expiry is still ahead
            await b.wait_phase(cid, Phase.SETTLED)
        assert await dev.balance(b.l1_address) - before["b"] == 300
        assert await dev.balance(a.l1_address) - before["a"] == 700, "the payer's balance, without the lock"


async def test_an_expired_lock_returns_to_its_payer_on_chain(tmp_path: Path, autojump_clock: MockClock) -> None:
    async with network(tmp_path, ["a", "b"]) as (dev, net, nodes):
        a, b = nodes["a"], nodes["b"]
        with trio.fail_after(30):
            cid = await open_pair(a, b, 1_000)
            expiry = await dev.now() + 500
            await a.add_lock(cid, 300, hash_preimage(SECRET), expiry)
            await b.wait_version(cid, a.channel(cid).version)
            before = await dev.balance(a.l1_address)
            net.transports["b"].up = False  # the payee vanishes and never fails the lock
            net.disconnect("a", "b")
            dev.advance_time(expiry + 60 - await dev.now())  # expired, plus the margin
            while a.channel(cid).phase is not Phase.DISPUTED or a.channel(cid).deadline is None:
                await trio.sleep(0.02)
            dev.advance_time(101)
            await a.wait_phase(cid, Phase.SETTLED)
        assert await dev.balance(a.l1_address) - before == 1_000, "700 balance + the 300 lock back"
