"""Tic-tac-toe moves per second between two node processes, lock-step as games are.

Node A runs in this process (a library ``Node`` with the game API), node B is a ``channels node
start`` daemon, the L1 a devnet daemon: real libp2p streams, real durable SQLite commits. A game
channel plays the same nine-move game again and again (a draw, then the ``new-game`` move:
rematches in one channel, no new deposit): A moves with ``GameChannel.move``, B with the
control socket's ``game-move`` (as ``channels game move`` does). Each move returns once the
other side countersigned it, so moves never overlap: one round trip and the durable commits
of both sides per move. Beside it, in the same run and over the same two nodes, the one-at-a-
time payment figure of bench_node.py: ``pay`` awaited before the next.

    python bench/bench_games.py [--games 20] [--payments 300]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from channels.chain.devnet.client import open_remote_devnet  # noqa: E402
from channels.core.ids import Address  # noqa: E402
from channels.frontend.control_client import call  # noqa: E402
from channels.games import GAME_APPS, open_game  # noqa: E402
from channels.node import Node, load_config  # noqa: E402
from tests.devnet.daemon_util import DaemonProc  # noqa: E402
from tests.procs import NodeProc  # noqa: E402

DRAW = (0, 4, 8, 1, 7, 6, 2, 5, 3)  # X, O, X, ...: a full board, no line
STAKE = 1_000


def ms(values: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(values, n=100)
    return {"p50_ms": round(cuts[49] * 1000, 3), "p99_ms": round(cuts[98] * 1000, 3)}


async def bench(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    devnet = DaemonProc(work / "devnet", block_time=0.5)
    b = NodeProc(work / "b", "", {"auto_accept_funding": STAKE})  # B funds its stake of the game A opens
    try:
        address = devnet.start()
        b.args[b.args.index("--devnet") + 1] = address
        b.args[b.args.index("--log-level") + 1] = "warning"
        info: Any = await b.start_and_wait()
        async with open_remote_devnet(address) as ledger:
            async with Node.open(load_config(work / "a", listen="/ip4/127.0.0.1/tcp/0"), ledger=ledger,
                                 apps=GAME_APPS) as a:
                await ledger.faucet(a.l1_address, 10**12)
                await ledger.faucet(Address(bytes.fromhex(str(info["l1_account"]))), 10**9)
                await a.connect(info["addresses"][0])
                game = await open_game(a, "tictactoe", info["peer_id"], STAKE, move_timeout=None)
                gid = game.channel_id.hex()

                async def one_game(record: bool) -> None:
                    for i, cell in enumerate(DRAW):
                        t0 = time.perf_counter()
                        if i % 2 == 0:
                            await game.move(cell)
                            (ours if record else []).append(time.perf_counter() - t0)
                        else:
                            await call(b.rpc, "game-move", {"game_id": gid, "move": str(cell)})
                            (theirs if record else []).append(time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    await game.rematch()
                    (rematches if record else []).append(time.perf_counter() - t0)

                ours: list[float] = []
                theirs: list[float] = []
                rematches: list[float] = []
                await one_game(record=False)  # warm up
                start = time.perf_counter()
                for _ in range(args.games):
                    await one_game(record=True)
                game_elapsed = time.perf_counter() - start
                moves = args.games * (len(DRAW) + 1)

                cid = await a.open_channel(info["peer_id"], 10**11)  # a payment channel, A's deposit only
                for _ in range(20):  # warm up
                    await a.pay(cid, 1)
                paid: list[float] = []
                start = time.perf_counter()
                for _ in range(args.payments):
                    t0 = time.perf_counter()
                    await a.pay(cid, 1)
                    paid.append(time.perf_counter() - t0)
                pay_elapsed = time.perf_counter() - start
        moves_per_s = moves / game_elapsed
        payments_per_s = args.payments / pay_elapsed
        return {
            "tictactoe": {"games": args.games, "moves": moves, "moves_per_s": round(moves_per_s, 1),
                          "games_per_s": round(args.games / game_elapsed, 2),
                          "move_by_a_library": ms(ours), "move_by_b_control_socket": ms(theirs),
                          "rematch": ms(rematches)},
            "payments_one_at_a_time": {"payments": args.payments, "payments_per_s": round(payments_per_s, 1),
                                       **ms(paid)},
            "ratios": {"moves_over_payments": round(moves_per_s / payments_per_s, 3)},
        }
    finally:
        b.stop()
        devnet.stop()


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(await bench(args, Path(tmp)), indent=2))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--games", type=int, default=20, help="games of nine moves and a rematch")
    parser.add_argument("--payments", type=int, default=300, help="payments, each awaited before the next")
    trio.run(main, parser.parse_args())
