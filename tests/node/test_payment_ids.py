"""A payment id names one payment: retries share its outcome, other terms are refused.

Found by a new user: ``pay-direct CID 10 --payment-id ab`` then ``... 11 --payment-id ab``
printed ``paid 11`` while only 10 moved; and of two concurrent retries with one id, the
first timed out although the payment went through."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from channels.errors import LocalProtocolError
from tests.node.test_memory_network import network, open_pair


async def test_a_reused_id_with_another_amount_is_refused(tmp_path: Path) -> None:
    async with network(tmp_path, ["a", "b"]) as (_dev, _net, nodes):
        a, b = nodes["a"], nodes["b"]
        with trio.fail_after(20):
            cid = await open_pair(a, b, 1_000)
            version = await a.pay(cid, 10, payment_id=b"ab")
            assert await a.pay(cid, 10, payment_id=b"ab") == version, "a retry answers with the original"
            with pytest.raises(LocalProtocolError, match="already used for 10"):
                await a.pay(cid, 11, payment_id=b"ab")
        assert a.channel(cid).allocation.balances[0] == (990, 10)


async def test_concurrent_retries_share_one_outcome(tmp_path: Path) -> None:
    async with network(tmp_path, ["a", "b"]) as (_dev, _net, nodes):
        a, b = nodes["a"], nodes["b"]
        with trio.fail_after(20):
            cid = await open_pair(a, b, 1_000)
            results: list[int] = []

            async def pay() -> None:
                results.append(await a.pay(cid, 25, payment_id=b"same"))

            async with trio.open_nursery() as nursery:
                for _ in range(3):
                    nursery.start_soon(pay)
            assert len(set(results)) == 1 and len(results) == 3, "every caller gets the one outcome"

            async def pay_other() -> None:
                results.append(await a.pay(cid, 5, payment_id=b"other"))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(pay_other)
                while b"other" not in a._paying:  # wait until it is in flight (bounded by fail_after)
                    await trio.sleep(0)
                with pytest.raises(LocalProtocolError, match="in flight with other terms"):
                    await a.pay(cid, 6, payment_id=b"other")
        assert a.channel(cid).allocation.balances[0] == (970, 30), "each id paid once"
