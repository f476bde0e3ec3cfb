"""The message table: type id <-> value class <-> field layout."""

from __future__ import annotations

from typing import Any

import attrs

from ..errors import DecodeError
from .fields import KINDS


@attrs.frozen
class MessageSpec:
    type_id: int
    name: str
    cls: type
    family: str
    fields: tuple[tuple[str, str], ...]

    def to_fields(self, msg: Any) -> list[Any]:
        return [KINDS[kind][0](getattr(msg, name)) for name, kind in self.fields]

    def from_fields(self, values: list[Any]) -> Any:
        if len(values) != len(self.fields):
            raise DecodeError(f"{self.name} has {len(self.fields)} fields, got {len(values)}")
        kwargs = {name: KINDS[kind][1](value) for (name, kind), value in zip(self.fields, values, strict=True)}
        return self.cls(**kwargs)


BY_TYPE: dict[int, MessageSpec] = {}
BY_CLASS: dict[type, MessageSpec] = {}


def register(type_id: int, cls: type, family: str, fields: tuple[tuple[str, str], ...]) -> MessageSpec:
    names = tuple(f.name for f in attrs.fields(cls))
    assert names == tuple(n for n, _ in fields), f"{cls.__name__} fields do not match its wire layout"
    assert type_id not in BY_TYPE and type_id % 2 == 0, "known messages use unique even type ids"
    spec = MessageSpec(type_id, cls.__name__, cls, family, fields)
    BY_TYPE[type_id] = spec
    BY_CLASS[cls] = spec
    return spec
