"""``channels node start``: a ``Node`` plus its JSON-RPC control socket, in the foreground.

Files in the data dir while it runs: ``rpc.sock`` (the control socket, 0600),
``node.addr`` (first multiaddr, for scripts), ``node.lock`` (held: two daemons on
one store would each think they own the channels), ``node.log`` (appended, text or JSON lines
as ``--log-format`` says, also written to stderr; rotated at
``LOG_MAX_BYTES`` into ``node.log.1`` .. ``node.log.{LOG_BACKUPS}``, so the logs take at most
``(1 + LOG_BACKUPS) * LOG_MAX_BYTES``; log lines caused by others are rate limited, see
``channels.logs``). It stops on SIGINT, SIGTERM or the ``stop`` method, and removes what it created.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from functools import partial
from pathlib import Path

import trio

from ..app_loader import load_apps
from ..chain.base import Ledger
from ..datadir import lock_data_dir, write_atomic
from ..errors import ChannelsError, ConfigError, sole_error
from ..logs import LOG_FORMATS, RateLimitFilter, RotatingFile, make_formatter
from ..node import Node
from ..node.config import NodeConfig
from .control_server import claim_socket_path, serve_rpc
from .metrics import open_metrics_listener, parse_address, serve_metrics

log = logging.getLogger("channels.frontend.node_daemon")

ADDR_FILE, LOCK_FILE, LOG_FILE = "node.addr", "node.lock", "node.log"
LOG_MAX_BYTES = 10 * 1024 * 1024  # per log file; then node.log -> node.log.1 -> ... (oldest dropped)
LOG_BACKUPS = 2  # node.log plus 2 rotated files: at most 30 MiB of logs

_installed: list[logging.Handler] = []  # what the last setup_logging added to the root logger
_limiter: list[RateLimitFilter] = []


def setup_logging(data_dir: Path, level: str = "info", *, log_format: str = "text", max_bytes: int = LOG_MAX_BYTES,
                  backups: int = LOG_BACKUPS, limiter: RateLimitFilter | None = None) -> RateLimitFilter:
    """Log to stderr and ``DIR/node.log``; libp2p's own chatter only from warnings up.

    ``log_format`` is ``text`` or ``json`` (one object per line, ``channels.logs.JsonFormatter``).
    Both outputs share one ``RateLimitFilter`` (info and up), records are cut at
    ``logs.MAX_RECORD`` characters and the file rotates at ``max_bytes``. Calling it
    again replaces what the previous call installed. Returns the filter."""
    if log_format not in LOG_FORMATS:
        raise ConfigError(f"log format {log_format!r} is not one of {', '.join(LOG_FORMATS)}")
    fmt = make_formatter(log_format)
    limiter = limiter if limiter is not None else RateLimitFilter()
    root = logging.getLogger()
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    for old in _installed:
        root.removeHandler(old)
        old.close()
    _installed.clear()
    file_handler = RotatingFile(data_dir / LOG_FILE, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
    for handler in (logging.StreamHandler(sys.stderr), file_handler):
        handler.setFormatter(fmt)
        handler.addFilter(limiter)
        root.addHandler(handler)
        _installed.append(handler)
    for noisy in ("libp2p", "multiaddr", "async_service"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    if not _limiter:  # runs before logging's own shutdown (atexit is last in, first out)
        atexit.register(lambda: _limiter[-1].flush())
    _limiter[:] = [limiter]
    return limiter


OpenLedger = Callable[[str], AbstractAsyncContextManager[Ledger]]


async def run_node_daemon(config: NodeConfig, *, open_ledger: OpenLedger,
                          on_ready: Callable[[Node], None] | None = None) -> None:
    """Run until SIGINT/SIGTERM or ``stop``; ``on_ready(node)`` once the socket accepts calls.

    ``open_ledger(address)`` connects to the L1 named by ``config.devnet``: the caller
    chooses the backend, so nothing here depends on a particular one.

    Expected failures (devnet unreachable, data dir in use, bad address) are raised
    as a single ``ChannelsError``, never as an exception group."""
    if not config.devnet:
        raise ConfigError("which devnet? give --devnet MULTIADDR or --devnet-dir DIR (or devnet = ... in config.toml)")
    if config.metrics is not None:
        parse_address(config.metrics)  # a bad value fails before anything is touched
    config.data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(config.data_dir, 0o700)
    try:
        busy = (f"a node is already running in {config.data_dir} (stop it with: "
                f"channels --data-dir {config.data_dir} stop)")
        with lock_data_dir(config.data_dir, LOCK_FILE, busy):
            claim_socket_path(config.rpc_path)  # fail before touching the store
            await _run(config, config.devnet, open_ledger, on_ready)
    except BaseExceptionGroup as group:
        leaf = sole_error(group, ChannelsError)
        if leaf is None:
            raise
        raise leaf from None


async def _run(config: NodeConfig, devnet: str, open_ledger: OpenLedger,
               on_ready: Callable[[Node], None] | None) -> None:
    addr_file = config.data_dir / ADDR_FILE
    addr_file.unlink(missing_ok=True)  # we hold the lock: any old one is stale
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            # A signal cancels everything, start-up included (a slow devnet dial too).
            nursery.start_soon(_watch_signals, signals, nursery.cancel_scope)
            # Bound before the node starts: a taken port fails at once, with nothing changed.
            metrics = await open_metrics_listener(config.metrics) if config.metrics else None
            try:
                apps = load_apps(config.apps)  # before the ledger: a bad app name fails with nothing opened
                async with open_ledger(devnet) as ledger, Node.open(config, ledger=ledger, apps=apps) as node, \
                        trio.open_nursery() as inner:
                    await inner.start(partial(serve_rpc, node, config.rpc_path))
                    if metrics is not None:
                        await inner.start(serve_metrics, node, metrics)
                    write_atomic(addr_file, (node.addresses[0] if node.addresses else "") + "\n")
                    log.info("node %s listening on %s", node.peer_id, ", ".join(node.addresses))
                    if on_ready is not None:
                        on_ready(node)
                    await node.stopped.wait()  # set by the ``stop`` method
                    inner.cancel_scope.cancel()
            finally:
                addr_file.unlink(missing_ok=True)
                if metrics is not None:
                    metrics.socket.close()
            log.info("shutting down")
            nursery.cancel_scope.cancel()


async def _watch_signals(signals: AsyncIterator[int], scope: trio.CancelScope) -> None:
    async for signum in signals:
        log.info("received %s; shutting down", signal.Signals(signum).name)
        scope.cancel()
        return


