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

:class:`Degradation` holds the five settings as one frozen, validated value: its NumPy operator
(:meth:`Degradation.apply`, :meth:`~Degradation.matrices`, :meth:`~Degradation.adjoint`), the
aligned interpolation for its geometry (:meth:`~Degradation.upsample`) and its JSON and
HDF5-attribute records. Every function that needs the imaging model takes one; the Keras layer
is built from it by :meth:`spinsr_tf.nn.layers.GaussianDownsample.from_degradation`.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from spinsr_tf.base.checks import check_int, check_real, is_int
from spinsr_tf.base.errors import UserError
# the sampling geometry both operators share (re-exported: the names of this module's API)
from spinsr_tf.data.interpolation import PADDING_MODES, PIXEL_MODELS, fold_index, upsample


def _check_kernel_args(kernel_size, sigma) -> None:
    check_int("kernel_size", kernel_size, 1, parity="odd")
    check_real("sigma", sigma, 0.0, strict=True, unit="HR pixels")


def _check_factor(factor) -> None:
    check_int("factor", factor, 1)


def _check_padding(padding) -> None:
    if padding not in PADDING_MODES:
        raise UserError(f"padding must be one of {PADDING_MODES}, got {padding!r}")


def _check_pixel(pixel) -> None:
    if pixel not in PIXEL_MODELS:
        raise UserError(f"pixel must be one of {PIXEL_MODELS}, got {pixel!r}")


def check_degradation_args(factor, kernel_size=23, sigma=1.0, padding="periodic",
                           pixel="sample") -> None:
    """Raise :class:`UserError` naming the first bad degradation parameter (the checks of
    :class:`Degradation`, for code that holds the settings apart).

    ``factor``: integer >= 1; ``kernel_size``: odd integer >= 1; ``sigma``: finite > 0;
    ``padding``: one of :data:`PADDING_MODES`; ``pixel``: one of :data:`PIXEL_MODELS`.
    """
    Degradation(factor, sigma, kernel_size, pixel, padding)


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


#: The record of a :class:`Degradation`: ``to_dict`` keys, and the HDF5 attribute names that
#: ``spinsr-tf downsample`` and ``fit-image`` write on LR files.
FIELDS = ("factor", "kernel_size", "sigma", "padding", "pixel")
#: The window assumed for a file that records no ``kernel_size`` (the training reader's default).
LEGACY_KERNEL_SIZE = 23


@dataclasses.dataclass(frozen=True)
class Degradation:
    """The imaging model HR map → LR map as one value: Gaussian PSF, pixel model, boundary.

    Parameters
    ----------
    factor : int
        Stride >= 1, HR pixels per LR pixel along each axis (the SR scale).
    sigma : float
        PSF standard deviation, HR pixels (the paper: 1).
    kernel_size : int, optional
        Odd window side, HR pixels; None takes :func:`kernel_size_for` ``(sigma)``, which is
        the paper's 23 for σ <= 2.875.
    pixel : {"sample", "integrate"}
        Point samples at ``k·f`` (the paper's) or camera pixels averaging their ``f × f`` block.
    padding : {"periodic", "reflect"}
        Periodic lattices (simulations) or mirrored borders (images).

    Invalid settings raise :class:`UserError` naming the first bad one. The object is frozen
    and hashable, so it can key caches; ``dataclasses.asdict`` gives the five settings.
    """

    factor: int
    sigma: float = 1.0
    kernel_size: int | None = None
    pixel: str = "sample"
    padding: str = "periodic"

    def __post_init__(self):
        _check_factor(self.factor)
        kernel_size = self.kernel_size
        if kernel_size is None:
            kernel_size = kernel_size_for(self.sigma)
        _check_kernel_args(kernel_size, self.sigma)
        _check_padding(self.padding)
        _check_pixel(self.pixel)
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731
        set_("factor", int(self.factor))
        set_("sigma", float(self.sigma))
        set_("kernel_size", int(kernel_size))
        set_("pixel", str(self.pixel))
        set_("padding", str(self.padding))

    def replace(self, **changes) -> "Degradation":
        """A copy with some settings changed (validated again)."""
        return dataclasses.replace(self, **changes)

    # -- the operator ---------------------------------------------------------------------
    def taps(self) -> np.ndarray:
        """The 1D filter of one LR pixel along one axis (:func:`degradation_taps`)."""
        return degradation_taps(self.factor, self.kernel_size, self.sigma, self.pixel)

    def matrix(self, n: int) -> np.ndarray:
        """``D`` of shape ``(n // factor, n)`` along one axis (:func:`downsample_matrix`)."""
        return downsample_matrix(n, self.factor, self.kernel_size, self.sigma, self.padding,
                                 self.pixel)

    def matrices(self, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        """The separable operators ``(D_H, D_W)`` of an ``h × w`` HR map: ``lr = D_H · x · D_Wᵀ``
        per map and channel; float64, each row sums to 1."""
        d_h = self.matrix(h)
        return d_h, (d_h if w == h else self.matrix(w))

    def apply(self, x, chunk: int = 256, dtype=np.float32) -> np.ndarray:
        """Degrade HR maps ``(N, H, W, C)`` → ``(N, H/f, W/f, C)``.

        Two matrix products with :meth:`matrices` in float64 (BLAS, stacked over maps and
        channels: the cost is not a 23×23 sliding window), rounded to ``dtype`` (float32 for
        data; float64 where an optimiser needs the exact operator, as in
        :func:`spinsr_tf.inference.refine.refine`). ``chunk`` maps per step bound the float64
        working memory. Each LR value is a dot product over the same HR pixels in the same
        order whatever the batch, so a map's LR image does not depend on its batch; call it
        once per batch rather than per map (every small BLAS call pays a fixed threading cost).

        Raises :class:`UserError` for a wrong rank, a size not divisible by ``factor``, a
        non-real dtype, NaN or Inf.
        """
        x = np.asarray(x)
        if x.ndim != 4:
            raise UserError(f"x must have shape (N, H, W, C), got shape {x.shape}")
        if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
            raise UserError(f"x must hold real numbers, got dtype {x.dtype}")
        n, h, w, c = x.shape
        f = self.factor
        if h % f or w % f:
            raise UserError(f"height {h} and width {w} must both be divisible by factor {f}")
        if not np.all(np.isfinite(x)):
            raise UserError("x contains NaN or Inf values")
        dh, dw = self.matrices(h, w)
        out = np.empty((n, h // f, w // f, c), dtype=dtype)
        for start in range(0, n, max(int(chunk), 1)):
            block = np.moveaxis(np.asarray(x[start:start + chunk], dtype=np.float64), -1, 1)
            out[start:start + chunk] = np.moveaxis(dh @ block @ dw.T, 1, -1)
        return out

    def __call__(self, x) -> np.ndarray:
        """:meth:`apply` with its defaults (float32 LR maps)."""
        return self.apply(x)

    def adjoint(self, r) -> np.ndarray:
        """The transpose of :meth:`apply`: LR residuals ``(N, h, w, C)`` → HR ``(N, h·f, w·f, C)``,
        ``D_Hᵀ · r · D_W`` per map and channel, float64 (the gradient of ``½‖D x − y‖²`` is
        ``adjoint(apply(x) − y)``)."""
        r = np.asarray(r, dtype=np.float64)
        if r.ndim != 4:
            raise UserError(f"r must have shape (N, h, w, C), got shape {r.shape}")
        dh, dw = self.matrices(r.shape[1] * self.factor, r.shape[2] * self.factor)
        return np.moveaxis(dh.T @ np.moveaxis(r, -1, 1) @ dw, 1, -1)

    def upsample(self, lr, method: str = "bicubic", convention: str = "aligned",
                 normalize: bool = False, sigma_up: float | None = None) -> np.ndarray:
        """Interpolate LR maps back to the HR grid where this degradation put the LR samples
        (:func:`spinsr_tf.data.interpolation.upsample` with this factor, padding and pixel
        model); ``(N, h, w, C)`` → ``(N, h·f, w·f, C)`` float32."""
        return upsample(lr, self.factor, method, convention, normalize, self.padding,
                        sigma_up, self.pixel)

    # -- records --------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """The five settings as JSON-able Python values (keys :data:`FIELDS`)."""
        return {k: getattr(self, k) for k in FIELDS}

    @classmethod
    def from_dict(cls, record) -> "Degradation":
        """Inverse of :meth:`to_dict`; unknown keys and a missing ``factor`` are refused with a
        :class:`UserError` (a misspelt setting must not fall back to its default)."""
        if not isinstance(record, dict):
            raise UserError(f"a degradation record must be a mapping, got {type(record).__name__}")
        unknown = sorted(set(record) - set(FIELDS))
        if unknown:
            raise UserError(f"unknown degradation setting(s): {', '.join(map(str, unknown))} "
                            f"(known: {', '.join(FIELDS)})")
        if "factor" not in record:
            raise UserError("a degradation record needs 'factor'")
        return cls(**record)

    def to_attrs(self) -> dict:
        """HDF5 attributes of an LR file (the names ``spinsr-tf downsample`` writes)."""
        return self.to_dict()

    @classmethod
    def from_attrs(cls, attrs, factor: int | None = None) -> "Degradation":
        """The degradation an HDF5 file's attributes record; other attributes are ignored.

        Reads the attribute names of :data:`FIELDS` (bytes or NumPy scalars as h5py returns
        them). A setting an older file does not record takes the default the training reader
        has always assumed: ``kernel_size`` 23 (whatever σ), ``sigma`` 1, ``padding`` periodic,
        ``pixel`` sample. ``factor`` fills in for a file that records none and must agree with
        one that does.
        """
        def value(key):
            v = attrs[key]
            v = v.decode("utf-8") if isinstance(v, bytes) else v
            v = v.item() if isinstance(v, np.generic) else v
            if key in ("factor", "kernel_size") and isinstance(v, float) and v.is_integer():
                v = int(v)  # an integer stored as a float
            return v

        found = {k: value(k) for k in FIELDS if k in attrs}
        if factor is not None:
            _check_factor(factor)
            found.setdefault("factor", int(factor))
        if "factor" not in found:
            raise UserError("the attributes record no degradation factor")
        found.setdefault("kernel_size", LEGACY_KERNEL_SIZE)
        recorded = cls(**found)
        if factor is not None and recorded.factor != factor:
            raise UserError(f"factor {factor} does not match the recorded factor "
                            f"{recorded.factor}")
        return recorded


def as_degradation(value, name: str = "degradation") -> Degradation:
    """``value`` as a :class:`Degradation`: itself, or an integer factor with the paper's
    settings (σ = 1, 23 taps, point samples, periodic)."""
    if isinstance(value, Degradation):
        return value
    if is_int(value):
        return Degradation(int(value))
    raise UserError(f"{name} must be a Degradation or an integer factor, got {value!r}")

def gaussian_downsample(x, factor: int, kernel_size: int = 23, sigma: float = 1.0,
                        padding: str = "periodic", chunk: int = 256,
                        pixel: str = "sample") -> np.ndarray:
    """Degrade HR maps by Gaussian filter downsizing: ``Degradation(...).apply(x)``.

    ``out[n, a, b, c] = Σ_{u,v} K[u, v] · x[n, s(a·f + u − k//2), s(b·f + v − k//2), c]``
    with ``k = kernel_size``, ``K = gaussian_kernel(k, sigma)``, ``f = factor`` and ``s`` the
    boundary map (``i mod H`` for periodic, mirror for reflect). LR pixel ``a`` is thus centred
    on HR pixel ``a·f`` exactly (no half-block shift). With ``pixel="integrate"`` each LR pixel
    is instead the mean of that over its ``f × f`` block (a camera pixel, centred on
    ``a·f + (f − 1)/2``).

    Parameters
    ----------
    x : array_like, shape (N, H, W, C)
        HR maps, any real dtype; H and W divisible by ``factor``.
    factor : int
        Downsampling factor (stride) >= 1.
    kernel_size : int
        Odd Gaussian window side, HR pixels (23 here, whatever ``sigma``; the object's default
        is :func:`kernel_size_for`).
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
    return Degradation(factor, sigma, kernel_size, pixel, padding).apply(x, chunk=chunk)
