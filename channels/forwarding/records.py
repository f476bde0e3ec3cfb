"""What multi-hop payments persist: one value per forward, payment part, invoice and payment.

Each is stored as ``[record version, field...]`` in the store's ``hop_records`` table, keyed
within its kind; amounts use the wire's amount encoding (up to 2^256-1). A later release adds
fields at the end with defaults, so every record an earlier release wrote stays readable.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

import attrs

from ..core.state import amount_field, parse_amount
from ..encoding import decode, encode
from ..errors import ChannelsError, DecodeError

RECORD_VERSION = 1
R = TypeVar("R", bound="_Record")


class RecordDecodeError(DecodeError):
    """A stored multi-hop record that cannot be read (a corrupt or foreign row)."""


class _Record:
    KIND: ClassVar[str]
    AMOUNTS: ClassVar[frozenset[str]] = frozenset()

    def to_bytes(self) -> bytes:
        values: list[Any] = [RECORD_VERSION]
        for field in attrs.fields(type(self)):  # type: ignore[arg-type]
            value = getattr(self, field.name)
            if field.name in self.AMOUNTS and value is not None:
                value = amount_field(value)
            elif isinstance(value, tuple):
                value = list(value)
            values.append(value)
        return encode(values)

    @classmethod
    def from_bytes(cls: type[R], data: bytes) -> R:
        try:
            values = decode(data)
            if not isinstance(values, list) or not values or values[0] != RECORD_VERSION:
                raise RecordDecodeError(f"not a version-{RECORD_VERSION} {cls.KIND} record")
            kwargs: dict[str, Any] = {}
            # Fewer values than fields: written before a field was added; the default holds.
            for field, value in zip(attrs.fields(cls), values[1:], strict=False):  # type: ignore[arg-type]
                if field.name in cls.AMOUNTS and value is not None:
                    value = parse_amount(value, field.name)
                elif isinstance(value, list):
                    value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
                kwargs[field.name] = value
            return cls(**kwargs)
        except RecordDecodeError:
            raise
        except (ChannelsError, TypeError, ValueError) as exc:
            raise RecordDecodeError(f"unreadable {cls.KIND} record: {exc}") from None


def lock_key(channel_id: bytes, lock_id: bytes) -> bytes:
    """The key of a lock across channels: channel id, then lock id."""
    return bytes(channel_id) + bytes(lock_id)


@attrs.frozen(kw_only=True)
class Forward(_Record):
    """A lock we forward: ``in`` is the peer's lock to us, ``out`` ours to the next hop.
    ``status``: ``pending`` until ``settled`` (fee earned) or ``failed``."""

    KIND: ClassVar[str] = "forward"
    AMOUNTS: ClassVar[frozenset[str]] = frozenset({"amount_in", "amount_out"})

    in_channel: bytes
    in_lock: bytes
    out_channel: bytes
    out_lock: bytes
    asset: str
    hashlock: bytes
    amount_in: int
    amount_out: int
    in_expiry: int
    out_expiry: int
    shared_secret: bytes  # wraps the failure travelling back to the sender
    status: str = "pending"
    failure: str = ""  # why it failed (a failure code name)
    created: int = 0  # L1 time
    resolved: int = 0
    replay_tag: bytes = b""  # refuses the same onion again until ``in_expiry``

    @property
    def key(self) -> bytes:
        return lock_key(self.in_channel, self.in_lock)

    @property
    def out_key(self) -> bytes:
        return lock_key(self.out_channel, self.out_lock)

    @property
    def fee(self) -> int:
        return self.amount_in - self.amount_out


@attrs.frozen(kw_only=True)
class ReceivedPart(_Record):
    """A lock that pays us as the final hop, held until every part of its payment is in."""

    KIND: ClassVar[str] = "received"
    AMOUNTS: ClassVar[frozenset[str]] = frozenset({"amount", "total_amount"})

    channel_id: bytes
    lock_id: bytes
    hashlock: bytes
    amount: int
    total_amount: int
    expiry: int
    shared_secret: bytes
    status: str = "held"  # held, settled, failed
    created: int = 0
    replay_tag: bytes = b""

    @property
    def key(self) -> bytes:
        return lock_key(self.channel_id, self.lock_id)


@attrs.frozen(kw_only=True)
class InvoiceRecord(_Record):
    """An invoice we issued and its secret: ``unpaid`` until ``paid`` (then it takes no more)."""

    KIND: ClassVar[str] = "invoice"
    AMOUNTS: ClassVar[frozenset[str]] = frozenset({"amount", "received"})

    payment_hash: bytes
    preimage: bytes
    payment_secret: bytes
    amount: int | None
    asset: str
    expires_at: int  # Unix time
    min_final_expiry_delta: int
    text: str
    description: str = ""
    status: str = "unpaid"
    received: int = 0
    paid_at: int = 0

    @property
    def key(self) -> bytes:
        return self.payment_hash


@attrs.frozen(kw_only=True)
class SentPart(_Record):
    """One part of a payment we send: our lock on the first channel of its route."""

    KIND: ClassVar[str] = "part"
    AMOUNTS: ClassVar[frozenset[str]] = frozenset({"amount", "fee"})

    channel_id: bytes
    lock_id: bytes
    payment_hash: bytes
    amount: int  # delivered to the payee by this part
    fee: int  # paid to the forwarders of this part
    route: tuple[str, ...]  # peer ids after us, the payee last
    shared_secrets: tuple[bytes, ...]  # read the failure that comes back
    status: str = "pending"  # pending, succeeded, failed
    failure: str = ""  # "hop N (peer): code_name"
    failed_hop: int = -1
    failure_code: int = 0
    preimage: bytes = b""
    failure_data: bytes = b""  # what the failing hop attached (its channel terms, for a retry)

    @property
    def key(self) -> bytes:
        return lock_key(self.channel_id, self.lock_id)


@attrs.frozen(kw_only=True)
class PaymentRecord(_Record):
    """A payment we make (an invoice or a keysend): one per payment hash, so paying the same
    invoice again finds it instead of paying twice."""

    KIND: ClassVar[str] = "payment"
    AMOUNTS: ClassVar[frozenset[str]] = frozenset({"amount", "fee_paid", "max_fee"})

    payment_hash: bytes
    payee: str
    amount: int
    asset: str
    status: str = "pending"  # pending, succeeded, failed
    fee_paid: int = 0
    preimage: bytes = b""
    route: tuple[str, ...] = ()
    failure: str = ""
    invoice: str = ""
    keysend: bool = False
    max_fee: int | None = None
    created: int = 0  # Unix time
    attempts: int = 0

    @property
    def key(self) -> bytes:
        return self.payment_hash


@attrs.frozen(kw_only=True)
class ChannelPolicy(_Record):
    """A channel's forwarding terms as ``set-fees`` left them (absent: the node's defaults)."""

    KIND: ClassVar[str] = "fees"

    channel_id: bytes
    base_fee: int
    fee_ppm: int
    expiry_delta: int
    htlc_minimum: int
    htlc_maximum: int | None
    enabled: bool = True

    @property
    def key(self) -> bytes:
        return self.channel_id


def record_status(record: _Record) -> str:
    return str(getattr(record, "status", "set"))
