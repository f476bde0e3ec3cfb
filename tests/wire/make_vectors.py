"""Generate the protocol test vectors in ``proto/vectors/`` from the Python implementation.

Run from the repository root::

    /work/venv/bin/python -m tests.wire.make_vectors

Everything is derived from fixed labels (``SigningKey.from_label``), so the output
is byte-for-byte deterministic: running it twice gives the same files, and
``tests/wire/test_vectors.py`` fails when the committed files are out of date.

The generator checks itself: every invalid encoding it writes must raise exactly
the error class it claims, and every message type in the registry must have at
least one sample (a new message type without a vector stops the generator).
"""

from __future__ import annotations

import hashlib
import json
import struct
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from channels import encoding
from channels.chain.devnet.scheme import PROTOCOL_VERSION, STATE_DOMAIN, DevnetScheme, state_layout
from channels.core.ids import NATIVE, AssetId, PaymentId, Version
from channels.core.messages import (
    ChannelAccept,
    ChannelDecline,
    ChannelProposal,
    CloseProposal,
    Countersign,
    Init,
    Reestablish,
    UpdateProposal,
    UpdateReject,
)
from channels.core.ops import AddLock, AppMove, FailLock, FulfillLock, Operation, Payment
from channels.core.state import Allocation, ChannelParams, Lock, SignedState, State
from channels.crypto import SigningKey, sha256
from channels.errors import DecodeError
from channels.node.identity import INIT_DOMAIN, init_digest
from channels.wire import PROTOCOL_CHANNEL, decode_message, encode_message
from channels.wire.registry import BY_CLASS, BY_TYPE

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "proto" / "vectors"

SCHEME = DevnetScheme()
LABELS = ("alice", "bob", "carol")
KEYS = {label: SigningKey.from_label(label) for label in LABELS}
# The devnet adjudicator's address (channels.chain.devnet.scheme.ADJUDICATOR), spelt out
# here so the vectors pin the derivation rather than whatever the code says today.
DEVNET_ADJUDICATOR = hashlib.sha256(b"p2p-channels/devnet/adjudicator/v1").digest()


def pub(label: str) -> bytes:
    return KEYS[label].public_key


# ------------------------------------------------------------------ JSON forms of values


def params_json(p: ChannelParams) -> dict[str, Any]:
    return {"chain_id": p.chain_id, "adjudicator": p.adjudicator.hex(),
            "participants": [a.hex() for a in p.participants], "challenge_duration": p.challenge_duration,
            "nonce": p.nonce.hex(), "app_id": p.app_id}


def lock_json(lk: Lock) -> dict[str, Any]:
    return {"asset": lk.asset, "amount": lk.amount, "hashlock": lk.hashlock.hex(), "expiry": lk.expiry,
            "payer": lk.payer, "payee": lk.payee, "lock_id": lk.lock_id.hex()}


def allocation_json(a: Allocation) -> dict[str, Any]:
    return {"assets": list(a.assets), "balances": [list(r) for r in a.balances],
            "locks": [lock_json(lk) for lk in a.locks]}


def state_json(s: State) -> dict[str, Any]:
    return {"channel_id": s.channel_id.hex(), "version": s.version, "allocation": allocation_json(s.allocation),
            "app_data": s.app_data.hex(), "is_final": s.is_final}


def payment_json(p: Payment) -> dict[str, Any]:
    return {"payment_id": p.payment_id.hex(), "asset": p.asset, "amount": p.amount}


def operation_json(op: Operation) -> dict[str, Any]:
    """Each operation as an object tagged with its ``op`` name (proto/02 section 5.5)."""
    if isinstance(op, Payment):
        return {"op": "pay", **payment_json(op)}
    if isinstance(op, AddLock):
        return {"op": "add_lock", "lock_id": op.lock_id.hex(), "asset": op.asset, "amount": op.amount,
                "hashlock": op.hashlock.hex(), "expiry": op.expiry}
    if isinstance(op, FulfillLock):
        return {"op": "fulfill_lock", "lock_id": op.lock_id.hex(), "preimage": op.preimage.hex()}
    if isinstance(op, FailLock):
        return {"op": "fail_lock", "lock_id": op.lock_id.hex(), "reason": op.reason}
    return {"op": "app_move", "move_id": op.move_id.hex(), "payload": op.payload.hex()}


KIND_JSON: dict[str, Callable[[Any], Any]] = {
    "channel_id": lambda v: v.hex(),
    "u64": int,
    "signature": lambda v: v.hex(),
    "reason": str,
    "bool": bool,
    "address": lambda v: v.hex(),
    "addresses": list,
    "params": params_json,
    "allocation": allocation_json,
    "payments": lambda v: [payment_json(p) for p in v],
    "operations": lambda v: [operation_json(op) for op in v],
}


def message_json(msg: Any) -> dict[str, Any]:
    spec = BY_CLASS[type(msg)]
    return {name: KIND_JSON[kind](getattr(msg, name)) for name, kind in spec.fields}


def tagged(value: Any) -> Any:
    """A schema-less value tree as JSON: bytes are ``{"bin": hex}``, strings stay strings."""
    if isinstance(value, bytes):
        return {"bin": value.hex()}
    if isinstance(value, (list, tuple)):
        return [tagged(v) for v in value]
    return value


# ------------------------------------------------------------------ fixed keys and parameters


def base58(data: bytes) -> str:
    alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
    n, out = int.from_bytes(data, "big"), ""
    while n:
        n, r = divmod(n, 58)
        out = alphabet[r] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def peer_id_of(seed: bytes) -> str:
    """libp2p peer id of an Ed25519 identity key: base58btc(identity multihash(protobuf public key))."""
    public = SigningKey(seed).public_key
    return base58(bytes.fromhex("002408011220") + public)


def keys() -> dict[str, Any]:
    out: dict[str, Any] = {
        "description": "Test keys. NEVER use them for real funds. L1 keys: seed = SHA-256(\"p2p-channels/test-key/\" "
                       "|| label); the L1 address is the Ed25519 public key of the seed (RFC 8032). libp2p identity "
                       "keys use the label \"<name>/libp2p\" the same way; the peer id is base58btc of the identity "
                       "multihash of the protobuf-encoded public key (0x00 0x24 0x08 0x01 0x12 0x20 || public key).",
        "l1": [],
        "libp2p": [],
    }
    for label in LABELS:
        out["l1"].append({"label": label, "seed": KEYS[label].seed.hex(), "public_key": pub(label).hex()})
    for label in ("alice/libp2p", "bob/libp2p"):
        seed = SigningKey.from_label(label).seed
        out["libp2p"].append({"label": label, "seed": seed.hex(), "public_key": SigningKey(seed).public_key.hex(),
                              "peer_id": peer_id_of(seed)})
    return out


PARAMS = ChannelParams(chain_id=1337, adjudicator=DEVNET_ADJUDICATOR, participants=(pub("alice"), pub("bob")),
                       challenge_duration=3600, nonce=sha256(b"p2p-channels/vectors/nonce/1"), app_id="payment")
CID = PARAMS.channel_id


def channel_id_preimage(p: ChannelParams) -> bytes:
    app = p.app_id.encode()
    width = len(p.participants[0])
    domain = b"p2p-channels/channel-id/v1" if width == 32 else b"p2p-channels/channel-id/v2" + bytes([width])
    return b"".join([domain, struct.pack(">QH", p.chain_id, len(p.adjudicator)),
                     p.adjudicator, struct.pack(">B", len(p.participants)), *p.participants,
                     struct.pack(">Q", p.challenge_duration), p.nonce, struct.pack(">B", len(app)), app])


def channel_ids() -> dict[str, Any]:
    cases = [
        ("two-party payment channel on the devnet (the params of every other vector)", PARAMS),
        ("three participants, 6-byte adjudicator, largest chain id, a game app",
         ChannelParams(chain_id=2**64 - 1, adjudicator=b"devnet", participants=(pub("alice"), pub("bob"), pub("carol")),
                       challenge_duration=1, nonce=bytes(32), app_id="tic-tac-toe")),
        ("empty adjudicator, non-ASCII app id (its length is counted in UTF-8 bytes)",
         ChannelParams(chain_id=1, adjudicator=b"", participants=(pub("bob"), pub("alice")),
                       challenge_duration=365 * 86400, nonce=bytes(range(32)), app_id="échecs")),
        ("20-byte addresses (an EVM chain's): layout v2, which states the address length",
         ChannelParams(chain_id=1, adjudicator=bytes(20), participants=(pub("alice")[:20], pub("bob")[:20]),
                       challenge_duration=3600, nonce=bytes(32), app_id="payment")),
    ]
    out = []
    for description, p in cases:
        p.validate()
        pre = channel_id_preimage(p)
        assert hashlib.sha256(pre).digest() == p.channel_id, "channel id layout drifted from ChannelParams.channel_id"
        out.append({"description": description, "params": params_json(p), "preimage": pre.hex(),
                    "channel_id": p.channel_id.hex()})
    return {"description": "channel_id = SHA-256(preimage); layout in proto/01-encoding.md section 5.", "vectors": out}


# ------------------------------------------------------------------ states, digests, signatures

S0 = State(channel_id=CID, version=Version(0), allocation=Allocation(assets=(NATIVE,), balances=((1000, 500),)))
PAY_A = (Payment(payment_id=PaymentId(sha256(b"payment/1")[:16]), asset=NATIVE, amount=60),
         Payment(payment_id=PaymentId(sha256(b"payment/2")[:16]), asset=NATIVE, amount=40))
S1 = State(channel_id=CID, version=Version(1), allocation=Allocation(assets=(NATIVE,), balances=((900, 600),)))
PAY_B = (Payment(payment_id=PaymentId(b"bob-pays-alice-1"), asset=NATIVE, amount=250),)
S3 = State(channel_id=CID, version=Version(3), allocation=Allocation(assets=(NATIVE,), balances=((1150, 350),)))
S4 = State(channel_id=CID, version=Version(4), allocation=Allocation(assets=(NATIVE,), balances=((1150, 350),)),
           is_final=True)
S7 = State(channel_id=CID, version=Version(7), app_data=b"\x01\x02\x03",
           allocation=Allocation(assets=(NATIVE, AssetId("USD")), balances=((1000, 0), (25, 75)),
                                 locks=(Lock(asset=AssetId("USD"), amount=10, hashlock=sha256(b"preimage"),
                                             expiry=1_700_000_000, payer=0, payee=1, lock_id=b"lock-1"),)))
# Amounts above 2^64-1 (an EVM token's 18 decimals): the version-2 layout with u256 amounts,
# and the bytes form of an amount in the state's msgpack encoding.
S8 = State(channel_id=CID, version=Version(8),
           allocation=Allocation(assets=(NATIVE,), balances=((2**200 + 1, 2**64),),
                                 locks=(Lock(asset=NATIVE, amount=2**255, hashlock=sha256(b"preimage"),
                                             expiry=1_700_000_000, payer=1, payee=0, lock_id=b"wide"),)))
STATES = [
    ("version 0: the opening state (signed in ChannelProposal and ChannelAccept)", S0),
    ("version 1: alice paid bob 60 + 40 (UpdateProposal / Countersign vectors)", S1),
    ("version 3: bob paid alice 250; version 2 was skipped after a collision", S3),
    ("version 4: the final state of a cooperative close (CloseProposal)", S4),
    ("version 7: layout exerciser: two assets, one lock, app data (not a reachable payment state)", S7),
    ("version 8: amounts above 2^64-1: layout version 2 (u256 amounts), amounts as bytes in msgpack", S8),
]


def sig(label: str, state: State) -> bytes:
    return SCHEME.sign(_DevKey(KEYS[label]), PARAMS, state)


class _DevKey:
    def __init__(self, key: SigningKey) -> None:
        self.key = key

    def sign_digest(self, digest: bytes) -> bytes:
        return self.key.sign(digest)


def state_digests() -> dict[str, Any]:
    out = []
    for description, s in STATES:
        s.allocation.validate(len(PARAMS.participants))
        layout = state_layout(PARAMS, s)
        digest = SCHEME.state_digest(PARAMS, s)
        assert hashlib.sha256(layout).digest() == digest
        sigs = {label: sig(label, s).hex() for label in ("alice", "bob")}
        signed = SignedState(state=s, signatures=(bytes.fromhex(sigs["alice"]), bytes.fromhex(sigs["bob"])))
        out.append({"description": description, "state": state_json(s), "layout": layout.hex(),
                    "digest": digest.hex(), "signatures": sigs,
                    "state_encoding": encoding.encode(s.to_fields()).hex(),
                    "signed_state_encoding": encoding.encode(signed.to_fields()).hex()})
    return {
        "description": "Devnet state scheme. layout per proto/01-encoding.md section 6; digest = SHA-256(layout); "
                       "signatures are Ed25519 (RFC 8032) by the keys in keys.json over the 32-byte digest. "
                       "state_encoding / signed_state_encoding are the canonical msgpack of the State and "
                       "SignedState field arrays (no type id).",
        "domain": STATE_DOMAIN.decode(), "protocol_version": PROTOCOL_VERSION,
        "params": params_json(PARAMS), "channel_id": CID.hex(), "vectors": out,
    }


ALICE_PEER = peer_id_of(SigningKey.from_label("alice/libp2p").seed)


def init_binding() -> dict[str, Any]:
    digest = init_digest(ALICE_PEER, PARAMS.chain_id)
    pre = INIT_DOMAIN + struct.pack(">Q", PARAMS.chain_id) + ALICE_PEER.encode()
    assert sha256(pre) == digest
    return {"description": "Init.signature: Ed25519 by the L1 key over SHA-256(\"p2p-channels/init/v1\" || "
                           "u64 chain_id || peer id as base58btc ASCII). See proto/00-overview.md section 5.",
            "vectors": [{"l1_key": "alice", "l1_address": pub("alice").hex(), "peer_id": ALICE_PEER,
                         "chain_id": PARAMS.chain_id, "preimage": pre.hex(), "digest": digest.hex(),
                         "signature": KEYS["alice"].sign(digest).hex()}]}


# ------------------------------------------------------------------ messages


def samples() -> list[tuple[str, Any]]:
    a0, b0 = sig("alice", S0), sig("bob", S0)
    return [
        ("alice's first frame on her channel stream", Init(
            l1_address=pub("alice"), chain_id=PARAMS.chain_id,
            addresses=("/ip4/127.0.0.1/tcp/4001", "/ip6/::1/tcp/4001"),
            signature=KEYS["alice"].sign(init_digest(ALICE_PEER, PARAMS.chain_id)))),
        ("alice proposes the channel; signature = alice over state_digest.json version 0",
         ChannelProposal(params=PARAMS, allocation=S0.allocation, signature=a0)),
        ("bob accepts; signature = bob over version 0", ChannelAccept(channel_id=CID, signature=b0)),
        ("a decline with the reason the reference node sends",
         ChannelDecline(channel_id=CID, reason="challenge duration out of our accepted range")),
        ("a decline with a non-ASCII reason (str length is in UTF-8 bytes on the wire)",
         ChannelDecline(channel_id=CID, reason="zu früh ✓")),
        ("alice pays bob 60 and 40 at version 1; signature = alice over version 1",
         UpdateProposal(channel_id=CID, version=Version(1), operations=PAY_A, signature=sig("alice", S1))),
        ("bob countersigns version 1", Countersign(channel_id=CID, version=Version(1), signature=sig("bob", S1))),
        ("bob pays alice 250 at version 3 (2 was lost to a collision)",
         UpdateProposal(channel_id=CID, version=Version(3), operations=PAY_B, signature=sig("bob", S3))),
        ("alice countersigns version 3", Countersign(channel_id=CID, version=Version(3), signature=sig("alice", S3))),
        ("every operation kind in one update (signature = alice over version 7; the operations are "
         "illustrative, not applicable to version 6)",
         UpdateProposal(channel_id=CID, version=Version(7), signature=sig("alice", S7), operations=(
             Payment(payment_id=PaymentId(b"op-pay"), asset=NATIVE, amount=5),
             AddLock(lock_id=b"lock-2", asset=AssetId("USD"), amount=10, hashlock=sha256(b"preimage-2"),
                     expiry=1_700_000_600),
             FulfillLock(lock_id=b"lock-1", preimage=b"preimage"),
             FailLock(lock_id=b"lock-3", reason=17),
             AppMove(move_id=b"move-1", payload=b"\x02\x01")))),
        ("retry: the receiver already signed another state at version 2",
         UpdateReject(channel_id=CID, version=Version(2), retry=True, reason="version already signed")),
        ("final reject: a close while locks are pending",
         UpdateReject(channel_id=CID, version=Version(5), retry=False, reason="pending locks")),
        ("alice proposes the final state at version 4",
         CloseProposal(channel_id=CID, version=Version(4), signature=sig("alice", S4))),
        ("bob countersigns the final state", Countersign(channel_id=CID, version=Version(4), signature=sig("bob", S4))),
        ("reestablish after a reconnect", Reestablish(channel_id=CID, latest_version=Version(3))),
        ("reestablish with the largest version (uint64 form)",
         Reestablish(channel_id=CID, latest_version=Version(2**64 - 1))),
    ]


def messages() -> dict[str, Any]:
    out = []
    seen = set()
    for description, msg in samples():
        spec = BY_CLASS[type(msg)]
        data = encode_message(msg)
        assert decode_message(data) == msg
        seen.add(spec.type_id)
        out.append({"description": description, "type_id": spec.type_id, "name": spec.name,
                    "value": message_json(msg), "hex": data.hex()})
    missing = sorted(set(BY_TYPE) - seen)
    if missing:
        raise RuntimeError(f"no vector for registered message type(s) {missing}: add a sample in make_vectors.py")
    return {"description": f"Every registered message: its value (fields by name; bytes as hex) and its exact "
                           f"canonical encoding. Protocol {PROTOCOL_CHANNEL}.", "vectors": out}


# ------------------------------------------------------------------ canonical msgpack primitives and frames


def canonical() -> dict[str, Any]:
    ints = [0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**64 - 1,
            -1, -32, -33, -128, -129, -32768, -32769, -(2**31), -(2**31) - 1, -(2**63)]
    values: list[tuple[str, Any]] = [("nil", None), ("false", False), ("true", True)]
    values += [(f"int {v}", v) for v in ints]
    values += [("str, 0 bytes", ""), ("str, 31 bytes (fixstr)", "a" * 31), ("str, 32 bytes (str8)", "a" * 32),
               ("str, 255 bytes (str8)", "b" * 255), ("str, 256 bytes (str16)", "c" * 256),
               ("str, non-ASCII: 3 code points, 5 bytes", "été")]
    values += [("bin, 0 bytes", b""), ("bin, 32 bytes (bin8)", bytes(range(32))),
               ("bin, 256 bytes (bin16)", bytes(256))]
    values += [("array, 0 items", []), ("array, 15 items (fixarray)", list(range(15))),
               ("array, 16 items (array16)", list(range(16))),
               ("mixed record", [48, b"\xab" * 4, "x", True, None, [-1, [2]]])]
    deepest: Any = []
    for _ in range(encoding.MAX_DEPTH):
        deepest = [deepest]
    values.append(("nesting at the depth bound: 9 arrays, the innermost empty", deepest))
    vecs = []
    for description, v in values:
        data = encoding.encode(v)
        assert encoding.decode(data) == v
        vecs.append({"description": description, "value": tagged(v), "hex": data.hex()})
    payload = encode_message(Reestablish(channel_id=CID, latest_version=Version(3)))
    frames = {
        "description": "A frame is a 4-byte big-endian length, then that many bytes of payload. The cap applies "
                       "to the announced length, before any payload byte is read.",
        "max_payload": encoding.MAX_FRAME,
        "examples": [{"payload": payload.hex(), "frame": (len(payload).to_bytes(4, "big") + payload).hex()}],
        "prefixes": [{"prefix": "00000000", "length": 0, "ok": True},
                     {"prefix": "00010000", "length": 65536, "ok": True},
                     {"prefix": "00010001", "length": 65537, "ok": False, "error": "FrameTooLarge"},
                     {"prefix": "ffffffff", "length": 2**32 - 1, "ok": False, "error": "FrameTooLarge"}],
    }
    return {"description": "Canonical msgpack of schema-less values. JSON strings are msgpack str, "
                           "{\"bin\": hex} is msgpack bin, numbers are integers (some exceed 2^53: parse them "
                           "exactly), arrays are arrays.", "vectors": vecs, "frames": frames}


# ------------------------------------------------------------------ invalid encodings


def _with(fields: list[Any]) -> bytes:
    return encoding.encode(fields)


def invalid() -> dict[str, Any]:
    cid = CID
    good = encode_message(Reestablish(channel_id=cid, latest_version=Version(5)))  # [48, cid, 5]
    head = good[:-1]  # everything but the version byte (0x05)
    decline = encode_message(ChannelDecline(channel_id=cid, reason="no"))
    bad: list[tuple[str, bytes, str]] = [
        ("empty input", b"", "DecodeError"),
        ("reserved byte 0xc1", b"\xc1", "DecodeError"),
        ("not an array: a bare integer", b"\x30", "DecodeError"),
        ("empty record: no type id", b"\x90", "DecodeError"),
        ("record whose first element is not an integer", _with(["x", 1]), "DecodeError"),
        ("record whose type id is a boolean", bytes.fromhex("92c3") + b"\x01", "DecodeError"),
        ("non-canonical int: 5 as uint16", head + b"\xcd\x00\x05", "DecodeError"),
        ("non-canonical int: 5 as uint8", head + b"\xcc\x05", "DecodeError"),
        ("non-canonical int: 5 as int8", head + b"\xd0\x05", "DecodeError"),
        ("non-canonical int: type id 48 as uint8", b"\x93\xcc\x30" + good[2:], "DecodeError"),
        ("non-canonical array: array16 header for 3 items", b"\xdc\x00\x03" + good[1:], "DecodeError"),
        ("non-canonical str: 2-byte reason as str8", decline[:-3] + b"\xd9\x02no", "DecodeError"),
        ("non-canonical bin: channel id as bin16", b"\x93\x30\xc5\x00\x20" + cid + b"\x05", "DecodeError"),
        ("map as a field", head + b"\x81\x01\x02", "DecodeError"),
        ("empty map as a field", head + b"\x80", "DecodeError"),
        ("map at the top level", b"\x81\x00\x01", "DecodeError"),
        ("float64 as the version", head + b"\xcb" + struct.pack(">d", 5.0), "DecodeError"),
        ("float32 as the version", head + b"\xca" + struct.pack(">f", 5.0), "DecodeError"),
        ("ext type (fixext1) as the version", head + b"\xd4\x01\x05", "DecodeError"),
        ("timestamp ext (-1) as the version", head + b"\xd6\xff" + bytes(4), "DecodeError"),
        ("trailing byte after a valid record", good + b"\x00", "DecodeError"),
        ("two records in one frame", good + good, "DecodeError"),
        ("truncated record", good[:-1], "DecodeError"),
        ("invalid UTF-8 in a str", decline[:-3] + b"\xa2\xc3\x28", "DecodeError"),
        ("nesting too deep: an empty array at depth 9", _deep(8, b"\x90"), "DecodeError"),
        ("nesting too deep: a scalar at depth 9", _deep(8, b"\x01"), "DecodeError"),
        ("array longer than 4096 items", b"\xdc\x10\x01" + b"\x30" + b"\x00" * 4096, "DecodeError"),
        ("unknown even type id 1000: must close", _with([1000, 1]), "UnknownMessageType"),
        ("unknown even type id 0: must close", _with([0]), "UnknownMessageType"),
        ("negative type id", _with([-2, 1]), "DecodeError"),
        ("wrong field count: Reestablish with 3 fields", _with([48, cid, 5, 6]), "DecodeError"),
        ("wrong field count: Reestablish with 1 field", _with([48, cid]), "DecodeError"),
        ("wrong field type: channel id as str", _with([48, "x" * 32, 5]), "DecodeError"),
        ("wrong field type: channel id of 31 bytes", _with([48, cid[:31], 5]), "DecodeError"),
        ("wrong field type: negative version", _with([48, cid, -1]), "DecodeError"),
        ("wrong field type: bool as the version", _with([48, cid, True]), "DecodeError"),
        ("wrong field type: nil as the version", _with([48, cid, None]), "DecodeError"),
        ("wrong field type: int as UpdateReject.retry", _with([36, cid, 2, 1, "busy"]), "DecodeError"),
        ("wrong field type: signature of 129 bytes (the wire's bound for any backend)",
         _with([34, cid, 1, bytes(129)]), "DecodeError"),
        ("params whose participants' addresses differ in length", _proposal(2, [pub("alice"), pub("bob")[:20]]),
         "DecodeError"),
        ("params with a 19-byte participant", _proposal(2, [pub("alice")[:19], pub("bob")[:19]]), "DecodeError"),
        ("wrong field type: reason of 257 characters", _with([20, cid, "r" * 257]), "DecodeError"),
        ("params with one participant", _proposal(2, [pub("alice")]), "DecodeError"),
        ("params with a repeated participant", _proposal(2, [pub("alice"), pub("alice")]), "DecodeError"),
        ("params with a zero challenge duration", _proposal(3, 0), "DecodeError"),
        ("params with an app id of 33 characters", _proposal(5, "a" * 33), "DecodeError"),
        ("params with a non-printable app id", _proposal(5, "pay\nment"), "DecodeError"),
        ("params with an empty app id", _proposal(5, ""), "DecodeError"),
        ("payment id of 33 bytes", _with([32, cid, 1, [[bytes(33), "native", 1]], bytes(64)]), "DecodeError"),
        ("payment with 2 fields", _with([32, cid, 1, [[bytes(8), "native"]], bytes(64)]), "DecodeError"),
    ]
    vecs = []
    for description, data, error in bad:
        _expect(data, error)
        vecs.append({"description": description, "hex": data.hex(), "error": error})
    big = b"\x90" * (encoding.MAX_FRAME + 1)
    _expect(big, "FrameTooLarge")
    vecs.append({"description": "payload one byte above the 65536-byte cap", "hex": "90",
                 "repeat": encoding.MAX_FRAME + 1, "error": "FrameTooLarge"})
    ignored = []
    for description, data in [("unknown odd type id 1001", _with([1001, 1])),
                              ("unknown odd type id 3 with no fields", _with([3])),
                              ("unknown odd type id with arbitrary fields", _with([4097, [b"x", ["y"]], None])),
                              ("nesting at the bound: an empty array at depth 8", _deep(7, b"\x90")),
                              ("nesting at the bound: a scalar at depth 8", _deep(7, b"\x01"))]:
        assert decode_message(data) is None, description
        ignored.append({"description": description, "hex": data.hex()})
    return {"description": "Frames a receiver must refuse, with the error class of channels.errors the reference "
                           "implementation raises (UnknownMessageType: close the stream; DecodeError: close the "
                           "stream; FrameTooLarge: refuse before reading). \"repeat\": the payload is \"hex\" "
                           "repeated that many times. \"ignored\": canonical frames of unknown odd types, which a "
                           "receiver skips and the stream continues.", "vectors": vecs, "ignored": ignored}


def _deep(arrays: int, inner: bytes) -> bytes:
    """``[1001, [[...inner...]]]``: ``arrays`` nested one-item arrays inside an unknown odd record."""
    return b"\x92\xcd\x03\xe9" + b"\x91" * arrays + inner


def _proposal(index: int, value: Any) -> bytes:
    """A ChannelProposal frame whose params field ``index`` is replaced by ``value``."""
    fields = PARAMS.to_fields()
    fields[index] = value
    return _with([16, fields, S0.allocation.to_fields(), bytes(64)])


def _expect(data: bytes, error: str) -> None:
    try:
        decode_message(data)
    except DecodeError as exc:
        if type(exc).__name__ != error:
            raise AssertionError(f"{data[:16].hex()}...: expected {error}, got {type(exc).__name__}: {exc}") from None
        return
    raise AssertionError(f"{data[:16].hex()}...: expected {error}, but it decoded")


# ------------------------------------------------------------------ output


def build() -> dict[str, Any]:
    """File name -> JSON document, in a fixed order."""
    return {"keys.json": keys(), "channel_id.json": channel_ids(), "state_digest.json": state_digests(),
            "init_binding.json": init_binding(), "wire_messages.json": messages(), "canonical.json": canonical(),
            "invalid.json": invalid()}


def render(doc: Any) -> str:
    return _dump(doc, 0) + "\n"


def _dump(value: Any, indent: int) -> str:
    """JSON with short arrays and objects on one line (readable, and still deterministic)."""
    flat = json.dumps(value, ensure_ascii=False)
    if len(flat) + indent <= 110 or not isinstance(value, (dict, list)) or not value:
        return flat
    pad = " " * (indent + 2)
    if isinstance(value, dict):
        items = [f"{pad}{json.dumps(k, ensure_ascii=False)}: {_dump(v, indent + 2)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    items = [pad + _dump(v, indent + 2) for v in value]
    return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"


def main() -> None:
    VECTORS.mkdir(parents=True, exist_ok=True)
    for name, doc in build().items():
        (VECTORS / name).write_text(render(doc), encoding="utf-8")
        print(f"wrote {(VECTORS / name).relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
