"""Calibration of an uncertainty map against the actual error (SPEC §8).

An uncertainty map is useful if it ranks the pixels as the error does: high where the SR map is
wrong, low where it is right. Its scale is a separate matter (a spread over symmetries is not an
error bar), so the measure is Spearman's rank correlation, which ignores any monotone rescaling.
"""

from __future__ import annotations

import numpy as np

from spinsr_tf.base.errors import UserError


def pixel_error(sr, hr) -> np.ndarray:
    """Per-site error ``|SR − HR|``: the vector distance over the C components.

    ``(N, H, W, C)`` each → ``(N, H, W)`` float64; its square averaged over the sites is the MSE
    of :mod:`spinsr_tf.evaluation.metrics` (SPEC §5).
    """
    a, b = np.asarray(sr, dtype=np.float64), np.asarray(hr, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 4:
        raise UserError(f"sr and hr must have the same shape (N, H, W, C), got {a.shape} and "
                        f"{b.shape}")
    return np.sqrt(np.sum((a - b) ** 2, axis=-1))


def calibration(uncertainty, error) -> float:
    """Spearman rank correlation between predicted uncertainty and actual error, over all pixels.

    Parameters
    ----------
    uncertainty, error : array_like of one shape
        E.g. ``(N, H, W)`` from :func:`spinsr_tf.inference.uncertainty.symmetry_spread` and
        :func:`pixel_error`. Pixels where either is not finite (e.g. NaN) are left out.

    Returns
    -------
    float in [−1, 1]: 1 when the uncertainty orders the pixels exactly as the error does, ≈ 0
    when unrelated; NaN when either is constant over the pixels (no ranking to compare). Ties
    take their average rank (as ``scipy.stats.spearmanr``).
    """
    from scipy.stats import rankdata

    u, e = np.asarray(uncertainty, dtype=np.float64), np.asarray(error, dtype=np.float64)
    if u.shape != e.shape:
        raise UserError(f"uncertainty and error must have the same shape, got {u.shape} and "
                        f"{e.shape}")
    keep = np.isfinite(u) & np.isfinite(e)
    if keep.sum() < 2:
        raise UserError("calibration needs at least two pixels with finite values")
    ru, re = rankdata(u[keep]), rankdata(e[keep])
    ru, re = ru - ru.mean(), re - re.mean()
    denom = np.sqrt(np.sum(ru * ru) * np.sum(re * re))
    return float(np.sum(ru * re) / denom) if denom > 0 else float("nan")


__all__ = ["calibration", "pixel_error"]
