"""A node protected by a watchtower while it is stopped, from the CLI alone (the README's
scenario): tower start, tower add, pay, stop the node, the peer registers a stale state with
``dev register-stale``, the tower refutes, the node restarts and finds its money. A second
tower goes silent (SIGSTOP) before the payments: the node keeps serving the first."""

from __future__ import annotations

import signal
from pathlib import Path

from tests.node.test_app_processes import balance, channel, wait_for
from tests.node.test_cli import cli, cli_error
from tests.procs import LOOPBACK, SHORT_WINDOWS, NodeProc, Proc, wait_for_file


def test_a_stopped_node_is_protected_by_its_tower(tmp_path: Path) -> None:
    dv = Proc(["devnet", "start", "--data-dir", str(tmp_path / "dv"), "--listen", LOOPBACK, "--block-time", "0.2"],
              tmp_path / "dv.log")
    procs: list[Proc] = [dv]
    silent = Proc(["tower", "start", "--data-dir", str(tmp_path / "silent"), "--listen", LOOPBACK, "--devnet", ""],
                  tmp_path / "silent.log")
    try:
        devnet = wait_for_file(tmp_path / "dv" / "devnet.addr", dv.start(), 30)
        tower = Proc(["tower", "start", "--data-dir", str(tmp_path / "tower"), "--listen", LOOPBACK,
                      "--devnet", devnet], tmp_path / "tower.log")
        cheat = NodeProc(tmp_path / "cheat", devnet, {**SHORT_WINDOWS, "dev": True})
        honest = NodeProc(tmp_path / "honest", devnet, SHORT_WINDOWS)
        procs += [tower, cheat, honest]
        silent.args[-1] = devnet
        procs.append(silent)
        tower_addr = wait_for_file(tmp_path / "tower" / "tower.addr", tower.start(), 30)
        silent_addr = wait_for_file(tmp_path / "silent" / "tower.addr", silent.start(), 30)
        for node in (cheat, honest):
            node.start()
        for node in (cheat, honest):
            assert node.proc is not None
            wait_for_file(node.data_dir / "node.addr", node.proc, 30)
        c, h = str(cheat.data_dir), str(honest.data_dir)

        assert "/p2p/" in cli_error("--data-dir", h, "tower", "add", "/ip4/127.0.0.1/tcp/1")
        added = cli("--data-dir", h, "tower", "add", tower_addr)
        assert tower_addr.endswith(added["peer_id"])
        silent_id = cli("--data-dir", h, "tower", "add", silent_addr)["peer_id"]
        assert silent.proc is not None
        silent.proc.send_signal(signal.SIGSTOP)  # accepts connections, answers nothing
        cli("devnet", "faucet", "--devnet", devnet, "--to", str(cheat.data_dir / "l1.key"), "--amount", "1000")
        cli("--data-dir", c, "connect", (honest.data_dir / "node.addr").read_text().strip())
        h_id = cli("--data-dir", h, "getinfo")["peer_id"]
        cid = cli("--data-dir", c, "open", h_id, "1000", "--challenge-duration", "6")["channel_id"]
        cli("--data-dir", c, "pay-direct", cid, "100")  # version 1: the cheater keeps 900
        cli("--data-dir", c, "pay-direct", cid, "200")  # version 2: 700

        def acknowledged() -> bool:
            towers = {t["peer_id"]: t for t in cli("--data-dir", h, "tower", "list")["towers"]}
            listed = towers[added["peer_id"]]
            assert towers[silent_id]["channels"].get(cid) is None  # the silent one never acknowledged
            return listed["status"] == "ok" and listed["channels"].get(cid) == 2 and listed["pending"] == 0
        wait_for("the live tower acknowledges version 2", acknowledged)
        before = balance(devnet, honest.data_dir / "l1.key")

        honest.stop()  # the honest node goes offline
        assert cli("--data-dir", c, "dev", "register-stale", cid, "1")["registered_version"] == 1
        wait_for("the cheater's channel settles on the L1", lambda: channel(cheat.data_dir, cid)["state"] == "settled")
        assert balance(devnet, honest.data_dir / "l1.key") - before == 300, "the tower refuted: paid 300, not 100"

        honest.start()  # back online: the node finds its money and the channel settled
        assert honest.proc is not None
        wait_for_file(honest.data_dir / "node.addr", honest.proc, 30)
        wait_for("the honest node sees the channel settled",
                 lambda: channel(honest.data_dir, cid)["state"] == "settled")
    finally:
        if silent.proc is not None and silent.proc.poll() is None:
            silent.proc.send_signal(signal.SIGCONT)
        for proc in reversed(procs):
            proc.stop()
