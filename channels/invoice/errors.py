"""Why an invoice string was refused: one class per rule of proto/05-invoice.md.

A payer acts on an invoice only after it decoded without error, so every refusal is typed
(callers and tests tell a typo from a forgery) and says in one line what is wrong.
"""

from __future__ import annotations

from ..errors import ChannelsError


class InvalidInvoice(ChannelsError):
    """The text is not a valid invoice; nothing may be paid on it."""


class BadEncoding(InvalidInvoice):
    """Not bech32m text: characters, case, separator, padding or too short."""


class BadChecksum(BadEncoding):
    """The bech32m checksum fails: most likely a typing or copying error."""


class InvoiceTooLong(BadEncoding):
    """Longer than the length limit; refused before any other work."""


class UnknownNetwork(InvalidInvoice):
    """The human-readable prefix names no network this implementation knows."""


class WrongChain(InvalidInvoice):
    """A valid invoice for another chain than the one the caller pays on."""


class UnsupportedVersion(InvalidInvoice):
    """The version byte is not one this implementation reads."""


class NonCanonical(InvalidInvoice):
    """A second encoding of some invoice: fields out of order or repeated, a non-minimal
    integer, a default spelt out."""


class InvalidField(InvalidInvoice):
    """A known field's value is malformed or out of its bounds."""


class MissingField(InvalidInvoice):
    """A required field is absent."""


class UnknownRequiredField(InvalidInvoice):
    """An unknown field with an even tag: its meaning may change what is paid, so refuse."""


class UnknownRequiredFeature(InvalidInvoice):
    """An unknown feature bit with an even number is set: the payee requires what we lack."""


class BadSignature(InvalidInvoice):
    """The signature does not verify under the payee's key (its peer id)."""


class Expired(InvalidInvoice):
    """The invoice's expiry is past (checked only against a ``now`` the caller gives)."""
