"""The node daemon's Prometheus endpoint (``channels node start --metrics HOST:PORT``; off by default).

``GET /metrics`` answers with the text exposition of one per-node registry: the node's
own counters (``node.stats``, channels.node.stats) and gauges computed from its state at
scrape time, all named ``channels_*``, plus the usual ``process_*`` ones. The server is a
small trio task in the daemon's nursery, so every read happens on the node's own thread
(not prometheus_client's threaded server). It is unauthenticated and read-only: bind it to
loopback, or to an address only your monitoring can reach. Each request head is at most
``MAX_REQUEST`` bytes and must arrive within ``READ_TIMEOUT`` seconds, and at most
``MAX_CONNECTIONS`` are served at once, so slow or hostile clients cannot hold it.
"""

from __future__ import annotations

import logging
import math
import socket
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import trio
from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from ..core.channel import Phase
from ..errors import ConfigError
from ..node.stats import Counter as StatsCounter

if TYPE_CHECKING:
    from ..node import Node

log = logging.getLogger("channels.frontend.metrics")

MAX_REQUEST = 8192  # bytes of request line and headers; a scrape needs a few hundred
READ_TIMEOUT = 5.0  # seconds a client has to send its request head
WRITE_TIMEOUT = 10.0  # seconds a client has to take the answer
MAX_CONNECTIONS = 16  # served at once; more are answered 503 and closed
PATH = "/metrics"
# The classic text format every Prometheus reads; generate_latest writes it (prometheus_client
# answers a scrape without an Accept header with the same).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6; port 0 picks a free one) as (host, port)."""
    host, sep, port_text = str(text).strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise ConfigError(f"metrics address {text!r} is not HOST:PORT with a port 0..65535 (e.g. 127.0.0.1:9464)")
    return host, int(port_text)


async def open_metrics_listener(address: str) -> trio.SocketListener:
    """Bind ``HOST:PORT`` now, so a taken port or a bad host fails at start as one line."""
    host, port = parse_address(address)
    try:
        infos = await trio.socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"cannot serve metrics on {address}: unknown host ({exc.strerror})") from None
    family, kind, proto, _, sockaddr = infos[0]
    sock = trio.socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        await sock.bind(sockaddr)
        sock.listen(MAX_CONNECTIONS)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot serve metrics on {address}: {exc.strerror or exc}") from None
    return trio.SocketListener(sock)


def bound_url(listener: trio.SocketListener) -> str:
    host, port = listener.socket.getsockname()[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}{PATH}"


class NodeCollector(Collector):
    """Translates ``node.stats`` and the node's state into metric families at scrape time."""

    def __init__(self, node: Node) -> None:
        self.node = node

    def collect(self) -> Iterator[Metric]:
        node, stats = self.node, self.node.stats
        phases = Counter(info.state for info in node.list_channels())
        channels = GaugeMetricFamily("channels_channels", "Channels by phase.", labels=["phase"])
        for phase in Phase:
            channels.add_metric([phase.value], phases.get(phase.value, 0))
        yield channels
        yield _counter("channels_payments", "Payment outcomes committed: out/sent, out/failed, in/received.",
                       ["direction", "status"], stats.payments,
                       always=[("out", "sent"), ("out", "failed"), ("in", "received")])
        latency = HistogramMetricFamily("channels_payment_seconds",
                                        "Seconds from a local pay call to its outcome.", labels=["status"])
        for status, hist in sorted(stats.payment_seconds.items()):
            latency.add_metric([status], [(_bound(b), n) for b, n in hist.cumulative()], hist.sum)
        yield latency
        yield _counter("channels_updates", "New channel states signed by both, by who proposed them.",
                       ["origin"], stats.updates, always=[("local",), ("remote",)])
        yield _counter("channels_update_proposals", "States this node proposed and signed, by kind.",
                       ["kind"], stats.proposals, always=[("update",), ("close",)])
        yield _counter("channels_rejects", "Peer messages refused, by reason (numbers as N) and action.",
                       ["reason", "action"], stats.rejects)
        yield _gauge("channels_peers", "Peers introduced and connected now.", len(node.connected_peers()))
        yield _counter("channels_l1_submissions", "L1 transactions sent (failures included), by kind.",
                       ["kind"], stats.l1_submissions)
        yield _counter("channels_l1_submission_failures", "L1 transactions refused or failed, by kind and code.",
                       ["kind", "code"], stats.l1_failures)
        yield _gauge("channels_chain_cursor", "Position in the L1 event log committed to the store.",
                     stats.chain_cursor)
        yield _gauge("channels_chain_cursor_lag_events",
                     "L1 events received but not yet applied and committed.", stats.chain_lag)
        yield _gauge("channels_l1_time_seconds", "L1 time of the newest block the node has seen.",
                     node.engine.now)
        yield _gauge("channels_alarms", "Standing alarms (see channels health).", len(node.alarms()))


def _bound(value: float) -> str:
    return "+Inf" if math.isinf(value) else repr(float(value))


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _counter(name: str, doc: str, labels: list[str], counter: StatsCounter,
             always: Iterable[tuple[str, ...]] = ()) -> CounterMetricFamily:
    """A labelled counter; ``always`` label sets appear at 0 before they first count."""
    family = CounterMetricFamily(name, doc, labels=labels)
    for key in sorted(set(counter.values) | set(always)):
        family.add_metric(list(key), counter.get(*key))
    return family


def metrics_registry(node: Node) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(node))
    ProcessCollector(registry=registry)  # process_* (memory, CPU, open files); nothing off Linux
    return registry


async def serve_metrics(node: Node, listener: trio.SocketListener, *,
                        task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    """Serve ``GET /metrics`` on ``listener`` until cancelled; ``started()`` once it accepts."""
    registry = metrics_registry(node)
    slots = trio.CapacityLimiter(MAX_CONNECTIONS)
    async with listener, trio.open_nursery() as nursery:
        task_status.started()
        log.info("metrics on %s (unauthenticated)", bound_url(listener))
        await trio.serve_listeners(lambda stream: _serve_connection(registry, slots, stream), [listener],
                                   handler_nursery=nursery)


async def _serve_connection(registry: CollectorRegistry, slots: trio.CapacityLimiter,
                            stream: trio.SocketStream) -> None:
    async with stream:
        try:
            slots.acquire_nowait()
        except trio.WouldBlock:
            await _answer(stream, 503, b"busy\n")
            return
        try:
            head: bytes | None = None
            with trio.move_on_after(READ_TIMEOUT):
                head = await _read_head(stream)
            if head is None:
                return  # timed out or hung up: nothing to answer
            status, body, content_type = _respond(registry, head)
            await _answer(stream, status, body, content_type, send_body=not head.startswith(b"HEAD "))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            slots.release()


async def _read_head(stream: trio.SocketStream) -> bytes | None:
    """The request line and headers; ``b""`` if over ``MAX_REQUEST``, None if the client hung up."""
    buf = bytearray()
    while True:
        ends = [i + len(mark) for mark in (b"\r\n\r\n", b"\n\n") if (i := buf.find(mark)) >= 0]
        if ends:
            return bytes(buf[:min(ends)]) if min(ends) <= MAX_REQUEST else b""
        if len(buf) > MAX_REQUEST:
            return b""
        chunk = await stream.receive_some(4096)
        if not chunk:
            return None
        buf += chunk


def _respond(registry: CollectorRegistry, head: bytes) -> tuple[int, bytes, str]:
    if not head:
        return 431, b"request head too large\n", "text/plain"
    parts = head.split(b"\n", 1)[0].split()
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/"):
        return 400, b"bad request\n", "text/plain"
    method, target = parts[0], parts[1].split(b"?", 1)[0]
    if target != PATH.encode():
        return 404, b"not found; metrics are at /metrics\n", "text/plain"
    if method not in (b"GET", b"HEAD"):
        return 405, b"GET only\n", "text/plain"
    try:
        return 200, generate_latest(registry), CONTENT_TYPE
    except Exception:
        log.exception("collecting metrics failed")
        return 500, b"collecting metrics failed; see the node log\n", "text/plain"


_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            431: "Request Header Fields Too Large", 500: "Internal Server Error", 503: "Service Unavailable"}


async def _answer(stream: trio.SocketStream, status: int, body: bytes, content_type: str = "text/plain",
                  *, send_body: bool = True) -> None:
    head = (f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n"
            + ("Allow: GET, HEAD\r\n" if status == 405 else "") + "\r\n").encode()
    with trio.move_on_after(WRITE_TIMEOUT):
        await stream.send_all(head + body if send_body else head)
