"""Image-quality metrics of a super-resolved spin map against its ground truth.

All metrics are computed on the HR grid, per image, over arrays of shape ``(N, H, W, C)``
(C = 3 for spin vectors, C = 1 for scalar contrast); each returns a float64 array of shape
``(N,)`` so that an evaluation can report the mean and the spread over the test set:

- MSE  = mean over sites of ``|S - S'|²`` (squares summed over the C components, then averaged
  over the H·W sites, not over the components: two opposite unit vectors give 4);
- PSNR = ``10 log10(MAX² / MSE)`` in dB with ``MAX = 2``, the largest possible distance between
  two unit vectors (opposite unit vectors give 0 dB, identical maps +inf);
- Corr = mean over sites of ``S · S'`` (1 for identical unit-vector maps, 0 for unrelated ones,
  -1 for reversed ones).

Each takes an optional ``mask`` (``(H, W)`` or ``(N, H, W)`` bool, True on the magnet,
:mod:`spinsr_tf.data.mask`): the means are then over the magnet's sites only, so that holes a
result keeps as holes neither help nor hurt its score.
"""

from __future__ import annotations

import numpy as np

from spinsr_tf.base.errors import UserError

__all__ = ["mse", "psnr", "corr", "summarize", "score"]


def _as_pair(pred, truth) -> tuple[np.ndarray, np.ndarray]:
    """Both maps as float64 ``(N, H, W, C)`` arrays, or a ``UserError`` naming what is wrong."""
    try:
        p = np.asarray(pred, dtype=np.float64)
        t = np.asarray(truth, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise UserError(f"pred and truth must be numeric arrays ({exc})") from None
    if p.ndim != 4 or p.shape != t.shape:
        raise UserError(
            f"pred and truth must both have shape (N, H, W, C) and be equal; "
            f"got pred {p.shape} and truth {t.shape}"
        )
    if p.size == 0:
        raise UserError(f"pred and truth must not be empty; got shape {p.shape}")
    for name, a in (("pred", p), ("truth", t)):
        if not np.isfinite(a).all():
            bad = int(np.count_nonzero(~np.isfinite(a)))
            raise UserError(f"{name} contains {bad} NaN or infinite value(s)")
    return p, t


def _site_mean(values: np.ndarray, mask) -> np.ndarray:
    """Per-image mean of ``(N, H, W)`` site values, over the sites of ``mask`` (None: all)."""
    if mask is None:
        return values.mean(axis=(1, 2))
    m = np.asarray(mask)
    if m.dtype != bool:
        raise UserError(f"mask must be boolean (True on the magnet), got {m.dtype}")
    if m.shape not in (values.shape[1:], values.shape):
        raise UserError(f"mask must have shape (H, W) {values.shape[1:]} or (N, H, W) "
                        f"{values.shape}; got {m.shape}")
    m = np.broadcast_to(m, values.shape)
    count = m.sum(axis=(1, 2))
    if np.any(count == 0):
        raise UserError(f"mask leaves no site in image(s) {np.flatnonzero(count == 0).tolist()}")
    return np.where(m, values, 0.0).sum(axis=(1, 2)) / count


def mse(pred, truth, mask=None) -> np.ndarray:
    """Per-image mean squared distance between spin maps.

    Parameters
    ----------
    pred, truth : array_like, shape (N, H, W, C)
        Prediction and ground truth on the same grid (any real dtype; computed in float64).
    mask : array_like of bool, shape (H, W) or (N, H, W), optional
        The sites to average over (True on the magnet); default all.

    Returns
    -------
    numpy.ndarray, shape (N,), float64
        ``mean_sites( sum_c (pred - truth)² )``; 0 for identical maps, 4 for reversed unit
        vectors.
    """
    p, t = _as_pair(pred, truth)
    return _site_mean(np.square(p - t).sum(axis=-1), mask)


def psnr(pred, truth, max_value: float = 2.0, mask=None) -> np.ndarray:
    """Per-image peak signal-to-noise ratio in dB.

    Parameters
    ----------
    pred, truth : array_like, shape (N, H, W, C)
    max_value : float
        ``MAX`` in ``10 log10(MAX² / MSE)``; 2 is the diameter of the unit sphere, so reversed
        unit vectors score 0 dB.
    mask : array_like of bool, shape (H, W) or (N, H, W), optional
        The sites of the MSE (:func:`mse`).

    Returns
    -------
    numpy.ndarray, shape (N,), float64
        +inf where the MSE is exactly 0.
    """
    real = (int, float, np.integer, np.floating)
    if isinstance(max_value, bool) or not isinstance(max_value, real) \
            or not np.isfinite(max_value) or max_value <= 0:
        raise UserError(f"max_value must be a positive finite number; got {max_value!r}")
    err = mse(pred, truth, mask)
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(float(max_value) ** 2 / err)


def corr(pred, truth, mask=None) -> np.ndarray:
    """Per-image mean site-wise dot product ``mean_sites(S · S')``.

    Parameters
    ----------
    pred, truth : array_like, shape (N, H, W, C)
    mask : array_like of bool, shape (H, W) or (N, H, W), optional
        The sites to average over (True on the magnet); default all.

    Returns
    -------
    numpy.ndarray, shape (N,), float64
        1 for identical unit-vector maps, 0 for unrelated ones, -1 for reversed ones. It is not
        normalized by the vector lengths, so an interpolation that shrinks vectors scores below 1
        even where the directions are right.
    """
    p, t = _as_pair(pred, truth)
    return _site_mean((p * t).sum(axis=-1), mask)


def summarize(values) -> dict[str, float]:
    """Mean and population standard deviation (ddof = 0) of per-image values.

    Parameters
    ----------
    values : array_like, shape (N,)
        Per-image metric values, e.g. the output of :func:`psnr`.

    Returns
    -------
    dict
        ``{"mean": float, "std": float}``. Infinite values (a PSNR of a perfect image) make the
        mean +inf; the std is then 0 if all values are equal and NaN otherwise.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or v.size == 0:
        raise UserError(f"values must be a non-empty 1-D array; got shape {v.shape}")
    if np.isnan(v).any():
        raise UserError(f"values contains {int(np.isnan(v).sum())} NaN value(s)")
    if np.isfinite(v).all():
        return {"mean": float(v.mean()), "std": float(v.std())}
    same = bool((v == v[0]).all())
    return {"mean": float(v.mean()), "std": 0.0 if same else float("nan")}


def score(pred, truth, max_value: float = 2.0, mask=None) -> dict[str, float]:
    """All three metrics, as mean and spread over the images: the evaluation's table row.

    Parameters
    ----------
    pred, truth : array_like, shape (N, H, W, C)
    max_value : float
        Passed to :func:`psnr`.
    mask : array_like of bool, shape (H, W) or (N, H, W), optional
        Score the magnet's sites only (:func:`mse`).

    Returns
    -------
    dict
        ``{"mse", "psnr", "corr", "mse_std", "psnr_std", "corr_std"}`` as Python floats: the mean
        over the N images of each per-image metric and its population standard deviation (see
        :func:`summarize` for infinite PSNR).
    """
    p, t = _as_pair(pred, truth)
    per_image = {
        "mse": mse(p, t, mask),
        "psnr": psnr(p, t, max_value=max_value, mask=mask),
        "corr": corr(p, t, mask),
    }
    out: dict[str, float] = {}
    stats = {name: summarize(v) for name, v in per_image.items()}
    for name in per_image:
        out[name] = stats[name]["mean"]
    for name in per_image:
        out[f"{name}_std"] = stats[name]["std"]
    return out
