"""Run ``channels devnet start`` as a real subprocess for the daemon tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from channels.chain.devnet.service import ADDR_FILE, DB_FILE

START_TIMEOUT = 30.0


class DaemonProc:
    """One devnet daemon process on ``data_dir``; ``start`` returns its multiaddr."""

    def __init__(self, data_dir: Path, *, block_time: float = 0.1, port: int = 0) -> None:
        self.data_dir = data_dir
        self.block_time = block_time
        self.port = port
        self.proc: subprocess.Popen[str] | None = None
        self.address = ""

    @property
    def log(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}.stderr.log"

    @property
    def db(self) -> Path:
        return self.data_dir / DB_FILE

    def start(self) -> str:
        cmd = [sys.executable, "-m", "channels", "devnet", "start", "--data-dir", str(self.data_dir),
               "--listen", f"/ip4/127.0.0.1/tcp/{self.port}", "--block-time", str(self.block_time)]
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # stderr to a file, not an unread pipe: a full pipe would freeze the daemon.
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT
        line = ""
        while time.monotonic() < deadline and "/p2p/" not in line:
            line = self.proc.stdout.readline()
            if not line and self.proc.poll() is not None:
                raise RuntimeError(f"devnet daemon exited: {self.log.read_text()[-2000:]}")
        self.address = line.split()[-1]
        assert self.address.startswith("/ip4/127.0.0.1/tcp/") and "/p2p/" in self.address, line
        assert (self.data_dir / ADDR_FILE).read_text().strip() == self.address
        self.port = int(self.address.split("/")[4])
        return self.address

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
        try:
            return self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def __enter__(self) -> DaemonProc:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.stop()
