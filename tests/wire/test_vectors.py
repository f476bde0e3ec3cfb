"""The Python implementation against ``proto/vectors/*.json``, byte for byte.

The layouts (channel id, state digest, Init binding) are rebuilt here from the
text of ``proto/01-encoding.md`` independently of the code, so a drift between the
documents, the vectors and the code fails one of these tests.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from channels import encoding
from channels.chain.devnet.scheme import DevnetScheme, state_layout
from channels.core.ids import AssetId, ChannelId, PaymentId, Version
from channels.core.ops import AddLock, AppMove, FailLock, FulfillLock, Operation, Payment
from channels.core.state import Allocation, ChannelParams, Lock, SignedState, State
from channels.crypto import SigningKey, verify
from channels.errors import DecodeError
from channels.net.frames import encode_frame, parse_prefix
from channels.node.identity import init_digest, verify_init
from channels.wire import decode_message, encode_message
from channels.wire.registry import BY_TYPE

from . import make_vectors

PROTO = Path(__file__).resolve().parents[2] / "proto"
VECTORS = PROTO / "vectors"
# Vector files another generator writes and its own test checks (not this module's).
OTHER_GENERATORS = {
    "invoice.json": "tests/invoice/make_invoice_vectors.py",
    "onion.json": "tests/onion/make_onion_vectors.py",
    "games.json": "tests/games/make_game_vectors.py",
    "tower.json": "tests/watchtower/make_tower_vectors.py",
    "gossip.json": "tests/gossip/make_vectors.py",
    "nparty.json": "tests/core/make_nparty_vectors.py",
}
TABLE = json.loads((PROTO / "messages.json").read_text(encoding="utf-8"))
SCHEME = DevnetScheme()


def load(name: str) -> dict[str, Any]:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))  # type: ignore[no-any-return]


KEYS = load("keys.json")
CHANNEL_IDS = load("channel_id.json")
STATES = load("state_digest.json")
INIT = load("init_binding.json")
MESSAGES = load("wire_messages.json")
CANONICAL = load("canonical.json")
INVALID = load("invalid.json")
L1 = {k["label"]: k for k in KEYS["l1"]}


# ------------------------------------------------------------------ JSON -> values (by the table's kinds)


def params_from(j: dict[str, Any]) -> ChannelParams:
    return ChannelParams(chain_id=j["chain_id"], adjudicator=bytes.fromhex(j["adjudicator"]),
                         participants=tuple(bytes.fromhex(p) for p in j["participants"]),
                         challenge_duration=j["challenge_duration"], nonce=bytes.fromhex(j["nonce"]),
                         app_id=j["app_id"])


def allocation_from(j: dict[str, Any]) -> Allocation:
    locks = tuple(Lock(asset=AssetId(lk["asset"]), amount=lk["amount"], hashlock=bytes.fromhex(lk["hashlock"]),
                       expiry=lk["expiry"], payer=lk["payer"], payee=lk["payee"], lock_id=bytes.fromhex(lk["lock_id"]))
                  for lk in j["locks"])
    return Allocation(assets=tuple(AssetId(a) for a in j["assets"]),
                      balances=tuple(tuple(row) for row in j["balances"]), locks=locks)


def state_from(j: dict[str, Any]) -> State:
    return State(channel_id=ChannelId(bytes.fromhex(j["channel_id"])), version=Version(j["version"]),
                 allocation=allocation_from(j["allocation"]), app_data=bytes.fromhex(j["app_data"]),
                 is_final=j["is_final"])


def operation_from(j: dict[str, Any]) -> Operation:
    op = j["op"]
    if op == "pay":
        return Payment(payment_id=PaymentId(bytes.fromhex(j["payment_id"])), asset=AssetId(j["asset"]),
                       amount=j["amount"])
    if op == "add_lock":
        return AddLock(lock_id=bytes.fromhex(j["lock_id"]), asset=AssetId(j["asset"]), amount=j["amount"],
                       hashlock=bytes.fromhex(j["hashlock"]), expiry=j["expiry"])
    if op == "fulfill_lock":
        return FulfillLock(lock_id=bytes.fromhex(j["lock_id"]), preimage=bytes.fromhex(j["preimage"]))
    if op == "fail_lock":
        return FailLock(lock_id=bytes.fromhex(j["lock_id"]), reason=j["reason"])
    assert op == "app_move", op
    return AppMove(move_id=bytes.fromhex(j["move_id"]), payload=bytes.fromhex(j["payload"]))


FROM_JSON: dict[str, Any] = {
    "channel_id": bytes.fromhex,
    "u64": int,
    "signature": bytes.fromhex,
    "reason": str,
    "bool": bool,
    "address": bytes.fromhex,
    "addresses": tuple,
    "params": params_from,
    "allocation": allocation_from,
    "payments": lambda v: tuple(Payment(payment_id=PaymentId(bytes.fromhex(p["payment_id"])),
                                        asset=AssetId(p["asset"]), amount=p["amount"]) for p in v),
    "operations": lambda v: tuple(operation_from(op) for op in v),
}


def message_from(vector: dict[str, Any]) -> Any:
    entry = next(m for m in TABLE["messages"] if m["type_id"] == vector["type_id"])
    assert entry["name"] == vector["name"]
    assert [f["name"] for f in entry["fields"]] == list(vector["value"]), "fields out of table order"
    kwargs = {f["name"]: FROM_JSON[f["kind"]](vector["value"][f["name"]]) for f in entry["fields"]}
    return BY_TYPE[vector["type_id"]].cls(**kwargs)


def untag(value: Any) -> Any:
    if isinstance(value, dict):
        return bytes.fromhex(value["bin"])
    if isinstance(value, list):
        return [untag(v) for v in value]
    return value


# ------------------------------------------------------------------ layouts, from the documents


def spec_channel_id_preimage(p: dict[str, Any]) -> bytes:
    adjudicator, app = bytes.fromhex(p["adjudicator"]), p["app_id"].encode("utf-8")
    width = len(bytes.fromhex(p["participants"][0]))
    domain = b"p2p-channels/channel-id/v1" if width == 32 else b"p2p-channels/channel-id/v2" + bytes([width])
    out = domain + p["chain_id"].to_bytes(8, "big") + len(adjudicator).to_bytes(2, "big")
    out += adjudicator + len(p["participants"]).to_bytes(1, "big")
    out += b"".join(bytes.fromhex(a) for a in p["participants"])
    out += p["challenge_duration"].to_bytes(8, "big") + bytes.fromhex(p["nonce"])
    return out + len(app).to_bytes(1, "big") + app


def spec_state_layout(p: dict[str, Any], s: dict[str, Any]) -> bytes:
    adjudicator, alloc = bytes.fromhex(p["adjudicator"]), s["allocation"]
    amounts = [b for row in alloc["balances"] for b in row] + [lk["amount"] for lk in alloc["locks"]]
    width = 32 if max(amounts) >= 2**64 else 8  # layout version 2 when any amount needs more than 64 bits
    out = b"p2p-channels/devnet/state" + (2 if width == 32 else 1).to_bytes(2, "big") + p["chain_id"].to_bytes(8, "big")
    out += len(adjudicator).to_bytes(2, "big") + adjudicator + bytes.fromhex(s["channel_id"])
    out += s["version"].to_bytes(8, "big") + bytes([1 if s["is_final"] else 0]) + bytes([len(alloc["assets"])])
    for asset, row in zip(alloc["assets"], alloc["balances"], strict=True):
        name = asset.encode("utf-8")
        out += bytes([len(name)]) + name + b"".join(b.to_bytes(width, "big") for b in row)
    out += len(alloc["locks"]).to_bytes(2, "big")
    for lk in alloc["locks"]:
        name = lk["asset"].encode("utf-8")
        out += bytes([len(name)]) + name + lk["amount"].to_bytes(width, "big") + bytes.fromhex(lk["hashlock"])
        out += lk["expiry"].to_bytes(8, "big") + bytes([lk["payer"], lk["payee"]])
        out += bytes([len(bytes.fromhex(lk["lock_id"]))]) + bytes.fromhex(lk["lock_id"])
    app_data = bytes.fromhex(s["app_data"])
    return out + len(app_data).to_bytes(4, "big") + app_data


def spec_peer_id(public_key: bytes) -> str:
    alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
    data = bytes([0x00, 0x24, 0x08, 0x01, 0x12, 0x20]) + public_key
    n, out = int.from_bytes(data, "big"), ""
    while n:
        n, r = divmod(n, 58)
        out = alphabet[r] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


# ------------------------------------------------------------------ keys, ids, digests, signatures


@pytest.mark.parametrize("key", KEYS["l1"] + KEYS["libp2p"], ids=lambda k: k["label"])
def test_keys(key: dict[str, Any]) -> None:
    seed = hashlib.sha256(b"p2p-channels/test-key/" + key["label"].encode()).digest()
    assert seed.hex() == key["seed"]
    assert SigningKey.from_label(key["label"]).public_key.hex() == key["public_key"]
    if "peer_id" in key:
        assert spec_peer_id(bytes.fromhex(key["public_key"])) == key["peer_id"]


@pytest.mark.parametrize("vector", CHANNEL_IDS["vectors"], ids=lambda v: v["description"][:40])
def test_channel_id(vector: dict[str, Any]) -> None:
    preimage = spec_channel_id_preimage(vector["params"])
    assert preimage.hex() == vector["preimage"]
    assert hashlib.sha256(preimage).hexdigest() == vector["channel_id"]
    params = params_from(vector["params"])
    params.validate()
    assert params.channel_id.hex() == vector["channel_id"]
    assert SCHEME.channel_id(params).hex() == vector["channel_id"]


def test_state_vectors_use_the_channel_id_vector() -> None:
    params = params_from(STATES["params"])
    assert params.channel_id.hex() == STATES["channel_id"] == CHANNEL_IDS["vectors"][0]["channel_id"]
    assert STATES["domain"] == "p2p-channels/devnet/state" and STATES["protocol_version"] == 1


@pytest.mark.parametrize("vector", STATES["vectors"], ids=lambda v: v["description"][:40])
def test_state_digest_and_signatures(vector: dict[str, Any]) -> None:
    params, state = params_from(STATES["params"]), state_from(vector["state"])
    layout = bytes.fromhex(vector["layout"])
    assert spec_state_layout(STATES["params"], vector["state"]) == layout
    assert state_layout(params, state) == layout
    digest = bytes.fromhex(vector["digest"])
    assert hashlib.sha256(layout).digest() == digest == SCHEME.state_digest(params, state)
    for label, signature in vector["signatures"].items():
        sig = bytes.fromhex(signature)
        public = bytes.fromhex(L1[label]["public_key"])
        assert SigningKey(bytes.fromhex(L1[label]["seed"])).sign(digest) == sig, "Ed25519 is deterministic"
        assert verify(public, digest, sig)
        assert SCHEME.verify(params, state, public, sig)
        assert not verify(public, bytes(32), sig)
    # the value objects' own encodings (no type id)
    data = bytes.fromhex(vector["state_encoding"])
    assert encoding.encode(state.to_fields()) == data
    assert State.from_fields(encoding.decode(data)) == state
    sigs = tuple(bytes.fromhex(vector["signatures"][k]) for k in ("alice", "bob"))
    signed = SignedState(state=state, signatures=sigs)
    data = bytes.fromhex(vector["signed_state_encoding"])
    assert encoding.encode(signed.to_fields()) == data
    assert SignedState.from_fields(encoding.decode(data)) == signed


@pytest.mark.parametrize("vector", INIT["vectors"], ids=lambda v: v["peer_id"])
def test_init_binding(vector: dict[str, Any]) -> None:
    preimage = b"p2p-channels/init/v1" + vector["chain_id"].to_bytes(8, "big") + vector["peer_id"].encode("ascii")
    assert preimage.hex() == vector["preimage"]
    digest = hashlib.sha256(preimage).digest()
    assert digest.hex() == vector["digest"] == init_digest(vector["peer_id"], vector["chain_id"]).hex()
    sig = bytes.fromhex(vector["signature"])
    assert SigningKey(bytes.fromhex(L1[vector["l1_key"]]["seed"])).sign(digest) == sig
    address = bytes.fromhex(vector["l1_address"])
    assert verify_init(SCHEME, vector["peer_id"], vector["chain_id"], address, sig)
    assert not verify_init(SCHEME, vector["peer_id"], vector["chain_id"] + 1, address, sig)


# ------------------------------------------------------------------ messages


@pytest.mark.parametrize("vector", MESSAGES["vectors"], ids=lambda v: f"{v['name']}-{v['description'][:30]}")
def test_message_vector(vector: dict[str, Any]) -> None:
    msg = message_from(vector)
    data = bytes.fromhex(vector["hex"])
    assert encode_message(msg) == data, "encoding differs from the vector"
    decoded = decode_message(data)
    assert decoded == msg, "decoding does not give the value back"
    assert encode_message(decoded) == data, "re-encoding does not reproduce the bytes"
    assert encoding.decode(data)[0] == vector["type_id"]


def test_every_message_type_has_a_vector() -> None:
    assert {v["type_id"] for v in MESSAGES["vectors"]} == set(BY_TYPE)


def test_message_signatures_are_the_published_ones() -> None:
    """Every state signature in a message vector is one of state_digest.json's (so it verifies)."""
    state_sigs = {s for v in STATES["vectors"] for s in v["signatures"].values()}
    init_sigs = {v["signature"] for v in INIT["vectors"]}
    for vector in MESSAGES["vectors"]:
        sig = vector["value"].get("signature")
        if sig is not None:
            assert sig in (init_sigs if vector["name"] == "Init" else state_sigs), vector["description"]


# ------------------------------------------------------------------ canonical msgpack and frames


@pytest.mark.parametrize("vector", CANONICAL["vectors"], ids=lambda v: v["description"])
def test_canonical_value(vector: dict[str, Any]) -> None:
    value, data = untag(vector["value"]), bytes.fromhex(vector["hex"])
    assert encoding.encode(value) == data
    assert encoding.decode(data) == value


def test_frames() -> None:
    frames = CANONICAL["frames"]
    assert frames["max_payload"] == encoding.MAX_FRAME
    for example in frames["examples"]:
        assert encode_frame(bytes.fromhex(example["payload"])).hex() == example["frame"]
    for case in frames["prefixes"]:
        prefix = bytes.fromhex(case["prefix"])
        if case["ok"]:
            assert parse_prefix(prefix, max_size=encoding.MAX_FRAME) == case["length"]
        else:
            with pytest.raises(DecodeError) as info:
                parse_prefix(prefix, max_size=encoding.MAX_FRAME)
            assert type(info.value).__name__ == case["error"]


@pytest.mark.parametrize("vector", INVALID["vectors"], ids=lambda v: v["description"])
def test_invalid_encoding(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["hex"]) * vector.get("repeat", 1)
    with pytest.raises(DecodeError) as info:
        decode_message(data)
    assert type(info.value).__name__ == vector["error"], str(info.value)
    if vector["error"] == "UnknownMessageType":
        assert info.value.must_close  # type: ignore[attr-defined]


@pytest.mark.parametrize("vector", INVALID["ignored"], ids=lambda v: v["description"])
def test_unknown_odd_type_is_ignored(vector: dict[str, Any]) -> None:
    assert decode_message(bytes.fromhex(vector["hex"])) is None


# ------------------------------------------------------------------ the files are current


def test_vectors_are_up_to_date() -> None:
    built = make_vectors.build()
    on_disk = {p.name for p in VECTORS.glob("*.json")} - set(OTHER_GENERATORS)
    assert on_disk == set(built), "proto/vectors/ has files the generator does not write (or misses some)"
    for name, doc in built.items():
        assert (VECTORS / name).read_text(encoding="utf-8") == make_vectors.render(doc), (
            f"proto/vectors/{name} is stale: run `python -m tests.wire.make_vectors` and review the diff")
