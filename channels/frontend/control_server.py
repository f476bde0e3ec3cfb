"""JSON-RPC 2.0 control socket of a node daemon (ARCHITECTURE section 7, after Core Lightning).

One Unix socket, ``DIR/rpc.sock`` (mode 0600: whoever can open it controls the
node's funds). Requests and responses are newline-delimited JSON; one connection
may carry many requests, answered in order. Method names are the CLI command
names, so ``channels pay-direct`` and ``{"method": "pay-direct"}`` are one thing.

Every failure becomes a JSON-RPC error; a ``ChannelsError`` keeps its class name
in ``data.type`` so clients can tell an unknown channel from a missing peer.

Hostile or broken input never stops the server: a request line is at most
``MAX_REQUEST`` bytes, nests at most ``MAX_DEPTH`` arrays/objects (checked before
parsing: the parser recurses), holds no NaN/Infinity, and a batch has at most
``MAX_BATCH`` calls; anything else is answered with an error and the connection
(or the next line) goes on. Responses are always strict JSON.
"""

from __future__ import annotations

import errno
import json
import logging
import math
import os
import re
import socket
import stat
from collections.abc import Awaitable, Callable
from itertools import accumulate
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from .. import __version__
from ..core.ids import MAX_AMOUNT, MAX_U64, NATIVE, AssetId
from ..errors import ChannelsError, ConfigError, LocalProtocolError
from ..wire.fields import MAX_MOVE

if TYPE_CHECKING:
    from ..node import Node

from .control_client import (
    APP_ERROR,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    check_socket_path,
)

log = logging.getLogger("channels.frontend.control_server")

MAX_REQUEST = 1 << 20  # bytes per request line: a control socket has no use for more
MAX_DEPTH = 32  # nested arrays/objects per request: a request needs 3 (batch, call, params)
MAX_BATCH = 256  # calls per batch request
PAY_TIMEOUT = 60.0
FORCE_CLOSE_TIMEOUT = 30.0
L1_READ_TIMEOUT = 10.0



class NodeAlreadyRunning(ConfigError):
    """A live daemon already serves this data dir."""


class InvalidParams(LocalProtocolError):
    """A method was called with missing, unknown or ill-typed parameters."""


# --- parameters ----------------------------------------------------------------------------------


class Params:
    """Typed access to a request's ``params`` object; anything wrong is ``InvalidParams``."""

    def __init__(self, raw: Any, allowed: tuple[str, ...]) -> None:
        if raw is None:
            raw = {}
        if isinstance(raw, list):
            if len(raw) > len(allowed):
                raise InvalidParams(f"at most {len(allowed)} positional parameters")
            raw = dict(zip(allowed, raw, strict=False))
        if not isinstance(raw, dict):
            raise InvalidParams("params must be an object")
        unknown = set(raw) - set(allowed)
        if unknown:
            raise InvalidParams(f"unknown parameter(s): {', '.join(sorted(map(str, unknown)))}")
        self._raw = raw

    def has(self, name: str) -> bool:
        return self._raw.get(name) is not None

    def text(self, name: str, default: str | None = None) -> str:
        value = self._raw.get(name, default)
        if not isinstance(value, str) or not value:
            raise InvalidParams(f"{name} must be a non-empty string")
        return value

    def integer(self, name: str, default: int | None = None, *, minimum: int = 1, maximum: int = MAX_U64) -> int:
        """An integer in ``minimum .. maximum`` (by default a u64, what every wire field holds)."""
        value = self._raw.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise InvalidParams(f"{name} must be an integer >= {minimum}")
        if value > maximum:
            largest = f"2^{maximum.bit_length()}-1" if maximum > MAX_U64 and not maximum & (maximum + 1) else maximum
            raise InvalidParams(f"{name} {value} is too large: the largest is {largest}")
        return value

    def optional_integer(self, name: str, *, minimum: int = 1) -> int | None:
        return None if self._raw.get(name) is None else self.integer(name, minimum=minimum)

    def text_list(self, name: str, *, max_items: int) -> list[str] | None:
        """A list of 1..``max_items`` non-empty strings, or None when absent."""
        value = self._raw.get(name)
        if value is None:
            return None
        if not isinstance(value, list) or not 1 <= len(value) <= max_items \
                or not all(isinstance(v, str) and v for v in value):
            raise InvalidParams(f"{name} must be a list of 1..{max_items} non-empty strings")
        return value

    def hexbytes(self, name: str, *, size: int | None = None, max_size: int = 32) -> bytes:
        try:
            value = bytes.fromhex(self.text(name))
        except ValueError:
            raise InvalidParams(f"{name} must be hex") from None
        if (size is not None and len(value) != size) or not 0 < len(value) <= max_size:
            raise InvalidParams(f"{name} must be {size if size is not None else f'1..{max_size}'} bytes")
        return value

    def flag(self, name: str, default: bool = False) -> bool:
        value = self._raw.get(name, default)
        if not isinstance(value, bool):
            raise InvalidParams(f"{name} must be true or false")
        return value


# --- methods -------------------------------------------------------------------------------------

Method = Callable[["Node", Params], Awaitable[dict[str, Any]]]
METHODS: dict[str, tuple[tuple[str, ...], Method]] = {}


def method(name: str, *params: str) -> Callable[[Method], Method]:
    def register(fn: Method) -> Method:
        METHODS[name] = (params, fn)
        return fn

    return register


def _channel_json(node: Node, channel_id: bytes) -> dict[str, Any]:
    cid = channel_id.hex()
    return next(c.as_json() for c in node.list_channels() if c.channel_id == cid)


async def _l1_balances(node: Node) -> dict[str, int]:
    with trio.fail_after(L1_READ_TIMEOUT):
        balances = getattr(node.ledger, "balances", None)
        if balances is not None:
            return {str(k): int(v) for k, v in (await balances(node.l1_address)).items()}
        return {NATIVE: await node.ledger.balance(node.l1_address, NATIVE)}


def _alarms(node: Node) -> dict[str, str]:
    """The node's standing alarms, name -> one-line message; empty when healthy."""
    alarms = getattr(node, "alarms", None)
    return {str(k): str(v) for k, v in alarms().items()} if alarms is not None else {}


@method("getinfo")
async def _getinfo(node: Node, p: Params) -> dict[str, Any]:
    result: dict[str, Any] = {
        "peer_id": node.peer_id, "addresses": node.addresses, "l1_account": node.l1_address.hex(),
        "num_channels": len(node.list_channels()), "chain_id": node.chain_id, "version": __version__,
        "data_dir": str(node.config.data_dir), "connections": node.connection_stats()}
    try:
        result["l1_balances"] = await _l1_balances(node)
    except (ChannelsError, trio.TooSlowError) as exc:  # status must work while the L1 is away
        result["l1_balances"] = None  # unknown, not zero
        result["l1_error"] = str(exc) or "the L1 did not answer in time"
    alarms = _alarms(node)  # read after the L1 call: it may have raised or cleared one
    result.update(alarms=alarms, healthy=not alarms)
    return result


@method("health")
async def _health(node: Node, p: Params) -> dict[str, Any]:
    """Local and instant (no L1 call): what the node's own monitors currently report."""
    alarms = _alarms(node)
    return {"healthy": not alarms, "alarms": alarms}


@method("connect", "address")
async def _connect(node: Node, p: Params) -> dict[str, Any]:
    return {"peer_id": await node.connect(p.text("address"))}


_PEER_ID = re.compile(r"[1-9A-HJ-NP-Za-km-z]{1,128}\Z")  # base58 characters, at most 128


@method("open", "peer_id", "amount", "asset", "challenge_duration", "app", "peer_amount")
async def _open(node: Node, p: Params) -> dict[str, Any]:
    peer_id, asset = p.text("peer_id"), AssetId(p.text("asset", NATIVE))
    amount = p.integer("amount", maximum=MAX_AMOUNT)
    # A game channel: both stake (the peer's node funds it if within its auto_accept_funding).
    app, peer_amount = p.text("app", "payment"), p.integer("peer_amount", 0, minimum=0, maximum=MAX_AMOUNT)
    if not _PEER_ID.match(peer_id):  # the node checks the rest (its transport knows the id format)
        raise InvalidParams(f"peer_id {peer_id[:100]!r} is not a peer id (base58, e.g. 12D3KooW...)")
    challenge_duration = p.optional_integer("challenge_duration")
    cid = await node.open_channel(peer_id, amount, asset=asset, challenge_duration=challenge_duration,
                                  app_id=app, peer_amount=peer_amount)
    return _channel_json(node, cid)


@method("dev-register-stale", "channel_id", "version")
async def _dev_register_stale(node: Node, p: Params) -> dict[str, Any]:
    cid = node.find_channel(p.text("channel_id"))
    stale = await node.dev_register_stale(cid, p.integer("version", minimum=0))
    return {**_channel_json(node, cid), "registered_version": int(stale.state.version)}


@method("tower-add", "address")
async def _tower_add(node: Node, p: Params) -> dict[str, Any]:
    address = p.text("address")
    return {"peer_id": await node.towers.add(address), "address": address}


@method("tower-remove", "peer_id")
async def _tower_remove(node: Node, p: Params) -> dict[str, Any]:
    peer_id = p.text("peer_id")
    if not node.towers.remove(peer_id):
        raise InvalidParams(f"no tower {peer_id[:100]!r}; see tower list")
    return {"peer_id": peer_id, "removed": True}


@method("tower-list")
async def _tower_list(node: Node, p: Params) -> dict[str, Any]:
    return {"towers": node.towers.describe()}


@method("move", "channel_id", "payload")
async def _move(node: Node, p: Params) -> dict[str, Any]:
    """An app move; in a disputed channel the node forces it on the L1 (``progress``)."""
    cid = node.find_channel(p.text("channel_id"))
    work = node.move(cid, p.hexbytes("payload", max_size=MAX_MOVE))
    return await _settle_within(node, cid, work, "move", note=" (close --force, then move again, forces it on the L1)")


# --- games: ``channels game ...`` over the game API (channels.games.api) ----------------------------

GAME_MOVE_WAIT = 60.0  # seconds a game-move waits for the peer's countersignature


def _game_json(game: Any) -> dict[str, Any]:
    view: dict[str, Any] = game.view().as_json()
    return {"game_id": view["channel_id"], **view}


@method("game-new", "game", "peer_id", "stake", "peer_stake", "move_timeout", "challenge_duration", "peer_ids")
async def _game_new(node: Node, p: Params) -> dict[str, Any]:
    """Open a game channel: both players stake (the peer's node funds its own stake if within its
    ``auto_accept_funding``); returns once both deposits are on the L1, with the game's view.
    ``peer_ids`` (instead of ``peer_id``): a game for several players, in turn order."""
    from ..core.state import MAX_PARTICIPANTS
    from ..games.api import DEFAULT_MOVE_TIMEOUT, game_app, open_game

    name = p.text("game")
    many = p.text_list("peer_ids", max_items=MAX_PARTICIPANTS - 1)
    if many is not None and p.has("peer_id"):
        raise InvalidParams("give peer_id or peer_ids, not both")
    peers = many if many is not None else [p.text("peer_id")]
    game_app(node, name)  # an unknown game fails before the peer id or the stakes are looked at
    for peer in peers:
        if not _PEER_ID.match(peer):
            raise InvalidParams(f"peer_id {peer[:100]!r} is not a peer id (base58, e.g. 12D3KooW...)")
    peer_id: str | list[str] = peers[0] if many is None else peers
    stake = p.integer("stake", maximum=MAX_AMOUNT)
    peer_stake = p.integer("peer_stake", stake, maximum=MAX_AMOUNT)
    timeout = p.optional_integer("move_timeout")
    game = await open_game(node, name, peer_id, stake, peer_stake=peer_stake,
                           move_timeout=DEFAULT_MOVE_TIMEOUT if timeout is None else float(timeout),
                           challenge_duration=p.optional_integer("challenge_duration"))
    return _game_json(game)


@method("game-list")
async def _game_list(node: Node, p: Params) -> dict[str, Any]:
    from ..games.api import Games

    games = Games.of(node)
    out = []
    for ch in games.game_channels():
        view = games.game(ch.channel_id).view()
        out.append({"game_id": view.channel_id, "game": view.game, "peer_id": view.peer_id, "peer_ids": view.peer_ids,
                    "status": view.status,
                    "turn": view.turn, "your_turn": view.your_turn, "you": view.you, "stake": view.stake,
                    "winner": view.winner, "you_won": view.you_won, "phase": view.phase})
    return {"games": out}


@method("game-show", "game_id")
async def _game_show(node: Node, p: Params) -> dict[str, Any]:
    from ..games.api import Games

    return _game_json(Games.of(node).game(p.text("game_id")))


@method("game-move", "game_id", "move")
async def _game_move(node: Node, p: Params) -> dict[str, Any]:
    """A move as typed (``4``, ``rock``, ``roll``); an illegal one is refused naming the rule,
    with nothing signed. In a disputed game the move is forced on the L1."""
    from ..games.api import Games

    game = Games.of(node).game(p.text("game_id"))
    text = p.text("move")
    with trio.move_on_after(GAME_MOVE_WAIT):
        await game.move_text(text)
        return _game_json(game)
    timeout = Games.of(node).timeout(game.channel_id)
    later = f"; if it stays silent the game goes to the L1 after {timeout:g} s" if timeout else ""
    raise LocalProtocolError(f"the peer did not countersign the move within {GAME_MOVE_WAIT:g} s; it stays "
                             f"queued{later}")


@method("game-rematch", "game_id")
async def _game_rematch(node: Node, p: Params) -> dict[str, Any]:
    """A new game in the same channel once this one is over (no new deposit)."""
    from ..games.api import Games

    game = Games.of(node).game(p.text("game_id"))
    with trio.fail_after(GAME_MOVE_WAIT):
        await game.rematch()
    return _game_json(game)


def _start_games(node: Node) -> None:
    """A node that plays games runs their referee (move timeouts, reveals) from the start, so a
    restarted daemon resumes its games without waiting for a ``game`` command."""
    from ..games import Game

    engine = getattr(node, "engine", None)  # test doubles of a node have none
    if engine is not None and any(isinstance(app, Game) for app in engine.env.apps):
        from ..games.api import Games

        Games.of(node)


@method("pay-direct", "channel_id", "amount", "payment_id")
async def _pay(node: Node, p: Params) -> dict[str, Any]:
    prefix, amount = p.text("channel_id"), p.integer("amount", maximum=MAX_AMOUNT)
    cid = node.find_channel(prefix)
    try:
        given = p.text("payment_id") if p.has("payment_id") else None
        payment_id = bytes.fromhex(given) if given else os.urandom(16)
    except ValueError:
        raise InvalidParams("payment_id must be hex") from None
    if not 0 < len(payment_id) <= 32:
        raise InvalidParams("payment_id is 1..32 bytes")
    with trio.move_on_after(PAY_TIMEOUT):
        version = await node.pay(cid, amount, payment_id=payment_id)
        info = _channel_json(node, cid)
        return {"channel_id": cid.hex(), "version": int(version), "amount": amount, "payment_id": payment_id.hex(),
                "balance": info["balance"], "peer_balance": info["peer_balance"], "asset": info["asset"]}
    raise LocalProtocolError(f"the peer did not countersign within {PAY_TIMEOUT:g} s; the payment may still "
                             f"complete: retry with --payment-id {payment_id.hex()} (safe: it never pays twice)")


LOCK_NOTE = " (a payee's secret is stored: the node claims the lock on the L1 before its expiry)"


async def _settle_within(node: Node, cid: bytes, work: Awaitable[Any], what: str,
                         note: str = LOCK_NOTE) -> dict[str, Any]:
    """Run an operation until the peer countersigns it (at most ``PAY_TIMEOUT``)."""
    with trio.move_on_after(PAY_TIMEOUT):
        version = await work
        return {**_channel_json(node, cid), "version": int(version)}
    raise LocalProtocolError(f"the peer did not countersign the {what} within {PAY_TIMEOUT:g} s; it stays queued{note}")


@method("add-lock", "channel_id", "amount", "hashlock", "expiry", "lock_id")
async def _add_lock(node: Node, p: Params) -> dict[str, Any]:
    cid = node.find_channel(p.text("channel_id"))
    lock_id = p.hexbytes("lock_id") if p.has("lock_id") else None
    with trio.move_on_after(PAY_TIMEOUT):
        lock_id = await node.add_lock(cid, p.integer("amount", maximum=MAX_AMOUNT), p.hexbytes("hashlock", size=32),
                                      p.integer("expiry"), lock_id=lock_id)
        return {**_channel_json(node, cid), "lock_id": lock_id.hex()}
    raise LocalProtocolError(f"the peer did not countersign the lock within {PAY_TIMEOUT:g} s")


@method("fulfill-lock", "channel_id", "lock_id", "preimage")
async def _fulfill_lock(node: Node, p: Params) -> dict[str, Any]:
    cid = node.find_channel(p.text("channel_id"))
    work = node.fulfill_lock(cid, p.hexbytes("lock_id"), p.hexbytes("preimage"))
    return await _settle_within(node, cid, work, "fulfillment")


@method("fail-lock", "channel_id", "lock_id", "reason")
async def _fail_lock(node: Node, p: Params) -> dict[str, Any]:
    cid = node.find_channel(p.text("channel_id"))
    work = node.fail_lock(cid, p.hexbytes("lock_id"), reason=p.integer("reason", 0, minimum=0))
    return await _settle_within(node, cid, work, "failure")


@method("list-channels")
async def _list_channels(node: Node, p: Params) -> dict[str, Any]:
    return {"channels": [c.as_json() for c in node.list_channels()]}


@method("close", "channel_id", "force")
async def _close(node: Node, p: Params) -> dict[str, Any]:
    prefix, force = p.text("channel_id"), p.flag("force")
    cid = node.find_channel(prefix)
    if not force:
        await node.close(cid)
        return _channel_json(node, cid)
    await node.close(cid, force=True, wait=False)
    # Return once the L1 holds the registration (or conclusion): the window is then running.
    result = _channel_json(node, cid)
    result["registered"] = False
    with trio.move_on_after(FORCE_CLOSE_TIMEOUT):
        while True:
            try:
                on_chain = await node.ledger.channel(cid)
            except ChannelsError as exc:  # the close is under way whatever the L1 read says
                log.info("force-close of %s: cannot read the L1 yet: %s", cid.hex()[:12], exc)
            else:
                if on_chain.registered is not None or on_chain.withdrawn:
                    result.update(_channel_json(node, cid), registered=True, deadline=on_chain.deadline)
                    break
            await trio.sleep(0.2)
    return result


# --- operator views: list-peers, disconnect, list-payments, list-funds ------------------------------

MAX_PAYMENTS_LISTED = 10_000  # newest first; a node's whole history would not fit one answer


@method("list-peers")
async def _list_peers(node: Node, p: Params) -> dict[str, Any]:
    return {"peers": node.list_peers()}


@method("disconnect", "peer_id")
async def _disconnect(node: Node, p: Params) -> dict[str, Any]:
    """Drop the connection now; a peer with channels that need it is redialled (``reconnects``)."""
    peer_id = p.text("peer_id")
    return {"peer_id": peer_id, "disconnected": True, "reconnects": await node.disconnect(peer_id)}


def _payment_json(row: tuple[bytes, bytes, str, str, int, str, str, int]) -> dict[str, Any]:
    key, cid, direction, asset, amount, status, detail, created = row
    if direction == "in" and len(key) > 12 and key[-12:-8] == b"/in/":  # stored as id + "/in/" + version
        key = key[:-12]
    known = bool(asset)  # a failure notice carries no amount: unknown, never shown as 0
    version = detail if status in ("sent", "received") and detail.isdigit() else None
    return {"payment_id": key.hex(), "direction": "received" if direction == "in" else "sent",
            "status": "complete" if status in ("sent", "received") else status,
            "amount": amount if known else None, "asset": asset if known else None, "channel_id": cid.hex(),
            "time": created, "detail": f"version {version}" if version is not None else detail,
            "version": int(version) if version is not None else None}


@method("list-payments", "limit")
async def _list_payments(node: Node, p: Params) -> dict[str, Any]:
    limit = min(p.integer("limit", MAX_PAYMENTS_LISTED), MAX_PAYMENTS_LISTED)
    payments = [_payment_json(row) for row in node.store.list_payments(limit)]
    if getattr(node, "payments", None) is None:  # a node without multi-hop payments (a test double)
        return {"payments": payments}
    # Newest first across both kinds (a stable sort: same-second channel payments keep their order).
    payments = sorted(payments + _hop_payments(node, limit), key=lambda e: e["time"], reverse=True)[:limit]
    return {"payments": payments, "fees_earned": node.payments.fees_earned()}


@method("list-funds")
async def _list_funds(node: Node, p: Params) -> dict[str, Any]:
    """L1 balances (``l1`` None and ``l1_error`` when the L1 does not answer) and channel funds:
    ``channels`` sums open channels, ``closing`` the closing and disputed ones (on their way back
    to the L1). Proposed and funding channels are left out: ``list-channels`` shows them."""
    phases = node.funds_by_phase()
    closing: dict[str, dict[str, int]] = {}
    for phase in ("closing", "disputed"):
        for asset, row in phases.get(phase, {}).items():
            into = closing.setdefault(asset, {"ours": 0, "theirs": 0, "locked": 0})
            for key, value in row.items():
                into[key] += value
    result: dict[str, Any] = {"channels": phases.get("open", {}), "closing": closing}
    try:
        result["l1"] = await _l1_balances(node)
    except (ChannelsError, trio.TooSlowError) as exc:
        result["l1"] = None  # unknown, not zero
        result["l1_error"] = str(exc) or "the L1 did not answer in time"
    return result


@method("stop")
async def _stop(node: Node, p: Params) -> dict[str, Any]:
    return {"stopping": True}  # the connection handler sets ``node.stopped`` once this is sent


# --- multi-hop payments: invoice, pay, keysend, route, graph, set-fees, list-forwards ------------
# The methods behind channels/frontend/hop_commands.py, thin over ``node.payments``
# (channels/node/payments.py); list-payments adds the multi-hop entries through ``_hop_payments``.

MAX_PAY_WAIT = 500  # seconds a pay or keysend may be told to wait (the CLI client waits 600)
MAX_GRAPH_CHANNELS_LISTED = 10_000  # channels a graph answer lists; num_channels counts them all
_HOP_STATUS = {"succeeded": "complete", "paid": "complete", "settled": "complete"}  # list-payments' words


def _payment_result(node: Node, record: Any) -> dict[str, Any]:
    result: dict[str, Any] = node.payments.payment_json(record)
    return result


def _pay_wait(p: Params) -> float:
    from ..node.payments import PAY_TIMEOUT as HOP_PAY_TIMEOUT

    return float(p.integer("timeout", int(HOP_PAY_TIMEOUT), maximum=MAX_PAY_WAIT))


@method("invoice", "amount", "description", "expiry")
async def _invoice(node: Node, p: Params) -> dict[str, Any]:
    """A signed invoice to this node; no ``amount``: the payer chooses it."""
    amount = p.integer("amount", maximum=MAX_AMOUNT) if p.has("amount") else None
    description = p._raw.get("description", "")
    if not isinstance(description, str):
        raise InvalidParams("description must be a string")
    text, record = await node.payments.create_invoice(amount, description=description,
                                                      expiry=p.integer("expiry", 3600))
    return {"invoice": text, "payment_hash": record.payment_hash.hex(), "amount": record.amount,
            "asset": record.asset, "description": record.description, "expires_at": record.expires_at}


@method("pay", "invoice", "amount", "max_fee", "timeout")
async def _pay_invoice(node: Node, p: Params) -> dict[str, Any]:
    """Pay an invoice over one or more hops: ``status`` succeeded, failed, or pending after ``timeout``
    (paying the same invoice again waits for it, or returns it: never a second payment)."""
    amount = p.integer("amount", maximum=MAX_AMOUNT) if p.has("amount") else None
    max_fee = p.integer("max_fee", minimum=0, maximum=MAX_AMOUNT) if p.has("max_fee") else None
    record = await node.payments.pay_invoice(p.text("invoice"), amount=amount, max_fee=max_fee,
                                             timeout=_pay_wait(p))
    return _payment_result(node, record)


@method("keysend", "peer_id", "amount", "max_fee", "timeout")
async def _keysend(node: Node, p: Params) -> dict[str, Any]:
    peer_id = p.text("peer_id")
    if not _PEER_ID.match(peer_id):
        raise InvalidParams(f"peer_id {peer_id[:100]!r} is not a peer id (base58, e.g. 12D3KooW...)")
    max_fee = p.integer("max_fee", minimum=0, maximum=MAX_AMOUNT) if p.has("max_fee") else None
    record = await node.payments.keysend(peer_id, p.integer("amount", maximum=MAX_AMOUNT), max_fee=max_fee,
                                         timeout=_pay_wait(p))
    return _payment_result(node, record)


@method("route", "peer_id", "amount")
async def _route(node: Node, p: Params) -> dict[str, Any]:
    """Candidate routes to a peer, cheapest first, and why the first was chosen (nothing is paid)."""
    peer_id = p.text("peer_id")
    if not _PEER_ID.match(peer_id):
        raise InvalidParams(f"peer_id {peer_id[:100]!r} is not a peer id (base58, e.g. 12D3KooW...)")
    result: dict[str, Any] = node.payments.candidates(peer_id, p.integer("amount", maximum=MAX_AMOUNT))
    return {"peer_id": peer_id, **result}


@method("graph")
async def _graph(node: Node, p: Params) -> dict[str, Any]:
    """The channel graph the node routes over (what gossip told it), one entry per channel."""
    from ..invoice.peerid import peer_id_of

    graph = node.payments.graph()
    channels: dict[bytes, dict[str, Any]] = {}
    for edge in graph.edges:
        entry = channels.get(edge.channel_id)
        if entry is None:
            if len(channels) >= MAX_GRAPH_CHANNELS_LISTED:
                continue
            low, high = sorted((edge.source, edge.target))
            entry = channels[edge.channel_id] = {
                "channel_id": edge.channel_id.hex(), "node1": peer_id_of(low), "node2": peer_id_of(high),
                "node1_key": low.hex(), "node2_key": high.hex(), "capacity": edge.capacity, "directions": []}
        entry["directions"].append({
            "direction": edge.direction, "source": peer_id_of(edge.source), "base_fee": edge.base_fee,
            "fee_ppm": edge.fee_ppm, "expiry_delta": edge.expiry_delta, "htlc_minimum": edge.htlc_minimum,
            "htlc_maximum": edge.htlc_maximum, "enabled": edge.enabled})
    result = {"num_nodes": graph.num_nodes, "num_channels": graph.num_channels, "channels": list(channels.values()),
              "truncated": graph.num_channels > len(channels)}
    if node.gossip is not None:  # accepted and dropped messages by kind and reason
        result["gossip"] = node.gossip.service.stats()
    return result


@method("set-fees", "channel_id", "base", "ppm", "expiry_delta", "htlc_minimum", "htlc_maximum", "enabled")
async def _set_fees(node: Node, p: Params) -> dict[str, Any]:
    """What forwarding out of one of our channels costs; parameters left out keep their value."""
    cid = node.find_channel(p.text("channel_id"))

    def optional(name: str) -> int | None:
        return p.integer(name, minimum=0, maximum=MAX_AMOUNT) if p.has(name) else None

    enabled = p.flag("enabled") if p.has("enabled") else None
    policy = await node.payments.set_fees(cid, base=optional("base"), ppm=optional("ppm"),
                                          expiry_delta=optional("expiry_delta"),
                                          htlc_minimum=optional("htlc_minimum"),
                                          htlc_maximum=optional("htlc_maximum"), enabled=enabled)
    return {"channel_id": cid.hex(), "base_fee": policy.base_fee, "fee_ppm": policy.fee_ppm,
            "expiry_delta": policy.expiry_delta, "htlc_minimum": policy.htlc_minimum,
            "htlc_maximum": policy.htlc_maximum, "enabled": policy.enabled}


@method("list-forwards", "limit")
async def _list_forwards(node: Node, p: Params) -> dict[str, Any]:
    """Locks we forwarded, newest first, and the fees the settled ones earned."""
    limit = min(p.integer("limit", MAX_PAYMENTS_LISTED), MAX_PAYMENTS_LISTED)
    return {"forwards": node.payments.list_forwards(limit), "fees_earned": node.payments.fees_earned()}


def _hop_payments(node: Node, limit: int) -> list[dict[str, Any]]:
    """list-payments' multi-hop entries: ``out`` (our payments), ``in`` (invoices and keysends paid
    to us) and ``forwarded`` (with the fee earned), in the keys of the channel payments."""
    from ..forwarding.records import Forward, InvoiceRecord, PaymentRecord, ReceivedPart, SentPart

    hops = node.payments
    first_channel: dict[bytes, bytes] = {}  # payment hash -> a channel its parts used (a settled one first)
    for part in reversed(hops.records(SentPart, limit=limit)):
        if part.status == "succeeded" or part.payment_hash not in first_channel:
            first_channel[part.payment_hash] = part.channel_id
    for got in reversed(hops.records(ReceivedPart, limit=limit)):
        if got.status == "settled" or got.hashlock not in first_channel:
            first_channel[got.hashlock] = got.channel_id

    def entry(key: bytes, direction: str, status: str, amount: int, asset: str, channel: bytes, when: int,
              detail: str, **more: Any) -> dict[str, Any]:
        return {"payment_id": key.hex(), "payment_hash": key.hex(), "direction": direction, "kind": "multihop",
                "status": _HOP_STATUS.get(status, status), "amount": amount, "asset": asset,
                "channel_id": channel.hex(), "time": when, "detail": detail, "version": None, **more}

    out = []
    for pay in hops.records(PaymentRecord, limit=limit):
        what = "keysend" if pay.keysend else "invoice"
        detail = (f"{what} to {pay.payee}, fee {pay.fee_paid}" if pay.status == "succeeded"
                  else f"{what} to {pay.payee}: {pay.failure or pay.status}")
        out.append(entry(pay.payment_hash, "out", pay.status, pay.amount, pay.asset,
                         first_channel.get(pay.payment_hash, b""), pay.created, detail, fee=pay.fee_paid,
                         route=list(pay.route), peer_id=pay.payee))
    for inv in hops.records(InvoiceRecord, status="paid", limit=limit):
        out.append(entry(inv.payment_hash, "in", inv.status, inv.received, inv.asset,
                         first_channel.get(inv.payment_hash, b""), inv.paid_at,
                         inv.description if inv.description else "invoice", fee=0))
    for fwd in hops.records(Forward, limit=limit):
        fee = fwd.fee if fwd.status == "settled" else 0
        detail = f"{fwd.in_channel.hex()[:16]} -> {fwd.out_channel.hex()[:16]}, fee {fee}"
        if fwd.failure:
            detail += f": {fwd.failure}"
        out.append(entry(fwd.hashlock, "forwarded", fwd.status, fwd.amount_out, fwd.asset, fwd.in_channel,
                         fwd.created, detail, fee=fee, out_channel_id=fwd.out_channel.hex()))
    return out


# --- events: a page of the log, or a subscription (channels.node.events) -------------------------

EVENT_PARAMS = ("since", "follow", "limit")
EVENTS_PAGE = 1000  # events per answer with follow=false unless ``limit`` says otherwise
MAX_EVENTS_PAGE = 10_000  # the most one answer carries (``more``: ask again with since=cursor)


@method("events", *EVENT_PARAMS)
async def _events(node: Node, p: Params) -> dict[str, Any]:
    """``follow=false``: events after ``since`` (default: the oldest kept), at most ``limit``.
    ``cursor`` is the last one returned (or ``since``): pass it as ``since`` for the next page."""
    if p.flag("follow", True):
        raise InvalidParams("follow=true needs a request line of its own with an id (not in a batch, not a "
                            "notification); or pass follow=false for one page")
    since, limit = p.optional_integer("since", minimum=0), min(p.integer("limit", EVENTS_PAGE), MAX_EVENTS_PAGE)
    events = node.read_events(since, limit=limit + 1)
    more = len(events) > limit
    events = events[:limit]
    cursor = events[-1].cursor if events else since if since is not None else node.last_event_cursor
    return {"events": [e.as_json() for e in events], "cursor": cursor, "more": more}


def _subscription(line: bytes) -> tuple[Any, Any] | None:
    """``(id, params)`` of a following ``events`` request, whose connection becomes its stream;
    None for any other line (answered the usual way, errors included)."""
    if b"events" not in line:  # cheap: most lines are never parsed twice
        return None
    request, error = _parse(line)
    if error is not None or not isinstance(request, dict) or request.get("jsonrpc") != "2.0" \
            or request.get("method") != "events" or "id" not in request or not _valid_id(request["id"]):
        return None
    try:
        follow = Params(request.get("params"), EVENT_PARAMS).flag("follow", True)
    except InvalidParams:
        return None
    return (request["id"], request.get("params")) if follow else None


async def _until_hangup(stream: trio.SocketStream, scope: trio.CancelScope) -> None:
    """Read (and drop) whatever the client sends until it closes: a subscriber that went away
    is noticed even while no event comes."""
    try:
        while await stream.receive_some(65536):
            pass
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    scope.cancel()


async def _serve_events(node: Node, stream: trio.SocketStream, rid: Any, raw: Any) -> bool:
    """Answer a subscription, then send each event after ``since`` (default: from now on) as an
    ``event`` notification until the client hangs up. A reader that falls more than the log's
    bound behind gets an ``EventsLost`` error answer and the stream ends. False: refused (the
    error is answered and the connection serves requests as before)."""
    try:
        p = Params(raw, EVENT_PARAMS)
        p.integer("limit", EVENTS_PAGE)  # checked as for a page, unused: a stream has no pages
        feed = node.events(p.optional_integer("since", minimum=0))
    except ChannelsError as exc:
        code, text = (INVALID_PARAMS, f"events: {exc}") if isinstance(exc, InvalidParams) else (APP_ERROR, str(exc))
        await _send(stream, {"jsonrpc": "2.0", "id": rid, "error": _error(code, text, type(exc).__name__)})
        return False
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_until_hangup, stream, nursery.cancel_scope)
        try:
            await _send(stream, {"jsonrpc": "2.0", "id": rid, "result": {"following": True, "cursor": feed.cursor}})
            async for event in feed:
                await _send(stream, {"jsonrpc": "2.0", "method": "event", "params": event.as_json()})
        except ChannelsError as exc:  # EventsLost: fell too far behind (or the store failed)
            try:
                await _send(stream, {"jsonrpc": "2.0", "id": rid,
                                     "error": _error(APP_ERROR, str(exc), type(exc).__name__)})
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        nursery.cancel_scope.cancel()
    return True


# --- server --------------------------------------------------------------------------------------


def _error(code: int, message: str, type_: str | None = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message}
    if type_ is not None:
        err["data"] = {"type": type_}
    return err


def _valid_id(rid: Any) -> bool:
    """JSON-RPC 2.0: a string, a number without a fractional part, or null."""
    if rid is None or isinstance(rid, str):
        return True
    if isinstance(rid, bool):
        return False
    return isinstance(rid, int) or (isinstance(rid, float) and math.isfinite(rid) and rid.is_integer())


async def handle_request(node: Node, request: Any) -> dict[str, Any] | None:
    """Answer one decoded request object (None for a notification). Never raises."""
    if not isinstance(request, dict) or request.get("jsonrpc") != "2.0" or not isinstance(request.get("method"), str):
        return {"jsonrpc": "2.0", "id": None, "error": _error(INVALID_REQUEST, "not a JSON-RPC 2.0 request")}
    rid = request.get("id")
    if not _valid_id(rid):
        return {"jsonrpc": "2.0", "id": None,
                "error": _error(INVALID_REQUEST, "id must be a string, an integer or null")}
    name = request["method"]
    entry = METHODS.get(name)
    if entry is None:
        error = _error(METHOD_NOT_FOUND, f"unknown method {name!r}; methods: {', '.join(sorted(METHODS))}")
    else:
        allowed, fn = entry
        try:
            result = await fn(node, Params(request.get("params"), allowed))
        except InvalidParams as exc:
            error = _error(INVALID_PARAMS, f"{name}: {exc}", type(exc).__name__)
        except ChannelsError as exc:
            error = _error(APP_ERROR, str(exc) or type(exc).__name__, type(exc).__name__)
        except trio.TooSlowError:
            error = _error(APP_ERROR, f"{name} timed out; see list-channels for the current state", "Timeout")
        except Exception as exc:
            log.exception("rpc %s failed", name)
            error = _error(INTERNAL_ERROR, f"internal error: {type(exc).__name__}: {exc}", type(exc).__name__)
        else:
            return {"jsonrpc": "2.0", "id": rid, "result": result} if "id" in request else None
    return {"jsonrpc": "2.0", "id": rid, "error": error} if "id" in request else None


class _NonFinite(ValueError):
    """NaN or +-Infinity in a request: not JSON (RFC 8259), and unanswerable in strict JSON."""


def _reject_constant(name: str) -> Any:
    raise _NonFinite(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999
        raise _NonFinite(f"{text[:40]} is out of range")
    return value


# A JSON string, or an unterminated one up to the end: a match never fails once it has found
# its opening quote, so the scan is linear (a pattern that can fail would retry at every later
# quote: quadratic). Exact for valid JSON; invalid JSON fails to parse, and the parser never
# gets deeper than the valid prefix, which this reads as the parser does. Removing strings
# leaves only structural brackets, whose running sum (+1 open, -1 close) is the nesting depth.
_STRING = re.compile(rb'"(?:[^"\\]+|\\.|\\\Z)*(?:"|\Z)', re.DOTALL)
_NOT_BRACKET = bytes(sorted(set(range(256)) - set(b"[]{}")))
_BRACKET_STEP = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # as signed bytes: +1, +1, -1, -1


def nesting_depth(line: bytes) -> int:
    """The deepest array/object nesting in a JSON text, in linear time without recursion."""
    steps = _STRING.sub(b"", line).translate(_BRACKET_STEP, _NOT_BRACKET)
    return max(accumulate(memoryview(steps).cast("b"), initial=0))


def _parse(line: bytes) -> tuple[Any, dict[str, Any] | None]:
    """The decoded request, or the error to answer instead."""
    if nesting_depth(line) > MAX_DEPTH:
        return None, _error(INVALID_REQUEST, f"request nested deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(line, parse_constant=_reject_constant, parse_float=_finite_float), None
    except _NonFinite as exc:
        return None, _error(INVALID_REQUEST, f"non-finite number in request: {exc}")
    except RecursionError:  # unreachable behind the depth check; kept as a backstop
        return None, _error(INVALID_REQUEST, f"request nested deeper than {MAX_DEPTH} levels")
    except (ValueError, UnicodeDecodeError) as exc:
        return None, _error(PARSE_ERROR, f"invalid JSON: {exc}")


async def _answer(node: Node, line: bytes) -> tuple[Any, bool]:
    """The response to one request line (None: nothing to send) and whether it asked to stop."""
    request, error = _parse(line)
    if error is not None:
        return {"jsonrpc": "2.0", "id": None, "error": error}, False
    if isinstance(request, list):  # a batch
        if not request:
            return {"jsonrpc": "2.0", "id": None, "error": _error(INVALID_REQUEST, "empty batch")}, False
        if len(request) > MAX_BATCH:
            error = _error(INVALID_REQUEST, f"batch of {len(request)} calls; at most {MAX_BATCH}")
            return {"jsonrpc": "2.0", "id": None, "error": error}, False
        answers = [await handle_request(node, r) for r in request]
        stop = any(isinstance(r, dict) and r.get("method") == "stop" for r in request)
        return [a for a in answers if a is not None] or None, stop
    response = await handle_request(node, request)
    return response, isinstance(request, dict) and request.get("method") == "stop" and "error" not in (response or {})


async def _serve_connection(node: Node, stream: trio.SocketStream) -> None:
    """One client connection; a bug it triggers ends this connection, never the server."""
    try:
        await _serve_requests(node, stream)
    except Exception:
        log.exception("rpc connection failed; closed")


async def _serve_requests(node: Node, stream: trio.SocketStream) -> None:
    buffer = bytearray()
    async with stream:
        while True:
            newline = buffer.find(b"\n")
            if newline < 0:
                if len(buffer) > MAX_REQUEST:
                    # No way to find the next request boundary: answer and hang up.
                    error = _error(INVALID_REQUEST, f"request larger than {MAX_REQUEST} bytes")
                    await _send(stream, {"jsonrpc": "2.0", "id": None, "error": error})
                    return
                try:
                    chunk = await stream.receive_some(65536)
                except trio.BrokenResourceError:
                    return
                if not chunk:
                    return
                buffer += chunk
                continue
            line = bytes(buffer[:newline])
            del buffer[:newline + 1]
            if not line.strip():
                continue
            if len(line) > MAX_REQUEST:
                response: Any = {"jsonrpc": "2.0", "id": None,
                                 "error": _error(INVALID_REQUEST, f"request larger than {MAX_REQUEST} bytes")}
                stop = False
            else:
                subscription = _subscription(line)
                if subscription is not None:
                    try:
                        if await _serve_events(node, stream, *subscription):
                            return  # the connection was the subscription's stream
                    except (trio.BrokenResourceError, trio.ClosedResourceError):
                        return
                    continue
                response, stop = await _answer(node, line)
            if response is not None:
                try:
                    await _send(stream, response)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    return
            if stop:
                log.info("stop requested over rpc")
                node.stopped.set()


def encode_response(response: Any) -> bytes:
    """Strict JSON (no NaN/Infinity); a result that cannot be encoded becomes an internal error."""
    try:
        return json.dumps(response, separators=(",", ":"), allow_nan=False).encode() + b"\n"
    except (ValueError, TypeError, RecursionError) as exc:
        log.error("rpc response not encodable: %s", exc)
        rid = response.get("id") if isinstance(response, dict) and _valid_id(response.get("id")) else None
        error = _error(INTERNAL_ERROR, f"internal error: response not encodable: {exc}", type(exc).__name__)
        return json.dumps({"jsonrpc": "2.0", "id": rid, "error": error}, separators=(",", ":")).encode() + b"\n"


async def _send(stream: trio.SocketStream, response: Any) -> None:
    await stream.send_all(encode_response(response))


def _socket_alive(path: Path) -> bool:
    """Whether something accepts connections on ``path`` (a stale file refuses them)."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(2.0)
        probe.connect(str(path))
    except FileNotFoundError:
        return False
    except OSError as exc:
        if exc.errno in (errno.ECONNREFUSED, errno.ENOENT, errno.ENOTSOCK):
            return False
        raise ConfigError(f"cannot check {path}: {exc.strerror or exc}") from None
    finally:
        probe.close()
    return True


def claim_socket_path(path: Path) -> None:
    """Refuse if a live daemon answers on ``path``; remove a stale socket file."""
    check_socket_path(path)
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ConfigError(f"{path} exists and is not a socket; remove it")
    if _socket_alive(path):
        raise NodeAlreadyRunning(f"a node is already running in {path.parent} (stop it with: "
                                 f"channels --data-dir {path.parent} stop)")
    path.unlink(missing_ok=True)


def _bind(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)  # created 0600 at once: no window where others may connect
    try:
        sock.bind(str(path))
    except OSError:
        sock.close()
        raise
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    sock.listen(256)  # scripts fire many calls at once
    return sock


async def serve_rpc(node: Node, path: Path | str, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    """Serve the control socket until cancelled; ``started()`` once it accepts connections.

    A ``stop`` request is answered, then ``node.stopped`` is set: the daemon shuts down."""
    path = Path(path)
    claim_socket_path(path)
    listener = trio.SocketListener(trio.socket.from_stdlib_socket(_bind(path)))
    try:
        async with listener, trio.open_nursery() as nursery:
            _start_games(node)
            task_status.started()
            log.info("rpc listening on %s", path)
            await trio.serve_listeners(lambda stream: _serve_connection(node, stream), [listener],
                                       handler_nursery=nursery)
    finally:
        path.unlink(missing_ok=True)
