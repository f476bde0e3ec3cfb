"""The daemon's request handling without the network: decoding, typed errors, group commit."""

from __future__ import annotations

import pytest
import trio
from devnet_util import keys

from channels import encoding
from channels.chain.base import BadNonce, InsufficientBalance, LedgerUnavailable
from channels.chain.devnet import codec as rc
from channels.chain.devnet import tx as t
from channels.chain.devnet.client import RemoteDevnet
from channels.chain.devnet.ledger import Devnet
from channels.chain.devnet.service import DevnetService
from channels.core.ids import NATIVE

pytestmark = pytest.mark.trio
A, B = keys("alice", "bob")


def transfer(dn: Devnet, nonce: int, amount: int) -> bytes:
    op = t.Transfer(to=B.address, asset=NATIVE, amount=amount)
    return t.sign_tx(A, chain_id=dn.chain_id, nonce=nonce, op=op).to_bytes()


async def test_submit_many_applies_each_on_its_own_under_one_commit(dn: Devnet) -> None:
    dn.faucet_sync(A.address, 10)
    txs = [transfer(dn, 0, 4), transfer(dn, 1, 100), transfer(dn, 1, 5), transfer(dn, 1, 1)]
    results = dn.submit_many(txs)
    assert [type(r) for r in results[:1]] == [list]
    assert isinstance(results[1], InsufficientBalance)  # refused: writes nothing, keeps the nonce
    assert isinstance(results[2], list) and results[2][0].data["amount"] == 5
    assert isinstance(results[3], BadNonce)  # nonce 1 was used by the step before
    assert await dn.balance(B.address) == 9 and await dn.nonce(A.address) == 2
    with Devnet(clock=None) as one_by_one:  # the same as applying them one at a time
        one_by_one.faucet_sync(A.address, 10)
        for data in txs:
            try:
                one_by_one.submit_bytes(data)
            except (InsufficientBalance, BadNonce):
                pass
        assert one_by_one.state_digest() == dn.state_digest()


async def test_concurrent_submissions_share_commits(dn: Devnet) -> None:
    service = DevnetService(dn)
    senders = keys(*(f"s{i}" for i in range(20)))
    for k in senders:
        dn.faucet_sync(k.address, 5)
    batches: list[int] = []
    commit_batch = dn.store.commit_batch

    def counting(steps):  # type: ignore[no-untyped-def]
        batches.append(len(steps))
        return commit_batch(steps)

    dn.store.commit_batch = counting  # type: ignore[method-assign]
    answers: list[list] = []

    async def send(k) -> None:  # type: ignore[no-untyped-def]
        tx = t.sign_tx(k, chain_id=dn.chain_id, nonce=0, op=t.Transfer(to=B.address, asset=NATIVE, amount=5))
        answers.append(rc.decode_response(await service.handle(rc.encode_request(rc.SUBMIT, tx.to_bytes()))))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(service.run_committer)
        async with trio.open_nursery() as clients:
            for k in senders:
                clients.start_soon(send, k)
        nursery.cancel_scope.cancel()
    assert len(answers) == 20 and await dn.balance(B.address) == 100
    assert sum(batches) == 20 and len(batches) < 20  # grouped
    cursors = [rc.decode_event(a[0][0]).cursor for a in answers]
    assert len(set(cursors)) == 20  # each got its own Transfer event


async def test_requests_are_checked_before_they_reach_the_ledger(dn: Devnet) -> None:
    service = DevnetService(dn)
    before = dn.state_digest()
    for bad, code in ((b"\xc1", "malformed"), (encoding.encode([99]), "malformed"),
                      (encoding.encode([rc.STATUS, 1]), "malformed"),
                      (encoding.encode([rc.FAUCET, A.address, "native", 5, b"short"]), "malformed"),
                      (encoding.encode([rc.SUBSCRIBE, 0]), "malformed"),
                      (b"\x00" * (rc.MAX_REQUEST + 1), "too_large")):
        answer = encoding.decode(await service.handle(bad), max_size=1 << 20)
        assert answer[:2] == [rc.ERR, code]
    assert dn.state_digest() == before
    status = rc.decode_response(await service.handle(rc.encode_request(rc.STATUS)))
    assert status[2] == dn.chain_id


class LossyRemote(RemoteDevnet):
    """A RemoteDevnet whose transport is an in-process devnet that loses answers on demand."""

    def __init__(self, dn: Devnet, script: list[str]) -> None:
        super().__init__(None, "", "", None, timeout=1)  # type: ignore[arg-type]
        self.dn, self.script, self.sent = dn, script, 0

    async def submit_bytes(self, data: bytes) -> list:
        self.sent += 1
        fate = self.script.pop(0) if self.script else "ok"
        if fate == "drop-request":
            raise LedgerUnavailable("lost on the way")
        events = self.dn.submit_bytes(data)
        if fate == "drop-answer":
            raise LedgerUnavailable("answer lost")
        return events

    async def receipt(self, tx_digest: bytes):  # type: ignore[no-untyped-def]
        return self.dn.receipt(tx_digest)

    async def nonce(self, account) -> int:  # type: ignore[no-untyped-def]
        return self.dn.store.nonce(account)

    async def _get_chain_id(self) -> int:
        return self.dn.chain_id


@pytest.mark.parametrize("script", [["drop-answer"], ["drop-request"], ["drop-request", "drop-answer"]])
async def test_a_lost_answer_is_resolved_by_the_receipt_and_applied_once(dn: Devnet, script: list[str]) -> None:
    dn.faucet_sync(A.address, 10)
    remote = LossyRemote(dn, list(script))
    await remote.transfer(A, B.address, 3)
    assert await dn.balance(B.address) == 3  # applied exactly once
    await remote.transfer(A, B.address, 1)  # the cached nonce is right afterwards
    assert await dn.balance(B.address) == 4 and await dn.nonce(A.address) == 2
    assert [ev.kind for ev in dn.store.events_after(1)] == ["Transfer", "Transfer"]


async def test_answers_lost_every_time_end_in_ledger_unavailable(dn: Devnet) -> None:
    dn.faucet_sync(A.address, 10)
    remote = LossyRemote(dn, ["drop-request"] * 5)
    with pytest.raises(LedgerUnavailable):
        await remote.transfer(A, B.address, 3)
    assert await dn.balance(B.address) == 0
