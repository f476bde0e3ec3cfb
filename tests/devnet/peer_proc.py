"""One side of a channel, as its own process, talking to a shared devnet daemon.

    python peer_proc.py alice|bob DEVNET_MULTIADDR NONCE_HEX

Alice and bob each fund the channel. Alice then cheats: she registers the stale
version 1 that pays her more. Bob, watching the event stream, refutes with version 2.
Alice waits out the challenge window and withdraws; both print their final balance
as JSON. The parent test checks that version 2 was paid.
"""

from __future__ import annotations

import json
import sys
from contextlib import aclosing
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).parent))

from devnet_util import keys, make_params, signed

from channels.chain.devnet.client import open_remote_devnet
from channels.core.ids import NATIVE

DURATION = 2


async def main(role: str, address: str, nonce: bytes) -> None:
    alice, bob = keys("alice", "bob")
    me = alice if role == "alice" else bob
    params = make_params([alice, bob], duration=DURATION, nonce=nonce)
    cid = params.channel_id
    v1 = signed(params, [alice, bob], 1, (150, 50))
    v2 = signed(params, [alice, bob], 2, (60, 140))
    with trio.fail_after(60):
        async with open_remote_devnet(address) as devnet:
            start = await devnet.balance(me.address)
            await devnet.faucet(me.address, 1000)
            await devnet.deposit(me, cid, NATIVE, 100)
            async with aclosing(devnet.events(after=0)) as events:
                await play(devnet, role, me, params, v1, v2, events)
            view = await devnet.channel(cid)
            final = await devnet.balance(me.address)
    print(json.dumps({"role": role, "gained": final - start, "withdrawn": view.withdrawn,
                      "paid_version": view.registered.state.version if view.registered else None}))


async def play(devnet, role, me, params, v1, v2, events) -> None:
    cid = params.channel_id
    if role == "alice":
        async for ev in events:
            if ev.channel_id == cid and ev.kind == "Deposited" and ev.data["holdings"] == 200:
                break
        await devnet.register(me, params, v1)  # the cheat: a stale state that pays alice more
        async for ev in events:
            if ev.channel_id == cid and ev.kind == "Refuted":
                deadline = ev.data["deadline"]
                break
        while await devnet.now() < deadline:
            await trio.sleep(0.1)
        await devnet.withdraw(me, params)
    else:
        async for ev in events:
            if ev.channel_id != cid:
                continue
            if ev.kind == "Registered" and ev.data["version"] < 2:
                await devnet.refute(me, params, v2)
            if ev.kind == "Withdrawn":
                break


if __name__ == "__main__":
    trio.run(main, sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3]))
