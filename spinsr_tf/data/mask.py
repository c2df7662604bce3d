"""Masks: which cells of an image belong to the magnet.

A finite film, a disc or a film with holes leaves cells of the simulation box or of the field of
view outside the magnet. OVF files store them as zero vectors (some tools as NaN); a micrograph
has a scale bar or a label burnt in. Those cells are not texture: a fit that takes them as
texture estimates a wider PSF (the zero vectors shorten their neighbours as blur would), trains
on edges that do not exist and fills the holes with invented spins.

A mask is a boolean array on the LR grid, shape ``(H, W)``, True on the magnet. It is data of
one image, not a setting of the imaging model: :class:`~spinsr_tf.data.degradation.Degradation`
is a frozen, hashable value shared by every patch and recorded as five numbers, so the mask is
carried beside it (``fit-image`` keeps both in its run) and every operation that needs the two
takes both (:func:`hr_mask`). This module is the one place masks are made, checked and applied:

- :func:`mask_from_values`: zero or non-finite vectors are holes (3 components); every finite
  value is magnet (1 component: a grey level of 0 is a value);
- :func:`mask_from_grey`: what a grey micrograph holds besides its texture: a burnt-in scale
  bar or label, saturated and stuck pixels (found conservatively, with a note of what);
- :func:`read_mask`: a user's mask image (``.npy``, ``.png``, ``.tif``) of 0/1 or 0/255;
- :func:`check_mask`: the right shape and enough magnet to train on;
- :func:`hr_mask`: the HR cells of the magnet's LR pixels, by the degradation's pixel model;
- :func:`fill_holes`: each hole cell takes the value of its nearest magnet cell, so that
  interpolation and convolution near an edge see texture, not zeros;
- :func:`inside`, :func:`largest_rectangle`, :func:`erode`: where estimates may look;
- :func:`mask_record`: the record a run writes (how many cells, and why).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from spinsr_tf.base.errors import UserError

#: File types :func:`read_mask` reads.
MASK_SUFFIXES = (".npy", ".png", ".tif", ".tiff")


def mask_from_values(values) -> np.ndarray:
    """The magnet of an image ``(H, W, C)`` (or maps ``(N, H, W, C)``): True where a cell holds a
    finite, non-zero vector (C = 3) or a finite value (C = 1).

    Returns
    -------
    ndarray of bool, the input's shape without the channel axis.
    """
    x = np.asarray(values)
    if x.ndim < 3:
        raise UserError(f"values must have shape (H, W, C), got {x.shape}")
    finite = np.all(np.isfinite(x), axis=-1)
    if x.shape[-1] == 1:
        return finite
    with np.errstate(invalid="ignore"):
        nonzero = np.any(x != 0, axis=-1)
    return finite & nonzero


#: Fewest pixels of one extreme grey level, within one group (pixels at most two apart), that
#: make a burnt-in label or a saturated patch: a few noise pixels clipped at the dtype's limit
#: are values that happen to reach it, not a region.
GREY_MIN_REGION = 8
#: Most of the image the extreme-level regions may cover (before their 1-pixel border): more
#: is the image's own levels (a two-level domain image at 0 and 255), not a label.
GREY_MAX_FRACTION = 0.25
#: A label or saturation at the image's own extreme (not the dtype's) is taken only as one or
#: two compact groups near the border, together at most this fraction of the image.
GREY_LABEL_FRACTION = 0.05
#: A pixel and its eight neighbours.
_EIGHT = np.ones((3, 3), bool)


def _grey_levels(values, dtype) -> tuple[np.ndarray, tuple | None]:
    """``(H, W)`` float64 grey levels in stored units (integer levels for an integer dtype,
    whose values may come mapped onto [-1, 1] by :func:`~spinsr_tf.data.io.from_intensity`)
    and the dtype's ``(lo, hi)`` (None for a float image)."""
    x = np.asarray(values)
    if x.ndim == 3 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim != 2:
        raise UserError(f"a grey image must have shape (H, W) or (H, W, 1), got {x.shape}")
    dt = np.dtype(x.dtype if dtype is None else dtype)
    if not np.issubdtype(dt, np.integer):
        return x.astype(np.float64), None
    info = np.iinfo(dt)
    lo, hi = int(info.min), int(info.max)
    if np.issubdtype(x.dtype, np.integer):
        return x.astype(np.float64), (lo, hi)
    with np.errstate(invalid="ignore"):   # NaN stays NaN
        return np.rint((x.astype(np.float64) + 1.0) * ((hi - lo) / 2.0) + lo), (lo, hi)


def _groups(level_mask: np.ndarray):
    """Groups of pixels at one level lying at most two pixels apart (text glyphs beside their
    bar join), as a label image over the level's pixels and each group's pixel count."""
    from scipy.ndimage import binary_dilation, label

    labels, n = label(binary_dilation(level_mask, _EIGHT), structure=_EIGHT)
    labels = np.where(level_mask, labels, 0)
    return labels, np.bincount(labels.ravel(), minlength=n + 1)


def _near_border(labels: np.ndarray, index: int, margin: int) -> bool:
    """Whether group ``index`` is compact (at most half the image's side each way) and lies
    within ``margin`` pixels of an image edge: where scale bars and labels are burnt in."""
    rows, cols = np.nonzero(labels == index)
    h, w = labels.shape
    compact = np.ptp(rows) + 1 <= h / 2 and np.ptp(cols) + 1 <= w / 2
    return bool(compact and (rows.min() < margin or cols.min() < margin
                             or rows.max() >= h - margin or cols.max() >= w - margin))


def mask_from_grey(values, dtype=None) -> tuple[np.ndarray, str]:
    """The magnet of a grey micrograph ``(H, W)`` or ``(H, W, 1)``: the cells that are not a
    burnt-in label, saturated, stuck, or NaN, and a note of what was found.

    A grey level of 0 is a value, so nothing is masked for being dark or bright alone. Left out:

    - **regions at an extreme level**: groups of at least :data:`GREY_MIN_REGION` pixels
      (pixels at most two apart) holding exactly the dtype's lowest or highest level (an
      integer image: a scale bar burnt in white or black, or saturation), or the image's own
      minimum or maximum when the dtype's is not reached: there as one or two compact groups
      near the border that hold nearly all pixels of that level (a label in a float image), or,
      in an integer image, as clipping (a camera with fewer bits than its file): the level
      holds four times as many pixels as any of the three next to it, and noise leaves pinholes
      below it inside its patches (a flat domain at its own level is solid). Each region is
      widened by one pixel (antialiased text edges);
    - **stuck pixels**: a single pixel at the dtype's lowest or highest level (a float image:
      its own minimum or maximum; a level at most 1 % of the image holds, not a two-level
      image's) standing beyond all eight neighbours by more than three times
      their own range and a quarter of the image's 1st–99th percentile range (noise or texture
      keeps a pixel near its neighbours; a stuck pixel on a domain wall is not found);
    - **NaN or infinite cells**.

    Regions covering more than :data:`GREY_MAX_FRACTION` of the image are its own levels (a
    two-level domain image) and stay; a clean noisy texture reaches an extreme only in scattered
    single pixels and keeps every cell.

    Parameters
    ----------
    values : array_like, shape (H, W) or (H, W, 1)
        Stored grey levels, or an integer image's levels mapped onto [-1, 1]
        (:func:`~spinsr_tf.data.io.from_intensity`, as :func:`~spinsr_tf.data.io.read_image`
        returns them).
    dtype : dtype, optional
        The stored dtype (default: the values' own): its range gives the extreme levels.

    Returns
    -------
    mask : ndarray of bool, shape (H, W), True on the magnet.
    note : str, what was left out and why (for :func:`mask_record`).
    """
    from scipy.ndimage import binary_closing, binary_dilation, maximum_filter, minimum_filter

    x, limits = _grey_levels(values, dtype)
    h, w = x.shape
    finite = np.isfinite(x)
    mask = finite.copy()
    parts = []
    if (~finite).any():
        parts.append(f"{int((~finite).sum())} NaN cell(s)")
    if finite.sum() < 2:
        return mask, "auto: " + (", ".join(parts) or "none found")
    v = x[finite]
    own = (float(v.min()), float(v.max()))
    p1, p99 = np.percentile(v, [1, 99])
    spread = float(p99 - p1) or float(own[1] - own[0])
    if spread == 0:   # a constant image: nothing stands out
        return mask, "auto: " + (", ".join(parts) or "none found (a constant image)")

    def text(level):
        return f"{int(level)}" if limits is not None else f"{level:g}"

    region = np.zeros((h, w), bool)
    found = []
    levels = [] if limits is None else [(float(limits[0]), "dtype"), (float(limits[1]), "dtype")]
    levels += [(level, "own") for level in own if all(level != l for l, _ in levels)]
    for level, kind in levels:
        at = finite & (x == level)
        if at.sum() < GREY_MIN_REGION:
            continue
        labels, counts = _groups(at)
        big = np.flatnonzero(counts >= GREY_MIN_REGION)
        big = big[big > 0]
        if kind == "own":
            margin = max(2, round(0.1 * min(h, w)))
            inside_big = np.isin(labels, big) & at
            label_like = (0 < big.size <= 2
                          and all(_near_border(labels, i, margin) for i in big)
                          and inside_big.sum() >= 0.95 * at.sum()
                          and inside_big.sum() <= GREY_LABEL_FRACTION * finite.sum())
            # clipping: the tail beyond the limit piles up on it (a noise-free texture nears
            # its extreme level gradually), and noise leaves pinholes below it inside the
            # clipped patches (a flat domain at its level is solid)
            inward = np.sign(np.mean(own) - level) * np.arange(1, 4)
            near = max(int(np.sum(finite & (x == level + k))) for k in inward)
            pinholes = int((binary_closing(at, _EIGHT) & ~at).sum())
            clipped = (limits is not None and at.sum() >= 4 * max(near, 1)
                       and pinholes >= 0.1 * at.sum())
            if not (label_like or clipped):
                continue
        chosen = np.isin(labels, big) & at
        if chosen.any():
            region |= chosen
            found.append(f"{int(chosen.sum())} at {text(level)}")
    if region.sum() > GREY_MAX_FRACTION * finite.sum():
        parts.append(f"no label or saturation ({int(region.sum())} cells at the extreme levels, "
                     f"{region.sum() / finite.sum():.0%} of the image: its own levels)")
        region[:] = False
    if region.any():
        wide = binary_dilation(region, _EIGHT) & finite
        mask &= ~wide
        parts.append(f"{int(wide.sum())} saturated/burnt-in pixel(s) "
                     f"({', '.join(found)}, with a 1-pixel border)")
    # stuck pixels: one pixel at an extreme level that few pixels hold (not a two-level image's
    # level), beyond its neighbours by three times their own range (noise or texture keeps a
    # pixel near them)
    ring = np.ones((3, 3), bool)
    ring[1, 1] = False
    hi_n = maximum_filter(np.where(finite, x, -np.inf), footprint=ring, mode="constant",
                          cval=-np.inf)
    lo_n = minimum_filter(np.where(finite, x, np.inf), footprint=ring, mode="constant",
                          cval=np.inf)
    top, bottom = own[::-1] if limits is None else limits[::-1]
    rare = max(4.0, 0.01 * finite.sum())
    top_ok, bottom_ok = ((np.sum(mask & (x == v)) <= rare) for v in (top, bottom))
    with np.errstate(invalid="ignore"):
        stuck = finite & mask & np.isfinite(hi_n) & np.isfinite(lo_n) & (
            (top_ok & (x == top) & (x - hi_n > np.maximum(3 * (hi_n - lo_n), 0.25 * spread)))
            | (bottom_ok & (x == bottom)
               & (lo_n - x > np.maximum(3 * (hi_n - lo_n), 0.25 * spread))))
    if stuck.any():
        mask &= ~stuck
        parts.append(f"{int(stuck.sum())} stuck pixel(s)")
    if not parts:
        return mask, "auto: none found (no burnt-in label, saturation or stuck pixel)"
    return mask, "auto: " + "; ".join(parts)


def _mask_array(path: Path) -> np.ndarray:
    suffix = path.suffix.lower()
    if suffix not in MASK_SUFFIXES:
        raise UserError(f"mask file {str(path)!r} must be one of {', '.join(MASK_SUFFIXES)}")
    if not path.is_file():
        raise UserError(f"mask file {str(path)!r} does not exist")
    try:
        if suffix == ".npy":
            return np.load(path, allow_pickle=False)
        from PIL import Image

        with Image.open(path) as im:
            return np.asarray(im)
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read mask file {str(path)!r}: {exc}") from None


def read_mask(path, shape) -> np.ndarray:
    """A user's mask image as a boolean ``(H, W)`` array, True on the magnet.

    ``.npy`` (bool or numbers), ``.png`` or ``.tif`` (grey, or RGB with equal channels); the
    values must be 0/1 or 0/255 (0: outside the magnet). ``shape`` is the LR image's ``(H, W)``.

    Raises :class:`UserError` for an unreadable file, another shape, or other values.
    """
    path = Path(path)
    m = _mask_array(path)
    if m.ndim == 3 and m.shape[-1] in (3, 4):
        if m.shape[-1] == 4:
            m = m[..., :3]
        if not (np.array_equal(m[..., 0], m[..., 1]) and np.array_equal(m[..., 0], m[..., 2])):
            raise UserError(f"mask file {str(path)!r} is a colour image; a mask is grey "
                            "(0 outside the magnet, 1 or 255 on it)")
        m = m[..., 0]
    if m.ndim == 3 and m.shape[-1] == 1:
        m = m[..., 0]
    h, w = (int(s) for s in shape[:2])
    if m.shape != (h, w):
        raise UserError(f"mask file {str(path)!r} has shape {m.shape}; the image is {h}x{w} "
                        "(the mask must have the LR image's height and width)")
    if m.dtype == bool:
        return m.copy()
    if not (np.issubdtype(m.dtype, np.integer) or np.issubdtype(m.dtype, np.floating)):
        raise UserError(f"mask file {str(path)!r} holds {m.dtype} values; expected 0/1 or "
                        "0/255")
    found = np.unique(m)
    if not (set(found.tolist()) <= {0, 1} or set(found.tolist()) <= {0, 255}):
        shown = ", ".join(f"{v:g}" for v in found[:5]) + (", ..." if found.size > 5 else "")
        raise UserError(f"mask file {str(path)!r} is not boolean-like: values {shown} "
                        "(expected 0/1 or 0/255)")
    return m != 0


def check_mask(mask, shape, least: int = 1, name: str = "mask") -> np.ndarray:
    """``mask`` as a boolean ``(H, W)`` array of the image's ``shape`` with at least ``least``
    magnet cells (fit-image: one patch's worth), else a :class:`UserError`."""
    m = np.asarray(mask)
    h, w = (int(s) for s in shape[:2])
    if m.shape != (h, w):
        raise UserError(f"{name} has shape {m.shape}; the image is {h}x{w}")
    if m.dtype != bool:
        raise UserError(f"{name} must be boolean, got {m.dtype}")
    count = int(m.sum())
    if count < max(int(least), 1):
        raise UserError(f"{name} leaves {count} of {h * w} cells on the magnet; at least "
                        f"{max(int(least), 1)} are needed" + (" (one patch)" if least > 1 else ""))
    return m


def hr_index(n: int, degradation) -> np.ndarray:
    """For each of the ``n · factor`` HR indices along an axis, the LR pixel whose area it lies
    in: ``i // f`` for camera pixels (``"integrate"``, LR pixel ``k`` averages HR ``k·f …
    k·f + f − 1``), the nearest sample ``round(i / f)`` for point samples (``"sample"``, LR pixel
    ``k`` sits at HR ``k·f``)."""
    f = degradation.factor
    i = np.arange(n * f)
    k = i // f if degradation.pixel == "integrate" else (i + f // 2) // f
    return np.minimum(k, n - 1)


def hr_mask(lr_mask, degradation) -> np.ndarray:
    """The HR cells of the magnet's LR pixels: ``(H, W)`` → ``(H·f, W·f)`` (or with a leading
    map axis), by the pixel model of ``degradation`` (:func:`hr_index`)."""
    m = np.asarray(lr_mask, dtype=bool)
    rows, cols = hr_index(m.shape[-2], degradation), hr_index(m.shape[-1], degradation)
    return m[..., rows, :][..., cols]


def hr_nearest(lr, degradation) -> np.ndarray:
    """LR values ``(..., H, W, C)`` repeated onto the HR grid as :func:`hr_mask` assigns the HR
    cells: what a hole of the result holds (the input's value there)."""
    x = np.asarray(lr)
    rows, cols = hr_index(x.shape[-3], degradation), hr_index(x.shape[-2], degradation)
    return x[..., rows, :, :][..., cols, :]


def fill_holes(values, mask) -> np.ndarray:
    """``values`` ``(H, W, C)`` with each cell outside ``mask`` set to the value of its nearest
    magnet cell (Euclidean distance; :func:`scipy.ndimage.distance_transform_edt`), so that
    interpolation, blur and the network's receptive field near an edge see the texture
    continued, not zeros or NaN. Magnet cells are unchanged."""
    from scipy.ndimage import distance_transform_edt

    x = np.array(values, copy=True)
    m = np.asarray(mask, dtype=bool)
    if m.all():
        return x
    if not m.any():
        raise UserError("the mask leaves no cell on the magnet")
    _, (r, c) = distance_transform_edt(~m, return_indices=True)
    return x[r, c]


def erode(mask, cells: int) -> np.ndarray:
    """The magnet cells at least ``cells + 1`` cells (8-neighbour steps) from any hole; the image
    border is not a hole (a film cut by the field of view continues beyond it)."""
    from scipy.ndimage import binary_erosion

    m = np.asarray(mask, dtype=bool)
    if cells < 1 or m.all():
        return m
    return binary_erosion(m, structure=np.ones((3, 3), bool), iterations=int(cells),
                          border_value=1)


def inside(mask, corners, patch: int) -> np.ndarray:
    """For each patch corner ``(row, column)``, whether its ``patch × patch`` window lies on the
    magnet entirely; ``(N,)`` bool."""
    m = np.asarray(mask, dtype=bool)
    # summed-area table: the magnet cells of every window in O(1)
    s = np.pad(np.cumsum(np.cumsum(m, 0), 1), ((1, 0), (1, 0)))
    r, c = np.asarray(corners, np.int64).reshape(-1, 2).T
    count = s[r + patch, c + patch] - s[r, c + patch] - s[r + patch, c] + s[r, c]
    return count == patch * patch


def largest_rectangle(mask) -> tuple[int, int, int, int]:
    """``(r0, r1, c0, c1)`` of the largest axis-aligned rectangle of magnet cells, ``mask[r0:r1,
    c0:c1]`` all True (by area; the histogram-stack method, O(H·W)). ``(0, 0, 0, 0)`` if none."""
    m = np.asarray(mask, dtype=bool)
    h, w = m.shape
    heights = np.zeros(w + 1, dtype=np.int64)   # a zero sentinel closes every bar
    best, where = 0, (0, 0, 0, 0)
    for row in range(h):
        heights[:w] = np.where(m[row], heights[:w] + 1, 0)
        stack: list[int] = []
        for col in range(w + 1):
            while stack and heights[stack[-1]] >= heights[col]:
                top = stack.pop()
                left = stack[-1] + 1 if stack else 0
                area = int(heights[top]) * (col - left)
                if area > best:
                    best = area
                    where = (row + 1 - int(heights[top]), row + 1, left, col)
            stack.append(col)
    return where


def mask_record(mask, source: str) -> dict:
    """What a run records of its mask: ``source`` (why: found in the values, a file, or none),
    ``masked_cells`` (LR cells outside the magnet) and ``cells`` (all LR cells)."""
    m = None if mask is None else np.asarray(mask, dtype=bool)
    cells = 0 if m is None else int(m.size)
    return {"source": source, "masked_cells": 0 if m is None else int(cells - m.sum()),
            "cells": cells}
