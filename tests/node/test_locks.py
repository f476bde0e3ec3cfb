"""Hash-time locks through the node's library calls, over the memory network and the devnet."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from channels.core.ops import hash_preimage
from channels.errors import InvalidTransition
from tests.node.test_memory_network import network, open_pair

SECRET = b"\x07" * 32


async def test_a_lock_is_added_and_fulfilled_through_the_node(tmp_path: Path) -> None:
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


async def test_the_payee_fails_a_lock_back(tmp_path: Path) -> None:
    async with network(tmp_path, ["a", "b"]) as (dev, _net, nodes):
        a, b = nodes["a"], nodes["b"]
        with trio.fail_after(20):
            cid = await open_pair(a, b, 1_000)
            lock_id = await a.add_lock(cid, 300, hash_preimage(SECRET), await dev.now() + 3_600)
            await b.fail_lock(cid, lock_id, reason=3)
            await a.wait_version(cid, b.channel(cid).version)
        assert a.channel(cid).allocation.balances[0] == (1_000, 0)
