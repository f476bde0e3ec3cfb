"""``channels devnet ...``: run the devnet daemon and talk to it.

Public contract (extend, never rename): ``start``; ``status`` -> height, time, chain_id,
block_time (seconds per block, a float; null from a daemon too old to say);
``new-account --key-file F`` -> address; ``balance ACCOUNT`` -> balances per asset;
``faucet --to ACCOUNT --amount N [--asset A]``. Client commands find the daemon with
``--devnet MULTIADDR`` or ``--data-dir DIR`` (its ``devnet.addr``).
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

from ..chain.devnet.constants import ADDR_FILE, DEFAULT_CHAIN_ID
from ..core.ids import NATIVE, Address, AssetId
from ..errors import ConfigError
from .cli import emit

if TYPE_CHECKING:
    from ..chain.devnet.client import RemoteDevnet
    from ..chain.devnet.scheme import DevnetKey

# The daemon and its client import libp2p (most of a second): only the commands that talk
# to a daemon import them, so ``--help`` and the node's commands stay fast.

ENV_DEVNET = "CHANNELS_DEVNET"


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    from .cli import command_group

    _, cmds = command_group(sub, common, "devnet", "the embedded development L1")

    target = argparse.ArgumentParser(add_help=False)
    target.add_argument("--devnet", metavar="MULTIADDR", default=argparse.SUPPRESS,
                        help=f"daemon multiaddr (default: --data-dir's {ADDR_FILE}, or ${ENV_DEVNET})")

    p = cmds.add_parser("start", parents=[common], help="run a devnet daemon until SIGINT/SIGTERM")
    p.add_argument("--listen", default="/ip4/127.0.0.1/tcp/0", metavar="MULTIADDR")
    p.add_argument("--block-time", type=float, default=1.0, metavar="SECONDS")
    p.add_argument("--chain-id", type=int, default=DEFAULT_CHAIN_ID, help="only when the data dir is new")
    p.set_defaults(func=_start)

    p = cmds.add_parser("status", parents=[common, target], help="height, time, chain id and block time")
    p.set_defaults(func=_client(_status))

    p = cmds.add_parser("new-account", parents=[common, target], help="create an account key file")
    p.add_argument("--key-file", required=True)
    p.add_argument("--fund", type=int, metavar="N", help="also take N native units from the faucet")
    p.set_defaults(func=_new_account)

    p = cmds.add_parser("balance", parents=[common, target], help="balances of an account, per asset")
    p.add_argument("account", metavar="ACCOUNT", help="hex address or key file")
    p.set_defaults(func=_client(_balance))

    p = cmds.add_parser("faucet", parents=[common, target], help="development money")
    p.add_argument("--to", required=True, metavar="ACCOUNT")
    p.add_argument("--amount", required=True, type=int)
    p.add_argument("--asset", default=NATIVE)
    p.set_defaults(func=_client(_faucet))

    p = cmds.add_parser("transfer", parents=[common, target], help="send funds from a key file's account")
    p.add_argument("--key-file", required=True)
    p.add_argument("--to", required=True, metavar="ACCOUNT")
    p.add_argument("--amount", required=True, type=int)
    p.add_argument("--asset", default=NATIVE)
    p.set_defaults(func=_client(_transfer))

    p = cmds.add_parser("create-token", parents=[common, target], help="create a custom token (you issue it)")
    p.add_argument("--key-file", required=True)
    p.add_argument("--asset", required=True)
    p.set_defaults(func=_client(_create_token))


# --- daemon --------------------------------------------------------------------------------------


def _data_dir(args: argparse.Namespace) -> Path | None:
    value = getattr(args, "data_dir", None)
    return None if value is None else Path(value)


def _start(args: argparse.Namespace) -> int:
    data_dir = _data_dir(args)
    if data_dir is None:
        raise ConfigError("channels devnet start needs --data-dir DIR")

    import trio

    from ..chain.devnet.service import serve_devnet

    async def run() -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                info = await nursery.start(partial(serve_devnet, data_dir, listen=args.listen,
                                                   block_time=args.block_time, chain_id=args.chain_id))
                emit(args, {"multiaddr": info.address, "peer_id": info.peer_id, "chain_id": info.chain_id,
                            "data_dir": str(info.data_dir)},
                     lambda r: f"devnet (chain {r['chain_id']}) listening on {r['multiaddr']}")
                sys.stdout.flush()
                async for _ in signals:
                    nursery.cancel_scope.cancel()
                    break

    _setup_logging()
    trio.run(run)
    return 0


def _setup_logging() -> None:
    """Warnings and errors to stderr, cut to a bounded size and rate limited: a flood of bad
    requests must not turn into a flood of log lines (``channels.logs``)."""
    from ..logs import BoundedFormatter, RateLimitFilter

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(BoundedFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
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
    raise ConfigError(f"which devnet? give --devnet MULTIADDR or --data-dir DIR (or set ${ENV_DEVNET})")


Command = Callable[[argparse.Namespace, "RemoteDevnet"], Awaitable[Any]]


def _client(command: Command) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        address = _devnet_address(args)

        async def main() -> Any:
            from ..chain.devnet.client import open_remote_devnet

            async with open_remote_devnet(address) as devnet:
                return await command(args, devnet)

        import trio

        emit(args, trio.run(main))
        return 0

    return run


async def _status(args: argparse.Namespace, devnet: RemoteDevnet) -> dict[str, Any]:
    s = await devnet.status()
    return {"height": s.height, "time": s.time, "chain_id": s.chain_id, "block_time": s.block_time,
            "devnet": devnet.peer_id}


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
    from ..keyfile import write_key

    key = DevnetKey.generate()
    address = _devnet_address(args) if args.fund else None  # fail before writing a key nobody can fund
    write_key(args.key_file, key.key)
    result: dict[str, Any] = {"address": key.address.hex(), "key_file": str(args.key_file)}
    if address is not None:

        async def fund() -> int:
            from ..chain.devnet.client import open_remote_devnet

            async with open_remote_devnet(address) as devnet:
                return await devnet.faucet(key.address, args.fund)

        import trio

        result["balance"] = trio.run(fund)
    emit(args, result)
    return 0


def read_key_file(path: str | Path) -> DevnetKey:
    from ..chain.devnet.scheme import DevnetKey
    from ..keyfile import read_key

    return DevnetKey(read_key(path))


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
