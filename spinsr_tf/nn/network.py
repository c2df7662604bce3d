"""The unsupervised SR network of Lee et al. (2023): build, compile, extract, load.

The network maps an LR map to an SR map ``scale`` times larger, then degrades the SR map again
with the fixed :class:`~spinsr_tf.nn.layers.GaussianDownsample`. The builder builds the network
only; which loss trains it is the training configuration's business (:mod:`spinsr_tf.nn.losses`),
:func:`compile_sr_model` being the paper's plain ``model.fit(lr, lr)`` route. It has two outputs, returned as a
dict by ``predict``::

    {"lr": (N, h, w, C) re-degraded SR map, "sr": (N, h·scale, w·scale, C) SR map}

Unsupervised training (:func:`compile_sr_model`) puts an MSE loss on ``"lr"`` only, so
``model.fit(lr, lr)`` learns from LR images alone; the HR ground truth never enters the loss.
The supervised oracle puts the loss on ``"sr"`` instead (``model.fit(lr, hr)``). The SR map is the
product: :func:`sr_submodel` cuts the network at the layer named ``"sr"``.

Single-target ``fit`` on a two-output model relies on Keras' support for a loss defined on a
subset of the outputs (Keras >= 3.7; keras-team/keras#20477).
"""

from __future__ import annotations

import math
import os
import zipfile
from pathlib import Path

import keras

from spinsr_tf.base.checks import check_int, check_real, is_int
from spinsr_tf.data.degradation import Degradation, as_degradation
from spinsr_tf.base.errors import UserError
from spinsr_tf.base.pretrained import resolve_model
from spinsr_tf.data.degradation_generator import CONDITION_SIZE
from spinsr_tf.nn.layers import (AlignedUpsample, ConditionChannels, GaussianDownsample,
                                 PixelBlend, UnitVectors, padding_layer)

#: Names of the two model outputs (and of the layers producing them).
LR_OUTPUT = "lr"
SR_OUTPUT = "sr"
#: Filters of the four convolutions of the expanding part.
EXPAND_FILTERS = (64, 64, 64, 64)
#: Name of a conditioned network's second input: ``(σ, camera pixel)`` per sample.
CONDITION_INPUT = "degradation"
#: SR output kinds: the paper's linear convolution, or projected onto unit vectors.
OUTPUTS = ("linear", "unit")


def decoder_filters(scale: int) -> tuple[int, ...]:
    """Filters of the ``log2(scale)`` up-sampling blocks: (16, 8) for ×4, (32, 16, 8) for ×8,
    (48, 32, 16, 8) for ×16 (paper); 8 for ×2; for ×2ⁿ with n > 4 the sequence continues
    ``..., 64, 48, 32, 16, 8`` in steps of 16.
    """
    n = _check_scale(scale)
    return tuple(8 if i == 0 else 16 * i for i in reversed(range(n)))


def _check_scale(scale) -> int:
    """Return ``log2(scale)``; ``scale`` must be a power of two >= 2."""
    if not is_int(scale) or scale < 2 or scale & (scale - 1):
        raise UserError(f"scale must be a power of two >= 2 (2, 4, 8, 16), got {scale!r}")
    return int(math.log2(scale))


def build_sr_model(degradation: Degradation | int = 4, channels: int = 3,
                   input_size: int | None = None, output: str = "linear",
                   residual: bool = False, conditioned: bool = False) -> keras.Model:
    """Build the SR network, uncompiled; by default exactly the paper's.

    Layers, with ``Pad`` = :class:`~spinsr_tf.nn.layers.PeriodicPadding2D` (the degradation's
    ``padding="periodic"``) or :class:`~spinsr_tf.nn.layers.ReflectPadding2D` (``"reflect"``),
    ``scale`` = the degradation's factor, all convolutions 3×3
    "valid" after a 1-pixel pad, LeakyReLU with Keras' default slope 0.3, nearest-neighbour
    ``UpSampling2D(2)``:

    - input ``"lr_input"``: ``(input_size, input_size, channels)``;
    - expanding part: 4 × [Pad(1) → Conv2D(64) → BatchNormalization → LeakyReLU];
    - decoder: ``log2(scale)`` × [Pad(1) → Conv2D(f) → BN → LeakyReLU → UpSampling2D(2)],
      ``f`` from :func:`decoder_filters`;
    - Pad(1) → Conv2D(channels) named ``"sr"``: the SR map, linear (no activation);
    - :class:`~spinsr_tf.nn.layers.GaussianDownsample` named ``"lr"``: the fixed degradation.

    Outputs: dict ``{"lr": (N, h, w, C), "sr": (N, h·scale, w·scale, C)}``.

    Two variants, still trained from LR maps alone (``docs/variants.md`` measures them):

    - ``output="unit"``: the last convolution is named ``"sr_conv"`` and the SR map ``"sr"`` is
      its projection onto unit vectors (:class:`~spinsr_tf.nn.layers.UnitVectors`; for C = 1
      ``tanh``, or with ``residual`` a bound that is the identity on [−1, 1]), so the network
      can only output physical spins.
    - ``residual=True``: ``SR = [unit](AlignedUpsample(LR) + CNN(LR))``: the CNN above (its last
      convolution ``"sr_conv"``, zero-initialised) learns a correction to the aligned bicubic
      interpolation (:class:`~spinsr_tf.nn.layers.AlignedUpsample` of the degradation's
      geometry: factor, padding, pixel model), so
      the untrained network *is* aligned bicubic (+ unit normalisation), the strongest
      baseline.

    Parameter counts (``model.count_params()``, C = 3; they include the BatchNormalization
    moving means and variances, 2·(256 + Σf) non-trainable numbers): ×2: 118,467; ×4: 124,307;
    ×8: 138,291; ×16: 161,571. For C = 1, ×4: 123,009. The degradation adds none.

    Parameters
    ----------
    degradation : Degradation or int
        The imaging model the network inverts (:class:`~spinsr_tf.data.degradation.Degradation`);
        it must match the one that made the training LR images. Its ``factor`` is the SR scale,
        a power of two >= 2 (the paper uses 4, 8, 16); its ``padding`` is also the boundary
        condition of every padding layer (periodic for simulations, reflect for images with
        borders); its ``pixel`` model places the skip path. An integer is the factor with the
        paper's settings (σ = 1 HR pixel, 23 taps, point samples, periodic).
    channels : int
        Components per site: 3 for spin vectors, 1 for scalar (e.g. MOKE Sz) images.
    input_size : int or None
        LR side length, or None (default) for a fully convolutional model that accepts any
        ``h × w`` (square or not) without rebuilding.
    output : {"linear", "unit"}
        SR map straight from the last convolution (paper) or projected onto unit vectors.
    residual : bool
        Add the CNN's output to the aligned bicubic interpolation of the input (see above).
    conditioned : bool
        Told the degradation (trained across drawn ones, docs/variants.md): a second input
        ``"degradation"`` ``(N, 2)`` = (σ in HR pixels, 1 for camera pixels else 0)
        (:func:`~spinsr_tf.data.degradation_generator.condition_vector`) enters as two
        constant channels of the LR map, and the skip path is the aligned interpolation of
        the pixel model it names. Inputs are then the dict ``{"lr_input", "degradation"}``.

    Returns
    -------
    keras.Model, not compiled; see :func:`compile_sr_model`.
    """
    degradation = as_degradation(degradation)
    scale, padding, pixel = degradation.factor, degradation.padding, degradation.pixel
    _check_scale(scale)
    channels = check_int("channels", channels, 1)
    if input_size is not None:
        check_int("input_size", input_size, 1)
    if output not in OUTPUTS:
        raise UserError(f"output must be one of {OUTPUTS}, got {output!r}")
    if not isinstance(residual, bool):
        raise UserError(f"residual must be True or False, got {residual!r}")

    def conv_block(x, filters, name):
        x = padding_layer(padding, 1, name=f"{name}_pad")(x)
        x = keras.layers.Conv2D(filters, 3, padding="valid", name=f"{name}_conv")(x)
        x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
        return keras.layers.LeakyReLU(name=f"{name}_act")(x)

    inputs = keras.Input((input_size, input_size, int(channels)), name="lr_input")
    x = inputs
    if conditioned:
        condition = keras.Input((CONDITION_SIZE,), name=CONDITION_INPUT)
        x = ConditionChannels(name="condition_channels")(x, condition)
    for i, filters in enumerate(EXPAND_FILTERS, start=1):
        x = conv_block(x, filters, f"expand{i}")
    for i, filters in enumerate(decoder_filters(scale), start=1):
        x = conv_block(x, filters, f"up{i}")
        x = keras.layers.UpSampling2D(2, name=f"up{i}_upsample")(x)
    x = padding_layer(padding, 1, name="sr_pad")(x)
    if output == "linear" and not residual:
        sr = keras.layers.Conv2D(int(channels), 3, padding="valid", name=SR_OUTPUT)(x)
    else:
        sr = keras.layers.Conv2D(int(channels), 3, padding="valid", name="sr_conv",
                                 kernel_initializer="zeros" if residual else "glorot_uniform")(x)
        if residual:
            skip = AlignedUpsample.from_degradation(degradation, name="sr_skip")(inputs)
            if conditioned:
                other = "integrate" if pixel == "sample" else "sample"
                camera = AlignedUpsample.from_degradation(degradation.replace(pixel=other),
                                                          name="sr_skip_other")(inputs)
                pair = (skip, camera) if pixel == "sample" else (camera, skip)
                skip = PixelBlend(name="sr_skip_blend")(*pair, condition)
            sr = keras.layers.Add(name=SR_OUTPUT if output == "linear" else "sr_sum")([skip, sr])
        if output == "unit":
            # one channel: tanh would turn the bicubic skip's ±1 into ±0.76; soft_clip is
            # the identity on [-1, 1] (UnitVectors)
            sr = UnitVectors(scalar="soft_clip" if residual else "tanh",
                             name=SR_OUTPUT)(sr)
    lr = GaussianDownsample.from_degradation(degradation, name=LR_OUTPUT)(sr)
    variant = (("_residual" if residual else "") + ("_unit" if output == "unit" else "")
               + ("_conditioned" if conditioned else ""))
    if conditioned:
        inputs = {"lr_input": inputs, CONDITION_INPUT: condition}
    return keras.Model(inputs, {LR_OUTPUT: lr, SR_OUTPUT: sr}, name=f"spinsr_x{scale}{variant}")


def is_conditioned(model: keras.Model) -> bool:
    """Whether ``model`` takes the degradation as a second input (``conditioned=True``)."""
    return any(layer.name == CONDITION_INPUT for layer in model.layers)


def compile_sr_model(model: keras.Model, learning_rate: float = 0.01,
                     supervised: bool = False) -> keras.Model:
    """Compile with Adam and an MSE loss on one output; returns ``model``.

    Unsupervised (default, the paper): loss on ``"lr"`` only, train with ``fit(lr, lr)``.
    Supervised (oracle trained on ground truth): loss on ``"sr"`` only, ``fit(lr, hr)``.
    The other output carries no loss. Targets may also be given as a dict keyed by output name
    (e.g. ``{"lr": lr, "sr": hr}``), but use one form throughout a compiled model: Keras fixes
    the target structure on first use (recompile to switch).

    Parameters
    ----------
    model : keras.Model
        From :func:`build_sr_model` (or :func:`load_sr_model`).
    learning_rate : float
        Adam step size; 0.01 in the paper.
    supervised : bool
        Put the loss on the SR output instead of the LR output.
    """
    _check_sr_model(model, "model")
    check_real("learning_rate", learning_rate, 0, strict=True)
    target = SR_OUTPUT if supervised else LR_OUTPUT
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=float(learning_rate)),
                  loss={target: "mse"})
    return model


def sr_submodel(model: keras.Model) -> keras.Model:
    """The network up to its SR output: ``keras.Model(model.input, model.get_layer("sr").output)``.

    Maps ``(N, h, w, C)`` LR maps to ``(N, h·scale, w·scale, C)`` SR maps; shares weights with
    ``model`` (training one trains the other). A conditioned network's submodel takes its two
    inputs; a blind one (trained with drawn degradations but not told them) takes the LR map
    alone, like any other.
    """
    _check_sr_model(model, "model")
    return keras.Model(model.input, model.get_layer(SR_OUTPUT).output,
                       name=f"{model.name}_sr")


def copy_weights(source: keras.Model, target: keras.Model) -> list[str]:
    """Start ``target`` from what ``source`` learnt: copy the weights of every convolution and
    batch normalisation (moving statistics included) of ``target`` from the layer of the same
    name in ``source``; return the names copied.

    The layers that hold the imaging model (the skip's interpolation, the fixed degradation
    ``"lr"``) are ``target``'s own, so a network trained for one degradation starts another
    (fit-image starting from a shipped model, :class:`~spinsr_tf.nn.config.TrainConfig`
    ``init``). Both must be the same architecture: the same factor, components and variant.

    Raises
    ------
    UserError
        A learnt layer of ``target`` missing from ``source`` or of another kind or shape.
    """
    _check_sr_model(source, "source")
    _check_sr_model(target, "target")
    learnt = (keras.layers.Conv2D, keras.layers.BatchNormalization)
    theirs = {layer.name: layer for layer in source.layers}
    pairs = []
    for layer in target.layers:
        if not isinstance(layer, learnt):
            continue
        other = theirs.get(layer.name)
        shapes = [tuple(w.shape) for w in layer.weights]
        if other is None or type(other) is not type(layer) or \
                [tuple(w.shape) for w in other.weights] != shapes:
            found = ("missing" if other is None else
                     f"{type(other).__name__} {[tuple(w.shape) for w in other.weights]}")
            raise UserError(f"model {source.name!r} cannot start {target.name!r}: layer "
                            f"{layer.name!r} ({type(layer).__name__} {shapes}) is {found} "
                            "there (another factor, number of components or network variant)")
        pairs.append((layer, other))
    for layer, other in pairs:
        layer.set_weights(other.get_weights())
    return [layer.name for layer, _ in pairs]


def _check_sr_model(model, what: str) -> None:
    if not isinstance(model, keras.Model):
        raise UserError(f"{what} must be a keras.Model, got {type(model).__name__}")
    names = {layer.name for layer in model.layers}
    if not {SR_OUTPUT, LR_OUTPUT} <= names:
        raise UserError(f"{what} {model.name!r} is not a spinsr model (needs layers "
                        f"{SR_OUTPUT!r} and {LR_OUTPUT!r})")


def load_sr_model(path: str | os.PathLike, compile: bool = True) -> keras.Model:
    """Load a model saved with ``model.save("name.keras")``.

    Loading uses ``safe_mode=True`` (no arbitrary code from the file); the custom layers are
    registered under the ``spinsr_tf`` package by importing this module.

    Parameters
    ----------
    path : str or PathLike
        A ``.keras`` file (zip archive), or ``"pretrained:NAME"`` for a model shipped with the
        package (:mod:`spinsr_tf.base.pretrained`, docs/pretrained.md).
    compile : bool
        Restore the optimizer and loss saved with the model (if it was compiled).

    Raises
    ------
    UserError
        Missing or unreadable file, not a ``.keras`` archive, or a model without the
        ``"sr"`` and ``"lr"`` layers ("not a spinsr model").
    """
    path = Path(resolve_model(os.fspath(path)))
    if not path.is_file():
        raise UserError(f"model file {str(path)!r} does not exist")
    if path.suffix != ".keras" or not zipfile.is_zipfile(path):
        raise UserError(f"{str(path)!r} is not a spinsr model (expected a .keras zip archive)")
    try:
        model = keras.saving.load_model(path, compile=compile, safe_mode=True)
    except (ValueError, TypeError, KeyError, OSError, zipfile.BadZipFile) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{str(path)!r} is not a spinsr model: {first}") from None
    _check_sr_model(model, f"{str(path)!r}: model")
    return model
