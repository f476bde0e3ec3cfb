"""Server run as a separate OS process by ``test_two_processes``.

Usage: ``python rpc_child.py SEED_HEX [LISTEN_MULTIADDR]``. Serves ``/test/rpc/1`` (reverses the
request) and ``/test/sub/1`` (pushes ``int(request)`` frames), prints its full
multiaddr on one stdout line, then serves until killed.
"""

from __future__ import annotations

import sys

import trio

from channels.net import open_host
from channels.net.request_response import SendFn, serve_rpc, serve_subscription


async def reverse(request: bytes, remote_peer_id: str) -> bytes:
    return request[::-1]


async def count(request: bytes, send: SendFn, remote_peer_id: str) -> None:
    for i in range(int(request)):
        await send(b"%d" % i)


async def main(seed_hex: str, listen: str) -> None:
    async with open_host(identity_seed=bytes.fromhex(seed_hex), listen=[listen]) as host:
        serve_rpc(host, "/test/rpc/1", reverse)
        serve_subscription(host, "/test/sub/1", count)
        print(host.addresses[0], flush=True)
        await trio.sleep_forever()


if __name__ == "__main__":
    trio.run(main, sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "/ip4/127.0.0.1/tcp/0")
