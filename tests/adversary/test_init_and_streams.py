"""Streams that never introduce themselves, and introductions that lie.

* A stream whose ``Init`` never comes holds one of the peer's few stream slots and a
  reader task for nothing: the node resets it after ``init_timeout`` seconds.
* An ``Init`` of another chain, with a bad signature, claiming someone else's L1
  account or replayed from another peer is refused (stream reset, no dial back)."""

from __future__ import annotations

from pathlib import Path

import trio

from channels.chain.devnet.scheme import DevnetKey
from channels.core.ids import ChannelId, Version
from channels.core.messages import Reestablish
from channels.testing.hostile import HostileStream, open_hostile_peer, open_hostile_peers
from channels.wire import encode_message
from tests.adversary.harness import devnet, info, survives, victim

PEERS, STREAMS_EACH = 5, 10  # 50 streams without Init
INIT_TIMEOUT = 1
GRACE = 4.0  # seconds past the timeout for the node to act


async def test_streams_without_init_are_reset(tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with devnet(tmp_path) as (addr, ledger), victim(tmp_path, addr, init_timeout=INIT_TIMEOUT) as node, \
                open_hostile_peers(PEERS, ledger=ledger) as peers:
            address = (await info(node))["addresses"][0]
            streams: list[HostileStream] = []
            with survives(node, f"{PEERS * STREAMS_EACH} streams without Init"):
                for peer in peers:
                    await peer.connect(address, init=False)
                    assert peer.stream is not None
                    streams.append(peer.stream)
                    streams += [await peer.open_stream() for _ in range(STREAMS_EACH - 1)]
                opened = trio.current_time()
                await info(node)  # responsive while the streams hang
                for stream in streams:
                    await stream.wait_closed(max(0.0, opened + INIT_TIMEOUT + GRACE - trio.current_time()))
                still_open = sum(not s.closed for s in streams)
                assert still_open == 0, (f"{still_open} of {len(streams)} streams without Init are still open "
                                         f"{INIT_TIMEOUT + GRACE:g} s after they opened")
                # The slots are free again: the same peer can introduce itself properly.
                await peers[0].reconnect()
                await peers[0].victim_init(timeout=10)
                await info(node)


async def test_lying_inits_are_refused(tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with devnet(tmp_path) as (addr, ledger), victim(tmp_path, addr) as node, \
                open_hostile_peers(2, ledger=ledger) as (liar, other):
            address = (await info(node))["addresses"][0]
            await liar.connect(address, init=False)
            foreign = DevnetKey.generate()
            lies = {
                "wrong chain": liar.init_message(chain_id=liar.chain_id + 1),  # genuine Init of another chain
                "bad signature": liar.init_message(signature=bytes(64)),
                "foreign L1 address": liar.init_message(l1_address=foreign.address),
                "an address of another backend's length": liar.init_message(l1_address=liar.l1_address[:20]),
                "signed by the foreign account for another peer id": liar.init_message(
                    l1_address=foreign.address, sign_with=foreign, signed_peer_id=other.peer_id),
                "replayed from another peer": other.init_message(),
                "not an Init": encode_message(Reestablish(channel_id=ChannelId(bytes(32)), latest_version=Version(0))),
                "not msgpack": b"\xc1garbage",
            }
            for what, lie in lies.items():
                frame = lie if isinstance(lie, bytes) else encode_message(lie)
                with survives(node, f"an Init with {what}"):
                    stream = await liar.open_stream()
                    await stream.send_raw(frame)
                    assert await stream.wait_closed(5), f"an Init with {what} was not refused"
            await trio.sleep(1)
            assert not liar.inbound, "the node dialed back a peer whose Init it should have refused"
            await info(node)
            # A fresh peer telling the truth is still served.
            async with open_hostile_peer(ledger=ledger) as honest:
                await honest.connect(address)
                await honest.victim_init(timeout=10)
