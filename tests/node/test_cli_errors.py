"""Wrong input and unreachable peers get one clear line, at once, naming the real reason.

Each case was found by a user (issue #9): ``connect`` to a peer that does not serve the channel
protocol waited 11 s and said "not connected; run connect first"; ``connect`` to a dead address
said "connected" when the peer was connected by another one; ``open notapeerid`` waited 11 s;
a 31-digit amount said "must be a positive integer"; ``devnet faucet --amount -5`` said "a field
is not a valid u64"; paying a settled channel said "(it is closing)"; ``devnet faucet --to
DIR/identity.key`` funded an account derived from the node's libp2p identity.

Real processes first (the devnet daemon and two nodes of ``tests.node.test_cli``), then the
same rules in process, where they are cheaper to reach.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from channels.chain.devnet.ledger import Devnet
from channels.core.ids import MAX_AMOUNT
from channels.crypto import SigningKey
from channels.errors import LocalProtocolError
from channels.frontend.control_server import InvalidParams, Params
from channels.keyfile import L1_ACCOUNT, LIBP2P_IDENTITY, WrongKeyUse, load_or_create_key, read_key, write_key
from channels.net import InvalidAddress, PeerUnreachable, open_host
from channels.net.memory import MemoryNetwork, MemoryTransport, open_memory_transport
from channels.node import Node, load_config
from channels.node.node import NotAChannelPeer, PeerNotConnected
from channels.wire import PROTOCOL_CHANNEL
from tests.node.test_cli import Network, cli, cli_error, network, parallel, run_cli  # noqa: F401 (a fixture)

QUICK = 8.0  # seconds: "at once" for a CLI process that starts Python; the old answers took 11 s
HUGE = str(2**256)  # one above the largest amount


def timed_error(*args: str) -> tuple[str, float]:
    """``cli_error`` and how long the command took."""
    started = time.monotonic()
    line = cli_error(*args)
    return line, time.monotonic() - started


def arg_error(*args: str) -> str:
    """A command whose arguments are refused by the parser: exit 2 and one ``error: ...`` line."""
    done = run_cli(*args)
    assert done.returncode == 2, f"channels {' '.join(args)} gave {done.returncode}: {done.stdout}{done.stderr}"
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    return lines[0]


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unknown_peer_id() -> str:
    from libp2p.crypto.ed25519 import create_new_key_pair
    from libp2p.peer.id import ID

    return str(ID.from_pubkey(create_new_key_pair().public_key).to_base58())


def test_cli_errors_name_the_real_reason_at_once(network: Network) -> None:  # noqa: F811 (the fixture)
    a, dv = str(network.dirs["a"]), str(network.dirs["dv"])
    b_address = (network.dirs["b"] / "node.addr").read_text().strip()
    b_id = b_address.rsplit("/", 1)[-1]
    stranger = unknown_peer_id()
    new_key = network.dirs["a"].parent / "new.key"
    devnet = ("--devnet", network.devnet)
    answers = parallel(
        lambda: timed_error("--data-dir", a, "connect", network.devnet),  # the devnet daemon serves no channels
        lambda: timed_error("--data-dir", a, "open", "notapeerid", "100"),
        lambda: timed_error("--data-dir", a, "open", stranger, "100"),
        lambda: arg_error("--data-dir", a, "open", b_id, HUGE),  # refused by the parser, like the devnet's
        lambda: arg_error("--data-dir", a, "pay-direct", "ab", HUGE),
        lambda: arg_error("devnet", "faucet", *devnet, "--to", f"{a}/l1.key", "--amount", "-5"),
        lambda: arg_error("devnet", "faucet", *devnet, "--to", f"{a}/l1.key", "--amount", "0"),
        lambda: arg_error("devnet", "faucet", *devnet, "--to", f"{a}/l1.key", "--amount", "ten"),
        lambda: arg_error("devnet", "faucet", *devnet, "--to", f"{a}/l1.key", "--amount", HUGE),
        lambda: arg_error("devnet", "transfer", *devnet, "--key-file", f"{a}/l1.key", "--to", f"{a}/l1.key",
                          "--amount", "-1"),
        lambda: arg_error("devnet", "new-account", *devnet, "--key-file", str(new_key), "--fund", "-3"),
        lambda: cli_error("devnet", "faucet", *devnet, "--to", f"{a}/identity.key", "--amount", "5"),
        lambda: cli_error("devnet", "balance", *devnet, f"{a}/identity.key"),
        lambda: cli_error("devnet", "transfer", *devnet, "--key-file", f"{a}/identity.key", "--to", f"{a}/l1.key",
                          "--amount", "1"),
        lambda: cli_error("devnet", "balance", *devnet, f"{dv}/identity.key"))
    (devnet_peer, t_devnet), (bad_id, t_bad_id), (unknown, t_unknown), huge_open, huge_pay = answers[:5]
    args, keys = answers[5:11], answers[11:]

    devnet_id = network.devnet.rsplit("/", 1)[-1]
    assert devnet_peer == f"error: peer {devnet_id} does not serve the channel protocol {PROTOCOL_CHANNEL}"
    assert bad_id.startswith("error: invalid peer id 'notapeerid'")
    assert unknown == f"error: not connected to {stranger}; run connect first"
    assert max(t_devnet, t_bad_id, t_unknown) < QUICK, (t_devnet, t_bad_id, t_unknown)
    for line, method in ((huge_open, "open"), (huge_pay, "pay-direct")):
        assert line == (f"error: argument AMOUNT: the amount {HUGE} is too large: the largest is 2^256-1 "
                        f"(see: channels {method} --help)")

    negative, zero, word, too_large, transfer, fund = args
    for line in (negative, zero, word, transfer, fund):
        assert "the amount must be a positive integer" in line and "u64" not in line
    assert "got -5" in negative and "got 'ten'" in word
    assert "the amount " + HUGE + " is too large: the largest is 2^256-1" in too_large
    assert not new_key.exists()  # refused before a key was written

    faucet, balance, transfer_from, daemon_identity = keys
    for line in (faucet, balance, transfer_from):
        assert f"{a}/identity.key is a libp2p identity key, not an L1 account key; give {a}/l1.key" in line
    assert f"{dv}/identity.key is a libp2p identity key" in daemon_identity

    # A dead address of a peer we are connected to by another one: the failed dial is reported.
    assert cli("--data-dir", a, "connect", b_address) == {"peer_id": b_id}
    dead = f"/ip4/127.0.0.1/tcp/{free_port()}/p2p/{b_id}"
    line = cli_error("--data-dir", a, "connect", dead)
    assert line.startswith(f"error: already connected to {b_id} via /ip4/127.0.0.1/tcp/")
    assert f"but cannot connect to {dead}" in line
    assert cli("--data-dir", a, "connect", b_address) == {"peer_id": b_id}  # the working address still works

    # The devnet goes away: getinfo says the balance is unknown (never 0) and why.
    network.procs["dv"].send_signal(signal.SIGTERM)
    assert network.procs["dv"].wait(timeout=15) == 0
    human = run_cli("--data-dir", a, "getinfo", json_out=False)
    assert human.returncode == 1 and human.stderr.startswith("error: cannot reach the L1: "), human.stderr
    assert len(human.stderr.strip().splitlines()) == 1, human.stderr
    assert re.search(r"^L1 balance: +unknown$", human.stdout, re.MULTILINE), human.stdout
    assert re.search(r"^L1 error: +\S", human.stdout, re.MULTILINE) and "L1 balance:  0" not in human.stdout
    info = json.loads(run_cli("--data-dir", a, "getinfo").stdout)
    assert info["l1_balances"] is None and info["l1_error"]


# --- in process ----------------------------------------------------------------------------------


@asynccontextmanager
async def nodes(tmp_path: Path, *names: str) -> AsyncIterator[tuple[Devnet, MemoryNetwork, list[Node]]]:
    dev, net = Devnet(None, clock=None), MemoryNetwork()
    async with AsyncExitStack() as stack:
        out = []
        for name in names:
            transport = await stack.enter_async_context(open_memory_transport(net, name))
            config = load_config(tmp_path / name, tick_interval=0.05, reconnect_interval=0.02)
            out.append(await stack.enter_async_context(Node.open(config, ledger=dev, transport=transport)))
            dev.faucet_sync(out[-1].l1_address, 100_000)
        yield dev, net, out


@asynccontextmanager
async def raw_peer(net: MemoryNetwork, name: str, handler: Any = None) -> AsyncIterator[MemoryTransport]:
    """A peer that is no channel node: it serves ``handler`` on the channel protocol, if given."""
    async with open_memory_transport(net, name) as transport:
        if handler is not None:
            transport.set_handler(PROTOCOL_CHANNEL, handler)
        yield transport


async def test_connect_says_why_a_peer_never_introduced_itself(tmp_path: Path, autojump_clock: MockClock) -> None:
    async def mute(stream: Any) -> None:  # takes our stream and Init, never answers
        await trio.sleep_forever()

    async def refuse(stream: Any) -> None:  # resets our stream at once (as a node refusing our Init does)
        await stream.reset()

    async with nodes(tmp_path, "a") as (_dev, net, (a,)), raw_peer(net, "deaf"), raw_peer(net, "mute", mute), \
            raw_peer(net, "refuser", refuse):
        started = trio.current_time()
        refused = f"^peer deaf does not serve the channel protocol {re.escape(PROTOCOL_CHANNEL)}$"
        with pytest.raises(NotAChannelPeer, match=refused):
            await a.connect("/memory/deaf")
        with pytest.raises(PeerNotConnected, match=r"^peer refuser closed our channel stream without introducing"):
            await a.connect("/memory/refuser")
        assert trio.current_time() - started < 1  # known at once, not after the 10 s wait
        with pytest.raises(PeerNotConnected, match=r"^peer mute sent no Init within 10 s"):
            await a.connect("/memory/mute")
        assert trio.current_time() - started == pytest.approx(10, abs=1)


async def test_open_refuses_an_unknown_peer_at_once(tmp_path: Path, autojump_clock: MockClock) -> None:
    async with nodes(tmp_path, "a", "b") as (_dev, _net, (a, b)):
        started = trio.current_time()
        with pytest.raises(PeerNotConnected, match=r"^not connected to ghost; run connect first$"):
            await a.open_channel("ghost", 100)
        assert trio.current_time() - started < 1
        await a.connect(b.addresses[0])
        with trio.fail_after(30):
            assert await a.open_channel(b.peer_id, 100, challenge_duration=100)


async def test_paying_a_settled_channel_names_its_phase(tmp_path: Path, autojump_clock: MockClock) -> None:
    async with nodes(tmp_path, "a", "b") as (_dev, _net, (a, b)):
        with trio.fail_after(60):
            await a.connect(b.addresses[0])
            cid = await a.open_channel(b.peer_id, 1_000, challenge_duration=100)
            await a.pay(cid, 10)
            await a.close(cid)
        for node in (a, b):
            with pytest.raises(LocalProtocolError, match=f"^channel {cid.hex()[:12]} is settled; open a new channel$"):
                await node.pay(cid, 1)


async def test_host_reports_a_failed_dial_beside_a_live_connection_and_checks_peer_ids() -> None:
    async with open_host(identity_seed=b"\x01" * 32, listen=["/ip4/127.0.0.1/tcp/0"]) as a, \
            open_host(identity_seed=b"\x02" * 32, listen=["/ip4/127.0.0.1/tcp/0"]) as b:
        with trio.fail_after(30):
            assert await a.connect(b.addresses[0]) == b.peer_id
            assert await a.connect(b.addresses[0]) == b.peer_id  # the same address: nothing to dial
            dead = f"/ip4/127.0.0.1/tcp/{free_port()}/p2p/{b.peer_id}"
            with pytest.raises(PeerUnreachable, match=f"^already connected to {b.peer_id} via /ip4/127.0.0.1/tcp/"):
                await a.connect(dead)
            assert a.is_connected(b.peer_id)
        a.check_peer_id(b.peer_id)
        for bad in ("notapeerid", "12D3KooW", b.peer_id + "x", ""):
            with pytest.raises(InvalidAddress, match="invalid peer id"):
                a.check_peer_id(bad)


def test_a_mistyped_command_or_flag_gives_one_line() -> None:
    """Not argparse's usage block: the top-level parser and command groups speak like the rest."""
    assert arg_error("getinfo", "--bogus") == "error: unrecognized arguments: --bogus (see: channels --help)"
    assert arg_error("nosuchcommand").startswith("error: argument COMMAND: invalid choice: 'nosuchcommand'")
    assert arg_error("devnet", "nosuch").endswith("(see: channels devnet --help)")


def test_amount_params_name_the_largest_amount() -> None:
    p = Params({"amount": 10**30, "huge": MAX_AMOUNT + 1}, ("amount", "huge"))
    assert p.integer("amount", maximum=MAX_AMOUNT) == 10**30  # 31 digits: an amount, not an error
    with pytest.raises(InvalidParams, match=r"^huge .* is too large: the largest is 2\^256-1$"):
        p.integer("huge", maximum=MAX_AMOUNT)
    with pytest.raises(InvalidParams, match=r"^amount .* is too large: the largest is 18446744073709551615$"):
        p.integer("amount")  # other integers (times, limits) are u64


def test_an_identity_key_is_no_account(tmp_path: Path) -> None:
    node_dir = tmp_path / "node"
    load_or_create_key(node_dir / "identity.key", use=LIBP2P_IDENTITY)
    load_or_create_key(node_dir / "l1.key", use=L1_ACCOUNT)
    hint = re.escape(f"identity key, not an L1 account key; give {node_dir / 'l1.key'}")
    with pytest.raises(WrongKeyUse, match=hint + "$"):
        read_key(node_dir / "identity.key", use=L1_ACCOUNT)
    read_key(node_dir / "identity.key")  # as an identity it is fine
    read_key(node_dir / "l1.key", use=L1_ACCOUNT)

    legacy = tmp_path / "old" / "identity.key"  # written before keys said what they are for: named for it
    legacy.parent.mkdir()
    key = SigningKey.generate()
    legacy.write_text(json.dumps({"type": "ed25519", "seed": key.seed.hex(), "public_key": key.public_key.hex()}))
    with pytest.raises(WrongKeyUse, match="give an account's key file"):
        read_key(legacy, use=L1_ACCOUNT)
    account = tmp_path / "accounts" / "identity.key"  # an account key that happens to carry the name
    write_key(account, SigningKey.generate(), use=L1_ACCOUNT)
    read_key(account, use=L1_ACCOUNT)
