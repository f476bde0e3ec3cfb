"""``channels tower ...``: run a watchtower daemon, stop it, show what it holds.

Public contract (extend, never rename): ``tower start --data-dir DIR --listen MULTIADDR
--devnet MULTIADDR`` (or ``--devnet-dir DIR``), ``tower stop --data-dir DIR``, ``tower status
--data-dir DIR`` -> ``peer_id``, ``addresses``, ``appointments``, ``clients`` (and more). The
default data dir is ``~/.channels/tower``. Like the devnet, a running tower writes its full
multiaddr to ``DIR/tower.addr``: that is what a node's ``tower add`` takes.

``status`` reads the data dir (the store read-only), so it works while the tower runs and
after it stopped; ``stop`` signals the pid in ``tower.pid`` (trusted only while the tower holds
``tower.lock``) and waits until the lock is free. Neither imports trio, libp2p or pynacl.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from functools import partial
from pathlib import Path
from typing import Any

from ..errors import ChannelsError, ConfigError, sole_error
from .cli import emit
from .formatting import format_fields
from .node_commands import default_home

TOWER_SUBDIR = "tower"  # the default data dir is ~/.channels/tower
STOP_TIMEOUT = 30.0  # seconds ``tower stop`` waits for the daemon to exit


class TowerNotRunning(ConfigError):
    """No tower runs on the data dir (``tower stop``)."""


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    from .cli import command_group

    _, cmds = command_group(sub, common, "tower", "a watchtower: guards the channels of nodes that go offline")
    add_daemon_commands(cmds, common)
    add_client_commands(cmds, common)


def add_client_commands(cmds: Any, common: argparse.ArgumentParser) -> None:
    """``tower add``, ``tower remove``, ``tower list``: the towers a node (its --data-dir) uses."""
    from .node_commands import _rpc_command

    help_add = "hand every co-signed state of this node's channels to the tower at MULTIADDR (its tower.addr)"
    p = cmds.add_parser("add", parents=[common], help=help_add, description=help_add)
    p.add_argument("address", metavar="MULTIADDR", help="the tower's full multiaddr, ending in /p2p/PEER_ID")
    p.set_defaults(func=_rpc_command("tower-add", lambda a: {"address": a.address},
                                     lambda r: f"tower {r['peer_id']} added; it gets every new co-signed state"))
    help_remove = "stop using a tower (it keeps what it has until those channels close)"
    p = cmds.add_parser("remove", parents=[common], help=help_remove, description=help_remove)
    p.add_argument("peer_id", metavar="PEER_ID", help="the tower's peer id (see tower list)")
    p.set_defaults(func=_rpc_command("tower-remove", lambda a: {"peer_id": a.peer_id},
                                     lambda r: f"tower {r['peer_id']} removed"))
    help_list = "this node's towers: status, and the last version each acknowledged per channel"
    p = cmds.add_parser("list", parents=[common], help=help_list, description=help_list)
    p.set_defaults(func=_rpc_command("tower-list", None, _human_towers))


def _human_towers(r: dict[str, Any]) -> str:
    lines = []
    for t in r["towers"]:
        error = f" ({t['last_error']})" if t.get("last_error") else ""
        lines.append(f"{t['peer_id']}  {t['status']}{error}  {len(t['channels'])} channels acknowledged, "
                     f"{t['pending']} to send")
        lines += [f"  {cid}  v{version}" for cid, version in t["channels"].items()]
    return "\n".join(lines) or "no towers; add one with: channels tower add MULTIADDR"


def add_daemon_commands(cmds: Any, common: argparse.ArgumentParser) -> None:
    """``tower start``, ``tower stop``, ``tower status`` (the node's tower client commands join the group)."""
    p = cmds.add_parser("start", parents=[common],
                        help="run a watchtower until SIGINT/SIGTERM (default data dir: ~/.channels/tower)")
    p.add_argument("--listen", default="/ip4/127.0.0.1/tcp/0", metavar="MULTIADDR",
                   help="listen address for clients (default: /ip4/127.0.0.1/tcp/0, a free port; see tower.addr)")
    p.add_argument("--devnet", metavar="MULTIADDR", help="the devnet daemon to watch (its full multiaddr)")
    p.add_argument("--devnet-dir", metavar="DIR",
                   help="the devnet daemon's data dir (reads its devnet.addr; default: ~/.channels/devnet)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                   help="least severe log records written to stderr (default: info: every refute is logged)")
    p.add_argument("--log-format", default="text", choices=["text", "json"],
                   help="log lines as text, or as JSON objects with time, level, logger, message (default: text)")
    p.set_defaults(func=_start)

    stop = "stop the tower of --data-dir (default: ~/.channels/tower) and wait until it has exited"
    p = cmds.add_parser("stop", parents=[common], help=stop, description=stop)
    p.set_defaults(func=_stop)

    status = "the tower's peer id, addresses, appointments and clients (works while it runs)"
    p = cmds.add_parser("status", parents=[common], help=status, description=status)
    p.set_defaults(func=_status)


def default_tower_dir() -> Path:
    return default_home() / TOWER_SUBDIR


def _data_dir(args: argparse.Namespace) -> Path:
    value = getattr(args, "data_dir", None)
    return (Path(value) if value is not None else default_tower_dir()).expanduser()


def _devnet(args: argparse.Namespace) -> str:
    if args.devnet:
        return str(args.devnet)
    from .devnet_commands import ENV_DEVNET, default_devnet_dir

    devnet_dir = Path(args.devnet_dir).expanduser() if args.devnet_dir else None
    if devnet_dir is None and os.environ.get(ENV_DEVNET):
        return os.environ[ENV_DEVNET]
    path = (devnet_dir or default_devnet_dir()) / "devnet.addr"
    try:
        return path.read_text().strip()
    except OSError:
        where = args.devnet_dir or str(default_devnet_dir())
        raise ConfigError(f"no devnet is running in {where} ({path} is missing); give --devnet MULTIADDR or "
                          "--devnet-dir DIR") from None


def _setup_logging(level: str, log_format: str) -> None:
    from ..logs import RateLimitFilter, make_formatter

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(make_formatter(log_format))
    handler.addFilter(RateLimitFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper()))
    for noisy in ("libp2p", "multiaddr", "async_service"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def _start(args: argparse.Namespace) -> int:
    data_dir = _data_dir(args)
    devnet = _devnet(args)

    import trio

    from ..watchtower.daemon import serve_tower

    async def run() -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                info = await nursery.start(partial(serve_tower, data_dir, listen=args.listen, devnet=devnet))
                emit(args, {"multiaddr": info.address, "peer_id": info.peer_id, "chain_id": info.chain_id,
                            "l1_account": info.l1_account, "data_dir": str(info.data_dir)},
                     lambda r: f"tower (chain {r['chain_id']}) listening on {r['multiaddr']}")
                sys.stdout.flush()
                async for _ in signals:
                    nursery.cancel_scope.cancel()
                    break

    _setup_logging(args.log_level, args.log_format)
    try:
        trio.run(run)
    except BaseExceptionGroup as group:  # the nurseries wrap a start-up error (port taken, dir in use)
        leaf = sole_error(group, ChannelsError)
        if leaf is None:
            raise
        raise leaf from None
    return 0


def _stop(args: argparse.Namespace) -> int:
    from ..datadir import lock_held, stop_daemon
    from ..watchtower.constants import LOCK_FILE
    from ..watchtower.status import daemon_pid

    data_dir = _data_dir(args)
    pid = daemon_pid(data_dir)
    if pid is None:
        if lock_held(data_dir, LOCK_FILE):
            raise TowerNotRunning(f"the tower in {data_dir} wrote no readable tower.pid (still starting?); "
                                  "stop it with Ctrl-C or kill")
        raise TowerNotRunning(f"no tower is running in {data_dir}")
    stop_daemon(data_dir, LOCK_FILE, pid, "the tower", timeout=STOP_TIMEOUT)
    emit(args, {"data_dir": str(data_dir), "pid": pid, "stopped": True},
         lambda r: f"tower in {r['data_dir']} stopped (pid {r['pid']})")
    return 0


def _status(args: argparse.Namespace) -> int:
    from ..watchtower.status import read_status

    emit(args, read_status(_data_dir(args)), _human_status)
    return 0


def _human_status(r: dict[str, Any]) -> str:
    return format_fields([
        ("peer id", r["peer_id"] or "unknown"),
        ("running", f"yes (pid {r['pid']})" if r["running"] else "no"),
        ("addresses", ", ".join(r["addresses"]) or "none (not running)"),
        ("appointments", f"{r['appointments']} ({r['plain_appointments']} plain, "
                         f"{r['encrypted_appointments']} encrypted; {r['bytes']} bytes)"),
        ("clients", r["clients"]), ("open disputes", r["disputes"]),
        ("chain", f"{r['chain_id']} (cursor {r['chain_cursor']})"), ("L1 account", r["l1_account"] or "unknown"),
    ])
