"""Client of a node daemon's control socket (``DIR/rpc.sock``, JSON-RPC 2.0, one request per line).

The CLI's calls are blocking and use the standard library only: a command that merely
talks to a running node starts without trio or libp2p. ``call`` is the same for trio programs.
"""

from __future__ import annotations

import errno
import json
import os
import socket
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

from ..errors import ChannelsError, ConfigError

MAX_RESPONSE = 64 << 20  # a client's bound on one answer (list-channels may be long)
SYNC_CALL_TIMEOUT = 600.0  # the daemon bounds every method itself; this only guards against a hung daemon

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, INTERNAL_ERROR = -32700, -32600, -32601, -32602, -32603
APP_ERROR = -32000  # a ChannelsError: the request was understood and refused


class NodeNotRunning(ChannelsError):
    """No daemon answers on the data dir's control socket."""


class RpcFailed(ChannelsError):
    """The daemon answered a call with an error; ``type`` is its error class name."""

    def __init__(self, message: str, *, code: int, type: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.type = type
        self.data = data


def not_running(path: Path) -> NodeNotRunning:
    d = path.parent
    return NodeNotRunning(f"no node is running in {d} (start one with: channels node start --data-dir {d} ...)")


def check_socket_path(path: Path) -> None:
    if len(os.fsencode(path)) >= 104:  # sun_path: 108 bytes on Linux, 104 on BSDs
        raise ConfigError(f"{path} is too long for a Unix socket; use a shorter --data-dir")


def _refused(path: Path, exc: OSError) -> ChannelsError:
    if isinstance(exc, (FileNotFoundError, ConnectionRefusedError)) or exc.errno in (
            errno.ENOENT, errno.ECONNREFUSED, errno.ENOTSOCK):
        return not_running(path)
    return ConfigError(f"cannot open {path}: {exc.strerror or exc}")


def request_line(method: str, params: dict[str, Any] | None) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or {}}).encode() + b"\n"


def _closed(method: str) -> RpcFailed:
    return RpcFailed(f"the node closed the connection without answering {method}",
                     code=INTERNAL_ERROR, type="ConnectionClosed")


def _too_large() -> RpcFailed:
    return RpcFailed("the node's answer is too large", code=INTERNAL_ERROR, type="TooLarge")


def parse_response(line: bytes) -> Any:
    """The result of one response line, or its error raised as ``RpcFailed``."""
    try:
        response = json.loads(line)
    except ValueError as exc:
        raise RpcFailed(f"the node sent invalid JSON: {exc}", code=PARSE_ERROR, type="ParseError") from None
    if not isinstance(response, dict):
        raise RpcFailed("the node sent a malformed answer", code=INVALID_REQUEST, type="InvalidResponse")
    error = response.get("error")
    if error is not None:
        if not isinstance(error, dict):
            error = {"message": str(error)}
        data = error["data"] if isinstance(error.get("data"), dict) else {}
        raise RpcFailed(str(error.get("message", "unknown error")), code=int(error.get("code", INTERNAL_ERROR)),
                        type=str(data.get("type", "Error")), data=error.get("data"))
    return response.get("result")


def _open_request(path: Path | str, method: str, params: dict[str, Any] | None, timeout: float) -> socket.socket:
    """Connect to the daemon at ``path`` and send one request; the caller closes the socket."""
    path = Path(path)
    check_socket_path(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
        except OSError as exc:
            raise _refused(path, exc) from None
        try:
            sock.sendall(request_line(method, params))
        except OSError:
            raise RpcFailed(f"the node closed the connection before {method} was sent",
                            code=INTERNAL_ERROR, type="ConnectionClosed") from None
    except BaseException:
        sock.close()
        raise
    return sock


def call_sync(path: Path | str, method: str, params: dict[str, Any] | None = None, *,
              timeout: float = SYNC_CALL_TIMEOUT) -> Any:
    """Call one method and block for its answer (the CLI's way: no event loop to start)."""
    sock = _open_request(path, method, params, timeout)
    try:
        return parse_response(next(_lines(sock, method, timeout, closed=lambda: _closed(method))))
    finally:
        sock.close()


async def call(path: Path | str, method: str, params: dict[str, Any] | None = None) -> Any:
    """Call one method on the daemon at ``path`` from a trio program; cancellable."""
    import trio

    path = Path(path)
    check_socket_path(path)
    try:
        stream = await trio.open_unix_socket(str(path))
    except OSError as exc:
        raise _refused(path, exc) from None
    async with stream:
        try:
            await stream.send_all(request_line(method, params))
        except trio.BrokenResourceError:
            raise RpcFailed(f"the node closed the connection before {method} was sent",
                            code=INTERNAL_ERROR, type="ConnectionClosed") from None
        buffer = bytearray()
        while b"\n" not in buffer:
            if len(buffer) > MAX_RESPONSE:
                raise _too_large()
            try:
                chunk = await stream.receive_some(65536)
            except trio.BrokenResourceError:
                chunk = b""
            if not chunk:
                raise _closed(method)
            buffer += chunk
    return parse_response(bytes(buffer[:buffer.index(b"\n")]))


class SubscriptionEnded(ChannelsError):
    """The node closed a subscription's stream (it stopped, or dropped the connection)."""


def _lines(sock: socket.socket, method: str, timeout: float,
           closed: Callable[[], Exception]) -> Iterator[bytes]:
    """The lines the daemon sends on ``sock``, each bounded by ``MAX_RESPONSE``; ``closed()``
    is raised when it closes the connection."""
    buffer = bytearray()
    while True:
        newline = buffer.find(b"\n")
        if newline >= 0:
            line = bytes(buffer[:newline])
            del buffer[:newline + 1]
            yield line
            continue
        if len(buffer) > MAX_RESPONSE:
            raise _too_large()
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            raise RpcFailed(f"the node did not answer {method} within {timeout:g} s",
                            code=INTERNAL_ERROR, type="Timeout") from None
        except OSError:
            chunk = b""
        if not chunk:
            raise closed()
        buffer += chunk


def subscribe_sync(path: Path | str, method: str,
                   params: dict[str, Any] | None = None) -> Generator[Any, None, None]:
    """A subscription (``events``): first its answer, then the ``params`` of each notification
    the daemon sends, blocking until the next one, for as long as the caller iterates.

    An error answer, at once or later (``EventsLost``), is raised as ``RpcFailed``; the
    stream closing as ``SubscriptionEnded``. Closing the generator closes the connection."""
    sock = _open_request(path, method, params, SYNC_CALL_TIMEOUT)
    try:
        lines = _lines(sock, method, SYNC_CALL_TIMEOUT,
                       closed=lambda: SubscriptionEnded(f"the node closed the {method} stream (it stopped)"))
        yield parse_response(next(lines))
        sock.settimeout(None)  # events come when they come
        for line in lines:
            try:
                message = json.loads(line)
            except ValueError as exc:
                raise RpcFailed(f"the node sent invalid JSON: {exc}", code=PARSE_ERROR, type="ParseError") from None
            if isinstance(message, dict) and "id" not in message and isinstance(message.get("params"), dict):
                yield message["params"]
            else:
                parse_response(line)  # an error answer ends the subscription: raised here
                raise RpcFailed(f"the node sent an unexpected answer on the {method} stream", code=INVALID_REQUEST,
                                type="InvalidResponse")
    finally:
        sock.close()
