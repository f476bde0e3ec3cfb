"""The watchtower's core: what to store, what to refuse, and what to submit when (proto/07-watchtower.md).

Pure and deterministic, like the node's core: no I/O, no clock (time is passed in). It reads
the stored appointments through ``Records`` (the SQLite store in the daemon, ``MemoryRecords``
in tests), and every change it decides comes back as a value for the shell to persist:

* ``accept`` / ``accept_encrypted`` -> ``Accepted`` / ``AcceptedBlob`` (what to write, and the
  signed receipt the shell may send once the write is committed);
* ``on_chain_event`` -> ``Reaction`` (disputes, learned and forgotten appointments, and the
  ``Refute`` / ``RegisterSecret`` actions to submit);
* ``pending(now)`` -> the actions still due (the shell retries until the L1 shows them done);
* ``expire(now)`` -> a ``Reaction`` dropping what can never matter again.

The core keeps in memory only the per-client usage (for quotas), the rate buckets and the
open disputes: a million appointments cost the tower disk, not RAM.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

import attrs

from ..chain.base import ChainEvent
from ..core.backend import Signer, StateScheme
from ..core.ids import ChannelId
from ..core.state import ChannelParams, SignedState, State, parse_bytes, parse_list, parse_u64
from ..crypto import sha256
from ..encoding import encode
from ..errors import DecodeError
from .appointment import (
    ENCRYPTED,
    MAX_APPOINTMENT_BYTES,
    PLAIN,
    Appointment,
    EncryptedAppointment,
    Receipt,
    decrypt,
    locator_of,
    receipt_digest,
    trigger_id,
)
from .errors import MalformedAppointment, NonMonotonic, OverQuota, Oversize, RateLimited, Unsigned, WrongDomain

MAX_APPOINTMENTS_PER_CLIENT = 10_000  # plain and encrypted together
MAX_BYTES_PER_CLIENT = 16 * 1024 * 1024
MAX_APPOINTMENTS = 1_000_000  # all clients together: peer ids cost nothing, so this is the real bound
MAX_TOTAL_BYTES = 1024 * 1024 * 1024
MAX_DECRYPT_STEPS = 10_000  # encrypted appointments followed from one registration
MAX_DUE_LOCKS = 1_000  # lock watches read per ``pending`` call (the rest on the next)
MAX_BUCKETS = 10_000  # rate buckets kept before full ones are dropped
LOCK_MARGIN = 60  # seconds before a lock's expiry at which the tower registers its preimage


@attrs.frozen
class Rate:
    """A token bucket's shape: ``burst`` requests at once, refilled at ``per_second``."""

    per_second: float
    burst: float


CLIENT_RATE = Rate(per_second=50.0, burst=500.0)
TOTAL_RATE = Rate(per_second=2000.0, burst=10_000.0)


@attrs.define
class Bucket:
    """A token bucket with time passed in; time going backwards refills nothing."""

    rate: Rate
    tokens: float
    stamp: float

    def refill(self, now: float) -> None:
        if now > self.stamp:
            self.tokens = min(self.rate.burst, self.tokens + (now - self.stamp) * self.rate.per_second)
            self.stamp = now

    def take(self, now: float) -> bool:
        self.refill(now)
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


@attrs.frozen(kw_only=True)
class Limits:
    """What one tower stores and serves (docs/resource-bounds.md, "Watchtower")."""

    max_appointment_bytes: int = MAX_APPOINTMENT_BYTES
    per_client_appointments: int = MAX_APPOINTMENTS_PER_CLIENT
    per_client_bytes: int = MAX_BYTES_PER_CLIENT
    total_appointments: int = MAX_APPOINTMENTS
    total_bytes: int = MAX_TOTAL_BYTES
    client_rate: Rate = CLIENT_RATE
    total_rate: Rate = TOTAL_RATE
    lock_margin: int = LOCK_MARGIN
    max_decrypt_steps: int = MAX_DECRYPT_STEPS


@attrs.frozen(kw_only=True)
class Usage:
    appointments: int = 0
    bytes: int = 0


@attrs.frozen(kw_only=True)
class Stored:
    """The one plain record of a channel, and who sent it."""

    appointment: Appointment
    client: str
    size: int
    received: int


@attrs.frozen(kw_only=True)
class StoredBlob:
    """One client's encrypted appointment at one locator."""

    blob: EncryptedAppointment
    client: str
    size: int
    received: int


# (client, change in appointments, change in bytes): the store applies these to its counters
UsageDelta = tuple[str, int, int]


@attrs.frozen(kw_only=True)
class Accepted:
    """A plain appointment to write (unless ``changed`` is False: an identical resend)."""

    stored: Stored
    replaced: Stored | None
    receipt: Receipt
    changed: bool
    usage: tuple[UsageDelta, ...] = ()


@attrs.frozen(kw_only=True)
class AcceptedBlob:
    stored: StoredBlob
    replaced: StoredBlob | None
    receipt: Receipt
    changed: bool
    usage: tuple[UsageDelta, ...] = ()


@attrs.frozen(kw_only=True)
class Dispute:
    """A watched channel the L1 holds a state of: registered (``settled`` False) or concluded.

    ``locks`` are (hashlock, expiry) of the state the L1 holds; ``secrets_done`` the
    hashlocks whose preimages the L1 has registered since."""

    channel_id: ChannelId
    version: int
    deadline: int
    locks: tuple[tuple[bytes, int], ...] = ()
    secrets_done: tuple[bytes, ...] = ()
    settled: bool = False

    def to_fields(self) -> list[Any]:
        return [self.channel_id, self.version, self.deadline, [[h, e] for h, e in self.locks],
                list(self.secrets_done), self.settled]

    @classmethod
    def from_fields(cls, f: Any) -> Dispute:
        f = parse_list(f, "dispute", size=6)
        locks = []
        for item in parse_list(f[3], "dispute locks", max_size=512):
            pair = parse_list(item, "dispute lock", size=2)
            locks.append((parse_bytes(pair[0], "hashlock", size=32), parse_u64(pair[1], "lock expiry")))
        done = tuple(parse_bytes(h, "hashlock", size=32) for h in parse_list(f[4], "secrets done", max_size=512))
        if type(f[5]) is not bool:
            raise DecodeError("settled is a boolean")
        return cls(channel_id=ChannelId(parse_bytes(f[0], "channel id", size=32)),
                   version=parse_u64(f[1], "version"), deadline=parse_u64(f[2], "deadline"), locks=tuple(locks),
                   secrets_done=done, settled=f[5])

    def encode(self) -> bytes:
        return encode(self.to_fields())


@attrs.frozen(kw_only=True)
class Refute:
    """Submit ``signed`` against the registered ``against`` before ``deadline``."""

    channel_id: ChannelId
    params: ChannelParams
    signed: SignedState
    against: int
    deadline: int

    @property
    def key(self) -> tuple[str, bytes, int]:
        return ("refute", self.channel_id, self.signed.state.version)


@attrs.frozen(kw_only=True)
class RegisterSecret:
    """Register ``preimage`` on the L1 strictly before ``expiry``."""

    channel_id: ChannelId
    hashlock: bytes
    preimage: bytes
    expiry: int

    @property
    def key(self) -> tuple[str, bytes, int]:
        return ("secret", self.hashlock, 0)


Action = Refute | RegisterSecret


@attrs.frozen(kw_only=True)
class Reaction:
    """What one chain event (or ``expire``) changes; the shell persists it with the cursor."""

    actions: tuple[Action, ...] = ()
    disputes: tuple[Dispute, ...] = ()  # put
    closed: tuple[ChannelId, ...] = ()  # disputes to delete
    learned: tuple[Stored, ...] = ()  # decrypted appointments, stored as plain records
    forgotten: tuple[ChannelId, ...] = ()  # plain records to delete (their channels are over)
    blobs_used: tuple[tuple[str, bytes], ...] = ()  # (client, locator) decrypted into ``learned``
    secrets_seen: tuple[bytes, ...] = ()  # hashlocks registered on the L1: their lock watches end
    prune_locks_before: int | None = None  # lock watches expiring at or before this are over
    usage: tuple[UsageDelta, ...] = ()

    @property
    def writes(self) -> bool:
        return bool(self.disputes or self.closed or self.learned or self.forgotten or self.blobs_used
                    or self.secrets_seen or self.prune_locks_before is not None)


EMPTY = Reaction()


class Records(Protocol):
    """Read access to what the tower stores."""

    def appointment(self, channel_id: ChannelId) -> Stored | None: ...

    def blob(self, client: str, locator: bytes) -> StoredBlob | None: ...

    def blobs(self, locator: bytes) -> Sequence[StoredBlob]: ...

    def locks_due(self, until: int, limit: int) -> Sequence[tuple[ChannelId, bytes, int]]:
        """Lock watches (channel id, hashlock, expiry) with expiry <= ``until``, earliest first."""
        ...


def watched_locks(appointment: Appointment) -> list[tuple[bytes, int]]:
    """(hashlock, expiry) of the appointment's locks whose preimage it carries."""
    known = {sha256(p) for p in appointment.preimages}
    return sorted({(lk.hashlock, lk.expiry) for lk in appointment.signed.state.allocation.locks
                   if lk.hashlock in known})


def _locks(state: State) -> tuple[tuple[bytes, int], ...]:
    return tuple(sorted({(lk.hashlock, lk.expiry) for lk in state.allocation.locks}))


class Tower:
    """The tower's decisions. ``signer`` signs receipts (its address is the tower key)."""

    def __init__(self, *, signer: Signer, scheme: StateScheme, chain_id: int, adjudicator: bytes, records: Records,
                 limits: Limits | None = None, usage: Mapping[str, Usage] | None = None,
                 disputes: Iterable[Dispute] = ()) -> None:
        self.signer = signer
        self.scheme = scheme
        self.chain_id = chain_id
        self.adjudicator = adjudicator
        self.records = records
        self.limits = limits or Limits()
        self.disputes: dict[ChannelId, Dispute] = {d.channel_id: d for d in disputes}
        self._usage: dict[str, Usage] = {}
        self._total = Usage()
        self.reset_usage(usage or {})
        self._buckets: dict[str, Bucket] = {}
        self._total_bucket: Bucket | None = None

    @property
    def tower_key(self) -> bytes:
        return bytes(self.signer.address)

    # --- usage and rates --------------------------------------------------------------------------

    def usage(self, client: str) -> Usage:
        return self._usage.get(client, Usage())

    @property
    def total_usage(self) -> Usage:
        return self._total

    @property
    def clients(self) -> int:
        return len(self._usage)

    def reset_usage(self, usage: Mapping[str, Usage]) -> None:
        """Take the persisted counters (at start-up, and after a failed commit)."""
        self._usage = {c: u for c, u in usage.items() if u.appointments or u.bytes}
        self._total = Usage(appointments=sum(u.appointments for u in self._usage.values()),
                            bytes=sum(u.bytes for u in self._usage.values()))

    def _apply_usage(self, deltas: Iterable[UsageDelta]) -> None:
        for client, count, size in deltas:
            old = self.usage(client)
            new = Usage(appointments=old.appointments + count, bytes=old.bytes + size)
            if new.appointments or new.bytes:
                self._usage[client] = new
            else:
                self._usage.pop(client, None)
            self._total = Usage(appointments=self._total.appointments + count, bytes=self._total.bytes + size)

    def take_rate(self, client: str, now: float) -> None:
        """Spend one request of ``client``'s rate (and the tower's); ``RateLimited`` when none is left."""
        lim = self.limits
        if self._total_bucket is None:
            self._total_bucket = Bucket(lim.total_rate, lim.total_rate.burst, now)
        bucket = self._buckets.get(client) or Bucket(lim.client_rate, lim.client_rate.burst, now)
        bucket.refill(now)
        if bucket.tokens < 1:
            raise RateLimited(f"this client may send {lim.client_rate.per_second:g} appointments a second "
                              f"(bursts of {lim.client_rate.burst:g}); retry later")
        if not self._total_bucket.take(now):
            raise RateLimited(f"the tower takes {lim.total_rate.per_second:g} appointments a second from all "
                              "clients together; retry later")
        bucket.tokens -= 1
        self._buckets[client] = bucket
        if len(self._buckets) > MAX_BUCKETS:  # a full bucket is the same as no bucket: drop those
            for key, b in list(self._buckets.items()):
                b.refill(now)
                if b.tokens >= b.rate.burst:
                    del self._buckets[key]

    def _check_quota(self, client: str, deltas: Sequence[UsageDelta]) -> None:
        """Refuse what would take this client (or the tower) past a quota; a change that takes
        no more room than before passes, so a client over a lowered quota can still update."""
        lim = self.limits
        mine = self.usage(client)
        count = sum(c for who, c, _ in deltas if who == client)
        size = sum(s for who, _, s in deltas if who == client)
        if count > 0 and mine.appointments + count > lim.per_client_appointments:
            raise OverQuota(f"this client already has {mine.appointments} appointments, the most the tower keeps "
                            "for one client; let closed channels settle or use another tower")
        if size > 0 and mine.bytes + size > lim.per_client_bytes:
            raise OverQuota(f"this client's appointments would take {mine.bytes + size} bytes; the tower keeps "
                            f"{lim.per_client_bytes} per client")
        total_count = sum(c for _, c, _ in deltas)
        total_size = sum(s for _, _, s in deltas)
        if (total_count > 0 and self._total.appointments + total_count > lim.total_appointments) or (
                total_size > 0 and self._total.bytes + total_size > lim.total_bytes):
            raise OverQuota("the tower is full; retry later or use another tower")

    # --- validity ---------------------------------------------------------------------------------

    def validate(self, appt: Appointment) -> None:
        """Raise the typed refusal for an appointment the tower could not use to refute."""
        params, state = appt.params, appt.signed.state
        if params.chain_id != self.chain_id:
            raise WrongDomain(f"the channel is bound to chain {params.chain_id}; this tower watches chain "
                              f"{self.chain_id}")
        if params.adjudicator != self.adjudicator:
            raise WrongDomain("the channel is bound to another adjudicator than the one this tower watches")
        if state.channel_id != self.scheme.channel_id(params):
            raise MalformedAppointment("the state belongs to another channel than these parameters")
        try:
            state.allocation.validate(len(params.participants))
        except DecodeError as exc:
            raise MalformedAppointment(f"invalid allocation: {exc}") from None
        if len(appt.signed.signatures) != len(params.participants):
            raise MalformedAppointment("one signature slot per participant")
        for who, (addr, sig) in enumerate(zip(params.participants, appt.signed.signatures, strict=True)):
            if not sig:
                raise Unsigned(f"participant {who} has not signed version {state.version}; the tower keeps only "
                               "states every participant signed")
            if not self.scheme.verify(params, state, addr, sig):
                raise Unsigned(f"participant {who}'s signature on version {state.version} does not verify")
        hashlocks = {lk.hashlock for lk in state.allocation.locks}
        seen: set[bytes] = set()
        for p in appt.preimages:
            h = sha256(p)
            if h not in hashlocks:
                raise MalformedAppointment("a preimage opens no lock of the state")
            if h in seen:
                raise MalformedAppointment("a preimage is given twice")
            seen.add(h)

    # --- accepting --------------------------------------------------------------------------------

    def _receipt(self, kind: int, subject: bytes, version: int, digest: bytes, now: float) -> Receipt:
        time = max(0, int(now))
        sig = self.signer.sign_digest(receipt_digest(self.tower_key, kind, subject, version, digest, time))
        return Receipt(tower_key=self.tower_key, kind=kind, subject=subject, version=version,
                       appointment_hash=digest, time=time, signature=sig)

    def accept(self, appt: Appointment, client: str, now: float) -> Accepted:
        """Decide on a plain appointment; raises a ``TowerError`` subclass to refuse it.

        The usage counters move at once; the caller persists ``Accepted`` and sends its receipt
        only after the commit (after a failed commit, ``reset_usage`` from the store)."""
        self.take_rate(client, now)
        size = len(appt.encode())
        if size > self.limits.max_appointment_bytes:
            raise Oversize(f"the appointment is {size} bytes; the tower stores {self.limits.max_appointment_bytes}")
        self.validate(appt)
        old = self.records.appointment(appt.channel_id)
        preimages = {sha256(p): p for p in appt.preimages}
        if old is not None:
            have = old.appointment
            if appt.version < have.version or (appt.version == have.version and appt.signed != have.signed):
                raise NonMonotonic(f"the tower holds channel {appt.channel_id.hex()} at version {have.version}; "
                                   f"it is replaced only by a higher version, not {appt.version}")
            # Preimages the tower holds stay, as long as their locks are still in the state.
            hashlocks = {lk.hashlock for lk in appt.signed.state.allocation.locks}
            for p in have.preimages:
                if sha256(p) in hashlocks:
                    preimages.setdefault(sha256(p), p)
        # Stored in hashlock order: one set of preimages has one stored form.
        merged = attrs.evolve(appt, preimages=tuple(p for _, p in sorted(preimages.items())))
        stored_size = size if merged == appt else len(merged.encode())
        receipt = self._receipt(PLAIN, appt.channel_id, appt.version, appt.digest(), now)
        if old is not None and merged == old.appointment:
            return Accepted(stored=old, replaced=None, receipt=receipt, changed=False)
        deltas: list[UsageDelta] = [(client, 1, stored_size)]
        if old is not None:
            deltas.append((old.client, -1, -old.size))
        self._check_quota(client, deltas)
        stored = Stored(appointment=merged, client=client, size=stored_size, received=max(0, int(now)))
        self._apply_usage(deltas)
        return Accepted(stored=stored, replaced=old, receipt=receipt, changed=True, usage=tuple(deltas))

    def accept_encrypted(self, blob: EncryptedAppointment, client: str, now: float) -> AcceptedBlob:
        """Decide on an encrypted appointment: it cannot be checked, only bounded and sequenced."""
        self.take_rate(client, now)
        size = len(blob.encode())
        if size > self.limits.max_appointment_bytes + 64:
            raise Oversize(f"the encrypted appointment is {size} bytes; the tower stores "
                           f"{self.limits.max_appointment_bytes} of plaintext")
        old = self.records.blob(client, blob.locator)
        receipt = self._receipt(ENCRYPTED, blob.locator, blob.seq, blob.digest(), now)
        if old is not None:
            if old.blob == blob:
                return AcceptedBlob(stored=old, replaced=None, receipt=receipt, changed=False)
            if blob.seq <= old.blob.seq:
                raise NonMonotonic(f"the tower holds this locator at sequence {old.blob.seq}; it is replaced only "
                                   f"by a higher one, not {blob.seq}")
        deltas: list[UsageDelta] = [(client, 1, size)]
        if old is not None:
            deltas.append((client, -1, -old.size))
        self._check_quota(client, deltas)
        stored = StoredBlob(blob=blob, client=client, size=size, received=max(0, int(now)))
        self._apply_usage(deltas)
        return AcceptedBlob(stored=stored, replaced=old, receipt=receipt, changed=True, usage=tuple(deltas))

    # --- the L1 -----------------------------------------------------------------------------------

    def on_chain_event(self, ev: ChainEvent) -> Reaction:
        """React to one L1 event; the shell persists the reaction with the event's cursor.

        Replaying an event already handled decides the same again (the watcher may see
        events twice across a crash)."""
        data: Any = ev.data
        if ev.kind == "SecretRegistered":
            return self.secret_registered(bytes(data["hashlock"]))
        cid = ev.channel_id
        if cid is None:
            return EMPTY
        if ev.kind in ("Registered", "Refuted", "Progressed"):
            return self._disputed(cid, data["state"], int(data["version"]), int(data["deadline"]), ev.time,
                                  fully_signed=ev.kind != "Progressed")
        if ev.kind in ("Concluded", "Withdrawn"):
            return self._settled(cid, data.get("state"), int(data["version"]))
        return EMPTY

    def _disputed(self, cid: ChannelId, state: SignedState, version: int, deadline: int, now: int, *,
                  fully_signed: bool) -> Reaction:
        stored = self.records.appointment(cid)
        learned: tuple[Stored, ...] = ()
        used: tuple[tuple[str, bytes], ...] = ()
        deltas: list[UsageDelta] = []
        if fully_signed:
            found, blobs = self._open_blobs(cid, state, now)
            if found is not None and (stored is None or found.appointment.version > stored.appointment.version):
                learned, used = (found,), tuple((b.client, b.blob.locator) for b in blobs)
                deltas.append((found.client, 1, found.size))
                deltas.extend((b.client, -1, -b.size) for b in blobs)
                if stored is not None:
                    deltas.append((stored.client, -1, -stored.size))
                stored = found
        if stored is None:
            return EMPTY  # not a channel we watch: keep nothing about it
        old = self.disputes.get(cid)
        dispute = Dispute(channel_id=cid, version=version, deadline=deadline, locks=_locks(state.state),
                          secrets_done=old.secrets_done if old is not None else ())
        self.disputes[cid] = dispute
        self._apply_usage(deltas)
        return Reaction(actions=tuple(self._actions(dispute, stored, now)), disputes=(dispute,), learned=learned,
                        blobs_used=used, usage=tuple(deltas))

    def _settled(self, cid: ChannelId, state: SignedState | None, version: int) -> Reaction:
        old = self.disputes.get(cid)
        if old is None and self.records.appointment(cid) is None:
            return EMPTY
        locks = _locks(state.state) if state is not None else (old.locks if old is not None else ())
        dispute = Dispute(channel_id=cid, version=version, deadline=0, locks=locks,
                          secrets_done=old.secrets_done if old is not None else (), settled=True)
        self.disputes[cid] = dispute
        return Reaction(disputes=(dispute,))

    def secret_registered(self, hashlock: bytes) -> Reaction:
        """The L1 holds this preimage (its event, or the shell saw it on the L1 before
        submitting): no dispute needs it any more, and its lock watches end."""
        updated = []
        for cid, d in list(self.disputes.items()):
            if hashlock not in d.secrets_done and any(h == hashlock for h, _ in d.locks):
                new = attrs.evolve(d, secrets_done=(*d.secrets_done, hashlock))
                self.disputes[cid] = new
                updated.append(new)
        return Reaction(disputes=tuple(updated), secrets_seen=(hashlock,))

    def _open_blobs(self, cid: ChannelId, state: SignedState,
                    now: int) -> tuple[Stored | None, list[StoredBlob]]:
        """Follow the encrypted appointments from the registered state: each one opened names
        the next trigger (the newer state inside it), up to the newest the tower holds."""
        trigger, best, used = state, None, []
        seen: set[bytes] = set()
        for _ in range(self.limits.max_decrypt_steps):
            found: tuple[Appointment, StoredBlob] | None = None
            for sig in trigger.signatures:
                if not sig:
                    continue
                tid = trigger_id(trigger.state, sig)
                locator = locator_of(tid)
                if locator in seen:
                    continue
                seen.add(locator)
                for sb in self.records.blobs(locator):
                    try:
                        appt = decrypt(sb.blob, tid)
                        if appt.channel_id != cid or appt.version < trigger.state.version:
                            continue
                        self.validate(appt)
                    except (MalformedAppointment, Unsigned, WrongDomain):
                        continue  # not what its client promised: useless, but nobody else's problem
                    used.append(sb)
                    if found is None or appt.version > found[0].version:
                        found = (appt, sb)
            if found is None:
                break
            appt, sb = found
            if best is None or appt.version > best.appointment.version:
                best = Stored(appointment=appt, client=sb.client, size=len(appt.encode()), received=now)
            if appt.signed == trigger:
                break
            trigger = appt.signed
        return best, used

    def _actions(self, d: Dispute, stored: Stored, now: int) -> list[Action]:
        out: list[Action] = []
        appt = stored.appointment
        if not d.settled and appt.version > d.version and now < d.deadline:
            out.append(Refute(channel_id=d.channel_id, params=appt.params, signed=appt.signed, against=d.version,
                              deadline=d.deadline))
        preimages = {sha256(p): p for p in appt.preimages}
        expiries: dict[bytes, int] = {}
        for h, expiry in (*d.locks, *_locks(appt.signed.state)):
            if h in preimages and h not in d.secrets_done and now < expiry:
                expiries[h] = max(expiries.get(h, 0), expiry)
        out.extend(RegisterSecret(channel_id=d.channel_id, hashlock=h, preimage=preimages[h], expiry=e)
                   for h, e in sorted(expiries.items()))
        return out

    def pending(self, now: int) -> list[Action]:
        """Every action due at L1 time ``now``: refutes of open disputes we can beat, preimages
        of disputed locks, and preimages of any watched lock within ``lock_margin`` of expiry."""
        out: list[Action] = []
        seen: set[tuple[str, bytes, int]] = set()
        for d in self.disputes.values():
            stored = self.records.appointment(d.channel_id)
            if stored is not None:
                for a in self._actions(d, stored, now):
                    if a.key not in seen:
                        seen.add(a.key)
                        out.append(a)
        for cid, hashlock, expiry in self.records.locks_due(now + self.limits.lock_margin, MAX_DUE_LOCKS):
            if now >= expiry or ("secret", hashlock, 0) in seen:
                continue
            stored = self.records.appointment(cid)
            preimage = None if stored is None else next(
                (p for p in stored.appointment.preimages if sha256(p) == hashlock), None)
            if preimage is not None:
                seen.add(("secret", hashlock, 0))
                out.append(RegisterSecret(channel_id=cid, hashlock=hashlock, preimage=preimage, expiry=expiry))
        return out

    def expire(self, now: int) -> Reaction:
        """Drop disputes (and their appointments) that can never need the tower again: the
        window is over or the channel settled, and no known preimage can still count."""
        closed, deltas = [], []
        for cid, d in list(self.disputes.items()):
            stored = self.records.appointment(cid)
            if not (d.settled or now >= d.deadline):
                continue
            if stored is not None and any(isinstance(a, RegisterSecret) for a in self._actions(d, stored, now)):
                continue
            del self.disputes[cid]
            closed.append(cid)
            if stored is not None:
                deltas.append((stored.client, -1, -stored.size))
        self._apply_usage(deltas)
        return Reaction(closed=tuple(closed), forgotten=tuple(closed), prune_locks_before=now, usage=tuple(deltas))

    def forget_blobs(self, client: str, locators: Iterable[bytes]) -> tuple[list[bytes], tuple[UsageDelta, ...]]:
        """A client drops its own encrypted appointments (a channel closed): the locators it
        holds, and the usage that frees."""
        gone, deltas = [], []
        for locator in dict.fromkeys(locators):
            sb = self.records.blob(client, locator)
            if sb is not None:
                gone.append(locator)
                deltas.append((client, -1, -sb.size))
        self._apply_usage(deltas)
        return gone, tuple(deltas)


class MemoryRecords:
    """``Records`` in memory, with the store's write methods: tests and simulations."""

    def __init__(self) -> None:
        self.plain: dict[ChannelId, Stored] = {}
        self.encrypted: dict[tuple[str, bytes], StoredBlob] = {}
        self.watches: dict[tuple[ChannelId, bytes], int] = {}
        self.stored_disputes: dict[ChannelId, Dispute] = {}
        self.counters: dict[str, Usage] = {}
        self.cursor = 0

    # reads
    def appointment(self, channel_id: ChannelId) -> Stored | None:
        return self.plain.get(channel_id)

    def blob(self, client: str, locator: bytes) -> StoredBlob | None:
        return self.encrypted.get((client, locator))

    def blobs(self, locator: bytes) -> list[StoredBlob]:
        return [sb for (_, loc), sb in sorted(self.encrypted.items()) if loc == locator]

    def locks_due(self, until: int, limit: int) -> list[tuple[ChannelId, bytes, int]]:
        rows = sorted(((e, c, h) for (c, h), e in self.watches.items() if e <= until))[:limit]
        return [(c, h, e) for e, c, h in rows]

    def usage(self) -> dict[str, Usage]:
        return dict(self.counters)

    # writes
    def _usage(self, deltas: Iterable[UsageDelta]) -> None:
        for client, count, size in deltas:
            old = self.counters.get(client, Usage())
            self.counters[client] = Usage(appointments=old.appointments + count, bytes=old.bytes + size)

    def _put(self, stored: Stored) -> None:
        cid = stored.appointment.channel_id
        self._drop_watches(cid)
        self.plain[cid] = stored
        for h, e in watched_locks(stored.appointment):
            self.watches[(cid, h)] = e

    def _drop_watches(self, cid: ChannelId) -> None:
        for key in [k for k in self.watches if k[0] == cid]:
            del self.watches[key]

    def save_accepted(self, acc: Accepted) -> None:
        if acc.changed:
            self._put(acc.stored)
            self._usage(acc.usage)

    def save_blob(self, acc: AcceptedBlob) -> None:
        if acc.changed:
            self.encrypted[(acc.stored.client, acc.stored.blob.locator)] = acc.stored
            self._usage(acc.usage)

    def delete_blobs(self, client: str, locators: Iterable[bytes], usage: Iterable[UsageDelta]) -> None:
        for locator in locators:
            self.encrypted.pop((client, locator), None)
        self._usage(usage)

    def apply(self, r: Reaction) -> None:
        for d in r.disputes:
            self.stored_disputes[d.channel_id] = d
        for cid in r.closed:
            self.stored_disputes.pop(cid, None)
        for used in r.blobs_used:
            self.encrypted.pop(used, None)
        for stored in r.learned:
            self._put(stored)
        for cid in r.forgotten:
            self.plain.pop(cid, None)
            self._drop_watches(cid)
        for h in r.secrets_seen:
            for key in [k for k in self.watches if k[1] == h]:
                del self.watches[key]
        if r.prune_locks_before is not None:
            for key in [k for k, e in self.watches.items() if e <= r.prune_locks_before]:
                del self.watches[key]
        self._usage(r.usage)
