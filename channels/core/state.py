"""Frozen value objects of a channel: parameters, allocation, locks, states.

Money is always an ``int`` of base units. Each class has ``to_fields`` /
``from_fields`` giving the positional value tree used by ``channels.encoding``;
``from_fields`` validates shape and ranges so a decoded peer message can never
build an impossible value (it raises ``DecodeError``).
"""

from __future__ import annotations

import hashlib
import struct
from typing import Any

import attrs

from ..errors import DecodeError
from .ids import MAX_AMOUNT, MAX_U64, Address, AssetId, ChannelId, Version

ADDRESS_LEN = 32  # the devnet's addresses (Ed25519 public keys)
# Any backend's addresses: 20 bytes on an EVM chain, 32 on the devnet. One channel's
# participants all have one length (the backend's), which the node checks against its L1.
MIN_ADDRESS_LEN, MAX_ADDRESS_LEN = 20, 64
MAX_SIGNATURE_LEN = 128  # Ed25519: 64, secp256k1 with recovery id: 65; the scheme checks the exact length
NONCE_LEN = 32
HASH_LEN = 32
MAX_PARTICIPANTS = 8
MAX_ASSETS = 16
MAX_LOCKS = 256
MAX_APP_DATA = 8 * 1024
MAX_NAME = 32


def amount_field(n: int) -> int | bytes:
    """An amount in its one encoded form: a msgpack integer up to 2^64-1 (every amount 0.1.0
    could write), big-endian bytes without a leading zero above that (msgpack stops at 64 bits)."""
    return n if n <= MAX_U64 else n.to_bytes((n.bit_length() + 7) // 8, "big")


def parse_amount(value: Any, what: str) -> int:
    """The inverse of ``amount_field``; any other form is refused, so each amount has one
    encoding and a signed state cannot be re-encoded into a different message."""
    if type(value) is int and 0 <= value <= MAX_U64:
        return value
    if type(value) is bytes and 8 < len(value) <= 32 and value[0] != 0:
        return int.from_bytes(value, "big")
    raise DecodeError(f"{what} must be an integer in 0 .. 2^256-1 (bytes above 2^64-1)")


def check_amount(value: Any, what: str) -> int:
    if type(value) is not int or not 0 <= value <= MAX_AMOUNT:
        raise DecodeError(f"{what} must be an integer in 0 .. 2^256-1")
    return value


def parse_address(value: Any, what: str) -> Address:
    """An L1 address of any backend: ``MIN_ADDRESS_LEN`` .. ``MAX_ADDRESS_LEN`` bytes."""
    if type(value) is not bytes or not MIN_ADDRESS_LEN <= len(value) <= MAX_ADDRESS_LEN:
        raise DecodeError(f"{what} must be {MIN_ADDRESS_LEN}..{MAX_ADDRESS_LEN} bytes")
    return Address(value)


def parse_u64(value: Any, what: str) -> int:
    if type(value) is not int or not 0 <= value <= MAX_U64:
        raise DecodeError(f"{what} must be an unsigned 64-bit integer")
    return value


def parse_bytes(value: Any, what: str, *, size: int | None = None, max_size: int | None = None) -> bytes:
    if type(value) is not bytes:
        raise DecodeError(f"{what} must be bytes")
    if size is not None and len(value) != size:
        raise DecodeError(f"{what} must be {size} bytes")
    if max_size is not None and len(value) > max_size:
        raise DecodeError(f"{what} longer than {max_size} bytes")
    return value


def parse_name(value: Any, what: str) -> str:
    if type(value) is not str or not 0 < len(value) <= MAX_NAME or not value.isprintable():
        raise DecodeError(f"{what} must be a printable string of 1..{MAX_NAME} characters")
    return value


def parse_list(value: Any, what: str, *, size: int | None = None, max_size: int = 4096) -> list[Any]:
    if type(value) is not list:
        raise DecodeError(f"{what} must be an array")
    if size is not None and len(value) != size:
        raise DecodeError(f"{what} must have {size} elements")
    if len(value) > max_size:
        raise DecodeError(f"{what} has more than {max_size} elements")
    return value


@attrs.frozen(kw_only=True)
class ChannelParams:
    """What a channel is; fixed for its whole life. ``channel_id`` is derived from it."""

    chain_id: int
    adjudicator: bytes
    participants: tuple[Address, ...]
    challenge_duration: int  # seconds
    nonce: bytes  # random, chosen by the proposer: two channels never share an id
    app_id: str = "payment"

    def validate(self) -> None:
        parse_u64(self.chain_id, "chain id")
        parse_bytes(self.adjudicator, "adjudicator", max_size=64)
        if not 2 <= len(self.participants) <= MAX_PARTICIPANTS:
            raise DecodeError(f"a channel has 2..{MAX_PARTICIPANTS} participants")
        for p in self.participants:
            parse_address(p, "participant address")
        if len({len(p) for p in self.participants}) != 1:
            raise DecodeError("participants' addresses must have one length (their L1's)")
        if len(set(self.participants)) != len(self.participants):
            raise DecodeError("participants must be distinct")
        if not 1 <= self.challenge_duration <= 365 * 86400:
            raise DecodeError("challenge duration must be 1 second .. 1 year")
        parse_bytes(self.nonce, "nonce", size=NONCE_LEN)
        parse_name(self.app_id, "app id")

    @property
    def channel_id(self) -> ChannelId:
        """SHA-256 over a fixed, domain-separated layout of every parameter.

        Layout v1 (32-byte addresses, every channel 0.1.0 opened) implies the address
        length; other lengths use v2, which states it: without it, a different split of the
        same bytes into addresses and app id could give two parameter sets one id."""
        width = len(self.participants[0]) if self.participants else ADDRESS_LEN
        domain = (b"p2p-channels/channel-id/v1" if width == ADDRESS_LEN
                  else b"p2p-channels/channel-id/v2" + struct.pack(">B", width))
        parts = [domain, struct.pack(">QH", self.chain_id, len(self.adjudicator)),
                 self.adjudicator, struct.pack(">B", len(self.participants)), *self.participants,
                 struct.pack(">Q", self.challenge_duration), self.nonce,
                 struct.pack(">B", len(self.app_id.encode())), self.app_id.encode()]
        return ChannelId(hashlib.sha256(b"".join(parts)).digest())

    def index_of(self, address: Address) -> int:
        return self.participants.index(address)

    def to_fields(self) -> list[Any]:
        return [self.chain_id, self.adjudicator, list(self.participants), self.challenge_duration,
                self.nonce, self.app_id]

    @classmethod
    def from_fields(cls, f: Any) -> "ChannelParams":
        f = parse_list(f, "channel params", size=6)
        parts = parse_list(f[2], "participants", max_size=MAX_PARTICIPANTS)
        params = cls(chain_id=parse_u64(f[0], "chain id"), adjudicator=parse_bytes(f[1], "adjudicator", max_size=64),
                     participants=tuple(parse_address(p, "participant") for p in parts),
                     challenge_duration=parse_u64(f[3], "challenge duration"),
                     nonce=parse_bytes(f[4], "nonce", size=NONCE_LEN), app_id=parse_name(f[5], "app id"))
        params.validate()
        return params


@attrs.frozen(kw_only=True)
class Lock:
    """A hash-time lock: ``amount`` goes to ``payee`` if the preimage of ``hashlock``
    was registered on the L1 before ``expiry`` (L1 time), else back to ``payer``."""

    asset: AssetId
    amount: int
    hashlock: bytes
    expiry: int
    payer: int
    payee: int
    lock_id: bytes = b"\x00"  # 1..32 bytes, unique among the channel's locks; operations name it

    def to_fields(self) -> list[Any]:
        return [self.asset, amount_field(self.amount), self.hashlock, self.expiry, self.payer, self.payee,
                self.lock_id]

    @classmethod
    def from_fields(cls, f: Any) -> "Lock":
        f = parse_list(f, "lock", size=7)
        lock_id = parse_bytes(f[6], "lock id", max_size=32)
        if not lock_id:
            raise DecodeError("a lock id is 1..32 bytes")
        return cls(asset=AssetId(parse_name(f[0], "lock asset")), amount=parse_amount(f[1], "lock amount"),
                   hashlock=parse_bytes(f[2], "hashlock", size=HASH_LEN), expiry=parse_u64(f[3], "lock expiry"),
                   payer=parse_u64(f[4], "lock payer"), payee=parse_u64(f[5], "lock payee"), lock_id=lock_id)


@attrs.frozen(kw_only=True)
class Allocation:
    """Who gets what: ``balances[a][p]`` is participant ``p``'s balance of ``assets[a]``."""

    assets: tuple[AssetId, ...]
    balances: tuple[tuple[int, ...], ...]
    locks: tuple[Lock, ...] = ()

    def validate(self, n_participants: int) -> None:
        if not 1 <= len(self.assets) <= MAX_ASSETS or len(set(self.assets)) != len(self.assets):
            raise DecodeError(f"an allocation has 1..{MAX_ASSETS} distinct assets")
        if len(self.balances) != len(self.assets):
            raise DecodeError("one balance row per asset")
        for row in self.balances:
            if len(row) != n_participants:
                raise DecodeError("one balance per participant")
            for b in row:
                check_amount(b, "balance")
        if len(self.locks) > MAX_LOCKS:
            raise DecodeError(f"more than {MAX_LOCKS} locks")
        for lock in self.locks:
            if lock.asset not in self.assets:
                raise DecodeError("lock on an asset the allocation does not hold")
            if not (lock.payer < n_participants and lock.payee < n_participants) or lock.payer == lock.payee:
                raise DecodeError("lock payer and payee must be distinct participants")
        for lock in self.locks:
            check_amount(lock.amount, "lock amount")
        for a in range(len(self.assets)):
            if self.total(a) > MAX_AMOUNT:
                # Overflow: an L1 holding uint256 could never pay such a state out.
                raise DecodeError("asset total exceeds 2^256-1")

    def asset_index(self, asset: AssetId) -> int:
        return self.assets.index(asset)

    def total(self, asset_index: int) -> int:
        """Everything held for one asset: balances plus locked amounts (conserved)."""
        asset = self.assets[asset_index]
        return sum(self.balances[asset_index]) + sum(lk.amount for lk in self.locks if lk.asset == asset)

    def totals(self) -> tuple[int, ...]:
        return tuple(self.total(a) for a in range(len(self.assets)))

    def balance(self, asset: AssetId, participant: int) -> int:
        return self.balances[self.asset_index(asset)][participant]

    def with_transfer(self, asset: AssetId, amount: int, payer: int, payee: int) -> "Allocation":
        a = self.asset_index(asset)
        row = list(self.balances[a])
        row[payer] -= amount
        row[payee] += amount
        rows = list(self.balances)
        rows[a] = tuple(row)
        return attrs.evolve(self, balances=tuple(rows))

    def to_fields(self) -> list[Any]:
        return [list(self.assets), [[amount_field(b) for b in r] for r in self.balances],
                [lk.to_fields() for lk in self.locks]]

    @classmethod
    def from_fields(cls, f: Any) -> "Allocation":
        f = parse_list(f, "allocation", size=3)
        assets = tuple(AssetId(parse_name(a, "asset")) for a in parse_list(f[0], "assets", max_size=MAX_ASSETS))
        rows = tuple(tuple(parse_amount(b, "balance") for b in parse_list(r, "balance row", max_size=MAX_PARTICIPANTS))
                     for r in parse_list(f[1], "balances", max_size=MAX_ASSETS))
        locks = tuple(Lock.from_fields(lk) for lk in parse_list(f[2], "locks", max_size=MAX_LOCKS))
        return cls(assets=assets, balances=rows, locks=locks)


@attrs.frozen(kw_only=True)
class State:
    """One version of a channel's off-chain state."""

    channel_id: ChannelId
    version: Version
    allocation: Allocation
    app_data: bytes = b""
    is_final: bool = False

    def to_fields(self) -> list[Any]:
        return [self.channel_id, self.version, self.allocation.to_fields(), self.app_data, self.is_final]

    @classmethod
    def from_fields(cls, f: Any) -> "State":
        f = parse_list(f, "state", size=5)
        if type(f[4]) is not bool:
            raise DecodeError("is_final must be a boolean")
        return cls(channel_id=ChannelId(parse_bytes(f[0], "channel id", size=HASH_LEN)),
                   version=Version(parse_u64(f[1], "version")), allocation=Allocation.from_fields(f[2]),
                   app_data=parse_bytes(f[3], "app data", max_size=MAX_APP_DATA), is_final=f[4])


@attrs.frozen(kw_only=True)
class SignedState:
    """A state with one signature slot per participant (``b""`` = not signed yet)."""

    state: State
    signatures: tuple[bytes, ...]

    @property
    def is_fully_signed(self) -> bool:
        return all(self.signatures)

    def with_signature(self, index: int, signature: bytes) -> "SignedState":
        sigs = list(self.signatures)
        sigs[index] = signature
        return attrs.evolve(self, signatures=tuple(sigs))

    def to_fields(self) -> list[Any]:
        return [self.state.to_fields(), list(self.signatures)]

    @classmethod
    def from_fields(cls, f: Any) -> "SignedState":
        f = parse_list(f, "signed state", size=2)
        raw = parse_list(f[1], "signatures", max_size=MAX_PARTICIPANTS)
        sigs = tuple(parse_bytes(s, "signature", max_size=MAX_SIGNATURE_LEN) for s in raw)
        return cls(state=State.from_fields(f[0]), signatures=sigs)
