"""The tower's refusals (proto/07-watchtower.md section 4), one class per reason.

Each has a stable ``code``: the tower answers a refused request with ``(code, message)``
and the client re-raises the same class (``error_from_code``), so a node can tell a
refusal it must not retry (``unsigned``) from one it may (``rate_limited``).
"""

from __future__ import annotations

from ..errors import ChannelsError, DecodeError, InvalidSignature, RemoteProtocolError


class TowerError(ChannelsError):
    """Root of the tower's own errors; ``code`` names the reason on the wire."""

    code = "tower_error"


class MalformedAppointment(TowerError, DecodeError):
    """The appointment does not decode, or breaks a rule of its value objects."""

    code = "malformed"


class Unsigned(TowerError, InvalidSignature):
    """A participant's signature on the state is missing or does not verify."""

    code = "unsigned"


class WrongDomain(TowerError, RemoteProtocolError):
    """The channel belongs to another chain or adjudicator than the tower watches."""

    code = "wrong_domain"


class NonMonotonic(TowerError, RemoteProtocolError):
    """The tower already holds this channel (or locator) at this version (sequence) or above."""

    code = "non_monotonic"


class Oversize(TowerError, RemoteProtocolError):
    """The appointment is larger than the tower stores."""

    code = "oversize"


class OverQuota(TowerError, RemoteProtocolError):
    """Storing it would exceed this client's (or the tower's) appointment or byte quota."""

    code = "over_quota"


class RateLimited(TowerError, RemoteProtocolError):
    """This client sent appointments faster than its rate (or the tower's); retry later."""

    code = "rate_limited"


class TowerUnavailable(TowerError):
    """The tower could not be reached, did not answer, or could not store the appointment."""

    code = "unavailable"


class BadReceipt(TowerError, RemoteProtocolError):
    """A receipt does not verify: wrong tower key, signature, channel, version or hash."""

    code = "bad_receipt"


ERRORS: dict[str, type[TowerError]] = {
    cls.code: cls for cls in (MalformedAppointment, Unsigned, WrongDomain, NonMonotonic, Oversize, OverQuota,
                              RateLimited, TowerUnavailable, BadReceipt)
}


def error_from_code(code: str, message: str) -> TowerError:
    """The typed error a tower reported; an unknown code keeps its code string."""
    cls = ERRORS.get(code)
    if cls is not None:
        return cls(message)
    err = TowerError(message)
    err.code = code
    return err
