"""The node's event log: what happened, in order, for embedders and ``channels events``.

Every event has a ``cursor`` (an integer that only grows, across restarts too), the wall
``time`` it was recorded (Unix seconds) and a typed ``data`` object whose class names its
kind:

=====================  ======================================================================
kind                   when, and what it carries besides its kind
=====================  ======================================================================
``peer_connected``     our link to a peer came up (``peer_id``)
``peer_disconnected``  the connection to that peer dropped (``peer_id``)
``channel_proposed``   a channel exists: we proposed it, or accepted the peer's (``ours``)
``channel_opened``     both deposits are on the L1: payments may flow
``channel_updated``    a new state is signed by both (a payment, a lock, a move)
``channel_closing``    a final state is signed by both, or the L1 concluded the channel
``channel_disputed``   a state is registered on the L1, or a move forced on it (``deadline``;
                       ``ours``: nothing to refute)
``channel_settled``    funds are back in the L1 accounts (``reason``: why it never opened, if so)
``payment_sent``       our payment is in a state signed by both (``payment_id``, ``amount``, ...)
``payment_received``   the peer paid us
``payment_failed``     our payment did not go through (``reason``)
=====================  ======================================================================

Channel events carry ``channel_id`` (hex), ``peer_id``, ``state``, ``version``, ``asset`` and
our and the peer's balance of it, as ``list-channels`` shows them; payment events carry the
channel, ``payment_id`` (hex), ``asset``, ``amount`` and the ``version`` that carries them
(a failed one its ``reason`` instead; its amount and asset are None when no longer known).

Durability: an event is written in the same store transaction as the change that causes it
(ARCHITECTURE section 6), so a crash loses neither or both, and a restarted node goes on
from the next cursor. A node that stops records no ``peer_disconnected``: after a restart
its peers are announced again.

Bounds: the log keeps the newest ``max_events`` events (a node setting, default 100 000;
older ones are deleted in batches of up to an eighth more). A reader asks for the events
*after* the last cursor it handled; if some of those were deleted it gets ``EventsLost``,
naming the cursor to resume from, never a silent gap. Memory does not grow with readers:
each reads from the store at its own pace, and one that falls more than ``max_events``
behind gets ``EventsLost`` on its next read.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import attrs
import trio

from ..errors import ChannelsError, ConfigError, LocalProtocolError, StorageError

if TYPE_CHECKING:
    from ..core import effects as fx
    from ..core.channel import Channel
    from ..store import Store

READ_BATCH = 256  # events read from the store at once by a following reader


class EventKind(enum.Enum):
    PEER_CONNECTED = "peer_connected"
    PEER_DISCONNECTED = "peer_disconnected"
    CHANNEL_PROPOSED = "channel_proposed"
    CHANNEL_OPENED = "channel_opened"
    CHANNEL_UPDATED = "channel_updated"
    CHANNEL_CLOSING = "channel_closing"
    CHANNEL_DISPUTED = "channel_disputed"
    CHANNEL_SETTLED = "channel_settled"
    PAYMENT_SENT = "payment_sent"
    PAYMENT_RECEIVED = "payment_received"
    PAYMENT_FAILED = "payment_failed"


class EventsLost(ChannelsError):
    """Events after the reader's cursor were deleted to keep the log bounded.

    ``resume_from`` is the cursor to read after now; what was missed can be rebuilt from
    the node's current state (``list-channels``)."""

    def __init__(self, since: int, resume_from: int, kept: int) -> None:
        super().__init__(f"events {since + 1}..{resume_from} were dropped (the node keeps the newest {kept}); "
                         f"resume with since={resume_from} and re-read the current state (list-channels)")
        self.since = since
        self.resume_from = resume_from


class UnknownCursor(LocalProtocolError):
    """A cursor this node never gave out (from another node, or a data dir started afresh)."""


# --- what an event says --------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class PeerConnected:
    kind: ClassVar[EventKind] = EventKind.PEER_CONNECTED
    peer_id: str


@attrs.frozen(kw_only=True)
class PeerDisconnected:
    kind: ClassVar[EventKind] = EventKind.PEER_DISCONNECTED
    peer_id: str


@attrs.frozen(kw_only=True)
class ChannelEvent:
    """A channel's state after the change, as ``list-channels`` shows it (first asset)."""

    channel_id: str
    peer_id: str
    state: str
    version: int
    asset: str
    balance: int
    peer_balance: int


@attrs.frozen(kw_only=True)
class ChannelProposed(ChannelEvent):
    kind: ClassVar[EventKind] = EventKind.CHANNEL_PROPOSED
    ours: bool  # we proposed it (else we accepted the peer's proposal)


@attrs.frozen(kw_only=True)
class ChannelOpened(ChannelEvent):
    kind: ClassVar[EventKind] = EventKind.CHANNEL_OPENED


@attrs.frozen(kw_only=True)
class ChannelUpdated(ChannelEvent):
    kind: ClassVar[EventKind] = EventKind.CHANNEL_UPDATED


@attrs.frozen(kw_only=True)
class ChannelClosing(ChannelEvent):
    kind: ClassVar[EventKind] = EventKind.CHANNEL_CLOSING


@attrs.frozen(kw_only=True)
class ChannelDisputed(ChannelEvent):
    kind: ClassVar[EventKind] = EventKind.CHANNEL_DISPUTED
    deadline: int | None  # L1 time the challenge window ends (None: our registration is not seen yet)
    ours: bool  # the registered state is our latest: nothing to refute


@attrs.frozen(kw_only=True)
class ChannelSettled(ChannelEvent):
    kind: ClassVar[EventKind] = EventKind.CHANNEL_SETTLED
    reason: str = ""  # why it never opened (declined, never funded); empty after a close


@attrs.frozen(kw_only=True)
class PaymentEvent:
    channel_id: str
    peer_id: str
    payment_id: str
    asset: str
    amount: int


@attrs.frozen(kw_only=True)
class PaymentSent(PaymentEvent):
    kind: ClassVar[EventKind] = EventKind.PAYMENT_SENT
    version: int


@attrs.frozen(kw_only=True)
class PaymentReceived(PaymentEvent):
    kind: ClassVar[EventKind] = EventKind.PAYMENT_RECEIVED
    version: int


@attrs.frozen(kw_only=True)
class PaymentFailed:
    kind: ClassVar[EventKind] = EventKind.PAYMENT_FAILED
    channel_id: str
    peer_id: str
    payment_id: str
    asset: str | None  # None: not known here (the payment was not in flight any more): never a made-up 0
    amount: int | None
    reason: str


EventData = (PeerConnected | PeerDisconnected | ChannelProposed | ChannelOpened | ChannelUpdated | ChannelClosing
             | ChannelDisputed | ChannelSettled | PaymentSent | PaymentReceived | PaymentFailed)
CLASSES: dict[str, type[EventData]] = {cls.kind.value: cls for cls in (
    PeerConnected, PeerDisconnected, ChannelProposed, ChannelOpened, ChannelUpdated, ChannelClosing, ChannelDisputed,
    ChannelSettled, PaymentSent, PaymentReceived, PaymentFailed)}


@attrs.frozen
class NodeEvent:
    """One entry of the log. ``as_json()``: ``cursor``, ``time``, ``kind`` and the data's fields."""

    cursor: int
    time: int  # Unix seconds when it was recorded
    data: EventData

    @property
    def kind(self) -> EventKind:
        return self.data.kind

    def as_json(self) -> dict[str, Any]:
        return {"cursor": self.cursor, "time": self.time, "kind": self.kind.value, **attrs.asdict(self.data)}


def encode_body(data: EventData) -> bytes:
    return json.dumps(attrs.asdict(data), sort_keys=True, separators=(",", ":")).encode()


def decode_event(cursor: int, time: int, kind: str, body: bytes) -> NodeEvent:
    cls = CLASSES.get(kind)
    try:
        if cls is None:
            raise ValueError(f"unknown kind {kind!r}")
        fields = json.loads(body)
        known = {f.name for f in attrs.fields(cls)}
        return NodeEvent(cursor, time, cls(**{k: v for k, v in fields.items() if k in known}))
    except (ValueError, TypeError, AttributeError) as exc:
        raise StorageError(f"event {cursor} in the store cannot be read: {exc}") from None


# --- what a step of the engine turns into events -------------------------------------------------


def _channel_fields(ch: Channel, peer_id: str) -> dict[str, Any]:
    alloc = ch.allocation
    return {"channel_id": ch.channel_id.hex(), "peer_id": peer_id, "state": ch.phase.value, "version": int(ch.version),
            "asset": str(alloc.assets[0]), "balance": alloc.balances[0][ch.me],
            "peer_balance": alloc.balances[0][ch.peer]}


def channel_events(before: Channel | None, after: Channel, peer_id: str,
                   effects: Sequence[fx.Effect]) -> list[EventData]:
    """The events of one transition of a channel, from its record before and after and
    the effects it produced: phase changes first, then payments."""
    from ..core import effects as fx
    from ..core.channel import Phase
    from ..core.ops import Payment

    base = _channel_fields(after, peer_id)
    out: list[EventData] = []
    if before is None:
        out.append(ChannelProposed(**base, ours=after.latest_proposer == after.me))
    phase_before = before.phase if before is not None else Phase.PROPOSED
    entered = after.phase if after.phase is not phase_before else None
    if entered is Phase.OPEN:
        out.append(ChannelOpened(**base))
    elif after.phase is Phase.OPEN and before is not None and after.version > before.version:
        out.append(ChannelUpdated(**base))
    elif entered is Phase.CLOSING:
        out.append(ChannelClosing(**base))
    disputes = [e for e in effects if isinstance(e, fx.NotifyDisputed)]
    for d in disputes:
        out.append(ChannelDisputed(**base, deadline=d.deadline, ours=d.ours))
    for m in (e for e in effects if isinstance(e, fx.NotifyProgressed)):  # a move forced on chain: a new
        out.append(ChannelDisputed(**base, deadline=m.deadline, ours=True))  # deadline, nothing to refute
    if entered is Phase.DISPUTED and not disputes:  # we registered; the L1 has not shown it yet
        out.append(ChannelDisputed(**base, deadline=after.deadline, ours=True))
    if entered is Phase.SETTLED:
        reason = next((e.reason for e in effects if isinstance(e, fx.NotifyClosed)), "")
        out.append(ChannelSettled(**base, reason=reason))
    cid = base["channel_id"]
    for e in effects:
        if isinstance(e, fx.NotifyPaymentSent):
            out.append(PaymentSent(channel_id=cid, peer_id=peer_id, payment_id=e.payment_id.hex(), asset=str(e.asset),
                                   amount=e.amount, version=int(e.version)))
        elif isinstance(e, fx.NotifyPaymentReceived):
            out.append(PaymentReceived(channel_id=cid, peer_id=peer_id, payment_id=e.payment_id.hex(),
                                       asset=str(e.asset), amount=e.amount, version=int(e.version)))
        elif isinstance(e, fx.NotifyPaymentFailed):
            # The effect names only the id: the amount is the in-flight payment's.
            op = next((o for o in (before.in_flight if before is not None else ())
                       if isinstance(o, Payment) and o.payment_id == e.payment_id), None)
            out.append(PaymentFailed(channel_id=cid, peer_id=peer_id, payment_id=e.payment_id.hex(),
                                     asset=str(op.asset) if op else None, amount=op.amount if op else None,
                                     reason=e.reason))
    return out


# --- the log -------------------------------------------------------------------------------------


class EventLog:
    """The bounded, durable log over the store. The engine writes it inside its step's
    transaction (``write``) and publishes after the commit (``committed``); readers read
    the store after a cursor and wait on ``added``."""

    def __init__(self, store: Store, max_events: int) -> None:
        if max_events < 1:
            raise ConfigError(f"max_events must be at least 1, not {max_events}")
        self._store = store
        self.max_events = max_events
        self.last = store.last_event_cursor()
        self._count = store.count_events()
        self.added = trio.Event()  # set (and replaced) after every commit that added events
        self.closed = False

    def close(self) -> None:
        """The node stops: following readers end (their ``async for`` returns) instead of waiting."""
        self.closed = True
        self.added.set()

    def write(self, events: Sequence[EventData], now: int) -> tuple[int, int]:
        """Append ``events`` and trim (inside the caller's transaction); what to pass to
        ``committed`` once the transaction commits."""
        last, count = self.last, self._count
        # One statement for the step's events, cursors given in order after the newest ever
        # given (``last`` is that: trims never lower it).
        self._store.append_events([(last + i, now, data.kind.value, encode_body(data))
                                   for i, data in enumerate(events, start=1)])
        last += len(events)
        count += len(events)
        if count > self.max_events + self.max_events // 8:  # trimmed in batches: a delete per step costs
            count -= self._store.trim_events(self.max_events)
        return last, count

    def committed(self, last: int, count: int) -> None:
        grew = last != self.last
        self.last, self._count = last, count
        if grew:
            self.added.set()
            self.added = trio.Event()

    def start(self, since: int | None) -> int:
        """The cursor a reader starting at ``since`` reads after (None: the newest: only new
        events). Raises ``UnknownCursor`` or ``EventsLost`` at once."""
        if since is None:
            return self.last
        if since < 0 or since > self.last:
            raise UnknownCursor(f"cursor {since} is not one of this node's (the newest is {self.last}); "
                                "a cursor from another node or an older data dir?")
        self._check(since)
        return since

    def oldest_since(self) -> int:
        """The earliest ``since`` that loses nothing: everything still kept follows it."""
        return self._store.events_trimmed_through()

    def _check(self, since: int) -> None:
        trimmed = self._store.events_trimmed_through()
        if since < trimmed:
            raise EventsLost(since, trimmed, self.max_events)

    def read(self, since: int, limit: int = READ_BATCH) -> list[NodeEvent]:
        """Up to ``limit`` events after ``since``, oldest first; ``EventsLost`` if some were dropped."""
        self._check(since)
        return [decode_event(*row) for row in self._store.events_after(since, limit=limit)]

    def follow(self, since: int) -> EventFeed:
        return EventFeed(self, since)


class EventFeed:
    """Every event after a cursor, then each new one as it is committed: an async iterator
    that ends only when the node stops. Woken by the log, never polling."""

    def __init__(self, log: EventLog, since: int) -> None:
        self._log = log
        self.cursor = since  # the last event handed out
        self._batch: list[NodeEvent] = []

    def __aiter__(self) -> EventFeed:
        return self

    async def __anext__(self) -> NodeEvent:
        waited = False
        while not self._batch:
            if self._log.closed:
                raise StopAsyncIteration
            added = self._log.added
            self._batch = self._log.read(self.cursor)
            if not self._batch:
                await added.wait()
                waited = True
        if not waited:
            await trio.lowlevel.checkpoint()  # a cancel point on every call, like any trio call
        event = self._batch.pop(0)
        self.cursor = event.cursor
        return event
