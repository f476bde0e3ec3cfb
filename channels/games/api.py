"""The game API: stakes, moves, events and disputes, without signatures or versions.

A game developer plays a game as the game's own values (a cell number in tic-tac-toe) and
reads typed events; the channel, its versions and signatures and the L1 stay underneath
(ARCHITECTURE section 8, proto/06-games.md)::

    game = await open_game(node, "tictactoe", peer_id, stake=100)   # the peer: await join(node)
    await game.move(4)                                               # InvalidTransition names the rule
    async for event in game:                                         # OpponentMoved, GameOver, ...
        ...

What it does for the player:

* **Moves** are checked against the rules before anything is signed: an illegal one raises
  ``InvalidTransition`` with the game's own reason and changes nothing. In a disputed channel a
  move is forced on the L1 (``progress``) instead.
* **Secrets** of commit-reveal games (rock-paper-scissors, dice) are drawn here, stored in the
  node's store before the commitment leaves, and revealed by the referee when the game asks for
  them, after a restart too.
* **Move timeouts.** A per-node referee watches every game channel. When the player to move is
  the peer and it does not move (or does not countersign our move) within ``move_timeout``
  seconds, the referee takes the game to the L1: it registers the latest state (``close
  --force``), and if our move was the one left unsigned, forces it on chain. The staller must
  then answer on chain within the challenge window, or the L1 pays the registered state, in
  which the player to move forfeits its stake (proto/06-games.md section 2).
* **Rematch** in the same channel, without a new deposit: the ``new-game`` move, which every
  built-in game accepts once a game is over, resets the game data; the next game's stake is
  fixed at its first move, as the smallest balance (so after a draw it is the same stake).
* **Synchronous programs** (a pygame loop, a GUI) use ``NodeThread``: the node runs in a trio
  thread of its own, and ``GameHandle`` is a thread-safe handle on one game
  (``move``, ``poll_events``, ``wait_events``, ``view``).

The node must play the game's rules (``Node.open(..., apps=GAME_APPS)``; ``channels node
start`` does by default) and so must the L1. The peer's node accepts the game channel only if
the stake asked of it is at most its ``auto_accept_funding`` and its L1 account can pay it.
Game channels are two-party (the node's accept policy): player 0 is the one who opened it.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import trio

from ..core.channel import Channel, Phase
from ..core.ids import ChannelId, Version
from ..core.ops import AppMove
from ..core.state import State
from ..encoding import decode, encode
from ..errors import ChannelsError, DecodeError, InvalidTransition, LocalProtocolError
from .base import NEW_GAME, Game, Table
from .commitreveal import COMMIT, REVEAL, CommitReveal, Round
from .dice import Dice
from .lastone import LIMIT, Count, LastOneStanding
from .rps import NAMES, RockPaperScissors
from .tictactoe import MARKS, TicTacToe

if TYPE_CHECKING:
    from ..chain.base import Ledger
    from ..core.app import AppRegistry
    from ..node import Node
    from ..node.config import NodeConfig

log = logging.getLogger("channels.games")

DEFAULT_MOVE_TIMEOUT = 300.0  # seconds the peer may take to move (or countersign ours) before the L1
FORCE_WAIT = 120.0  # seconds to wait for our registration to show on the L1 before forcing a move
MAX_INFERRED_MOVES = 8  # moves looked for between two states seen (events arrive coalesced)
META_SETTINGS, META_SECRET = "game/", "game-secret/"  # store meta keys, + the channel id in hex
T = TypeVar("T")


class UnknownGame(LocalProtocolError):
    """No game of this name is played by this node, or no game channel has this id."""


# --- events ----------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class OpponentMoved:
    """The peer moved: ``move`` is the game's value (a cell, a step), ``text`` how it reads."""

    player: int
    move: Any
    text: str
    on_chain: bool  # forced on the L1 (``progress``) in a dispute


@attrs.frozen(kw_only=True)
class GameOver:
    winner: int | None  # the player index taking the pot; None on a draw
    draw: bool
    you_won: bool
    forfeit: bool = False  # decided by the L1: the player to move never moved


@attrs.frozen(kw_only=True)
class DisputeStarted:
    """A state is registered on the L1: the player to move must answer on chain before ``deadline``."""

    deadline: int | None  # L1 time
    turn: int | None
    your_turn: bool


@attrs.frozen(kw_only=True)
class DisputeResolved:
    """The L1 paid out: the channel is settled with these balances."""

    balance: int
    peer_balance: int
    winner: int | None
    you_won: bool


@attrs.frozen(kw_only=True)
class RematchStarted:
    """A new game began in the same channel (the ``new-game`` move)."""


GameEvent = OpponentMoved | GameOver | DisputeStarted | DisputeResolved | RematchStarted


# --- how a game's moves look to players ------------------------------------------------------------


class MoveCodec:
    """One game's moves as players see them: text in (the CLI), values out, the board drawn.

    The default serves any ``Game``: a move is typed as JSON (``4``, ``[1, 2]``), and a game
    class may refine it with optional methods ``parse_move(text)``, ``show_move(move)``,
    ``board_json(table, data)`` and ``render(table, data)`` (docs/games.md)."""

    def __init__(self, app: Game[Any]) -> None:
        self.app = app

    def parse(self, text: str) -> Any:
        hook = getattr(self.app, "parse_move", None)
        if hook is not None:
            return hook(text)
        try:
            return json.loads(text)
        except ValueError:
            return text

    def value(self, move: Any) -> Any:
        """A move value given by a program, checked for shape (``InvalidTransition``)."""
        return move

    def show(self, move: Any) -> str:
        hook = getattr(self.app, "show_move", None)
        return str(hook(move)) if hook is not None else json.dumps(_jsonable(move))

    def board(self, table: Table, data: Any) -> Any:
        hook = getattr(self.app, "board_json", None)
        return hook(table, data) if hook is not None else _jsonable(self.app.data_fields(data))

    def render(self, table: Table, data: Any, me: int) -> str:
        hook = getattr(self.app, "render", None)
        return str(hook(table, data)) if hook is not None else json.dumps(self.board(table, data))

    def choices(self, table: Table, data: Any, me: int) -> list[str]:
        return [self.show(m) for m in self.app.moves_for(table, data, me)]


class TicTacToeCodec(MoveCodec):
    """A move is a cell number, 0..8 row by row (the empty cells show theirs)."""

    def parse(self, text: str) -> Any:
        return int(text) if text.strip().isdigit() else text

    def value(self, move: Any) -> Any:
        if type(move) is not int:
            raise InvalidTransition("a move is a cell number 0..8")
        return move

    def show(self, move: Any) -> str:
        return str(move)

    def board(self, table: Table, data: Any) -> Any:
        return ["".join(MARKS[c] for c in data[row * 3:row * 3 + 3]) for row in range(3)]

    def render(self, table: Table, data: Any, me: int) -> str:
        cells = [MARKS[c] if c else str(i) for i, c in enumerate(data)]
        rows = [" " + " | ".join(cells[r * 3:r * 3 + 3]) for r in range(3)]
        you = f"you are {MARKS[1 + me]}" if me in (0, 1) else ""
        return "\n---+---+---\n".join(rows) + (f"\n({you}; X moves first)" if you else "")


class LastOneCodec(MoveCodec):
    """A move adds 1, 2 or 3 to the count."""

    def parse(self, text: str) -> Any:
        return int(text) if text.strip().isdigit() else text

    def show(self, move: Any) -> str:
        return f"+{move}"

    def board(self, table: Table, data: Count) -> Any:
        return {"count": data.count, "limit": LIMIT, "players_in": data.players_in(table.players)}

    def render(self, table: Table, data: Count, me: int) -> str:
        players = ", ".join(f"{p}{' (you)' if p == me else ''}" for p in data.players_in(table.players))
        return f"count {data.count}; who brings it to {LIMIT} is out. Players in: {players}"

    def choices(self, table: Table, data: Any, me: int) -> list[str]:
        return [str(m) for m in self.app.moves_for(table, data, me)]


class CommitRevealCodec(MoveCodec):
    """A player chooses (its move, or nothing for dice); the API commits to it with a random
    salt and reveals it when the game asks. ``choose`` turns a choice into the secret."""

    def __init__(self, app: Game[Any], names: tuple[str, ...] = ()) -> None:
        super().__init__(app)
        self.names = names  # the choices, if there are (rock, paper, scissors)

    def parse(self, text: str) -> Any:
        if not self.names:
            return None
        word = text.strip().lower()
        for i, name in enumerate(self.names):
            if word in (name, name[0], str(i)):
                return i
        return text

    def value(self, move: Any) -> Any:
        if not self.names:
            return None  # dice: nothing to choose
        if isinstance(move, str):
            move = self.parse(move)
        if type(move) is not int or not 0 <= move < len(self.names):
            raise InvalidTransition(f"a move is one of {', '.join(self.names)}")
        return move

    def secret(self, choice: Any) -> tuple[Any, ...]:
        salt = os.urandom(32)
        hook = getattr(self.app, "make_secret", None)
        if hook is not None:
            return tuple(hook(choice, salt))
        if isinstance(self.app, RockPaperScissors):
            return self.app.secret(choice, salt)
        if isinstance(self.app, Dice):
            return self.app.secret(salt)
        raise InvalidTransition(f"{self.app.app_id} defines no make_secret(choice, salt)")

    def show(self, move: Any) -> str:
        if type(move) is list and move and move[0] == COMMIT:
            return "committed"
        if type(move) is list and move and move[0] == REVEAL:
            if self.names and len(move) > 1 and type(move[1]) is int and 0 <= move[1] < len(self.names):
                return f"revealed {self.names[move[1]]}"
            return "revealed"
        return super().show(move)

    def board(self, table: Table, data: Round) -> Any:
        out: dict[str, Any] = {"committed": [c is not None for c in data.commitments],
                               "revealed": [self._reveal(r) for r in data.reveals]}
        if isinstance(self.app, Dice):
            seeds = self.app.secrets(data)
            from .dice import roll
            out["dice"] = None if seeds is None else list(roll(table.channel_id, [s[0] for s in seeds]))
        return out

    def _reveal(self, secret: tuple[Any, ...] | None) -> Any:
        if secret is None:
            return None
        if self.names:
            return self.names[secret[0]]
        return True

    def render(self, table: Table, data: Round, me: int) -> str:
        board = self.board(table, data)
        lines = []
        for p in range(table.players):
            who = "you " if p == me else "peer"
            if board["revealed"][p] is not None:
                what = board["revealed"][p] if self.names else "revealed"
            else:
                what = "committed" if board["committed"][p] else "-"
            lines.append(f"{who}: {what}")
        if board.get("dice"):
            lines.append("dice: " + ", ".join(f"{'you' if p == me else 'peer'} {d}"
                                                for p, d in enumerate(board["dice"])))
        return "\n".join(lines)

    def choices(self, table: Table, data: Round, me: int) -> list[str]:
        if data.commitments[me] is not None:
            return []  # the reveal is made for the player
        return list(self.names) if self.names else ["roll"]


def codec_for(app: Game[Any]) -> MoveCodec:
    """The codec of a game: the built-ins have their own, any other ``Game`` the default."""
    if isinstance(app, TicTacToe):
        return TicTacToeCodec(app)
    if isinstance(app, LastOneStanding):
        return LastOneCodec(app)
    if isinstance(app, RockPaperScissors):
        return CommitRevealCodec(app, NAMES)
    if isinstance(app, CommitReveal):
        return CommitRevealCodec(app)
    return MoveCodec(app)


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if attrs.has(type(value)):
        return _jsonable(attrs.asdict(value, recurse=False))
    return value


# --- a view of one game ------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class GameView:
    """One game as ``game show`` prints it; player numbers are indices (``you``: ours)."""

    game: str
    channel_id: str
    peer_id: str
    you: int
    board: Any
    text: str  # the board drawn in ASCII
    turn: int | None  # the player to move; None once the game is over
    your_turn: bool
    moves: list[str]  # what we may play now (commit-reveal reveals are made for us)
    stake: int  # what each player has at stake (before the first move: what that move will fix)
    status: str  # playing, won, drawn, disputed
    winner: int | None
    you_won: bool
    deadline: float | None  # disputed: L1 time the window ends; else when the referee goes to the L1
    phase: str  # the channel's: open, disputed, closing, settled
    balance: int
    peer_balance: int
    peer_ids: list[str] = attrs.Factory(list)  # every other player, in turn order (n-party games)

    def as_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


# --- the per-node referee ------------------------------------------------------------------------------


_SERVICES: weakref.WeakKeyDictionary[Any, Games] = weakref.WeakKeyDictionary()


class Games:
    """The games of one node: settings, secrets and the referee task that enforces move
    timeouts and makes reveals. One per node (``Games.of``), run in the node's nursery so it
    stops with the node."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self._timeouts: dict[ChannelId, float | None] = {}
        self._since: dict[ChannelId, tuple[tuple[int, ...], float]] = {}  # waiting on the peer since
        self._to_chain: set[ChannelId] = set()  # force-closed by the referee
        self._stuck: dict[ChannelId, bytes] = {}  # our unsigned move, to force once registered
        self._busy: set[tuple[ChannelId, int]] = set()  # reveals under way (channel, held version)
        self._locks: dict[ChannelId, trio.Lock] = {}
        self._lost: set[ChannelId] = set()  # secrets missing from the store (warned once)
        self._wake = trio.Event()

    @classmethod
    def of(cls, node: Node) -> Games:
        """The node's games service, started on first use."""
        svc = _SERVICES.get(node)
        if svc is None:
            svc = _SERVICES[node] = cls(node)
            node.on_commit.append(svc._on_commit)
            node._nursery.start_soon(svc._referee)  # ends with the node
        return svc

    # -- channels and settings

    def app(self, ch: Channel) -> Game[Any] | None:
        apps = self.node.engine.env.apps
        if ch.params.app_id not in apps:
            return None
        app = apps.get(ch.params.app_id)
        return app if isinstance(app, Game) else None

    def game_channels(self) -> list[Channel]:
        """Every channel of a game, funded or later, by channel id."""
        return [ch for _, ch in sorted(self.node.engine.channels.items())
                if self.app(ch) is not None and ch.phase not in (Phase.PROPOSED, Phase.FUNDING)]

    def find(self, game_id: str | bytes) -> ChannelId:
        """A game channel from its id (the channel id, or a unique prefix of its hex)."""
        if isinstance(game_id, bytes):
            if game_id in self.node.engine.channels and self.app(self.node.engine.channels[ChannelId(game_id)]):
                return ChannelId(game_id)
            game_id = game_id.hex()
        prefix = game_id.strip().lower()
        found = [ch.channel_id for ch in self.game_channels() if prefix and ch.channel_id.hex().startswith(prefix)]
        if len(found) != 1:
            raise UnknownGame(f"no game matches {game_id[:80]!r}; see: channels game list" if not found
                              else f"{game_id!r} matches {len(found)} games; give more digits")
        return found[0]

    def timeout(self, cid: ChannelId) -> float | None:
        if cid not in self._timeouts:
            raw = self.node.store.get_meta(META_SETTINGS + cid.hex())
            value = json.loads(raw).get("move_timeout", DEFAULT_MOVE_TIMEOUT) if raw else DEFAULT_MOVE_TIMEOUT
            self._timeouts[cid] = None if value is None else float(value)
        return self._timeouts[cid]

    def configure(self, cid: ChannelId, move_timeout: float | None) -> None:
        """Set (and store) the move timeout of a game; None: never go to the L1 by ourselves."""
        check_timeout(move_timeout)
        with self.node.store.transaction():
            self.node.store.set_meta(META_SETTINGS + cid.hex(), json.dumps({"move_timeout": move_timeout}).encode())
        self._timeouts[cid] = move_timeout
        self._wake.set()

    def secret(self, cid: ChannelId) -> tuple[Any, ...] | None:
        raw = self.node.store.get_meta(META_SECRET + cid.hex())
        if raw is None:
            return None
        value = decode(raw)
        return tuple(value) if isinstance(value, list) else None

    def keep_secret(self, cid: ChannelId, secret: tuple[Any, ...]) -> None:
        """Stored (fsynced) before the commitment leaves: a restart can still reveal it."""
        with self.node.store.transaction():
            self.node.store.set_meta(META_SECRET + cid.hex(), encode(list(secret)))

    def game(self, game_id: str | bytes) -> GameChannel:
        return GameChannel(self, self.find(game_id))

    # -- moves

    def check(self, ch: Channel, payload: bytes) -> Game[Any]:
        """Raise unless ``payload`` is our legal move now; nothing is signed here."""
        app = self.app(ch)
        if app is None:
            raise UnknownGame(f"channel {ch.channel_id.hex()[:12]} is not a game")
        if ch.phase not in (Phase.OPEN, Phase.DISPUTED):
            raise LocalProtocolError(f"the game's channel is {ch.phase.value}: no more moves")
        app.apply_move(ch.params, held(ch), payload, ch.me)  # InvalidTransition naming the rule
        return app

    async def play(self, cid: ChannelId, payload: bytes) -> int:
        """Play ``payload``: off-chain while the channel is open, forced on the L1 in a dispute
        (also when the channel goes to the L1 while the move waits for the peer)."""
        ch = self.node.channel(cid)
        self.check(ch, payload)
        if ch.phase is Phase.DISPUTED:
            return await self.force(cid, payload)
        from ..node.engine import OperationFailed

        try:
            return int(await self.node.move(cid, payload))
        except OperationFailed:
            if self.node.channel(cid).phase is not Phase.DISPUTED:
                raise
            return await self.force(cid, payload)

    async def force(self, cid: ChannelId, payload: bytes) -> int:
        """Force our move on the L1 once the dispute's registration is seen; a move already
        made (by another caller) is not made twice."""
        lock = self._locks.setdefault(cid, trio.Lock())
        async with lock:
            with trio.fail_after(FORCE_WAIT):
                while True:
                    changed = self.node.engine.changed
                    ch = self.node.channel(cid)
                    if ch.phase is not Phase.DISPUTED:
                        raise LocalProtocolError(f"the game's channel is {ch.phase.value}; the move cannot be forced")
                    if ch.registered_version is not None and ch.deadline is not None \
                            and held(ch).version >= ch.registered_version:
                        break
                    await changed.wait()
            app = self.app(ch)
            assert app is not None
            if app.turn(ch.params, held(ch)) != ch.me:
                return int(held(ch).version)  # made already
            app.apply_move(ch.params, held(ch), payload, ch.me)
            log.info("game %s: forcing our move on the L1", cid.hex()[:12])
            return int(await self.node.move(cid, payload))

    # -- the referee

    def _on_commit(self, changed: list[ChannelId]) -> None:
        """After every committed step: wake the referee only if a game channel changed (a
        payment node must not pay for the referee on every update)."""
        channels = self.node.engine.channels
        if any(cid in channels and self.app(channels[cid]) is not None for cid in changed):
            self._wake.set()

    async def _referee(self) -> None:
        while True:
            next_check = self._check(trio.current_time())
            with trio.move_on_at(next_check):
                await self._wake.wait()
            if self._wake.is_set():
                self._wake = trio.Event()

    def _check(self, now: float) -> float:
        """Act on every game channel; the time of the next timeout (inf: none)."""
        wake = math.inf
        for ch in list(self.node.engine.channels.values()):
            if ch.phase not in (Phase.OPEN, Phase.DISPUTED):
                self._since.pop(ch.channel_id, None)
                continue
            app = self.app(ch)
            if app is None:
                continue
            try:
                turn = app.turn(ch.params, held(ch))
            except ChannelsError:
                continue
            cid = ch.channel_id
            if turn == ch.me:
                self._reveal_if_due(ch, app)
            if ch.phase is Phase.DISPUTED:
                self._since.pop(cid, None)
                stuck = self._stuck.get(cid)
                if stuck is not None and ch.registered_version is not None:
                    del self._stuck[cid]
                    if turn == ch.me:
                        self._spawn(f"force our move in {cid.hex()[:12]}", self.force, cid, stuck)
                continue
            mine = [op for op in ch.in_flight if isinstance(op, AppMove)]
            timeout = self.timeout(cid)
            unstaked = not mine and app.stake(ch.params, held(ch)) is None  # no first move: nothing to lose
            if turn is None or timeout is None or unstaked or (turn == ch.me and not mine):
                self._since.pop(cid, None)
                continue
            key = (int(ch.version), len(mine))
            since = self._since.get(cid)
            if since is None or since[0] != key:
                since = self._since[cid] = (key, now)
            due = since[1] + timeout
            if now < due:
                wake = min(wake, due)
            elif cid not in self._to_chain:
                self._to_chain.add(cid)
                if mine:
                    self._stuck[cid] = mine[-1].payload
                who = "countersign our move" if mine else "move"
                log.warning("game %s: the peer did not %s within %g s; taking the game to the L1",
                            cid.hex()[:12], who, timeout)
                self._spawn(f"force-close {cid.hex()[:12]}", self.node.close, cid, force=True, wait=False)
        return wake

    def _reveal_if_due(self, ch: Channel, app: Game[Any]) -> None:
        if not isinstance(app, CommitReveal) or any(isinstance(op, AppMove) for op in ch.in_flight):
            return
        state = held(ch)
        data: Round = app.load(ch.params, state)[1]
        if data.commitments[ch.me] is None or (ch.channel_id, int(state.version)) in self._busy:
            return
        secret = self.secret(ch.channel_id)
        if secret is None or app.commitment(ch.channel_id, ch.me, secret) != data.commitments[ch.me]:
            if ch.channel_id not in self._lost:
                self._lost.add(ch.channel_id)
                log.warning("game %s: our commitment's secret is not in the store; it cannot be revealed",
                            ch.channel_id.hex()[:12])
            return
        self._busy.add((ch.channel_id, int(state.version)))

        async def reveal() -> None:
            try:
                await self.play(ch.channel_id, encode(app.reveal_payload(secret)))
            finally:
                self._busy.discard((ch.channel_id, int(state.version)))

        self._spawn(f"reveal in {ch.channel_id.hex()[:12]}", reveal)

    def _spawn(self, what: str, fn: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> None:
        async def guarded() -> None:
            try:
                await fn(*args, **kwargs)
            except (ChannelsError, trio.TooSlowError) as exc:
                log.warning("game referee: %s failed: %s", what, exc)
            self._wake.set()

        self.node._nursery.start_soon(guarded)


def check_timeout(move_timeout: float | None) -> None:
    if move_timeout is not None and not (move_timeout > 0 and math.isfinite(move_timeout)):
        raise LocalProtocolError(f"move_timeout must be a positive number of seconds, not {move_timeout}")


def held(ch: Channel) -> State:
    """The game's current state: a move forced on the L1 after our latest, else the latest."""
    forced = ch.forced
    if forced is not None and forced.state.version > ch.latest.state.version:
        return forced.state
    return ch.latest.state


# --- one game ---------------------------------------------------------------------------------------


@attrs.frozen
class _Seen:
    phase: Phase
    state: State
    deadline: int | None


class GameChannel:
    """One game in a channel, as its player sees it. Create with ``open_game`` or ``join``.

    ``await move(m)``, ``async for event in game``, ``view()``/``board``/``turn``, ``rematch()``.
    Several tasks may use one object; each event is handed out once."""

    def __init__(self, svc: Games, channel_id: ChannelId) -> None:
        self._svc = svc
        self.node = svc.node
        self.channel_id = channel_id
        ch = self.node.channel(channel_id)
        app = svc.app(ch)
        if app is None:
            raise UnknownGame(f"channel {channel_id.hex()[:12]} is not a game")
        self.app: Game[Any] = app
        self.codec = codec_for(app)
        self.you = ch.me
        self._seen = _Seen(ch.phase, held(ch), ch.deadline)
        self._queue: list[GameEvent] = []

    # -- reading

    @property
    def channel(self) -> Channel:
        return self.node.channel(self.channel_id)

    @property
    def peer_id(self) -> str:
        """The first other player (the only one in a two-player game)."""
        return self.node.engine.peer_of[self.channel_id]

    @property
    def peer_ids(self) -> list[str]:
        """Every other player, in player order."""
        return self.node.engine.peers_of_channel(self.channel_id)

    def _table_data(self, state: State) -> tuple[Table, int | None, Any]:
        ch = self.channel
        stake, data = self.app.load(ch.params, state)
        return self.app.table(ch.params, state), stake, data

    @property
    def board(self) -> Any:
        table, _, data = self._table_data(held(self.channel))
        return self.codec.board(table, data)

    @property
    def turn(self) -> int | None:
        """The player to move (``you`` is ours); None once the game is over."""
        ch = self.channel
        return self.app.turn(ch.params, held(ch))

    @property
    def your_turn(self) -> bool:
        return self.turn == self.you

    def render(self) -> str:
        table, _, data = self._table_data(held(self.channel))
        return self.codec.render(table, data, self.you)

    def view(self) -> GameView:
        ch = self.channel
        state = held(ch)
        table, stake, data = self._table_data(state)
        turn = self.app.whose_turn(table, data)
        status, winner = self._outcome(ch, table, stake, data, turn)
        in_flight = any(isinstance(op, AppMove) for op in ch.in_flight)
        mine = turn == self.you and not in_flight and ch.phase in (Phase.OPEN, Phase.DISPUTED)
        alloc = ch.allocation if ch.forced is None else state.allocation
        return GameView(game=self.app.app_id, channel_id=self.channel_id.hex(), peer_id=self.peer_id, you=self.you,
                        board=self.codec.board(table, data), text=self.codec.render(table, data, self.you),
                        turn=turn, your_turn=turn == self.you, moves=self.codec.choices(table, data, self.you)
                        if mine else [], stake=min(state.allocation.balances[0]) if stake is None else stake,
                        status=status, winner=winner, you_won=winner == self.you,
                        deadline=self._deadline(ch, turn, in_flight), phase=ch.phase.value,
                        balance=alloc.balances[0][ch.me], peer_balance=alloc.balances[0][ch.peer],
                        peer_ids=self.peer_ids)

    def _outcome(self, ch: Channel, table: Table, stake: int | None, data: Any,
                 turn: int | None) -> tuple[str, int | None]:
        if turn is None:
            shares = self.app.payouts(table, data, 1)
            top = [p for p, share in enumerate(shares) if share == table.players]
            return ("won", top[0]) if top else ("drawn", None)
        if ch.phase is Phase.DISPUTED:
            return "disputed", None
        if ch.phase in (Phase.CLOSING, Phase.SETTLED):  # left unfinished: the player to move forfeited
            if stake is None or table.players != 2:
                return "drawn", None
            return "won", 1 - turn
        return "playing", None

    def _deadline(self, ch: Channel, turn: int | None, in_flight: bool) -> float | None:
        if ch.phase is Phase.DISPUTED:
            return None if ch.deadline is None else float(ch.deadline)
        since = self._svc._since.get(self.channel_id)
        timeout = self._svc.timeout(self.channel_id)
        if ch.phase is not Phase.OPEN or turn is None or timeout is None or since is None:
            return None
        return time.time() + since[1] + timeout - trio.current_time()

    # -- moving

    async def move(self, move: Any = None) -> None:
        """Play ``move`` (the game's value: a cell number, a step, ``"rock"``). Returns once the
        peer countersigned it (or, in a dispute, once it is sent to the L1). Raises
        ``InvalidTransition`` naming the rule broken, with nothing signed."""
        ch = self.channel
        if isinstance(self.app, CommitReveal):
            payload = self._commit_reveal_payload(ch, move)
        else:
            payload = encode(self.codec.value(move))
        await self._play(payload)

    async def move_text(self, text: str) -> None:
        """Play a move typed by a person (``"4"``, ``"rock"``, ``"roll"``)."""
        await self.move(self.codec.parse(text))

    def _commit_reveal_payload(self, ch: Channel, move: Any) -> bytes:
        app = self.app
        assert isinstance(app, CommitReveal) and isinstance(self.codec, CommitRevealCodec)
        state = held(ch)
        data: Round = app.load(ch.params, state)[1]
        if data.commitments[self.you] is None:
            self._svc.check(ch, encode([COMMIT, bytes(32)]))  # the phase and the turn, before a secret is drawn
            secret = self.codec.secret(self.codec.value(move))
            payload = encode(app.commit_payload(self.channel_id, self.you, secret))
            self._svc.check(ch, payload)
            self._svc.keep_secret(self.channel_id, secret)
            return payload
        kept = self._svc.secret(self.channel_id)
        if kept is None or app.commitment(self.channel_id, self.you, kept) != data.commitments[self.you]:
            raise InvalidTransition("reveal does not match commitment: the secret is not in this node's store")
        if self.codec.names and move is not None and kept[0] != self.codec.value(move):
            raise InvalidTransition(f"you committed to {self.codec.names[kept[0]]}; a reveal cannot change it")
        secret = kept
        return encode(app.reveal_payload(secret))

    async def rematch(self) -> None:
        """Start a new game in the same channel once this one is over (no new deposit). The
        stake of the next game is fixed at its first move: the smallest balance then."""
        if self.turn is not None:
            raise InvalidTransition("the game is not over: a rematch starts once it is")
        await self._play(encode(NEW_GAME))

    async def _play(self, payload: bytes) -> None:
        """Play, then move our event cursor past our own move: a count game's moves are
        ambiguous when several are seen at once (3 then 2, or 2 then 3), so ours never are."""
        self._queue.extend(self._advance())  # what happened before our move is told first
        before = held(self.channel)
        version = await self._svc.play(self.channel_id, payload)
        ch = self.channel
        ours = attrs.evolve(self.app.apply_move(ch.params, before, payload, self.you), version=Version(version))
        if ours.version > self._seen.state.version:
            self._queue.extend(self._diff(self._seen, attrs.evolve(self._seen, state=ours), ch))
            self._seen = attrs.evolve(self._seen, state=ours)

    # -- events

    def poll_events(self) -> list[GameEvent]:
        """The events since the last call (or since this object was made), without waiting."""
        self._queue.extend(self._advance())
        out, self._queue = self._queue, []
        return out

    def __aiter__(self) -> GameChannel:
        return self

    async def __anext__(self) -> GameEvent:
        """The next event; the iteration ends once the channel is settled (after its events)."""
        while not self._queue:
            changed = self.node.engine.changed
            self._queue.extend(self._advance())
            if self._queue:
                break
            if self.channel.phase is Phase.SETTLED:
                raise StopAsyncIteration
            await changed.wait()
        await trio.lowlevel.checkpoint()
        return self._queue.pop(0)

    def _advance(self) -> list[GameEvent]:
        ch = self.channel
        new = _Seen(ch.phase, held(ch), ch.deadline)
        old, self._seen = self._seen, new
        return self._diff(old, new, ch)

    def _diff(self, old: _Seen, new: _Seen, ch: Channel) -> list[GameEvent]:
        if new == old:
            return []
        out: list[GameEvent] = []
        table, _, old_data = self._table_data(old.state)
        _, stake, data = self._table_data(new.state)
        old_turn = self.app.whose_turn(table, old_data)
        if new.phase is Phase.DISPUTED and new.deadline is not None and (
                old.phase is not Phase.DISPUTED or old.deadline is None):
            turn = self.app.whose_turn(table, data)
            out.append(DisputeStarted(deadline=new.deadline, turn=turn, your_turn=turn == self.you))
        if new.state.app_data != old.state.app_data:
            path = moves_between(self.app, table, old_data, data)
            if path is None:  # a rematch reset the game (and maybe moves followed)
                path = moves_between(self.app, table, self.app.new_data(table), data)
                out.append(RematchStarted())
                old_turn = 0
            on_chain = new.phase is Phase.DISPUTED
            for mover, move in path or []:
                if mover != self.you:
                    out.append(OpponentMoved(player=mover, move=_jsonable(move), text=self.codec.show(move),
                                             on_chain=on_chain))
            turn = self.app.whose_turn(table, data)
            if turn is None and old_turn is not None:
                status, winner = self._outcome(ch, table, stake, data, None)
                out.append(GameOver(winner=winner, draw=status == "drawn", you_won=winner == self.you))
        if new.phase is Phase.SETTLED and old.phase is not Phase.SETTLED:
            turn = self.app.whose_turn(table, data)
            status, winner = self._outcome(ch, table, stake, data, turn)
            if ch.registered_version is not None:
                out.append(DisputeResolved(balance=new.state.allocation.balances[0][ch.me],
                                           peer_balance=new.state.allocation.balances[0][ch.peer],
                                           winner=winner, you_won=winner == self.you))
            if turn is not None and stake is not None:
                out.append(GameOver(winner=winner, draw=status == "drawn", you_won=winner == self.you, forfeit=True))
        return out


def moves_between(app: Game[Any], table: Table, prev: Any, nxt: Any,
                  most: int = MAX_INFERRED_MOVES) -> list[tuple[int, Any]] | None:
    """The fewest moves (mover, value) that turn game data ``prev`` into ``nxt``; None if no
    ``most`` moves do. The fewest: one move seen is never read as several that add up to it."""
    for depth in range(most + 1):
        path = _path(app, table, prev, nxt, depth)
        if path is not None:
            return path
    return None


def _path(app: Game[Any], table: Table, prev: Any, nxt: Any, depth: int) -> list[tuple[int, Any]] | None:
    if depth == 0:
        return [] if prev == nxt else None
    turn = app.whose_turn(table, prev)
    if turn is None:
        return None
    for move in app.inferred_moves(table, prev, nxt, turn):
        try:
            after = app.play(table, prev, move, turn)
        except (InvalidTransition, DecodeError):
            continue
        rest = _path(app, table, after, nxt, depth - 1)
        if rest is not None:
            return [(turn, move), *rest]
    return None


# --- opening and joining ------------------------------------------------------------------------------


def game_app(node: Node, game: str | Game[Any]) -> Game[Any]:
    """The node's rules for ``game`` (an app id or a ``Game``); ``UnknownGame`` if it does not play it."""
    name = game if isinstance(game, str) else game.app_id
    apps = node.engine.env.apps
    names = sorted(a.app_id for a in apps if isinstance(a, Game))
    if name not in apps or not isinstance(apps.get(name), Game):
        raise UnknownGame(f"unknown game {name[:40]!r}; this node plays: {', '.join(names) or 'no games'}"
                          " (start it with --apps for more)")
    return apps.get(name)  # type: ignore[return-value]


async def open_game(node: Node, game: str | Game[Any], peer_id: str | Sequence[str], stake: int, *,
                    peer_stake: int | None = None, move_timeout: float | None = DEFAULT_MOVE_TIMEOUT,
                    challenge_duration: int | None = None, timeout: float = 60.0) -> GameChannel:
    """Open a game channel against ``peer_id`` (connected first) and return the game once both
    stakes are on the L1. We deposit ``stake``, the peer ``peer_stake`` (default: the same), and
    the game is played for the smaller one. We are player 0 (X in tic-tac-toe: we move first).

    A list of peers opens a game for several players (an n-party channel, proto/02 section 13):
    they are players 1, 2, ... in the order given, turns go in player order, and every player
    must be connected to every other one first."""
    app = game_app(node, game)
    players = 1 + (1 if isinstance(peer_id, str) else len(peer_id))
    if not app.min_players <= players <= app.max_players:
        want = (str(app.min_players) if app.min_players == app.max_players
                else f"{app.min_players} to {app.max_players}")
        raise LocalProtocolError(f"{app.app_id} is played by {want} players, not {players}")
    if stake <= 0 or (peer_stake is not None and peer_stake <= 0):
        raise LocalProtocolError("a game needs a positive stake from each player")
    check_timeout(move_timeout)  # before anything is opened
    svc = Games.of(node)
    cid = await node.open_channel(peer_id, stake, peer_amount=stake if peer_stake is None else peer_stake,
                                  app_id=app.app_id, challenge_duration=challenge_duration, timeout=timeout)
    svc.configure(cid, move_timeout)
    return GameChannel(svc, cid)


async def join(node: Node, game_id: str | bytes | None = None, *, game: str | Game[Any] | None = None,
               peer_id: str | None = None, move_timeout: float | None = DEFAULT_MOVE_TIMEOUT,
               timeout: float = 60.0) -> GameChannel:
    """The accepting side: the game ``game_id`` (a channel id or a unique hex prefix), or else the
    next game channel a peer opens with us (of ``game``, from ``peer_id``, if given) once funded.
    The node accepts it by itself when the stake is within its ``auto_accept_funding``."""
    svc = Games.of(node)
    if game_id is not None:
        cid = svc.find(game_id)
    else:
        want = None if game is None else game_app(node, game).app_id
        known = {ch.channel_id for ch in svc.game_channels()}
        with trio.fail_after(timeout):
            while True:
                changed = node.engine.changed
                fresh = [ch for ch in svc.game_channels() if ch.channel_id not in known and ch.me != 0
                         and ch.phase is Phase.OPEN and (want is None or ch.params.app_id == want)
                         and (peer_id is None or node.engine.peer_of[ch.channel_id] == peer_id)]
                if fresh:
                    cid = fresh[0].channel_id
                    break
                await changed.wait()
    svc.configure(cid, move_timeout)
    return GameChannel(svc, cid)


# --- a synchronous handle ---------------------------------------------------------------------------


class NodeThread:
    """A node in a thread of its own (its own trio loop), for a program without trio: a game
    loop calls ``open_game``/``join`` and gets a ``GameHandle``. Every method is thread-safe.

    ``with NodeThread(config, devnet=ADDRESS) as nt:`` (a devnet daemon's multiaddr), or
    ``ledger=`` a ledger object the thread may use."""

    def __init__(self, config: NodeConfig, *, devnet: str | None = None, ledger: Ledger | None = None,
                 apps: AppRegistry | None = None, start_timeout: float = 60.0) -> None:
        if (devnet is None) == (ledger is None):
            raise LocalProtocolError("NodeThread needs a devnet address or a ledger (one of them)")
        self.config, self._devnet, self._ledger = config, devnet, ledger
        self._apps = apps
        self._start_timeout = start_timeout
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        self.node: Node | None = None

    def __enter__(self) -> NodeThread:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name=f"node {self.config.data_dir.name}")
        self._thread.start()
        if not self._ready.wait(self._start_timeout):
            self.close()
            raise LocalProtocolError(f"the node did not start within {self._start_timeout:g} s")
        if self._error is not None:
            self._thread.join()
            raise self._error

    def _main(self) -> None:
        try:
            trio.run(self._run)
        except BaseException as exc:  # handed to the starting thread
            self._error = exc
        finally:
            self._ready.set()

    async def _run(self) -> None:
        from ..node import Node
        from . import GAME_APPS

        async with AsyncExitStack() as stack:
            ledger = self._ledger
            if ledger is None:
                from ..chain.devnet.client import open_remote_devnet

                assert self._devnet is not None
                ledger = await stack.enter_async_context(open_remote_devnet(self._devnet))
            self.node = await stack.enter_async_context(
                Node.open(self.config, ledger=ledger, apps=self._apps or GAME_APPS))
            self._token, self._stop = trio.lowlevel.current_trio_token(), trio.Event()
            self._ready.set()
            await self._stop.wait()

    def close(self) -> None:
        """Stop the node and its thread (idempotent)."""
        if self._token is not None and self._stop is not None and self._thread is not None \
                and self._thread.is_alive():
            try:
                trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
            except trio.RunFinishedError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=30)

    def call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run ``await fn(*args)`` in the node's thread and return (or raise) its result."""
        if self._token is None:
            raise LocalProtocolError("the node thread is not running")
        return trio.from_thread.run(fn, *args, trio_token=self._token)

    def call_sync(self, fn: Callable[..., T], *args: Any) -> T:
        if self._token is None:
            raise LocalProtocolError("the node thread is not running")
        return trio.from_thread.run_sync(fn, *args, trio_token=self._token)

    @property
    def peer_id(self) -> str:
        assert self.node is not None
        return self.node.peer_id

    @property
    def addresses(self) -> list[str]:
        assert self.node is not None
        return self.node.addresses

    def connect(self, address: str) -> str:
        assert self.node is not None
        return self.call(self.node.connect, address)

    def open_game(self, game: str, peer_id: str, stake: int, **kwargs: Any) -> GameHandle:
        async def run() -> GameChannel:
            assert self.node is not None
            return await open_game(self.node, game, peer_id, stake, **kwargs)

        return GameHandle(self, self.call(run))

    def join(self, game_id: str | None = None, **kwargs: Any) -> GameHandle:
        async def run() -> GameChannel:
            assert self.node is not None
            return await join(self.node, game_id, **kwargs)

        return GameHandle(self, self.call(run))


class GameHandle:
    """One game, driven from any thread: each call runs in the node's thread and blocks until
    it is done."""

    def __init__(self, runner: NodeThread, game: GameChannel) -> None:
        self._runner = runner
        self._game = game
        self.channel_id = game.channel_id
        self.you = game.you

    def move(self, move: Any = None) -> None:
        self._runner.call(self._game.move, move)

    def move_text(self, text: str) -> None:
        """A move typed by a person (``"4"``, ``"rock"``, ``"roll"``)."""
        self._runner.call(self._game.move_text, text)

    def rematch(self) -> None:
        self._runner.call(self._game.rematch)

    def poll_events(self) -> list[GameEvent]:
        """The events since the last poll, without waiting."""
        return self._runner.call_sync(self._game.poll_events)

    def wait_events(self, timeout: float) -> list[GameEvent]:
        """The next events, waiting at most ``timeout`` seconds for one (empty: none came, or
        the channel is settled)."""
        async def run() -> list[GameEvent]:
            with trio.move_on_after(timeout):
                try:
                    first = await self._game.__anext__()
                except StopAsyncIteration:
                    return []
                return [first, *self._game.poll_events()]
            return []

        return self._runner.call(run)

    def view(self) -> GameView:
        return self._runner.call_sync(self._game.view)

    @property
    def board(self) -> Any:
        return self.view().board

    @property
    def turn(self) -> int | None:
        return self.view().turn

    @property
    def your_turn(self) -> bool:
        return self.view().your_turn

    @property
    def status(self) -> str:
        return self.view().status

