"""Multi-hop payments from a node: invoices, paying them, keysend, fees and routing.

The forwarding machine (``channels.forwarding``) runs inside the engine; this is the shell
around it on the payer's side: it plans routes over what the node knows (its own channels,
the gossiped graph, the invoice's route hints), builds each part's onion, hands the part to
the engine (which stores it with the lock proposal in one transaction) and waits for the
parts to end, retrying the failed amount on other routes. One payment per payment hash: a
second ``pay`` of the same invoice joins the first or returns its result, also after a restart.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs
import trio

from ..core.channel import Phase
from ..core.ids import AssetId, ChannelId
from ..core.ops import AddLock
from ..encoding import decode
from ..errors import ChannelsError
from ..forwarding import FeePolicy, HopMachine, PaymentRecord, SentPart
from ..forwarding.records import ChannelPolicy, Forward, InvoiceRecord, _Record
from ..invoice import decode_invoice, make_invoice
from ..invoice.fields import HintHop as InvoiceHint
from ..invoice.peerid import peer_id_of, public_key_of
from ..onion import FinalPayload, ForwardPayload, Hop, build_onion, onion_public_from_ed25519, random_session_key
from ..onion.failures import AMOUNT_BELOW_MINIMUM, FEE_INSUFFICIENT, INCORRECT_EXPIRY, PERM, UPDATE
from ..routing.attempts import Payment as Attempts
from ..routing.errors import RoutingError
from ..routing.graph import Edge, Graph, HintHop
from ..routing.mpp import SplitParams
from ..routing.pathfind import Route, RouteParams, candidate_routes, explain
from ..routing.scorer import Scorer
from .engine import HopItem, Waiter

if TYPE_CHECKING:
    from .node import Node

log = logging.getLogger("channels.node.payments")

PAY_TIMEOUT = 120.0  # seconds a ``pay`` waits for its outcome before returning ``pending``
MAX_ROUTE_HINTS = 4  # channels an invoice names as private routes to us
KEY_CACHE = 1024  # node keys whose peer id and onion key are kept (recomputed per payment otherwise)


class PaymentError(ChannelsError):
    """A payment cannot be made as asked (a bad invoice, our own invoice, no route)."""


def direction(source: bytes, target: bytes) -> int:
    """An edge's direction in a channel: 0 from the lower node key (the routing graph's rule)."""
    return 0 if source < target else 1


class Payments:
    """The node's invoices, payments and fee policies (``node.payments``)."""

    def __init__(self, node: Node, hops: HopMachine) -> None:
        self.node = node
        self.hops = hops
        self.scorer = Scorer()
        self.graph_source: Callable[[], Graph] | None = None  # the gossiped graph, when gossip runs
        self._part_done: dict[bytes, trio.Event] = {}
        self._paying: dict[bytes, trio.Event] = {}  # payment hash -> set when that pay() returns
        self.learned: dict[tuple[bytes, int], FeePolicy] = {}  # terms a hop sent back in a failure

    # ------------------------------------------------------------------ engine hooks

    def resolved(self, parts: list[SentPart]) -> None:
        for part in parts:
            event = self._part_done.pop(part.key, None)
            if event is not None:
                event.set()

    # ------------------------------------------------------------------ keys and records

    @property
    def node_key(self) -> bytes:
        """Our key in routes and invoices: the libp2p identity's Ed25519 public key."""
        key: bytes = self.node.identity.public_key
        return key

    def record(self, kind: type[_Record], key: bytes) -> Any:
        row = self.node.store.hop_record(kind.KIND, key)
        return None if row is None else kind.from_bytes(row[2])

    def records(self, kind: type[_Record], *, status: str | None = None, limit: int | None = None) -> list[Any]:
        return [kind.from_bytes(body) for _, _, _, body in
                self.node.store.hop_records(kind.KIND, status=status, limit=limit)]

    async def _store(self, *records: _Record, proposals: tuple[tuple[ChannelId, Any], ...] = ()) -> None:
        waiter = Waiter()
        await self.node._inputs.send(HopItem(records=records, proposals=proposals, waiter=waiter))
        await waiter.wait()

    # ------------------------------------------------------------------ invoices

    async def create_invoice(self, amount: int | None, *, description: str = "", expiry: int = 3600,
                             asset: str | None = None) -> tuple[str, InvoiceRecord]:
        """A signed invoice for ``amount`` to this node, with route hints over our open channels."""
        if amount is not None and (type(amount) is not int or amount <= 0):
            raise PaymentError("the amount must be a positive integer")
        if type(expiry) is not int or not 1 <= expiry <= 365 * 24 * 3600:
            raise PaymentError("the expiry must be between 1 second and a year")
        preimage, secret = os.urandom(32), os.urandom(32)
        asset = asset or self._default_asset()
        limits = self.hops.limits
        text, invoice = make_invoice(
            self.node.identity, chain_id=self.node.chain_id, l1_account=bytes(self.node.l1_address),
            preimage=preimage, payment_secret=secret, timestamp=int(time.time()), amount=amount, asset=asset,
            description=description, expiry=expiry, min_final_expiry_delta=limits.min_final_expiry_delta,
            route_hints=self._route_hints(asset))
        record = InvoiceRecord(payment_hash=invoice.payment_hash, preimage=preimage, payment_secret=secret,
                               amount=amount, asset=asset, expires_at=invoice.expires_at,
                               min_final_expiry_delta=invoice.min_final_expiry_delta, text=text,
                               description=description)
        await self._store(record)
        return text, record

    def _default_asset(self) -> str:
        for ch in self.node.engine.channels.values():
            if ch.phase is Phase.OPEN:
                return str(ch.allocation.assets[0])
        return "native"

    def _route_hints(self, asset: str) -> tuple[tuple[InvoiceHint, ...], ...]:
        """Our open channels with the most the peer can send us: how a payer reaches us even when
        gossip has not told it about them. Fees are the peer's, as gossip last told us, else the
        defaults; a hop asking more fails with its terms and the payer retries with them."""
        hints = []
        for cid, ch in self.node.engine.channels.items():
            if ch.phase is not Phase.OPEN or asset not in ch.allocation.assets or ch.multi:
                continue  # (an n-party channel carries app moves only)
            peer = self.node.engine.peer_of[cid]
            try:
                public_key_of(peer)
            except ChannelsError:
                continue  # not a libp2p peer id: nobody could build an onion to it
            policy = self.hops.default_policy
            a = ch.allocation.asset_index(AssetId(asset))
            hints.append((ch.allocation.balances[a][ch.peer], InvoiceHint(
                peer_id=peer, channel_ref=bytes(cid), fee_base=policy.base_fee, fee_ppm=policy.fee_ppm,
                expiry_delta=policy.expiry_delta)))
        hints.sort(key=lambda h: -h[0])
        return tuple((hint,) for _, hint in hints[:MAX_ROUTE_HINTS])

    # ------------------------------------------------------------------ the graph

    def graph(self) -> Graph:
        """What the node knows of the network: the gossiped graph (or an empty one)."""
        return self.graph_source() if self.graph_source is not None else Graph()

    def own_edges(self, asset: str) -> tuple[list[Edge], dict[tuple[bytes, int], tuple[int, int]]]:
        """Our open channels as edges out of us, with what we can send on each known exactly."""
        me = self.node_key
        edges, liquidity = [], {}
        for cid, ch in self.node.engine.channels.items():
            peer = self.node.engine.peer_of[cid]
            if ch.phase is not Phase.OPEN or ch.closing_requested or asset not in ch.allocation.assets or ch.multi:
                continue
            if peer not in self.node.engine.peers_up:
                continue
            try:
                other = _peer_key(peer)
            except ChannelsError:
                continue
            spendable = ch.spendable(asset)  # type: ignore[arg-type]
            if spendable <= 0:
                continue
            d = direction(me, other)
            edges.append(Edge(channel_id=bytes(cid), direction=d, source=me, target=other,
                              capacity=max(1, sum(ch.allocation.balances[ch.allocation.asset_index(AssetId(asset))]))))
            liquidity[(bytes(cid), d)] = (spendable, spendable)
        return edges, liquidity

    def _with_learned(self, edges: list[Edge]) -> list[Edge]:
        out = []
        for e in edges:
            policy = self.learned.get(e.key)
            out.append(e if policy is None else attrs.evolve(
                e, base_fee=policy.base_fee, fee_ppm=policy.fee_ppm, expiry_delta=policy.expiry_delta))
        return out

    def _hints(self, hints: Any, payee: bytes) -> list[list[HintHop]]:
        out = []
        for hint in hints:
            hops = []
            keys = [_peer_key(h.peer_id) for h in hint]
            for i, h in enumerate(hint):
                after = keys[i + 1] if i + 1 < len(hint) else payee
                policy = self.learned.get((bytes(h.channel_ref), direction(keys[i], after)))
                hops.append(HintHop(node=keys[i], channel_id=bytes(h.channel_ref),
                                    base_fee=policy.base_fee if policy else h.fee_base,
                                    fee_ppm=policy.fee_ppm if policy else h.fee_ppm,
                                    expiry_delta=policy.expiry_delta if policy else h.expiry_delta))
            out.append(hops)
        return out

    def route_params(self, final_delta: int, max_fee: int | None) -> RouteParams:
        return RouteParams(max_total_expiry=self.hops.limits.max_expiry_horizon // 2,
                           final_expiry_delta=final_delta + self.node.config.lock_margin, max_fee=max_fee)

    def candidates(self, peer_id: str, amount: int, *, asset: str | None = None, count: int = 3) -> dict[str, Any]:
        """``route PEER_ID AMOUNT``: candidate routes and why the first was chosen."""
        target = _peer_key(peer_id)
        asset = asset or self._default_asset()
        own, liquidity = self.own_edges(asset)
        try:
            routes = candidate_routes(self.graph(), self.node_key, target, amount, count=count,
                                      extra_edges=self._with_learned(own), liquidity=liquidity,
                                      params=self.route_params(self.hops.limits.min_final_expiry_delta, None),
                                      scorer=self.scorer, now=time.monotonic())
        except RoutingError as exc:
            raise PaymentError(f"no route to {peer_id} for {amount}: {exc}") from None
        if not routes:
            raise PaymentError(f"no route to {peer_id} for {amount} over the channels this node knows")
        result = explain(routes)
        for r, route in zip(result["candidates"], routes, strict=True):
            r["route"] = [_peer_id(k) for k in route.nodes[1:]]
        return result

    # ------------------------------------------------------------------ paying

    async def pay_invoice(self, text: str, *, amount: int | None = None, max_fee: int | None = None,
                          timeout: float = PAY_TIMEOUT) -> PaymentRecord:
        """Pay an invoice; return its payment record (``succeeded``, ``failed`` or, after
        ``timeout``, ``pending``). Paying an invoice already paid returns the first payment."""
        try:
            invoice = decode_invoice(text, now=time.time(), chain_id=self.node.chain_id)
        except ChannelsError as exc:
            raise PaymentError(f"invalid invoice: {exc}") from None
        if invoice.payee == self.node.peer_id:
            raise PaymentError("this invoice is ours: a node does not pay itself")
        if invoice.amount is None and amount is None:
            raise PaymentError("the invoice names no amount: give one")
        if invoice.amount is not None and amount is not None and amount != invoice.amount:
            raise PaymentError(f"the invoice asks for {invoice.amount}, not {amount}")
        total = invoice.amount or amount
        assert total is not None
        return await self._pay(
            payment_hash=invoice.payment_hash, payee=invoice.payee, amount=total, asset=invoice.asset,
            max_fee=max_fee, timeout=timeout, secret=invoice.payment_secret, keysend=None,
            final_delta=invoice.min_final_expiry_delta, hints=invoice.route_hints, text=text)

    async def keysend(self, peer_id: str, amount: int, *, max_fee: int | None = None,
                      timeout: float = PAY_TIMEOUT) -> PaymentRecord:
        """Pay ``amount`` to a peer without an invoice: the preimage travels in its onion."""
        _peer_key(peer_id)
        if peer_id == self.node.peer_id:
            raise PaymentError("a node does not pay itself")
        if type(amount) is not int or amount <= 0:
            raise PaymentError("the amount must be a positive integer")
        preimage = os.urandom(32)
        return await self._pay(payment_hash=hashlib.sha256(preimage).digest(), payee=peer_id, amount=amount,
                               asset=self._default_asset(), max_fee=max_fee, timeout=timeout, secret=None,
                               keysend=preimage, final_delta=self.hops.limits.min_final_expiry_delta, hints=(),
                               text="")

    async def _pay(self, *, payment_hash: bytes, payee: str, amount: int, asset: str, max_fee: int | None,
                   timeout: float, secret: bytes | None, keysend: bytes | None, final_delta: int,
                   hints: Any, text: str) -> PaymentRecord:
        while payment_hash in self._paying:  # a concurrent pay of the same invoice: share its outcome
            await self._paying[payment_hash].wait()
        existing: PaymentRecord | None = self.record(PaymentRecord, payment_hash)
        if existing is not None and existing.status == "succeeded":
            return existing  # double payment: an invoice is paid once, whatever the caller retries
        if existing is not None and existing.status == "pending":
            return await self._wait_pending(existing, timeout)
        done = self._paying[payment_hash] = trio.Event()
        try:
            record = PaymentRecord(payment_hash=payment_hash, payee=payee, amount=amount, asset=asset,
                                   invoice=text, keysend=keysend is not None, max_fee=max_fee,
                                   created=int(time.time()),
                                   attempts=existing.attempts if existing is not None else 0)
            await self._store(record)  # before any lock: a restart finds the payment, not a stray lock
            with trio.move_on_after(timeout):
                record = await self._attempts(record, _peer_key(payee), secret, keysend, final_delta, hints)
                return record
            return self.record(PaymentRecord, payment_hash) or record
        finally:
            del self._paying[payment_hash]
            done.set()

    async def _wait_pending(self, record: PaymentRecord, timeout: float) -> PaymentRecord:
        """A payment left pending (by a restart, or a ``pay`` that timed out): wait for its parts."""
        with trio.move_on_after(timeout):
            while True:
                parts = [p for p in self._parts_of(record.payment_hash) if p.status == "pending"]
                current: PaymentRecord = self.record(PaymentRecord, record.payment_hash)
                if current.status != "pending":
                    return current
                if not parts:
                    return await self._conclude(current)
                await self._wait_part(parts[0])
        return self.record(PaymentRecord, record.payment_hash) or record

    def _parts_of(self, payment_hash: bytes) -> list[SentPart]:
        return [p for p in self.records(SentPart) if p.payment_hash == payment_hash]

    async def _conclude(self, record: PaymentRecord) -> PaymentRecord:
        """After a restart: the parts have all ended, so the payment's outcome is known."""
        parts = self._parts_of(record.payment_hash)
        won = [p for p in parts if p.status == "succeeded"]
        if won:
            record = attrs.evolve(record, status="succeeded", preimage=won[0].preimage,
                                  fee_paid=sum(p.fee for p in won), route=won[0].route)
        else:
            failure = parts[0].failure if parts else "no part was sent"
            record = attrs.evolve(record, status="failed", failure=failure)
        await self._store(record)
        return record

    async def _wait_part(self, part: SentPart) -> None:
        event = self._part_done.setdefault(part.key, trio.Event())
        if part.key not in self.hops.parts:  # ended before we started waiting
            self._part_done.pop(part.key, None)
            return
        await event.wait()

    async def _attempts(self, record: PaymentRecord, target: bytes, secret: bytes | None, keysend: bytes | None,
                        final_delta: int, raw_hints: Any) -> PaymentRecord:
        """Rounds of parts until the payee takes the payment, or nothing more can be tried."""
        own, liquidity = self.own_edges(record.asset)
        # A keysend's preimage is in its one onion: it cannot be split.
        split = SplitParams(max_parts=1) if keysend is not None else None
        attempts = Attempts(self.graph(), self.node_key, target, record.amount, self.scorer,
                            params=self.route_params(final_delta, record.max_fee), split_params=split,
                            hints=self._hints(raw_hints, target), extra_edges=self._with_learned(own),
                            liquidity=liquidity)
        flying: dict[bytes, tuple[Route, SentPart]] = {}
        last_failure, giving_up, need_plan = "no route", False, True
        send_channel, receive_channel = trio.open_memory_channel[SentPart](64)
        async with trio.open_nursery() as nursery:
            while True:
                if need_plan and not giving_up:
                    need_plan = False
                    try:
                        routes = attempts.plan(time.monotonic())
                    except RoutingError as exc:
                        last_failure = str(exc) if not flying and last_failure == "no route" else last_failure
                        giving_up = True
                        routes = []
                    for route in routes:
                        part = await self._send_part(record, route, secret, keysend)
                        flying[part.key] = (route, part)
                        nursery.start_soon(self._report, part, send_channel)
                    record = attrs.evolve(record, attempts=record.attempts + len(routes))
                if not flying:
                    break
                done = await receive_channel.receive()
                route, _ = flying.pop(done.key)
                if done.status == "succeeded":  # the payee took the payment: every part settles
                    record = attrs.evolve(record, status="succeeded", preimage=done.preimage, failure="",
                                          fee_paid=done.fee + sum(p.fee for _, p in flying.values()),
                                          route=done.route)
                    break
                last_failure = done.failure
                if self._learn(route, done):
                    # The hop told us its terms: not a lack of liquidity, so no lesson for the
                    # scorer; the same routes are priced again with what it asks.
                    attempts._take(route)
                    attempts.hints = self._hints(raw_hints, target)
                    attempts.extra_edges = self._with_learned(own)
                    need_plan = True
                    continue
                if done.failure_code & PERM and done.failed_hop == len(route.hops) - 1:
                    giving_up = True  # the payee refused the payment itself: no other route will do
                    continue
                # The node at ``failed_hop`` could not forward onto the next channel of the route.
                blamed = done.failed_hop + 1 if 0 <= done.failed_hop < len(route.hops) - 1 else 0
                attempts.failed(route, blamed, time.monotonic())
                need_plan = True
            nursery.cancel_scope.cancel()
        if record.status != "succeeded":
            record = attrs.evolve(record, status="failed", failure=last_failure)
        await self._store(record)
        return record

    async def _report(self, part: SentPart, out: trio.MemorySendChannel[SentPart]) -> None:
        await self._wait_part(part)
        got: SentPart = self.record(SentPart, part.key)
        await out.send(got)

    def _learn(self, route: Route, part: SentPart) -> bool:
        """A hop that failed with new terms (fee or expiry delta too low): use them from now
        on; True when they differ from what the route assumed."""
        hop = part.failed_hop
        if not 0 <= hop < len(route.hops) - 1 or not part.failure_code & UPDATE or not part.failure_data:
            return False
        nxt = route.hops[hop + 1]
        try:
            policy = FeePolicy.from_fields(decode(part.failure_data))
        except (ChannelsError, TypeError, ValueError):
            return False
        key = (nxt.channel_id, nxt.direction)
        if self.learned.get(key) == policy or part.failure_code not in (FEE_INSUFFICIENT, INCORRECT_EXPIRY,
                                                                       AMOUNT_BELOW_MINIMUM):
            return False
        self.learned[key] = policy
        log.info("hop %d asks base %d ppm %d delta %d; routing again with its terms", hop, policy.base_fee,
                 policy.fee_ppm, policy.expiry_delta)
        return True

    async def _send_part(self, record: PaymentRecord, route: Route, secret: bytes | None,
                         keysend: bytes | None) -> SentPart:
        """Build the part's onion and hand its first lock to the engine with its record."""
        now = self.node.engine.now
        hops = []
        for i, hop in enumerate(route.hops):
            node_public = _onion_key(hop.target)
            if i + 1 < len(route.hops):
                nxt = route.hops[i + 1]
                payload: Any = ForwardPayload(next_hop=nxt.channel_id, amount=nxt.amount, expiry=now + nxt.expiry)
            else:
                payload = FinalPayload(amount=hop.amount, expiry=now + hop.expiry, total_amount=record.amount,
                                       payment_secret=secret, keysend_preimage=keysend)
            hops.append(Hop(public_key=node_public, payload=payload))
        built = build_onion(hops, session_key=random_session_key(), associated_data=record.payment_hash)
        first = route.hops[0]
        lock_id = os.urandom(16)
        part = SentPart(channel_id=first.channel_id, lock_id=lock_id, payment_hash=record.payment_hash,
                        amount=route.amount, fee=route.fee, route=tuple(_peer_id(h.target) for h in route.hops),
                        shared_secrets=built.shared_secrets)
        op = AddLock(lock_id=lock_id, asset=AssetId(record.asset), amount=first.amount,
                     hashlock=record.payment_hash, expiry=now + first.expiry, onion=built.packet)
        self._part_done[part.key] = trio.Event()
        await self._store(part, proposals=((ChannelId(first.channel_id), op),))
        return part

    # ------------------------------------------------------------------ fees and listings

    async def set_fees(self, channel_id: ChannelId, *, base: int | None = None, ppm: int | None = None,
                       expiry_delta: int | None = None, htlc_minimum: int | None = None,
                       htlc_maximum: int | None = None, enabled: bool | None = None) -> FeePolicy:
        """Change what forwarding out of ``channel_id`` costs; returns the new terms."""
        from ..forwarding import check_expiry_delta

        self.node._channel(channel_id)
        old = self.hops.policy(bytes(channel_id))
        policy = FeePolicy(base_fee=old.base_fee if base is None else base,
                           fee_ppm=old.fee_ppm if ppm is None else ppm,
                           expiry_delta=old.expiry_delta if expiry_delta is None else expiry_delta,
                           htlc_minimum=old.htlc_minimum if htlc_minimum is None else htlc_minimum,
                           htlc_maximum=old.htlc_maximum if htlc_maximum is None else htlc_maximum,
                           enabled=old.enabled if enabled is None else enabled)
        check_expiry_delta(policy.expiry_delta, self.node.config.lock_margin)
        await self._store(ChannelPolicy(channel_id=bytes(channel_id), base_fee=policy.base_fee,
                                        fee_ppm=policy.fee_ppm, expiry_delta=policy.expiry_delta,
                                        htlc_minimum=policy.htlc_minimum, htlc_maximum=policy.htlc_maximum,
                                        enabled=policy.enabled))
        if self.node.gossip is not None:
            await self.node.gossip.publish_policy(channel_id, policy)
        return policy

    def list_forwards(self, limit: int | None = None) -> list[dict[str, Any]]:
        out = []
        for f in self.records(Forward, limit=limit):
            out.append({"in_channel": f.in_channel.hex(), "out_channel": f.out_channel.hex(),
                        "amount_in": f.amount_in, "amount_out": f.amount_out,
                        "fee": f.fee if f.status == "settled" else 0, "asset": f.asset, "status": f.status,
                        "failure": f.failure, "payment_hash": f.hashlock.hex()})
        return out

    def fees_earned(self) -> int:
        return sum(f.fee for f in self.records(Forward, status="settled"))

    def payment_json(self, record: PaymentRecord) -> dict[str, Any]:
        return {"payment_hash": record.payment_hash.hex(), "status": record.status, "amount": record.amount,
                "asset": record.asset, "fee_paid": record.fee_paid, "route": list(record.route),
                "preimage": record.preimage.hex() if record.preimage else None, "payee": record.payee,
                "failure": record.failure or None, "keysend": record.keysend, "attempts": record.attempts}


def _peer_key(peer_id: str) -> bytes:
    try:
        # Cached: a base58 decode and re-encode, for every payment and every channel of ours.
        return _key_of(peer_id) if isinstance(peer_id, str) else public_key_of(peer_id)
    except ChannelsError as exc:
        raise PaymentError(f"not a peer id with an Ed25519 key: {exc}") from None


@functools.lru_cache(maxsize=KEY_CACHE)
def _key_of(peer_id: str) -> bytes:
    return public_key_of(peer_id)


@functools.lru_cache(maxsize=KEY_CACHE)
def _peer_id(key: bytes) -> str:
    return peer_id_of(key)


@functools.lru_cache(maxsize=KEY_CACHE)
def _onion_key(key: bytes) -> bytes:
    """A node's X25519 onion key: a point decompression (~80 us), wanted for every hop of every payment."""
    return onion_public_from_ed25519(key)
