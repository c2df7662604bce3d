"""Brute-force references shared by test modules (not tests themselves): the dipolar pair
tensor of two sites of a periodic lattice, minimum-image or summed over images, computed
independently of the library."""

import functools
import itertools

import numpy as np


def _images(d, n):
    """Minimum-image displacements of offset d on a ring of n sites (two when equidistant)."""
    d = d % n
    cands = [d, d - n]
    best = min(abs(c) for c in cands)
    return [c for c in cands if abs(c) == best]


def _pair_tensor(dx, dy, h, w, factor):
    imgs = list(itertools.product(_images(dx, w), _images(dy, h)))
    t = np.zeros((3, 3))
    for x, y in imgs:
        r = np.hypot(x, y)
        u = np.array([x, y, 0.0]) / r
        t += (np.eye(3) - factor * np.outer(u, u)) / r ** 3
    return t / len(imgs)


@functools.lru_cache(maxsize=None)
def periodic_tensor(dx, dy, h, w, factor, radius=400.0):
    """W summed over every image of displacement (dx, dy) within ``radius`` (a disk, unlike the
    library's square of cells), plus the continuum integral of W outside it."""
    nx, ny = int(radius // w) + 2, int(radius // h) + 2
    X = dx + w * np.arange(-nx, nx + 1)[None, :] + 0.0 * np.arange(-ny, ny + 1)[:, None]
    Y = dy + h * np.arange(-ny, ny + 1)[:, None] + 0.0 * np.arange(-nx, nx + 1)[None, :]
    r2 = X * X + Y * Y
    keep = (r2 > 0) & (r2 <= radius ** 2)
    x, y, r = X[keep], Y[keep], np.sqrt(r2[keep])
    t = np.zeros((3, 3))
    t[0, 0] = np.sum((1 - factor * x * x / r ** 2) / r ** 3)
    t[1, 1] = np.sum((1 - factor * y * y / r ** 2) / r ** 3)
    t[0, 1] = t[1, 0] = np.sum(-factor * x * y / r ** 5)
    t[2, 2] = np.sum(1 / r ** 3)
    t += np.diag([1 - factor / 2, 1 - factor / 2, 1.0]) * 2 * np.pi / (radius * h * w)
    return t


def pair_tensor(dx, dy, h, w, factor, images):
    if images == "minimum":
        return _pair_tensor(dx, dy, h, w, factor) if (dx, dy) != (0, 0) else np.zeros((3, 3))
    return periodic_tensor(dx % w, dy % h, h, w, factor)
