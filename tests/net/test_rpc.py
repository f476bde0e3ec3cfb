"""RPC and subscriptions between two real libp2p hosts in one trio run."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio

from channels.errors import ChannelsError, InsufficientFunds
from channels.net import Host, RpcClosed, RpcRemoteError, RpcTimeout, open_host
from channels.net.request_response import SendFn, open_rpc_client, open_subscription, serve_rpc, serve_subscription

LOOPBACK = ["/ip4/127.0.0.1/tcp/0"]
RPC = "/test/rpc/1"
SUB = "/test/sub/1"


def seed(name: str) -> bytes:
    return hashlib.sha256(name.encode()).digest()


async def rpc_handler(request: bytes, remote_peer_id: str) -> bytes:
    if request.startswith(b"sleep "):
        await trio.sleep(float(request[6:]))
        return b"slept"
    if request == b"refuse":
        raise InsufficientFunds("balance 3 < 5")
    if request == b"bug":
        raise KeyError("internal detail")
    if request == b"who":
        return remote_peer_id.encode()
    return request[::-1]


@asynccontextmanager
async def server_and_client() -> AsyncIterator[tuple[Host, Host, str]]:
    async with (
        open_host(identity_seed=seed("server"), listen=LOOPBACK) as server,
        open_host(identity_seed=seed("client"), listen=LOOPBACK) as client,
    ):
        serve_rpc(server, RPC, rpc_handler)
        peer = await client.connect(server.addresses[0])
        yield server, client, peer


@pytest.mark.trio
async def test_200_concurrent_calls_on_one_stream() -> None:
    with trio.fail_after(15):
        async with server_and_client() as (_server, host, peer), open_rpc_client(host, peer, RPC) as client:
            results: dict[int, bytes] = {}

            async def one(i: int) -> None:
                results[i] = await client.call(b"request-%d" % i)

            async with trio.open_nursery() as nursery:
                for i in range(200):
                    nursery.start_soon(one, i)
            assert results == {i: (b"request-%d" % i)[::-1] for i in range(200)}
            assert await client.call(b"who") == host.peer_id.encode()


@pytest.mark.trio
async def test_slow_call_does_not_block_fast_ones() -> None:
    with trio.fail_after(10):
        async with server_and_client() as (_server, host, peer), open_rpc_client(host, peer, RPC) as client:
            order: list[bytes] = []

            async def call(request: bytes) -> None:
                order.append(await client.call(request))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(call, b"sleep 0.3")
                await trio.sleep(0.05)
                nursery.start_soon(call, b"fast")
            assert order == [b"tsaf", b"slept"]


@pytest.mark.trio
@pytest.mark.allow_error_logs  # the server logs the handler that raised
async def test_errors_are_typed_and_the_client_survives_them() -> None:
    with trio.fail_after(10):
        async with server_and_client() as (_server, host, peer), open_rpc_client(host, peer, RPC) as client:
            with pytest.raises(RpcRemoteError, match="InsufficientFunds: balance 3 < 5"):
                await client.call(b"refuse")
            with pytest.raises(RpcRemoteError, match="internal error") as info:
                await client.call(b"bug")
            assert "internal detail" not in str(info.value)  # no internals leak to the peer
            with pytest.raises(RpcTimeout):
                await client.call(b"sleep 0.3", timeout=0.1)
            assert isinstance(RpcTimeout("x"), TimeoutError) and isinstance(RpcTimeout("x"), ChannelsError)
            assert await client.call(b"still works") == b"skrow llits"
            await trio.sleep(0.3)  # the late answer to the timed-out call arrives and is dropped
            assert await client.call(b"abc") == b"cba"


@pytest.mark.trio
async def test_pending_calls_fail_when_the_server_goes_away() -> None:
    with trio.fail_after(10):
        async with open_host(identity_seed=seed("client"), listen=LOOPBACK) as host, trio.open_nursery() as nursery:
            listening = trio.Event()
            stop = trio.Event()
            addresses: list[str] = []

            async def run_server() -> None:
                async with open_host(identity_seed=seed("server"), listen=LOOPBACK) as server:
                    serve_rpc(server, RPC, rpc_handler)
                    addresses.extend(server.addresses)
                    listening.set()
                    await stop.wait()

            nursery.start_soon(run_server)
            await listening.wait()
            peer = await host.connect(addresses[0])
            async with open_rpc_client(host, peer, RPC) as client:
                assert await client.call(b"up") == b"pu"
                failures: list[Exception] = []

                async def doomed() -> None:
                    try:
                        await client.call(b"sleep 30")
                    except RpcClosed as exc:
                        failures.append(exc)

                async with trio.open_nursery() as calls:
                    for _ in range(5):
                        calls.start_soon(doomed)
                    await trio.sleep(0.1)
                    stop.set()  # the server host shuts down under the pending calls
                assert len(failures) == 5
                assert client.closed
                with pytest.raises(RpcClosed):
                    await client.call(b"again")


async def counter(request: bytes, send: SendFn, remote_peer_id: str) -> None:
    """Push ``int(request)`` numbered frames, then end; b"fail" fails after one item."""
    if request == b"fail":
        await send(b"partial")
        raise InsufficientFunds("no more credit")
    for i in range(int(request)):
        await send(b"item %d" % i)


@pytest.mark.trio
async def test_subscription_push_and_end() -> None:
    with trio.fail_after(10):
        async with server_and_client() as (server, host, peer):
            serve_subscription(server, SUB, counter)
            async with open_subscription(host, peer, SUB, b"50") as sub:
                items = [item async for item in sub]
            assert items == [b"item %d" % i for i in range(50)]
            async with open_subscription(host, peer, SUB, b"0") as sub:
                assert [item async for item in sub] == []


@pytest.mark.trio
async def test_subscription_error_reaches_the_client() -> None:
    with trio.fail_after(10):
        async with server_and_client() as (server, host, peer):
            serve_subscription(server, SUB, counter)
            async with open_subscription(host, peer, SUB, b"fail") as sub:
                assert await sub.__anext__() == b"partial"
                with pytest.raises(RpcRemoteError, match="no more credit"):
                    await sub.__anext__()


@pytest.mark.trio
async def test_unsubscribing_cancels_the_server_handler() -> None:
    cancelled = trio.Event()

    async def forever(request: bytes, send: SendFn, remote_peer_id: str) -> None:
        try:
            for i in range(10**9):
                await send(b"%d" % i)
                await trio.sleep(0.001)
        finally:
            cancelled.set()

    with trio.fail_after(10):
        async with server_and_client() as (server, host, peer):
            serve_subscription(server, SUB, forever)
            async with open_subscription(host, peer, SUB, b"") as sub:
                async for item in sub:
                    if item == b"20":
                        break
            await cancelled.wait()
            # the connection is still healthy afterwards
            async with open_rpc_client(host, peer, RPC) as client:
                assert await client.call(b"ok") == b"ko"


@pytest.mark.trio
async def test_subscription_reports_a_vanished_server() -> None:
    with trio.fail_after(10):
        async with open_host(identity_seed=seed("client"), listen=LOOPBACK) as host, trio.open_nursery() as nursery:
            listening = trio.Event()
            stop = trio.Event()
            addresses: list[str] = []

            async def slow(request: bytes, send: SendFn, remote_peer_id: str) -> None:
                await send(b"first")
                await trio.sleep_forever()

            async def run_server() -> None:
                async with open_host(identity_seed=seed("server"), listen=LOOPBACK) as server:
                    serve_subscription(server, SUB, slow)
                    addresses.extend(server.addresses)
                    listening.set()
                    await stop.wait()

            nursery.start_soon(run_server)
            await listening.wait()
            peer = await host.connect(addresses[0])
            async with open_subscription(host, peer, SUB, b"") as sub:
                assert await sub.__anext__() == b"first"
                stop.set()
                with pytest.raises(RpcClosed, match="without an end marker"):
                    await sub.__anext__()
