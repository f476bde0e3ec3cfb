"""``channels devnet ...``: run the devnet daemon and talk to it.

Public contract (extend, never rename): ``start``; ``status`` -> height, time, chain_id,
block_time (seconds per block, a float; null from a daemon too old to say), genesis (the
ledger's genesis id, hex; null likewise);
``new-account --key-file F`` -> address; ``balance ACCOUNT`` -> balances per asset;
``faucet --to ACCOUNT --amount N [--asset A]``; ``stop``. Client commands find the daemon with
``--devnet MULTIADDR``, ``--data-dir DIR`` (its ``devnet.addr``) or ``$CHANNELS_DEVNET``; with
none of them, the daemon of the default data dir, ``~/.channels/devnet`` (which ``start`` and
``stop`` use too, and ``channels node start`` falls back to).

``stop`` sends SIGTERM to the daemon of a data dir (the pid in its ``devnet.pid``, trusted
only while the daemon's ``devnet.lock`` is held) and waits, at most ``STOP_TIMEOUT``, until
the lock is released: by then the daemon has closed its listener and its ledger.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..chain.devnet.constants import ADDR_FILE, DEFAULT_CHAIN_ID, LOCK_FILE, PID_FILE
from ..core.ids import NATIVE, Address, AssetId
from ..datadir import lock_held, stop_daemon
from ..errors import ChannelsError, ConfigError, sole_error
from .cli import amount, emit
from .formatting import format_amount, format_amounts, format_fields, format_time
from .node_commands import _one_line, default_home

if TYPE_CHECKING:
    from ..chain.devnet.client import RemoteDevnet
    from ..chain.devnet.scheme import DevnetKey

# The daemon and its client import libp2p (most of a second): only the commands that talk
# to a daemon import them, so ``--help`` and the node's commands stay fast.

ENV_DEVNET = "CHANNELS_DEVNET"
DEVNET_SUBDIR = "devnet"  # the default data dir is ~/.channels/devnet
STOP_TIMEOUT = 30.0  # seconds ``devnet stop`` waits for the daemon to exit


class DevnetNotRunning(ConfigError):
    """No devnet daemon runs on the data dir (``devnet stop``)."""


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    from .cli import command_group

    _, cmds = command_group(sub, common, "devnet", "the embedded development L1")

    target = argparse.ArgumentParser(add_help=False)
    target.add_argument("--devnet", metavar="MULTIADDR", default=argparse.SUPPRESS,
                        help=f"daemon multiaddr (default: --data-dir's {ADDR_FILE}, or ${ENV_DEVNET})")

    p = cmds.add_parser("start", parents=[common],
                        help="run a devnet daemon until SIGINT/SIGTERM (default data dir: ~/.channels/devnet)")
    p.add_argument("--listen", default="/ip4/127.0.0.1/tcp/0", metavar="MULTIADDR",
                   help="listen address (default: /ip4/127.0.0.1/tcp/0, a free port; see its devnet.addr)")
    p.add_argument("--block-time", type=float, default=1.0, metavar="SECONDS",
                   help="seconds between blocks (default: 1)")
    p.add_argument("--log-format", default="text", choices=["text", "json"],
                   help="stderr log lines as text, or as JSON objects with time, level, logger, message "
                        "(default: text)")
    p.add_argument("--chain-id", type=int, default=DEFAULT_CHAIN_ID, help="only when the data dir is new")
    p.add_argument("--apps", action="append", metavar="MODULE:ATTR",
                   help="also judge this channel app's moves (game rules), e.g. mygame.rules:TicTacToe "
                        "(repeatable; nodes playing it must be started with the same)")
    p.set_defaults(func=_start)

    p = cmds.add_parser("status", parents=[common, target], help="height, time, chain id and block time")
    p.set_defaults(func=_client(_status, _human_status))

    stop = "stop the devnet daemon of --data-dir (default: ~/.channels/devnet) and wait until it has exited"
    p = cmds.add_parser("stop", parents=[common], help=stop, description=stop)
    p.set_defaults(func=_stop)

    p = cmds.add_parser("new-account", parents=[common, target], help="create an account key file")
    p.add_argument("--key-file", required=True, metavar="FILE",
                   help="where to write the new key (mode 0600; never overwritten)")
    _one_line(p)
    p.add_argument("--fund", type=amount, metavar="N", help="also take N native units from the faucet")
    p.set_defaults(func=_new_account)

    p = cmds.add_parser("balance", parents=[common, target], help="balances of an account, per asset")
    p.add_argument("account", metavar="ACCOUNT", help="hex address or key file")
    p.set_defaults(func=_client(_balance, _human_balance))

    p = cmds.add_parser("faucet", parents=[common, target], help="development money")
    _one_line(p)
    p.add_argument("--to", required=True, metavar="ACCOUNT", help="hex address or key file to fund")
    p.add_argument("--amount", required=True, type=amount, help="a positive integer")
    p.add_argument("--asset", default=NATIVE, help="asset to give (default: native)")
    p.set_defaults(func=_client(_faucet, _human_faucet))

    p = cmds.add_parser("transfer", parents=[common, target], help="send funds from a key file's account")
    _one_line(p)
    p.add_argument("--key-file", required=True, metavar="FILE", help="key file of the sending account")
    p.add_argument("--to", required=True, metavar="ACCOUNT", help="hex address or key file to pay")
    p.add_argument("--amount", required=True, type=amount, help="a positive integer")
    p.add_argument("--asset", default=NATIVE, help="asset to send (default: native)")
    p.set_defaults(func=_client(_transfer, _human_transfer))

    p = cmds.add_parser("create-token", parents=[common, target], help="create a custom token (you issue it)")
    p.add_argument("--key-file", required=True, metavar="FILE", help="key file of the issuer")
    p.add_argument("--asset", required=True, help="the new token's symbol")
    p.set_defaults(func=_client(_create_token, lambda r: f"token {r['asset']} created; issuer {r['issuer']}"))


# --- daemon --------------------------------------------------------------------------------------


def _data_dir(args: argparse.Namespace) -> Path | None:
    value = getattr(args, "data_dir", None)
    return None if value is None else Path(value)


def default_devnet_dir() -> Path:
    return default_home() / DEVNET_SUBDIR


def running_default_devnet() -> str | None:
    """The multiaddr of a devnet running in the default data dir, or None."""
    try:
        return (default_devnet_dir() / ADDR_FILE).read_text().strip() or None
    except (OSError, ConfigError):
        return None


def _start(args: argparse.Namespace) -> int:
    data_dir = _data_dir(args) or default_devnet_dir()

    import trio

    from ..app_loader import load_apps
    from ..chain.devnet.service import serve_devnet

    apps = load_apps(args.apps or ())

    async def run() -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                info = await nursery.start(partial(serve_devnet, data_dir, listen=args.listen,
                                                   block_time=args.block_time, chain_id=args.chain_id,
                                                   apps=apps))
                emit(args, {"multiaddr": info.address, "peer_id": info.peer_id, "chain_id": info.chain_id,
                            "data_dir": str(info.data_dir)},
                     lambda r: f"devnet (chain {r['chain_id']}) listening on {r['multiaddr']}")
                sys.stdout.flush()
                async for _ in signals:
                    nursery.cancel_scope.cancel()
                    break

    _setup_logging(args.log_format)
    try:
        trio.run(run)
    except BaseExceptionGroup as group:  # the nurseries wrap a start-up error (port taken, dir in use)
        leaf = sole_error(group, ChannelsError)
        if leaf is None:
            raise
        raise leaf from None
    return 0


def _setup_logging(log_format: str = "text") -> None:
    """Warnings and errors to stderr (text or JSON lines), cut to a bounded size and rate limited:
    a flood of bad requests must not turn into a flood of log lines (``channels.logs``)."""
    from ..logs import RateLimitFilter, make_formatter

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(make_formatter(log_format))
    handler.addFilter(RateLimitFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.WARNING)


# --- clients -------------------------------------------------------------------------------------


def _devnet_address(args: argparse.Namespace) -> str:
    address = getattr(args, "devnet", None)
    if address:
        return str(address)
    data_dir = _data_dir(args)
    if data_dir is not None:
        path = data_dir / ADDR_FILE
        try:
            return path.read_text().strip()
        except OSError:
            raise ConfigError(f"no devnet is running on {data_dir} ({path} is missing); "
                              "start one with `channels devnet start`") from None
    if os.environ.get(ENV_DEVNET):
        return os.environ[ENV_DEVNET]
    default = running_default_devnet()
    if default is not None:
        return default
    raise ConfigError(f"which devnet? none runs in the default {default_devnet_dir()}; give --devnet MULTIADDR or "
                      f"--data-dir DIR (or set ${ENV_DEVNET}), or start one with `channels devnet start`")


Command = Callable[[argparse.Namespace, "RemoteDevnet"], Awaitable[Any]]


def _client(command: Command, human: Callable[[Any], str] | None = None) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        address = _devnet_address(args)

        async def main() -> Any:
            from ..chain.devnet.client import open_remote_devnet

            async with open_remote_devnet(address) as devnet:
                return await command(args, devnet)

        import trio

        emit(args, trio.run(main), human)
        return 0

    return run


async def _status(args: argparse.Namespace, devnet: RemoteDevnet) -> dict[str, Any]:
    s = await devnet.status()
    return {"height": s.height, "time": s.time, "chain_id": s.chain_id, "block_time": s.block_time,
            "devnet": devnet.peer_id, "genesis": None if s.genesis is None else s.genesis.hex()}


async def _balance(args: argparse.Namespace, devnet: RemoteDevnet) -> dict[str, Any]:
    account = parse_account(args.account)
    return {"address": account.hex(), "balances": dict(await devnet.balances(account))}


async def _faucet(args: argparse.Namespace, devnet: RemoteDevnet) -> dict[str, Any]:
    to = parse_account(args.to)
    balance = await devnet.faucet(to, args.amount, AssetId(args.asset))
    return {"to": to.hex(), "asset": args.asset, "amount": args.amount, "balance": balance}


async def _transfer(args: argparse.Namespace, devnet: RemoteDevnet) -> dict[str, Any]:
    key, to = read_key_file(args.key_file), parse_account(args.to)
    await devnet.transfer(key, to, args.amount, AssetId(args.asset))
    return {"from": key.address.hex(), "to": to.hex(), "asset": args.asset, "amount": args.amount,
            "balance": await devnet.balance(key.address, AssetId(args.asset))}


async def _create_token(args: argparse.Namespace, devnet: RemoteDevnet) -> dict[str, Any]:
    key = read_key_file(args.key_file)
    await devnet.create_token(key, args.asset)
    return {"asset": args.asset, "issuer": key.address.hex()}


def _new_account(args: argparse.Namespace) -> int:
    from ..chain.devnet.scheme import DevnetKey
    from ..keyfile import L1_ACCOUNT, write_key

    key = DevnetKey.generate()
    address = _devnet_address(args) if args.fund else None  # fail before writing a key nobody can fund
    write_key(args.key_file, key.key, use=L1_ACCOUNT)
    result: dict[str, Any] = {"address": key.address.hex(), "key_file": str(args.key_file)}
    if address is not None:

        async def fund() -> int:
            from ..chain.devnet.client import open_remote_devnet

            async with open_remote_devnet(address) as devnet:
                return await devnet.faucet(key.address, args.fund)

        import trio

        result["balance"] = trio.run(fund)
    emit(args, result, _human_new_account)
    return 0


def read_key_file(path: str | Path) -> DevnetKey:
    from ..chain.devnet.scheme import DevnetKey
    from ..keyfile import L1_ACCOUNT, read_key

    return DevnetKey(read_key(path, use=L1_ACCOUNT))  # a node's identity.key is refused: it is no account


def parse_account(text: str) -> Address:
    """An account given as 64 hex digits, or as the path of a key file."""
    try:
        raw = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        raw = b""
    if len(raw) == 32:
        return Address(raw)
    if Path(text).is_file():
        return read_key_file(text).address
    raise ConfigError(f"{text!r} is neither a 32-byte hex address nor a key file")


# --- stop ----------------------------------------------------------------------------------------


def _daemon_pid(data_dir: Path) -> int:
    """The pid of the daemon running on ``data_dir``; ``DevnetNotRunning`` if none does."""
    if not lock_held(data_dir, LOCK_FILE):  # a pid file left by a killed daemon may name another process now
        raise DevnetNotRunning(f"no devnet is running in {data_dir}")
    try:
        return int((data_dir / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        raise DevnetNotRunning(f"the devnet in {data_dir} wrote no readable {PID_FILE} (an older version, or "
                               "still starting); stop it with Ctrl-C or kill") from None


def _stop(args: argparse.Namespace) -> int:
    data_dir = (_data_dir(args) or default_devnet_dir()).expanduser()
    pid = _daemon_pid(data_dir)
    stop_daemon(data_dir, LOCK_FILE, pid, "the devnet", timeout=STOP_TIMEOUT)
    emit(args, {"data_dir": str(data_dir), "pid": pid, "stopped": True},
         lambda r: f"devnet in {r['data_dir']} stopped (pid {r['pid']})")
    return 0


# --- human output --------------------------------------------------------------------------------


def _human_status(r: dict[str, Any]) -> str:
    block_time = "unknown" if r.get("block_time") is None else f"{r['block_time']:g} s"
    return format_fields([("chain id", r["chain_id"]), ("height", r["height"]),
                          ("L1 time", f"{format_time(r['time'])} ({r['time']})"), ("block time", block_time),
                          ("devnet", r["devnet"]), ("genesis", r.get("genesis") or "unknown")])


def _human_balance(r: dict[str, Any]) -> str:
    return format_fields([("account", r["address"]), ("balance", format_amounts(r["balances"]))])


def _human_faucet(r: dict[str, Any]) -> str:
    return (f"faucet sent {format_amount(r['amount'], r['asset'])} to {r['to']}; "
            f"balance now {format_amount(r['balance'], r['asset'])}")


def _human_transfer(r: dict[str, Any]) -> str:
    return (f"sent {format_amount(r['amount'], r['asset'])} from {r['from']} to {r['to']}; "
            f"{r['from']} has {format_amount(r['balance'], r['asset'])} left")


def _human_new_account(r: dict[str, Any]) -> str:
    funded = f"; funded with {format_amount(r['balance'], NATIVE)}" if "balance" in r else ""
    return f"account {r['address']} (key in {r['key_file']}){funded}"
