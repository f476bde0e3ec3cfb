"""A bot against a bot, in two processes: ``python examples/bot_match.py [--game tictactoe]``.

The parent starts a devnet daemon and two player processes (this file with ``--player``). Each
player runs its node in a thread of its own (``NodeThread``) and plays from a plain,
synchronous loop through a ``GameHandle``, as a game written without trio would: look at the
view, move when it is its turn (the legal strategy of ``channels game bot``), else wait for
the next events. Alice opens the game for ``--stake`` and closes the channel once it is over;
the parent prints one JSON summary: the result and each player's L1 balance change.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

FUNDS = 1_000
WAIT = 60.0  # seconds for anything to happen (a process start, a file, a move)
LOOPBACK = "/ip4/127.0.0.1/tcp/0"


def wait_file(path: Path, proc: subprocess.Popen[Any] | None = None, timeout: float = WAIT) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"{proc.args!r} exited with {proc.returncode}")
        time.sleep(0.05)
    raise SystemExit(f"{path} did not appear within {timeout:g} s")


def player(name: str, root: Path, devnet: str, game_name: str, stake: int, seed: int) -> None:
    """One player's process: its node in a thread, its bot in this (synchronous) loop."""
    from channels.frontend.game_commands import choose
    from channels.games import NodeThread
    from channels.node import load_config

    config = load_config(root / name, auto_accept_funding=stake)  # bob's node funds the game alice opens
    with NodeThread(config, devnet=devnet) as nt:
        assert nt.node is not None
        ledger: Any = nt.node.ledger  # a devnet: it has a faucet
        me = nt.node.l1_address
        nt.call(ledger.faucet, me, FUNDS)
        before = nt.call(ledger.balance, me)
        (root / f"{name}.tmp").write_text(nt.addresses[0])
        (root / f"{name}.tmp").rename(root / f"{name}.addr")  # whole or absent
        if name == "alice":
            nt.connect(wait_file(root / "bob.addr"))
            bob_id = wait_file(root / "bob.addr").rsplit("/p2p/", 1)[1]
            game = nt.open_game(game_name, bob_id, stake)
        else:
            game = nt.join(game=game_name, timeout=WAIT)
        rng, moves, started = random.Random(seed), 0, time.monotonic()
        while (view := game.view()).status not in ("won", "drawn"):
            if time.monotonic() > started + 4 * WAIT:
                raise SystemExit(f"{name}: the game did not end within {4 * WAIT:g} s")
            if view.your_turn and view.moves:
                game.move_text(choose(view.as_json(), rng))  # typed as a person would: "4", "rock", "roll"
                moves += 1
            else:
                for event in game.wait_events(timeout=1.0):  # the opponent's move, a reveal, the end
                    print(f"{name}: {event}", file=sys.stderr)
        if name == "alice":
            nt.call(nt.node.close, game.channel_id)  # the pot is paid out on the L1
        else:
            deadline = time.monotonic() + WAIT
            while game.view().phase != "settled" and time.monotonic() < deadline:
                game.wait_events(timeout=1.0)
        after = nt.call(ledger.balance, me)
    print(json.dumps({"player": name, "status": view.status, "you_won": view.you_won, "winner": view.winner,
                      "moves": moves, "seconds": round(time.monotonic() - started, 3), "l1_change": after - before,
                      "board": view.board}), flush=True)


def match(game_name: str, stake: int) -> dict[str, Any]:
    """The parent: a devnet daemon, two players; their reports, summed up."""
    with tempfile.TemporaryDirectory(prefix="channels-bot-match-") as tmp:
        root = Path(tmp)
        channels = [sys.executable, "-m", "channels"]
        devnet = subprocess.Popen([*channels, "devnet", "start", "--data-dir", str(root / "dv"), "--listen", LOOPBACK],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        players: dict[str, subprocess.Popen[str]] = {}
        try:
            address = wait_file(root / "dv" / "devnet.addr", devnet)
            for seed, name in enumerate(("alice", "bob")):
                players[name] = subprocess.Popen(
                    [sys.executable, __file__, "--player", name, "--root", tmp, "--devnet", address, "--game",
                     game_name, "--stake", str(stake), "--seed", str(seed)], stdout=subprocess.PIPE, text=True)
            reports = {}
            for name, proc in players.items():
                out, _ = proc.communicate(timeout=4 * WAIT)
                if proc.returncode != 0:
                    raise SystemExit(f"player {name} failed (exit {proc.returncode})")
                reports[name] = json.loads(out.strip().splitlines()[-1])
        finally:
            for proc in players.values():
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            subprocess.run([*channels, "devnet", "stop", "--data-dir", str(root / "dv")], capture_output=True,
                           timeout=WAIT)
            devnet.wait(timeout=WAIT)
    winner = reports["alice"]["winner"]
    return {"game": game_name, "stake": stake, "status": reports["alice"]["status"],
            "winner": None if winner is None else ("alice", "bob")[winner], "board": reports["alice"]["board"],
            "moves": reports["alice"]["moves"] + reports["bob"]["moves"],
            "l1_change": {name: report["l1_change"] for name, report in reports.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--game", default="tictactoe", help="tictactoe, rps, dice or last-one-standing")
    parser.add_argument("--stake", type=int, default=100, help="each player's stake")
    parser.add_argument("--player", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    parser.add_argument("--devnet", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.player:
        player(args.player, Path(args.root), args.devnet, args.game, args.stake, args.seed)
    else:
        print(json.dumps(match(args.game, args.stake), indent=2))


if __name__ == "__main__":
    main()
