"""``examples/embedding.py`` runs as a user runs it: a program embedding two nodes that react to
each other's events. Its printed event stream must be in order and its balances must add up."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import defaultdict

from tests.procs import ENV, REPO

LINE = re.compile(r"^(alice|bob)\s+#(\d+)\s+(\w+)\s*(.*)$")


def test_the_embedding_example_reacts_to_events_and_accounts_for_every_unit() -> None:
    done = subprocess.run([sys.executable, str(REPO / "examples" / "embedding.py")], capture_output=True, text=True,
                          timeout=120, env=ENV, cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    events: dict[str, list[tuple[int, str, dict[str, int]]]] = defaultdict(list)
    for line in done.stdout.splitlines():
        match = LINE.match(line)
        if match:
            name, cursor, kind, rest = match.groups()
            fields = {k: int(v) for k, v in (kv.split("=") for kv in rest.split())}
            events[name].append((int(cursor), kind, fields))
    for name in ("alice", "bob"):
        cursors = [c for c, _, _ in events[name]]
        assert cursors == list(range(1, len(cursors) + 1)), f"{name}: every event once, in order: {cursors}"
        kinds = [k for _, k, _ in events[name] if not k.startswith("peer_")]
        assert kinds[:2] == ["channel_proposed", "channel_opened"] and kinds[-2:] == ["channel_closing",
                                                                                       "channel_settled"]
        assert kinds.count("channel_updated") == 4  # two payments, two thank-yous

    def amounts(name: str, kind: str) -> list[int]:
        return sorted(f["amount"] for _, k, f in events[name] if k == kind)

    # Bob reacted to each payment he received with a thank-you of a tenth, which alice received.
    assert amounts("alice", "payment_sent") == amounts("bob", "payment_received") == [500, 1000]
    assert amounts("bob", "payment_sent") == amounts("alice", "payment_received") == [50, 100]
    settled = events["alice"][-1][2]
    assert (settled["balance"], settled["peer_balance"]) == (3650, 1350)
    assert "final L1 balances: alice 8650, bob 1350 (total 10000)" in done.stdout
    assert "Traceback" not in done.stderr
