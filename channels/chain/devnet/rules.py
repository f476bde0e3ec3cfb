"""The devnet's ledger and adjudicator rules: pure functions, no I/O.

``apply_tx(view, tx, now=...)`` checks one signed transaction against a read-only
``View`` of the ledger and returns the ``Writes`` it causes (balances, nonces,
channel records, deposits, secrets, events). Nothing is written here: the store
applies a ``Writes`` in one SQLite transaction, and a rule that raises leaves the
ledger exactly as it was. Keeping the rules pure is what lets the Hypothesis tests
drive thousands of disputes per second against an in-memory view.

The rules are specified in ``proto/03-ledger.md``; each safety check names the
attack it stops.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import attrs

from ...chain.base import (
    AlreadyConcluded,
    AlreadyRegistered,
    AlreadyWithdrawn,
    AssetExists,
    BadNonce,
    BadSignature,
    InsufficientBalance,
    InvalidMove,
    Malformed,
    NotFinal,
    NotRegistered,
    Overflow,
    StaleVersion,
    StateMismatch,
    Unauthorized,
    UnknownAsset,
    UnknownChannelOnChain,
    WindowClosed,
    WindowOpen,
    WrongChain,
    WrongChannel,
)
from ...core.app import DEFAULT_APPS, AppRegistry
from ...core.ids import MAX_AMOUNT, NATIVE, Address, AssetId, ChannelId
from ...core.state import ChannelParams, Lock, SignedState, State
from ...crypto import sha256, verify
from ...errors import DecodeError
from . import tx as t
from .scheme import ADJUDICATOR, DevnetScheme

SCHEME = DevnetScheme()


@attrs.frozen(kw_only=True)
class ChannelRecord:
    """What the adjudicator keeps per channel (holdings derive from the deposit list).

    ``state`` is the state the adjudicator would pay out: the registered, refuted or
    progressed one, or the concluded final state. ``checkpoint`` only raises the floor
    for later registrations. ``withdrawn`` is set by the withdraw that pays the unlocked
    balances; ``pending`` lists the locks of ``state`` (indices into its allocation's
    locks, ascending) still in escrow after it, each waiting to be decided (section 6.11
    of ``proto/03-ledger.md``)."""

    channel_id: ChannelId
    params: ChannelParams | None = None
    state: SignedState | None = None
    deadline: int | None = None
    checkpoint: SignedState | None = None
    concluded: bool = False
    withdrawn: bool = False
    pending: tuple[int, ...] = ()

    @property
    def floor(self) -> int:
        """The lowest version a new registration or conclusion may carry."""
        versions = [s.state.version for s in (self.state, self.checkpoint) if s is not None]
        return max(versions, default=0)

    def to_fields(self) -> list[Any]:
        return [self.channel_id, None if self.params is None else self.params.to_fields(),
                None if self.state is None else self.state.to_fields(), self.deadline,
                None if self.checkpoint is None else self.checkpoint.to_fields(), self.concluded, self.withdrawn,
                list(self.pending)]

    @classmethod
    def from_fields(cls, f: Any) -> ChannelRecord:
        # 7 fields: written before locks were escrowed (schema 1 and 2). Those releases paid
        # every lock at withdraw, so such a record has no pending lock, withdrawn or not.
        if type(f) is not list or len(f) not in (7, 8):
            raise DecodeError("a channel record has 8 fields (7 before lock escrow)")
        state = None if f[2] is None else SignedState.from_fields(f[2])
        raw = f[7] if len(f) == 8 else []
        n_locks = 0 if state is None else len(state.state.allocation.locks)
        if (type(raw) is not list or not all(type(i) is int and 0 <= i < n_locks for i in raw)
                or raw != sorted(set(raw))):
            raise DecodeError("pending locks are ascending indices into the paid state's locks")
        pending = tuple(raw)
        return cls(channel_id=ChannelId(f[0]), params=None if f[1] is None else ChannelParams.from_fields(f[1]),
                   state=state, deadline=f[3],
                   checkpoint=None if f[4] is None else SignedState.from_fields(f[4]),
                   concluded=bool(f[5]), withdrawn=bool(f[6]), pending=pending)


@attrs.frozen(kw_only=True)
class DepositEntry:
    depositor: Address
    asset: AssetId
    amount: int


@attrs.frozen(kw_only=True)
class Secret:
    preimage: bytes
    time: int


class View(Protocol):
    """Read-only access to the ledger state the rules need."""

    @property
    def chain_id(self) -> int: ...

    def nonce(self, account: Address) -> int: ...

    def balance(self, account: Address, asset: AssetId) -> int: ...

    def token_issuer(self, asset: AssetId) -> Address | None: ...

    def channel(self, channel_id: ChannelId) -> ChannelRecord | None: ...

    def deposits(self, channel_id: ChannelId) -> Sequence[DepositEntry]: ...

    def secret(self, hashlock: bytes) -> Secret | None: ...


@attrs.define
class Writes:
    """Everything one transaction changes; applied atomically by the store."""

    balances: dict[tuple[Address, AssetId], int] = attrs.Factory(dict)
    nonces: dict[Address, int] = attrs.Factory(dict)
    tokens: dict[AssetId, Address] = attrs.Factory(dict)
    channels: dict[ChannelId, ChannelRecord] = attrs.Factory(dict)
    deposits: list[tuple[ChannelId, DepositEntry]] = attrs.Factory(list)
    secrets: dict[bytes, Secret] = attrs.Factory(dict)
    events: list[tuple[str, ChannelId | None, dict[str, Any]]] = attrs.Factory(list)
    receipt: bytes | None = None  # the id under which the store records that this was applied


class _Overlay:
    """A view with this transaction's writes laid over it, so reads see earlier writes."""

    def __init__(self, view: View, apps: AppRegistry = DEFAULT_APPS) -> None:
        self.view = view
        self.apps = apps
        self.w = Writes()

    def balance(self, account: Address, asset: AssetId) -> int:
        key = (account, asset)
        return self.w.balances[key] if key in self.w.balances else self.view.balance(account, asset)

    def credit(self, account: Address, asset: AssetId, amount: int) -> None:
        # Frozen payout: an account balance has no upper bound. With a cap, a participant
        # whose balance sits near it makes every withdraw paying it fail, and the other
        # side's share stays in escrow forever. Amounts moved per operation stay within 2^256-1
        # (``_positive``), and so do channel holdings (``_deposit``), so every payout does.
        self.w.balances[(account, asset)] = self.balance(account, asset) + amount

    def debit(self, account: Address, asset: AssetId, amount: int) -> None:
        have = self.balance(account, asset)
        if have < amount:
            raise InsufficientBalance(f"account {account.hex()[:16]}... holds {have} {asset}, needs {amount}")
        self.w.balances[(account, asset)] = have - amount

    def asset_known(self, asset: AssetId) -> bool:
        return asset == NATIVE or asset in self.w.tokens or self.view.token_issuer(asset) is not None

    def channel(self, cid: ChannelId) -> ChannelRecord | None:
        return self.w.channels.get(cid) or self.view.channel(cid)

    def deposits(self, cid: ChannelId) -> list[DepositEntry]:
        return [*self.view.deposits(cid), *(d for c, d in self.w.deposits if c == cid)]

    def emit(self, kind: str, cid: ChannelId | None, **data: Any) -> None:
        self.w.events.append((kind, cid, data))


# --- entry points ---------------------------------------------------------------------------------


def apply_tx(view: View, tx: t.Tx, *, now: int, apps: AppRegistry = DEFAULT_APPS) -> Writes:
    """Check and apply one signed transaction; raise a typed ``LedgerError`` to refuse it.

    ``apps`` are the game rules a forced move (``progress``) is checked against: the same
    registry the nodes play with."""
    if tx.chain_id != view.chain_id:
        # Cross-chain replay: a transaction signed for another devnet is worthless here.
        raise WrongChain(f"transaction is for chain {tx.chain_id}, this ledger is chain {view.chain_id}")
    if not verify(tx.sender, tx.digest, tx.signature):
        raise BadSignature("the transaction signature does not verify against its sender")
    expected = view.nonce(tx.sender)
    if tx.nonce != expected:
        # Replay: a transaction already applied (or one skipped ahead) is refused.
        raise BadNonce(f"nonce {tx.nonce} given, the account's next nonce is {expected}")
    ov = _Overlay(view, apps)
    _OPS[type(tx.op)](ov, tx.sender, tx.op, now)
    ov.w.nonces[tx.sender] = expected + 1
    ov.w.receipt = tx.digest
    return ov.w


def faucet_receipt(request_id: bytes) -> bytes:
    return sha256(b"p2p-channels/devnet/faucet/" + request_id)


def apply_faucet(view: View, to: Address, asset: AssetId, amount: int, *, request_id: bytes | None = None) -> Writes:
    """Mint ``amount`` of ``asset`` to ``to`` without a signature: development money.

    ``request_id`` (client-chosen) lets the store recognise a retried request."""
    ov = _Overlay(view)
    if request_id is not None:
        ov.w.receipt = faucet_receipt(request_id)
    _positive(amount)
    _known(ov, asset)
    ov.credit(to, asset, amount)
    ov.emit("Minted", None, to=to, asset=asset, amount=amount)
    return ov.w


# --- plain ledger operations ----------------------------------------------------------------------


def _positive(amount: int) -> None:
    if type(amount) is not int or not 0 < amount <= MAX_AMOUNT:
        raise Malformed("an amount is an integer in 1 .. 2^256-1")


def _known(ov: _Overlay, asset: AssetId) -> None:
    if not ov.asset_known(asset):
        raise UnknownAsset(f"no asset {asset!r} on this ledger; create the token first")


def _transfer(ov: _Overlay, sender: Address, op: t.Transfer, now: int) -> None:
    _positive(op.amount)
    _known(ov, op.asset)
    ov.debit(sender, op.asset, op.amount)
    ov.credit(op.to, op.asset, op.amount)
    ov.emit("Transfer", None, **{"from": sender}, to=op.to, asset=op.asset, amount=op.amount)


def _create_token(ov: _Overlay, sender: Address, op: t.CreateToken, now: int) -> None:
    if op.asset == NATIVE or ov.asset_known(op.asset):
        raise AssetExists(f"asset {op.asset!r} already exists")
    ov.w.tokens[op.asset] = sender
    ov.emit("TokenCreated", None, asset=op.asset, issuer=sender)


def _mint(ov: _Overlay, sender: Address, op: t.Mint, now: int) -> None:
    _positive(op.amount)
    _known(ov, op.asset)
    issuer = ov.w.tokens.get(op.asset) or ov.view.token_issuer(op.asset)
    if issuer != sender:  # native has no issuer: it comes from the faucet only
        raise Unauthorized(f"only the issuer of {op.asset!r} may mint it (use the faucet on the devnet)")
    ov.credit(op.to, op.asset, op.amount)
    ov.emit("Minted", None, to=op.to, asset=op.asset, amount=op.amount)


def _register_secret(ov: _Overlay, sender: Address, op: t.RegisterSecret, now: int) -> None:
    hashlock = sha256(op.preimage)
    if ov.view.secret(hashlock) is not None:
        return  # idempotent: the first registration time stands (a later one must not move it)
    ov.w.secrets[hashlock] = Secret(preimage=op.preimage, time=now)
    ov.emit("SecretRegistered", None, hashlock=hashlock, preimage=op.preimage, time=now)


# --- the adjudicator ------------------------------------------------------------------------------


def _deposit(ov: _Overlay, sender: Address, op: t.Deposit, now: int) -> None:
    _positive(op.amount)
    _known(ov, op.asset)
    record = ov.channel(op.channel_id) or ChannelRecord(channel_id=op.channel_id)
    if record.withdrawn:
        # Lost funds: escrow that was already paid out would hold this deposit forever.
        raise AlreadyWithdrawn("the channel was already paid out; this deposit would be lost")
    holdings = holdings_of(ov.deposits(op.channel_id)).get(op.asset, 0) + op.amount
    if holdings > MAX_AMOUNT:
        # Holdings stay within 2^256-1, as every state's totals do, so every payout and event
        # amount has its one encoding; this refuses only the depositor's own deposit (its
        # money stays in its account), it can never hold up a payout.
        raise Overflow("channel holdings would exceed 2^256-1")
    ov.debit(sender, op.asset, op.amount)
    ov.w.channels[op.channel_id] = record
    entry = DepositEntry(depositor=sender, asset=op.asset, amount=op.amount)
    ov.w.deposits.append((op.channel_id, entry))
    ov.emit("Deposited", op.channel_id, asset=op.asset, amount=op.amount, depositor=sender, holdings=holdings)


def _check_params(ov: _Overlay, params: ChannelParams) -> ChannelRecord:
    try:
        params.validate()
    except DecodeError as exc:
        raise Malformed(f"invalid channel parameters: {exc}") from None
    if params.chain_id != ov.view.chain_id:
        # Cross-chain replay of a whole channel's states.
        raise WrongChain(f"channel is bound to chain {params.chain_id}, this ledger is chain {ov.view.chain_id}")
    if params.adjudicator != ADJUDICATOR:
        raise WrongChain("channel is bound to another adjudicator")
    cid = params.channel_id
    return ov.channel(cid) or ChannelRecord(channel_id=cid)


def _check_state(params: ChannelParams, state: State) -> None:
    if state.channel_id != params.channel_id:
        # A state of channel X submitted with params of channel Y would move Y's escrow by X's rules.
        raise WrongChannel("the state belongs to another channel than these parameters")
    try:
        state.allocation.validate(len(params.participants))
    except DecodeError as exc:
        raise Malformed(f"invalid allocation: {exc}") from None


def _check_fully_signed(params: ChannelParams, signed: SignedState) -> None:
    """Forgery: only a state every participant signed can move escrow."""
    _check_state(params, signed.state)
    if len(signed.signatures) != len(params.participants):
        raise Malformed("one signature slot per participant")
    for who, (addr, sig) in enumerate(zip(params.participants, signed.signatures, strict=True)):
        if not sig:
            raise BadSignature(f"participant {who} has not signed version {signed.state.version}")
        if not SCHEME.verify(params, signed.state, addr, sig):
            raise BadSignature(f"participant {who}'s signature on version {signed.state.version} does not verify")


def _not_settled(record: ChannelRecord) -> None:
    if record.withdrawn:
        raise AlreadyWithdrawn("the channel was already paid out")
    if record.concluded:
        raise AlreadyConcluded("the channel is concluded; withdraw it")


def _window_open(record: ChannelRecord, now: int) -> bool:
    return record.state is not None and record.deadline is not None and now < record.deadline


def _conclude(ov: _Overlay, sender: Address, op: t.Conclude, now: int) -> None:
    record = _check_params(ov, op.params)
    _not_settled(record)
    _check_state(op.params, op.signed.state)
    if not op.signed.state.is_final:
        raise NotFinal("conclude needs a state marked final; register it instead")
    if op.signed.state.version < record.floor:
        # Stale close: an old final state must not override a newer registered or checkpointed one.
        raise StaleVersion(f"version {op.signed.state.version} is below the adjudicator's {record.floor}")
    _check_fully_signed(op.params, op.signed)
    ov.w.channels[record.channel_id] = attrs.evolve(record, params=op.params, state=op.signed, concluded=True)
    ov.emit("Concluded", record.channel_id, version=op.signed.state.version, state=op.signed)


def _no_dispute(record: ChannelRecord, now: int, while_open: str) -> None:
    """Register and checkpoint need a channel with no registered state."""
    if record.state is not None:
        if _window_open(record, now):
            raise AlreadyRegistered(while_open)
        raise WindowClosed("the dispute is over: withdraw the registered state")


def _register(ov: _Overlay, sender: Address, op: t.Register, now: int) -> None:
    record = _check_params(ov, op.params)
    _not_settled(record)
    _check_state(op.params, op.signed.state)
    _no_dispute(record, now, "a dispute is already open: refute it with a newer state")
    if op.signed.state.version < record.floor:
        # Stale-state attack below a checkpoint: the checkpoint proved a newer state exists.
        raise StaleVersion(f"version {op.signed.state.version} is below the checkpoint {record.floor}")
    _check_fully_signed(op.params, op.signed)
    deadline = now + op.params.challenge_duration
    ov.w.channels[record.channel_id] = attrs.evolve(record, params=op.params, state=op.signed, deadline=deadline)
    ov.emit("Registered", record.channel_id, version=op.signed.state.version, deadline=deadline,
            registrar=sender, state=op.signed)


def _refute(ov: _Overlay, sender: Address, op: t.Refute, now: int) -> None:
    record = _check_params(ov, op.params)
    _not_settled(record)
    _check_state(op.params, op.signed.state)
    if record.state is None:
        raise NotRegistered("no dispute to refute: register the state instead")
    if not _window_open(record, now):
        raise WindowClosed("the challenge window has ended; the registered state is final")
    if op.signed.state.version <= record.state.state.version:
        # Stale-state attack: only a strictly newer state may replace the registered one.
        raise StaleVersion(f"version {op.signed.state.version} does not exceed the registered "
                           f"{record.state.state.version}")
    _check_fully_signed(op.params, op.signed)
    # The deadline stays: a refuter cannot extend the window forever by refuting one version at a time.
    ov.w.channels[record.channel_id] = attrs.evolve(record, params=op.params, state=op.signed)
    ov.emit("Refuted", record.channel_id, version=op.signed.state.version, deadline=record.deadline,
            registrar=sender, state=op.signed)


def _progress(ov: _Overlay, sender: Address, op: t.Progress, now: int) -> None:
    params = op.params
    record = _check_params(ov, params)
    _not_settled(record)
    if params.app_id == "payment":
        raise InvalidMove("payment channels have no moves to force; refute with a signed state instead")
    if record.state is None:
        raise NotRegistered("progress needs a registered dispute: register the latest state first")
    if not _window_open(record, now):
        raise WindowClosed("the challenge window has ended; the registered state is final")
    if op.signed_prev.state != record.state.state:
        raise StateMismatch(f"progress must start from the registered version {record.state.state.version}")
    _check_state(params, op.next_state)
    if not op.mover < len(params.participants):
        raise Malformed("mover is not a participant index")
    if not SCHEME.verify(params, op.next_state, params.participants[op.mover], op.signature):
        # Forged move: a move counts only if the mover signed it.
        raise BadSignature(f"the mover {op.mover} did not sign version {op.next_state.version}")
    try:
        ov.apps.get(params.app_id).validate_transition(params, record.state.state, op.next_state, op.mover)
    except Exception as exc:  # a move the app's rules do not accept is refused, whatever the app raised
        raise InvalidMove(f"the move breaks the rules of {params.app_id!r}: {exc}") from None
    sigs = [b""] * len(params.participants)
    sigs[op.mover] = op.signature
    signed = SignedState(state=op.next_state, signatures=tuple(sigs))
    # The window restarts so the next player has a full window to answer the forced move.
    deadline = now + params.challenge_duration
    ov.w.channels[record.channel_id] = attrs.evolve(record, params=params, state=signed, deadline=deadline)
    ov.emit("Progressed", record.channel_id, version=op.next_state.version, deadline=deadline, mover=op.mover,
            state=signed)


def _checkpoint(ov: _Overlay, sender: Address, op: t.Checkpoint, now: int) -> None:
    record = _check_params(ov, op.params)
    _not_settled(record)
    _check_state(op.params, op.signed.state)
    _no_dispute(record, now, "a dispute is open: refute with this state instead of checkpointing")
    if record.checkpoint is not None and op.signed.state.version <= record.floor:
        raise StaleVersion(f"version {op.signed.state.version} does not exceed the checkpoint {record.floor}")
    _check_fully_signed(op.params, op.signed)
    ov.w.channels[record.channel_id] = attrs.evolve(record, params=op.params, checkpoint=op.signed)
    ov.emit("Checkpointed", record.channel_id, version=op.signed.state.version, state=op.signed)


def _withdraw(ov: _Overlay, sender: Address, op: t.Withdraw, now: int) -> None:
    """Pay what is decided: the unlocked balances once, then each lock once it is decided.

    The first withdraw (after the window, or once concluded) pays the balances and the
    excess and keeps every lock of the paid state in escrow; locks already decided are
    paid at once. Any later withdraw pays the locks decided since. A lock is decided by
    its preimage's registration time and its expiry only, never by when anyone withdraws
    (``lock_outcome``)."""
    record = _check_params(ov, op.params)
    if ov.channel(record.channel_id) is None:
        raise UnknownChannelOnChain("the adjudicator has never seen this channel")
    if record.withdrawn:
        if not record.pending:
            # Double spend: escrow is paid out once, every lock included.
            raise AlreadyWithdrawn("the channel was already paid out, its locks included")
        resolved = _resolve_locks(ov, record, now)
        if resolved.pending == record.pending:
            # Premature lock payout: an undecided lock paid to its payer would rob a payee
            # that may still register the preimage before the expiry.
            expiry = min(record_locks(record)[i].expiry for i in record.pending)
            raise WindowOpen(f"the balances were paid; {len(record.pending)} lock(s) wait for a preimage or "
                             f"their expiry (the earliest at {expiry}); it is {now}")
        ov.w.channels[record.channel_id] = resolved
        return
    if record.state is None:
        raise NotRegistered("nothing to withdraw: conclude or register a state first")
    if not record.concluded and _window_open(record, now):
        # Premature close: the other side must get its full window to refute.
        raise WindowOpen(f"the challenge window ends at {record.deadline}; it is {now}")
    state = record.state.state
    payouts, refunded = compute_payouts(op.params, state, ov.deposits(record.channel_id))
    for (account, asset), amount in payouts.items():
        ov.credit(account, asset, amount)
    pending = () if refunded else tuple(range(len(state.allocation.locks)))
    record = attrs.evolve(record, params=op.params, withdrawn=True, pending=pending)
    ov.emit("Withdrawn", record.channel_id, version=state.version, refunded=refunded,
            payouts=tuple((a, s, n) for (a, s), n in payouts.items()))
    ov.w.channels[record.channel_id] = _resolve_locks(ov, record, now)


def record_locks(record: ChannelRecord) -> tuple[Lock, ...]:
    return () if record.state is None else record.state.state.allocation.locks


def _resolve_locks(ov: _Overlay, record: ChannelRecord, now: int) -> ChannelRecord:
    """Pay every pending lock that is decided at ``now``; the rest stays in escrow."""
    assert record.params is not None and record.state is not None
    locks, parts = record_locks(record), record.params.participants
    left = []
    for index in record.pending:
        lock = locks[index]
        fulfilled = lock_outcome(lock, _secret_time(ov, lock.hashlock), now)
        if fulfilled is None:
            left.append(index)
            continue
        to = parts[lock.payee if fulfilled else lock.payer]
        if lock.amount:
            ov.credit(to, lock.asset, lock.amount)
        ov.emit("LockResolved", record.channel_id, version=record.state.state.version, index=index,
                lock_id=lock.lock_id, hashlock=lock.hashlock, fulfilled=fulfilled, to=to, asset=lock.asset,
                amount=lock.amount)
    return attrs.evolve(record, pending=tuple(left))


def _secret_time(ov: _Overlay, hashlock: bytes) -> int | None:
    secret = ov.view.secret(hashlock)
    return None if secret is None else secret.time


def lock_outcome(lock: Lock, registered: int | None, now: int) -> bool | None:
    """Whom a lock pays at ledger time ``now``: True the payee, False the payer, None not decided yet.

    ``registered`` is the registration time of the preimage of its hashlock (None: not
    registered). Fulfilled iff registered strictly before the expiry; expired once ``now``
    reaches the expiry without that. Both are final: a registration time never moves, and
    a preimage registered from ``now`` on is registered at ``now`` or later, so too late
    once ``now >= expiry``."""
    if registered is not None and registered < lock.expiry:
        return True
    if now >= lock.expiry:
        return False
    return None


def holdings_of(deposits: Sequence[DepositEntry]) -> dict[AssetId, int]:
    out: dict[AssetId, int] = {}
    for d in deposits:
        out[d.asset] = out.get(d.asset, 0) + d.amount
    return out


def escrow_of(record: ChannelRecord, deposits: Sequence[DepositEntry]) -> dict[AssetId, int]:
    """What the escrow holds now: the deposits until withdrawn, then the pending locks' amounts."""
    if not record.withdrawn:
        return holdings_of(deposits)
    locks = record_locks(record)
    out: dict[AssetId, int] = {}
    for index in record.pending:
        lock = locks[index]
        if lock.amount:
            out[lock.asset] = out.get(lock.asset, 0) + lock.amount
    return out


def compute_payouts(params: ChannelParams, state: State,
                    deposits: Sequence[DepositEntry]) -> tuple[dict[tuple[Address, AssetId], int], bool]:
    """What the first withdraw pays: everything but the locks, which stay in escrow.

    * If any asset of the allocation holds less than the allocation's total, the channel
      was never fully funded: every depositor gets back exactly what it deposited
      (refunded=True), and no lock is paid or kept. Paying the allocation from short
      escrow would pay someone with another depositor's money.
    * Otherwise each participant gets its balance, and any excess (holdings above the
      total, or an asset the allocation does not name) goes back to the depositors,
      latest deposit first: deposits fill the allocation in arrival order, so the last
      ones are the surplus. What is left in escrow is exactly the locks' amounts, each
      paid when it is decided (``lock_outcome``).
    """
    holdings = holdings_of(deposits)
    alloc = state.allocation
    payouts: dict[tuple[Address, AssetId], int] = {}

    def pay(account: Address, asset: AssetId, amount: int) -> None:
        if amount:
            payouts[(account, asset)] = payouts.get((account, asset), 0) + amount

    if any(holdings.get(asset, 0) < alloc.total(i) for i, asset in enumerate(alloc.assets)):
        for d in deposits:
            pay(d.depositor, d.asset, d.amount)
        return payouts, True
    parts = params.participants
    for asset, row in zip(alloc.assets, alloc.balances, strict=True):
        for who, amount in enumerate(row):
            pay(parts[who], asset, amount)
    excess = {asset: holdings[asset] - (alloc.total(alloc.assets.index(asset)) if asset in alloc.assets else 0)
              for asset in holdings}
    for d in reversed(deposits):
        back = min(d.amount, excess[d.asset])
        if back:
            excess[d.asset] -= back
            pay(d.depositor, d.asset, back)
    return payouts, False


_OPS: dict[type[Any], Any] = {
    t.Transfer: _transfer, t.CreateToken: _create_token, t.Mint: _mint, t.Deposit: _deposit,
    t.Conclude: _conclude, t.Register: _register, t.Refute: _refute, t.Progress: _progress,
    t.Checkpoint: _checkpoint, t.Withdraw: _withdraw, t.RegisterSecret: _register_secret,
}
