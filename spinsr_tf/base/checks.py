"""Argument checks shared by every layer: one line naming the argument and the value.

Each returns the value in its plain Python type, so a caller writes ``n = check_int("n", n, 1)``.
Booleans are refused where numbers are asked for (``True`` is an ``int`` to Python, never a
count to a user).
"""

from __future__ import annotations

import math
import numbers

from spinsr_tf.base.errors import UserError


def check_int(name: str, value, minimum: int | None = None) -> int:
    """An integer (not a bool) ``>= minimum``."""
    if (isinstance(value, bool) or not isinstance(value, numbers.Integral)
            or (minimum is not None and value < minimum)):
        bound = "" if minimum is None else f" >= {minimum}"
        raise UserError(f"{name} must be an integer{bound}, got {value!r}")
    return int(value)


def check_real(name: str, value, minimum: float | None = None, strict: bool = False,
               below: float | None = None) -> float:
    """A finite real number (not a bool), ``>= minimum`` (``> minimum`` with ``strict``) and
    ``< below``."""
    bad = (isinstance(value, bool) or not isinstance(value, numbers.Real)
           or not math.isfinite(value))
    if not bad and minimum is not None:
        bad = value <= minimum if strict else value < minimum
    if not bad and below is not None:
        bad = value >= below
    if bad:
        bound = "" if minimum is None else f" {'>' if strict else '>='} {minimum:g}"
        if below is not None:
            bound = (f" < {below:g}" if minimum is None else
                     f" in {'(' if strict else '['}{minimum:g}, {below:g})")
        raise UserError(f"{name} must be a finite number{bound}, got {value!r}")
    return float(value)


def check_choice(name: str, value, choices):
    """One of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise UserError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def check_bool(name: str, value) -> bool:
    """``True`` or ``False`` (NumPy's bool too)."""
    if not isinstance(value, bool) and type(value).__name__ != "bool_":
        raise UserError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_maps(name: str, value, dtype="float32"):
    """A finite ``(N, H, W, C)`` NumPy array of ``dtype`` with no empty axis."""
    import numpy as np

    try:
        x = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise UserError(f"{name} must be a numeric array ({exc})") from None
    if x.ndim != 4 or 0 in x.shape:
        raise UserError(f"{name} must have shape (N, H, W, C) with no empty axis, got {x.shape}")
    if not np.isfinite(x).all():
        raise UserError(f"{name} contains {int(np.count_nonzero(~np.isfinite(x)))} NaN or "
                        f"infinite value(s)")
    return x


def describe_mismatch(stored: dict, new: dict, ignore=(), word: str = "now") -> str:
    """The first differing keys of two flat dicts, as ``key=old (now new)``; "" if equal.

    What a resume that is refused says: the run or data file holds ``stored``, the call asks
    for ``new``.
    """
    keys = sorted(k for k in set(stored) | set(new)
                  if k not in ignore and stored.get(k) != new.get(k))

    def short(value):
        text = repr(value)
        return text if len(text) <= 60 else text[:57] + "..."

    return ", ".join(f"{k}={short(stored.get(k))} ({word} {short(new.get(k))})" for k in keys[:4])
