"""Multi-hop payments when things go wrong, on real processes (issue 10): one devnet daemon and
four node daemons in a line a - b - c - d over loopback libp2p, each channel funded by its
left end; a pays invoices of d through b and c.

* Three hops: a learns b-c and c-d over gossip (``graph --json``), pays d, and the fees b and
  c earn are exactly a's ``fee_paid``.
* A forwarder killed between learning and claiming: d is paused (SIGSTOP) so the payment
  waits at c; once b forwarded, a is paused too, so a cannot countersign what b sends it; d
  resumes and fulfills, c fulfills b, and b, with the preimage and its fulfill-lock to a
  stored (its forward ``settled``), is killed with SIGKILL. a resumes, b restarts: the claim
  upstream completes, b holds the payment in a-b and a's payment succeeds. Twice: once with
  b's link to a cut first, so only the restarted b can send its fulfill-lock (it resends it on
  reestablish), once without, when a may read it on resuming (the restarted b then adopts a's
  countersignature).
* The payer killed mid-payment: c is paused so the payment cannot finish, a's node is killed
  with SIGKILL while its lock to b is in flight, a restarts, c resumes; ``pay`` of the same
  invoice on a returns the outcome (succeeded), and paying it again pays nothing more: d was
  paid once.
* A stale state with a lock pending (c runs with ``--dev``): c registers the b-c state from
  before b's lock to it, and b refutes with the state holding the lock. With the preimage:
  c learned it from d while b was paused and cut off, c registers it on the L1, the L1 pays
  c the lock and b, learning the preimage there, claims from a. Without (d paused to the
  end): the L1 gives the lock back to b at its expiry, b fails a's lock back, a's payment
  fails.

Each part ends by closing every channel: the L1 balances add up to the unit (the forwarders
gained exactly their fees). Only the no-preimage part waits for a lock's expiry (a secret
registered on the L1 decides a lock at once), so elsewhere lock times only need to outlast the
pauses and restarts; the challenge window is short because the stale-state parts wait it out.
"""
from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from channels.chain.devnet.client import open_remote_devnet
from channels.core.ids import Address
from channels.frontend.control_client import NodeNotRunning, RpcFailed, call_sync
from tests.node.test_cli import cli, parallel
from tests.node.test_tower_scenarios import on_l1
from tests.procs import CLI, ENV, LOOPBACK, REPO, SHORT_WINDOWS, NodeProc, Proc, wait_for_file, wait_until

WAIT = 45.0  # seconds a condition below may take to come true (a loaded 2-core machine)
RPC_TIMEOUT = 60.0
FUNDS = {"a": 20_000, "b": 20_000, "c": 20_000, "d": 1_000}  # L1 money from the faucet
DEPOSIT = 8_000  # each channel, from its left end
WINDOW = 10  # seconds of challenge window: the stale-state part waits it out
# Lock times: the payee must still see at least ``min_final_expiry_delta`` left when its lock
# arrives, so a pause of up to ~20 s in the middle of a payment is fine; nothing waits for an
# expiry. ``expiry_delta`` is the smallest the safety rule allows (2 x lock_margin).
SETTINGS: dict[str, object] = {**SHORT_WINDOWS, "challenge_duration": WINDOW, "lock_margin": 20, "expiry_delta": 40,
                               "min_final_expiry_delta": 20, "tick_interval": 0.2, "reconnect_interval": 0.2}
# For the part that waits for a lock to expire: b's lock to c expires 20 s after a pays.
SHORT_LOCKS: dict[str, object] = {**SETTINGS, "lock_margin": 5, "expiry_delta": 10, "min_final_expiry_delta": 5}


@attrs.define
class Line:
    devnet: str
    nodes: dict[str, NodeProc]
    ids: dict[str, str] = attrs.Factory(dict)  # name -> peer id
    accounts: dict[str, str] = attrs.Factory(dict)  # name -> L1 account (hex)
    channels: dict[str, str] = attrs.Factory(dict)  # "ab", "bc", "cd" -> channel id
    timings: dict[str, float] = attrs.Factory(dict)

    def rpc(self, name: str, method: str, **params: Any) -> Any:
        return call_sync(self.nodes[name].rpc, method, params, timeout=RPC_TIMEOUT)

    def dir(self, name: str) -> str:
        return str(self.nodes[name].data_dir)

    def channel(self, name: str, pair: str) -> dict[str, Any]:
        cid = self.channels[pair]
        rows = self.rpc(name, "list-channels")["channels"]
        return next(row for row in rows if row["channel_id"] == cid)

    def forward(self, name: str, payment_hash: str) -> dict[str, Any]:
        """``name``'s forward of the payment with ``payment_hash`` ({} if it made none)."""
        found = [f for f in self.rpc(name, "list-forwards")["forwards"] if f["payment_hash"] == payment_hash]
        assert len(found) <= 1, f"{name} forwarded {payment_hash[:12]} {len(found)} times"
        return found[0] if found else {}

    def signal(self, name: str, sig: signal.Signals) -> None:
        proc = self.nodes[name].proc
        assert proc is not None and proc.poll() is None, f"{name} is not running"
        proc.send_signal(sig)

    def connected(self, name: str, peer: str) -> bool:
        rows = self.rpc(name, "list-peers")["peers"]
        return any(row["peer_id"] == self.ids[peer] and row["connected"] for row in rows)

    def cut(self, name: str, paused: str) -> None:
        """``name`` drops its connection to the ``paused`` peer; redials cannot complete the
        handshake of a stopped process, so nothing ``name`` sends reaches it until it resumes."""
        self.rpc(name, "disconnect", peer_id=self.ids[paused])
        wait_until(f"{name}'s link to {paused} is down", lambda: not self.connected(name, paused))

    def restart(self, name: str) -> None:
        """Start ``name`` again on its data dir and wait until its control socket answers."""
        node = self.nodes[name]
        node.start()

        def answers() -> bool:
            assert node.proc is not None and node.proc.poll() is None, f"{name} exited: {node.log.read_text()[-2000:]}"
            try:
                call_sync(node.rpc, "getinfo", timeout=5)
            except (NodeNotRunning, RpcFailed, OSError):
                return False
            return True
        wait_until(f"{name} answers after its restart", answers, timeout=60)

    def l1(self) -> dict[str, int]:
        async def read() -> dict[str, int]:
            async with open_remote_devnet(self.devnet) as ledger:
                return {n: int(await ledger.balance(Address(bytes.fromhex(a)))) for n, a in self.accounts.items()}
        return trio.run(read)

    def close_all(self) -> None:
        """Close every channel still open, each from its left end (cooperatively)."""
        open_pairs = [p for p in ("ab", "bc", "cd") if self.channel(p[0], p)["state"] != "settled"]
        parallel(*[lambda p=p: self.rpc(p[0], "close", channel_id=self.channels[p]) for p in open_pairs])


@contextmanager
def line(tmp_path: Path, *, dev: str = "", settings: dict[str, object] = SETTINGS) -> Iterator[Line]:
    """The devnet, the four nodes (those named in ``dev`` with ``--dev``), funds and the three
    channels open."""
    dv = Proc(["devnet", "start", "--data-dir", str(tmp_path / "dv"), "--listen", LOOPBACK, "--block-time", "0.2"],
              tmp_path / "dv.log")
    procs: list[Proc] = [dv]
    try:
        devnet = wait_for_file(tmp_path / "dv" / "devnet.addr", dv.start(), 30)
        nodes = {n: NodeProc(tmp_path / n, devnet, {**settings, "dev": n in dev}) for n in "abcd"}
        procs += nodes.values()
        for node in nodes.values():
            node.start()
        for node in nodes.values():
            assert node.proc is not None
            wait_for_file(node.data_dir / "node.addr", node.proc, 40)
        net = Line(devnet=devnet, nodes=nodes)
        for n in "abcd":
            info = net.rpc(n, "getinfo")
            net.ids[n], net.accounts[n] = info["peer_id"], info["l1_account"]

        async def fund() -> None:
            async with open_remote_devnet(devnet) as ledger:
                for n, amount in FUNDS.items():
                    await ledger.faucet(Address(bytes.fromhex(net.accounts[n])), amount)
        trio.run(fund)
        addr = {n: (nodes[n].data_dir / "node.addr").read_text().strip() for n in "bcd"}
        parallel(*[lambda p=p: net.rpc(p[0], "connect", address=addr[p[1]]) for p in ("ab", "bc", "cd")])
        opened = parallel(*[lambda p=p: net.rpc(p[0], "open", peer_id=net.ids[p[1]], amount=DEPOSIT)
                            for p in ("ab", "bc", "cd")])
        net.channels = {p: o["channel_id"] for p, o in zip(("ab", "bc", "cd"), opened, strict=True)}
        yield net
    finally:
        for proc in procs:  # a paused daemon is resumed, so that it can stop
            if proc.proc is not None and proc.proc.poll() is None:
                proc.proc.send_signal(signal.SIGCONT)
        for proc in reversed(procs):
            proc.stop()
        for proc in procs:
            print(f"--- {proc.log.name} ---\n" + proc.log.read_text()[-3000:])


@contextmanager
def paying(net: Line, invoice: str) -> Iterator[subprocess.Popen[str]]:
    """``channels pay INVOICE --json`` on a, as a user runs it, in the background."""
    payer = subprocess.Popen([*CLI, "--data-dir", net.dir("a"), "pay", invoice, "--json"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=ENV, cwd=REPO)
    try:
        yield payer
    finally:
        if payer.poll() is None:
            payer.kill()
            payer.communicate(timeout=10)


def result_of(payer: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = payer.communicate(timeout=WAIT * 2)
    return payer.returncode, out, err


def hash_time(devnet: str, payment_hash: str) -> int | None:
    """When the preimage of ``payment_hash`` was registered on the L1 (None: never)."""
    async def read() -> int | None:
        async with open_remote_devnet(devnet) as ledger:
            return await ledger.secret_time(bytes.fromhex(payment_hash))
    return trio.run(read)


def fees_of(net: Line, payment_hash: str) -> tuple[int, int]:
    """What b and c earned forwarding one payment (both forwards settled)."""
    fwd_b, fwd_c = net.forward("b", payment_hash), net.forward("c", payment_hash)
    assert fwd_b.get("status") == fwd_c.get("status") == "settled", (fwd_b, fwd_c)
    assert fwd_b["amount_out"] == fwd_c["amount_in"], "b delivers to c exactly what c forwards on"
    assert fwd_b["fee"] == fwd_b["amount_in"] - fwd_b["amount_out"] > 0
    assert fwd_c["fee"] == fwd_c["amount_in"] - fwd_c["amount_out"] > 0
    return fwd_b["fee"], fwd_c["fee"]


def check_conservation(net: Line, paid: list[dict[str, Any]]) -> None:
    """Close the channels; every L1 balance is what the payments say, to the unit."""
    fees = {n: net.rpc(n, "list-forwards")["fees_earned"] for n in "bc"}
    net.close_all()
    assert all(net.channel(p[0], p)["state"] == "settled" for p in net.channels)
    got = net.l1()
    assert sum(fees.values()) == sum(p["fee_paid"] for p in paid), "the forwarders earned what a paid in fees"
    assert got == {"a": FUNDS["a"] - sum(p["amount"] + p["fee_paid"] for p in paid),
                   "b": FUNDS["b"] + fees["b"], "c": FUNDS["c"] + fees["c"],
                   "d": FUNDS["d"] + sum(p["amount"] for p in paid)}, (got, fees, paid)
    assert sum(got.values()) == sum(FUNDS.values())


# ------------------------------------------------------------------ the parts


def pay_across_three_hops(net: Line, amount: int) -> dict[str, Any]:
    """a learns the graph over gossip, then pays an invoice of d through b and c."""
    seen: dict[str, Any] = {}

    def learned() -> bool:
        """The three channels, and b's terms on b-c (a's route needs them; c's terms on c-d
        are in the invoice's route hint too, so the wait does not hang on a second relay)."""
        seen.update(net.rpc("a", "graph"))
        bc = [ch for ch in seen["channels"] if ch["channel_id"] == net.channels["bc"]]
        return bool(seen["num_channels"] == 3 and bc and net.ids["b"] in {d["source"] for d in bc[0]["directions"]})
    wait_until(lambda: f"a's graph has the three channels and b's terms on b-c (has {seen})", learned)
    graph = cli("--data-dir", net.dir("a"), "graph")  # as the user reads it: ``graph --json``
    assert graph["num_channels"] == 3 and graph["num_nodes"] == 4 and not graph["truncated"]
    assert {ch["channel_id"] for ch in graph["channels"]} == set(net.channels.values())

    invoice = net.rpc("d", "invoice", amount=amount, description="three hops")
    paid: dict[str, Any] = cli("--data-dir", net.dir("a"), "pay", invoice["invoice"], "--max-fee", "100")
    assert paid["status"] == "succeeded" and paid["failure"] is None, paid
    assert paid["route"] == [net.ids["b"], net.ids["c"], net.ids["d"]] and paid["amount"] == amount
    assert hashlib.sha256(bytes.fromhex(paid["preimage"])).hexdigest() == invoice["payment_hash"]
    fee_b, fee_c = fees_of(net, invoice["payment_hash"])
    assert fee_b + fee_c == paid["fee_paid"], (fee_b, fee_c, paid)
    assert net.forward("c", invoice["payment_hash"])["amount_out"] == amount
    return paid


def forwarder_killed_after_learning_the_preimage(net: Line, amount: int, *, cut: bool) -> dict[str, Any]:
    """b learns the preimage from c, stores its fulfill-lock to a (which a, paused, cannot
    countersign), and is killed; restarted, it still claims upstream.

    ``cut``: b first drops its connection to the paused a (its redials stall in a's handshake),
    so the fulfill-lock never leaves b before the kill and only the restarted b can send it.
    Otherwise it may already sit in a's socket, and a countersigns it on resuming: the
    restarted b then learns of the countersignature on reestablish."""
    held_b = net.channel("b", "ab")["balance"] + net.channel("b", "bc")["balance"]
    ab_a = net.channel("a", "ab")["balance"]
    invoice = net.rpc("d", "invoice", amount=amount, description="b is killed")
    h = invoice["payment_hash"]
    net.signal("d", signal.SIGSTOP)  # the payment waits at c for d
    with paying(net, invoice["invoice"]) as payer:
        wait_until("b forwards a's lock to c", lambda: net.forward("b", h).get("status") == "pending")
        net.signal("a", signal.SIGSTOP)  # a cannot countersign b's fulfill-lock
        if cut:
            net.cut("b", "a")
        net.signal("d", signal.SIGCONT)
        wait_until("b learns the preimage from c", lambda: net.forward("b", h)["status"] == "settled")
        assert net.channel("b", "ab")["balance"] + net.channel("b", "bc")["balance"] < held_b, \
            "b paid c and has not yet been paid by a"
        net.nodes["b"].kill9()  # between learning the preimage and being paid for it
        net.signal("a", signal.SIGCONT)
        if cut:
            at_a = net.channel("a", "ab")
            assert at_a["balance"] + at_a["peer_balance"] < at_a["capacity"], "a never saw b's fulfill-lock"
        net.restart("b")
        code, out, err = result_of(payer)
    paid: dict[str, Any] = json.loads(out)
    assert code == 0 and paid["status"] == "succeeded", (paid, err)
    assert paid["route"] == [net.ids["b"], net.ids["c"], net.ids["d"]]
    assert hashlib.sha256(bytes.fromhex(paid["preimage"])).hexdigest() == h
    fee_b, fee_c = fees_of(net, h)
    assert fee_b + fee_c == paid["fee_paid"]
    amount_in = amount + paid["fee_paid"]

    def claimed() -> bool:  # both ends of a-b agree that the lock went to b
        at_b, at_a = net.channel("b", "ab"), net.channel("a", "ab")
        return bool(at_b["version"] == at_a["version"] and at_b["balance"] + at_b["peer_balance"] == DEPOSIT
                    and at_a["balance"] == ab_a - amount_in)
    wait_until("b's claim on a-b is settled on both ends", claimed)
    assert net.channel("b", "ab")["balance"] + net.channel("b", "bc")["balance"] == held_b + fee_b, \
        "b gained exactly its fee"
    return paid


def payer_restarts_mid_payment(net: Line, amount: int) -> dict[str, Any]:
    """a's node is killed with its part in flight, restarts, and learns the outcome."""
    invoice = net.rpc("d", "invoice", amount=amount, description="a is killed")
    h = invoice["payment_hash"]
    cd_d, ab_a = net.channel("d", "cd")["balance"], net.channel("a", "ab")["balance"]
    net.signal("c", signal.SIGSTOP)  # the payment cannot finish
    with paying(net, invoice["invoice"]) as payer:
        wait_until("a's lock reaches b, which forwards it", lambda: net.forward("b", h))
        net.nodes["a"].kill9()
        code, _, err = result_of(payer)
        assert code == 1 and err.startswith("error: "), "the payer's client lost its node"
    net.restart("a")
    outs = [p for p in net.rpc("a", "list-payments")["payments"] if p["payment_hash"] == h]
    assert [(p["direction"], p["status"]) for p in outs] == [("out", "pending")], outs
    net.signal("c", signal.SIGCONT)
    paid: dict[str, Any] = cli("--data-dir", net.dir("a"), "pay", invoice["invoice"])  # waits for the part in flight
    assert paid["status"] == "succeeded" and paid["payment_hash"] == h, paid
    assert paid["route"] == [net.ids["b"], net.ids["c"], net.ids["d"]] and paid["amount"] == amount
    assert hashlib.sha256(bytes.fromhex(paid["preimage"])).hexdigest() == h
    fee_b, fee_c = fees_of(net, h)
    assert fee_b + fee_c == paid["fee_paid"]
    again = cli("--data-dir", net.dir("a"), "pay", invoice["invoice"])
    assert (again["status"], again["preimage"], again["fee_paid"]) == ("succeeded", paid["preimage"],
                                                                       paid["fee_paid"])
    outs = [p for p in net.rpc("a", "list-payments")["payments"] if p["payment_hash"] == h]
    assert [(p["direction"], p["status"]) for p in outs] == [("out", "complete")], outs
    ins = [p for p in net.rpc("d", "list-payments")["payments"] if p["payment_hash"] == h]
    assert [(p["direction"], p["amount"]) for p in ins] == [("in", amount)], "d was paid once"
    wait_until("d holds the payment once", lambda: net.channel("d", "cd")["balance"] == cd_d + amount)
    wait_until("a paid once", lambda: net.channel("a", "ab")["balance"] == ab_a - amount - paid["fee_paid"])
    return paid


# ------------------------------------------------------------------ the tests


def timed(net: Line, name: str, part: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    started = time.monotonic()
    result = part(net, *args, **kwargs)
    net.timings[name] = time.monotonic() - started
    print(f"{name}: {net.timings[name]:.1f} s")
    return result


def test_three_hops_a_killed_forwarder_and_a_restarted_payer(tmp_path: Path) -> None:
    """The first three parts on one network, then every channel closed: the L1 agrees."""
    started = time.monotonic()
    with line(tmp_path) as net:
        print(f"network up: {time.monotonic() - started:.1f} s")
        paid = [timed(net, "three hops", pay_across_three_hops, 1_000),
                timed(net, "forwarder killed, fulfill not sent", forwarder_killed_after_learning_the_preimage,
                      1_500, cut=True),
                timed(net, "forwarder killed, fulfill sent", forwarder_killed_after_learning_the_preimage,
                      1_200, cut=False),
                timed(net, "payer restarted", payer_restarts_mid_payment, 2_000)]
        timed(net, "conservation", check_conservation, paid)


def test_a_stale_state_registered_while_a_lock_is_pending(tmp_path: Path) -> None:
    """c, holding the preimage and cut off from the paused b, registers the b-c state from
    before b's lock to it; b refutes with the state holding the lock, c registers the secret,
    the L1 pays c the lock, and b, learning the secret on the L1, claims from a."""
    with line(tmp_path, dev="c") as net:
        first = timed(net, "three hops", pay_across_three_hops, 1_000)
        started = time.monotonic()
        stale = net.channel("c", "bc")["version"]  # b-c before the lock: c will register it
        invoice = net.rpc("d", "invoice", amount=2_000, description="stale state")
        h = invoice["payment_hash"]
        net.signal("d", signal.SIGSTOP)  # the payment waits at c for d
        with paying(net, invoice["invoice"]) as payer:
            wait_until("c forwards b's lock to d", lambda: net.forward("c", h).get("status") == "pending")
            locked = net.channel("c", "bc")
            assert locked["version"] > stale and locked["balance"] + locked["peer_balance"] < locked["capacity"], \
                "c's newest b-c state holds b's lock"
            net.signal("b", signal.SIGSTOP)  # b cannot countersign c's fulfill-lock
            net.cut("c", "b")  # nor read it on resuming: only the L1 tells b the preimage
            net.signal("d", signal.SIGCONT)
            wait_until("c learns the preimage from d", lambda: net.forward("c", h)["status"] == "settled")
            registered = net.rpc("c", "dev-register-stale", channel_id=net.channels["bc"], version=stale)
            assert registered["registered_version"] == stale
            wait_until("c sees its registration", lambda: net.channel("c", "bc")["state"] == "disputed")
            net.signal("b", signal.SIGCONT)
            code, out, err = result_of(payer)
        paid: dict[str, Any] = json.loads(out)
        assert code == 0 and paid["status"] == "succeeded", (paid, err)
        assert hashlib.sha256(bytes.fromhex(paid["preimage"])).hexdigest() == h
        fee_b, fee_c = fees_of(net, h)
        assert fee_b + fee_c == paid["fee_paid"]
        wait_until("b-c is paid out on the L1 and its lock decided",
                   lambda: net.channel("b", "bc")["state"] == net.channel("c", "bc")["state"] == "settled",
                   timeout=WAIT + 2 * WINDOW)
        view = on_l1(net.devnet, net.channels["bc"])
        assert view.withdrawn and view.registered is not None, view
        assert view.registered.state.version == locked["version"], "b refuted with the state holding the lock"
        (lock,) = view.registered.state.allocation.locks
        registered_at = hash_time(net.devnet, h)
        assert registered_at is not None and registered_at < lock.expiry, "the secret decided the lock for c"
        net.timings["stale state"] = time.monotonic() - started
        print(f"stale state: {net.timings['stale state']:.1f} s")
        timed(net, "conservation", check_conservation, [first, paid])


@pytest.mark.slow  # about 25 s of lock expiry and challenge windows; the variant with the preimage runs by default
def test_a_stale_state_registered_while_a_lock_is_pending_whose_preimage_never_comes(tmp_path: Path) -> None:
    """d never answers (paused to the end), so nobody learns the preimage. c registers the b-c
    state from before b's lock to it and gives up on d on the L1 (a forced close of c-d, where
    its lock to d was never countersigned); b refutes with the state holding its lock, the L1
    gives the lock back to b once it expired, b fails a's lock back and a's payment fails: every
    node ends where the first payment left it."""
    with line(tmp_path, dev="c", settings=SHORT_LOCKS) as net:
        first = timed(net, "three hops", pay_across_three_hops, 1_000)
        started = time.monotonic()
        stale = net.channel("c", "bc")["version"]
        ab_a = net.channel("a", "ab")["balance"]
        invoice = net.rpc("d", "invoice", amount=2_000, description="never paid")
        h = invoice["payment_hash"]
        net.signal("d", signal.SIGSTOP)
        with paying(net, invoice["invoice"]) as payer:
            wait_until("c forwards b's lock to d", lambda: net.forward("c", h).get("status") == "pending")
            locked = net.channel("c", "bc")
            assert locked["version"] > stale and locked["balance"] + locked["peer_balance"] < locked["capacity"], \
                "c's newest b-c state holds b's lock"
            registered = net.rpc("c", "dev-register-stale", channel_id=net.channels["bc"], version=stale)
            assert registered["registered_version"] == stale
            forced = net.rpc("c", "close", channel_id=net.channels["cd"], force=True)
            assert forced["registered"], forced
            code, out, err = result_of(payer)
        failed: dict[str, Any] = json.loads(out)
        assert code == 1 and failed["status"] == "failed" and failed["preimage"] is None, (failed, err)
        wait_until("b-c and c-d are paid out on the L1 and b's lock decided",
                   lambda: net.channel("b", "bc")["state"] == net.channel("c", "bc")["state"]
                   == net.channel("c", "cd")["state"] == "settled", timeout=WAIT + 2 * WINDOW)
        view = on_l1(net.devnet, net.channels["bc"])
        assert view.withdrawn and view.registered is not None, view
        assert view.registered.state.version == locked["version"], "b refuted with the state holding the lock"
        assert hash_time(net.devnet, h) is None, "no preimage: the lock went back to b"
        assert net.forward("b", h)["status"] == net.forward("c", h)["status"] == "failed"
        wait_until("a's lock to b is failed back", lambda: (ch := net.channel("a", "ab"))["balance"] == ab_a
                   and ch["balance"] + ch["peer_balance"] == DEPOSIT)
        net.timings["stale state, no preimage"] = time.monotonic() - started
        print(f"stale state, no preimage: {net.timings['stale state, no preimage']:.1f} s")
        timed(net, "conservation", check_conservation, [first])
