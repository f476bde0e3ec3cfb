"""``channels game ...`` between real processes: a devnet daemon and two node daemons over
loopback libp2p, all started without ``--apps`` (the built-in games are the default). A full
game of tic-tac-toe through the CLI, the winner's L1 balance growing by the stake exactly; a
player killed with SIGKILL in the middle of rock-paper-scissors resumes after a restart (its
committed secret survives in its store and is revealed by itself); errors are one line."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.node.test_app_processes import balance, wait_for
from tests.node.test_cli import cli, cli_error, run_cli
from tests.procs import CLI, ENV, LOOPBACK, REPO, SHORT_WINDOWS, NodeProc, Proc, wait_for_file

STAKE = 100
FUNDS = 1000


@contextmanager
def game_network(tmp_path: Path, names: tuple[str, ...] = ("a", "b")) -> Iterator[tuple[str, dict[str, NodeProc]]]:
    """A devnet daemon and node daemons (the second accepts games of up to 500), funded."""
    dv = Proc(["devnet", "start", "--data-dir", str(tmp_path / "dv"), "--listen", LOOPBACK, "--block-time", "0.2"],
              tmp_path / "dv.log")
    procs: list[Proc] = [dv]
    try:
        devnet = wait_for_file(tmp_path / "dv" / "devnet.addr", dv.start(), 30)
        nodes = {name: NodeProc(tmp_path / name, devnet, {**SHORT_WINDOWS, "auto_accept_funding": 500 if i else 0})
                 for i, name in enumerate(names)}
        procs += nodes.values()
        for node in nodes.values():
            node.start()
        for node in nodes.values():
            assert node.proc is not None
            wait_for_file(node.data_dir / "node.addr", node.proc, 30)
            cli("devnet", "faucet", "--devnet", devnet, "--to", str(node.data_dir / "l1.key"), "--amount", str(FUNDS))
        yield devnet, nodes
    finally:
        for proc in reversed(procs):
            proc.stop()
        print(json.dumps({p.log.name: p.log.read_text()[-3000:] for p in procs if p.log.exists()}, indent=1))


def game(node: NodeProc, *args: str) -> Any:
    return cli("--data-dir", str(node.data_dir), "game", *args)


def game_error(node: NodeProc, *args: str) -> str:
    return cli_error("--data-dir", str(node.data_dir), "game", *args)


def start_game(devnet: str, a: NodeProc, b: NodeProc, name: str) -> tuple[str, str]:
    cli("--data-dir", str(a.data_dir), "connect", (b.data_dir / "node.addr").read_text().strip())
    b_id = cli("--data-dir", str(b.data_dir), "getinfo")["peer_id"]
    opened = game(a, "new", name, b_id, "--stake", str(STAKE), "--challenge-duration", "10")
    assert opened["game_id"] == opened["channel_id"] and opened["status"] == "playing" and opened["stake"] == STAKE
    return opened["game_id"], b_id


def test_tic_tac_toe_between_processes_pays_the_winner_the_stake(tmp_path: Path) -> None:
    with game_network(tmp_path) as (devnet, nodes):
        a, b = nodes["a"], nodes["b"]
        before = {n: balance(devnet, nodes[n].data_dir / "l1.key") for n in nodes}
        gid, _ = start_game(devnet, a, b, "tictactoe")
        listed = game(b, "list")["games"]
        assert [(g["game_id"], g["game"], g["status"], g["your_turn"]) for g in listed] == [
            (gid, "tictactoe", "playing", False)] and listed[0]["peer_id"] == cli(
            "--data-dir", str(a.data_dir), "getinfo")["peer_id"]
        watch = subprocess.Popen([*CLI, "--data-dir", str(b.data_dir), "game", "watch", gid[:12]],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, cwd=REPO)
        try:
            shown = game(b, "show", gid[:10])  # a prefix is enough
            assert shown["board"] == ["...", "...", "..."] and shown["turn"] == 0
            assert shown["deadline"] is None  # nothing at stake before the first move: no move timeout
            assert game_error(b, "move", gid, "4") == "error: not your turn: player 0 is to move"
            moves = [(a, 4), (b, 0), (a, 2), (b, 6), (a, 3), (b, 5), (a, 1), (b, 8)]
            for player, cell in moves:
                moved = game(player, "move", gid, str(cell))
                assert moved["turn"] == (1 if player is a else 0) and not moved["your_turn"]
                if (player, cell) == (a, 4):  # the stake is fixed: bob has until the deadline to move
                    assert game(a, "show", gid)["deadline"] > time.time() + 200
                if (player, cell) == (b, 0):
                    assert game_error(a, "move", gid, "0") == "error: cell 0 is taken"  # nothing signed
                    assert game_error(a, "move", gid, "9") == "error: a move is a cell number 0..8"
            assert game(a, "show", gid)["board"] == ["OXX", "XXO", "O.O"]
            won = game(a, "move", gid, "7")  # 1, 4, 7: a column of X
            assert (won["status"], won["winner"], won["you_won"], won["turn"]) == ("won", 0, True, None)
            final = wait_for("bob sees the win", lambda: (v := game(b, "show", gid))["status"] == "won" and v)
            assert (final["winner"], final["you_won"], final["board"]) == (0, False, ["OXX", "XXO", "OXO"])
            assert game_error(b, "move", gid, "7") == "error: the game is over"
            cli("--data-dir", str(a.data_dir), "close", gid)
            out, err = watch.communicate(timeout=60)  # watch ends once the channel is settled
        finally:
            if watch.poll() is None:
                watch.kill()
                watch.communicate()
        assert watch.returncode == 0, err
        assert "won by the peer" in out and " O | X | X\n---+---+---\n X | X | O\n---+---+---\n O | X | O" in out
        assert out.count("---+---+---") >= 2 * 10  # a board per move at least
        after = {n: balance(devnet, nodes[n].data_dir / "l1.key") for n in nodes}
        assert (after["a"] - before["a"], after["b"] - before["b"]) == (STAKE, -STAKE)
        assert game(b, "list")["games"][0]["status"] == "won"


def test_a_player_killed_mid_game_resumes_after_restart(tmp_path: Path) -> None:
    """Alice commits to rock and is killed with SIGKILL; after a restart bob commits to paper,
    and both reveals are made by the nodes themselves: alice's secret came back from her store."""
    with game_network(tmp_path) as (devnet, nodes):
        a, b = nodes["a"], nodes["b"]
        before = {n: balance(devnet, nodes[n].data_dir / "l1.key") for n in nodes}
        gid, _ = start_game(devnet, a, b, "rps")
        committed = game(a, "move", gid, "rock")
        assert committed["board"] == {"committed": [True, False], "revealed": [None, None]}
        assert game(b, "show", gid)["moves"] == ["rock", "paper", "scissors"]
        a.kill9()
        a.start()
        assert a.proc is not None
        wait_for_file(a.data_dir / "node.addr", a.proc, 30)
        moved = game(b, "move", gid, "paper")  # returns once the restarted alice countersigned it
        assert moved["board"]["committed"] == [True, True]
        for node, you_won in ((a, False), (b, True)):
            view = wait_for("the reveals", lambda node=node: (v := game(node, "show", gid))["status"] == "won" and v)
            assert (view["winner"], view["you_won"], view["board"]["revealed"]) == (1, you_won, ["rock", "paper"])
        cli("--data-dir", str(b.data_dir), "close", gid)
        after = {n: balance(devnet, nodes[n].data_dir / "l1.key") for n in nodes}
        assert (after["a"] - before["a"], after["b"] - before["b"]) == (-STAKE, STAKE)


def test_game_errors_are_one_line(tmp_path: Path) -> None:
    with game_network(tmp_path, ("a",)) as (_devnet, nodes):
        a = nodes["a"]
        peer = "12D3KooWGFsnzKyAf5jZcHcMGtqhc2embGpArQUND63TY4aobQY4"
        assert game_error(a, "new", "chess", peer, "--stake", "5") == (
            "error: unknown game 'chess'; this node plays: dice, last-one-standing, rps, tictactoe "
            "(start it with --apps for more)")
        assert game_error(a, "show", "abcdef") == "error: no game matches 'abcdef'; see: channels game list"
        assert game_error(a, "move", "abcdef", "4") == "error: no game matches 'abcdef'; see: channels game list"
        assert game(a, "list") == {"games": []}
        usage = run_cli("--data-dir", str(a.data_dir), "game", "new", "tictactoe", peer)
        assert usage.returncode == 2 and usage.stderr.count("\n") == 1 and "--stake" in usage.stderr


def play_bots(gid: str, *nodes: Any) -> list[tuple[str, str]]:
    """``game bot`` on every node at once, to the end of the game; their (stdout, stderr)."""
    bots = [subprocess.Popen([*CLI, "--data-dir", str(node.data_dir), "game", "bot", gid, "--seed", str(i),
                              "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                             cwd=REPO) for i, node in enumerate(nodes)]
    try:
        outs = [bot.communicate(timeout=120) for bot in bots]
    finally:
        for bot in bots:
            if bot.poll() is None:
                bot.kill()
                bot.communicate()
    assert [bot.returncode for bot in bots] == [0] * len(bots), outs
    return outs


def test_two_cli_bots_play_a_game_to_its_end(tmp_path: Path) -> None:
    with game_network(tmp_path) as (devnet, nodes):
        a, b = nodes["a"], nodes["b"]
        before = {n: balance(devnet, nodes[n].data_dir / "l1.key") for n in nodes}
        gid, _ = start_game(devnet, a, b, "last-one-standing")
        outs = play_bots(gid, a, b)
        finals = []
        for out, _err in outs:
            lines = out.strip().splitlines()
            played = [json.loads(line)["played"] for line in lines[:-1]]
            assert played and set(played) <= {"1", "2", "3"}  # one JSON line per move played
            finals.append(json.loads(lines[-1]))  # --json: one object per line, the final view last
        assert {f["status"] for f in finals} == {"won"} and finals[0]["winner"] == finals[1]["winner"]
        assert finals[0]["you_won"] != finals[1]["you_won"]
        winner = "a" if finals[0]["you_won"] else "b"
        cli("--data-dir", str(a.data_dir), "close", gid)
        after = {n: balance(devnet, nodes[n].data_dir / "l1.key") for n in nodes}
        assert {n: after[n] - before[n] for n in nodes} == {n: STAKE if n == winner else -STAKE for n in nodes}


def test_two_cli_bots_roll_dice_between_processes(tmp_path: Path) -> None:
    """Dice (commit-reveal of both seeds) played to its end by two `game bot` processes; the L1
    pays what the final view says (a tie pays both their stakes back)."""
    with game_network(tmp_path) as (devnet, nodes):
        a, b = nodes["a"], nodes["b"]
        before = {n: balance(devnet, nodes[n].data_dir / "l1.key") for n in nodes}
        gid, _ = start_game(devnet, a, b, "dice")
        outs = play_bots(gid, a, b)
        finals = [json.loads(out.strip().splitlines()[-1]) for out, _err in outs]
        assert finals[0]["status"] == finals[1]["status"] and finals[0]["status"] in ("won", "drawn"), finals
        cli("--data-dir", str(a.data_dir), "close", gid)
        after = {n: balance(devnet, nodes[n].data_dir / "l1.key") for n in nodes}
        if finals[0]["status"] == "drawn":
            assert after == before
        else:
            assert finals[0]["you_won"] != finals[1]["you_won"]
            winner = "a" if finals[0]["you_won"] else "b"
            assert {n: after[n] - before[n] for n in nodes} == {n: STAKE if n == winner else -STAKE for n in nodes}


def test_three_cli_bots_play_last_one_standing_between_processes(tmp_path: Path) -> None:
    """An n-party channel (proto/02 section 13) between three daemons: a opens last one standing
    with b and c (connected to each other first), three `game bot` processes play it to its end,
    and the cooperative close, signed by all three, pays the winner the two other stakes."""
    with game_network(tmp_path, ("a", "b", "c")) as (devnet, nodes):
        a, b, c = nodes["a"], nodes["b"], nodes["c"]
        before = {n: balance(devnet, nodes[n].data_dir / "l1.key") for n in nodes}
        ids = {n: cli("--data-dir", str(nodes[n].data_dir), "getinfo")["peer_id"] for n in nodes}
        for x, y in ((a, b), (a, c)):
            cli("--data-dir", str(x.data_dir), "connect", (y.data_dir / "node.addr").read_text().strip())
        new = ("new", "last-one-standing", ids["b"], ids["c"], "--stake", str(STAKE), "--challenge-duration", "10")
        assert game_error(a, *new) == ("error: the peer declined: not connected to every participant; connect to "
                                       "each of them first"), "b and c are not connected to each other yet"
        cli("--data-dir", str(b.data_dir), "connect", (c.data_dir / "node.addr").read_text().strip())
        opened = game(a, *new)
        gid = opened["game_id"]
        assert gid == opened["channel_id"] and opened["status"] == "playing" and opened["stake"] == STAKE
        assert (opened["you"], opened["peer_id"], opened["peer_ids"]) == (0, ids["b"], [ids["b"], ids["c"]])
        for n, you in (("b", 1), ("c", 2)):
            listed = wait_for(f"{n} sees the game", lambda n=n: game(nodes[n], "list")["games"])
            others = [ids[m] for m in ("a", "b", "c") if m != n]
            assert [(g["game_id"], g["game"], g["status"], g["peer_id"], g["peer_ids"]) for g in listed] == [
                (gid, "last-one-standing", "playing", ids["a"], others)]
            assert game(nodes[n], "show", gid)["you"] == you
        outs = play_bots(gid, a, b, c)
        finals = [json.loads(out.strip().splitlines()[-1]) for out, _err in outs]
        assert {f["status"] for f in finals} == {"won"} and len({f["winner"] for f in finals}) == 1, finals
        assert sum(f["you_won"] for f in finals) == 1
        played = [[json.loads(line)["played"] for line in out.strip().splitlines()[:-1]] for out, _err in outs]
        assert all(played), "each of the three bots moved"
        winner = "abc"[finals[0]["winner"]]
        cli("--data-dir", str(b.data_dir), "close", gid)  # any player may close: all three sign
        for n in nodes:
            wait_for(f"{n} settles", lambda n=n: game(nodes[n], "show", gid)["phase"] == "settled")
        after = {n: balance(devnet, nodes[n].data_dir / "l1.key") for n in nodes}
        assert {n: after[n] - before[n] for n in nodes} == {n: 2 * STAKE if n == winner else -STAKE for n in nodes}
