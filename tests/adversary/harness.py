"""Real processes for the adversary tests: one devnet daemon and one victim node on loopback.

The devnet is ``tests.node.test_processes.devnet``; the victim is a ``channels node
start`` process (``tests.procs.NodeProc``) with its settings in ``DIR/config.toml``.
The attackers are ``channels.testing.hostile`` peers in the test process.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import trio

from tests.node.test_processes import devnet  # a devnet daemon and a client of it
from tests.procs import NodeProc

__all__ = ["alive", "channels", "devnet", "info", "log_tail", "survives", "unfinished", "victim", "wait_for"]

UNFINISHED = ("proposed", "funding")


@asynccontextmanager
async def victim(tmp_path: Path, devnet_addr: str, **settings: object) -> AsyncIterator[NodeProc]:
    """A node daemon with ``settings`` in its config.toml, stopped (SIGTERM) at the end."""
    node = NodeProc(tmp_path / "victim", devnet_addr, dict(settings))
    try:
        await node.start_and_wait()
        yield node
    finally:
        node.stop()


def alive(node: NodeProc) -> bool:
    return node.proc is not None and node.proc.poll() is None


def log_tail(node: NodeProc, chars: int = 3000) -> str:
    return node.log.read_text(errors="replace")[-chars:] if node.log.exists() else ""


@contextmanager
def survives(node: NodeProc, what: str) -> Iterator[None]:
    """Whatever fails inside the block, say first whether the node died doing ``what``."""
    try:
        yield
    except Exception as exc:
        if not alive(node):
            raise AssertionError(f"{what} killed the node:\n{log_tail(node)}") from exc
        raise
    assert alive(node), f"{what} killed the node:\n{log_tail(node)}"


async def info(node: NodeProc) -> dict[str, Any]:
    """``getinfo``, with the node's log in the message if the process died."""
    assert alive(node), f"the node died:\n{log_tail(node)}"
    with trio.fail_after(10):
        result: Any = await node.call("getinfo")
    return dict(result)


async def channels(node: NodeProc) -> list[dict[str, Any]]:
    assert alive(node), f"the node died:\n{log_tail(node)}"
    with trio.fail_after(10):
        result: Any = await node.call("list-channels")
    return list(result["channels"])


async def unfinished(node: NodeProc) -> int:
    """How many of the node's channels are still in ``proposed`` or ``funding``."""
    return sum(c["state"] in UNFINISHED for c in await channels(node))


async def wait_for(what: str, check: Callable[[], Any], *, timeout: float, every: float = 0.1) -> Any:
    """Poll the async ``check()`` until it returns something truthy; fail after ``timeout`` s."""
    last: Any = None
    with trio.move_on_after(timeout):
        while True:
            last = await check()
            if last:
                return last
            await trio.sleep(every)
    raise AssertionError(f"{what}: not within {timeout} s (last seen: {last!r})")


async def funded_channel(peer: Any, address: str, amount: int, **open_args: Any) -> Any:
    """The hostile peer funds its L1 account, connects to the victim at ``address`` and opens
    a channel it funds alone with ``amount``; the channel id."""
    await peer.fund(amount)  # one faucet call holds at most 2**64 - 1
    await peer.connect(address)
    return await peer.open_channel(amount, **open_args)
