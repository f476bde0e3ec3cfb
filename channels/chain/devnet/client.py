"""``RemoteDevnet``: the ``Ledger`` of a devnet daemon, reached over libp2p.

Keys stay here: each transaction is signed locally (nonce and chain id bound) and
only its bytes travel. Errors come back as ``(code, message)`` and are re-raised as
the same ``LedgerError`` subclass the daemon raised.

Reconnection: reads retry once on a fresh stream. A transaction whose answer was lost
is looked up by its receipt and sent again only if it was not applied (its nonce makes
a resend apply at most once); ``LedgerUnavailable`` means the daemon stayed out of
reach. ``events()`` resubscribes from its last cursor after a daemon restart, so a
watcher never misses or repeats an event; while the daemon refuses it a subscription
(``too_many_subscriptions``) it polls EVENTS instead, and it raises ``CursorPruned``
when the events after its cursor are gone (the caller must resync).
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from functools import partial
from typing import Any, TypeVar

import trio

from ...chain.base import BadNonce, ChainEvent, ChannelOnChain, LedgerUnavailable, Malformed, Signer, TooLarge
from ...core.ids import NATIVE, Address, AssetId, ChannelId
from ...core.state import amount_field
from ...errors import LedgerError, sole_error
from ...net import Host, NetError, RpcRemoteError, open_host
from ...net.request_response import RpcClient, open_rpc_client, open_subscription
from . import codec as rc
from . import tx as t
from .errors import CursorPruned, RateLimited, TooManySubscriptions
from .ledger import check_cursor
from .ops import DevnetOps, Status

logger = logging.getLogger(__name__)

T = TypeVar("T")
NONCE_RETRIES = 3
DELIVERY_RETRIES = 3
RESUBSCRIBE_MAX_DELAY = 2.0
POLL_INTERVAL = 1.0  # seconds between EVENTS polls while the daemon refuses a subscription
POLL_BEFORE_RESUBSCRIBE = 30.0  # seconds of polling before asking for a subscription again
FAUCET_PATIENCE = 10.0  # seconds a faucet request waits out ``rate_limited`` before raising it
FAUCET_RETRY_DELAY = 0.5  # the per-peer ration refills one request per 0.5 s


class RemoteDevnet(DevnetOps):
    """A client of one devnet daemon; create it with ``open_remote_devnet``."""

    def __init__(self, host: Host, address: str, peer_id: str, nursery: trio.Nursery, *, timeout: float) -> None:
        self._host = host
        self._address = address
        self.peer_id = peer_id
        self._nursery = nursery
        self._timeout = timeout
        self._client: RpcClient | None = None
        self._client_scope: trio.CancelScope | None = None
        self._connect_lock = trio.Lock()
        self._key_locks: dict[Address, trio.Lock] = {}
        self._nonces: dict[Address, int] = {}
        self._chain_id: int | None = None

    # --- transport -----------------------------------------------------------------------------

    async def _run_client(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Own one RPC stream until cancelled; ``started((client, cancel_scope))`` once open."""
        started = False
        try:
            async with AsyncExitStack() as stack:
                client = await self._open_stream(stack, partial(open_rpc_client, self._host, self.peer_id,
                                                                rc.RPC_PROTOCOL, timeout=self._timeout))
                with trio.CancelScope() as scope:
                    task_status.started((client, scope))
                    started = True
                    await trio.sleep_forever()
        except Exception as exc:
            if not started:
                raise
            # The stream's failure must not take the caller's block down: the client is
            # marked closed, and the next call opens a new stream.
            logger.debug("devnet rpc stream ended: %r", exc)

    async def _open_stream(self, stack: AsyncExitStack, opener: Callable[[], AbstractAsyncContextManager[T]]) -> T:
        """Enter a stream context on ``stack``; ``Host.open_stream`` re-dials a restarted daemon."""
        try:
            await self._host.connect(self._address, timeout=self._timeout)
            return await stack.enter_async_context(opener())
        except NetError as exc:
            raise LedgerUnavailable(f"cannot reach the devnet at {self._address}: {exc}") from None

    async def _get_client(self) -> RpcClient:
        async with self._connect_lock:
            if self._client is None or self._client.closed:
                if self._client_scope is not None:
                    self._client_scope.cancel()
                self._client, self._client_scope = await self._nursery.start(self._run_client)
            return self._client

    async def _call(self, type_id: int, *fields: Any, idempotent: bool = True) -> list[Any]:
        return await self.call_raw(rc.encode_request(type_id, *fields), idempotent=idempotent)

    async def call_raw(self, request: bytes, *, idempotent: bool = False) -> list[Any]:
        """Send request bytes, return the response fields or raise the ledger's typed error.

        ``idempotent`` requests are retried once on a fresh stream if the answer is lost."""
        for attempt in (1, 2):
            client = await self._get_client()
            try:
                return rc.decode_response(await client.call(request))
            except RpcRemoteError as exc:
                raise LedgerError(f"the devnet failed the request: {exc}") from None
            except NetError as exc:
                if not idempotent or attempt == 2:
                    raise LedgerUnavailable(f"no answer from the devnet at {self._address}: {exc}") from None
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        if self._client_scope is not None:
            self._client_scope.cancel()

    # --- reads ---------------------------------------------------------------------------------

    async def status(self) -> Status:
        fields = await self._call(rc.STATUS)
        if len(fields) < 4:
            raise Malformed("a status answer has at least 4 fields")
        height, time, chain_id, _adjudicator = fields[:4]
        # Fields may be appended to an answer: the ones after those known here are ignored.
        # A daemon from before block_time sends 4 (then block_time is None), one from before
        # genesis ids 5 (then genesis is None).
        block_ms = fields[4] if len(fields) > 4 else None
        if block_ms is not None and not (type(block_ms) is int and block_ms >= 1):
            raise Malformed("the block time is a positive number of milliseconds")
        genesis = fields[5] if len(fields) > 5 else None  # from before genesis ids: None
        if genesis is not None and not (type(genesis) is bytes and len(genesis) == 32):
            raise Malformed("the genesis id is 32 bytes")
        self._chain_id = chain_id
        return Status(height=height, time=time, chain_id=chain_id,
                      block_time=None if block_ms is None else block_ms / 1000, genesis=genesis)

    async def _get_chain_id(self) -> int:
        if self._chain_id is None:
            await self.status()
        assert self._chain_id is not None
        return self._chain_id

    async def now(self) -> int:
        return (await self.status()).time

    async def nonce(self, account: Address) -> int:
        (n,) = await self._call(rc.NONCE, account)
        return int(n)

    async def balance(self, account: Address, asset: AssetId = NATIVE) -> int:
        (n,) = await self._call(rc.BALANCE, account, asset)
        return rc.amount_from_response(n)

    async def balances(self, account: Address) -> dict[AssetId, int]:
        (f,) = await self._call(rc.BALANCES, account)
        return rc.amounts_from_fields(f)

    async def channel(self, channel_id: ChannelId) -> ChannelOnChain:
        (f,) = await self._call(rc.CHANNEL, channel_id)
        return rc.channel_from_fields(f)

    async def secret_time(self, hashlock: bytes) -> int | None:
        (time,) = await self._call(rc.SECRET_TIME, hashlock)
        return None if time is None else int(time)

    async def events_page(self, *, after: int = 0, limit: int = rc.MAX_EVENTS_PER_CALL) -> list[ChainEvent]:
        """One page of stored events (polling alternative to ``events``).

        Raises ``CursorPruned`` if events after ``after`` were pruned."""
        check_cursor(after)
        check_cursor(limit, "a page limit")
        (f,) = await self._call(rc.EVENTS, after, limit)
        return rc.events_from_fields(f)

    async def events(self, *, after: int = 0) -> AsyncIterator[ChainEvent]:
        """Every event with cursor > ``after``, then new ones; survives daemon restarts.

        Raises ``CursorPruned`` (re-read the state, then start again from a later cursor);
        every other failure is retried."""
        check_cursor(after)
        cursor, delay = after, 0.05
        while True:
            refused = False
            try:
                async with AsyncExitStack() as stack:
                    request = rc.encode_request(rc.SUBSCRIBE, cursor)
                    sub = await self._open_stream(stack, partial(open_subscription, self._host, self.peer_id,
                                                                 rc.EVENTS_PROTOCOL, request, timeout=self._timeout))
                    try:
                        async for frame in sub:
                            ev = rc.decode_event(frame)
                            if ev.cursor <= cursor:
                                continue  # never repeat an event, whatever the server sends
                            cursor, delay = ev.cursor, 0.05
                            yield ev
                    except RpcRemoteError as exc:
                        refusal = rc.subscription_refusal(str(exc))
                        if refusal is None:
                            raise
                        raise refusal from None
            except TooManySubscriptions as exc:
                logger.warning("devnet refused an event subscription (%s); polling instead", exc)
                refused = True
            except CursorPruned:
                raise  # retrying cannot help: the events after the cursor are gone
            except (NetError, LedgerError) as exc:
                logger.info("devnet event stream interrupted (%s); resubscribing after %d", exc, cursor)
            if refused:
                # The daemon's subscription slots are taken (maybe by someone else's flood):
                # a watcher must still see every event, so it polls until it may subscribe.
                async for ev in self._poll(cursor, POLL_BEFORE_RESUBSCRIBE):
                    cursor = ev.cursor
                    yield ev
            await trio.sleep(delay)
            delay = min(delay * 2, RESUBSCRIBE_MAX_DELAY)

    async def _poll(self, after: int, duration: float) -> AsyncIterator[ChainEvent]:
        """Events after ``after`` by EVENTS pages for ``duration`` seconds (ends early if unreachable)."""
        cursor, until = after, trio.current_time() + duration
        while trio.current_time() < until:
            try:
                page = await self.events_page(after=cursor)
            except CursorPruned:
                raise
            except LedgerError:
                return  # back to subscribing, which retries with its backoff
            for ev in page:
                if ev.cursor > cursor:
                    cursor = ev.cursor
                    yield ev
            if len(page) < rc.MAX_EVENTS_PER_CALL:
                await trio.sleep(POLL_INTERVAL)

    # --- writes --------------------------------------------------------------------------------

    async def faucet(self, to: Address, amount: int, asset: AssetId | str = NATIVE) -> int:
        """Development money; waits out the daemon's faucet ration for up to ``FAUCET_PATIENCE`` s."""
        # The request id makes a retry after a lost answer (or a refusal) mint nothing twice.
        request_id = os.urandom(16)
        give_up = trio.current_time() + FAUCET_PATIENCE
        while True:
            try:
                (balance,) = await self._call(rc.FAUCET, to, asset, amount_field(amount), request_id)
                return rc.amount_from_response(balance)
            except RateLimited:
                if trio.current_time() >= give_up:
                    raise
                await trio.sleep(FAUCET_RETRY_DELAY)

    async def receipt(self, tx_digest: bytes) -> tuple[int, list[ChainEvent]] | None:
        """``(height, events)`` if the transaction with this digest was applied, else None."""
        height, events = await self._call(rc.RECEIPT, tx_digest)
        return None if height is None else (int(height), rc.events_from_fields(events))

    async def submit(self, tx: t.Tx) -> list[ChainEvent]:
        """Send a transaction signed elsewhere, as is (no nonce management).

        If the answer is lost (daemon restart, dropped connection), the receipt tells
        whether it was applied; if not, the same bytes are sent again. The nonce makes
        that safe: a transaction is applied at most once, whatever is retried."""
        data = tx.to_bytes()
        if len(data) > t.MAX_TX_SIZE:
            raise TooLarge(f"the transaction is {len(data)} bytes; the devnet takes {t.MAX_TX_SIZE}")
        lost = False
        for attempt in range(DELIVERY_RETRIES):
            try:
                return await self.submit_bytes(data)
            except LedgerUnavailable:
                if attempt == DELIVERY_RETRIES - 1:
                    raise
                lost = True
            except BadNonce:
                if not lost:
                    raise
                found = await self.receipt(tx.digest)  # the lost attempt may have won the race
                if found is None:
                    raise
                return found[1]
            found = await self.receipt(tx.digest)
            if found is not None:
                return found[1]  # the lost attempt was applied
        raise AssertionError("unreachable")

    async def submit_bytes(self, data: bytes) -> list[ChainEvent]:
        (events,) = await self._call(rc.SUBMIT, data, idempotent=False)
        return rc.events_from_fields(events)

    async def _submit(self, key: Signer, op: t.Op) -> list[ChainEvent]:
        chain_id = await self._get_chain_id()
        account = key.address
        async with self._key_locks.setdefault(account, trio.Lock()):
            for attempt in range(NONCE_RETRIES):
                nonce = self._nonces.get(account)
                if nonce is None:
                    nonce = await self.nonce(account)
                try:
                    events = await self.submit(t.sign_tx(key, chain_id=chain_id, nonce=nonce, op=op))
                except BadNonce:
                    # Another process used this key: refetch the nonce (nothing was applied).
                    self._nonces.pop(account, None)
                    if attempt == NONCE_RETRIES - 1:
                        raise
                    continue
                except LedgerUnavailable:
                    self._nonces.pop(account, None)
                    raise
                self._nonces[account] = nonce + 1
                return events
        raise AssertionError("unreachable")


@asynccontextmanager
async def open_remote_devnet(address: str, *, host: Host | None = None,
                             timeout: float = 10.0) -> AsyncIterator[RemoteDevnet]:
    """Connect to the devnet daemon at ``address`` (a full multiaddr with ``/p2p/<id>``).

    Pass the node's ``host`` to share its connections; without one, a private host
    with a throwaway identity (listening nowhere) is opened for the block."""
    try:
        async with _maybe_host(host) as h, trio.open_nursery() as nursery:
            try:
                peer_id = await h.connect(address, timeout=timeout)
            except NetError as exc:
                raise LedgerUnavailable(f"cannot reach the devnet at {address} ({exc})") from None
            remote = RemoteDevnet(h, address, peer_id, nursery, timeout=timeout)
            try:
                yield remote
            finally:
                await remote.aclose()
    except BaseExceptionGroup as group:
        # The nurseries wrap the caller's own error: hand back a lone error as itself,
        # so ``except StaleVersion`` around the block works.
        leaf = sole_error(group, Exception)
        if leaf is None:
            raise
        raise leaf from None


@asynccontextmanager
async def _maybe_host(host: Host | None) -> AsyncIterator[Host]:
    if host is not None:
        yield host
        return
    async with open_host(identity_seed=os.urandom(32), listen=[]) as own:
        yield own
