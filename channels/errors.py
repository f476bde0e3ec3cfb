"""One error tree for the whole package (ARCHITECTURE section 9).

Every error a user can see says what happened and what to do. The split between
``LocalProtocolError`` (our caller misused the API) and ``RemoteProtocolError``
(a peer sent something invalid) follows h11.
"""

from __future__ import annotations

from typing import TypeVar

E = TypeVar("E", bound=Exception)


def sole_error(group: BaseExceptionGroup[BaseException], kind: type[E]) -> E | None:
    """The one error of ``kind`` a group wraps, however nested (nurseries add layers; a
    cancellation beside it is not an error), so the caller can raise it as itself and a user
    sees one line instead of a tree. None when there are several, or none of ``kind``."""
    leaves: list[BaseException] = []

    def walk(g: BaseExceptionGroup[BaseException]) -> None:
        for exc in g.exceptions:
            if isinstance(exc, BaseExceptionGroup):
                walk(exc)
            else:
                leaves.append(exc)

    walk(group)
    errors = [e for e in leaves if isinstance(e, Exception)]
    return errors[0] if len(errors) == 1 and isinstance(errors[0], kind) else None


class ChannelsError(Exception):
    """Root of every error this package raises on purpose."""


class LocalProtocolError(ChannelsError):
    """The local caller misused the API: raised at once, nothing changed."""


class RemoteProtocolError(ChannelsError):
    """A peer sent something invalid; in the core this becomes a ``Reject`` effect."""


class DecodeError(RemoteProtocolError):
    """Bytes from the outside world are not a valid canonical encoding."""


class FrameTooLarge(DecodeError):
    """A length prefix announced more than the frame cap; nothing was allocated."""


class UnknownMessageType(DecodeError):
    """A frame carried a type id this implementation does not know."""

    def __init__(self, type_id: int) -> None:
        super().__init__(f"unknown message type {type_id}")
        self.type_id = type_id

    @property
    def must_close(self) -> bool:
        """Unknown even types close the stream; odd types may be ignored (ARCHITECTURE section 5)."""
        return self.type_id % 2 == 0


class InvalidSignature(RemoteProtocolError):
    """A signature does not verify against the claimed signer."""


class InvalidTransition(ChannelsError):
    """A state change breaks the channel's or the game's rules."""


class InsufficientFunds(LocalProtocolError):
    """An amount is above the balance available to spend."""


class QueueFull(LocalProtocolError):
    """Too much work is already waiting (payments queued for an offline peer)."""


class UnknownChannel(LocalProtocolError):
    """No channel with this id is known here."""


class LedgerError(ChannelsError):
    """The L1 refused a transaction or could not be reached. Nothing was applied."""

    code = "ledger_error"


class StorageError(ChannelsError):
    """The durable store failed; the engine step was not applied."""


class ConfigError(LocalProtocolError):
    """A configuration value is missing or invalid."""
