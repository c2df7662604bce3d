"""Gaussian filter downsizing: the degradation that turns an HR spin map into its LR image.

The HR map is padded (periodic wrap for simulations, mirror reflection for images with borders),
convolved with a normalised 2D Gaussian (the point-spread function, PSF) and turned into LR pixels
by one of two pixel models. This NumPy version feeds the data pipeline;
:class:`spinsr_tf.nn.layers.GaussianDownsample` is its Keras twin inside the network, and the
tests hold the two equal to 1e-6.

Pixel models (:data:`PIXEL_MODELS`):

- ``"sample"`` (the paper's): LR pixel ``k`` is the blurred map at HR pixel ``k·f``, a point
  sample (not the block centre ``k·f + (f - 1)/2`` that image ``resize`` uses).
- ``"integrate"`` (a camera): LR pixel ``k`` is the *average* of the blurred map over its
  ``f`` HR pixels ``k·f … k·f + f − 1`` along each axis (a camera pixel collects the light
  falling on its area), so its centre is the block centre ``k·f + (f − 1)/2``. Along one axis
  that is one filter, the Gaussian convolved with a box of ``f`` taps.

Interpolation baselines must place LR samples where the pixel model puts them
(:func:`spinsr_tf.data.interpolation.upsample` with the same ``pixel``).
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from spinsr_tf.base.errors import UserError

#: Padding modes: ``"periodic"`` wraps around (simulated lattices with periodic boundaries);
#: ``"reflect"`` mirrors without repeating the edge pixel (NumPy's and Keras' ``"reflect"``).
PADDING_MODES = ("periodic", "reflect")

#: How an LR pixel is made from the blurred HR map: a point sample at ``k·f`` or the average
#: over its ``f × f`` block (a camera pixel), see the module docstring.
PIXEL_MODELS = ("sample", "integrate")


def _check_kernel_args(kernel_size, sigma) -> None:
    if (not isinstance(kernel_size, numbers.Integral) or isinstance(kernel_size, bool)
            or kernel_size < 1 or kernel_size % 2 == 0):
        raise UserError(f"kernel_size must be an odd integer >= 1, got {kernel_size!r}")
    if (isinstance(sigma, bool) or not isinstance(sigma, numbers.Real)
            or not np.isfinite(sigma) or sigma <= 0):
        raise UserError(f"sigma must be a finite number > 0 (HR pixels), got {sigma!r}")


def _check_factor(factor) -> None:
    if not isinstance(factor, numbers.Integral) or isinstance(factor, bool) or factor < 1:
        raise UserError(f"factor must be an integer >= 1, got {factor!r}")


def _check_padding(padding) -> None:
    if padding not in PADDING_MODES:
        raise UserError(f"padding must be one of {PADDING_MODES}, got {padding!r}")


def _check_pixel(pixel) -> None:
    if pixel not in PIXEL_MODELS:
        raise UserError(f"pixel must be one of {PIXEL_MODELS}, got {pixel!r}")


def check_degradation_args(factor, kernel_size=23, sigma=1.0, padding="periodic",
                           pixel="sample") -> None:
    """Raise :class:`UserError` naming the first bad degradation parameter.

    ``factor``: integer >= 1; ``kernel_size``: odd integer >= 1; ``sigma``: finite > 0;
    ``padding``: one of :data:`PADDING_MODES`; ``pixel``: one of :data:`PIXEL_MODELS`.
    """
    _check_factor(factor)
    _check_kernel_args(kernel_size, sigma)
    _check_padding(padding)
    _check_pixel(pixel)


def kernel_size_for(sigma: float, minimum: int = 23) -> int:
    """The odd Gaussian window that keeps ±4σ (truncation below 1e-4 of the peak), at least
    ``minimum`` taps: 23 for the paper's σ = 1, 41 for σ = 5 HR pixels."""
    _check_kernel_args(1, sigma)
    size = max(int(minimum), 2 * int(math.ceil(4.0 * float(sigma))) + 1)
    return size + 1 - size % 2


def degradation_taps(factor: int, kernel_size: int = 23, sigma: float = 1.0,
                     pixel: str = "sample") -> np.ndarray:
    """The 1D filter of one LR pixel along one axis; tap ``u`` weighs HR pixel
    ``k·factor + u − kernel_size // 2`` of LR pixel ``k``.

    ``"sample"``: the Gaussian itself (``kernel_size`` taps). ``"integrate"``: the Gaussian
    convolved with a box of ``factor`` taps of weight ``1/factor`` (``kernel_size + factor − 1``
    taps), i.e. the mean of the Gaussians centred on ``k·f … k·f + f − 1``. Both sum to 1.
    """
    _check_factor(factor)
    _check_pixel(pixel)
    g = gaussian_kernel_1d(kernel_size, sigma)
    if pixel == "sample":
        return g
    return np.convolve(g, np.full(int(factor), 1.0 / int(factor)))


def gaussian_kernel_1d(size: int = 23, sigma: float = 1.0) -> np.ndarray:
    """Normalised, centred 1D Gaussian ``g`` of length ``size``; ``outer(g, g)`` is the 2D kernel.

    Parameters
    ----------
    size : int
        Odd number of taps; tap ``size // 2`` is the centre.
    sigma : float
        Standard deviation in HR pixels.

    Returns
    -------
    ndarray, shape (size,), float64, summing to 1.
    """
    _check_kernel_args(size, sigma)
    r = np.arange(size, dtype=np.float64) - size // 2
    g = np.exp(-0.5 * (r / float(sigma)) ** 2)
    return g / g.sum()


def gaussian_kernel(size: int = 23, sigma: float = 1.0) -> np.ndarray:
    """Normalised, centred 2D Gaussian filter (the paper: 23×23, σ = 1 HR pixel by default).

    Parameters
    ----------
    size : int
        Odd side length; pixel ``(size // 2, size // 2)`` is the centre.
    sigma : float
        Standard deviation in HR pixels.

    Returns
    -------
    ndarray, shape (size, size), float64, summing to 1. It is the outer product of
    :func:`gaussian_kernel_1d` with itself (the Gaussian is separable).
    """
    g = gaussian_kernel_1d(size, sigma)
    return np.outer(g, g)


def fold_index(i, n, padding: str = "periodic", xp=np):
    """Index into an axis of length ``n`` that the extended index ``i`` is an image of.

    Periodic: ``i mod n``. Reflect: the mirror without repeating the edge sample, a triangle
    wave of period ``2 (n - 1)`` (NumPy's ``"reflect"`` for any reach, also beyond the axis).
    The one fold of the package: ``xp`` is ``numpy`` here and ``keras.ops`` in the layers, so
    the NumPy reference and the network's layers cannot disagree on a boundary.
    """
    if padding == "periodic":
        return xp.mod(i, n)
    period = xp.maximum(2 * (n - 1), 1)
    j = xp.mod(i, period)
    return xp.minimum(j, period - j)


def padded_indices(n: int, before: int, after: int, padding: str = "periodic") -> np.ndarray:
    """Source index of each position of an axis of length ``n`` padded by ``before``/``after``.

    Entry ``i`` is the index into the unpadded axis that padded position ``i`` copies:
    ``(i - before) mod n`` for ``"periodic"``; for ``"reflect"`` the mirror image without
    repeating the edge, i.e. ``np.pad(np.arange(n), (before, after), mode="reflect")``, also
    when the padding is longer than the axis (repeated reflection).

    Returns
    -------
    ndarray, shape (before + n + after,), int64.
    """
    _check_padding(padding)
    return fold_index(np.arange(-before, n + after, dtype=np.int64), n, padding)


def downsample_matrix(n: int, factor: int, kernel_size: int = 23, sigma: float = 1.0,
                      padding: str = "periodic", pixel: str = "sample") -> np.ndarray:
    """The 1D degradation along one axis as a matrix ``D`` with ``lr = D @ hr``.

    ``D[a, i] = Σ_u g[u] [source(a·factor + u) == i]`` with ``g`` the filter of
    :func:`degradation_taps` and ``source`` the padded index map of :func:`padded_indices`
    (padding ``kernel_size // 2`` before, that plus ``factor`` after). So row ``a`` is the
    Gaussian centred on HR pixel ``a·factor`` (``"sample"``) or its mean over the block
    ``a·factor … a·factor + factor − 1`` (``"integrate"``), folded back by the boundary
    condition.

    Returns
    -------
    ndarray, shape (n // factor, n), float64; each row sums to 1.
    """
    _check_factor(factor)
    if n % factor:
        raise UserError(f"axis length {n} is not divisible by factor {factor}")
    g = degradation_taps(factor, kernel_size, sigma, pixel)
    half = kernel_size // 2
    src = padded_indices(n, half, half + factor, padding)
    rows = np.arange(n // factor)
    taps = rows[:, None] * factor + np.arange(g.size)[None, :]
    d = np.zeros((n // factor, n), dtype=np.float64)
    np.add.at(d, (np.broadcast_to(rows[:, None], taps.shape), src[taps]),
              np.broadcast_to(g, taps.shape))
    return d


def gaussian_downsample(x, factor: int, kernel_size: int = 23, sigma: float = 1.0,
                        padding: str = "periodic", chunk: int = 256,
                        pixel: str = "sample") -> np.ndarray:
    """Degrade HR maps by Gaussian filter downsizing.

    ``out[n, a, b, c] = Σ_{u,v} K[u, v] · x[n, s(a·f + u − k//2), s(b·f + v − k//2), c]``
    with ``k = kernel_size``, ``K = gaussian_kernel(k, sigma)``, ``f = factor`` and ``s`` the
    boundary map (``i mod H`` for periodic, mirror for reflect). LR pixel ``a`` is thus centred on HR pixel
    ``a·f`` exactly (no half-block shift). With ``pixel="integrate"`` each LR pixel is instead
    the mean of that over its ``f × f`` block (a camera pixel, centred on ``a·f + (f − 1)/2``).

    Computed as two matrix products with the separable 1D operators of
    :func:`downsample_matrix` (``D_H · x · D_Wᵀ`` per map and channel), in float64 then
    rounded to float32: the cost is BLAS matrix products, not a 23×23 sliding window.

    Parameters
    ----------
    x : array_like, shape (N, H, W, C)
        HR maps, any real dtype; H and W divisible by ``factor``.
    factor : int
        Downsampling factor (stride) >= 1.
    kernel_size : int
        Odd Gaussian window side, HR pixels.
    sigma : float
        Gaussian standard deviation, HR pixels.
    padding : {"periodic", "reflect"}
        Boundary condition.
    chunk : int
        Maps processed per step (bounds the float64 working memory).
    pixel : {"sample", "integrate"}
        Pixel model, see the module docstring.

    Returns
    -------
    ndarray, shape (N, H // factor, W // factor, C), float32.

    Raises
    ------
    UserError
        Wrong rank, sizes not divisible by ``factor``, bad parameters, NaN or Inf in ``x``.
    """
    check_degradation_args(factor, kernel_size, sigma, padding, pixel)
    x = np.asarray(x)
    if x.ndim != 4:
        raise UserError(f"x must have shape (N, H, W, C), got shape {x.shape}")
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise UserError(f"x must hold real numbers, got dtype {x.dtype}")
    n, h, w, c = x.shape
    if h % factor or w % factor:
        raise UserError(f"height {h} and width {w} must both be divisible by factor {factor}")
    if not np.all(np.isfinite(x)):
        raise UserError("x contains NaN or Inf values")
    dh = downsample_matrix(h, factor, kernel_size, sigma, padding, pixel)
    dw = dh if w == h else downsample_matrix(w, factor, kernel_size, sigma, padding, pixel)
    out = np.empty((n, h // factor, w // factor, c), dtype=np.float32)
    for start in range(0, n, max(int(chunk), 1)):
        block = np.asarray(x[start:start + chunk], dtype=np.float64)
        rows = np.einsum("ah,nhwc->nawc", dh, block, optimize=True)
        out[start:start + chunk] = np.einsum("bw,nawc->nabc", dw, rows, optimize=True)
    return out
