"""What every daemon does with its data directory: hold a lock, publish files atomically."""

from __future__ import annotations

import fcntl
import os
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
