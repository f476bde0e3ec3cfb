"""What every daemon does with its data directory: hold a lock, publish files atomically."""

from __future__ import annotations

import fcntl
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import ConfigError


@contextmanager
def lock_data_dir(data_dir: Path, lock_name: str, busy: str) -> Iterator[None]:
    """Hold an exclusive lock on ``data_dir/lock_name`` for the block; ``busy`` is the
    error when another process holds it (two daemons on one store would corrupt it)."""
    fd = os.open(data_dir / lock_name, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(busy) from None
        yield
    finally:
        os.close(fd)


def write_atomic(path: Path, text: str) -> None:
    """Readers see the old file or the new one, never half of it."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def lock_held(data_dir: Path, lock_name: str) -> bool:
    """Whether a live process holds ``data_dir/lock_name`` (a dead one holds nothing: the
    kernel drops its locks), so a stale pid or addr file is never trusted on its own."""
    try:
        fd = os.open(data_dir / lock_name, os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as exc:
        raise ConfigError(f"cannot read {data_dir / lock_name}: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


@contextmanager
def pid_file(path: Path) -> Iterator[None]:
    """Publish our pid for the block (written right after the lock is taken, removed on exit)."""
    write_atomic(path, f"{os.getpid()}\n")
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def stop_daemon(data_dir: Path, lock_name: str, pid: int, what: str, *, timeout: float = 30.0) -> None:
    """SIGTERM the daemon ``pid`` of ``data_dir`` and wait until its lock is free (it has
    exited and cleaned up); ``what`` names it in errors (``"the devnet"``)."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:  # exited between the caller's check and the signal
        pass
    except PermissionError:
        raise ConfigError(f"{what} in {data_dir} runs as pid {pid}, which we may not signal") from None
    deadline = time.monotonic() + timeout
    while lock_held(data_dir, lock_name):  # polled: a process that is not our child cannot be waited for
        if time.monotonic() > deadline:
            raise ConfigError(f"{what} in {data_dir} (pid {pid}) did not stop within {timeout:g} s")
        time.sleep(0.05)
