"""Counter-seeded random streams for the annealing kernels.

Why not ``np.random``: a sample must come out bit for bit the same whatever other samples share
its call, in whichever order, on however many threads. So every sample owns its generators,
seeded from ``(seed, index)`` alone by SplitMix64, and the kernels never touch global state.

The Metropolis kernels update the ``L/2`` sites of one sublattice row at once (the loop is
vectorised), so each sample holds ``L/2`` independent xoshiro128+ generators, one per column lane;
lane ``m`` draws the numbers of the sites in column lane ``m``, row after row. xoshiro128+ needs
only 32-bit adds, shifts and xors, which the compiler turns into SIMD instructions; only the top
24 bits of each output are used (its weak low bits never are).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from spinsr_tf.base.errors import UserError

_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15


def splitmix64(x: int) -> int:
    """SplitMix64 finaliser of a 64-bit integer (a bijection with good avalanche); Python ints."""
    x = (x + _GOLDEN) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def sample_key(seed: int, index: int) -> int:
    """64-bit key of sample ``index`` under global ``seed``: all its random numbers derive from it."""
    if not 0 <= seed <= _MASK64:
        raise UserError(f"seed must be an integer in [0, 2**64), got {seed!r}")
    if not 0 <= index <= _MASK64:
        raise UserError(f"sample index must be an integer in [0, 2**64), got {index!r}")
    return splitmix64(splitmix64(seed) ^ index)


def lane_states(key: int, lanes: int) -> np.ndarray:
    """xoshiro128+ states of ``lanes`` generators, shape ``(4, lanes)`` uint32, from one key.

    Lane ``m`` takes outputs ``2m`` and ``2m+1`` of the SplitMix64 stream started at ``key``.
    """
    words = np.empty((lanes, 4), dtype=np.uint32)
    for m in range(lanes):
        a = splitmix64((key + (2 * m) * _GOLDEN) & _MASK64)
        b = splitmix64((key + (2 * m + 1) * _GOLDEN) & _MASK64)
        w = [a & 0xFFFFFFFF, a >> 32, b & 0xFFFFFFFF, b >> 32]
        if not any(w):
            w[0] = 1
        words[m] = w
    return np.ascontiguousarray(words.T)


@nb.njit(inline="always")
def xoshiro_next(s0, s1, s2, s3):
    """One xoshiro128+ step: returns ``(output, s0, s1, s2, s3)``, all uint32."""
    r = np.uint32(s0 + s3)
    t = np.uint32(s1 << np.uint32(9))
    s2 = np.uint32(s2 ^ s0)
    s3 = np.uint32(s3 ^ s1)
    s1 = np.uint32(s1 ^ s2)
    s0 = np.uint32(s0 ^ s3)
    s2 = np.uint32(s2 ^ t)
    s3 = np.uint32((s3 << np.uint32(11)) | (s3 >> np.uint32(21)))
    return r, s0, s1, s2, s3


@nb.njit(inline="always")
def to_unit_float(r):
    """Top 24 bits of a uint32 as a float32 in [0, 1) (exact: every value is a multiple of 2**-24)."""
    return np.float32(np.int32(r >> np.uint32(8))) * np.float32(5.9604644775390625e-08)
