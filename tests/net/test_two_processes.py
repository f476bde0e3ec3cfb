"""A real second OS process: RPC and subscription across process boundaries."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from channels.net import RpcClosed, open_host
from channels.net.request_response import open_rpc_client, open_subscription

CHILD = Path(__file__).with_name("rpc_child.py")
REPO = Path(__file__).resolve().parents[2]


async def read_line(stream: trio.abc.ReceiveStream) -> str:
    data = b""
    while not data.endswith(b"\n"):
        chunk = await stream.receive_some(4096)
        if not chunk:
            raise AssertionError(f"child exited before printing its address (got {data!r})")
        data += chunk
    return data.decode().strip()


@pytest.mark.trio
async def test_rpc_with_a_separate_process() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    seed = hashlib.sha256(b"child").digest()
    process = await trio.lowlevel.open_process(
        [sys.executable, str(CHILD), seed.hex()], stdout=subprocess.PIPE, env=env
    )
    try:
        with trio.fail_after(15):
            assert process.stdout is not None
            address = await read_line(process.stdout)
            async with open_host(
                identity_seed=hashlib.sha256(b"parent").digest(), listen=["/ip4/127.0.0.1/tcp/0"]
            ) as host:
                peer = await host.connect(address)
                assert address.endswith("/p2p/" + peer)
                async with open_rpc_client(host, peer, "/test/rpc/1") as client:
                    for i in range(100):
                        assert await client.call(b"seq %d" % i) == (b"seq %d" % i)[::-1]
                    results: dict[int, bytes] = {}

                    async def one(i: int) -> None:
                        results[i] = await client.call(b"par %d" % i)

                    async with trio.open_nursery() as nursery:
                        for i in range(100):
                            nursery.start_soon(one, i)
                    assert results == {i: (b"par %d" % i)[::-1] for i in range(100)}

                    async with open_subscription(host, peer, "/test/sub/1", b"30") as sub:
                        assert [item async for item in sub] == [b"%d" % i for i in range(30)]

                    process.terminate()
                    await process.wait()
                    await host.wait_disconnected(peer)
                    with pytest.raises(RpcClosed):
                        await client.call(b"anyone there?")
    finally:
        if process.returncode is None:
            process.kill()
        with trio.move_on_after(5):
            await process.wait()


@pytest.mark.trio
async def test_reconnects_to_a_restarted_process_even_before_noticing_it_died() -> None:
    """The peer is killed and restarted while our event loop is blocked, so we
    still hold its dead connection; the next stream must re-dial transparently."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    seed = hashlib.sha256(b"restarted child").hexdigest()
    first = subprocess.Popen([sys.executable, str(CHILD), seed], stdout=subprocess.PIPE, env=env, text=True)
    second: subprocess.Popen[str] | None = None
    try:
        assert first.stdout is not None
        address = first.stdout.readline().strip()
        with trio.fail_after(15):
            async with open_host(
                identity_seed=hashlib.sha256(b"parent").digest(), listen=["/ip4/127.0.0.1/tcp/0"]
            ) as host:
                peer = await host.connect(address)
                async with open_rpc_client(host, peer, "/test/rpc/1") as client:
                    assert await client.call(b"before") == b"erofeb"
                # blocking calls on purpose: the trio loop must not see the old connection die
                first.kill()
                first.wait()
                listen = "/".join(address.split("/")[:5])
                second = subprocess.Popen(
                    [sys.executable, str(CHILD), seed, listen], stdout=subprocess.PIPE, env=env, text=True
                )
                assert second.stdout is not None
                assert second.stdout.readline().strip() == address  # same identity, same port
                assert host.is_connected(peer)  # stale: we have not noticed yet
                async with open_rpc_client(host, peer, "/test/rpc/1") as client:
                    assert await client.call(b"after") == b"retfa"
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
