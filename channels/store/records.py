"""Channel records <-> canonical bytes, for the store.

Records use the same canonical encoding as the wire, so a record read back is
byte-identical to the one written and a corrupted record is a typed error, not a
half-built channel.
"""

from __future__ import annotations

from typing import Any

from ..core import effects as fx
from ..core.channel import MAX_ABANDONED, MAX_EARLY, MAX_QUEUE, Channel, Cosign, Pending, PendingKind, Phase
from ..core.ids import Version
from ..core.messages import CloseProposal, UpdateProposal
from ..core.state import MAX_PARTICIPANTS, ChannelParams, SignedState, State, amount_field, parse_amount
from ..encoding import decode, decode_record, encode
from ..errors import ChannelsError, DecodeError
from ..wire import decode_message, encode_message
from ..wire.fields import KINDS

# 2 appended ``retries`` and ``funding_since``; 3 stores update operations instead of payments
# (queue, pending, abandoned) and appends the known lock ``preimages``, the ``forced`` state
# of a game dispute, ``locks_pending`` in escrow and one reserved field (None). Records of versions 1
# and 2 still load: their payments are payment operations.
RECORD_VERSION = 3
MAX_RECORD = 4 * 1024 * 1024
_FIELDS = {1: 20, 2: 22, 3: 26}
_ops_to, _ops_from = KINDS["operations"]
_payments_from = KINDS["payments"][1]


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
        pending = [p.kind.value, p.signed.to_fields(), _ops_to(p.operations), encode_message(p.message)]
    data = encode([RECORD_VERSION, ch.params.to_fields(), ch.me, ch.phase.value, ch.latest.to_fields(),
                   ch.latest_proposer, pending, _ops_to(ch.queue), ch.highest_signed, ch.highest_signed_digest,
                   ch.yielded, ch.closing_requested, [amount_field(n) for n in ch.holdings], ch.deadline,
                   ch.concluded, ch.submitted_at,
                   ch.registered_version, [amount_field(n) for n in ch.deposited], ch.final_signed,
                   [[v, _ops_to(ops)] for v, ops in ch.abandoned], ch.retries, ch.funding_since,
                   [[lock_id, preimage] for lock_id, preimage in ch.preimages],
                   None if ch.forced is None else ch.forced.to_fields(), list(ch.locks_pending), _multi_to(ch)],
                  validate=False)
    if len(data) > MAX_RECORD:
        raise RecordTooLarge(f"channel {ch.channel_id.hex()[:12]}: a record of {len(data)} bytes exceeds "
                             f"{MAX_RECORD}")
    return data


def _multi_to(ch: Channel) -> list[Any] | None:
    """The reserved last field: None for two-party channels (their records keep the bytes
    they always had); for n-party ones ``[cosign, early]`` (proto/02 section 13)."""
    if not ch.multi:
        return None
    cs = ch.cosign
    cosign = None if cs is None else [cs.proposer, cs.kind.value, cs.signed.to_fields(), _ops_to(cs.operations)]
    proposed = None if ch.proposed_latest is None else [ch.proposed_latest[0], encode_message(ch.proposed_latest[1])]
    return [cosign, [[v, who, sig] for v, who, sig in ch.early], proposed]


def _multi_from(f: Any) -> dict[str, Any]:
    if f is None:
        return {}
    # [cosign, early] first, then [cosign, early, proposed_latest]
    if not isinstance(f, list) or len(f) not in (2, 3) or not isinstance(f[1], list) or len(f[1]) > MAX_EARLY:
        raise DecodeError("corrupt n-party fields in a channel record")
    proposed = None
    if len(f) == 3 and f[2] is not None:
        message = decode_message(f[2][1])
        if not isinstance(message, (UpdateProposal, CloseProposal)):
            raise DecodeError("corrupt n-party fields in a channel record")
        proposed = (_index(f[2][0], limit=None), message)
    cosign = None
    if f[0] is not None:
        cosign = Cosign(proposer=_index(f[0][0]), kind=PendingKind(f[0][1]),
                        signed=SignedState.from_fields(f[0][2]), operations=_ops_from(f[0][3]))
    early = tuple((_index(v, limit=None), _index(who), bytes(sig)) for v, who, sig in f[1])
    return {"cosign": cosign, "early": early, "proposed_latest": proposed}


def _index(value: Any, *, limit: int | None = MAX_PARTICIPANTS) -> int:
    """A participant index (or, with ``limit`` None, a version) read from a record: a corrupt
    one is a typed error here, not an IndexError deep in the core later."""
    if type(value) is not int or value < 0 or (limit is not None and value >= limit):
        raise DecodeError("corrupt n-party fields in a channel record")
    return value


def channel_from_bytes(data: bytes) -> Channel:
    f: Any = decode(data, max_size=MAX_RECORD)
    if not isinstance(f, list) or not f or _FIELDS.get(f[0]) != len(f):
        raise DecodeError("not a channel record of a known version")
    extra: list[Any] = f[20:] if f[0] >= 2 else [0, None]
    secrets = f[22] if f[0] >= 3 else []
    forced = SignedState.from_fields(f[23]) if f[0] >= 3 and f[23] is not None else None
    escrowed = tuple(bytes(lock_id) for lock_id in f[24]) if f[0] >= 3 else ()
    ops_from = _ops_from if f[0] >= 3 else _payments_from
    try:
        params = ChannelParams.from_fields(f[1])
        pending = None
        if f[6] is not None:
            message = decode_message(f[6][3]) if f[0] >= 3 else _old_pending_message(f[6][3])
            if not isinstance(message, (UpdateProposal, CloseProposal)):
                raise DecodeError("pending message of the wrong type")
            pending = Pending(kind=PendingKind(f[6][0]), signed=SignedState.from_fields(f[6][1]),
                              operations=ops_from(f[6][2]), message=message)
        latest = SignedState.from_fields(f[4])  # its channel id is the backend's (the scheme computed it)
        return Channel(params=params, channel_id=latest.state.channel_id, me=f[2], phase=Phase(f[3]),
                       latest=latest, latest_proposer=f[5], pending=pending,
                       queue=ops_from(f[7]), highest_signed=f[8], highest_signed_digest=f[9], yielded=f[10],
                       closing_requested=f[11], holdings=tuple(parse_amount(n, "holding") for n in f[12]),
                       deadline=f[13], concluded=f[14],
                       submitted_at=f[15], registered_version=f[16],
                       deposited=tuple(parse_amount(n, "deposit") for n in f[17]), final_signed=f[18],
                       abandoned=tuple((v, ops_from(ops)) for v, ops in f[19]),
                       retries=extra[0], funding_since=extra[1],
                       preimages=tuple((bytes(lock_id), bytes(preimage)) for lock_id, preimage in secrets),
                       forced=forced, locks_pending=escrowed, **_multi_from(f[25] if f[0] >= 3 else None))
    except (ValueError, TypeError, IndexError) as exc:
        raise DecodeError(f"corrupt channel record: {exc}") from None


# L1 submissions in the outbox: [kind, fields...]; the channel id is the row's.
_SUBMISSIONS: dict[type, int] = {fx.SubmitDeposit: 1, fx.SubmitConclude: 2, fx.SubmitRegister: 3, fx.SubmitRefute: 4,
                                 fx.SubmitWithdraw: 5, fx.SubmitSecret: 6, fx.SubmitProgress: 7, fx.SubmitCheckpoint: 8}


def submission_to_bytes(effect: fx.Effect) -> bytes:
    kind = _SUBMISSIONS[type(effect)]
    if isinstance(effect, fx.SubmitDeposit):
        fields: list[Any] = [effect.channel_id, effect.asset, amount_field(effect.amount)]
    elif isinstance(effect, fx.SubmitWithdraw):
        fields = [effect.channel_id]
    elif isinstance(effect, fx.SubmitSecret):
        fields = [effect.preimage]
    elif isinstance(effect, fx.SubmitProgress):
        fields = [effect.signed_prev.to_fields(), effect.next_state.to_fields(), effect.mover, effect.signature]
    else:
        assert isinstance(effect, (fx.SubmitConclude, fx.SubmitRegister, fx.SubmitRefute, fx.SubmitCheckpoint))
        fields = [effect.signed.to_fields()]
    return encode([kind, *fields])


def submission_from_bytes(data: bytes) -> fx.Effect:
    f: Any = decode(data, max_size=MAX_RECORD)
    try:
        kind, rest = f[0], f[1:]
        if kind == 1:
            return fx.SubmitDeposit(channel_id=KINDS["channel_id"][1](rest[0]), asset=rest[1],
                                     amount=parse_amount(rest[2], "deposit amount"))
        if kind == 5:
            return fx.SubmitWithdraw(channel_id=KINDS["channel_id"][1](rest[0]))
        if kind == 6:
            return fx.SubmitSecret(preimage=bytes(rest[0]))
        if kind == 7:
            return fx.SubmitProgress(signed_prev=SignedState.from_fields(rest[0]),
                                     next_state=State.from_fields(rest[1]), mover=rest[2], signature=bytes(rest[3]))
        signed = SignedState.from_fields(rest[0])
        if kind == 2:
            return fx.SubmitConclude(signed=signed)
        if kind == 3:
            return fx.SubmitRegister(signed=signed)
        if kind == 4:
            return fx.SubmitRefute(signed=signed)
        if kind == 8:
            return fx.SubmitCheckpoint(signed=signed)
        raise DecodeError(f"unknown L1 submission kind {kind!r}")
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise DecodeError(f"corrupt L1 submission in the outbox: {exc}") from None


def _old_pending_message(frame: bytes) -> Any:
    """A pending proposal stored by records 1 and 2: ``UpdateProposal`` then carried payments
    (wire type 32 with a payment list); ``CloseProposal`` is unchanged."""
    type_id, fields = decode_record(frame)
    if type_id != 32:
        return decode_message(frame)
    if len(fields) != 4:
        raise DecodeError("pending update of the wrong shape")
    return UpdateProposal(channel_id=KINDS["channel_id"][1](fields[0]), version=Version(KINDS["u64"][1](fields[1])),
                          operations=_payments_from(fields[2]), signature=KINDS["signature"][1](fields[3]))


__all__ = ["Version", "channel_from_bytes", "channel_to_bytes"]
