"""``proto/messages.json`` (the published message table) equals the code's registry, both ways.

Names are not enough: every bound the table states is probed against the code's
decoders (at the bound: accepted; one past it: ``DecodeError``), so the table is
what a decoder in another language must accept, no more and no less.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import pytest

from channels.core.state import Allocation, ChannelParams, Lock, SignedState, State
from channels.errors import DecodeError
from channels.wire import envelope
from channels.wire.fields import KINDS
from channels.wire.registry import BY_TYPE

TABLE_PATH = Path(__file__).resolve().parents[2] / "proto" / "messages.json"
TABLE: dict[str, Any] = json.loads(TABLE_PATH.read_text(encoding="utf-8"))

def _operation(tag: int, fields: Any) -> Any:
    """Decode one operation object: its fields, behind the variant's tag (messages.json ``union``)."""
    return KINDS["operations"][1]([[tag, *fields] if isinstance(fields, list) else fields])[0]


OBJECT_DECODERS: dict[str, Callable[[Any], Any]] = {
    "ChannelParams": ChannelParams.from_fields,
    "Allocation": Allocation.from_fields,
    "Lock": Lock.from_fields,
    "Payment": lambda f: KINDS["payments"][1]([f])[0],
    **{name: partial(_operation, tag) for tag, name in enumerate(
        ["PayOperation", "AddLockOperation", "FulfillLockOperation", "FailLockOperation", "AppMoveOperation"])},
    "State": State.from_fields,
    "SignedState": SignedState.from_fields,
}


def protocol_of(family: str) -> str:
    """The code's protocol id for a family: ``PROTOCOL_<FAMILY>`` in ``channels.wire.envelope``."""
    const = f"PROTOCOL_{family.upper()}"
    value = getattr(envelope, const, None)
    assert isinstance(value, str), f"family {family!r} has no {const} constant in channels.wire.envelope"
    return value


# ------------------------------------------------------------------ names, ids, fields, protocols


def test_table_lists_exactly_the_registered_messages() -> None:
    table = {m["type_id"]: m for m in TABLE["messages"]}
    assert len(table) == len(TABLE["messages"]), "duplicate type id in proto/messages.json"
    assert sorted(table) == sorted(BY_TYPE), "type ids differ between proto/messages.json and the registry"
    for type_id, spec in BY_TYPE.items():
        entry = table[type_id]
        assert entry["name"] == spec.name
        assert entry["family"] == spec.family
        assert [(f["name"], f["kind"]) for f in entry["fields"]] == list(spec.fields), spec.name
        assert entry["protocol"] == protocol_of(spec.family) == TABLE["families"][spec.family]["protocol"]


def test_table_is_ordered_and_even() -> None:
    ids = [m["type_id"] for m in TABLE["messages"]]
    assert ids == sorted(ids)
    assert all(i % 2 == 0 for i in ids), "known messages use even type ids (it's OK to be odd)"
    assert len({m["name"] for m in TABLE["messages"]}) == len(ids)


def test_families_match_the_code() -> None:
    assert set(TABLE["families"]) == {spec.family for spec in BY_TYPE.values()}
    for family, entry in TABLE["families"].items():
        assert entry["protocol"] == protocol_of(family)
        assert re.fullmatch(rf"/channels/{family}/\d+\.\d+\.\d+", entry["protocol"])
        assert (TABLE_PATH.parent / entry["document"]).is_file()


def test_kinds_match_the_code() -> None:
    assert set(TABLE["kinds"]) == set(KINDS), "field kinds differ between proto/messages.json and channels.wire.fields"
    used = {f["kind"] for m in TABLE["messages"] for f in m["fields"]}
    assert used <= set(TABLE["kinds"])


def test_every_object_is_described_and_known() -> None:
    referenced = set()

    def walk(schema: dict[str, Any]) -> None:
        if schema["type"] == "object":
            referenced.add(schema["object"])
        if schema["type"] == "union":
            referenced.update(schema["variants"].values())
        if "items" in schema:
            walk(schema["items"])

    for schema in TABLE["kinds"].values():
        walk(schema)
    for obj in TABLE["objects"].values():
        for f in obj["fields"]:
            walk(f)
    assert referenced <= set(TABLE["objects"])
    assert set(TABLE["objects"]) == set(OBJECT_DECODERS)
    for name, obj in TABLE["objects"].items():
        assert all(t["type"] in TABLE["types"] for t in obj["fields"]), name
    # field names follow the value classes (the names a reader sees in the documents)
    for name, cls in [("ChannelParams", ChannelParams), ("Allocation", Allocation), ("Lock", Lock),
                      ("State", State), ("SignedState", SignedState)]:

        assert [f["name"] for f in TABLE["objects"][name]["fields"]] == [a.name for a in attrs.fields(cls)]


# ------------------------------------------------------------------ bounds, probed against the decoders


def sample(schema: dict[str, Any], i: int = 0) -> Any:
    """A valid wire value for ``schema``; ``i`` varies it so array items can be distinct."""
    t = schema["type"]
    if t == "uint":
        return schema["min"]
    if t == "amount":
        return 0
    if t == "bool":
        return False
    if t == "bin":
        n = schema.get("len", max(schema.get("min_len", 0), min(schema.get("max_len", 1), 1)))
        return bytes([(i + 1) % 256]) * n
    if t == "str":
        return chr(ord("a") + i % 26) * max(schema.get("min_chars", 0), 1)
    if t == "array":
        return [sample(schema["items"], j) for j in range(schema.get("len", schema.get("min_items", 0)))]
    if t == "object":
        return [sample(f, j) for j, f in enumerate(TABLE["objects"][schema["object"]]["fields"])]
    if t == "union":
        tag, name = min(schema["variants"].items())
        return [int(tag), *sample({"type": "object", "object": name}, i)]
    raise AssertionError(f"unknown type {t}")


def cases(schema: dict[str, Any]) -> Iterator[tuple[str, Any, bool]]:
    """(what, wire value, accepted?) around every bound ``schema`` states."""
    t = schema["type"]
    if t == "uint":
        yield "min", schema["min"], True
        yield "max", schema["max"], True
        yield "min - 1", schema["min"] - 1, False
        yield "max + 1", schema["max"] + 1, False
        yield "bool", True, False
        yield "nil", None, False
    elif t == "amount":
        yield "0", 0, True
        yield "2^64-1 as an int", 2**64 - 1, True
        yield "2^64 as 9 bytes", (2**64).to_bytes(9, "big"), True
        yield "2^256-1 as 32 bytes", b"\xff" * 32, True
        yield "33 bytes", b"\x01" * 33, False
        yield "a leading zero byte", b"\x00" + b"\xff" * 9, False
        yield "8 bytes (an int's range)", b"\xff" * 8, False
        yield "-1", -1, False
        yield "bool", True, False
        yield "nil", None, False
    elif t == "bool":
        yield "true", True, True
        yield "false", False, True
        yield "int 1", 1, False
        yield "int 0", 0, False
    elif t == "bin":
        if "len" in schema:
            n = schema["len"]
            yield "len", bytes(n), True
            yield "len - 1", bytes(n - 1), False
            yield "len + 1", bytes(n + 1), False
            yield "str", "a" * n, False
        else:
            yield "max_len", bytes(schema["max_len"]), True
            yield "max_len + 1", bytes(schema["max_len"] + 1), False
            lo = schema.get("min_len", 0)
            yield "min_len", bytes(lo), True
            if lo > 0:
                yield "min_len - 1", bytes(lo - 1), False
            yield "str", "a", False
    elif t == "str":
        lo, hi = schema.get("min_chars", 0), schema["max_chars"]
        yield "max_chars (2-byte code points)", "é" * hi, True
        yield "max_chars + 1", "é" * (hi + 1), False
        yield "min_chars", "a" * lo, True
        if lo > 0:
            yield "min_chars - 1", "a" * (lo - 1), False
        yield "bin", b"a", False
        yield "control character", "a\n", not schema.get("printable", False)
    elif t == "array":
        lo, hi = schema.get("min_items", 0), schema["max_items"]
        yield "max_items", [sample(schema["items"], j) for j in range(hi)], True
        yield "max_items + 1", [sample(schema["items"], j) for j in range(hi + 1)], False
        if lo > 0:
            yield "min_items - 1", [sample(schema["items"], j) for j in range(lo - 1)], False
        if schema.get("unique"):
            yield "repeated item", [sample(schema["items"], 0)] * max(lo, 2), False
        for what, value, ok in cases(schema["items"]):  # each item bound, in an otherwise valid array
            items = [sample(schema["items"], j + 1) for j in range(max(lo, 1))]
            items[0] = value
            if schema.get("same_len") and isinstance(value, bytes):  # every item at the probed length
                items[1:] = [bytes([j + 2]) * len(value) for j in range(len(items) - 1)]
            yield f"item: {what}", items, ok
        if schema.get("same_len"):
            first = sample(schema["items"], 1)
            yield "items of two lengths", [first, *(first + b"x" for _ in range(max(lo, 2) - 1))], False
        yield "bin", b"", False
        yield "nil", None, False
    elif t == "object":
        fields = TABLE["objects"][schema["object"]]["fields"]
        base = sample(schema)
        yield "sample", base, True
        # Optional fields are trailing: an object may stop before them, and only there.
        required = sum(1 for f in fields if not f.get("optional"))
        yield "one field short", base[:-1], len(base) - 1 >= required
        if required < len(fields):
            yield "without its optional fields", base[:required], True
            yield "one required field short", base[:required - 1], False
        yield "one field extra", [*base, 0], False
        yield "bin", b"", False
        for k, f in enumerate(fields):
            for what, value, ok in cases(f):
                mutated = list(base)
                mutated[k] = value
                yield f"{f['name']}: {what}", mutated, ok
    elif t == "union":
        for tag, name in schema["variants"].items():
            for what, value, ok in cases({"type": "object", "object": name}):
                if isinstance(value, list):
                    yield f"{name}: {what}", [int(tag), *value], ok
        yield "unknown tag", [max(int(k) for k in schema["variants"]) + 1], False
        yield "no tag", [], False
        yield "bin", b"", False
    else:
        raise AssertionError(f"unknown type {t}")


def probe(decoder: Callable[[Any], Any], schema: dict[str, Any], where: str) -> None:
    for what, value, ok in cases(schema):
        if ok:
            try:
                decoder(value)
            except DecodeError as exc:
                pytest.fail(f"{where} / {what}: the table allows it, the decoder refused it: {exc}")
        else:
            with pytest.raises(DecodeError):
                decoder(value)
                pytest.fail(f"{where} / {what}: the table forbids it, the decoder accepted it")


@pytest.mark.parametrize("kind", sorted(TABLE["kinds"]))
def test_kind_bounds_match_the_decoder(kind: str) -> None:
    probe(KINDS[kind][1], TABLE["kinds"][kind], kind)


@pytest.mark.parametrize("name", sorted(TABLE["objects"]))
def test_object_bounds_match_the_decoder(name: str) -> None:
    probe(OBJECT_DECODERS[name], {"type": "object", "object": name}, name)


def test_samples_round_trip_through_the_encoder() -> None:
    """The table's kinds encode back to the very values the decoders accepted."""
    for kind, schema in TABLE["kinds"].items():
        value = KINDS[kind][1](sample(schema))
        assert KINDS[kind][0](value) == sample(schema), kind
