"""The component schema: which per-entity arrays a game networks, and how.

A game declares its networked components as plain data
(``{"pos": {"dtype": "<i2", "shape": [2], "scale": 32}, ...}``); the server
sends the same description to every client in the welcome message, and both
ends build a :class:`Schema` from it. The delta codec (protocol/delta.py) then
needs nothing else to lay rows out as bytes: a row of component ``c`` is
``c.row_bytes`` bytes, little-endian, in ``c.dtype``.

The description is validated as strictly on the game's side as on the wire's:
a schema the server accepts is one every client in any language can decode, so
only fixed-size little-endian bool/int/uint/float types are allowed (no
objects, strings, complex numbers, structured or big-endian types), rows are
small and non-empty, and a scale is a finite positive number.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: numpy dtype kinds a component may use: bool, signed int, unsigned int, float.
ALLOWED_KINDS = frozenset("biuf")
#: Item sizes in bytes; float16 ("<f2") is allowed, float128 is not portable.
ALLOWED_ITEM_SIZES = frozenset({1, 2, 4, 8})
#: A row is a scalar, a vector (k,) or a small matrix (k, l).
MAX_SHAPE_DIMS = 2
#: Upper bound on one entity's row of one component, in bytes (4 KiB): keeps a
#: hostile or mistaken description from sizing huge buffers on a client.
MAX_ROW_BYTES = 4 * 2**10
#: Upper bound on the number of components in a schema.
MAX_COMPONENTS = 64
#: Upper bound on a component name, in characters.
MAX_NAME_CHARS = 64
#: Upper bound on a dtype string, in characters ("<f8" is 3); numpy parses
#: long strings we have no use for.
MAX_DTYPE_CHARS = 16
#: Keys a component description may have; anything else is a typo we refuse.
DESCRIPTION_KEYS = frozenset({"dtype", "shape", "scale"})


class SchemaError(ValueError):
    """A component description that cannot be used (bad dtype, shape, scale, name)."""


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_NAME_CHARS:
        raise SchemaError(f"component name must be a string of 1..{MAX_NAME_CHARS} characters, got {name!r}")
    return name


def _check_dtype(name: str, raw: Any) -> np.dtype:
    """Parse and vet a dtype; returns it in little-endian canonical form.

    Accepts what a game may write (np.dtype, np.float32, "<f4", "float32") and
    what the wire carries (the canonical string describe() emits).
    """
    if isinstance(raw, str) and len(raw) > MAX_DTYPE_CHARS:
        raise SchemaError(f"component {name!r}: dtype string too long")
    if isinstance(raw, (bool, int, float)) or raw is None:
        # np.dtype(None) is float64 and np.dtype(int) is int64: never what a
        # description meant, so refuse rather than guess.
        raise SchemaError(f"component {name!r}: dtype must be a dtype string, got {raw!r}")
    try:
        dtype = np.dtype(raw)
    except Exception as exc:  # numpy raises TypeError, ValueError, SyntaxError...
        raise SchemaError(f"component {name!r}: unknown dtype {raw!r}") from exc
    if dtype.kind not in ALLOWED_KINDS or dtype.itemsize not in ALLOWED_ITEM_SIZES:
        raise SchemaError(
            f"component {name!r}: dtype {dtype.str!r} not allowed; use bool, int, uint or float of 1, 2, 4 or 8 bytes"
        )
    if dtype.str[0] == ">":
        raise SchemaError(f"component {name!r}: dtype {dtype.str!r} is big-endian; the wire is little-endian")
    return dtype


def _check_shape(name: str, raw: Any) -> tuple[int, ...]:
    if not isinstance(raw, (list, tuple)):
        raise SchemaError(f"component {name!r}: shape must be a list of ints, got {raw!r}")
    if len(raw) > MAX_SHAPE_DIMS:
        raise SchemaError(f"component {name!r}: shape {list(raw)} has more than {MAX_SHAPE_DIMS} dimensions")
    for dim in raw:
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
            # A zero dimension would make rows of 0 bytes, which the codec
            # cannot count; a row shape has no use for it.
            raise SchemaError(f"component {name!r}: shape {list(raw)} must hold positive ints")
    return tuple(int(dim) for dim in raw)


def _check_scale(name: str, raw: Any) -> float | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, numbers.Real):
        raise SchemaError(f"component {name!r}: scale must be a number, got {raw!r}")
    try:
        scale = float(raw)
    except (OverflowError, ValueError, TypeError) as exc:
        raise SchemaError(f"component {name!r}: scale {raw!r} is not a usable number") from exc
    if not math.isfinite(scale) or scale <= 0:
        raise SchemaError(f"component {name!r}: scale must be finite and positive, got {raw!r}")
    return scale


@dataclass(frozen=True)
class ComponentSpec:
    """One networked component: a row of ``shape`` values of ``dtype`` per entity.

    ``scale``, when set, says the wire value is ``round(value * scale)``; a
    client divides by it. The codec itself never applies it: it moves raw rows.
    Fields are validated and normalised on construction (raises SchemaError),
    so a dtype may be given as a string and a shape as a list.
    """

    name: str
    dtype: np.dtype
    shape: tuple[int, ...]
    scale: float | None = None

    def __post_init__(self) -> None:
        name = _check_name(self.name)
        object.__setattr__(self, "dtype", _check_dtype(name, self.dtype))
        object.__setattr__(self, "shape", _check_shape(name, self.shape))
        object.__setattr__(self, "scale", _check_scale(name, self.scale))
        if self.row_bytes > MAX_ROW_BYTES:
            raise SchemaError(f"component {name!r}: a row of {self.row_bytes} bytes exceeds {MAX_ROW_BYTES}")

    @property
    def row_bytes(self) -> int:
        """Bytes one entity's row of this component takes on the wire."""
        return self.dtype.itemsize * math.prod(self.shape)

    def describe(self) -> dict[str, Any]:
        """This component's entry in Schema.describe()."""
        out: dict[str, Any] = {"dtype": self.dtype.str, "shape": list(self.shape)}
        if self.scale is not None:
            out["scale"] = self.scale
        return out


@dataclass(frozen=True)
class Schema:
    """The ordered set of networked components of a game.

    ``components`` is kept sorted by name, so that every party iterates them
    in the same order whatever order the description arrived in (msgpack maps
    keep insertion order, but not every client's map type does).
    """

    components: tuple[ComponentSpec, ...]
    _by_name: dict[str, ComponentSpec] = field(init=False, repr=False, compare=False, hash=False)
    # The byte layout of a row of every component side by side, which is how
    # tickroom.protocol.delta compares two worlds: where each component starts, and
    # which components have no bytes at all (they never change; None: none).
    row_starts: np.ndarray = field(init=False, repr=False, compare=False, hash=False)
    hollow: np.ndarray | None = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        specs = tuple(self.components)
        if len(specs) > MAX_COMPONENTS:
            raise SchemaError(f"{len(specs)} components exceed the limit of {MAX_COMPONENTS}")
        for spec in specs:
            if not isinstance(spec, ComponentSpec):
                raise SchemaError(f"not a ComponentSpec: {spec!r}")
        specs = tuple(sorted(specs, key=lambda spec: spec.name))
        by_name = {spec.name: spec for spec in specs}
        if len(by_name) != len(specs):
            raise SchemaError("duplicate component names")
        object.__setattr__(self, "components", specs)
        object.__setattr__(self, "_by_name", by_name)
        sizes = [spec.row_bytes for spec in specs]
        hollow = [k for k, size in enumerate(sizes) if size == 0]
        starts = np.cumsum([0] + sizes[:-1]).astype(np.intp) if sizes else np.zeros(0, dtype=np.intp)
        object.__setattr__(self, "row_starts", starts)
        object.__setattr__(self, "hollow", np.asarray(hollow, dtype=np.intp) if hollow else None)

    @classmethod
    def from_description(cls, desc: Mapping[str, Mapping[str, Any]]) -> Schema:
        """Build a schema from a game's declaration or a welcome message's.

        ``desc`` maps a component name to ``{"dtype": str, "shape": list}``
        plus an optional ``"scale"``; ``"shape"`` may be left out for a scalar.
        Everything is checked, as it may come off the wire. Raises SchemaError.
        """
        if not isinstance(desc, Mapping):
            raise SchemaError(f"schema description must be a map, got {type(desc).__name__}")
        if len(desc) > MAX_COMPONENTS:
            raise SchemaError(f"{len(desc)} components exceed the limit of {MAX_COMPONENTS}")
        specs = []
        for name, entry in desc.items():
            name = _check_name(name)
            if not isinstance(entry, Mapping):
                raise SchemaError(f"component {name!r}: description must be a map, got {type(entry).__name__}")
            unknown = set(entry) - DESCRIPTION_KEYS
            if unknown:
                raise SchemaError(f"component {name!r}: unknown keys {sorted(map(str, unknown))}")
            if "dtype" not in entry:
                raise SchemaError(f"component {name!r}: missing dtype")
            specs.append(ComponentSpec(name, entry["dtype"], entry.get("shape", ()), entry.get("scale")))
        return cls(tuple(specs))

    def describe(self) -> dict[str, dict[str, Any]]:
        """The msgpack-able description sent in the welcome message.

        ``{name: {"dtype": "<i2", "shape": [2], "scale": 32.0}}``; dtypes in
        numpy's canonical form (byte order, kind, item size). It round-trips:
        ``Schema.from_description(s.describe()) == s``.
        """
        return {spec.name: spec.describe() for spec in self.components}

    @property
    def names(self) -> tuple[str, ...]:
        """Component names in schema order."""
        return tuple(self._by_name)

    def __getitem__(self, name: str) -> ComponentSpec:
        """The spec of component ``name``; KeyError when there is none."""
        return self._by_name[name]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._by_name

    def __iter__(self) -> Iterator[ComponentSpec]:
        # No __len__ on purpose: an empty schema must not be falsy.
        return iter(self.components)
