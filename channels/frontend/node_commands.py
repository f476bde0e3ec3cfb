"""Node commands: ``channels node start`` (the daemon) and thin clients of its control socket.

Public contract (extend, never rename): ``getinfo``, ``connect MULTIADDR``,
``open PEER_ID AMOUNT [--asset A] [--challenge-duration S]``, ``pay-direct CHANNEL_ID AMOUNT``,
``list-channels``, ``close CHANNEL_ID [--force]``, ``stop``, ``health``; each is the JSON-RPC
method of the same name. Client commands import no libp2p: they start in a fraction of a second.

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
from .cli import emit
from .control_client import call_sync

if TYPE_CHECKING:
    from ..node import Node

ENV_DATA_DIR = "CHANNELS_DATA_DIR"
Human = Callable[[Any], str]
HEALTHY, ALARMED, UNKNOWN = 0, 1, 2  # exit statuses of ``channels health``


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    from .cli import command_group

    _, cmds = command_group(sub, common, "node", "run a channel node")
    p = _one_line(cmds.add_parser("start", parents=[common], help="run a node in the foreground until stopped"))
    p.add_argument("--listen", action="append", metavar="MULTIADDR", help="listen address (repeatable)")
    p.add_argument("--devnet", metavar="MULTIADDR", help="the devnet daemon's multiaddr")
    p.add_argument("--devnet-dir", metavar="DIR", help="the devnet daemon's data dir (reads its devnet.addr)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=_start)

    _client(sub, common, "getinfo", "this node: ids, addresses, L1 account and balances", _human_info)
    p = _client(sub, common, "connect", "connect to a peer", lambda r: f"connected to {r['peer_id']}",
                params=lambda a: {"address": a.address})
    p.add_argument("address", metavar="MULTIADDR", help="full multiaddr ending in /p2p/PEER_ID")
    p = _client(sub, common, "open", "open a channel funded by us; returns once funded", _human_channel,
                params=lambda a: _drop_none(peer_id=a.peer_id, amount=a.amount, asset=a.asset,
                                            challenge_duration=a.challenge_duration))
    p.add_argument("peer_id", metavar="PEER_ID")
    p.add_argument("amount", metavar="AMOUNT", type=_positive)
    p.add_argument("--asset", help="asset to fund with (default: native)")
    p.add_argument("--challenge-duration", type=_positive, metavar="SECONDS")
    p = _client(sub, common, "pay-direct", "pay the peer of a channel", _human_payment,
                params=lambda a: _drop_none(channel_id=a.channel_id, amount=a.amount, payment_id=a.payment_id))
    p.add_argument("channel_id", metavar="CHANNEL_ID", help="hex id or a unique prefix")
    p.add_argument("amount", metavar="AMOUNT", type=_positive)
    p.add_argument("--payment-id", metavar="HEX", help="idempotency key: a retry with the same id never pays twice")
    _client(sub, common, "list-channels", "channels and their balances", _human_channels)
    p = _client(sub, common, "close", "close a channel (cooperative unless --force)", _human_close,
                params=lambda a: {"channel_id": a.channel_id, "force": a.force})
    p.add_argument("channel_id", metavar="CHANNEL_ID", help="hex id or a unique prefix")
    p.add_argument("--force", action="store_true", help="register the latest state on the L1 instead")
    _client(sub, common, "stop", "stop the node", lambda r: "node stopping")
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


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be positive")
    return value


def _drop_none(**kwargs: Any) -> dict[str, Any]:
    return {k: v for k, v in kwargs.items() if v is not None}


def data_dir(args: argparse.Namespace) -> Path:
    value = getattr(args, "data_dir", None) or os.environ.get(ENV_DATA_DIR)
    if not value:
        raise ConfigError(f"which node? give --data-dir DIR (or set ${ENV_DATA_DIR})")
    return Path(value).expanduser().resolve()


def _client(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser,
            name: str, help: str, human: Human,
            params: Callable[[argparse.Namespace], dict[str, Any]] | None = None) -> argparse.ArgumentParser:
    """A command that is one RPC call of the same name."""
    p = _one_line(sub.add_parser(name, parents=[common], help=help, description=help))

    def run(args: argparse.Namespace) -> int:
        result = call_sync(data_dir(args) / "rpc.sock", name, params(args) if params else {})
        emit(args, result, human)
        return 0

    p.set_defaults(func=run)
    return p


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
    balances = ", ".join(f"{v} {k}" for k, v in sorted((r.get("l1_balances") or {}).items())) or "0"
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
    return (f"{c['channel_id']}  {c['state']:<8}  v{c['version']:<4}  ours {c['balance']} / theirs "
            f"{c['peer_balance']} {c['asset']}  peer {c['peer_id']}")


def _human_channels(r: dict[str, Any]) -> str:
    return "\n".join(_human_channel(c) for c in r["channels"]) or "no channels"


def _human_payment(r: dict[str, Any]) -> str:
    balance = f"; balance {r['balance']}" if "balance" in r else ""
    return f"paid {r['amount']} on {r['channel_id'][:16]}… (version {r['version']}{balance})"


def _human_close(r: dict[str, Any]) -> str:
    if r["state"] == "settled":
        return f"channel {r['channel_id']} settled: {r['balance']} back to our L1 account"
    deadline = f", challenge window ends at L1 time {r['deadline']}" if r.get("deadline") else ""
    return f"channel {r['channel_id']} is {r['state']}{deadline}"


# --- the daemon ----------------------------------------------------------------------------------


def _devnet_address(args: argparse.Namespace) -> str | None:
    if args.devnet:
        return str(args.devnet)
    if args.devnet_dir:
        path = Path(args.devnet_dir).expanduser() / "devnet.addr"
        try:
            return path.read_text().strip()
        except OSError:
            raise ConfigError(f"no devnet is running in {args.devnet_dir} ({path} is missing)") from None
    return None


def _start(args: argparse.Namespace) -> int:
    import trio

    from ..node.config import load_config
    from .node_daemon import run_node_daemon, setup_logging

    config = load_config(data_dir(args), listen=tuple(args.listen) if args.listen else None,
                         devnet=_devnet_address(args))
    config.data_dir.mkdir(parents=True, exist_ok=True)
    setup_logging(config.data_dir, args.log_level)

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
