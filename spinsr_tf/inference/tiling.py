"""Patches to train on and tiles to infer with: one large image through a fully convolutional
network, the same result as in one piece."""

from __future__ import annotations

import math

import numpy as np

from spinsr_tf.base.checks import check_int
from spinsr_tf.base.errors import UserError

#: Smallest LR patch side: the network's 1-pixel mirror padding needs >= 2, and the
#: expanding part's receptive field (radius 4) should fit in the patch.
MIN_PATCH = 4
#: LR pixels on either side of an output pixel that can change it: the residual skip path
#: (AlignedUpsample keeps cubic-spline taps up to 16 LR pixels away) reaches further than
#: the convolutions (4 + log2(scale) + 1 pixels). Tiles are cropped by this margin.
SKIP_REACH = 16


#: Smallest LR image side fit-image takes: a scalar image of 4x4 still goes through every
#: step (its result as good as bicubic), but the PSF estimate of a three-component image needs
#: 8 a side (:func:`~spinsr_tf.data.noise.estimation_image`), and on 8x8 it is within the
#: ±20 % it has on 64x64 (x4, σ 2 and 4 HR px, noise 0.05). Below 16 a side the noise is not
#: estimated (:data:`~spinsr_tf.inference.optics.NOISE_MIN_SIDE`).
MIN_IMAGE = 8


def fit_patch(shape, patch: int, stride: int) -> tuple[int, int, str | None]:
    """The training patch side and stride for an ``(h, w)`` image: as asked if the patch fits,
    else the largest power of two that fits (at least :data:`MIN_PATCH`), the stride scaled by
    the same ratio (at least 1). Returns ``(patch, stride, note)``, ``note`` None or one line
    that says what was reduced."""
    h, w = (int(n) for n in shape[:2])
    if min(h, w) < MIN_PATCH:
        raise UserError(f"image is {h}x{w} pixels, smaller than the smallest patch "
                        f"({MIN_PATCH}x{MIN_PATCH})")
    if patch <= min(h, w):
        return patch, stride, None
    new = max(MIN_PATCH, 1 << (min(h, w).bit_length() - 1))
    new_stride = max(1, round(stride * new / patch))
    return new, new_stride, (f"patch {new} ({patch} does not fit), stride {new_stride} "
                             f"(was {stride})")


def receptive_margin(scale: int) -> int:
    """LR pixels by which tiles overlap on each side so that tiled inference equals one-shot.

    ``max(SKIP_REACH, 4 + log2(scale) + 1)``: four 3×3 convolutions at LR resolution, one per
    up-sampling block (each at most one LR pixel), the last convolution, and the 16-pixel
    reach of the aligned bicubic skip path.
    """
    return max(SKIP_REACH, 4 + int(math.log2(scale)) + 1)


def patch_starts(n: int, patch: int, stride: int) -> np.ndarray:
    """First index of each patch along an axis of length ``n``: ``0, stride, 2·stride, ...``
    and, if that leaves the end uncovered, ``n − patch``; every index is covered."""
    if patch > n:
        raise UserError(f"patch {patch} is larger than the image side {n}")
    starts = list(range(0, n - patch + 1, stride))
    if starts[-1] + patch < n:
        starts.append(n - patch)
    return np.asarray(starts, dtype=np.int64)


def extract_patches(image, patch: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """All ``patch × patch`` windows of an ``(H, W, C)`` image on the :func:`patch_starts` grid.

    Returns
    -------
    patches : ndarray, shape (N, patch, patch, C), float32, row-major order
    corners : ndarray, shape (N, 2), int64: (row, column) of each patch's first pixel
    """
    x = np.asarray(image, dtype=np.float32)
    rows = patch_starts(x.shape[0], patch, stride)
    cols = patch_starts(x.shape[1], patch, stride)
    corners = np.array([(r, c) for r in rows for c in cols], dtype=np.int64)
    patches = np.stack([x[r:r + patch, c:c + patch] for r, c in corners])
    return patches, corners


def tile_windows(n: int, tile: int, margin: int) -> list[tuple[int, int, int, int]]:
    """Split an axis into cores of ``tile`` pixels, each inside a window of equal length.

    Every window has length ``min(n, tile + 2·margin)`` and contains its core plus ``margin``
    pixels on each side, except where the image ends (the window is shifted inwards), so all
    tiles have one shape.

    Returns
    -------
    list of ``(core_start, core_stop, window_start, window_stop)``.
    """
    size = min(n, tile + 2 * margin)
    out = []
    for start in range(0, n, tile):
        stop = min(start + tile, n)
        w0 = min(max(start - margin, 0), n - size)
        out.append((start, stop, w0, w0 + size))
    return out


def super_resolve(model, lr, tile: int | None = 128, margin: int | None = None,
                  batch_size: int = 4) -> np.ndarray:
    """Run a trained SR network over a whole ``(H, W, C)`` LR image, tile by tile.

    Each tile is a window of ``tile + 2·margin`` LR pixels; only its central ``tile × tile``
    core (times the scale) is kept. With ``margin >= receptive_margin(scale)`` no kept pixel
    depends on the window's edge, so the result equals running the network on the whole image
    at once (to float rounding), at a memory cost bounded by the tile size. All windows have
    one shape (:func:`tile_windows`), so the network is traced once.

    Parameters
    ----------
    model : keras.Model
        A spinsr model (:func:`~spinsr_tf.nn.network.build_sr_model`, ``load_sr_model``).
    lr : array_like, shape (H, W, C), float32
    tile : int or None
        Core side in LR pixels; None: the whole image in one call.
    margin : int, optional
        Default :func:`receptive_margin`.
    batch_size : int
        Tiles per forward pass.

    Returns
    -------
    ndarray, shape (H·scale, W·scale, C), float32.
    """
    from spinsr_tf.nn.export import serving_model
    from spinsr_tf.nn.network import LR_OUTPUT

    f = int(model.get_layer(LR_OUTPUT).factor)
    sr_model = serving_model(model)
    x = np.asarray(lr, dtype=np.float32)
    if x.ndim != 3:
        raise UserError(f"lr must have shape (H, W, C), got {x.shape}")
    h, w, c = x.shape
    if tile is None:
        return np.asarray(sr_model(x[None], training=False), dtype=np.float32)[0]
    tile = check_int("tile", tile, 1)
    margin = receptive_margin(f) if margin is None else check_int("margin", margin, 0)
    batch_size = check_int("batch_size", batch_size, 1)
    jobs = [(r, q) for r in tile_windows(h, tile, margin) for q in tile_windows(w, tile, margin)]
    out = np.empty((h * f, w * f, c), dtype=np.float32)
    # Tracing a graph costs ~2 s, an eager call ~0.2 s more per batch than a traced one: few
    # batches run eagerly; many run traced, padded to one batch shape so it is traced once.
    traced = len(jobs) > 8 * batch_size
    for start in range(0, len(jobs), batch_size):
        chunk = jobs[start:start + batch_size]
        batch = np.stack([x[r[2]:r[3], q[2]:q[3]] for r, q in chunk])
        if traced:
            full = np.zeros((batch_size, *batch.shape[1:]), np.float32)
            full[:len(batch)] = batch
            pred = np.asarray(sr_model.predict_on_batch(full))
        else:
            pred = np.asarray(sr_model(batch, training=False))
        for k, (r, q) in enumerate(chunk):
            out[r[0] * f:r[1] * f, q[0] * f:q[1] * f] = pred[
                k, (r[0] - r[2]) * f:(r[1] - r[2]) * f, (q[0] - q[2]) * f:(q[1] - q[2]) * f]
    return out
