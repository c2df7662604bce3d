"""Export the SR map of a trained model as a TensorFlow SavedModel for serving.

The SavedModel holds the network up to its ``"sr"`` layer only (the fixed degradation is a
training device, not part of the product), in inference mode (BatchNormalization uses its
moving statistics), with one endpoint ``serve`` (also the ``serving_default`` signature):

    ``serve(lr)``: ``lr`` float32 ``(N, h, w, C)``, any N, h, w → SR ``(N, h·scale, w·scale, C)``

Load it with ``tf.saved_model.load(DIR).serve(lr)`` (Python) or TensorFlow Serving.

An export folder holds the SavedModel and :data:`MARKER` and nothing else; ``force`` replaces
only such a folder, so a run folder (model, checkpoints, history) is never taken for one.
The bioimage.io package (:mod:`spinsr_tf.nn.bioimageio_export`) is the other export format.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import keras

from spinsr_tf._version import __version__
from spinsr_tf.base.errors import UserError
from spinsr_tf.base.files import check_replaceable, check_writable_folder, write_text_atomic
from spinsr_tf.nn.network import load_sr_model, sr_submodel

#: Written into every export folder: what it is and what wrote it.
MARKER = "spinsr_export.json"
#: The top-level entries of a SavedModel folder (``saved_model.pb`` among them).
SAVED_MODEL_ENTRIES = frozenset({"saved_model.pb", "fingerprint.pb", "variables", "assets"})


def serving_model(model: keras.Model) -> keras.Model:
    """The LR → SR part of a spinsr model, accepting any spatial size.

    A model built with a fixed ``input_size`` is rebuilt from its own configuration with an
    unknown spatial size (every layer keeps its arguments, the weights are copied): the network
    is fully convolutional, so nothing else changes.

    Returns
    -------
    keras.Model mapping ``(N, h, w, C)`` to ``(N, h·scale, w·scale, C)``, sharing or copying
    the weights of ``model``.
    """
    sr = sr_submodel(model)
    if tuple(model.input_shape[1:3]) == (None, None):
        return sr
    config = model.get_config()
    for layer in config["layers"]:
        if layer["class_name"] == "InputLayer":
            shape = layer["config"]["batch_shape"]
            layer["config"]["batch_shape"] = [shape[0], None, None, *shape[3:]]
    clone = keras.Model.from_config(config)
    clone.set_weights(model.get_weights())
    return sr_submodel(clone)


def load_model(model_or_path) -> keras.Model:
    """A spinsr model as given, or loaded (uncompiled) from its ``.keras`` file."""
    if isinstance(model_or_path, keras.Model):
        return model_or_path
    return load_sr_model(model_or_path, compile=False)


def check_not_input(out: Path, inputs, what: str) -> None:
    """Refuse an output that is one of the inputs or a folder holding one."""
    target = out.resolve()
    for given in inputs:
        if given is None or isinstance(given, keras.Model):
            continue
        source = Path(given).resolve()
        if source == target or target in source.parents:
            raise UserError(f"{what} {str(out)!r} would replace the input {str(given)!r}; "
                            "choose another output")


def is_export_folder(folder: Path) -> bool:
    """Whether ``folder`` holds a SavedModel and nothing else (what :func:`export_saved_model`
    writes), so that replacing it loses nothing but a previous export."""
    names = {p.name for p in folder.iterdir()}
    return "saved_model.pb" in names and names <= SAVED_MODEL_ENTRIES | {MARKER}


def _check_out_dir(out_dir: Path, force: bool) -> None:
    check_writable_folder(out_dir.parent, "out_dir's folder")
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"out_dir {str(out_dir)!r} exists and is not a folder")
    if out_dir.is_dir() and not any(out_dir.iterdir()):
        return
    check_replaceable(out_dir, "out_dir", force, is_export_folder, "SavedModel export")


def write_saved_model(sr: keras.Model, path, output_key: str | None = None,
                      preprocess=None) -> Path:
    """Write the ``serve`` endpoint of an LR → SR model as a SavedModel folder ``path``.

    ``output_key`` returns ``{output_key: sr}`` instead of the bare tensor (bioimage.io's
    TensorFlow runner matches outputs by name); ``preprocess`` is a ``keras.ops`` function
    applied to the input first. The input is named ``"lr"``.
    """
    import tensorflow as tf

    channels = int(sr.input_shape[-1])

    def serve(lr):
        x = lr if preprocess is None else preprocess(lr)
        y = sr(x, training=False)
        return y if output_key is None else {output_key: y}

    archive = keras.export.ExportArchive()
    archive.track(sr)
    archive.add_endpoint(
        name="serve", fn=serve,
        input_signature=[tf.TensorSpec((None, None, None, channels), tf.float32, name="lr")],
    )
    archive.write_out(str(path), verbose=False)
    return Path(path)


def export_saved_model(model_or_path, out_dir, force: bool = False) -> Path:
    """Write the SR map of a spinsr model as a TensorFlow SavedModel folder.

    The SavedModel is written to a temporary folder next to ``out_dir`` and renamed into place,
    so ``out_dir`` is never left half-written.

    Parameters
    ----------
    model_or_path : keras.Model or str or PathLike
        A spinsr model, or a ``.keras`` file of one (e.g. ``RUN_DIR/model.keras``).
    out_dir : str or PathLike
        SavedModel folder to create. An existing empty folder is filled; a previous export
        (a SavedModel and :data:`MARKER`, nothing else) is replaced only with ``force=True``;
        any other non-empty folder never.
    force : bool
        Replace a previous export in ``out_dir``.

    Returns
    -------
    Path of the SavedModel folder. Its ``serve`` endpoint maps float32 ``(N, h, w, C)`` to
    ``(N, h·scale, w·scale, C)`` for any N, h, w.

    Raises
    ------
    UserError
        Not a spinsr model, ``out_dir`` equal to or holding the model, a missing or read-only
        parent folder, a previous export without ``force``, a folder holding anything else.
    """
    out_dir = Path(out_dir)
    check_not_input(out_dir, [model_or_path], "out_dir")
    _check_out_dir(out_dir, force)
    sr = serving_model(load_model(model_or_path))

    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
    try:
        write_saved_model(sr, tmp)
        write_text_atomic(tmp / MARKER, json.dumps({
            "format": "tensorflow_saved_model", "endpoint": "serve",
            "input": "lr (N, h, w, C) float32", "output": "SR (N, h*scale, w*scale, C)",
            "written_by": f"spinsr_tf {__version__}"}, indent=1) + "\n")
        if out_dir.exists():
            os.replace(out_dir, old)
        os.replace(tmp, out_dir)
    finally:
        for leftover in (tmp, old):
            if leftover.exists():
                shutil.rmtree(leftover)
    return out_dir
