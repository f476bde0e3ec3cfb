"""Devnet transactions: typed operations, a signed envelope, and their canonical bytes.

A transaction is ``[TX_TYPE, chain_id, sender, nonce, [op_type, *op_fields], signature]``
in canonical msgpack (``channels.encoding``). The sender signs, with Ed25519,

    sha256("p2p-channels/devnet/tx/v1" || encode([chain_id, sender, nonce, op]))

so a signature is valid for one chain (cross-chain replay), one account and one nonce
(same-chain replay) only. The encoding is canonical, so the signed bytes have one form.
"""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar

import attrs

from ... import encoding
from ...chain.base import Malformed, Signer, TooLarge
from ...core.ids import Address, AssetId, ChannelId
from ...core.state import ADDRESS_LEN, HASH_LEN, ChannelParams, SignedState, State, amount_field, parse_amount
from ...errors import DecodeError

TX_DOMAIN = b"p2p-channels/devnet/tx/v1"
TX_TYPE = 32
MAX_TX_SIZE = 60 * 1024  # below the 64 KiB frame cap, leaving room for the RPC envelope
MAX_PREIMAGE = 256
SIGNATURE_LEN = 64


def _addr(v: Any, what: str) -> Address:
    if type(v) is not bytes or len(v) != ADDRESS_LEN:
        raise DecodeError(f"{what} must be a {ADDRESS_LEN}-byte address")
    return Address(v)


def _u64(v: Any, what: str) -> int:
    if type(v) is not int or not 0 <= v <= encoding.INT_MAX:
        raise DecodeError(f"{what} must be an unsigned 64-bit integer")
    return v


def _asset(v: Any) -> AssetId:
    if type(v) is not str or not 0 < len(v) <= 32 or not v.isprintable():
        raise DecodeError("asset must be a printable string of 1..32 characters")
    return AssetId(v)


def _fixed(v: Any, size: int, what: str) -> bytes:
    if type(v) is not bytes or len(v) != size:
        raise DecodeError(f"{what} must be {size} bytes")
    return v


def _fields(f: list[Any], n: int, what: str) -> list[Any]:
    if len(f) != n:
        raise DecodeError(f"{what} has {n} fields, got {len(f)}")
    return f


@attrs.frozen(kw_only=True)
class Transfer:
    type_id: ClassVar[int] = 2
    to: Address
    asset: AssetId
    amount: int

    def to_fields(self) -> list[Any]:
        return [self.to, self.asset, amount_field(self.amount)]

    @classmethod
    def from_fields(cls, f: list[Any]) -> Transfer:
        f = _fields(f, 3, "transfer")
        return cls(to=_addr(f[0], "recipient"), asset=_asset(f[1]), amount=parse_amount(f[2], "amount"))


@attrs.frozen(kw_only=True)
class CreateToken:
    type_id: ClassVar[int] = 4
    asset: AssetId

    def to_fields(self) -> list[Any]:
        return [self.asset]

    @classmethod
    def from_fields(cls, f: list[Any]) -> CreateToken:
        return cls(asset=_asset(_fields(f, 1, "create-token")[0]))


@attrs.frozen(kw_only=True)
class Mint:
    type_id: ClassVar[int] = 6
    to: Address
    asset: AssetId
    amount: int

    def to_fields(self) -> list[Any]:
        return [self.to, self.asset, amount_field(self.amount)]

    @classmethod
    def from_fields(cls, f: list[Any]) -> Mint:
        f = _fields(f, 3, "mint")
        return cls(to=_addr(f[0], "recipient"), asset=_asset(f[1]), amount=parse_amount(f[2], "amount"))


@attrs.frozen(kw_only=True)
class Deposit:
    type_id: ClassVar[int] = 8
    channel_id: ChannelId
    asset: AssetId
    amount: int

    def to_fields(self) -> list[Any]:
        return [self.channel_id, self.asset, amount_field(self.amount)]

    @classmethod
    def from_fields(cls, f: list[Any]) -> Deposit:
        f = _fields(f, 3, "deposit")
        return cls(channel_id=ChannelId(_fixed(f[0], HASH_LEN, "channel id")), asset=_asset(f[1]),
                   amount=parse_amount(f[2], "amount"))


@attrs.frozen(kw_only=True)
class _WithState:
    """Conclude, register, refute and checkpoint all carry ``(params, signed state)``."""

    params: ChannelParams
    signed: SignedState

    def to_fields(self) -> list[Any]:
        return [self.params.to_fields(), self.signed.to_fields()]

    @classmethod
    def from_fields(cls, f: list[Any]) -> Any:
        f = _fields(f, 2, "adjudicator call")
        return cls(params=ChannelParams.from_fields(f[0]), signed=SignedState.from_fields(f[1]))


@attrs.frozen(kw_only=True)
class Conclude(_WithState):
    type_id: ClassVar[int] = 10


@attrs.frozen(kw_only=True)
class Register(_WithState):
    type_id: ClassVar[int] = 12


@attrs.frozen(kw_only=True)
class Refute(_WithState):
    type_id: ClassVar[int] = 14


@attrs.frozen(kw_only=True)
class Progress:
    type_id: ClassVar[int] = 16
    params: ChannelParams
    signed_prev: SignedState
    next_state: State
    mover: int
    signature: bytes

    def to_fields(self) -> list[Any]:
        return [self.params.to_fields(), self.signed_prev.to_fields(), self.next_state.to_fields(),
                self.mover, self.signature]

    @classmethod
    def from_fields(cls, f: list[Any]) -> Progress:
        f = _fields(f, 5, "progress")
        return cls(params=ChannelParams.from_fields(f[0]), signed_prev=SignedState.from_fields(f[1]),
                   next_state=State.from_fields(f[2]), mover=_u64(f[3], "mover"),
                   signature=_fixed(f[4], SIGNATURE_LEN, "mover signature"))


@attrs.frozen(kw_only=True)
class Checkpoint(_WithState):
    type_id: ClassVar[int] = 18


@attrs.frozen(kw_only=True)
class Withdraw:
    type_id: ClassVar[int] = 20
    params: ChannelParams

    def to_fields(self) -> list[Any]:
        return [self.params.to_fields()]

    @classmethod
    def from_fields(cls, f: list[Any]) -> Withdraw:
        return cls(params=ChannelParams.from_fields(_fields(f, 1, "withdraw")[0]))


@attrs.frozen(kw_only=True)
class RegisterSecret:
    type_id: ClassVar[int] = 22
    preimage: bytes

    def to_fields(self) -> list[Any]:
        return [self.preimage]

    @classmethod
    def from_fields(cls, f: list[Any]) -> RegisterSecret:
        v = _fields(f, 1, "register-secret")[0]
        if type(v) is not bytes or not 0 < len(v) <= MAX_PREIMAGE:
            raise DecodeError(f"preimage must be 1..{MAX_PREIMAGE} bytes")
        return cls(preimage=v)


Op = (Transfer | CreateToken | Mint | Deposit | Conclude | Register | Refute | Progress | Checkpoint
      | Withdraw | RegisterSecret)
OPS: dict[int, type[Any]] = {c.type_id: c for c in (Transfer, CreateToken, Mint, Deposit, Conclude, Register,
                                                     Refute, Progress, Checkpoint, Withdraw, RegisterSecret)}


def op_record(op: Op) -> list[Any]:
    return [op.type_id, *op.to_fields()]


def decode_op(value: Any) -> Op:
    if type(value) is not list or not value or type(value[0]) is not int:
        raise DecodeError("an operation is an array that starts with its type id")
    cls = OPS.get(value[0])
    if cls is None:
        raise DecodeError(f"unknown operation type {value[0]}")
    op: Op = cls.from_fields(value[1:])
    return op


@attrs.frozen(kw_only=True)
class Tx:
    """A signed transaction; ``digest`` is what ``signature`` covers."""

    chain_id: int
    sender: Address
    nonce: int
    op: Op
    signature: bytes = b""

    @property
    def digest(self) -> bytes:
        return tx_digest(self.chain_id, self.sender, self.nonce, self.op)

    def to_bytes(self) -> bytes:
        return encoding.encode([TX_TYPE, self.chain_id, self.sender, self.nonce, op_record(self.op), self.signature])


def tx_digest(chain_id: int, sender: Address, nonce: int, op: Op) -> bytes:
    body = encoding.encode([chain_id, sender, nonce, op_record(op)])
    return hashlib.sha256(TX_DOMAIN + body).digest()


def sign_tx(key: Signer, *, chain_id: int, nonce: int, op: Op) -> Tx:
    """Build and sign a transaction locally: keys never leave the client."""
    digest = tx_digest(chain_id, key.address, nonce, op)
    return Tx(chain_id=chain_id, sender=key.address, nonce=nonce, op=op, signature=key.sign_digest(digest))


def decode_tx(data: bytes) -> Tx:
    """Strictly decode transaction bytes; raises ``TooLarge`` or ``Malformed``, never anything else."""
    if len(data) > MAX_TX_SIZE:
        raise TooLarge(f"a transaction is at most {MAX_TX_SIZE} bytes, got {len(data)}")
    try:
        value = encoding.decode(data, max_size=MAX_TX_SIZE)
        if type(value) is not list or len(value) != 6 or value[0] != TX_TYPE:
            raise DecodeError("a transaction is [32, chain_id, sender, nonce, op, signature]")
        return Tx(chain_id=_u64(value[1], "chain id"), sender=_addr(value[2], "sender"),
                  nonce=_u64(value[3], "nonce"), op=decode_op(value[4]),
                  signature=_fixed(value[5], SIGNATURE_LEN, "signature"))
    except DecodeError as exc:
        raise Malformed(f"malformed transaction: {exc}") from None
