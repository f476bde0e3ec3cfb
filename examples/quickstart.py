"""The library quickstart: an in-process devnet, two nodes on loopback libp2p, one channel
opened, paid and closed, and the L1 balances before and after.

Run it with ``.venv/bin/python examples/quickstart.py``; it can run any number of times in a
row. Everything lives in fresh temporary directories: a node's data dir belongs to the ledger
it was first started with (a store remembers the chain id and genesis id of its L1, and a node
refuses another one), and an in-process devnet is a new ledger on every run.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import trio

from channels.chain.devnet.ledger import Devnet
from channels.node import Node, load_config

FUNDS, DEPOSIT, PAYMENT = 10_000, 5_000, 250


async def main() -> None:
    with tempfile.TemporaryDirectory(prefix="channels-quickstart-") as tmp, Devnet() as ledger:
        # Devnet(): the L1 in memory (a path keeps it in a file; open_remote_devnet(addr) reaches a daemon).
        async with Node.open(load_config(Path(tmp, "alice")), ledger=ledger) as alice, \
                Node.open(load_config(Path(tmp, "bob")), ledger=ledger) as bob:
            ledger.faucet_sync(alice.l1_address, FUNDS)
            before = [await ledger.balance(n.l1_address) for n in (alice, bob)]
            print(f"before: alice {before[0]}, bob {before[1]} on the L1")

            await alice.connect(bob.addresses[0])
            cid = await alice.open_channel(bob.peer_id, DEPOSIT)  # returns once the deposit is on the L1
            print(f"opened channel {cid.hex()[:16]} with {DEPOSIT}")
            await alice.pay(cid, PAYMENT)
            print(f"paid {PAYMENT}")
            await alice.close(cid)  # cooperative: conclude and withdraw; the funds are back on the L1

            after = [await ledger.balance(n.l1_address) for n in (alice, bob)]
            print(f"after: alice {after[0]}, bob {after[1]} on the L1")


if __name__ == "__main__":
    trio.run(main)
