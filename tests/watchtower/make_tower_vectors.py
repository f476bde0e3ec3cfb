"""Generate ``proto/vectors/tower.json``: appointments, receipts and the encrypted mode from fixed keys.

Run from the repository root::

    .venv/bin/python -m tests.watchtower.make_tower_vectors

Deterministic (fixed labels, a fixed nonce, Ed25519 signs deterministically), and
self-checking: every encoding must decode back to its value. ``test_tower_vectors.py``
fails when the committed file differs from what this writes, and rebuilds the digests,
locator, key and ciphertext from the text of proto/07-watchtower.md with hashlib and
libsodium directly.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from channels.chain.devnet.scheme import DevnetKey
from channels.core.ids import NATIVE
from channels.core.state import Lock
from channels.crypto import SigningKey, sha256
from channels.encoding import encode
from channels.watchtower.appointment import (
    Appointment,
    decrypt,
    encrypt,
    key_of,
    locator_of,
    trigger_id,
)
from channels.watchtower.core import Limits, MemoryRecords, Rate, Tower
from channels.watchtower.errors import NonMonotonic
from channels.watchtower.peerid import peer_id_of
from channels.watchtower.protocol import (
    ForgetRequest,
    InfoRequest,
    TowerInfo,
    decode_request,
    decode_response,
    encode_forgotten,
    encode_info,
    encode_receipt,
    encode_refusal,
    encode_request,
)
from tests.devnet.devnet_util import SCHEME, make_params, make_state, sign_all

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "proto" / "vectors" / "tower.json"

ALICE, BOB = DevnetKey.from_label("alice"), DevnetKey.from_label("bob")
TOWER = SigningKey.from_label("tower")
NONCE = bytes(range(24))
TIME = 1_700_000_123
FREE = Rate(per_second=1e9, burst=1e9)


def hx(b: bytes) -> str:
    return b.hex()


def build() -> dict[str, Any]:
    params = make_params([ALICE, BOB], duration=60, nonce=b"tower-vectors")
    preimage = sha256(b"tower-vectors/preimage")
    lk = Lock(asset=NATIVE, amount=25, hashlock=sha256(preimage), expiry=1_700_003_600, payer=1, payee=0,
              lock_id=b"L1")

    def signed(version: int, alice: int, locks: tuple[Lock, ...] = ()) -> Any:
        bob = 1000 - alice - sum(x.amount for x in locks)
        return sign_all(params, make_state(params, version, [alice, bob], locks=locks), [ALICE, BOB])

    old, new = signed(1, 100), signed(2, 400, (lk,))
    appt = Appointment(params=params, signed=new, preimages=(preimage,))
    tower = Tower(signer=DevnetKey(TOWER), scheme=SCHEME, chain_id=params.chain_id, adjudicator=params.adjudicator,
                  records=MemoryRecords(), limits=Limits(client_rate=FREE, total_rate=FREE))
    receipt = tower.accept(appt, "client", TIME).receipt
    assert receipt.verifies()

    tid = trigger_id(old.state, old.signatures[0])
    blob = encrypt(appt, old, 0, seq=2, nonce=NONCE)
    assert decrypt(blob, tid) == appt
    blob_receipt = tower.accept_encrypted(blob, "client", TIME).receipt
    info = TowerInfo(tower_key=TOWER.public_key, chain_id=params.chain_id, adjudicator=params.adjudicator,
                     genesis=sha256(b"genesis"), max_appointment_bytes=49152, per_client_appointments=10000,
                     per_client_bytes=16777216)

    requests = {"appointment": appt, "encrypted": blob, "info": InfoRequest(), "forget": ForgetRequest((blob.locator,))}
    out_requests = {}
    for name, req in requests.items():
        data = encode_request(req)
        assert decode_request(data) == req
        out_requests[name] = hx(data)
    responses = {"receipt": encode_receipt(receipt), "encrypted_receipt": encode_receipt(blob_receipt),
                 "info": encode_info(info), "forgotten": encode_forgotten(1),
                 "refusal": encode_refusal(NonMonotonic("the tower holds this channel at version 3"))}
    assert decode_response(responses["receipt"]) == receipt and decode_response(responses["info"]) == info

    return {
        "description": "proto/07-watchtower.md: appointments, receipts, the encrypted mode, the wire messages",
        "keys": {"alice_seed": hx(ALICE.key.seed), "bob_seed": hx(BOB.key.seed), "tower_seed": hx(TOWER.seed),
                 "tower_key": hx(TOWER.public_key), "tower_peer_id": peer_id_of(TOWER.public_key)},
        "appointment": {
            "params": hx(encode(params.to_fields())), "channel_id": hx(params.channel_id),
            "signed_state": hx(encode(new.to_fields())), "preimages": [hx(preimage)],
            "encoding": hx(appt.encode()), "hash": hx(appt.digest()),
        },
        "receipt": {
            "kind": receipt.kind, "subject": hx(receipt.subject), "version": receipt.version,
            "appointment_hash": hx(receipt.appointment_hash), "time": receipt.time,
            "digest_preimage": hx(b"p2p-channels/tower/receipt/v1" + receipt.tower_key
                                  + struct.pack(">BB", receipt.kind, len(receipt.subject)) + receipt.subject
                                  + struct.pack(">Q", receipt.version) + receipt.appointment_hash
                                  + struct.pack(">Q", receipt.time)),
            "digest": hx(receipt.digest), "signature": hx(receipt.signature),
        },
        "encrypted": {
            "trigger_state": hx(encode(old.state.to_fields())), "trigger_signed_state": hx(encode(old.to_fields())),
            "slot": 0, "trigger_signature": hx(old.signatures[0]), "trigger_id": hx(tid),
            "locator": hx(locator_of(tid)), "key": hx(key_of(tid)), "seq": 2, "nonce": hx(NONCE),
            "aad": hx(b"p2p-channels/tower/blob/v1" + blob.locator + struct.pack(">Q", 2)),
            "plaintext": hx(appt.encode()), "ciphertext": hx(blob.ciphertext),
            "blob_hash": hx(blob.digest()), "receipt_digest": hx(blob_receipt.digest),
            "receipt_signature": hx(blob_receipt.signature),
        },
        "requests": out_requests,
        "responses": {k: hx(v) for k, v in responses.items()},
    }


def main() -> None:
    OUT.write_text(json.dumps(build(), indent=2, sort_keys=True) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
