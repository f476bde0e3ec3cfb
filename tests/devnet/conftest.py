from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from daemon_util import DaemonProc

from channels.chain.devnet.ledger import Devnet
from tests.devnet.devnet_util import TEST_APPS


@pytest.fixture
def dn() -> Iterator[Devnet]:
    """A deterministic in-memory devnet: time moves only with advance_time."""
    with Devnet(clock=None, apps=TEST_APPS) as devnet:
        yield devnet


@contextmanager
def refused(devnet: Devnet, error: type[BaseException], match: str | None = None) -> Iterator[Any]:
    """The block must raise ``error`` and leave the whole ledger byte-for-byte unchanged."""
    before = devnet.state_digest()
    with pytest.raises(error, match=match) as info:
        yield info
    assert devnet.state_digest() == before, "a refused transaction changed the ledger"


@pytest.fixture
def refuse() -> Any:
    return refused


@pytest.fixture(scope="session")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProc]:
    """One devnet daemon process shared by the daemon and CLI tests (fast blocks)."""
    with DaemonProc(tmp_path_factory.mktemp("devnet"), block_time=0.1) as proc:
        yield proc
