"""The shared argument checks (spinsr_tf.base.checks): what passes, what is refused, and the one
line that says why."""

import fractions
import math

import numpy as np
import pytest

from spinsr_tf.base.checks import check_int, check_real, is_int, is_real
from spinsr_tf.base.errors import UserError


def test_type_predicates_take_numpy_numbers_and_refuse_bools():
    for value in (0, -3, np.int64(5), np.uint8(2)):
        assert is_int(value) and is_real(value)
    for value in (1.5, np.float32(0.5), math.inf, math.nan, fractions.Fraction(1, 3)):
        assert is_real(value) and not is_int(value)
    for value in (True, np.bool_(False), "1", None, (1, 2), 1j):
        assert not is_int(value) and not is_real(value)


@pytest.mark.parametrize("kwargs,good,bad,message", [
    ({}, [-7, 0, np.int32(9)], [1.0, True, "3"], "n must be an integer, got"),
    ({"minimum": 1}, [1, 2], [0, -1], "n must be an integer >= 1, got"),
    ({"maximum": 50}, [-1, 50], [51], "n must be an integer <= 50, got"),
    ({"minimum": 1, "maximum": 8}, [1, 8], [0, 9], r"n must be an integer in \[1, 8\], got"),
    ({"minimum": 1, "parity": "odd"}, [1, 23], [0, 22, -1], "n must be an odd integer >= 1, got"),
    ({"minimum": 4, "parity": "even"}, [4, 64], [2, 5, 9], "n must be an even integer >= 4, got"),
])
def test_check_int_bounds_and_parity(kwargs, good, bad, message):
    for value in good:
        out = check_int("n", value, **kwargs)
        assert out == value and type(out) is int
    for value in bad + [True]:
        with pytest.raises(UserError, match=message) as info:
            check_int("n", value, **kwargs)
        assert repr(value) in str(info.value) and "\n" not in str(info.value)


def test_check_int_agrees_with_its_definition_on_a_grid():
    """Brute force: every value from -6 to 12 against every bound pair and parity."""
    for lo in (None, -2, 0, 3):
        for hi in (None, 0, 5, 9):
            for parity in (None, "odd", "even"):
                for v in range(-6, 13):
                    want = ((lo is None or v >= lo) and (hi is None or v <= hi)
                            and (parity is None or v % 2 == (parity == "odd")))
                    try:
                        check_int("n", v, lo, hi, parity)
                        got = True
                    except UserError:
                        got = False
                    assert got == want, (v, lo, hi, parity)
    with pytest.raises(ValueError):
        check_int("n", 3, parity="prime")


@pytest.mark.parametrize("kwargs,good,bad,bound", [
    ({}, [-1e300, 0, 2.5, np.float32(3)], [], ""),
    ({"minimum": 0}, [0, 0.5], [-1e-9], " >= 0"),
    ({"minimum": 0, "strict": True}, [1e-9], [0, -1], " > 0"),
    ({"below": 50}, [-3, 49.9], [50, 51], " < 50"),
    ({"maximum": 1}, [1, -3], [1.0001], " <= 1"),
    ({"minimum": 0, "below": 50}, [0, 49.9], [-0.1, 50], " in [0, 50)"),
    ({"minimum": 0, "strict": True, "below": 1}, [0.5], [0, 1], " in (0, 1)"),
    ({"minimum": 0, "strict": True, "maximum": 1}, [1, 0.25], [0, 1.5], " in (0, 1]"),
    ({"minimum": 1, "maximum": 2}, [1, 2], [0.99, 2.01], " in [1, 2]"),
])
def test_check_real_bounds(kwargs, good, bad, bound):
    for value in good:
        out = check_real("x", value, **kwargs)
        assert out == float(value) and type(out) is float
    for value in bad + [math.nan, math.inf, -math.inf, True, "1", None]:
        with pytest.raises(UserError) as info:
            check_real("x", value, **kwargs)
        assert str(info.value) == f"x must be a finite number{bound}, got {value!r}"


def test_check_real_says_the_unit_and_takes_one_upper_bound():
    with pytest.raises(UserError) as info:
        check_real("sigma", 0, 0, strict=True, unit="HR pixels")
    assert str(info.value) == "sigma must be a finite number > 0 (HR pixels), got 0"
    with pytest.raises(ValueError):
        check_real("x", 0.5, below=1, maximum=1)
