"""Invoices: signed payment-request strings (proto/05-invoice.md). Pure: no I/O, no clock."""

from .errors import (
    BadChecksum,
    BadEncoding,
    BadSignature,
    Expired,
    InvalidField,
    InvalidInvoice,
    InvoiceTooLong,
    MissingField,
    NonCanonical,
    UnknownNetwork,
    UnknownRequiredFeature,
    UnknownRequiredField,
    UnsupportedVersion,
    WrongChain,
)
from .fields import HintHop, RouteHint
from .invoice import (
    DEFAULT_EXPIRY,
    DEFAULT_MIN_FINAL_EXPIRY_DELTA,
    DEVNET,
    MAX_DESCRIPTION,
    MAX_INVOICE_LENGTH,
    NETWORKS,
    Invoice,
    Signer,
    decode_invoice,
    encode_invoice,
    make_invoice,
)
from .peerid import peer_id_of, public_key_of

__all__ = [
    "DEFAULT_EXPIRY", "DEFAULT_MIN_FINAL_EXPIRY_DELTA", "DEVNET", "MAX_DESCRIPTION", "MAX_INVOICE_LENGTH", "NETWORKS",
    "BadChecksum", "BadEncoding", "BadSignature", "Expired", "HintHop", "InvalidField", "InvalidInvoice", "Invoice",
    "InvoiceTooLong", "MissingField", "NonCanonical", "RouteHint", "Signer", "UnknownNetwork",
    "UnknownRequiredFeature", "UnknownRequiredField", "UnsupportedVersion", "WrongChain", "decode_invoice",
    "encode_invoice", "make_invoice", "peer_id_of", "public_key_of",
]
