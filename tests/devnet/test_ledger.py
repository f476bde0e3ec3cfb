"""Accounts, tokens, transfers, blocks and transaction checks of the in-process devnet."""

from __future__ import annotations

import attrs
import pytest
from devnet_util import CHAIN_ID, keys

from channels import encoding
from channels.chain.base import (
    AssetExists,
    BadNonce,
    BadSignature,
    InsufficientBalance,
    Malformed,
    Overflow,
    TooLarge,
    Unauthorized,
    UnknownAsset,
    WrongChain,
)
from channels.chain.devnet import tx as t
from channels.chain.devnet.ledger import Devnet
from channels.core.ids import MAX_AMOUNT, NATIVE, AssetId

pytestmark = pytest.mark.trio
A, B = keys("alice", "bob")


async def test_faucet_and_transfer_move_money_and_log_events(dn: Devnet) -> None:
    assert await dn.faucet(A.address, 1000) == 1000
    await dn.transfer(A, B.address, 300)
    assert await dn.balance(A.address) == 700
    assert await dn.balance(B.address, NATIVE) == 300
    assert await dn.balances(B.address) == {"native": 300}
    assert await dn.nonce(A.address) == 1
    kinds = [(ev.kind, ev.cursor) for ev in dn.store.events_after(0)]
    assert kinds == [("Minted", 1), ("Transfer", 2)]
    ev = dn.store.events_after(1)[0]
    assert ev.data == {"from": A.address, "to": B.address, "asset": "native", "amount": 300}


async def test_insufficient_funds_is_refused_without_change(dn: Devnet, refuse) -> None:
    await dn.faucet(A.address, 100)
    with refuse(dn, InsufficientBalance):
        await dn.transfer(A, B.address, 101)


async def test_zero_amount_and_unknown_asset_are_refused(dn: Devnet, refuse) -> None:
    await dn.faucet(A.address, 100)
    with refuse(dn, Malformed):
        await dn.transfer(A, B.address, 0)
    with refuse(dn, UnknownAsset):
        await dn.transfer(A, B.address, 1, AssetId("USD"))
    with refuse(dn, UnknownAsset):
        await dn.faucet(A.address, 1, "USD")


async def test_balances_have_no_cap_but_amounts_and_holdings_do(dn: Devnet, refuse) -> None:
    await dn.faucet(A.address, MAX_AMOUNT)  # an EVM token's whole uint256 range
    await dn.faucet(A.address, 1)  # a balance has no cap (a payout must never fail for it)
    assert await dn.balance(A.address) == MAX_AMOUNT + 1
    with refuse(dn, Malformed):
        await dn.faucet(A.address, MAX_AMOUNT + 1)  # one amount is still at most 2^256-1
    await dn.deposit(A, b"\x07" * 32, NATIVE, MAX_AMOUNT)
    with refuse(dn, Overflow):
        await dn.deposit(A, b"\x07" * 32, NATIVE, 1)  # and so are a channel's holdings


async def test_tokens_create_mint_and_issuer_only(dn: Devnet, refuse) -> None:
    await dn.create_token(A, "USD")
    with refuse(dn, AssetExists):
        await dn.create_token(B, "USD")
    with refuse(dn, AssetExists):
        await dn.create_token(B, "native")
    await dn.mint(A, B.address, 50, "USD")
    assert await dn.balance(B.address, AssetId("USD")) == 50
    with refuse(dn, Unauthorized):  # only the issuer mints
        await dn.mint(B, B.address, 50, "USD")
    with refuse(dn, Unauthorized):  # native comes from the faucet only
        await dn.mint(A, A.address, 50, "native")
    await dn.faucet(B.address, 7, "USD")  # the faucet serves every known token
    await dn.transfer(B, A.address, 57, AssetId("USD"))
    assert await dn.balances(A.address) == {"USD": 57}


def _tx(dn: Devnet, **changes: object) -> t.Tx:
    op = t.Transfer(to=B.address, asset=NATIVE, amount=1)
    tx = t.sign_tx(A, chain_id=dn.chain_id, nonce=dn.store.nonce(A.address), op=op)
    return attrs.evolve(tx, **changes) if changes else tx


async def test_bad_signature_is_refused(dn: Devnet, refuse) -> None:
    await dn.faucet(A.address, 10)
    tx = _tx(dn)
    forged = attrs.evolve(tx, signature=bytes(64))
    with refuse(dn, BadSignature):
        dn.submit(forged)
    other_sender = attrs.evolve(tx, sender=B.address)  # A's signature claimed for B's account
    with refuse(dn, BadSignature):
        dn.submit(other_sender)
    tampered = attrs.evolve(tx, op=t.Transfer(to=B.address, asset=NATIVE, amount=2))
    with refuse(dn, BadSignature):
        dn.submit(tampered)


async def test_wrong_chain_id_is_refused(dn: Devnet, refuse) -> None:
    await dn.faucet(A.address, 10)
    tx = t.sign_tx(A, chain_id=CHAIN_ID + 1, nonce=0, op=t.Transfer(to=B.address, asset=NATIVE, amount=1))
    with refuse(dn, WrongChain):
        dn.submit(tx)


async def test_replayed_and_future_nonces_are_refused(dn: Devnet, refuse) -> None:
    await dn.faucet(A.address, 10)
    tx = _tx(dn)
    dn.submit(tx)
    with refuse(dn, BadNonce):
        dn.submit(tx)  # replay of an applied transaction
    with refuse(dn, BadNonce):
        dn.submit(t.sign_tx(A, chain_id=dn.chain_id, nonce=5, op=tx.op))
    assert await dn.balance(B.address) == 1


async def test_a_refused_transaction_does_not_consume_the_nonce(dn: Devnet) -> None:
    with pytest.raises(InsufficientBalance):
        await dn.transfer(A, B.address, 5)
    assert await dn.nonce(A.address) == 0


async def test_transaction_bytes_round_trip_and_reject_garbage(dn: Devnet, refuse) -> None:
    await dn.faucet(A.address, 10)
    tx = _tx(dn)
    assert t.decode_tx(tx.to_bytes()) == tx
    for bad in (b"", b"\xc1", encoding.encode([1, 2, 3]), tx.to_bytes()[:-1], tx.to_bytes() + b"\x00",
                encoding.encode([t.TX_TYPE, CHAIN_ID, A.address, 0, [99], bytes(64)]),
                encoding.encode([t.TX_TYPE, CHAIN_ID, A.address, 0, [2, B.address, "native", -1], bytes(64)]),
                encoding.encode([t.TX_TYPE, CHAIN_ID, A.address[:5], 0, [2, B.address, "native", 1], bytes(64)])):
        with refuse(dn, Malformed):
            dn.submit_bytes(bad)
    with refuse(dn, TooLarge):
        dn.submit_bytes(b"\x00" * (t.MAX_TX_SIZE + 1))
    assert await dn.balance(A.address) == 10


async def test_blocks_advance_height_and_time() -> None:
    clock = [1_000.0]
    with Devnet(clock=lambda: clock[0], auto_mine=False) as dn:
        head = dn.head
        assert (head.height, head.time, head.chain_id) == (0, 1000, CHAIN_ID)
        dn.mine()
        assert (dn.head.height, dn.head.time) == (1, 1000)
        clock[0] = 1005.5
        dn.mine()
        assert (dn.head.height, dn.head.time) == (2, 1005)
        dn.advance_time(100)
        assert (dn.head.height, dn.head.time) == (3, 1105)
        clock[0] = 900  # a clock going backwards never moves block time back
        dn.mine()
        assert dn.head.time == 1105
        await dn.faucet(A.address, 1)
        ev = dn.store.events_after(0)[0]
        assert (ev.height, ev.time) == (4, 1105)


async def test_auto_mine_follows_the_clock() -> None:
    clock = [50.0]
    with Devnet(clock=lambda: clock[0]) as dn:
        assert await dn.now() == 50
        clock[0] = 53
        assert await dn.now() == 53
        assert dn.head.height == 1
        await dn.faucet(A.address, 1)  # no new second, no new block
        assert dn.head.height == 1
