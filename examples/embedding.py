"""Embedding p2p-channels in a program that reacts to events (``python examples/embedding.py``).

Two nodes, alice and bob, run inside this one process over real libp2p on 127.0.0.1, on an
in-process devnet L1. Each follows its node's event log (``Node.events``) and prints what
happens; bob's program thanks every payment it receives by paying a tenth of it back, and
alice's waits for those thanks before closing the channel. Nothing here polls: every step
waits on an event.

A consumer that restarts would pass the last cursor it handled, ``node.events(since=cursor)``,
and miss nothing; the thank-you's payment id is derived from the payment it answers, so a
repeated reaction never pays twice.
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
from pathlib import Path
from typing import Any

import trio

from channels.chain.devnet.ledger import Devnet
from channels.core.ids import ChannelId
from channels.node import Node, load_config
from channels.node.events import EventKind, NodeEvent, PaymentReceived

FUNDS = 10_000
DEPOSIT = 5_000
PAYMENTS = (1_000, 500)
LOOPBACK = "/ip4/127.0.0.1/tcp/0"


def show(name: str, event: NodeEvent) -> None:
    data = event.as_json()
    details = " ".join(f"{key}={data[key]}" for key in ("amount", "version", "balance", "peer_balance")
                       if key in data)
    print(f"{name:<5}  #{event.cursor:<3} {event.kind.value:<17} {details}", flush=True)


def thanks_id(payment_id: str) -> bytes:
    """The same payment always gets the same thank-you id: paying it again is a no-op."""
    return hashlib.sha256(b"thanks" + bytes.fromhex(payment_id)).digest()[:16]


async def bob_thanks(bob: Node, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    """Bob's program: print every event; pay back a tenth of each payment received."""
    feed = bob.events(since=0)  # a fresh node: 0 means from its very first event
    task_status.started()
    async for event in feed:
        show("bob", event)
        if isinstance(event.data, PaymentReceived) and event.data.amount >= 10:
            await bob.pay(ChannelId(bytes.fromhex(event.data.channel_id)), event.data.amount // 10,
                          payment_id=thanks_id(event.data.payment_id))
        if event.kind is EventKind.CHANNEL_SETTLED:
            return


async def alice_watches(alice: Node, thanked: trio.Event, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    """Alice's program: print every event; note when both thank-yous have arrived."""
    feed = alice.events(since=0)
    task_status.started()
    received = 0
    async for event in feed:
        show("alice", event)
        if event.kind is EventKind.PAYMENT_RECEIVED:
            received += 1
            if received == len(PAYMENTS):
                thanked.set()
        if event.kind is EventKind.CHANNEL_SETTLED:
            return


async def main(workdir: Path) -> int:
    alice_cfg = load_config(workdir / "alice", listen=(LOOPBACK,))
    bob_cfg = load_config(workdir / "bob", listen=(LOOPBACK,))
    # An in-process L1 (a node process would use open_remote_devnet(address) instead).
    with Devnet() as ledger, trio.fail_after(60):
        async with Node.open(alice_cfg, ledger=ledger) as alice, Node.open(bob_cfg, ledger=ledger) as bob:
            ledger.faucet_sync(alice.l1_address, FUNDS)
            thanked = trio.Event()
            async with trio.open_nursery() as nursery:
                await nursery.start(bob_thanks, bob)
                await nursery.start(alice_watches, alice, thanked)
                await alice.connect(bob.addresses[0])
                cid = await alice.open_channel(bob.peer_id, DEPOSIT)
                for amount in PAYMENTS:
                    await alice.pay(cid, amount)
                await thanked.wait()
                await alice.close(cid)  # cooperative: both are paid out on the L1
            final = {name: await ledger.balance(node.l1_address) for name, node in (("alice", alice), ("bob", bob))}
    paid, thanks = sum(PAYMENTS), sum(a // 10 for a in PAYMENTS)
    print(f"final L1 balances: alice {final['alice']}, bob {final['bob']} (total {sum(final.values())})")
    if final != {"alice": FUNDS - paid + thanks, "bob": paid - thanks}:
        print("error: the balances do not add up", file=sys.stderr)
        return 1
    print(f"balances add up: alice paid {paid} and was thanked {thanks}")
    return 0


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="channels-embedding-") as tmp:
        sys.exit(trio.run(main, Path(tmp)))
