"""Multi-hop payments from the CLI, as a user runs them: real processes on loopback.

One devnet daemon and three node daemons in a line, a - b - c (each channel funded by its left
end). c writes invoices, a pays them through b, b earns the fees; then keysend, route, graph,
set-fees and bad input; and at the end every channel is closed and the L1 balances add up.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from tests.node.test_cli import cli, cli_error, parallel, run_cli
from tests.procs import CLI, ENV, LOOPBACK, REPO, stop_all, wait_for_file, wait_until

FUNDS = {"a": 20_000, "b": 20_000, "c": 1_000}  # L1 money from the faucet
DEPOSIT = 8_000  # each channel, from its left end


@attrs.define
class Line:
    devnet: str
    dirs: dict[str, Path]
    procs: dict[str, subprocess.Popen[bytes]]


@pytest.fixture
def line3(tmp_path: Path) -> Iterator[Line]:
    procs: dict[str, subprocess.Popen[bytes]] = {}
    dirs = {name: tmp_path / name for name in ("dv", "a", "b", "c")}

    def spawn(name: str, *args: str) -> subprocess.Popen[bytes]:
        with open(tmp_path / f"{name}.log", "wb") as log:
            procs[name] = subprocess.Popen([*CLI, *args], stdout=log, stderr=subprocess.STDOUT, env=ENV, cwd=REPO)
        return procs[name]

    try:
        dv = spawn("dv", "devnet", "start", "--data-dir", str(dirs["dv"]), "--listen", LOOPBACK, "--block-time", "0.2")
        devnet = wait_for_file(dirs["dv"] / "devnet.addr", dv, 20)
        for name in "abc":
            spawn(name, "node", "start", "--data-dir", str(dirs[name]), "--listen", LOOPBACK, "--devnet", devnet)
        for name in "abc":
            wait_for_file(dirs[name] / "node.addr", procs[name], 40)
        yield Line(devnet=devnet, dirs=dirs, procs=procs)
    finally:
        stop_all(procs, tmp_path)


def test_payments_across_a_line_of_three_nodes(line3: Line) -> None:
    a, b, c = (str(line3.dirs[n]) for n in "abc")

    def node(d: str, *args: str) -> Any:
        return cli("--data-dir", d, *args)

    def faucet(name: str) -> Any:
        account = str(line3.dirs[name] / "l1.key")
        return cli("devnet", "faucet", "--devnet", line3.devnet, "--to", account, "--amount", str(FUNDS[name]))

    def l1(account: str) -> int:
        return int(cli("devnet", "balance", "--devnet", line3.devnet, account)["balances"].get("native", 0))

    def balance(d: str, cid: str) -> int:
        return int(next(ch["balance"] for ch in node(d, "list-channels")["channels"] if ch["channel_id"] == cid))

    addr_b, addr_c = ((line3.dirs[n] / "node.addr").read_text().strip() for n in "bc")
    info_a, info_b, info_c, *_ = parallel(
        lambda: node(a, "getinfo"), lambda: node(b, "getinfo"), lambda: node(c, "getinfo"),
        lambda: faucet("a"), lambda: faucet("b"), lambda: faucet("c"),
        lambda: node(a, "connect", addr_b), lambda: node(b, "connect", addr_c))
    id_b, id_c = info_b["peer_id"], info_c["peer_id"]
    ab, bc = (r["channel_id"] for r in parallel(
        lambda: node(a, "open", id_b, str(DEPOSIT), "--challenge-duration", "120"),
        lambda: node(b, "open", id_c, str(DEPOSIT), "--challenge-duration", "120")))

    # c asks for 1000; a pays through b, which charges its default fee.
    invoice = node(c, "invoice", "1000", "--description", "coffee", "--expiry", "600")
    assert invoice["invoice"].startswith("chd1") and invoice["amount"] == 1000
    assert invoice["expires_at"] > time.time() + 500
    paid = node(a, "pay", invoice["invoice"], "--max-fee", "100")
    assert paid["status"] == "succeeded", paid
    assert paid["amount"] == 1000 and paid["payment_hash"] == invoice["payment_hash"] and paid["failure"] is None
    assert paid["route"] == [id_b, id_c] and 0 < paid["fee_paid"] <= 100
    assert hashlib.sha256(bytes.fromhex(paid["preimage"])).hexdigest() == invoice["payment_hash"]
    fee1 = paid["fee_paid"]
    after_first = balance(a, ab)
    assert after_first == DEPOSIT - 1000 - fee1

    # Paying the same invoice again returns the same payment and moves nothing.
    again = node(a, "pay", invoice["invoice"])
    assert (again["status"], again["payment_hash"], again["preimage"]) == ("succeeded", paid["payment_hash"],
                                                                           paid["preimage"])
    assert balance(a, ab) == after_first

    forwards = node(b, "list-forwards")
    (fwd,) = forwards["forwards"]
    assert forwards["fees_earned"] == fee1 == fwd["fee"] and fwd["status"] == "settled"
    assert (fwd["in_channel"], fwd["out_channel"], fwd["amount_out"]) == (ab, bc, 1000)
    pays_a, pays_b, pays_c = (node(d, "list-payments") for d in (a, b, c))
    (out,), (fwd_entry,), (into,) = (p["payments"] for p in (pays_a, pays_b, pays_c))
    assert (out["direction"], out["status"], out["amount"], out["fee"], out["channel_id"]) == (
        "out", "complete", 1000, fee1, ab)
    assert (fwd_entry["direction"], fwd_entry["fee"], fwd_entry["channel_id"]) == ("forwarded", fee1, ab)
    assert (into["direction"], into["amount"], into["channel_id"], into["detail"]) == ("in", 1000, bc, "coffee")
    assert out["payment_id"] == fwd_entry["payment_id"] == into["payment_id"] == invoice["payment_hash"]
    assert (pays_a["fees_earned"], pays_b["fees_earned"], pays_c["fees_earned"]) == (0, fee1, 0)
    human_b = run_cli("--data-dir", b, "list-payments", json_out=False)
    assert human_b.returncode == 0 and "forwarded" in human_b.stdout
    assert f"fees earned forwarding: {fee1}" in human_b.stdout

    # b raises its fee on b-c. Either gossip brought a the new terms first, or c's invoice still
    # hints the old ones: then a's first try is refused with b's new terms and the retry pays
    # them. Either way the payment pays 10 + 2000 * 1000 / 10^6.
    fees = node(b, "set-fees", bc[:12], "--base", "10", "--ppm", "1000")
    assert (fees["channel_id"], fees["base_fee"], fees["fee_ppm"], fees["enabled"]) == (bc, 10, 1000, True)
    assert {"expiry_delta", "htlc_minimum", "htlc_maximum"} <= set(fees)
    second = node(a, "pay", node(c, "invoice", "2000")["invoice"])
    assert second["status"] == "succeeded" and second["fee_paid"] == 12 and second["attempts"] >= 1, second
    assert node(b, "list-forwards")["fees_earned"] == fee1 + 12

    # Gossip: a learns b-c (announced by b, co-signed by c, checked against the L1).
    graph = wait_until("a's graph has both channels", lambda: (g := node(a, "graph"))["num_channels"] == 2 and g)
    assert graph["num_nodes"] == 3
    assert graph["gossip"]["num_channels"] == 2 and isinstance(graph["gossip"]["dropped"], dict)
    # keysend: to a neighbour (no fee), and to c through b (no invoice, no route hint: gossip).
    direct = node(a, "keysend", id_b, "300")
    assert (direct["status"], direct["route"], direct["fee_paid"], direct["amount"]) == ("succeeded", [id_b], 0, 300)
    assert hashlib.sha256(bytes.fromhex(direct["preimage"])).hexdigest() == direct["payment_hash"]
    sent_c = run_cli("--data-dir", a, "keysend", id_c, "200")
    far = json.loads(sent_c.stdout)
    assert sent_c.returncode == 0 and far["status"] == "succeeded", far
    assert far["route"] == [id_b, id_c] and far["fee_paid"] == 10 + 200 * 1000 // 1_000_000
    # A keysend to a peer nobody knows fails: the result, then one error line and exit 1.
    lost = run_cli("--data-dir", a, "keysend", "12D3KooWQqLbpk7LQ4o9dJSFVEDntjRVtCEBXzA5qkmqz4iMeU7S", "200")
    nowhere = json.loads(lost.stdout)
    assert lost.returncode == 1 and nowhere["status"] == "failed" and nowhere["preimage"] is None
    assert lost.stderr.strip().splitlines() == [f"error: payment failed: {nowhere['failure']}"]
    keysent_c = 200 + far["fee_paid"] if far["status"] == "succeeded" else 0

    # route and graph.
    routes = node(a, "route", id_b, "100")
    assert routes["chosen"] == 0 and routes["candidates"][0]["route"] == [id_b] and routes["why"]
    human_route = run_cli("--data-dir", a, "route", id_b, "100", json_out=False)
    assert human_route.returncode == 0 and id_b in human_route.stdout and "chosen #1" in human_route.stdout
    graph = node(a, "graph")
    assert {"num_nodes", "num_channels", "channels"} <= set(graph)
    assert graph["num_channels"] == len(graph["channels"])

    # Bad input: one error line each, nothing changes.
    bad_invoice, own_invoice, no_channel, any_amount, paid_text = parallel(
        lambda: cli_error("--data-dir", a, "pay", "chd1notaninvoice"),
        lambda: cli_error("--data-dir", c, "pay", invoice["invoice"]),
        lambda: cli_error("--data-dir", b, "set-fees", "ffff", "--base", "1"),
        lambda: cli_error("--data-dir", a, "pay", node(c, "invoice", "any")["invoice"]),
        lambda: run_cli("--data-dir", a, "pay", invoice["invoice"], json_out=False))
    assert paid_text.returncode == 0 and paid_text.stdout.startswith(f"paid 1000 native to {id_c}, fee {fee1} native")
    assert "invalid invoice" in bad_invoice and "ours" in own_invoice
    assert "no channel matches 'ffff'" in no_channel and "no amount" in any_amount
    negative = run_cli("--data-dir", b, "set-fees", bc, "--ppm", "-5")
    assert negative.returncode == 2 and len(negative.stderr.strip().splitlines()) == 1
    assert negative.stderr.startswith("error: ") and ">= 0" in negative.stderr
    assert node(b, "set-fees", bc)["fee_ppm"] == 1000  # unchanged

    # Close both channels; the L1 says where the money went.
    parallel(lambda: node(a, "close", ab), lambda: node(b, "close", bc))
    got = parallel(lambda: l1(info_a["l1_account"]), lambda: l1(info_b["l1_account"]),
                   lambda: l1(info_c["l1_account"]))
    fees_b = fee1 + 12 + (far["fee_paid"] if far["status"] == "succeeded" else 0)
    assert got == [FUNDS["a"] - 1000 - 2000 - 300 - fee1 - 12 - keysent_c,
                   FUNDS["b"] + 300 + fees_b,
                   FUNDS["c"] + 1000 + 2000 + (200 if keysent_c else 0)]
    assert sum(got) == sum(FUNDS.values())
