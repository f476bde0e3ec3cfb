"""Generate ``proto/vectors/gossip.json`` (proto/08-gossip.md) from the Python implementation.

Run from the repository root::

    .venv/bin/python -m tests.gossip.make_vectors

Deterministic: every key comes from a fixed label and Ed25519 signs deterministically, so the
file is byte-for-byte the same on every run; ``tests/gossip/test_vectors.py`` fails when the
committed file differs. Self-checking: every valid vector decodes back to itself, and every
invalid one must raise ``GossipDecodeError`` here before it is written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs

from channels import encoding
from channels.errors import DecodeError
from channels.gossip import messages as m
from channels.gossip.errors import GossipDecodeError
from channels.invoice.peerid import peer_id_of

from . import util

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "proto" / "vectors" / "gossip.json"
LABELS = ("alice", "bob")


def keys() -> list[dict[str, Any]]:
    out = []
    for label in LABELS:
        node, l1 = util.node_key(label), util.l1_key(label)
        out.append({"label": label, "node_seed": node.seed.hex(), "node_key": node.public_key.hex(),
                    "peer_id": peer_id_of(node.public_key), "l1_seed": l1.key.seed.hex(),
                    "l1_address": bytes(l1.address).hex()})
    return out


def hexify(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, (list, tuple)):
        return [hexify(v) for v in value]
    return value


def valid() -> list[dict[str, Any]]:
    ann = util.channel("alice", "bob", capacity=1_000_000)
    big = util.channel("alice", "bob", nonce=1, capacity=2**80)
    upd = util.update(ann, "alice", base_fee=1000, fee_ppm=250, expiry_delta=144, htlc_minimum=1,
                      htlc_maximum=500_000)
    off = util.update(ann, "bob", timestamp=util.NOW + 1, enabled=False)
    node = util.node("alice", alias="alice ⚡", addresses=("/ip4/127.0.0.1/tcp/9735", "/ip6/::1/tcp/9735"))
    out = []
    for name, msg, digest in (
        ("channel_announcement", ann, ann.digest()),
        ("channel_announcement_wide_capacity", big, big.digest()),
        ("channel_update", upd, upd.digest(util.CHAIN_ID)),
        ("channel_update_disabled", off, off.digest(util.CHAIN_ID)),
        ("node_announcement", node, node.digest(util.CHAIN_ID)),
    ):
        data = msg.encode()
        assert m.decode_gossip(data) == msg
        fields = hexify(msg.to_fields())
        out.append({"name": name, "type": data[1], "chain_id": util.CHAIN_ID, "fields": fields,
                    "unsigned": encoding.encode(fields_unsigned(msg)).hex(), "digest": digest.hex(),
                    "encoded": data.hex()})
    sig_req = m.SigRequest(announcement=attrs.evolve(ann, node_signatures=(b"", b""), l1_signatures=(b"", b"")),
                           node_signature=ann.node_signatures[0], l1_signature=ann.l1_signatures[0])
    page = m.SyncPage(messages=(ann.encode(), upd.encode()), next_cursor=b"\x00" + ann.channel_id)
    for name, data in (("sync_request_start", m.SyncRequest().encode()),
                       ("sync_request_after", m.SyncRequest(cursor=b"\x00" + ann.channel_id).encode()),
                       ("sync_page", page.encode()),
                       ("sync_page_last", m.SyncPage(messages=(node.encode(),), next_cursor=None).encode()),
                       ("sig_request", sig_req.encode()),
                       ("sig_reply", m.SigReply(node_signature=ann.node_signatures[1],
                                                l1_signature=ann.l1_signatures[1]).encode())):
        out.append({"name": name, "encoded": data.hex()})
    return out


def fields_unsigned(msg: m.GossipMessage) -> list[Any]:
    """The array the digest covers (after the domain and the chain id)."""
    if isinstance(msg, m.NodeAnnouncement):
        return msg.to_fields()[:5]
    return msg.unsigned_fields()


def invalid() -> list[dict[str, Any]]:
    ann = util.channel("alice", "bob")
    f = ann.to_fields()
    u = util.update(ann, "alice").to_fields()
    n = util.node("alice").to_fields()
    cases = [
        ("unknown_type", encoding.encode_record(98, [])),
        ("not_canonical_int", bytes.fromhex("92cc44") + b"\x90"),  # 68 as uint8 instead of a fixint
        ("announcement_keys_unsorted", encoding.encode_record(66, [*f[:4], f[4][::-1], *f[5:]])),
        ("announcement_three_participants", encoding.encode_record(
            66, [f[0], [*f[1][:2], [*f[1][2], b"\x07" * 32], *f[1][3:]], *f[2:]])),
        ("announcement_zero_capacity", encoding.encode_record(66, [*f[:3], 0, *f[4:]])),
        ("announcement_capacity_padded", encoding.encode_record(66, [*f[:3], b"\x00" * 9, *f[4:]])),
        ("update_direction_2", encoding.encode_record(68, [u[0], 2, *u[2:]])),
        ("update_fee_ppm_33_bits", encoding.encode_record(68, [*u[:4], 2**32, *u[5:]])),
        ("update_maximum_below_minimum", encoding.encode_record(68, [*u[:6], 10, 9, *u[8:]])),
        ("update_enabled_not_bool", encoding.encode_record(68, [*u[:8], 1, u[9]])),
        ("update_short_signature", encoding.encode_record(68, [*u[:9], u[9][:63]])),
        ("node_alias_33_bytes", encoding.encode_record(64, [*n[:3], "ä" * 16 + "a", *n[4:]])),
        ("node_address_not_multiaddr", encoding.encode_record(64, [*n[:2], ["127.0.0.1:9735"], *n[3:]])),
        ("node_empty_l1_signature", encoding.encode_record(64, [*n[:6], b""])),
        ("node_extra_field", encoding.encode_record(64, [*n, 0])),
    ]
    out = []
    for name, data in cases:
        try:
            m.decode_gossip(data)
        except GossipDecodeError:
            pass
        except DecodeError as exc:  # pragma: no cover - the generator checks itself
            raise AssertionError(f"{name} raised {type(exc).__name__}, not GossipDecodeError") from None
        else:  # pragma: no cover
            raise AssertionError(f"{name} decoded")
        out.append({"name": name, "encoded": data.hex(), "error": "GossipDecodeError"})
    return out


def document() -> dict[str, Any]:
    return {"description": "gossip messages (proto/08-gossip.md): encodings, signing digests, refused encodings",
            "chain_id": util.CHAIN_ID, "adjudicator": util.ADJUDICATOR.hex(),
            "domains": {"node": m.NODE_DOMAIN.decode(), "channel": m.CHANNEL_DOMAIN.decode(),
                        "update": m.UPDATE_DOMAIN.decode()},
            "keys": keys(), "valid": valid(), "invalid": invalid()}


def render() -> str:
    return json.dumps(document(), indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    OUT.write_text(render(), encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
