"""Argument checks shared by every layer: one line naming the argument and the value.

Each returns the value in its plain Python type, so a caller writes ``n = check_int("n", n, 1)``.
Booleans are refused where numbers are asked for (``True`` is an ``int`` to Python, never a
count to a user).
"""

from __future__ import annotations

import math
import numbers

from spinsr_tf.base.errors import UserError


def is_int(value) -> bool:
    """Whether ``value`` is an integer (NumPy's too), not a bool: the test of an argument that
    may also be something else (a pair, a name)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value) -> bool:
    """Whether ``value`` is a real number (NumPy's too, infinite and NaN included), not a
    bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _interval(minimum, maximum, low_open: bool, high_open: bool, fmt) -> str:
    """`` >= a``, `` < b``, `` in [a, b)``, ... for a message; "" without bounds."""
    if minimum is None and maximum is None:
        return ""
    if maximum is None:
        return f" {'>' if low_open else '>='} {fmt(minimum)}"
    if minimum is None:
        return f" {'<' if high_open else '<='} {fmt(maximum)}"
    return (f" in {'(' if low_open else '['}{fmt(minimum)}, {fmt(maximum)}"
            f"{')' if high_open else ']'}")


def check_int(name: str, value, minimum: int | None = None, maximum: int | None = None,
              parity: str | None = None) -> int:
    """An integer (not a bool) in ``[minimum, maximum]``; ``parity`` "odd" or "even" (a kernel
    with a centre tap, a checkerboard) narrows it further."""
    if parity not in (None, "odd", "even"):
        raise ValueError(f"parity must be None, 'odd' or 'even', got {parity!r}")
    bad = (not is_int(value) or (minimum is not None and value < minimum)
           or (maximum is not None and value > maximum)
           or (parity is not None and value % 2 != (parity == "odd")))
    if bad:
        kind = f"an {parity} integer" if parity else "an integer"
        bound = _interval(minimum, maximum, False, False, str)
        raise UserError(f"{name} must be {kind}{bound}, got {value!r}")
    return int(value)


def check_real(name: str, value, minimum: float | None = None, strict: bool = False,
               below: float | None = None, maximum: float | None = None,
               unit: str | None = None) -> float:
    """A finite real number (not a bool), ``>= minimum`` (``> minimum`` with ``strict``) and
    ``< below`` or ``<= maximum`` (give one of the two); ``unit`` (e.g. "HR pixels") is said
    after the bound."""
    if below is not None and maximum is not None:
        raise ValueError("give below or maximum, not both")
    bad = not is_real(value) or not math.isfinite(value)
    if not bad and minimum is not None:
        bad = value <= minimum if strict else value < minimum
    if not bad and below is not None:
        bad = value >= below
    if not bad and maximum is not None:
        bad = value > maximum
    if bad:
        bound = _interval(minimum, maximum if below is None else below, strict,
                          below is not None, lambda v: f"{v:g}")
        unit = f" ({unit})" if unit else ""
        raise UserError(f"{name} must be a finite number{bound}{unit}, got {value!r}")
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
