"""Two real libp2p hosts in one trio run, talking over loopback TCP (Noise + yamux)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

from channels.encoding import MAX_FRAME
from channels.errors import ConfigError, FrameTooLarge
from channels.net import (
    ConnectionLimits,
    Host,
    InvalidAddress,
    MessageTooLarge,
    NetError,
    PeerUnreachable,
    ProtocolNotSupported,
    Stream,
    StreamClosed,
    open_host,
)

LOOPBACK = ["/ip4/127.0.0.1/tcp/0"]
REPO = Path(__file__).resolve().parents[2]
ECHO = "/test/echo/1"


def seed(name: str) -> bytes:
    return hashlib.sha256(name.encode()).digest()


async def echo(stream: Stream) -> None:
    while True:
        try:
            frame = await stream.receive()
        except StreamClosed:
            return
        await stream.send(frame)


@asynccontextmanager
async def two_hosts() -> AsyncIterator[tuple[Host, Host, str]]:
    """Server ``a`` (serving echo) and client ``b``, connected; yields (a, b, a's peer id)."""
    async with (
        open_host(identity_seed=seed("a"), listen=LOOPBACK) as a,
        open_host(identity_seed=seed("b"), listen=LOOPBACK) as b,
    ):
        a.set_handler(ECHO, echo)
        with trio.fail_after(5):
            peer = await b.connect(a.addresses[0])
        yield a, b, peer


@pytest.mark.trio
async def test_frames_round_trip_over_real_libp2p() -> None:
    with trio.fail_after(10):
        async with two_hosts() as (a, b, peer):
            assert peer == a.peer_id
            assert peer in b.connected_peers()
            async with await b.open_stream(peer, ECHO) as stream:
                assert stream.remote_peer_id == a.peer_id and stream.protocol_id == ECHO
                for payload in (b"", b"hello", bytes(range(256)) * 100, b"m" * MAX_FRAME):
                    await stream.send(payload)
                    assert await stream.receive() == payload
                with pytest.raises(MessageTooLarge):
                    await stream.send(b"m" * (MAX_FRAME + 1))


@pytest.mark.trio
async def test_concurrent_senders_never_interleave_frames() -> None:
    with trio.fail_after(10):
        async with two_hosts() as (_a, b, peer):
            stream = await b.open_stream(peer, ECHO)
            sent = {bytes([i]) * (i * 397 % 20000) + b"#%d" % i for i in range(100)}
            received: set[bytes] = set()

            async def reader() -> None:
                while len(received) < len(sent):
                    received.add(await stream.receive())

            async with trio.open_nursery() as nursery:
                nursery.start_soon(reader)
                for payload in sent:
                    nursery.start_soon(stream.send, payload)
            assert received == sent
            await stream.close()


@pytest.mark.trio
async def test_addresses_and_persistent_peer_id() -> None:
    with trio.fail_after(10):
        async with open_host(identity_seed=seed("p"), listen=LOOPBACK) as h:
            first = h.peer_id
            (address,) = h.addresses
            assert address.startswith("/ip4/127.0.0.1/tcp/") and address.endswith(f"/p2p/{first}")
            assert int(address.split("/")[4]) > 0  # the real port, not 0
        async with open_host(identity_seed=seed("p"), listen=LOOPBACK) as h:
            assert h.peer_id == first
        async with open_host(identity_seed=seed("q"), listen=LOOPBACK) as h:
            assert h.peer_id != first
    with pytest.raises(ConfigError):
        async with open_host(identity_seed=b"short", listen=LOOPBACK):
            pass


@pytest.mark.trio
async def test_typed_errors_for_bad_peers_and_addresses() -> None:
    with trio.fail_after(10):
        async with two_hosts() as (a, b, peer):
            with pytest.raises(ProtocolNotSupported):
                await b.open_stream(peer, "/test/nobody-serves-this/1")
            async with open_host(identity_seed=seed("c"), listen=LOOPBACK) as c:
                impostor = a.addresses[0].replace(a.peer_id, c.peer_id)
                gone = c.addresses[0]
            with pytest.raises(PeerUnreachable):
                await b.connect(gone)  # c has shut down
            with pytest.raises(PeerUnreachable, match="connection refused; is the peer running") as refused:
                await b.connect(f"/ip4/127.0.0.1/tcp/1/p2p/{c.peer_id}")
            assert "Exception" not in str(refused.value)  # the cause, not libp2p's and trio's wrappers
            with pytest.raises(PeerUnreachable, match="peer id"):
                await b.connect(impostor)  # Noise proves the key behind the address
            with pytest.raises(PeerUnreachable):
                await b.open_stream(c.peer_id, ECHO)  # never connected, no address
            for bad in ("garbage", "/ip4/127.0.0.1/tcp/5", b.addresses[0]):
                with pytest.raises(InvalidAddress):
                    await b.connect(bad)
            with pytest.raises(InvalidAddress):
                await b.open_stream("not-a-peer-id", ECHO)
            # the connection survived all of that
            async with await b.open_stream(peer, ECHO) as stream:
                await stream.send(b"still fine")
                assert await stream.receive() == b"still fine"


@pytest.mark.trio
async def test_oversized_frame_from_peer_is_rejected() -> None:
    with trio.fail_after(10):
        async with (
            open_host(identity_seed=seed("a"), listen=LOOPBACK) as a,
            open_host(identity_seed=seed("big"), listen=LOOPBACK, max_frame=4 * MAX_FRAME) as big,
        ):
            errors: list[Exception] = []

            async def strict(stream: Stream) -> None:
                try:
                    await stream.receive()
                except Exception as exc:
                    errors.append(exc)
                    raise

            a.set_handler(ECHO, strict)
            peer = await big.connect(a.addresses[0])
            stream = await big.open_stream(peer, ECHO)
            await stream.send(b"x" * (MAX_FRAME + 1))
            with pytest.raises(StreamClosed):
                await stream.receive()  # a reset the stream
            assert len(errors) == 1 and isinstance(errors[0], FrameTooLarge), errors


@pytest.mark.trio
@pytest.mark.allow_error_logs  # the host logs the failing handler
async def test_handler_failure_does_not_take_the_host_down() -> None:
    async def broken(stream: Stream) -> None:
        await stream.receive()
        raise RuntimeError("handler bug")

    with trio.fail_after(10):
        async with two_hosts() as (a, b, peer):
            a.set_handler("/test/broken/1", broken)
            stream = await b.open_stream(peer, "/test/broken/1")
            await stream.send(b"boom")
            with pytest.raises(StreamClosed):
                await stream.receive()
            await stream.close()
            async with await b.open_stream(peer, ECHO) as ok:
                await ok.send(b"alive")
                assert await ok.receive() == b"alive"


@pytest.mark.trio
async def test_receive_is_cancel_safe() -> None:
    with trio.fail_after(10):
        async with two_hosts() as (_a, b, peer):
            async with await b.open_stream(peer, ECHO) as stream:
                for i in range(20):
                    with trio.move_on_after(0.001):
                        await stream.receive()  # nothing to receive: cancelled
                    await stream.send(b"%d" % i)
                    assert await stream.receive() == b"%d" % i


@pytest.mark.trio
async def test_disconnect_is_detected_and_streams_end() -> None:
    with trio.fail_after(10):
        async with open_host(identity_seed=seed("b"), listen=LOOPBACK) as b:
            async with open_host(identity_seed=seed("a"), listen=LOOPBACK) as a:
                a.set_handler(ECHO, echo)
                peer = await b.connect(a.addresses[0])
                stream = await b.open_stream(peer, ECHO)
                await stream.send(b"ping")
                assert await stream.receive() == b"ping"
            # a has shut down
            await b.wait_disconnected(peer)
            assert peer not in b.connected_peers()
            with pytest.raises(StreamClosed):
                await stream.receive()
            with pytest.raises(StreamClosed):
                await stream.send(b"anyone?")
            await stream.close()


@pytest.mark.trio
async def test_open_stream_redials_a_restarted_peer() -> None:
    with trio.fail_after(15):
        async with open_host(identity_seed=seed("b"), listen=LOOPBACK) as b:
            async with open_host(identity_seed=seed("a"), listen=LOOPBACK) as a:
                address = a.addresses[0]
                peer = await b.connect(address)
            await b.wait_disconnected(peer)
            with pytest.raises(PeerUnreachable):
                await b.open_stream(peer, ECHO)  # a is down
            port_listen = "/".join(address.split("/")[:5])  # same port, same seed
            async with open_host(identity_seed=seed("a"), listen=[port_listen]) as a:
                a.set_handler(ECHO, echo)
                async with await b.open_stream(peer, ECHO) as stream:  # re-dials at once
                    await stream.send(b"back")
                    assert await stream.receive() == b"back"


@pytest.mark.trio
async def test_listen_failure_and_closed_host() -> None:
    with trio.fail_after(10):
        async with open_host(identity_seed=seed("a"), listen=LOOPBACK) as a:
            taken = "/".join(a.addresses[0].split("/")[:5])
            with pytest.raises(ConfigError, match="cannot listen"):
                async with open_host(identity_seed=seed("b"), listen=[taken]):
                    pass
    with pytest.raises(NetError, match="closed"):
        await a.connect(f"/ip4/127.0.0.1/tcp/1/p2p/{a.peer_id}")


def task_tree() -> list[str]:
    names: list[str] = []

    def walk(task: trio.lowlevel.Task, depth: int) -> None:
        names.append(f"{depth}:{task.name}")
        for nursery in task.child_nurseries:
            for child in nursery.child_tasks:
                walk(child, depth + 1)

    walk(trio.lowlevel.current_root_task(), 0)
    return sorted(names)


@pytest.mark.trio
async def test_shutdown_leaves_no_tasks_or_sockets() -> None:
    fds = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    before = task_tree()
    with trio.fail_after(10):
        async with two_hosts() as (_a, b, peer):
            lingering = await b.open_stream(peer, ECHO)  # left open on purpose
            await lingering.send(b"x")
            assert await lingering.receive() == b"x"
    assert task_tree() == before
    if fds is not None:
        assert len(os.listdir("/proc/self/fd")) == fds


# --- inbound connection slots (security finding: slots were never released) ---

CLIENT_CHILD = """
import sys, trio
from channels.net import open_host

async def main(address):
    async with open_host(identity_seed=bytes.fromhex(sys.argv[2]), listen=[]) as host:
        await host.connect(address)
        print("connected", flush=True)
        await trio.to_thread.run_sync(sys.stdin.read)  # until the parent closes our stdin

trio.run(main, sys.argv[1])
"""


async def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    with trio.move_on_after(timeout):
        while not predicate():
            await trio.sleep(0.02)
        return
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.mark.trio
async def test_closed_inbound_connections_free_their_slots() -> None:
    """Sequential cycles far past every bound: each close gives its slot back."""
    tiny = ConnectionLimits(max_inbound_total=2, max_inbound_per_ip=2, max_inbound_per_peer=2)
    with trio.fail_after(60):
        async with (
            open_host(identity_seed=seed("server"), listen=LOOPBACK, limits=tiny) as server,
            open_host(identity_seed=seed("client"), listen=[]) as client,
        ):
            server.set_handler(ECHO, echo)
            for i in range(12):
                peer = await client.connect(server.addresses[0], timeout=5)
                async with await client.open_stream(peer, ECHO) as stream:
                    await stream.send(b"%d" % i)
                    assert await stream.receive() == b"%d" % i
                await client.disconnect(peer)
            await wait_until(lambda: server.connection_stats()["inbound"] == 0, "the server to free every slot")
            stats = server.connection_stats()
            assert stats["inbound_accepted_total"] == 12 and stats["connections"] == 0
            assert stats["inbound_refused_total"] == stats["inbound_refused_per_ip"] == 0
            # py-libp2p's own 250-slot limiter (the one that leaked) is never taken any more.
            swarm: Any = server._lp.get_network()
            assert swarm._inbound_limiter.borrowed_tokens == 0


@pytest.mark.trio
async def test_total_and_per_ip_limits_refuse_with_a_clean_error() -> None:
    for limits, bound in (
        (ConnectionLimits(max_inbound_total=2, max_inbound_per_ip=2, max_inbound_per_peer=1), "total"),
        (ConnectionLimits(max_inbound_total=3, max_inbound_per_ip=2, max_inbound_per_peer=1), "per_ip"),
    ):
        with trio.fail_after(30):
            async with (
                open_host(identity_seed=seed("server"), listen=LOOPBACK, limits=limits) as server,
                open_host(identity_seed=seed("c1"), listen=[]) as c1,
                open_host(identity_seed=seed("c2"), listen=[]) as c2,
                open_host(identity_seed=seed("c3"), listen=[]) as c3,
            ):
                server.set_handler(ECHO, echo)
                address = server.addresses[0]
                await c1.connect(address)
                await c2.connect(address)
                with pytest.raises(PeerUnreachable, match="connection limit"):
                    await c3.connect(address, timeout=5)  # refused at once, not a hang
                stats = server.connection_stats()
                assert stats["inbound"] == 2 and stats[f"inbound_refused_{bound}"] == 1
                # the admitted ones still work
                async with await c1.open_stream(server.peer_id, ECHO) as stream:
                    await stream.send(b"still served")
                    assert await stream.receive() == b"still served"
                # one leaves: the refused dialer gets in
                await c1.disconnect(server.peer_id)
                await wait_until(lambda: server.connection_stats()["inbound"] == 1, "c1's slot to be freed")
                await c3.connect(address, timeout=5)
                async with await c3.open_stream(server.peer_id, ECHO) as stream:
                    await stream.send(b"in")
                    assert await stream.receive() == b"in"


@pytest.mark.trio
async def test_per_ip_limit_is_per_source_address() -> None:
    """Raw TCP from 127.0.0.1 and 127.0.0.2: only the over-limit source is refused (before any handshake)."""
    limits = ConnectionLimits(max_inbound_total=3, max_inbound_per_ip=1, max_inbound_per_peer=1)
    with trio.fail_after(20):
        async with open_host(identity_seed=seed("server"), listen=LOOPBACK, limits=limits) as server:
            port = int(server.addresses[0].split("/")[4])

            async def dial_from(source: str) -> trio.SocketStream:
                sock = trio.socket.socket()
                await sock.bind((source, 0))
                await sock.connect(("127.0.0.1", port))
                return trio.SocketStream(sock)

            async def refused(stream: trio.SocketStream) -> bool:
                """Whether the server closes the socket at once (it waits for a handshake otherwise)."""
                with trio.move_on_after(1.0):
                    try:
                        while await stream.receive_some(4096):
                            pass
                    except trio.BrokenResourceError:
                        pass
                    return True
                return False

            first = await dial_from("127.0.0.1")
            await wait_until(lambda: server.connection_stats()["inbound"] == 1, "the first connection")
            second = await dial_from("127.0.0.1")
            other = await dial_from("127.0.0.2")
            assert await refused(second)
            assert not await refused(other)
            assert not await refused(first)
            stats = server.connection_stats()
            assert stats["inbound"] == 2 and stats["inbound_ips"] == 2 and stats["inbound_refused_per_ip"] == 1
            for stream in (first, second, other):
                await stream.aclose()
            await wait_until(lambda: server.connection_stats()["inbound"] == 0, "the slots of closed sockets")


@pytest.mark.trio
async def test_per_peer_limit_closes_the_extra_connection() -> None:
    limits = ConnectionLimits(max_inbound_total=4, max_inbound_per_ip=4, max_inbound_per_peer=1)
    with trio.fail_after(20):
        async with (
            open_host(identity_seed=seed("server"), listen=LOOPBACK, limits=limits) as server,
            open_host(identity_seed=seed("twin"), listen=[]) as twin1,
            open_host(identity_seed=seed("twin"), listen=[]) as twin2,  # same key, same peer id
        ):
            server.set_handler(ECHO, echo)
            await twin1.connect(server.addresses[0])
            await twin2.connect(server.addresses[0])  # the handshake succeeds, then the server hangs up
            await twin2.wait_disconnected(server.peer_id)
            stats = server.connection_stats()
            assert stats["inbound_refused_per_peer"] == 1
            await wait_until(lambda: server.connection_stats()["inbound"] == 1, "the refused twin's slot")
            async with await twin1.open_stream(server.peer_id, ECHO) as stream:  # the first one is untouched
                await stream.send(b"first")
                assert await stream.receive() == b"first"


@pytest.mark.trio
async def test_a_peer_process_that_dies_frees_its_slot() -> None:
    """The slot comes back when the peer just goes away (FIN/RST on exit, or a crash), not only on our close."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    with trio.fail_after(60):
        async with open_host(identity_seed=seed("server"), listen=LOOPBACK) as server:
            for name in ("exit", "crash"):
                process = await trio.lowlevel.open_process(
                    [sys.executable, "-c", CLIENT_CHILD, server.addresses[0], seed(name).hex()],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    env=env,
                )
                try:
                    assert process.stdin is not None and process.stdout is not None
                    assert (await process.stdout.receive_some(100)).startswith(b"connected")
                    await wait_until(lambda: server.connection_stats()["inbound"] == 1, "the child's connection")
                    if name == "exit":
                        await process.stdin.aclose()  # the child leaves its host block and exits normally
                    else:
                        process.send_signal(signal.SIGKILL)  # no goodbye: the kernel closes the socket
                    assert await process.wait() == (0 if name == "exit" else -signal.SIGKILL)
                    await wait_until(lambda: server.connection_stats()["inbound"] == 0, f"the slot after {name}")
                    await wait_until(lambda: server.connection_stats()["connections"] == 0, f"the swarm after {name}")
                finally:
                    if process.returncode is None:
                        process.kill()
                    with trio.move_on_after(5):
                        await process.wait()
