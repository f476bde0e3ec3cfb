"""The encrypted mode: the tower holds blobs it cannot read until the trigger state is registered."""

from __future__ import annotations

import attrs
import pytest

from channels.core.state import SignedState
from channels.watchtower.appointment import (
    ENCRYPTED,
    EncryptedAppointment,
    decrypt,
    encrypt,
    key_of,
    locator_of,
    trigger_id,
)
from channels.watchtower.client import seal
from channels.watchtower.core import MemoryRecords, Refute, RegisterSecret, Tower, Usage
from channels.watchtower.errors import MalformedAppointment, NonMonotonic
from tests.devnet.devnet_util import SCHEME
from tests.watchtower.helpers import appointment, channel, lock, make_tower, preimage, registered, signed

NOW = 1_000
NONCE = b"\x07" * 24
ME = 0  # alice is the client: her signature is the one a cheater cannot change


def put(tower: Tower, blob: EncryptedAppointment, client: str = "alice") -> None:
    acc = tower.accept_encrypted(blob, client, NOW)
    tower.records.save_blob(acc)  # type: ignore[attr-defined]


def test_round_trip_and_a_wrong_trigger_opens_nothing() -> None:
    p = channel()
    appt = appointment(p, 4)
    trigger = signed(p, 3)
    blob = encrypt(appt, trigger, ME, seq=4, nonce=NONCE)
    tid = trigger_id(trigger.state, trigger.signatures[ME])
    assert blob.locator == locator_of(tid) and len(blob.locator) == 16
    assert decrypt(blob, tid) == appt
    for wrong in (trigger_id(signed(p, 2).state, signed(p, 2).signatures[ME]),  # another version
                  trigger_id(trigger.state, trigger.signatures[1]),  # the other participant's signature
                  trigger.state.channel_id):  # the channel id alone (public since its deposit)
        with pytest.raises(MalformedAppointment):
            decrypt(blob, wrong)
    with pytest.raises(MalformedAppointment):  # the sequence number is authenticated
        decrypt(attrs.evolve(blob, seq=5), tid)
    assert key_of(tid) != tid and appt.encode() not in blob.ciphertext


def test_the_tower_learns_nothing_until_the_trigger_is_registered() -> None:
    p = channel()
    tower = make_tower()
    receipt = tower.accept_encrypted(seal(appointment(p, 4), signed(p, 3), ME, seq=4), "alice", NOW)
    tower.records.save_blob(receipt)  # type: ignore[attr-defined]
    assert receipt.receipt.kind == ENCRYPTED and receipt.receipt.verifies()
    # Registrations of other states of this very channel open nothing (not the newest, not an older one).
    for version in (4, 2):
        r = tower.on_chain_event(registered(p, signed(p, version), deadline=NOW + 100))
        assert r.learned == () and r.actions == () and tower.records.appointment(p.channel_id) is None
    assert tower.disputes == {}  # nothing kept about a channel it cannot read


def test_a_registration_of_the_trigger_opens_the_chain_up_to_the_newest_state() -> None:
    p = channel()
    records = MemoryRecords()
    tower = make_tower(records)
    # The client sends one blob per revoked state: registering version v opens the state after it.
    for v in range(1, 6):
        put(tower, seal(appointment(p, v + 1), signed(p, v), ME, seq=v + 1))
    assert tower.usage("alice") == Usage(appointments=5, bytes=sum(sb.size for sb in records.encrypted.values()))
    reaction = tower.on_chain_event(registered(p, signed(p, 2), deadline=NOW + 100))
    (learned,) = reaction.learned
    assert learned.appointment.version == 6 and learned.client == "alice"
    (action,) = reaction.actions
    assert isinstance(action, Refute) and action.signed.state.version == 6 and action.against == 2
    records.apply(reaction)
    assert len(reaction.blobs_used) == 4  # the blobs of versions 2..5; version 1's stays unread
    assert list(records.encrypted) == [("alice", seal(appointment(p, 2), signed(p, 1), ME, seq=2).locator)]
    assert records.appointment(p.channel_id) is not None
    assert tower.usage("alice").appointments == 2 == records.usage()["alice"].appointments


def test_a_cheater_re_signing_its_own_slot_cannot_hide_the_trigger() -> None:
    p = channel()
    tower = make_tower()
    put(tower, seal(appointment(p, 3), signed(p, 1), ME, seq=3))
    stale = signed(p, 1)
    # Bob re-signs version 1 with another Ed25519 nonce: a valid signature with other bytes.
    other_sig = _resign(stale)
    assert other_sig != stale.signatures[1] and SCHEME.verify(p, stale.state, p.participants[1], other_sig)
    cheat = stale.with_signature(1, other_sig)
    (action,) = tower.on_chain_event(registered(p, cheat, deadline=NOW + 100)).actions
    assert isinstance(action, Refute) and action.signed.state.version == 3


def _resign(state: SignedState) -> bytes:
    """Bob's signature on ``state`` made with a random nonce (valid Ed25519, other bytes)."""
    import hashlib
    import os

    import nacl.bindings as sodium

    from tests.watchtower.helpers import BOB, channel

    digest = SCHEME.state_digest(channel(), state.state)
    seed = BOB.key.seed
    h = hashlib.sha512(seed).digest()
    a = bytearray(h[:32])
    a[0] &= 248
    a[31] &= 127
    a[31] |= 64
    scalar = bytes(a)
    r = sodium.crypto_core_ed25519_scalar_reduce(os.urandom(64))
    big_r = sodium.crypto_scalarmult_ed25519_base_noclamp(r)
    k = sodium.crypto_core_ed25519_scalar_reduce(hashlib.sha512(big_r + BOB.address + digest).digest())
    s = sodium.crypto_core_ed25519_scalar_add(r, sodium.crypto_core_ed25519_scalar_mul(k, scalar))
    return bytes(big_r + s)


def test_the_opened_appointment_carries_its_preimages() -> None:
    p = channel()
    x = lock("x", expiry=NOW + 500)
    tower = make_tower()
    latest = appointment(p, 4, locks=[x], preimages=[preimage("x")])
    # The client also seals its newest state under itself: any registration of it opens the preimage.
    put(tower, seal(latest, latest.signed, ME, seq=1))
    reaction = tower.on_chain_event(registered(p, latest.signed, deadline=NOW + 100))
    (action,) = reaction.actions
    assert isinstance(action, RegisterSecret) and action.preimage == preimage("x")


def test_replaced_per_locator_by_a_higher_sequence_only_and_per_client() -> None:
    p = channel()
    tower = make_tower()
    put(tower, seal(appointment(p, 4), signed(p, 3), ME, seq=4, nonce=NONCE))
    with pytest.raises(NonMonotonic):
        tower.accept_encrypted(seal(appointment(p, 4), signed(p, 3), ME, seq=4, nonce=b"\x08" * 24), "alice", NOW)
    same = tower.accept_encrypted(seal(appointment(p, 4), signed(p, 3), ME, seq=4, nonce=NONCE), "alice", NOW)
    assert not same.changed and same.receipt.verifies()  # an identical resend
    newer = tower.accept_encrypted(seal(appointment(p, 5), signed(p, 3), ME, seq=5), "alice", NOW)
    assert newer.changed and newer.replaced is not None
    tower.records.save_blob(newer)  # type: ignore[attr-defined]
    # Another client's blob at the same locator (bob also knows the state) does not replace alice's.
    garbage = EncryptedAppointment(locator=newer.stored.blob.locator, seq=99, nonce=NONCE, ciphertext=b"\x00" * 40)
    put(tower, garbage, client="mallory")
    (action,) = tower.on_chain_event(registered(p, signed(p, 3), deadline=NOW + 100)).actions
    assert isinstance(action, Refute) and action.signed.state.version == 5  # the garbage was skipped


def test_a_client_forgets_its_own_blobs_only() -> None:
    p = channel()
    records = MemoryRecords()
    tower = make_tower(records)
    blob = seal(appointment(p, 4), signed(p, 3), ME, seq=4)
    put(tower, blob)
    gone, usage = tower.forget_blobs("mallory", [blob.locator])
    assert gone == [] and usage == ()
    gone, usage = tower.forget_blobs("alice", [blob.locator, blob.locator])
    records.delete_blobs("alice", gone, usage)
    assert gone == [blob.locator] and records.encrypted == {} and tower.usage("alice") == Usage()


def test_a_blob_with_a_bad_state_inside_opens_to_nothing() -> None:
    p = channel()
    tower = make_tower()
    bad = appointment(p, 4)
    bad = attrs.evolve(bad, signed=bad.signed.with_signature(1, b""))  # not co-signed
    put(tower, encrypt(bad, signed(p, 3), ME, seq=4, nonce=NONCE))
    r = tower.on_chain_event(registered(p, signed(p, 3), deadline=NOW + 100))
    assert r.learned == () and r.actions == ()
