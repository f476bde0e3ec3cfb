"""proto/vectors/tower.json is what the code writes, and what proto/07-watchtower.md says.

The digests, the locator, the key and the ciphertext are rebuilt here from the document's
layouts with hashlib and libsodium directly, not through the code under test."""

from __future__ import annotations

import hashlib
import json
import struct
from typing import Any

import nacl.bindings as sodium
import nacl.signing

from tests.watchtower.make_tower_vectors import OUT, build


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def vectors() -> dict[str, Any]:
    return json.loads(OUT.read_text())  # type: ignore[no-any-return]


def test_the_committed_vectors_are_what_the_code_writes() -> None:
    assert vectors() == json.loads(json.dumps(build(), sort_keys=True)), \
        "run: python -m tests.watchtower.make_tower_vectors, and review the diff"


def test_the_appointment_hash_and_the_receipt_follow_the_document() -> None:
    v = vectors()
    enc = bytes.fromhex(v["appointment"]["encoding"])
    assert sha(b"p2p-channels/tower/appointment/v1" + enc).hex() == v["appointment"]["hash"]
    r = v["receipt"]
    key = bytes.fromhex(v["keys"]["tower_key"])
    subject = bytes.fromhex(r["subject"])
    layout = (b"p2p-channels/tower/receipt/v1" + key + struct.pack(">BB", r["kind"], len(subject)) + subject
              + struct.pack(">Q", r["version"]) + bytes.fromhex(r["appointment_hash"]) + struct.pack(">Q", r["time"]))
    assert layout.hex() == r["digest_preimage"] and sha(layout).hex() == r["digest"]
    assert subject.hex() == v["appointment"]["channel_id"] and r["appointment_hash"] == v["appointment"]["hash"]
    nacl.signing.VerifyKey(key).verify(sha(layout), bytes.fromhex(r["signature"]))
    seed_key = nacl.signing.SigningKey(bytes.fromhex(v["keys"]["tower_seed"])).verify_key
    assert bytes(seed_key) == key


def test_the_encrypted_mode_follows_the_document() -> None:
    e = vectors()["encrypted"]
    state, sig = bytes.fromhex(e["trigger_state"]), bytes.fromhex(e["trigger_signature"])
    tid = sha(b"p2p-channels/tower/trigger/v1" + state + sig)
    assert tid.hex() == e["trigger_id"]
    locator = sha(b"p2p-channels/tower/locator/v1" + tid)[:16]
    key = sha(b"p2p-channels/tower/key/v1" + tid)
    assert (locator.hex(), key.hex()) == (e["locator"], e["key"])
    aad = b"p2p-channels/tower/blob/v1" + locator + struct.pack(">Q", e["seq"])
    assert aad.hex() == e["aad"]
    plain = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(bytes.fromhex(e["ciphertext"]), aad,
                                                              bytes.fromhex(e["nonce"]), key)
    assert plain.hex() == e["plaintext"] == vectors()["appointment"]["encoding"]
