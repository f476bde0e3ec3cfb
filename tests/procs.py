"""Real processes for end-to-end tests: a devnet daemon and node daemons on loopback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import trio

from channels.frontend.control_client import NodeNotRunning, RpcFailed, call

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
CLI = [sys.executable, "-m", "channels"]
LOOPBACK = "/ip4/127.0.0.1/tcp/0"


def wait_for_file(path: Path, proc: subprocess.Popen[bytes], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        if proc.poll() is not None:
            raise AssertionError(f"{proc.args!r} exited with {proc.returncode}")
        time.sleep(0.05)
    raise AssertionError(f"{path} did not appear within {timeout}s")


class Proc:
    """One daemon subprocess logging to ``log``; ``kill9`` and ``stop`` are idempotent."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.args = args
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> subprocess.Popen[bytes]:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([*CLI, *self.args], stdout=out, stderr=subprocess.STDOUT, env=ENV,
                                         cwd=REPO)
        return self.proc

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        return self.proc.returncode


def write_settings(data_dir: Path, settings: Mapping[str, object]) -> None:
    """Write ``DIR/config.toml`` (flat keys; numbers, booleans and strings)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    lines = [f"{k} = {str(v).lower() if isinstance(v, bool) else repr(v) if isinstance(v, str) else v}"
             for k, v in settings.items()]
    (data_dir / "config.toml").write_text("\n".join(lines).replace("'", '"') + "\n")


# Tests that force-close wait out the window, so they lower the node's safety minimum.
SHORT_WINDOWS = {"min_challenge_duration": 1, "min_challenge_blocks": 1}


class NodeProc(Proc):
    def __init__(self, data_dir: Path, devnet: str, settings: Mapping[str, object] | None = None) -> None:
        if settings:
            write_settings(data_dir, settings)
        super().__init__(["node", "start", "--data-dir", str(data_dir), "--listen", LOOPBACK, "--devnet", devnet,
                          "--log-level", os.environ.get("CHANNELS_TEST_LOG", "info")],
                         data_dir.parent / f"{data_dir.name}.log")
        self.data_dir = data_dir

    @property
    def rpc(self) -> Path:
        return self.data_dir / "rpc.sock"

    async def start_and_wait(self, timeout: float = 40) -> dict[str, object]:
        """Start (or restart) and return ``getinfo`` once the control socket answers."""
        self.start()
        with trio.fail_after(timeout):
            while True:
                alive = self.proc is not None and self.proc.poll() is None
                assert alive, f"node exited: {self.log.read_text()[-2000:]}"
                try:
                    info = await call(self.rpc, "getinfo")
                    return info  # type: ignore[no-any-return]
                except (NodeNotRunning, RpcFailed):
                    await trio.sleep(0.1)

    async def call(self, method: str, **params: object) -> object:
        return await call(self.rpc, method, dict(params))


def wait_until(what: str | Callable[[], str], check: Callable[[], Any], timeout: float = 45.0) -> Any:
    """Poll ``check`` until it returns something true; fail naming ``what`` after ``timeout``
    seconds (generous: CI machines are loaded)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what if isinstance(what, str) else what()}: not within {timeout:g} s"
        time.sleep(0.05)


def stop_all(procs: Mapping[str, subprocess.Popen[bytes]], log_dir: Path, *, timeout: float = 15.0) -> None:
    """SIGTERM every process still running, wait for each (SIGKILL after ``timeout``), then print
    the tail of each one's ``NAME.log`` in ``log_dir`` (pytest shows it when a test failed)."""
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for name, proc in procs.items():
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        print(f"--- {name} (exit {proc.returncode}) ---\n" + (log_dir / f"{name}.log").read_text()[-3000:])
