"""Node commands: ``channels node start`` (the daemon) and thin clients of its control socket.

Public contract (extend, never rename): ``getinfo``, ``connect MULTIADDR``,
``open PEER_ID AMOUNT [--asset A] [--challenge-duration S]``, ``pay-direct CHANNEL_ID AMOUNT``,
``list-channels``, ``close CHANNEL_ID [--force]``, ``stop``, ``health``, ``list-peers``,
``disconnect PEER_ID``, ``list-payments``, ``list-funds``; each is the JSON-RPC method of the
same name. Client commands import no libp2p: they start in a fraction of a second.

The node's data dir is ``--data-dir``, else ``$CHANNELS_DATA_DIR``, else ``~/.channels``.
``disconnect`` drops every connection to the peer at once; a peer whose channels need it
(open, closing or disputed ones, or our proposal awaiting its answer) is redialled by
either side within seconds, so for such a peer it resets the connection
(``reconnects: true``); close its channels first to end it for good.

``health`` is for scripts and monitors: it prints ``ok`` and exits 0 when the node reports
no alarms, prints one ``NAME: MESSAGE`` line per alarm and exits 1 when it does, and exits 2
(one ``error: ...`` line on stderr) when it cannot tell: no node running, no answer, bad usage.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from ..errors import ChannelsError, ConfigError
from .cli import amount, emit, positive_integer
from .control_client import call_sync
from .formatting import format_amount, format_amounts, format_deadline, format_fields, format_time

if TYPE_CHECKING:
    from ..node import Node

ENV_DATA_DIR = "CHANNELS_DATA_DIR"
ENV_DEVNET = "CHANNELS_DEVNET"  # the devnet multiaddr of ``node start``: after the flags, before config.toml
DEFAULT_DIR_NAME = ".channels"  # under the home directory
Human = Callable[[Any], str]
HEALTHY, ALARMED, UNKNOWN = 0, 1, 2  # exit statuses of ``channels health``


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    from .cli import command_group

    _, dev_cmds = command_group(sub, common, "dev", "developer commands of a node started with --dev (it may cheat)")
    help_stale = "register an older co-signed state on the L1, as a cheater would, and stop defending the channel"
    p = _one_line(dev_cmds.add_parser("register-stale", parents=[common], help=help_stale, description=help_stale))
    p.add_argument("channel_id", metavar="CHANNEL_ID", help="hex id or a unique prefix")
    p.add_argument("version", metavar="VERSION", type=int, help="the older version to register (seen since start)")
    p.set_defaults(func=_rpc_command("dev-register-stale", lambda a: {"channel_id": a.channel_id,
                                                                         "version": a.version},
                                     lambda r: f"registered stale version {r['registered_version']} of "
                                               f"{r['channel_id']}; this node no longer defends it"))

    _, cmds = command_group(sub, common, "node", "run a channel node")
    p = _one_line(cmds.add_parser("start", parents=[common], help="run a node in the foreground until stopped"))
    p.add_argument("--listen", action="append", metavar="MULTIADDR",
                   help="listen address (repeatable; default: listen in config.toml, else /ip4/127.0.0.1/tcp/0)")
    p.add_argument("--devnet", metavar="MULTIADDR",
                   help=f"the devnet daemon's multiaddr (default: ${ENV_DEVNET}, else devnet in config.toml)")
    p.add_argument("--devnet-dir", metavar="DIR",
                   help="the devnet daemon's data dir (reads its devnet.addr; default: ~/.channels/devnet)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                   help="least severe log records written to stderr and DIR/node.log (default: info)")
    p.add_argument("--log-format", default="text", choices=["text", "json"],
                   help="log lines as text, or as JSON objects with time, level, logger, message (default: text)")
    p.add_argument("--metrics", metavar="HOST:PORT",
                   help="serve Prometheus metrics at http://HOST:PORT/metrics (off by default; unauthenticated: "
                        "use a loopback address or a firewalled one)")
    p.add_argument("--apps", action="append", metavar="MODULE:ATTR",
                   help="also play this channel app (game rules), e.g. mygame.rules:TicTacToe (repeatable; "
                        "the devnet must be started with the same)")
    p.add_argument("--dev", action="store_true", default=None,
                   help="developer mode: enable the dev commands, with which this node can cheat (never with "
                        "funds that matter)")
    p.set_defaults(func=_start)

    info = "this node: ids, addresses, L1 account and balances (exit 1, with one error line, if the L1 is unreachable)"
    p = _one_line(sub.add_parser("getinfo", parents=[common], help=info, description=info))
    p.set_defaults(func=_getinfo)
    p = _client(sub, common, "connect", "connect to a peer", lambda r: f"connected to {r['peer_id']}",
                params=lambda a: {"address": a.address})
    p.add_argument("address", metavar="MULTIADDR", help="full multiaddr ending in /p2p/PEER_ID")
    p = _client(sub, common, "open", "open a channel funded by us; returns once funded", _human_channel,
                params=lambda a: _drop_none(peer_id=a.peer_id, amount=a.amount, asset=a.asset,
                                            challenge_duration=a.challenge_duration, app=a.app,
                                            peer_amount=a.peer_amount))
    p.add_argument("peer_id", metavar="PEER_ID", help="the peer to open with (connect first)")
    p.add_argument("amount", metavar="AMOUNT", type=amount, help="our deposit, in units of the asset")
    p.add_argument("--asset", help="asset to fund with (default: native)")
    p.add_argument("--challenge-duration", type=positive_integer, metavar="SECONDS",
                   help="challenge window of this channel (default: challenge_duration in config.toml)")
    p.add_argument("--app", metavar="APP_ID", help="a game channel of this app (default: payment); both nodes "
                                                   "and the devnet must play it (--apps)")
    p.add_argument("--peer-amount", type=amount, metavar="AMOUNT",
                   help="the peer's stake, funded by its node if at most its auto_accept_funding (default: 0)")
    p = _client(sub, common, "move", "play an app move (in a disputed channel: force it on the L1)",
                lambda r: f"moved; {_human_channel(r)}",
                params=lambda a: {"channel_id": a.channel_id, "payload": a.payload})
    p.add_argument("channel_id", metavar="CHANNEL_ID", help="hex id or a unique prefix")
    p.add_argument("payload", metavar="PAYLOAD", help="the move, in hex, as the channel's app reads it")
    p = _client(sub, common, "pay-direct", "pay the peer of a channel", _human_payment,
                params=lambda a: _drop_none(channel_id=a.channel_id, amount=a.amount, payment_id=a.payment_id))
    p.add_argument("channel_id", metavar="CHANNEL_ID", help="hex id or a unique prefix")
    p.add_argument("amount", metavar="AMOUNT", type=amount, help="amount to pay, in units of the asset")
    p.add_argument("--payment-id", metavar="HEX", help="idempotency key: a retry with the same id never pays twice")
    # Hash-time locks inside one channel (proto/02 section 5.5); forwarding builds on them.
    p = _client(sub, common, "add-lock", "lock an amount to the peer until EXPIRY, payable with a preimage",
                lambda r: f"lock {r['lock_id']} added; {_human_channel(r)}",
                params=lambda a: _drop_none(channel_id=a.channel_id, amount=a.amount, hashlock=a.hashlock,
                                            expiry=a.expiry, lock_id=a.lock_id))
    p.add_argument("channel_id", metavar="CHANNEL_ID", help="hex id or a unique prefix")
    p.add_argument("amount", metavar="AMOUNT", type=amount, help="amount to lock, in units of the asset")
    p.add_argument("hashlock", metavar="HASHLOCK", help="SHA-256 of the preimage, 64 hex digits")
    p.add_argument("expiry", metavar="EXPIRY", type=positive_integer,
                   help="L1 time (unix seconds) after which the lock returns to us unless fulfilled")
    p.add_argument("--lock-id", metavar="HEX", help="the lock's id, 1..32 bytes (default: chosen by the node)")
    p = _client(sub, common, "fulfill-lock", "settle a lock paid to us by revealing its preimage",
                lambda r: f"lock fulfilled; {_human_channel(r)}",
                params=lambda a: {"channel_id": a.channel_id, "lock_id": a.lock_id, "preimage": a.preimage})
    p.add_argument("channel_id", metavar="CHANNEL_ID", help="hex id or a unique prefix")
    p.add_argument("lock_id", metavar="LOCK_ID", help="the lock's id in hex")
    p.add_argument("preimage", metavar="PREIMAGE", help="the secret whose SHA-256 is the hashlock, in hex")
    p = _client(sub, common, "fail-lock", "give a lock paid to us back to its payer",
                lambda r: f"lock failed back; {_human_channel(r)}",
                params=lambda a: {"channel_id": a.channel_id, "lock_id": a.lock_id, "reason": a.reason})
    p.add_argument("channel_id", metavar="CHANNEL_ID", help="hex id or a unique prefix")
    p.add_argument("lock_id", metavar="LOCK_ID", help="the lock's id in hex")
    p.add_argument("--reason", type=int, default=0, metavar="CODE", help="16-bit failure code sent to the payer")
    _client(sub, common, "list-channels", "channels and their balances", _human_channels)
    p = _client(sub, common, "close", "close a channel (cooperative unless --force)", _human_close,
                params=lambda a: {"channel_id": a.channel_id, "force": a.force})
    p.add_argument("channel_id", metavar="CHANNEL_ID", help="hex id or a unique prefix")
    p.add_argument("--force", action="store_true", help="register the latest state on the L1 instead")
    _client(sub, common, "stop", "stop the node", lambda r: "node stopping")
    _add_operator_commands(sub, common)
    _add_events_command(sub, common)
    health = "exit 0 and print ok if the node reports no alarms; else print them and exit 1 (2: no answer)"
    p = _one_line(sub.add_parser("health", parents=[common], help=health, description=health))
    p.set_defaults(func=_health)


# --- argument helpers ----------------------------------------------------------------------------


def _one_line(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Bad arguments give one ``error: ...`` line (and exit 2), like every other failure."""

    def error(message: str) -> NoReturn:
        print(f"error: {message} (see: {parser.prog} --help)", file=sys.stderr)
        sys.exit(2)

    parser.error = error  # type: ignore[method-assign]
    return parser


def _drop_none(**kwargs: Any) -> dict[str, Any]:
    return {k: v for k, v in kwargs.items() if v is not None}


def default_home() -> Path:
    """``~/.channels``: the data dir when neither ``--data-dir`` nor ``$CHANNELS_DATA_DIR`` is given."""
    try:
        return Path.home() / DEFAULT_DIR_NAME
    except (RuntimeError, KeyError):  # no $HOME and no passwd entry
        raise ConfigError(f"which node? no home directory for the default ~/{DEFAULT_DIR_NAME}; give --data-dir "
                          f"DIR (or set ${ENV_DATA_DIR})") from None


def data_dir(args: argparse.Namespace) -> Path:
    """``--data-dir``, else ``$CHANNELS_DATA_DIR``, else ``~/.channels``."""
    value = getattr(args, "data_dir", None) or os.environ.get(ENV_DATA_DIR)
    return (Path(value) if value else default_home()).expanduser().resolve()


def _client(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser,
            name: str, help: str, human: Human,
            params: Callable[[argparse.Namespace], dict[str, Any]] | None = None) -> argparse.ArgumentParser:
    """A command that is one RPC call of the same name."""
    p = _one_line(sub.add_parser(name, parents=[common], help=help, description=help))
    p.set_defaults(func=_rpc_command(name, params, human))
    return p


def _rpc_command(method: str, params: Callable[[argparse.Namespace], dict[str, Any]] | None,
                 human: Human) -> Callable[[argparse.Namespace], int]:
    """The handler of a command that is one RPC call: its result printed, or one error line."""
    def run(args: argparse.Namespace) -> int:
        result = call_sync(data_dir(args) / "rpc.sock", method, params(args) if params else {})
        emit(args, result, human)
        return 0

    return run


def _getinfo(args: argparse.Namespace) -> int:
    """The node's view, printed whole; an unreachable L1 also gives one error line and exit 1
    (scripts must not read an unknown balance as a known one)."""
    result = call_sync(data_dir(args) / "rpc.sock", "getinfo", {})
    emit(args, result, _human_info)
    if result.get("l1_error"):
        print(f"error: cannot reach the L1: {result['l1_error']}", file=sys.stderr)
        return 1
    return 0


def _health(args: argparse.Namespace) -> int:
    try:
        result = call_sync(data_dir(args) / "rpc.sock", "health", {})
    except ChannelsError as exc:  # not running, no answer, no data dir: health unknown
        print(f"error: {exc}", file=sys.stderr)
        return UNKNOWN
    emit(args, result, _human_health)
    return HEALTHY if result.get("healthy") and not result.get("alarms") else ALARMED


# --- human output --------------------------------------------------------------------------------


def _human_health(r: dict[str, Any]) -> str:
    alarms = r.get("alarms") or {}
    if r.get("healthy") and not alarms:
        return "ok"
    return "\n".join(f"{name}: {message}" for name, message in sorted(alarms.items())) or "unhealthy"


def _human_info(r: dict[str, Any]) -> str:
    known = r.get("l1_balances") is not None and not r.get("l1_error")  # an error means unknown, never 0
    balances = format_amounts(r.get("l1_balances") or {})
    lines = [f"peer id:     {r['peer_id']}"]
    lines += [f"address:     {a}" for a in r.get("addresses", [])]
    lines += [f"L1 account:  {r['l1_account']}", f"L1 balance:  {balances if known else 'unknown'}"]
    if r.get("l1_error"):
        lines.append(f"L1 error:    {r['l1_error']}")
    lines += [f"channels:    {r['num_channels']}", f"chain id:    {r.get('chain_id')}"]
    if "healthy" in r:  # older daemons do not report it
        alarms = r.get("alarms") or {}
        lines += [f"alarm:       {name}: {message}" for name, message in sorted(alarms.items())]
        lines.append(f"health:      {'ok' if r['healthy'] and not alarms else 'ALARM'}")
    return "\n".join(lines)


def _human_channel(c: dict[str, Any]) -> str:
    return (f"{c['channel_id']}  {c['state']:<8}  v{c['version']:<4}  ours {format_amount(c['balance'], c['asset'])}"
            f" / theirs {format_amount(c['peer_balance'], c['asset'])}  peer {c['peer_id']}")


def _human_channels(r: dict[str, Any]) -> str:
    return "\n".join(_human_channel(c) for c in r["channels"]) or "no channels"


def _human_payment(r: dict[str, Any]) -> str:
    asset = r.get("asset", "native")  # older daemons did not say; their channels were native-only
    balance = f"; balance {format_amount(r['balance'], asset)}" if "balance" in r else ""
    return f"paid {format_amount(r['amount'], asset)} on {r['channel_id']} (version {r['version']}{balance})"


def _human_close(r: dict[str, Any]) -> str:
    if r["state"] == "settled":
        return f"channel {r['channel_id']} settled: {format_amount(r['balance'], r['asset'])} back to our L1 account"
    deadline = f", challenge window ends {format_deadline(r['deadline'])}" if r.get("deadline") else ""
    return f"channel {r['channel_id']} is {r['state']}{deadline}"


# --- operator commands: list-peers, disconnect, list-payments, list-funds -----------------------


def _add_operator_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser],
                           common: argparse.ArgumentParser) -> None:
    _client(sub, common, "list-peers", "peers: connected ones and those we have channels with", _human_peers)
    p = _client(sub, common, "disconnect", "drop the connection to a peer (redialled if its channels need it)",
                _human_disconnect, params=lambda a: {"peer_id": a.peer_id})
    p.add_argument("peer_id", metavar="PEER_ID", help="the peer's id (see list-peers)")
    p = _client(sub, common, "list-payments", "payments sent and received, newest first", _human_payments,
                params=lambda a: _drop_none(limit=a.limit))
    p.add_argument("--limit", type=positive_integer, metavar="N", help="show only the newest N payments")
    _client(sub, common, "list-funds", "L1 balances and funds in channels, per asset", _human_funds)


def _human_peers(r: dict[str, Any]) -> str:
    lines = []
    for peer in r["peers"]:
        account = peer["l1_account"] or "unknown (no Init yet)"
        lines.append(f"{peer['peer_id']}  {'connected' if peer['connected'] else 'disconnected':<12}  "
                     f"channels {peer['num_channels']}  L1 account {account}")
        lines += [f"    {address}" for address in peer["addresses"]]
    return "\n".join(lines) or "no peers"


def _human_disconnect(r: dict[str, Any]) -> str:
    again = " (its channels need it: the link reconnects)" if r.get("reconnects") else ""
    return f"disconnected from {r['peer_id']}{again}"


def _human_payments(r: dict[str, Any]) -> str:
    lines = []
    for pay in r["payments"]:
        when = format_time(pay["time"]) if pay["time"] else "time unknown"
        lines.append(f"{when:<19}  {pay['direction']:<8}  {pay['status']:<8}  "
                     f"{format_amount(pay['amount'], pay['asset']):>14}  channel {pay['channel_id']}  "
                     f"payment {pay['payment_id']}  {pay['detail']}".rstrip())
    if r.get("fees_earned"):  # multi-hop forwards (channels.frontend.hop_commands)
        lines.append(f"fees earned forwarding: {r['fees_earned']}")
    return "\n".join(lines) or "no payments"


def _channel_funds(funds: dict[str, dict[str, int]]) -> list[str]:
    out = []
    for asset, row in sorted(funds.items()):
        locked = f", {format_amount(row['locked'], asset)} locked" if row.get("locked") else ""
        out.append(f"ours {format_amount(row['ours'], asset)} / theirs {format_amount(row['theirs'], asset)}{locked}")
    return out


def _human_funds(r: dict[str, Any]) -> str:
    l1 = "unknown" if r.get("l1") is None else format_amounts(r["l1"])
    fields: list[tuple[str, Any]] = [("L1 balance", l1)]
    if r.get("l1_error"):
        fields.append(("L1 error", r["l1_error"]))
    fields += [("open channels", line) for line in _channel_funds(r.get("channels") or {})] or [
        ("open channels", "none")]
    fields += [("closing", line) for line in _channel_funds(r.get("closing") or {})]
    return format_fields(fields)


# --- events: channels events [--since CURSOR] [--no-follow] (channels.node.events) ---------------


def _add_events_command(sub: argparse._SubParsersAction[argparse.ArgumentParser],
                        common: argparse.ArgumentParser) -> None:
    what = ("print the node's events (payments, channel and peer changes) as they happen, until Ctrl-C; "
            "one JSON object per line with --json")
    p = _one_line(sub.add_parser("events", parents=[common], help=what, description=what))
    p.add_argument("--since", type=_cursor, metavar="CURSOR",
                   help="print the events after this cursor first (the last one you handled: nothing is missed); "
                        "default: only new events, or with --no-follow every event the node keeps")
    p.add_argument("--no-follow", dest="follow", action="store_false",
                   help="print the events the node has and exit instead of waiting for new ones")
    p.set_defaults(func=_events)


def _cursor(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a cursor (an integer >= 0)") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is not a cursor (an integer >= 0)")
    return value


def _events(args: argparse.Namespace) -> int:
    import json

    from .control_client import SubscriptionEnded, subscribe_sync

    path = data_dir(args) / "rpc.sock"
    as_json = getattr(args, "json", False)

    def show(event: dict[str, Any]) -> None:
        print(json.dumps(event, sort_keys=True) if as_json else _human_event(event), flush=True)

    try:
        if not args.follow:
            since = args.since
            while True:  # page by page: one answer is bounded
                page = call_sync(path, "events", _drop_none(since=since, follow=False))
                for event in page["events"]:
                    show(event)
                if not page.get("more"):
                    return 0
                since = page["cursor"]
        stream = subscribe_sync(path, "events", _drop_none(since=args.since))
        try:
            last = next(stream)["cursor"]  # an error answer (a lost or unknown cursor) is raised here
            for event in stream:
                show(event)
                last = event["cursor"]
        except SubscriptionEnded:
            print(f"error: the node stopped; resume with: channels events --since {last}", file=sys.stderr)
            return 1
        finally:
            stream.close()
    except BrokenPipeError:  # the reader went away (``| head``): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return 0


def _human_event(e: dict[str, Any]) -> str:
    kind = e.get("kind", "?")
    head = f"#{e.get('cursor')}  {format_time(e.get('time'))}  {kind:<17}"
    if kind.startswith("peer_"):
        return f"{head}  peer {e.get('peer_id')}"
    if kind.startswith("payment_"):
        detail = f"version {e['version']}" if "version" in e else e.get("reason", "")
        amount = format_amount(e.get("amount"), e.get("asset")) if e.get("asset") else "unknown amount"
        return f"{head}  {amount} on channel {e.get('channel_id')}  payment {e.get('payment_id')}  {detail}".rstrip()
    extra = ""
    if kind == "channel_disputed" and e.get("deadline") is not None:
        stale = "" if e.get("ours") else " (a stale state: refuting)"
        extra = f"  window ends {format_deadline(e['deadline'])}{stale}"
    elif kind == "channel_settled" and e.get("reason"):
        extra = f"  {e['reason']}"
    return (f"{head}  channel {e.get('channel_id')}  {e.get('state')}  v{e.get('version')}  "
            f"ours {format_amount(e.get('balance'), e.get('asset'))} / theirs "
            f"{format_amount(e.get('peer_balance'), e.get('asset'))}  peer {e.get('peer_id')}{extra}")


# --- the daemon ----------------------------------------------------------------------------------


def _devnet_address(args: argparse.Namespace) -> tuple[str | None, str]:
    """The devnet given by a flag, else by ``$CHANNELS_DEVNET`` (config.toml comes after), and where from."""
    if args.devnet:
        return str(args.devnet), "--devnet"
    if args.devnet_dir:
        path = Path(args.devnet_dir).expanduser() / "devnet.addr"
        try:
            return path.read_text().strip(), f"--devnet-dir {args.devnet_dir}"
        except OSError:
            raise ConfigError(f"no devnet is running in {args.devnet_dir} ({path} is missing)") from None
    return os.environ.get(ENV_DEVNET) or None, f"${ENV_DEVNET}"


def _start(args: argparse.Namespace) -> int:
    import attrs
    import trio

    from ..node.config import load_config
    from .node_daemon import run_node_daemon, setup_logging

    no_devnet: ConfigError | None = None
    try:
        devnet, devnet_source = _devnet_address(args)
    except ConfigError as exc:  # raised after config.toml's own errors: those are found without a devnet
        devnet, devnet_source, no_devnet = None, "", exc
    config = load_config(data_dir(args), listen=tuple(args.listen) if args.listen else None, devnet=devnet,
                         metrics=args.metrics, apps=tuple(args.apps) if args.apps else None, dev=args.dev,
                         sources={"listen": "--listen", "devnet": devnet_source, "metrics": "--metrics",
                                  "apps": "--apps", "dev": "--dev"})
    if no_devnet is not None:
        raise no_devnet
    if not config.devnet:  # given nowhere: the devnet in its default dir, if one runs there
        from .devnet_commands import running_default_devnet

        config = attrs.evolve(config, devnet=running_default_devnet())
    config.data_dir.mkdir(parents=True, exist_ok=True)
    setup_logging(config.data_dir, args.log_level, log_format=args.log_format)

    def ready(node: Node) -> None:
        result = {"peer_id": node.peer_id, "addresses": node.addresses, "l1_account": node.l1_address.hex(),
                  "data_dir": str(config.data_dir), "rpc": str(config.rpc_path)}
        emit(args, result, lambda r: "\n".join([f"node {r['peer_id']} running",
                                                *(f"listening on {a}" for a in r["addresses"]),
                                                f"L1 account {r['l1_account']}",
                                                f"control: channels --data-dir {r['data_dir']} getinfo"]))
        sys.stdout.flush()

    from ..chain.devnet.client import open_remote_devnet

    trio.run(partial(run_node_daemon, config, open_ledger=open_remote_devnet, on_ready=ready))
    return 0
