"""A small app (game) played between two node processes over libp2p on a devnet daemon, all
three started with ``--apps``; one player is killed, the other forces its move on the L1
with ``progress`` and the L1 pays out the state after that move."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.node.test_cli import cli
from tests.procs import CLI, ENV, LOOPBACK, REPO, SHORT_WINDOWS, NodeProc, Proc, wait_for_file

APP = "tests.apps:RaceToTen"
WAIT = 60.0  # seconds for anything the L1 has to do (blocks every 0.2 s)


def wait_for(what: str, check: Any, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout} s")


def channel(data_dir: Path, cid: str) -> dict[str, Any]:
    (found,) = [c for c in cli("--data-dir", str(data_dir), "list-channels")["channels"] if c["channel_id"] == cid]
    return found  # type: ignore[no-any-return]


def balance(devnet: str, key: Path) -> int:
    return int(cli("devnet", "balance", "--devnet", devnet, str(key))["balances"].get("native", 0))


def test_a_game_between_processes_is_forced_on_chain_when_a_player_dies(tmp_path: Path) -> None:
    dv = Proc(["devnet", "start", "--data-dir", str(tmp_path / "dv"), "--listen", LOOPBACK, "--block-time", "0.2",
               "--apps", APP], tmp_path / "dv.log")
    settings = {**SHORT_WINDOWS, "auto_accept_funding": 100, "apps": [APP]}
    nodes: list[Proc] = [dv]
    try:
        devnet = wait_for_file(tmp_path / "dv" / "devnet.addr", dv.start(), 30)
        a, b = (NodeProc(tmp_path / name, devnet, settings) for name in ("a", "b"))
        nodes += [a, b]
        for node in (a, b):
            node.start()
        for node in (a, b):
            assert node.proc is not None
            wait_for_file(node.data_dir / "node.addr", node.proc, 30)
            cli("devnet", "faucet", "--devnet", devnet, "--to", str(node.data_dir / "l1.key"), "--amount", "1000")
        ad, bd = str(a.data_dir), str(b.data_dir)
        cli("--data-dir", ad, "connect", (b.data_dir / "node.addr").read_text().strip())
        b_id = cli("--data-dir", bd, "getinfo")["peer_id"]
        cid = cli("--data-dir", ad, "open", b_id, "20", "--peer-amount", "20", "--app", "race-to-ten",
                  "--challenge-duration", "8")["channel_id"]
        assert cli("--data-dir", ad, "move", cid, "03")["version"] == 1  # the counter goes to 3; a pays 3
        assert cli("--data-dir", bd, "move", cid, "02")["version"] == 2  # 5; b pays 2
        for who, payload, rule in ((bd, "01", "not your turn"), (ad, "07", "a move adds 1, 2 or 3")):
            bad = subprocess.run([*CLI, "--data-dir", who, "move", cid, payload], capture_output=True, text=True,
                                 timeout=30, env=ENV, cwd=REPO)
            assert bad.returncode == 1 and rule in bad.stderr, bad.stderr  # never signed; the app's rule named
        before = {n.data_dir.name: balance(devnet, n.data_dir / "l1.key") for n in (a, b)}

        b.kill9()  # b stops answering
        closing = cli("--data-dir", ad, "close", cid, "--force")
        assert closing["registered"] is True and closing["deadline"]
        forced = cli("--data-dir", ad, "move", cid, "03")  # forced on chain with a's signature only
        assert forced["version"] == 3
        wait_for("the channel settles on the L1", lambda: channel(a.data_dir, cid)["state"] == "settled")
        after = {n.data_dir.name: balance(devnet, n.data_dir / "l1.key") for n in (a, b)}
        # Off-chain a paid 3 and b 2; on chain a paid 3 more: a gets 20-3+2-3 = 16, b 20+3-2+3 = 24.
        assert (after["a"] - before["a"], after["b"] - before["b"]) == (16, 24), (before, after)
    finally:
        for proc in reversed(nodes):
            proc.stop()
        print(json.dumps({p.log.name: p.log.read_text()[-2000:] for p in nodes if p.log.exists()}, indent=1))
