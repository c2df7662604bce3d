"""Export the SR map of a trained model as a TensorFlow SavedModel for serving.

The SavedModel holds the network up to its ``"sr"`` layer only (the fixed degradation is a
training device, not part of the product), in inference mode (BatchNormalization uses its
moving statistics), with one endpoint ``serve`` (also the ``serving_default`` signature):

    ``serve(lr)``: ``lr`` float32 ``(N, h, w, C)``, any N, h, w → SR ``(N, h·scale, w·scale, C)``

Load it with ``tf.saved_model.load(DIR).serve(lr)`` (Python) or TensorFlow Serving.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import keras

from spinsr_tf.base.errors import UserError
from spinsr_tf.nn.layers import UnitVectors
from spinsr_tf.nn.network import LR_OUTPUT, build_sr_model, load_sr_model, sr_submodel


def serving_model(model: keras.Model) -> keras.Model:
    """The LR → SR part of a spinsr model, accepting any spatial size.

    A model built with a fixed ``input_size`` is rebuilt without one (same configuration, same
    weights): the network is fully convolutional, so nothing else changes.

    Returns
    -------
    keras.Model mapping ``(N, h, w, C)`` to ``(N, h·scale, w·scale, C)``, sharing or copying
    the weights of ``model``.
    """
    sr = sr_submodel(model)
    if tuple(model.input_shape[1:3]) == (None, None):
        return sr
    down = model.get_layer(LR_OUTPUT)
    names = {layer.name for layer in model.layers}
    clone = build_sr_model(scale=down.factor, channels=model.input_shape[-1],
                           padding=down.padding, kernel_size=down.kernel_size, sigma=down.sigma,
                           output="unit" if isinstance(model.get_layer("sr"), UnitVectors)
                           else "linear",
                           residual="sr_skip" in names)
    clone.set_weights(model.get_weights())
    return sr_submodel(clone)


def _check_out_dir(out_dir: Path, force: bool) -> None:
    parent = out_dir.parent
    if not parent.is_dir():
        raise UserError(f"output folder's parent {str(parent)!r} does not exist")
    if out_dir.exists():
        if not out_dir.is_dir():
            raise UserError(f"out_dir {str(out_dir)!r} exists and is not a folder")
        if any(out_dir.iterdir()) and not force:
            raise UserError(f"out_dir {str(out_dir)!r} exists and is not empty; "
                            "pass force=True / --force to replace it")


def export_saved_model(model_or_path, out_dir, force: bool = False) -> Path:
    """Write the SR map of a spinsr model as a TensorFlow SavedModel folder.

    The SavedModel is written to a temporary folder next to ``out_dir`` and renamed into place,
    so ``out_dir`` is never left half-written.

    Parameters
    ----------
    model_or_path : keras.Model or str or PathLike
        A spinsr model, or a ``.keras`` file of one (e.g. ``RUN_DIR/model.keras``).
    out_dir : str or PathLike
        SavedModel folder to create. An existing empty folder is filled; an existing non-empty
        one is replaced only with ``force=True``.
    force : bool
        Replace a non-empty ``out_dir``.

    Returns
    -------
    Path of the SavedModel folder. Its ``serve`` endpoint maps float32 ``(N, h, w, C)`` to
    ``(N, h·scale, w·scale, C)`` for any N, h, w.

    Raises
    ------
    UserError
        Not a spinsr model, a missing parent folder, an existing non-empty ``out_dir`` without
        ``force``.
    """
    import tensorflow as tf

    out_dir = Path(out_dir)
    _check_out_dir(out_dir, force)
    if isinstance(model_or_path, keras.Model):
        model = model_or_path
    else:
        model = load_sr_model(model_or_path, compile=False)
    sr = serving_model(model)
    channels = int(sr.input_shape[-1])

    archive = keras.export.ExportArchive()
    archive.track(sr)
    archive.add_endpoint(
        name="serve",
        fn=lambda lr: sr(lr, training=False),
        input_signature=[tf.TensorSpec((None, None, None, channels), tf.float32, name="lr")],
    )
    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
    try:
        archive.write_out(str(tmp), verbose=False)
        if out_dir.exists():
            os.replace(out_dir, old)
        os.replace(tmp, out_dir)
    finally:
        for leftover in (tmp, old):
            if leftover.exists():
                shutil.rmtree(leftover)
    return out_dir
