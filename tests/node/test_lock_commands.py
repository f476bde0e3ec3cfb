"""``add-lock``, ``fulfill-lock`` and ``fail-lock`` from the CLI, on real node daemons over
libp2p and a devnet daemon (the ``network`` fixture of ``test_cli``)."""

from __future__ import annotations

import hashlib
import time

from tests.node.test_cli import Network, cli, cli_error, network, parallel

__all__ = ["network"]  # the fixture, shared with test_cli


def test_a_lock_is_added_fulfilled_and_another_failed_back(network: Network) -> None:
    a, b = str(network.dirs["a"]), str(network.dirs["b"])
    b_address = (network.dirs["b"] / "node.addr").read_text().strip()
    info_b, _, _ = parallel(lambda: cli("--data-dir", b, "getinfo"),
                            lambda: cli("--data-dir", a, "connect", b_address),
                            lambda: cli("devnet", "faucet", "--devnet", network.devnet, "--to",
                                        str(network.dirs["a"] / "l1.key"), "--amount", "1000"))
    cid = cli("--data-dir", a, "open", info_b["peer_id"], "500", "--challenge-duration", "120")["channel_id"]
    secret = b"the payee's secret".ljust(32, b".")
    hashlock = hashlib.sha256(secret).hexdigest()
    expiry = str(int(time.time()) + 3600)

    added = cli("--data-dir", a, "add-lock", cid, "70", hashlock, expiry, "--lock-id", "0a")
    assert added["lock_id"] == "0a" and added["balance"] == 430 and added["peer_balance"] == 0
    assert "preimage" in cli_error("--data-dir", b, "fulfill-lock", cid, "0a", (b"wrong" * 7)[:32].hex())
    fulfilled = cli("--data-dir", b, "fulfill-lock", cid, "0a", secret.hex())
    assert (fulfilled["balance"], fulfilled["peer_balance"]) == (70, 430)

    cli("--data-dir", a, "add-lock", cid, "30", hashlock, expiry, "--lock-id", "0b")
    failed = cli("--data-dir", b, "fail-lock", cid, "0b", "--reason", "7")
    assert (failed["balance"], failed["peer_balance"]) == (70, 430), "the failed lock went back to its payer"
    (chan,) = cli("--data-dir", a, "list-channels")["channels"]
    assert (chan["balance"], chan["peer_balance"]) == (430, 70)
    assert "lock" in cli_error("--data-dir", a, "add-lock", cid, "30", "zz", expiry)
