"""Aligned interpolation: up-sample an LR spin map back to the HR grid without learning.

The same matrices serve the network (its residual skip, :class:`~spinsr_tf.nn.layers.AlignedUpsample`)
and the evaluation baselines (:mod:`spinsr_tf.evaluation.baselines`).

Every method here is linear and separable, so one up-sampling is two small matrices,
``out = M_y · lr · M_xᵀ`` per image and component, with ``M`` of shape ``(h·f, h)`` built once
per (size, factor, settings) and cached. This keeps the spline results identical to
``scipy.ndimage.map_coordinates`` while handling a whole ``(N, h, w, C)`` batch in two matrix
products.

Where each LR sample sits on the HR grid is the point of this module:

- ``convention="aligned"``: LR pixel ``k`` sits where the degradation
  (:func:`spinsr_tf.data.degradation.gaussian_downsample`) with the same ``pixel`` model put it.
  Point samples (``pixel="sample"``, the paper's): at HR position ``k·f``, where the Gaussian
  was centred; HR pixel ``x`` is evaluated at LR coordinate ``x / f``. Camera pixels
  (``pixel="integrate"``): at the block centre ``k·f + (f − 1)/2``; HR pixel ``x`` is evaluated
  at ``(x + 0.5) / f − 0.5``. This is the fair baseline.
- ``convention="resize"``: LR pixel ``k`` sits at the block centre ``(k + 0.5)·f - 0.5``, as in
  image ``resize`` functions, whatever the pixel model. Against point-sampled data this is
  misaligned by ``(f - 1) / 2`` HR pixels and is reported only for comparison (for camera
  pixels it coincides with ``"aligned"``).

Paddings (boundary conditions): ``"periodic"`` wraps around (simulated lattices; ``scipy.ndimage`` mode
``"grid-wrap"``); ``"reflect"`` mirrors about the edge samples without repeating them (NumPy's and
Keras' ``"reflect"``, ``scipy.ndimage`` mode ``"mirror"``), for real images with borders.

The geometry shared with the degradation lives here, below it (the degradation's
:meth:`~spinsr_tf.data.degradation.Degradation.upsample` calls this module):
:data:`PADDING_MODES`, :data:`PIXEL_MODELS` and :func:`fold_index`, the one boundary fold.
This module is thus the lower half of the degradation module, split off only so that
:mod:`spinsr_tf.data.degradation` can import the geometry without a cycle. That is why
:func:`upsample` and :func:`upsample_matrix` take the sampling grid as the three values
``factor``, ``padding`` and ``pixel`` (the part of a degradation an interpolation needs: where
LR sample ``k`` sits and how the boundary folds; never the PSF): they are the backend of
:meth:`Degradation.upsample <spinsr_tf.data.degradation.Degradation.upsample>` and of the Keras
layer :class:`~spinsr_tf.nn.layers.AlignedUpsample` (which must keep primitive, serialisable
arguments), and they also serve the baselines, which interpolate at a bare factor, with the
``"resize"`` convention no degradation has. Code that holds a degradation calls its
``upsample`` instead of taking the three values apart.

Methods:

- ``"gaussian"``: normalized Gaussian convolution of the LR samples placed on the HR grid,
  ``out(x) = Σ_k w(x - x_k) v_k / Σ_k w(x - x_k)`` with ``w`` a Gaussian of width ``sigma_up`` HR
  pixels (default ``f / 2``), summed over all periodic (or mirror) images of the samples;
- ``"bilinear"``: order-1 spline (linear interpolation between the neighbouring samples);
- ``"bicubic"``: cubic spline interpolation (``scipy.ndimage`` order 3 with its exact spline
  prefilter), the method behind the reference numbers of the specification.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy import ndimage

from spinsr_tf.base.checks import check_bool, check_choice, check_int, check_maps, check_real

__all__ = ["METHODS", "CONVENTIONS", "PADDINGS", "PADDING_MODES", "PIXEL_MODELS", "fold_index",
           "unit_normalize", "upsample", "upsample_matrix"]

#: Padding modes: ``"periodic"`` wraps around (simulated lattices with periodic boundaries);
#: ``"reflect"`` mirrors without repeating the edge pixel (NumPy's and Keras' ``"reflect"``).
PADDING_MODES = ("periodic", "reflect")

#: How an LR pixel is made from the blurred HR map: a point sample at ``k·f`` or the average
#: over its ``f × f`` block (a camera pixel), see :mod:`spinsr_tf.data.degradation`.
PIXEL_MODELS = ("sample", "integrate")


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


METHODS = ("gaussian", "bilinear", "bicubic")
CONVENTIONS = ("aligned", "resize")
PADDINGS = PADDING_MODES

_SPLINE_ORDER = {"bilinear": 1, "bicubic": 3}
_NDIMAGE_MODE = {"periodic": "grid-wrap", "reflect": "mirror"}


def _check_sigma(sigma_up, factor: int) -> float:
    if sigma_up is None:
        return factor / 2.0
    return check_real("sigma_up", sigma_up, 0, strict=True, unit="HR pixels")


def _lr_coordinates(n_lr: int, factor: int, convention: str, pixel: str) -> np.ndarray:
    """LR coordinate (in LR pixels) of each of the ``n_lr·factor`` HR pixels."""
    x = np.arange(n_lr * factor, dtype=np.float64)
    if convention == "aligned" and pixel == "sample":
        return x / factor
    return (x + 0.5) / factor - 0.5


def _gaussian_matrix(u: np.ndarray, n_lr: int, sigma_lr: float, padding: str) -> np.ndarray:
    reach = int(math.ceil(8.0 * sigma_lr)) + 2
    j = np.arange(int(math.floor(u.min())) - reach, int(math.ceil(u.max())) + reach + 1)
    w = np.exp(-0.5 * ((u[:, None] - j[None, :]) / sigma_lr) ** 2)
    m = np.zeros((u.size, n_lr))
    cols = np.broadcast_to(fold_index(j, n_lr, padding), w.shape)
    rows = np.broadcast_to(np.arange(u.size)[:, None], w.shape)
    np.add.at(m, (rows, cols), w)
    return m / m.sum(axis=1, keepdims=True)


def _spline_matrix(u: np.ndarray, n_lr: int, order: int, padding: str) -> np.ndarray:
    m = np.empty((u.size, n_lr))
    basis = np.zeros(n_lr)
    mode = _NDIMAGE_MODE[padding]
    for k in range(n_lr):
        basis[:] = 0.0
        basis[k] = 1.0
        m[:, k] = ndimage.map_coordinates(basis, u[None, :], order=order, mode=mode)
    return m


@functools.lru_cache(maxsize=64)
def _cached_matrix(n_lr, factor, method, convention, padding, sigma_up, pixel) -> np.ndarray:
    u = _lr_coordinates(n_lr, factor, convention, pixel)
    if method == "gaussian":
        m = _gaussian_matrix(u, n_lr, sigma_up / factor, padding)
    else:
        m = _spline_matrix(u, n_lr, _SPLINE_ORDER[method], padding)
    m.setflags(write=False)
    return m


def upsample_matrix(n_lr: int, factor: int, method: str = "bicubic",
                    convention: str = "aligned", padding: str = "periodic",
                    sigma_up: float | None = None, pixel: str = "sample") -> np.ndarray:
    """The 1-D up-sampling operator along one axis.

    Parameters
    ----------
    n_lr : int
        Number of LR pixels along the axis.
    factor, method, convention, padding, sigma_up, pixel
        As in :func:`upsample`.

    Returns
    -------
    numpy.ndarray, shape (n_lr·factor, n_lr), float64, read-only
        Row ``x`` holds the weights of the LR samples at HR pixel ``x``; every row sums to 1.
    """
    n_lr = check_int("n_lr", n_lr, 1)
    factor = check_int("factor", factor, 1)
    check_choice("method", method, METHODS)
    check_choice("convention", convention, CONVENTIONS)
    check_choice("padding", padding, PADDINGS)
    check_choice("pixel", pixel, PIXEL_MODELS)
    sigma = _check_sigma(sigma_up, factor) if method == "gaussian" else 0.0
    return _cached_matrix(n_lr, factor, method, convention, padding, sigma, pixel)


def unit_normalize(x: np.ndarray) -> np.ndarray:
    """Unit vectors for C >= 2 (zero vectors stay zero), a clip to [-1, 1] for C = 1."""
    if x.shape[-1] == 1:
        return np.clip(x, -1.0, 1.0)
    norm = np.sqrt(np.square(x).sum(axis=-1, keepdims=True))
    return np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)


def upsample(lr, factor: int, method: str = "bicubic", convention: str = "aligned",
             normalize: bool = False, padding: str = "periodic",
             sigma_up: float | None = None, pixel: str = "sample") -> np.ndarray:
    """Up-sample LR spin maps by an integer factor with an interpolation baseline.

    With a :class:`~spinsr_tf.data.degradation.Degradation` at hand call its
    :meth:`~spinsr_tf.data.degradation.Degradation.upsample`, which passes its factor, padding
    and pixel model here (see the module docstring for why they are three values).

    Parameters
    ----------
    lr : array_like, shape (N, h, w, C)
        LR maps (spin vectors with C = 3, or scalar contrast with C = 1); values finite.
    factor : int
        Up-sampling factor ``f`` (the degradation's stride): the output is ``(N, h·f, w·f, C)``.
    method : {"gaussian", "bilinear", "bicubic"}
        Interpolation kernel, see the module docstring.
    convention : {"aligned", "resize"}
        Where LR pixel ``k`` sits on the HR grid: where the degradation's ``pixel`` model put it
        (``"aligned"``), or at the block centre ``(k + 0.5)·f - 0.5`` (image-``resize``
        convention: misaligned for point samples).
    normalize : bool
        Scale every output vector to unit length afterwards (interpolation shortens vectors
        where the spins turn); zero vectors stay zero. For C = 1 the values are clipped to
        [-1, 1] instead.
    padding : {"periodic", "reflect"}
        Periodic wrap for simulated lattices; mirror reflection (edge sample not repeated) for
        images with borders.
    sigma_up : float, optional
        Width of the ``"gaussian"`` kernel in HR pixels; default ``factor / 2``. Ignored by the
        spline methods.
    pixel : {"sample", "integrate"}
        The degradation's pixel model (:data:`spinsr_tf.data.degradation.PIXEL_MODELS`): point
        samples at ``k·f`` or camera pixels centred on their blocks.

    Returns
    -------
    numpy.ndarray, shape (N, h·f, w·f, C), float32
    """
    factor = check_int("factor", factor, 1)
    check_choice("method", method, METHODS)
    check_choice("convention", convention, CONVENTIONS)
    check_choice("padding", padding, PADDINGS)
    check_choice("pixel", pixel, PIXEL_MODELS)
    normalize = check_bool("normalize", normalize)
    x = check_maps("lr", lr, np.float64)
    _, h, w, _ = x.shape
    m_y = upsample_matrix(h, factor, method, convention, padding, sigma_up, pixel)
    m_x = upsample_matrix(w, factor, method, convention, padding, sigma_up, pixel)
    out = m_y @ np.moveaxis(x, 3, 1) @ m_x.T
    out = np.moveaxis(out, 1, 3)
    if normalize:
        out = unit_normalize(out)
    return np.ascontiguousarray(out, dtype=np.float32)
