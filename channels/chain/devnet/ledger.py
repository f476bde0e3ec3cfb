"""``Devnet``: the devnet ledger in-process, implementing ``channels.chain.base.Ledger``.

Transactions execute at once against the head block and are stamped with its height
and time; deadlines compare against that time. Blocks move time forward:

* ``auto_mine=True`` (default): before each transaction or ``now()``, a block is mined
  if the clock has moved on by a second, so the chain follows the clock by itself;
* ``auto_mine=False``: blocks come only from ``mine()`` / ``advance_time()`` (tests, and
  the daemon, which mines every ``--block-time`` seconds).

``advance_time(s)`` shifts the chain's clock by ``s`` seconds and mines: challenge
windows pass in tests without sleeping. The shift is persisted, so time never goes
backwards across restarts.

``Status.block_time`` reports the mining interval: ``block_time`` as given (the daemon
passes its ``--block-time``; default 1 s). With ``auto_mine`` a block comes at most
once per whole second of the clock, so the default 1.0 is what that mode implies.
"""

from __future__ import annotations

import time as _time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from types import TracebackType

import trio

from ...chain.base import ChainEvent, ChannelOnChain, Malformed, Signer
from ...core.app import DEFAULT_APPS, AppRegistry
from ...core.ids import MAX_U64, NATIVE, Address, AssetId, ChannelId
from ...errors import ConfigError, LedgerError
from . import rules
from . import tx as t
from .constants import DEFAULT_CHAIN_ID
from .ops import DevnetOps, Status
from .scheme import ADJUDICATOR
from .store import LOG_KEPT, Store

CLOCKLESS_GENESIS = 1_700_000_000  # block time of genesis when no clock is given


class Devnet(DevnetOps):
    """The in-process devnet ledger.

    ``path=None`` keeps everything in memory; a path opens (or creates) a SQLite file.
    ``chain_id`` applies when the file is created; an existing file keeps its own.
    ``clock`` returns seconds (default: wall clock); ``None`` means time moves only with
    ``advance_time``, which makes tests fully deterministic. ``block_time`` (seconds) is
    the mining interval ``status()`` reports; ``log_kept`` bounds the event log.
    """

    adjudicator = ADJUDICATOR

    def __init__(self, path: str | Path | None = None, *, chain_id: int = DEFAULT_CHAIN_ID,
                 clock: Callable[[], float] | None = _time.time, auto_mine: bool = True,
                 block_time: float = 1.0, log_kept: int = LOG_KEPT, apps: AppRegistry = DEFAULT_APPS) -> None:
        if not (isinstance(block_time, (int, float)) and 0.001 <= block_time <= 86_400):
            raise ConfigError(f"the block time is 0.001 .. 86400 seconds, got {block_time!r}")
        self._clock = clock
        self._auto_mine = auto_mine
        self.block_time = float(block_time)
        self.apps = apps  # the game rules ``progress`` checks (the nodes must play the same)
        self.store = Store(path, chain_id=chain_id, genesis_time=self._clock_time(0), log_kept=log_kept)
        self._changed = trio.Event()

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Devnet:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # --- blocks and time -----------------------------------------------------------------------

    def _clock_time(self, offset: int) -> int:
        return (int(self._clock()) if self._clock is not None else CLOCKLESS_GENESIS) + offset

    def mine(self) -> Status:
        """Mine one block at the clock's time (never earlier than the previous block)."""
        self.store.mine(self._clock_time(self.store.time_offset))
        self._notify()
        return self.head

    def advance_time(self, seconds: int) -> Status:
        """Move the chain's clock ``seconds`` forward and mine a block at the new time."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        self.store.set_time_offset(self.store.time_offset + int(seconds))
        return self.mine()

    def _follow_clock(self) -> None:
        if self._auto_mine and self._clock_time(self.store.time_offset) > self.store.time:
            self.mine()

    @property
    def head(self) -> Status:
        """Height and time of the latest block, the chain id and the block interval."""
        return Status(height=self.store.height, time=self.store.time, chain_id=self.store.chain_id,
                      block_time=self.block_time, genesis=self.store.genesis)

    async def status(self) -> Status:
        await trio.lowlevel.checkpoint()
        self._follow_clock()
        return self.head

    @property
    def chain_id(self) -> int:
        return self.store.chain_id

    @property
    def genesis(self) -> bytes:
        """The ledger's genesis id: 32 random bytes drawn at its creation (its name, with the chain id)."""
        return self.store.genesis

    def state_digest(self) -> bytes:
        """SHA-256 of the whole ledger (tests: a refused transaction must not change it)."""
        return self.store.digest()

    # --- transactions --------------------------------------------------------------------------

    def submit(self, tx: t.Tx) -> list[ChainEvent]:
        """Apply one signed transaction atomically; raises a typed ``LedgerError`` if refused."""
        self._follow_clock()
        writes = rules.apply_tx(self.store, tx, now=self.store.time, apps=self.apps)
        events = self.store.commit(writes)
        self._notify()
        return events

    def submit_bytes(self, data: bytes) -> list[ChainEvent]:
        return self.submit(t.decode_tx(data))

    def submit_many(self, txs: Sequence[bytes]) -> list[list[ChainEvent] | LedgerError]:
        """Apply encoded transactions in order under one durable commit; each succeeds or
        fails on its own (its events, or the typed error it was refused with)."""
        self._follow_clock()

        def step(data: bytes) -> Callable[[], rules.Writes]:
            return lambda: rules.apply_tx(self.store, t.decode_tx(data), now=self.store.time, apps=self.apps)

        results = self.store.commit_batch([step(data) for data in txs])
        self._notify()
        return results

    def faucet_sync(self, to: Address, amount: int, asset: AssetId | str = NATIVE, *,
                    request_id: bytes | None = None) -> int:
        """Development money: mint ``amount`` to ``to``; returns the new balance.

        A retried request with the same ``request_id`` mints nothing again."""
        if request_id is None or self.store.receipt(rules.faucet_receipt(request_id)) is None:
            self._follow_clock()
            self.store.commit(rules.apply_faucet(self.store, to, AssetId(asset), amount, request_id=request_id))
            self._notify()
        return self.store.balance(to, AssetId(asset))

    async def faucet(self, to: Address, amount: int, asset: AssetId | str = NATIVE) -> int:
        await trio.lowlevel.checkpoint()
        return self.faucet_sync(to, amount, asset)

    def receipt(self, tx_digest: bytes) -> tuple[int, list[ChainEvent]] | None:
        """``(height, events)`` if the transaction with this digest was applied, else None."""
        return self.store.receipt(tx_digest)

    async def _submit(self, key: Signer, op: t.Op) -> list[ChainEvent]:
        await trio.lowlevel.checkpoint()
        tx = t.sign_tx(key, chain_id=self.store.chain_id, nonce=self.store.nonce(key.address), op=op)
        return self.submit(tx)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    # --- reads ---------------------------------------------------------------------------------

    def channel_sync(self, channel_id: ChannelId) -> ChannelOnChain:
        return channel_view(self.store, channel_id)

    async def channel(self, channel_id: ChannelId) -> ChannelOnChain:
        await trio.lowlevel.checkpoint()
        return self.channel_sync(channel_id)

    async def secret_time(self, hashlock: bytes) -> int | None:
        await trio.lowlevel.checkpoint()
        secret = self.store.secret(hashlock)
        return None if secret is None else secret.time

    async def balance(self, account: Address, asset: AssetId = NATIVE) -> int:
        await trio.lowlevel.checkpoint()
        return self.store.balance(account, asset)

    async def balances(self, account: Address) -> dict[AssetId, int]:
        await trio.lowlevel.checkpoint()
        return self.store.balances(account)

    async def nonce(self, account: Address) -> int:
        await trio.lowlevel.checkpoint()
        return self.store.nonce(account)

    async def now(self) -> int:
        await trio.lowlevel.checkpoint()
        self._follow_clock()
        return self.store.time

    async def events(self, *, after: int = 0) -> AsyncIterator[ChainEvent]:
        """Every event with cursor > ``after``, then new ones as they are committed.

        Raises ``CursorPruned`` if events after ``after`` were pruned, also later, should a
        slow reader fall behind the retained log."""
        check_cursor(after)
        cursor = after
        while True:
            batch = self.store.events_after(cursor)
            if not batch:
                # No await between the query and taking the Event: nothing can commit in between.
                await self._changed.wait()
                continue
            for ev in batch:
                cursor = ev.cursor
                yield ev


def check_cursor(value: object, what: str = "an event cursor") -> None:
    """A cursor is an integer in 0 .. 2^64-1, as on the wire; anything else is malformed."""
    if type(value) is not int or not 0 <= value <= MAX_U64:
        raise Malformed(f"{what} is an integer in 0 .. 2^64-1, got {value!r}")


def channel_view(store: Store, channel_id: ChannelId) -> ChannelOnChain:
    """The adjudicator's view of a channel; an unknown channel is empty, not an error.

    ``holdings`` is what the escrow holds now: the deposits until the withdraw, then the
    amounts of the locks still waiting to be decided ({} once every lock is paid)."""
    record = store.channel(channel_id)
    if record is None:
        return ChannelOnChain(holdings={}, registered=None, deadline=None, concluded=False, withdrawn=False)
    holdings = rules.escrow_of(record, () if record.withdrawn else store.deposits(channel_id))
    return ChannelOnChain(holdings=holdings, registered=record.state, deadline=record.deadline,
                          concluded=record.concluded, withdrawn=record.withdrawn, checkpoint=record.checkpoint)
