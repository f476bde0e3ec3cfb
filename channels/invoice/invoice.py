"""Invoices: signed, compact payment requests (proto/05-invoice.md).

Text: ``<network prefix>1<bech32m data>``. Data: a version byte, tagged fields in increasing
tag order, and an Ed25519 signature by the payee's libp2p identity key, whose public key is
inside the payee's peer id. Encoding and decoding are pure and deterministic: the clock
enters only as the ``now`` a caller passes to have expiry checked.
"""

from __future__ import annotations

from typing import Any, Protocol

import attrs

from ..core.ids import MAX_AMOUNT, MAX_U64, NATIVE
from ..core.state import MAX_NAME
from ..crypto import SIGNATURE_LEN, sha256, verify
from ..errors import LocalProtocolError
from . import bech32m
from .errors import (
    BadEncoding,
    BadSignature,
    Expired,
    InvalidField,
    MissingField,
    NonCanonical,
    UnknownNetwork,
    UnknownRequiredField,
    UnsupportedVersion,
    WrongChain,
)
from .fields import (
    HASH_LEN,
    MAX_U32,
    TAG_AMOUNT,
    TAG_ASSET,
    TAG_CHAIN_ID,
    TAG_DESCRIPTION,
    TAG_EXPIRY,
    TAG_FEATURES,
    TAG_L1_ACCOUNT,
    TAG_MIN_FINAL_EXPIRY_DELTA,
    TAG_NAMES,
    TAG_PAYEE,
    TAG_PAYMENT_HASH,
    TAG_PAYMENT_SECRET,
    TAG_ROUTE_HINTS,
    TAG_TIMESTAMP,
    RouteHint,
    check_features,
    check_int,
    check_route_hints,
    check_text,
    read_features,
    read_route_hints,
    read_stream,
    read_text,
    read_uint,
    write_features,
    write_route_hints,
    write_stream,
    write_uint,
)
from .peerid import ED25519_PREFIX, b58encode, check_peer_id_bytes, peer_id_bytes, peer_id_of

VERSION = 0
SIGNATURE_DOMAIN = b"p2p-channels/invoice/v0"  # the payee's identity key signs other things too
MAX_INVOICE_LENGTH = 2048  # characters of text, checked before anything else
MAX_DESCRIPTION = 640  # bytes of UTF-8
MAX_EXTRA_FIELDS = 16  # unknown odd fields kept on an Invoice (each is bounded by the total length)
DEFAULT_EXPIRY = 3600  # seconds after ``timestamp``, when the field is absent
DEFAULT_MIN_FINAL_EXPIRY_DELTA = 600  # seconds the payee's incoming lock must have left, when absent
DEVNET = "chd"
REQUIRED = (TAG_CHAIN_ID, TAG_PAYMENT_HASH, TAG_PAYMENT_SECRET, TAG_TIMESTAMP, TAG_PAYEE, TAG_L1_ACCOUNT)


@attrs.frozen
class Network:
    """What an invoice's prefix names: the L1 backend, hence the payee account's length."""

    prefix: str
    backend: str
    address_length: int


NETWORKS = {DEVNET: Network(DEVNET, "devnet", 32)}


class Signer(Protocol):
    """The payee's libp2p identity key (a ``channels.crypto.SigningKey`` is one)."""

    @property
    def public_key(self) -> bytes: ...

    def sign(self, message: bytes) -> bytes: ...


def _bytes(value: object, what: str, size: int) -> None:
    if not isinstance(value, bytes) or len(value) != size:
        raise InvalidField(f"{what} must be {size} bytes")


def _check_asset(asset: object) -> str:
    """The wire's rule for asset names (``channels.core.state.parse_name``)."""
    if not isinstance(asset, str) or not 0 < len(asset) <= MAX_NAME or not asset.isprintable():
        raise InvalidField(f"the asset must be a printable name of 1..{MAX_NAME} characters")
    return asset


@attrs.frozen
class Invoice:
    """What an invoice says. Building one checks every field, so an ``Invoice`` value is
    always encodable; ``extra_fields`` keeps unknown odd fields so re-encoding is exact."""

    payee: str  # base58 libp2p peer id of the payee node; its key signs the invoice
    l1_account: bytes  # the payee's L1 address (the network's address length)
    payment_hash: bytes  # SHA-256 of the preimage the payee reveals when paid
    payment_secret: bytes  # given only to the payer: stops probing, binds the parts of one payment
    timestamp: int  # Unix seconds when the invoice was made
    chain_id: int
    network: str = DEVNET
    amount: int | None = None  # None: the payer chooses
    asset: str = NATIVE
    expiry: int = DEFAULT_EXPIRY  # seconds after ``timestamp``
    min_final_expiry_delta: int = DEFAULT_MIN_FINAL_EXPIRY_DELTA
    description: str = ""
    route_hints: tuple[RouteHint, ...] = ()
    features: frozenset[int] = frozenset()
    extra_fields: tuple[tuple[int, bytes], ...] = ()

    def __attrs_post_init__(self) -> None:
        network = NETWORKS.get(self.network) if isinstance(self.network, str) else None
        if network is None:
            raise UnknownNetwork(f"unknown network prefix {str(self.network)[:20]!r}; known: {', '.join(NETWORKS)}")
        peer_id_bytes(self.payee, "the payee")
        _bytes(self.l1_account, f"the payee's L1 account on {network.backend}", network.address_length)
        _bytes(self.payment_hash, "the payment hash", HASH_LEN)
        _bytes(self.payment_secret, "the payment secret", HASH_LEN)
        check_int(self.chain_id, "the chain id", 0, MAX_U64)
        check_int(self.timestamp, "the timestamp", 0, MAX_U64)
        check_int(self.expiry, "the expiry", 1, MAX_U32)
        if self.timestamp + self.expiry > MAX_U64:
            raise InvalidField("timestamp + expiry must fit 64 bits")
        check_int(self.min_final_expiry_delta, "the minimum final expiry delta", 1, MAX_U32)
        if self.amount is not None:
            check_int(self.amount, "the amount", 1, MAX_AMOUNT)
        _check_asset(self.asset)
        check_text(self.description, "the description", MAX_DESCRIPTION)
        check_route_hints(self.route_hints)
        check_features(self.features)
        if not isinstance(self.extra_fields, tuple) or len(self.extra_fields) > MAX_EXTRA_FIELDS:
            raise InvalidField(f"at most {MAX_EXTRA_FIELDS} unknown fields")
        for tag, value in self.extra_fields:
            check_int(tag, "an unknown field's tag", 0, MAX_U64)
            if tag % 2 == 0 or not isinstance(value, bytes):
                raise InvalidField("unknown fields kept on an invoice have odd tags and bytes values")

    @property
    def payee_public_key(self) -> bytes:
        return peer_id_bytes(self.payee)[len(ED25519_PREFIX):]

    @property
    def expires_at(self) -> int:
        return self.timestamp + self.expiry

    def is_expired(self, now: float) -> bool:
        return now >= self.expires_at

    def to_json(self) -> dict[str, Any]:
        """Every field, bytes as hex (the ``decode-invoice --json`` keys)."""
        return {
            "network": self.network, "chain_id": self.chain_id, "payee": self.payee,
            "l1_account": self.l1_account.hex(), "amount": self.amount, "asset": self.asset,
            "payment_hash": self.payment_hash.hex(), "payment_secret": self.payment_secret.hex(),
            "description": self.description, "timestamp": self.timestamp, "expiry": self.expiry,
            "expires_at": self.expires_at, "min_final_expiry_delta": self.min_final_expiry_delta,
            "route_hints": [[hop.to_json() for hop in route] for route in self.route_hints],
            "features": sorted(self.features),
            "unknown_fields": [{"tag": tag, "value": value.hex()} for tag, value in self.extra_fields],
        }


# ------------------------------------------------------------------ encoding


def fields_of(invoice: Invoice) -> list[tuple[int, bytes]]:
    """The invoice's fields in tag order; defaults are left out (one encoding per invoice)."""
    records = [
        (TAG_CHAIN_ID, write_uint(invoice.chain_id)),
        (TAG_PAYMENT_HASH, invoice.payment_hash),
        (TAG_PAYMENT_SECRET, invoice.payment_secret),
        (TAG_TIMESTAMP, write_uint(invoice.timestamp)),
        (TAG_PAYEE, peer_id_bytes(invoice.payee)),
        (TAG_L1_ACCOUNT, invoice.l1_account),
    ]
    if invoice.amount is not None:
        records.append((TAG_AMOUNT, write_uint(invoice.amount)))
    if invoice.asset != NATIVE:
        records.append((TAG_ASSET, invoice.asset.encode("utf-8")))
    if invoice.expiry != DEFAULT_EXPIRY:
        records.append((TAG_EXPIRY, write_uint(invoice.expiry)))
    if invoice.min_final_expiry_delta != DEFAULT_MIN_FINAL_EXPIRY_DELTA:
        records.append((TAG_MIN_FINAL_EXPIRY_DELTA, write_uint(invoice.min_final_expiry_delta)))
    if invoice.description:
        records.append((TAG_DESCRIPTION, invoice.description.encode("utf-8")))
    if invoice.route_hints:
        records.append((TAG_ROUTE_HINTS, write_route_hints(invoice.route_hints)))
    if invoice.features:
        records.append((TAG_FEATURES, write_features(invoice.features)))
    records.extend(invoice.extra_fields)
    return sorted(records)


def unsigned_payload(invoice: Invoice) -> bytes:
    """The version byte and the field stream: what the signature covers (with the prefix)."""
    return bytes([VERSION]) + write_stream(fields_of(invoice))


def signing_digest(prefix: str, unsigned: bytes) -> bytes:
    """SHA-256(domain || u8 len(prefix) || prefix || version and fields): what Ed25519 signs."""
    raw = prefix.encode("ascii")
    return sha256(SIGNATURE_DOMAIN + bytes([len(raw)]) + raw + unsigned)


def assemble(prefix: str, unsigned: bytes, signer: Signer) -> str:
    """Sign ``unsigned`` as it is and encode it. No check of the fields: test vectors use it
    to build invalid invoices whose signatures verify; everyone else calls ``encode_invoice``."""
    signature = signer.sign(signing_digest(prefix, unsigned))
    return bech32m.encode(prefix, bech32m.to_words(unsigned + signature), limit=MAX_INVOICE_LENGTH)


def encode_invoice(invoice: Invoice, signer: Signer) -> str:
    """The invoice's text, signed by ``signer``, which must be the payee's identity key."""
    if peer_id_of(signer.public_key) != invoice.payee:
        raise LocalProtocolError("the signer is not the payee: sign with the identity key of the payee's peer id")
    return assemble(invoice.network, unsigned_payload(invoice), signer)


def make_invoice(signer: Signer, *, chain_id: int, l1_account: bytes, preimage: bytes, payment_secret: bytes,
                 timestamp: int, network: str = DEVNET, amount: int | None = None, asset: str = NATIVE,
                 description: str = "", expiry: int = DEFAULT_EXPIRY,
                 min_final_expiry_delta: int = DEFAULT_MIN_FINAL_EXPIRY_DELTA,
                 route_hints: tuple[RouteHint, ...] = (), features: frozenset[int] = frozenset(),
                 ) -> tuple[str, Invoice]:
    """A node's invoice for a payment to itself: (text, value). The node draws ``preimage`` and
    ``payment_secret`` at random and keeps both; the payee is ``signer``'s peer id."""
    _bytes(preimage, "the preimage", HASH_LEN)
    invoice = Invoice(payee=peer_id_of(signer.public_key), l1_account=l1_account, payment_hash=sha256(preimage),
                      payment_secret=payment_secret, timestamp=timestamp, chain_id=chain_id, network=network,
                      amount=amount, asset=asset, expiry=expiry, min_final_expiry_delta=min_final_expiry_delta,
                      description=description, route_hints=route_hints, features=features)
    return encode_invoice(invoice, signer), invoice


# ------------------------------------------------------------------ decoding


def _field(tag: int, value: bytes, network: Network) -> dict[str, Any]:
    """One known field's value as an ``Invoice`` keyword, every rule of its own checked here
    so that the first bad field in tag order is the one reported (proto/05-invoice.md section 7)."""
    name = TAG_NAMES[tag]
    what = f"the {name.replace('_', ' ')} field"
    if tag in (TAG_PAYMENT_HASH, TAG_PAYMENT_SECRET):
        _bytes(value, what, HASH_LEN)
        return {name: value}
    if tag in (TAG_CHAIN_ID, TAG_TIMESTAMP):
        return {name: read_uint(value, what, 8)}
    if tag in (TAG_EXPIRY, TAG_MIN_FINAL_EXPIRY_DELTA):
        number = read_uint(value, what, 4)
        if number == (DEFAULT_EXPIRY if tag == TAG_EXPIRY else DEFAULT_MIN_FINAL_EXPIRY_DELTA):
            raise NonCanonical(f"{what} holds its default: leave it out")
        check_int(number, what, 1, MAX_U32)
        return {name: number}
    if tag == TAG_AMOUNT:
        number = read_uint(value, what, 32)
        if number == 0:
            raise NonCanonical("a zero amount: leave the field out for 'any amount'")
        return {name: number}
    if tag == TAG_ASSET:
        asset = read_text(value, what)
        if asset == NATIVE:
            raise NonCanonical(f"the asset field holds the default {NATIVE!r}: leave it out")
        return {name: _check_asset(asset)}
    if tag == TAG_DESCRIPTION:
        text = read_text(value, what)
        if not text:
            raise NonCanonical("an empty description: leave the field out")
        return {name: check_text(text, "the description", MAX_DESCRIPTION)}
    if tag == TAG_PAYEE:
        return {name: b58encode(check_peer_id_bytes(value, "the payee"))}
    if tag == TAG_L1_ACCOUNT:
        _bytes(value, f"the payee's L1 account on {network.backend}", network.address_length)
        return {name: value}
    if tag == TAG_ROUTE_HINTS:
        return {name: read_route_hints(value)}
    return {name: check_features(read_features(value))}


def decode_invoice(text: str, *, now: float | None = None, chain_id: int | None = None) -> Invoice:
    """The invoice ``text`` carries, after every check of proto/05-invoice.md; the signature
    always. With ``now``, an expired invoice raises ``Expired``; with ``chain_id``, one for
    another chain raises ``WrongChain``. Only ``InvalidInvoice`` subclasses are raised."""
    if not isinstance(text, str):
        raise BadEncoding("an invoice is text")
    prefix, words = bech32m.decode(text, limit=MAX_INVOICE_LENGTH)
    if prefix not in NETWORKS:
        raise UnknownNetwork(f"unknown network prefix {prefix[:20]!r}; known: {', '.join(NETWORKS)}")
    payload = bech32m.from_words(words)
    if len(payload) < 1 + SIGNATURE_LEN:
        raise BadEncoding("too short to hold a version and a signature")
    if payload[0] != VERSION:
        raise UnsupportedVersion(f"invoice version {payload[0]}; this implementation reads version {VERSION}")
    unsigned, signature = payload[:-SIGNATURE_LEN], payload[-SIGNATURE_LEN:]
    values: dict[str, Any] = {}
    extra: list[tuple[int, bytes]] = []
    for tag, value in read_stream(unsigned[1:]):
        if tag in TAG_NAMES:
            values.update(_field(tag, value, NETWORKS[prefix]))
        elif tag % 2 == 0:
            raise UnknownRequiredField(f"unknown required field {tag} (even): this payer cannot read the invoice")
        elif len(extra) >= MAX_EXTRA_FIELDS:
            raise InvalidField(f"more than {MAX_EXTRA_FIELDS} unknown fields")
        else:
            extra.append((tag, value))
    missing = [TAG_NAMES[t] for t in REQUIRED if TAG_NAMES[t] not in values]
    if missing:
        raise MissingField(f"required field missing: {', '.join(missing)}")
    invoice = Invoice(network=prefix, extra_fields=tuple(extra), **values)
    if not verify(invoice.payee_public_key, signing_digest(prefix, unsigned), signature):
        raise BadSignature("the signature does not verify under the payee's key: the invoice was altered or forged")
    if chain_id is not None and invoice.chain_id != chain_id:
        raise WrongChain(f"the invoice is for chain {invoice.chain_id}, not chain {chain_id}")
    if now is not None and invoice.is_expired(now):
        raise Expired(f"the invoice expired at {invoice.expires_at} (now {int(now)})")
    return invoice
