"""Frame-level abuse on a funded channel, with the kit's raw tools (and a check of them).

* A replayed ``UpdateProposal`` is answered with the very same ``Countersign`` bytes.
* An update the payer cannot cover gets no answer at all (02 section 5.1 step 4).
* An unknown odd type is ignored; a flood of ``Reestablish`` changes nothing.
* An unknown even type, or a known type with fields of the wrong kind, closes the stream;
  the peer can reconnect and pay again."""

from __future__ import annotations

from pathlib import Path

import trio

from channels.core.ids import NATIVE, PaymentId
from channels.core.messages import Countersign, Reestablish, UpdateProposal, UpdateReject
from channels.core.ops import Payment
from channels.testing.hostile import open_hostile_peer
from channels.wire import decode_message, encode_message
from tests.adversary.harness import channels, devnet, funded_channel, info, survives, victim


async def test_frame_abuse_on_a_funded_channel(tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with devnet(tmp_path) as (addr, ledger), victim(tmp_path, addr) as node, \
                open_hostile_peer(ledger=ledger) as peer:
            cid = await funded_channel(peer, (await info(node))["addresses"][0], 1_000)
            await peer.pay(cid, 100)
            update = next(i for i, f in enumerate(peer.sent) if isinstance(decode_message(f), UpdateProposal))
            countersign = next(r.frame for r in peer.inbox if isinstance(r.message, Countersign))

            with survives(node, "frame abuse"):
                mark = len(peer.inbox)
                await peer.replay(update)
                again = await peer.next_message(Countersign, since=mark, timeout=5)
                assert encode_message(again) == countersign, "a replayed update was not answered identically"

                # Two versions ahead, so that the honest update after it cannot be mistaken for it.
                mark = len(peer.inbox)
                overdraft = await peer.propose_update(cid, [Payment(payment_id=PaymentId(b"x"), asset=NATIVE,
                                                                    amount=10**6)],
                                                      version=peer.channels[cid].version + 2)
                await peer.send_fields(1001, [b"an odd extension"])
                await peer.flood(encode_message(Reestablish(channel_id=cid, latest_version=peer.channels[cid].version)),
                                 300)
                await peer.pay(cid, 1)  # the stream still works, and the node answers in order:
                answers = [m for m in peer.messages((Countersign, UpdateReject), since=mark)
                           if m.version == overdraft.version]
                assert not answers, f"an overdraft update was answered: {answers[0]}"
                await info(node)

                for what, bad in (("an unknown even type", (1000, [])),
                                  ("fields of the wrong kind", (32, [cid, "one", [], b""]))):
                    stream = peer.stream
                    assert stream is not None
                    await peer.send_fields(*bad)
                    assert await stream.wait_closed(5), f"a frame with {what} did not close the stream"
                    await peer.reconnect()
                    await peer.pay(cid, 1)
            row = next(c for c in await channels(node) if c["channel_id"] == cid.hex())
            assert (row["balance"], row["peer_balance"]) == (103, 897)
