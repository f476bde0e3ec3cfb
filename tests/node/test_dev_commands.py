"""``node start --dev`` and ``dev register-stale``: a node playing the cheater from the CLI,
on real processes; the honest node refutes and is paid what it is owed."""

from __future__ import annotations

from pathlib import Path

from tests.node.test_app_processes import balance, channel, wait_for
from tests.node.test_cli import cli, cli_error
from tests.procs import LOOPBACK, SHORT_WINDOWS, NodeProc, Proc, wait_for_file


def test_a_dev_node_registers_a_stale_state_and_the_peer_refutes(tmp_path: Path) -> None:
    dv = Proc(["devnet", "start", "--data-dir", str(tmp_path / "dv"), "--listen", LOOPBACK, "--block-time", "0.2"],
              tmp_path / "dv.log")
    procs: list[Proc] = [dv]
    try:
        devnet = wait_for_file(tmp_path / "dv" / "devnet.addr", dv.start(), 30)
        cheat = NodeProc(tmp_path / "cheat", devnet, {**SHORT_WINDOWS, "dev": True})
        honest = NodeProc(tmp_path / "honest", devnet, SHORT_WINDOWS)
        procs += [cheat, honest]
        for node in (cheat, honest):
            node.start()
        for node in (cheat, honest):
            assert node.proc is not None
            wait_for_file(node.data_dir / "node.addr", node.proc, 30)
        c, h = str(cheat.data_dir), str(honest.data_dir)
        cli("devnet", "faucet", "--devnet", devnet, "--to", str(cheat.data_dir / "l1.key"), "--amount", "1000")
        cli("--data-dir", c, "connect", (honest.data_dir / "node.addr").read_text().strip())
        h_id = cli("--data-dir", h, "getinfo")["peer_id"]
        cid = cli("--data-dir", c, "open", h_id, "1000", "--challenge-duration", "4")["channel_id"]
        cli("--data-dir", c, "pay-direct", cid, "100")  # version 1: the cheater keeps 900
        cli("--data-dir", c, "pay-direct", cid, "200")  # version 2: 700
        assert "--dev" in cli_error("--data-dir", h, "dev", "register-stale", cid, "1")  # refused without --dev
        assert "not older" in cli_error("--data-dir", c, "dev", "register-stale", cid, "2")
        before = balance(devnet, honest.data_dir / "l1.key")

        stale = cli("--data-dir", c, "dev", "register-stale", cid, "1")
        assert stale["registered_version"] == 1
        wait_for("the honest node refutes and the channel settles",
                 lambda: channel(honest.data_dir, cid)["state"] == "settled")
        assert balance(devnet, honest.data_dir / "l1.key") - before == 300, "paid what it is owed, not 100"
    finally:
        for proc in reversed(procs):
            proc.stop()
