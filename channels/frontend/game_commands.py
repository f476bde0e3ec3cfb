"""``channels game ...``: play the built-in games (or any ``Game`` the node plays) from a terminal.

Public contract (extend, never rename): ``game new GAME PEER_ID [PEER_ID ...] --stake N`` ->
``game_id``, ``channel_id``; ``game list`` -> ``games`` (each ``game_id``, ``game``, ``peer_id``,
``peer_ids``, ``status``); ``game show GAME_ID`` -> ``board``, ``turn``, ``stake``, ``deadline``, ``status``
(``playing``, ``won``, ``drawn``, ``disputed``), ``winner``; ``game move GAME_ID MOVE``;
``game rematch GAME_ID``; ``game watch GAME_ID`` (one line per change, via the ``events``
subscription); ``game bot GAME_ID`` (plays legal moves until the game ends). Each but watch
and bot is the control socket method ``game-<name>``; the node does the work through
``channels.games.api``. A game id is the channel id (a unique prefix is enough).

Players are numbered: 0 opened the game (X in tic-tac-toe, it moves first), 1 accepted it (with
several peers, a game for 3 or more players: they are 1, 2, ... in the order given).
Client code only: stdlib imports (``tests/test_cli_imports.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from pathlib import Path
from typing import Any

from .cli import amount, emit, positive_integer
from .control_client import call_sync
from .formatting import format_amount, format_deadline

FINISHED = ("won", "drawn")


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    from .cli import command_group, one_line_errors

    _, cmds = command_group(sub, common, "game", "play a game for stakes against a peer (tictactoe, rps, dice, "
                                                 "last-one-standing)")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return one_line_errors(cmds.add_parser(name, parents=[common], help=help, description=help))

    p = command("new", "open a game channel with a peer (connect first); returns once both stakes are on the L1")
    p.add_argument("game", metavar="GAME", help="the game: tictactoe, rps, dice, last-one-standing (or any the "
                                                "node plays with --apps)")
    p.add_argument("peer_id", metavar="PEER_ID", nargs="+",
                   help="the opponent's peer id (its node must accept: auto_accept_funding at least the peer "
                        "stake); several for a game of 3 or more players (last-one-standing), players 1, 2, ... "
                        "in this order, each connected to us and to each other first")
    p.add_argument("--stake", type=amount, required=True, metavar="N", help="our stake, deposited on the L1")
    p.add_argument("--peer-stake", type=amount, metavar="N",
                   help="the opponent's stake, deposited by its node (default: the same as --stake); the game is "
                        "played for the smaller")
    p.add_argument("--move-timeout", type=positive_integer, metavar="SECONDS",
                   help="seconds the opponent may take to move before the game goes to the L1 (default: 300)")
    p.add_argument("--challenge-duration", type=positive_integer, metavar="SECONDS",
                   help="challenge window of the game channel: how long a staller has to answer on chain "
                        "(default: challenge_duration in config.toml)")
    p.set_defaults(func=_new)
    p = command("list", "the games of this node: game id, game, opponent, status")
    p.set_defaults(func=_list)
    p = command("show", "a game's board, whose turn, stake, deadline, status and winner")
    p.add_argument("game_id", metavar="GAME_ID", help="the game's id (its channel id, or a unique prefix)")
    p.set_defaults(func=_show)
    p = command("move", "play a move; an illegal one is refused naming the rule (in a dispute: forced on the L1)")
    p.add_argument("game_id", metavar="GAME_ID", help="the game's id (its channel id, or a unique prefix)")
    p.add_argument("move", metavar="MOVE", help="tictactoe: a cell 0..8 (shown on the board); rps: rock, paper or "
                                                "scissors; dice: roll; last-one-standing: 1, 2 or 3")
    p.set_defaults(func=_move)
    p = command("rematch", "start a new game in the same channel once this one is over (no new deposit)")
    p.add_argument("game_id", metavar="GAME_ID", help="the game's id (its channel id, or a unique prefix)")
    p.set_defaults(func=_rematch)
    p = command("watch", "follow a game: one line (and the board) per change, until its channel settles")
    p.add_argument("game_id", metavar="GAME_ID", help="the game's id (its channel id, or a unique prefix)")
    p.set_defaults(func=_watch)
    p = command("bot", "play legal moves for us until the game ends (tic-tac-toe: wins, blocks, then the centre)")
    p.add_argument("game_id", metavar="GAME_ID", help="the game's id (its channel id, or a unique prefix)")
    p.add_argument("--seed", type=int, metavar="N", help="seed of the bot's random choices (default: random)")
    p.set_defaults(func=_bot)


def _path(args: argparse.Namespace) -> Path:
    from .node_commands import data_dir

    return data_dir(args) / "rpc.sock"


def _new(args: argparse.Namespace) -> int:
    peers = list(args.peer_id)
    params: dict[str, Any] = {"game": args.game, "stake": args.stake}
    if len(peers) == 1:
        params["peer_id"] = peers[0]  # the two-player request, unchanged
    else:
        params["peer_ids"] = peers
    for key in ("peer_stake", "move_timeout", "challenge_duration"):
        if getattr(args, key) is not None:
            params[key] = getattr(args, key)
    result = call_sync(_path(args), "game-new", params, timeout=120)
    emit(args, result, lambda r: f"game {r['game_id']} ({r['game']}) opened against {_opponents(r)}\n{_human(r)}")
    return 0


def _list(args: argparse.Namespace) -> int:
    result = call_sync(_path(args), "game-list", {})

    def human(r: dict[str, Any]) -> str:
        lines = [f"{g['game_id']}  {g['game']:<18} {_status_word(g):<12} vs {_opponents(g)}" for g in r["games"]]
        return "\n".join(lines) or "no games"

    emit(args, result, human)
    return 0


def _show(args: argparse.Namespace) -> int:
    emit(args, call_sync(_path(args), "game-show", {"game_id": args.game_id}), _human)
    return 0


def _move(args: argparse.Namespace) -> int:
    result = call_sync(_path(args), "game-move", {"game_id": args.game_id, "move": args.move}, timeout=90)
    emit(args, result, _human)
    return 0


def _rematch(args: argparse.Namespace) -> int:
    result = call_sync(_path(args), "game-rematch", {"game_id": args.game_id}, timeout=90)
    emit(args, result, lambda r: f"a new game begins\n{_human(r)}")
    return 0


# --- following a game --------------------------------------------------------------------------------


class _Follower:
    """The game's view after every node event about its channel (the ``events`` subscription:
    moves signed by both, disputes and moves forced on chain, settlement)."""

    def __init__(self, args: argparse.Namespace) -> None:
        from .control_client import subscribe_sync

        self.path = _path(args)
        self.stream = subscribe_sync(self.path, "events", {})  # from now on: subscribed before the first look
        next(self.stream)
        self.view: dict[str, Any] = call_sync(self.path, "game-show", {"game_id": args.game_id})
        self.channel_id = self.view["channel_id"]

    def refresh(self) -> dict[str, Any]:
        self.view = call_sync(self.path, "game-show", {"game_id": self.channel_id})
        return self.view

    def next_change(self) -> dict[str, Any]:
        """Block until an event about this game, then return the new view."""
        from .control_client import SubscriptionEnded

        for event in self.stream:
            if event.get("channel_id") == self.channel_id:
                return self.refresh()
        raise SubscriptionEnded("the node closed the events stream")  # pragma: no cover

    def close(self) -> None:
        self.stream.close()


def _key(view: dict[str, Any]) -> tuple[Any, ...]:
    return (json.dumps(view["board"], sort_keys=True), view["turn"], view["status"], view["phase"], view["deadline"]
            if view["phase"] == "disputed" else None, view["balance"])


def _watch(args: argparse.Namespace) -> int:
    from .control_client import SubscriptionEnded

    as_json = getattr(args, "json", False)
    try:
        follower = _Follower(args)
    except BrokenPipeError:  # pragma: no cover
        return 0
    try:
        view, last = follower.view, None
        while True:
            if _key(view) != last:
                last = _key(view)
                print(json.dumps(view, sort_keys=True) if as_json else f"{_human(view)}\n", flush=True)
            if view["phase"] == "settled":
                return 0
            view = follower.next_change()
    except SubscriptionEnded:
        print("error: the node stopped; run game watch again once it is back", file=sys.stderr)
        return 1
    except BrokenPipeError:  # the reader went away (``| head``)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        follower.close()


def _bot(args: argparse.Namespace) -> int:
    from .control_client import RpcFailed, SubscriptionEnded

    rng = random.Random(args.seed)
    as_json = getattr(args, "json", False)
    follower = _Follower(args)
    try:
        view = follower.view
        while view["status"] not in FINISHED:
            if view["your_turn"] and view["moves"]:
                move = choose(view, rng)
                try:
                    view = call_sync(follower.path, "game-move", {"game_id": follower.channel_id, "move": move},
                                     timeout=90)
                except RpcFailed as exc:  # the peer moved on chain meanwhile, or the window ended: look again
                    print(f"move {move} not played: {exc}", file=sys.stderr, flush=True)
                    view = follower.refresh()
                    if view["your_turn"] and view["moves"] and move in view["moves"]:
                        raise
                    continue
                print(json.dumps({"played": move, **view}, sort_keys=True) if as_json else f"played {move}",
                      flush=True)
                continue
            if view["phase"] == "settled":
                break
            view = follower.next_change()
        print(json.dumps(view, sort_keys=True) if as_json else _human(view), flush=True)  # --json: one per line
        return 0
    except SubscriptionEnded:
        print("error: the node stopped before the game ended", file=sys.stderr)
        return 1
    finally:
        follower.close()


def choose(view: dict[str, Any], rng: random.Random) -> str:
    """A legal move: tic-tac-toe wins, then blocks, then takes the centre, a corner, a side;
    last one standing never says 21 if it can help it; otherwise any legal move at random."""
    moves = list(view["moves"])
    if view["game"] == "tictactoe":
        cells = "".join(view["board"])
        me, them = "XO"[view["you"]], "XO"[1 - view["you"]]
        lines = ((0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6))
        for mark in (me, them):
            for line in lines:
                marks = [cells[c] for c in line]
                if marks.count(mark) == 2 and "." in marks:
                    return str(line[marks.index(".")])
        for cell in ("4", "0", "2", "6", "8", "1", "3", "5", "7"):
            if cell in moves:
                return cell
    if view["game"] == "last-one-standing":
        count = view["board"]["count"]
        safe = [m for m in moves if count + int(m) < view["board"]["limit"]]
        return str(rng.choice(safe or moves))
    return str(rng.choice(moves))


# --- human output ------------------------------------------------------------------------------------


def _opponents(g: dict[str, Any]) -> str:
    return ", ".join(g.get("peer_ids") or [g["peer_id"]])


def _status_word(g: dict[str, Any]) -> str:
    if g["status"] == "playing":
        return "your turn" if g.get("your_turn") else "their turn"
    if g["status"] == "won":
        return "you won" if g.get("you_won") else "you lost"
    return str(g["status"])


def _human(r: dict[str, Any]) -> str:
    stake = format_amount(r["stake"], "native")
    lines = [f"game {r['game_id']}  {r['game']}  vs {_opponents(r)}", r["text"], ""]
    if r["status"] in FINISHED:
        if r["status"] == "drawn":
            lines.append("status: drawn (stakes back)")
        else:
            other = "the peer" if len(r.get("peer_ids") or [r["peer_id"]]) == 1 else "another player"
            lines.append(f"status: won by {'you' if r['you_won'] else other} (player {r['winner']})")
    else:
        whose = "your turn" if r["your_turn"] else "the peer's turn"
        moves = f" (moves: {', '.join(r['moves'])})" if r["moves"] else ""
        lines.append(f"status: {r['status']}, {whose}{moves}")
        if r["deadline"] is not None:
            what = "window ends" if r["status"] == "disputed" else "goes to the L1"
            lines.append(f"deadline: {what} {format_deadline(r['deadline'])}")
    pot = ("paid out" if r["phase"] == "settled" else "the pot (paid on the L1 when the channel closes)"
           if r["status"] in FINISHED else "if it stopped now (the player to move forfeits)")
    lines.append(f"stake: {stake} each; {pot}: ours {r['balance']}, theirs {r['peer_balance']}"
                 f"  (channel {r['phase']})")
    return "\n".join(lines)
