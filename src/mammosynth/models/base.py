"""Serialisable configs: dataclasses that load from JSON/YAML dicts strictly (unknown keys are errors)."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Self

from mammosynth import validate as check
from mammosynth.errors import InputError


@dataclasses.dataclass
class Config:
    """Base for model and training configs.

    Example:
        >>> @dataclasses.dataclass
        ... class Toy(Config):
        ...     width: int = 8
        >>> Toy.from_dict({"width": 16}).width
        16
        >>> Toy.from_dict({"widht": 16})
        Traceback (most recent call last):
        mammosynth.errors.InputError: config: unknown key 'widht'; known: width
    """

    @classmethod
    def from_dict(cls, data: dict | None, where: str = "config", prefix: str = "") -> Self:
        data = dict(data or {})
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise InputError(where, f"unknown key {prefix + unknown[0]!r}; known: {', '.join(fields)}")
        hints = typing.get_type_hints(cls)
        values = {}
        for name, value in data.items():
            values[name] = _coerce(value, hints[name], where, prefix + name)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


def _coerce(value: Any, hint: Any, where: str, key: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        if value is None and type(None) in args:
            return None
        hint = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    try:
        if origin is tuple:
            if not isinstance(value, list | tuple):
                raise TypeError
            return tuple(_coerce(v, args[0], where, key) for v in value)
        if hint is bool:
            if not isinstance(value, bool):
                raise TypeError
            return value
        if hint in (int, float):
            if isinstance(value, str):  # YAML reads 1e-4 (no dot) as text
                value = float(value)
            return check.number(value, where, key, integer=hint is int)
        if hint is str:
            if not isinstance(value, str):
                raise TypeError
            return value
    except (TypeError, ValueError):
        name = getattr(hint, "__name__", str(hint))
        raise InputError(where, f"{key} must be {name}, got {value!r}") from None
    return value
