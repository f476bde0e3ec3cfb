"""Channel records <-> canonical bytes, for the store.

Records use the same canonical encoding as the wire, so a record read back is
byte-identical to the one written and a corrupted record is a typed error, not a
half-built channel.
"""

from __future__ import annotations

from typing import Any

from ..core.channel import MAX_ABANDONED, MAX_QUEUE, Channel, Pending, PendingKind, Phase
from ..core.ids import Version
from ..core.messages import CloseProposal, UpdateProposal
from ..core.state import ChannelParams, SignedState
from ..encoding import decode, encode
from ..errors import ChannelsError, DecodeError
from ..wire import decode_message, encode_message
from ..wire.fields import KINDS

RECORD_VERSION = 2  # 2 appends ``retries`` and ``funding_since``; version 1 records still load
MAX_RECORD = 4 * 1024 * 1024
_FIELDS = {1: 20, 2: 22}
_payments_to, _payments_from = KINDS["payments"]


class RecordTooLarge(ChannelsError):
    """A channel record outgrew the bounds its reader enforces; the step that made it is refused."""


def channel_to_bytes(ch: Channel) -> bytes:
    """The record of ``ch``. The writer enforces the reader's bounds: a record that was
    written can always be read back (an unreadable record would stop the node at start-up)."""
    if len(ch.queue) > MAX_QUEUE or len(ch.abandoned) > MAX_ABANDONED:
        raise RecordTooLarge(f"channel {ch.channel_id.hex()[:12]}: {len(ch.queue)} queued payments and "
                             f"{len(ch.abandoned)} abandoned proposals exceed the record bounds")
    pending = None
    if ch.pending is not None:
        p = ch.pending
        pending = [p.kind.value, p.signed.to_fields(), _payments_to(p.payments), encode_message(p.message)]
    data = encode([RECORD_VERSION, ch.params.to_fields(), ch.me, ch.phase.value, ch.latest.to_fields(),
                   ch.latest_proposer, pending, _payments_to(ch.queue), ch.highest_signed, ch.highest_signed_digest,
                   ch.yielded, ch.closing_requested, list(ch.holdings), ch.deadline, ch.concluded, ch.submitted_at,
                   ch.registered_version, list(ch.deposited), ch.final_signed,
                   [[v, _payments_to(ps)] for v, ps in ch.abandoned], ch.retries, ch.funding_since],
                  validate=False)
    if len(data) > MAX_RECORD:
        raise RecordTooLarge(f"channel {ch.channel_id.hex()[:12]}: a record of {len(data)} bytes exceeds "
                             f"{MAX_RECORD}")
    return data


def channel_from_bytes(data: bytes) -> Channel:
    f: Any = decode(data, max_size=MAX_RECORD)
    if not isinstance(f, list) or not f or _FIELDS.get(f[0]) != len(f):
        raise DecodeError("not a channel record of a known version")
    extra: list[Any] = f[20:] if f[0] >= 2 else [0, None]
    try:
        params = ChannelParams.from_fields(f[1])
        pending = None
        if f[6] is not None:
            message = decode_message(f[6][3])
            if not isinstance(message, (UpdateProposal, CloseProposal)):
                raise DecodeError("pending message of the wrong type")
            pending = Pending(kind=PendingKind(f[6][0]), signed=SignedState.from_fields(f[6][1]),
                              payments=_payments_from(f[6][2]), message=message)
        return Channel(params=params, channel_id=params.channel_id, me=f[2], phase=Phase(f[3]),
                       latest=SignedState.from_fields(f[4]), latest_proposer=f[5], pending=pending,
                       queue=_payments_from(f[7]), highest_signed=f[8], highest_signed_digest=f[9], yielded=f[10],
                       closing_requested=f[11], holdings=tuple(f[12]), deadline=f[13], concluded=f[14],
                       submitted_at=f[15], registered_version=f[16],
                       deposited=tuple(f[17]), final_signed=f[18],
                       abandoned=tuple((v, _payments_from(ps)) for v, ps in f[19]),
                       retries=extra[0], funding_since=extra[1])
    except (ValueError, TypeError, IndexError) as exc:
        raise DecodeError(f"corrupt channel record: {exc}") from None


__all__ = ["Version", "channel_from_bytes", "channel_to_bytes"]
