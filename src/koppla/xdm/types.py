"""The schema DSL: Koppla's own typed description of XDM shapes, as frozen dataclasses."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal, TypeAlias

ScalarKind: TypeAlias = Literal["string", "number", "integer", "boolean", "date-time", "date"]


@dataclass(frozen=True)
class Scalar:
    """A leaf value; `enum`, `pattern` (searched, as JSON Schema does) and bounds are enforced."""

    kind: ScalarKind
    enum: tuple[str, ...] | None = None
    pattern: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    description: str = ""


@dataclass(frozen=True)
class Object:
    """A JSON object with known fields (kept in definition order); other keys are unknown."""

    fields: Mapping[str, Type]
    required: frozenset[str] = frozenset()
    description: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "fields", MappingProxyType(dict(self.fields)))
        missing = self.required - self.fields.keys()
        if missing:
            raise ValueError(f"required fields not defined: {sorted(missing)}")


@dataclass(frozen=True)
class Array:
    """A JSON array whose items all have one type."""

    items: Type


@dataclass(frozen=True)
class Map:
    """A JSON object used as a map: any string key, every value of one type."""

    values: Type


Type: TypeAlias = Scalar | Object | Array | Map


@dataclass(frozen=True, eq=False)
class Schema:
    """A named root object: what one dataset stores.

    Compared and hashed by identity, so compiled validators can be cached per schema object.
    """

    id: str
    title: str
    xdm_class: str
    root: Object = field(repr=False)


STRING = Scalar("string")
NUMBER = Scalar("number")
INTEGER = Scalar("integer")
BOOLEAN = Scalar("boolean")
DATE_TIME = Scalar("date-time")
DATE = Scalar("date")
