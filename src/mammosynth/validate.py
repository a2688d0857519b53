"""One validation layer for values that come from users — phantom parameters, configs, conditions,
manifests, web request bodies: type, finiteness and bounds, each failure one :class:`InputError` naming
the file or flag (``where``) and the field.

Written by hand: the checks are a few lines each, the core library must not need the web app's pydantic,
and every message has to name the field the way the user wrote it (``masses[2].size_mm``).

Example:
    >>> number(2.5, "params.json", "size_mm", lo=0, hi=100)
    2.5
    >>> number(float("nan"), "params.json", "size_mm", lo=0, hi=100)
    Traceback (most recent call last):
    mammosynth.errors.InputError: params.json: size_mm must be a finite number, got nan
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any

from mammosynth.errors import InputError

#: The most images one call of phantom, generate or expand makes (a condition table's counts summed): past
#: it the per-image bookkeeping alone runs to gigabytes; run again with another --seed for more.
MAX_IMAGES_PER_CALL = 1_000_000


def number(
    value: Any,
    where: Any,
    name: str,
    *,
    lo: float | None = None,
    hi: float | None = None,
    integer: bool = False,
    lo_open: bool = False,
) -> float | int:
    """``value`` as a float (an int with ``integer``) within [lo, hi] (``(lo, hi]`` with ``lo_open``).
    Strings, booleans, None, NaN and infinities are refused; so is 2.5 where a whole number is needed."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(where, f"{name} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise InputError(where, f"{name} must be a finite number, got {value}")
    if integer and not value.is_integer():
        raise InputError(where, f"{name} must be a whole number, got {value}")
    low_fails = lo is not None and (value <= lo if lo_open else value < lo)
    if low_fails or (hi is not None and value > hi):
        low = "" if lo is None else f"{'above' if lo_open else 'at least'} {_show(lo)}"
        high = "" if hi is None else f"at most {_show(hi)}"
        raise InputError(where, f"{name} must be {' and '.join(p for p in (low, high) if p)}, got {_show(value)}")
    return int(value) if integer else value


def _show(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:g}"


def choice(value: Any, where: Any, name: str, options: Iterable[str]) -> str:
    """``value`` if it is one of ``options`` (strings), else one line listing them."""
    options = tuple(options)
    if not isinstance(value, str) or value not in options:
        raise InputError(where, f"unknown {name} {value!r}; known: {', '.join(options)}")
    return value


def text(value: Any, where: Any, name: str, max_chars: int = 4096) -> str:
    """A string of at most ``max_chars`` characters, without NUL."""
    if not isinstance(value, str):
        raise InputError(where, f"{name} must be text, got {value!r}")
    if len(value) > max_chars or "\x00" in value:
        raise InputError(where, f"{name} must be at most {max_chars} characters of text without NUL")
    return value


def mapping(value: Any, where: Any, name: str, known: Iterable[str] | None = None) -> dict:
    """A JSON object (dict with string keys); with ``known``, no other keys."""
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise InputError(where, f"{name} must be an object of named fields, got {type(value).__name__}")
    if known is not None:
        unknown = sorted(set(value) - set(known))
        if unknown:
            raise InputError(where, f"unknown key {unknown[0]!r} in {name}; known: {', '.join(known)}")
    return value


def items(value: Any, where: Any, name: str, max_items: int) -> list:
    """A JSON list of at most ``max_items`` entries."""
    if not isinstance(value, list | tuple):
        raise InputError(where, f"{name} must be a list, got {type(value).__name__}")
    if len(value) > max_items:
        raise InputError(where, f"{name} may hold at most {max_items} entries, got {len(value)}")
    return list(value)


def flag(value: Any, name: str, *, lo: float, hi: float, integer: bool = True) -> float | int:
    """A command-line number (``--n``, ``--size`` …) within [lo, hi]; the line names the flag.

    Example:
        >>> flag(0, "--n", lo=1, hi=100)
        Traceback (most recent call last):
        mammosynth.errors.InputError: --n: must be at least 1 and at most 100, got 0
    """
    try:
        return number(value, name, "", lo=lo, hi=hi, integer=integer)
    except InputError as exc:
        raise InputError(name, exc.problem.lstrip()) from None
