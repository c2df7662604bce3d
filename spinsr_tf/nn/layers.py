"""Keras layers of the SR network: padding-aware padding, the fixed Gaussian degradation, and
the fixed aligned interpolation and unit-vector output of the network variants.

All layers use ``keras.ops`` only, so a model built from them runs on the TensorFlow and the JAX
backend alike, and all work with unknown (``None``) spatial sizes: the network is fully
convolutional.

- :class:`PeriodicPadding2D`, :class:`ReflectPadding2D`: twins of ``keras.layers.ZeroPadding2D``
  (same arguments) that wrap around (simulated lattices with periodic boundaries) or mirror
  (images with borders) instead of padding with zeros.
- :class:`GaussianDownsample`: the degradation of :func:`spinsr_tf.data.gaussian_downsample` as a
  fixed layer with no weights; the network's LR output.
- :class:`AlignedUpsample`: the aligned interpolation of :mod:`spinsr_tf.data.interpolation` as a fixed
  layer with no weights (the skip path of the residual network).
- :class:`UnitVectors`: projection of each site's vector onto the unit sphere (``tanh`` for
  one channel), for networks whose SR output must be physical spins.
"""

from __future__ import annotations


import keras
import numpy as np
from keras import ops

from spinsr_tf.data.degradation import PADDING_MODES, PIXEL_MODELS, Degradation, fold_index
from spinsr_tf.base.checks import check_int, check_real, is_int
from spinsr_tf.base.errors import UserError

_DATA_FORMATS = ("channels_last", "channels_first")


def _standardize_data_format(data_format):
    if data_format is None:
        return keras.config.image_data_format()
    if data_format not in _DATA_FORMATS:
        raise UserError(f"data_format must be one of {_DATA_FORMATS} or None, got {data_format!r}")
    return data_format


def _is_count(value) -> bool:
    return is_int(value) and value >= 0


def _standardize_padding(padding):
    """``int | (h, w) | ((top, bottom), (left, right))`` -> ``((top, bottom), (left, right))``."""
    error = UserError(
        "padding must be an int >= 0, a tuple of 2 ints (symmetric_height_pad, symmetric_width_pad)"
        " or a tuple of 2 tuples of 2 ints ((top_pad, bottom_pad), (left_pad, right_pad)),"
        f" got {padding!r}"
    )
    if _is_count(padding):
        return ((int(padding), int(padding)), (int(padding), int(padding)))
    if not isinstance(padding, (tuple, list)) or len(padding) != 2:
        raise error
    pairs = []
    for entry in padding:
        if _is_count(entry):
            pairs.append((int(entry), int(entry)))
        elif (isinstance(entry, (tuple, list)) and len(entry) == 2
              and all(_is_count(v) for v in entry)):
            pairs.append((int(entry[0]), int(entry[1])))
        else:
            raise error
    return tuple(pairs)


def _source_indices(n, before: int, after: int, mode: str):
    """Index into an axis of length ``n`` (int or scalar tensor) for each padded position.

    Periodic: ``(i - before) mod n``. Reflect: the mirror without repeating the edge, a
    triangle wave of period ``2 (n - 1)``, which equals NumPy's ``"reflect"`` for any padding
    length (also longer than the axis, where slicing-based padding would fail).
    """
    return fold_index(ops.arange(n + before + after, dtype="int32") - before, n, mode, xp=ops)


def _spatial_axes(data_format: str) -> tuple[int, int]:
    return (2, 3) if data_format == "channels_first" else (1, 2)


def _dim(x, axis: int):
    """Static size of ``x`` along ``axis`` when known, else a scalar tensor."""
    size = x.shape[axis]
    return size if size is not None else ops.shape(x)[axis]


def _constant(layer, n: int, build):
    """The operator of ``layer`` for axis length ``n`` as a tensor, built by ``build()`` (NumPy,
    float64) the first time and kept on the layer."""
    cache = layer.__dict__.setdefault("_operators", {})
    if n not in cache:
        cache[n] = build()
    return ops.convert_to_tensor(cache[n], dtype=layer.compute_dtype)


def _numpy_upsample(n: int, factor: int, taps, reach: int, padding: str) -> np.ndarray:
    """NumPy twin of :meth:`AlignedUpsample._operator` (same truncated phase filters)."""
    hr = np.arange(n * factor)
    q, r = hr // factor, hr % factor
    m = np.zeros((n * factor, n))
    for col, j in enumerate(range(-reach, reach + 1)):
        if not abs(taps[:, col]).max() > 1e-9:
            continue
        np.add.at(m, (hr, fold_index(q + j, n, padding)), taps[r, col])
    return m


def _apply_separable(x, m_h, m_w, data_format: str):
    """``M_h · x · M_wᵀ`` on every image and channel: a separable linear map of the two axes."""
    if data_format == "channels_first":
        x = ops.einsum("Hh,nchw->ncHw", m_h, x)
        return ops.einsum("Ww,ncHw->ncHW", m_w, x)
    x = ops.einsum("Hh,nhwc->nHwc", m_h, x)
    return ops.einsum("Ww,nHwc->nHWc", m_w, x)


class _BoundaryPadding2D(keras.layers.Layer):
    _mode = ""

    def __init__(self, padding=1, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.padding = _standardize_padding(padding)
        self.data_format = _standardize_data_format(data_format)
        self.input_spec = keras.layers.InputSpec(ndim=4)

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        for axis, (before, after) in zip(_spatial_axes(self.data_format), self.padding):
            if shape[axis] is not None:
                shape[axis] += before + after
        return tuple(shape)

    def call(self, inputs):
        x = inputs
        for axis, (before, after) in zip(_spatial_axes(self.data_format), self.padding):
            if before or after:
                x = self._pad_axis(x, axis, before, after)
        return x

    def _pad_axis(self, x, axis: int, before: int, after: int):
        """Slices + concatenation where the padding fits inside the axis (about 15 % faster
        training than a gather), else a gather that also handles padding longer than the axis."""
        n = x.shape[axis]
        reach = max(before, after) + (self._mode == "reflect")
        if reach > 1 and (n is None or reach > n):
            return ops.take(x, _source_indices(_dim(x, axis), before, after, self._mode),
                            axis=axis)

        def part(start, stop):
            index = [slice(None)] * len(x.shape)
            index[axis] = slice(start, stop)
            return x[tuple(index)]

        if self._mode == "periodic":
            pieces = [part(-before, None) if before else None, x,
                      part(0, after) if after else None]
        else:
            pieces = [ops.flip(part(1, before + 1), axis=axis) if before else None, x,
                      ops.flip(part(-after - 1, -1), axis=axis) if after else None]
        return ops.concatenate([p for p in pieces if p is not None], axis=axis)

    def get_config(self):
        config = {"padding": self.padding, "data_format": self.data_format}
        return {**super().get_config(), **config}


@keras.saving.register_keras_serializable(package="spinsr_tf")
class PeriodicPadding2D(_BoundaryPadding2D):
    """Periodic (wrap-around) padding for 2D maps: the twin of ``keras.layers.ZeroPadding2D``.

    Rows added at the top copy the bottom rows, columns added at the left copy the right
    columns, and so on, so a 3×3 convolution after ``PeriodicPadding2D(1)`` sees the lattice as
    a torus: the network is then equivariant to lattice translations, as the simulated spin
    textures with periodic boundaries are. Padding may exceed the map size (it wraps again).

    Parameters
    ----------
    padding : int, tuple of 2 ints, or tuple of 2 tuples of 2 ints
        ``p`` (same on every side), ``(symmetric_height_pad, symmetric_width_pad)`` or
        ``((top_pad, bottom_pad), (left_pad, right_pad))``; all >= 0. Stored in the last form.
    data_format : {"channels_last", "channels_first"} or None
        Axis order of the input; None takes ``keras.config.image_data_format()``.

    Input shape: ``(batch, H, W, C)`` (channels_last) or ``(batch, C, H, W)``; H, W may be None.
    Output shape: H and W grown by ``top + bottom`` and ``left + right``.
    """

    _mode = "periodic"


@keras.saving.register_keras_serializable(package="spinsr_tf")
class ReflectPadding2D(_BoundaryPadding2D):
    """Mirror padding for 2D maps without repeating the edge (NumPy's and TF's ``"reflect"``).

    Used instead of :class:`PeriodicPadding2D` for images with real borders (microscope
    images), where wrapping would glue unrelated edges together. Same arguments and shapes as
    :class:`PeriodicPadding2D`; padding longer than the map reflects again (like ``np.pad``).
    """

    _mode = "reflect"


def padding_layer(mode: str, padding=1, **kwargs) -> keras.layers.Layer:
    """The padding layer for a padding ``mode`` (``"periodic"`` or ``"reflect"``)."""
    if mode == "periodic":
        return PeriodicPadding2D(padding, **kwargs)
    if mode == "reflect":
        return ReflectPadding2D(padding, **kwargs)
    raise UserError(f"padding must be one of {PADDING_MODES}, got {mode!r}")


@keras.saving.register_keras_serializable(package="spinsr_tf")
class GaussianDownsample(keras.layers.Layer):
    """Gaussian filter downsizing as a fixed layer: the twin of
    :func:`spinsr_tf.data.gaussian_downsample` (equal to 1e-6 in float32).

    ``out[n, a, b, c] = Σ_{u,v} K[u, v] · x[n, s(a·f + u − k//2), s(b·f + v − k//2), c]``
    with ``K`` the normalised ``kernel_size``² Gaussian of width ``sigma``, ``f = factor`` and
    ``s`` the padding map (periodic wrap or mirror). LR pixel ``a`` is centred on HR pixel
    ``a·f`` (``pixel="sample"``), or is the mean of that over its ``f × f`` block, centred on
    ``a·f + (f − 1)/2`` (``pixel="integrate"``, a camera pixel).

    The layer has no weights: the 1D operators ``D_H`` (``H/f × H``) and ``D_W`` follow from
    the configuration (built once per static size in NumPy, or in the graph for a free size)
    and are applied as two matrix products, ``D_H · x · D_Wᵀ``. This is exact for any padding length and, at the sizes the
    network trains on (HR ≤ a few hundred pixels), much faster than a strided 23×23 depthwise
    convolution on CPU; its cost grows as ``(H·W/f)·(H + W/f)`` per map and channel, so for
    very large maps a convolution would win. Gradients flow to the input (the SR map) only.

    :meth:`from_degradation` builds it from a
    :class:`~spinsr_tf.data.degradation.Degradation`, whose NumPy operator
    (:meth:`~spinsr_tf.data.degradation.Degradation.matrix`) gives the matrices of a static
    size, and :attr:`degradation` gives that object back.

    Parameters
    ----------
    factor : int
        Downsampling factor >= 1 (the SR scale); H and W must be divisible by it.
    kernel_size : int
        Odd Gaussian window side, HR pixels.
    sigma : float
        Gaussian standard deviation, HR pixels.
    padding : {"periodic", "reflect"}
        Boundary condition.
    data_format : {"channels_last", "channels_first"} or None
        Axis order; None takes ``keras.config.image_data_format()``.
    pixel : {"sample", "integrate"}
        Pixel model (:data:`spinsr_tf.data.degradation.PIXEL_MODELS`).

    Input shape: ``(batch, H, W, C)`` (channels_last) or ``(batch, C, H, W)``; H, W may be
    None. Output shape: H and W divided by ``factor``.
    """

    def __init__(self, factor, kernel_size=23, sigma=1.0, padding="periodic", data_format=None,
                 pixel="sample", **kwargs):
        super().__init__(**kwargs)
        self._degradation = Degradation(factor, sigma, kernel_size, pixel, padding)
        self.factor = self._degradation.factor
        self.kernel_size = self._degradation.kernel_size
        self.sigma = self._degradation.sigma
        self.padding = self._degradation.padding
        self.pixel = self._degradation.pixel
        self.data_format = _standardize_data_format(data_format)
        self._taps = self._degradation.taps()
        self.input_spec = keras.layers.InputSpec(ndim=4)

    @classmethod
    def from_degradation(cls, degradation: Degradation, **kwargs) -> "GaussianDownsample":
        """The layer of a :class:`~spinsr_tf.data.degradation.Degradation` (``kwargs``: the
        layer's own arguments, e.g. ``name``, ``data_format``)."""
        if not isinstance(degradation, Degradation):
            raise UserError(f"degradation must be a Degradation, got {degradation!r}")
        d = degradation
        return cls(d.factor, d.kernel_size, d.sigma, d.padding, pixel=d.pixel, **kwargs)

    @property
    def degradation(self) -> Degradation:
        """The imaging model this layer applies (what refinement and scoring must use too)."""
        return self._degradation

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        for axis in _spatial_axes(self.data_format):
            if shape[axis] is not None:
                if shape[axis] % self.factor:
                    raise UserError(f"input size {shape[axis]} along axis {axis} is not "
                                    f"divisible by factor {self.factor}")
                shape[axis] //= self.factor
        return tuple(shape)

    def _operator(self, n):
        """``D`` of shape (n // factor, n): row ``a`` is the folded Gaussian centred on ``a·f``
        (``"sample"``), or its mean over the block ``a·f … a·f + f − 1`` (``"integrate"``).

        A static ``n`` gets a constant built once in NumPy (the training step then holds one
        constant instead of re-running ``kernel_size + f`` one-hot products every step); an
        unknown ``n`` (a SavedModel with free sizes) builds the same matrix with ``keras.ops``.
        """
        half = self.kernel_size // 2
        if isinstance(n, int):
            return _constant(self, n, lambda: self._degradation.matrix(n))
        rows = ops.arange(n // self.factor, dtype="int32") * self.factor
        src = _source_indices(n, half, half + self.factor, self.padding)
        d = 0.0
        for u, tap in enumerate(self._taps):  # one (n // f, n) one-hot at a time: bounded memory
            d = d + float(tap) * ops.one_hot(ops.take(src, rows + u), n, dtype=self.compute_dtype)
        return d

    def call(self, inputs):
        h_axis, w_axis = _spatial_axes(self.data_format)
        return _apply_separable(inputs, self._operator(_dim(inputs, h_axis)),
                                self._operator(_dim(inputs, w_axis)), self.data_format)

    def get_config(self):
        config = {
            "factor": self.factor,
            "kernel_size": self.kernel_size,
            "sigma": self.sigma,
            "padding": self.padding,
            "pixel": self.pixel,
            "data_format": self.data_format,
        }
        return {**super().get_config(), **config}


@keras.saving.register_keras_serializable(package="spinsr_tf")
class TapsDownsample(keras.layers.Layer):
    """A degradation whose filter is data: ``layer(x, taps)`` with one separable filter per
    sample, for training across drawn degradations (blind SR,
    :mod:`spinsr_tf.data.degradation_generator`).

    ``out[n, a, b, c] = Σ_{u,v} t[n,u] t[n,v] · x[n, s(a·f + u − k//2), s(b·f + v − k//2), c]``
    with ``t`` the taps input ``(batch, taps_length)``, ``f = factor``, ``k = kernel_size`` and
    ``s`` the padding map. Every pixel model of
    :class:`~spinsr_tf.data.degradation.Degradation` with this ``factor``, ``kernel_size`` and
    ``padding`` is such a filter (``DegradationGenerator.padded_taps``: the point-sample
    Gaussian padded with ``f − 1`` zeros, the camera pixel's Gaussian-times-box filter), so for
    taps of a degradation the layer equals its :meth:`~spinsr_tf.data.degradation.Degradation.apply`
    (1e-6 in float32). No weights; gradients flow to ``x`` (and to the taps, which are inputs).

    Per sample it builds ``D[a, i] = Σ_u t[u] P[a, u, i]`` from the fixed one-hot gather
    ``P`` (``(n/f) × T × n``, a constant for a static size) and applies ``D_H · x · D_Wᵀ``.

    Parameters
    ----------
    factor : int
        Stride >= 1 (the SR scale).
    kernel_size : int
        Odd Gaussian window of the drawn degradations, HR pixels; ``taps_length`` is
        ``kernel_size + factor − 1``.
    padding : {"periodic", "reflect"}
        Boundary condition.
    data_format : {"channels_last", "channels_first"} or None

    Input: ``x`` ``(batch, H, W, C)`` (H, W may be None), ``taps`` ``(batch, taps_length)``.
    Output: ``(batch, H/f, W/f, C)``.
    """

    def __init__(self, factor, kernel_size=23, padding="periodic", data_format=None, **kwargs):
        super().__init__(**kwargs)
        # the checks of a Degradation (its sigma plays no part here)
        deg = Degradation(factor, 1.0, kernel_size, "sample", padding)
        self.factor, self.kernel_size, self.padding = deg.factor, deg.kernel_size, deg.padding
        self.data_format = _standardize_data_format(data_format)
        self.taps_length = self.kernel_size + self.factor - 1

    def _gather(self, n):
        """``P`` of shape ``(n // f, T, n)``: ``P[a, u, i] = 1`` where padded HR position
        ``a·f + u`` copies HR pixel ``i``."""
        f, half, t = self.factor, self.kernel_size // 2, self.taps_length
        if isinstance(n, int):
            def build():
                if n % f:
                    raise UserError(f"input size {n} is not divisible by factor {f}")
                src = fold_index(np.arange(-half, n + half + f), n, self.padding)
                pos = np.arange(n // f)[:, None] * f + np.arange(t)[None, :]
                p = np.zeros((n // f, t, n))
                p[np.arange(n // f)[:, None], np.arange(t)[None, :], src[pos]] = 1.0
                return p
            return _constant(self, n, build)
        src = _source_indices(n, half, half + f, self.padding)
        pos = (ops.arange(n // f, dtype="int32")[:, None] * f
               + ops.arange(t, dtype="int32")[None, :])
        return ops.one_hot(ops.take(src, pos), n, dtype=self.compute_dtype)

    def compute_output_shape(self, x_shape, taps_shape=None):
        shape = list(x_shape)
        for axis in _spatial_axes(self.data_format):
            if shape[axis] is not None:
                shape[axis] //= self.factor
        return tuple(shape)

    def call(self, x, taps):
        taps = ops.cast(taps, self.compute_dtype)
        h_axis, w_axis = _spatial_axes(self.data_format)
        d_h = ops.einsum("bu,aui->bai", taps, self._gather(_dim(x, h_axis)))
        d_w = ops.einsum("bu,aui->bai", taps, self._gather(_dim(x, w_axis)))
        if self.data_format == "channels_first":
            x = ops.einsum("bHh,bchw->bcHw", d_h, x)
            return ops.einsum("bWw,bcHw->bcHW", d_w, x)
        x = ops.einsum("bHh,bhwc->bHwc", d_h, x)
        return ops.einsum("bWw,bHwc->bHWc", d_w, x)

    def get_config(self):
        config = {"factor": self.factor, "kernel_size": self.kernel_size,
                  "padding": self.padding, "data_format": self.data_format}
        return {**super().get_config(), **config}


@keras.saving.register_keras_serializable(package="spinsr_tf")
class ConditionChannels(keras.layers.Layer):
    """``layer(x, c)``: the per-sample vector ``c`` ``(batch, K)`` appended to every pixel of
    ``x`` ``(batch, h, w, C)`` as ``K`` constant channels (channels last): how a conditioned
    network is told the degradation (σ in HR pixels, camera-pixel indicator)."""

    def call(self, x, c):
        c = ops.cast(c, x.dtype)[:, None, None, :]
        return ops.concatenate([x, ops.zeros_like(x[..., :1]) + c], axis=-1)

    def compute_output_shape(self, x_shape, c_shape=None):
        return (*x_shape[:-1], x_shape[-1] + c_shape[-1])


@keras.saving.register_keras_serializable(package="spinsr_tf")
class PixelBlend(keras.layers.Layer):
    """``layer(a, b, c)`` = ``a + c[:, index] · (b − a)`` per sample: with ``c[:, index]`` the
    camera-pixel indicator (0 or 1) of a conditioned network, the skip path is the aligned
    interpolation for point samples (``a``) or for camera pixels (``b``)."""

    def __init__(self, index: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.index = int(index)

    def call(self, a, b, c):
        w = ops.cast(c, a.dtype)[:, self.index][:, None, None, None]
        return a + w * (b - a)

    def compute_output_shape(self, a_shape, b_shape=None, c_shape=None):
        return a_shape

    def get_config(self):
        return {**super().get_config(), "index": self.index}


@keras.saving.register_keras_serializable(package="spinsr_tf")
class AlignedUpsample(keras.layers.Layer):
    """Interpolation aligned with the sampling grid as a fixed layer: the twin of
    ``spinsr_tf.data.interpolation.upsample(..., convention="aligned")`` (equal to 1e-5 in float32).

    ``out[n] = M_H · x[n] · M_Wᵀ`` per channel, ``M`` of shape ``(h·f, h)``: LR pixel ``k`` sits
    where :class:`GaussianDownsample` with the same ``pixel`` model centres it — HR pixel ``k·f``
    for point samples, the block centre ``k·f + (f − 1)/2`` for camera pixels — so the layer
    inverts the sampling of the degradation without a misplaced half-block shift.
    It has no weights; it is the skip path of the residual network
    (``build_sr_model(residual=True)``).

    Because LR and HR grids are aligned, HR row ``q·f + r`` is the same filter ``w_r`` (phase
    ``r``) applied around LR row ``q`` for every ``q``: a cubic spline (with its prefilter) on
    an infinite line, whose taps decay as ``0.268^|j|``. The layer keeps ``w_r[j]`` for
    ``|j| <= 16`` (taps below 1e-9 dropped), read once from
    :func:`spinsr_tf.data.interpolation.upsample_matrix`, and in every call folds them onto the actual
    axis length ``n`` (periodic wrap or mirror, like :class:`GaussianDownsample`), so it works
    with unknown (``None``) spatial sizes, e.g. in an exported SavedModel (a static size gets the
    same matrix as a constant built once in NumPy). Cost per call: two matrix products.

    Parameters
    ----------
    factor : int
        Up-sampling factor >= 1 (the degradation's stride).
    method : {"bicubic", "bilinear", "gaussian"}
        Interpolation kernel (cubic spline with its exact prefilter for ``"bicubic"``; the
        Gaussian with the default width ``factor / 2`` HR pixels).
    padding : {"periodic", "reflect"}
        Periodic wrap (simulated lattices) or mirror without repeating the edge (images).
    data_format : {"channels_last", "channels_first"} or None
        Axis order; None takes ``keras.config.image_data_format()``.

    Input shape: ``(batch, h, w, C)`` (channels_last); h, w may be None. Output shape:
    ``(batch, h·f, w·f, C)``.
    """

    _REACH = 16

    def __init__(self, factor, method="bicubic", padding="periodic", data_format=None,
                 pixel="sample", **kwargs):
        from spinsr_tf.data.interpolation import PADDINGS, METHODS, upsample_matrix

        padding = kwargs.pop("boundary", padding)  # the name in models saved before 0.2
        super().__init__(**kwargs)
        check_int("factor", factor, 1)
        if method not in METHODS:
            raise UserError(f"method must be one of {METHODS}, got {method!r}")
        if padding not in PADDINGS:
            raise UserError(f"padding must be one of {PADDINGS}, got {padding!r}")
        if pixel not in PIXEL_MODELS:
            raise UserError(f"pixel must be one of {PIXEL_MODELS}, got {pixel!r}")
        self.factor = int(factor)
        self.method = method
        self.padding = padding
        self.pixel = pixel
        self.data_format = _standardize_data_format(data_format)
        self.input_spec = keras.layers.InputSpec(ndim=4)
        n = 4 * self._REACH
        m = upsample_matrix(n, self.factor, method, "aligned", "periodic", pixel=pixel)
        centre = n // 2
        cols = [(centre + j) % n for j in range(-self._REACH, self._REACH + 1)]
        self._taps = m[centre * self.factor:(centre + 1) * self.factor][:, cols]  # (f, 2R+1)

    @classmethod
    def from_degradation(cls, degradation: Degradation, method: str = "bicubic",
                         **kwargs) -> "AlignedUpsample":
        """The interpolation aligned with a :class:`~spinsr_tf.data.degradation.Degradation`'s
        grid (its factor, padding and pixel model; ``kwargs``: the layer's own arguments, e.g.
        ``name``)."""
        if not isinstance(degradation, Degradation):
            raise UserError(f"degradation must be a Degradation, got {degradation!r}")
        d = degradation
        return cls(d.factor, method, d.padding, pixel=d.pixel, **kwargs)

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        for axis in _spatial_axes(self.data_format):
            if shape[axis] is not None:
                shape[axis] *= self.factor
        return tuple(shape)

    def _operator(self, n):
        """``M`` of shape (n·f, n): the phase filters folded onto an axis of length ``n``
        (a NumPy constant for a static ``n``, as in :class:`GaussianDownsample`)."""
        if isinstance(n, int):
            return _constant(self, n, lambda: _numpy_upsample(n, self.factor, self._taps,
                                                              self._REACH, self.padding))
        hr = ops.arange(n * self.factor, dtype="int32")
        q, r = hr // self.factor, ops.mod(hr, self.factor)
        m = 0.0
        for col, j in enumerate(range(-self._REACH, self._REACH + 1)):
            taps = self._taps[:, col]
            if not abs(taps).max() > 1e-9:
                continue
            weight = ops.take(ops.convert_to_tensor(taps, dtype=self.compute_dtype), r)
            m = m + weight[:, None] * ops.one_hot(fold_index(q + j, n, self.padding, xp=ops), n,
                                                   dtype=self.compute_dtype)
        return m

    def call(self, inputs):
        h_axis, w_axis = _spatial_axes(self.data_format)
        return _apply_separable(inputs, self._operator(_dim(inputs, h_axis)),
                                self._operator(_dim(inputs, w_axis)), self.data_format)

    def get_config(self):
        config = {"factor": self.factor, "method": self.method, "padding": self.padding,
                  "pixel": self.pixel, "data_format": self.data_format}
        return {**super().get_config(), **config}


#: Bounds of :class:`UnitVectors` for one-channel maps.
SCALAR_BOUNDS = ("tanh", "soft_clip")


@keras.saving.register_keras_serializable(package="spinsr_tf")
class UnitVectors(keras.layers.Layer):
    """Project each site's vector onto the unit sphere: ``x / |x|`` over the channel axis.

    The output of a spin map must be physical (``|S| = 1``); projecting inside the network
    lets the LR loss see the same unit vectors the metrics score, rather than vectors
    shortened where the spins turn. ``|x|`` is floored at ``sqrt(epsilon)`` so a zero vector
    gives a zero vector and a finite gradient. For one channel (scalar ``S_z`` contrast, where
    no norm exists) the layer bounds the values instead, as ``scalar`` says:

    - ``"tanh"`` (models saved without the key): values in (−1, 1). A residual network's
      aligned bicubic skip of an LR value ±1 comes out at ±0.76, and the truth's peaks, which
      the blur has flattened below the LR image's ±1, can never be reached.
    - ``"soft_clip"``: the identity on [−1, 1], beyond it ``±(1 + m·tanh((|x| − 1)/m))`` with
      ``m = margin``: values in (−1 − m, 1 + m), the junction twice differentiable. A residual
      network then starts at aligned bicubic exactly and its correction's gradient is 1 inside
      [−1, 1] (``tanh(atanh(skip) + CNN)`` would also start there, but with gradients
      ``1 − x²`` that vanish on the ±1 domains and a ceiling at ±1), and values beyond ±1 are
      reachable: on a Kerr stand-in (×4, PSF σ 3 HR px, fit-image's min..max mapping) the
      truth spans ±1.15 in the LR image's units.

    Parameters
    ----------
    epsilon : float
        Floor of ``|x|²``, > 0.
    data_format : {"channels_last", "channels_first"} or None
        Which axis holds the vector components.
    scalar : {"tanh", "soft_clip"}
        The bound of one-channel maps (see above); more channels ignore it.
    margin : float
        ``"soft_clip"``: how far beyond ±1 values may go, > 0.

    Input shape: any 4D map; output shape: the same.
    """

    def __init__(self, epsilon=1e-12, data_format=None, scalar="tanh", margin=1.0, **kwargs):
        super().__init__(**kwargs)
        check_real("epsilon", epsilon, 0, strict=True)
        if scalar not in SCALAR_BOUNDS:
            raise UserError(f"scalar must be one of {SCALAR_BOUNDS}, got {scalar!r}")
        check_real("margin", margin, 0, strict=True)
        self.epsilon = float(epsilon)
        self.data_format = _standardize_data_format(data_format)
        self.scalar, self.margin = scalar, float(margin)
        self.input_spec = keras.layers.InputSpec(ndim=4)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def call(self, inputs):
        axis = 1 if self.data_format == "channels_first" else -1
        if inputs.shape[axis] == 1:
            if self.scalar == "tanh":
                return ops.tanh(inputs)
            m = self.margin
            beyond = ops.abs(inputs) - 1.0
            soft = ops.sign(inputs) * (1.0 + m * ops.tanh(ops.maximum(beyond, 0.0) / m))
            return ops.where(beyond > 0.0, soft, inputs)
        square = ops.sum(ops.square(inputs), axis=axis, keepdims=True)
        return inputs * ops.rsqrt(ops.maximum(square, self.epsilon))

    def get_config(self):
        config = {"epsilon": self.epsilon, "data_format": self.data_format,
                  "scalar": self.scalar, "margin": self.margin}
        return {**super().get_config(), **config}
