"""Export the SR map of a trained model as a TensorFlow SavedModel for serving.

The SavedModel holds the network up to its ``"sr"`` layer only (the fixed degradation is a
training device, not part of the product), in inference mode (BatchNormalization uses its
moving statistics), with one endpoint ``serve`` (also the ``serving_default`` signature):

    ``serve(lr)``: ``lr`` float32 ``(N, h, w, C)``, any N, h, w → SR ``(N, h·scale, w·scale, C)``

Load it with ``tf.saved_model.load(DIR).serve(lr)`` (Python) or TensorFlow Serving.

A conditioned network (trained across drawn degradations and told each one,
``build_sr_model(..., conditioned=True)``) takes the degradation as a second input. It is
served with one degradation baked in as a constant (:func:`serving_model` with
``degradation=``), so the endpoint stays ``serve(lr)``: the one image input that bioimage.io
consumers (deepImageJ, ilastik, napari) can feed, and the same call for every model. What was
baked in is recorded in :data:`MARKER` (and in a package's ``rdf.yaml``).
:func:`served_imaging` decides which degradation an input is served with (the input file's
record, the user's ``--pixel``/``--sigma``, the model's own) and what to warn of.

An export folder holds the SavedModel and :data:`MARKER` and nothing else; ``force`` replaces
only such a folder, so a run folder (model, checkpoints, history) is never taken for one.
The bioimage.io package (:mod:`spinsr_tf.nn.bioimageio_export`) is the other export format.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

import keras
import numpy as np

from spinsr_tf._version import __version__
from spinsr_tf.base.checks import check_real
from spinsr_tf.base.errors import UserError
from spinsr_tf.base.files import check_replaceable, check_writable_folder, write_text_atomic
from spinsr_tf.data.degradation import PIXEL_MODELS, Degradation
from spinsr_tf.data.degradation_generator import condition_vector
from spinsr_tf.nn.network import (CONDITION_INPUT, LR_OUTPUT, is_conditioned, load_sr_model,
                                  sr_submodel)

#: Written into every export folder: what it is and what wrote it.
MARKER = "spinsr_export.json"
#: The top-level entries of a SavedModel folder (``saved_model.pb`` among them).
SAVED_MODEL_ENTRIES = frozenset({"saved_model.pb", "fingerprint.pb", "variables", "assets"})


#: Name of the LR input of every spinsr network.
LR_INPUT = "lr_input"
#: The pixel model a conditioned network is told for an input that records none: a camera
#: image's pixels average their area (``docs/pretrained.md``).
DEFAULT_PIXEL = "integrate"


def lr_input_shape(model: keras.Model) -> tuple:
    """``(batch, h, w, C)`` of a spinsr model's LR input (also of a conditioned network, whose
    ``input_shape`` lists its two inputs)."""
    return tuple(model.get_layer(LR_INPUT).batch_shape)


@keras.saving.register_keras_serializable(package="spinsr_tf")
class FixedCondition(keras.layers.Layer):
    """``layer(lr)``: the constant condition vector ``values`` repeated for each map of the
    batch, ``(batch, K)``: how a conditioned network is served one degradation."""

    def __init__(self, values=(1.0, 0.0), **kwargs):
        super().__init__(**kwargs)
        self.values = [float(v) for v in values]

    def call(self, lr):
        c = keras.ops.convert_to_tensor(np.asarray(self.values, np.float32), dtype=lr.dtype)
        return keras.ops.zeros_like(lr[:, :1, 0, 0]) + c[None, :]

    def compute_output_shape(self, lr_shape):
        return (lr_shape[0], len(self.values))

    def get_config(self):
        return {**super().get_config(), "values": list(self.values)}


def serving_model(model: keras.Model, degradation: Degradation | None = None) -> keras.Model:
    """The LR → SR part of a spinsr model, accepting any spatial size.

    A model built with a fixed ``input_size`` is rebuilt from its own configuration with an
    unknown spatial size (every layer keeps its arguments, the weights are copied): the network
    is fully convolutional, so nothing else changes.

    Parameters
    ----------
    model : keras.Model
        A spinsr model.
    degradation : Degradation, optional
        Conditioned networks only, and required there: the imaging model of the LR maps, told
        to the network as a constant (:func:`~spinsr_tf.data.degradation_generator.
        condition_vector`: σ in HR pixels, camera pixel or not). A network with one input
        inverts its own degradation and takes none.

    Returns
    -------
    keras.Model with one input, mapping ``(N, h, w, C)`` to ``(N, h·scale, w·scale, C)``,
    sharing or copying the weights of ``model``.
    """
    conditioned = is_conditioned(model)
    if conditioned and degradation is None:
        raise UserError(f"model {model.name!r} is conditioned on the degradation: serving it "
                        "needs one (pixel model and sigma)")
    if not conditioned and degradation is not None:
        raise UserError(f"model {model.name!r} inverts its own degradation; it takes none")
    if tuple(lr_input_shape(model)[1:3]) != (None, None):
        config = model.get_config()
        for layer in config["layers"]:
            shape = layer["config"].get("batch_shape")
            if layer["class_name"] == "InputLayer" and len(shape) == 4:
                layer["config"]["batch_shape"] = [shape[0], None, None, *shape[3:]]
        clone = keras.Model.from_config(config)
        clone.set_weights(model.get_weights())
        model = clone
    sr = sr_submodel(model)
    if not conditioned:
        return sr
    lr = keras.Input(lr_input_shape(model)[1:], name=LR_INPUT)
    condition = FixedCondition(condition_vector(degradation).tolist(),
                               name=f"{CONDITION_INPUT}_fixed")(lr)
    return keras.Model(lr, sr({LR_INPUT: lr, CONDITION_INPUT: condition}),
                       name=f"{sr.name}_served")


def describe_imaging(degradation: Degradation) -> str:
    """One phrase for a degradation, as the command line says it: ``"point samples every 4 HR
    px, Gaussian σ 1 HR px"`` or ``"camera pixels of 4x4 HR px, Gaussian σ 2 HR px"``."""
    f = degradation.factor
    pixels = (f"point samples every {f} HR px" if degradation.pixel == "sample"
              else f"camera pixels of {f}x{f} HR px")
    return f"{pixels}, Gaussian σ {degradation.sigma:g} HR px"


def check_stated(pixel=None, sigma=None, recorded: dict | None = None,
                 where: str = "the input") -> None:
    """Refuse a stated ``pixel``/``sigma`` (None: not stated) that is not a pixel model, not
    > 0, or contradicts what the input file records (``recorded``: its ``pixel``/``sigma``
    attributes, absent keys not compared). Needs no model, so a command line checks it first."""
    if pixel is not None and pixel not in PIXEL_MODELS:
        raise UserError(f"--pixel must be one of {', '.join(PIXEL_MODELS)}, got {pixel!r}")
    if sigma is not None:
        check_real("--sigma", sigma, 0, strict=True, unit="HR pixels")
    for key, stated in (("pixel", pixel), ("sigma", sigma)):
        if stated is None or not recorded or key not in recorded:
            continue
        value = recorded[key]
        if key == "sigma":
            try:
                same = bool(np.isclose(float(stated), float(value), rtol=1e-6))
            except (TypeError, ValueError):
                raise UserError(f"{where} records sigma={value!r}, not a number: a damaged "
                                "attribute") from None
        else:
            same = str(stated) == str(value)
        if not same:
            shown = f"{float(stated):g}" if key == "sigma" else stated
            raise UserError(f"--{key} {shown} contradicts {where}, which records {key}="
                            f"{value}; leave --{key} out")


@dataclasses.dataclass(frozen=True)
class ServedImaging:
    """The degradation LR maps are served with, where it came from, and what to warn of.

    ``degradation``: what the network inverts (a conditioned network is told it; another one
    inverts its own). ``source``: ``"file"`` (the input records it), ``"stated"`` (the user's
    ``--pixel``/``--sigma``, defaults for what was not stated), ``"model"`` (the model's own,
    nothing stated). ``defaults``: the settings taken as defaults (``"pixel"``, ``"sigma"``).
    ``warnings``: one line each, to print and to record.
    """

    degradation: Degradation
    source: str
    conditioned: bool
    defaults: tuple = ()
    warnings: tuple = ()

    def summary(self) -> str:
        """The clause of a one-line summary that says which imaging the maps were served with."""
        text = describe_imaging(self.degradation)
        if self.source == "file":
            return f"imaging as the input records: {text}"
        if self.source == "model":
            return f"assumed the model's imaging: {text} (state yours with --pixel/--sigma)"
        if self.conditioned:
            said = f"told the network the imaging: {text}"
            if self.defaults:
                said += (f" ({' and '.join(self.defaults)} by default, for a camera image; "
                         "state yours with --pixel/--sigma)")
            return said
        return f"served the model's imaging: {text}"

    def to_record(self) -> dict:
        """JSON-able record: the degradation (:meth:`Degradation.to_dict`), its source, the
        defaults taken and the warnings given."""
        return {"degradation": self.degradation.to_dict(), "source": self.source,
                "conditioned": self.conditioned, "defaults": list(self.defaults),
                "warnings": list(self.warnings)}


def served_imaging(model: keras.Model, *, recorded: Degradation | None = None, pixel=None,
                   sigma=None, trained=None) -> ServedImaging:
    """Which degradation a model serves LR maps with, from what the input records and what the
    user states.

    - The input records one (``recorded``, an HDF5 file of ``spinsr-tf downsample``): that
      one. A network with one input must invert it already (the caller compares the record
      with its ``lr`` layer); a stated ``pixel``/``sigma`` that contradicts it is refused.
    - No record, a conditioned network: the stated ``pixel`` (default ``"integrate"``: camera
      pixels, what a microscope image has) and ``sigma`` (default: the model's nominal σ, its
      ``lr`` layer's, the one its card states) are told to it.
    - No record, a network with one input: it inverts its own degradation. A ``pixel`` it
      cannot serve is refused (naming what it serves and pointing to ``fit-image``); a
      ``sigma`` other than its own is served anyway with a warning. A blind network
      (``trained`` given, not conditioned) serves any σ and pixel model it was trained across.
    - ``trained`` (the :class:`~spinsr_tf.data.degradation_generator.DegradationGenerator`
      of the model's ``config.json``): a σ outside its range, or a pixel model it never drew,
      is served with a warning.

    Raises
    ------
    UserError
        A bad or contradicting ``pixel``/``sigma``, a pixel model a fixed network cannot serve,
        a record whose factor or boundary differs from a conditioned network's.
    """
    own = model.get_layer(LR_OUTPUT).degradation
    conditioned = is_conditioned(model)
    check_stated(pixel, sigma, None if recorded is None else recorded.to_dict())
    notes, defaults = [], []
    if recorded is not None:
        for key in ("factor", "padding"):
            if getattr(recorded, key) != getattr(own, key):
                raise UserError(f"the input was degraded with {key}={getattr(recorded, key)}, "
                                f"the model serves {key}={getattr(own, key)}")
        if not conditioned and (recorded.pixel != own.pixel
                                or not np.isclose(recorded.sigma, own.sigma, rtol=1e-6)):
            raise UserError(f"the input records {describe_imaging(recorded)}; the model "
                            f"inverts {describe_imaging(own)}")
        used, source = recorded, "file"
    elif conditioned:
        defaults = [k for k, v in (("pixel", pixel), ("sigma", sigma)) if v is None]
        used = Degradation(own.factor, own.sigma if sigma is None else float(sigma), None,
                           DEFAULT_PIXEL if pixel is None else pixel, own.padding)
        source = "stated"
    else:
        pixels = [k for k, w in trained.pixel if w > 0] if trained is not None else [own.pixel]
        if pixel is not None and pixel not in pixels:
            raise UserError(f"the model serves {describe_imaging(own)} only, not --pixel "
                            f"{pixel}; use a model trained for {pixel} pixels (a conditioned "
                            "one), or 'spinsr-tf fit-image', which trains on the image itself")
        used, source = own, ("model" if pixel is None and sigma is None else "stated")
        if trained is not None:   # blind: trained across these, nothing to tell it
            used = own.replace(pixel=pixel or own.pixel,
                               sigma=own.sigma if sigma is None else float(sigma),
                               kernel_size=None)
        elif sigma is not None and not np.isclose(float(sigma), own.sigma, rtol=1e-6):
            notes.append(f"the model inverts Gaussian σ {own.sigma:g} HR px, not the stated "
                         f"--sigma {float(sigma):g}: served with its own (expect misplaced "
                         "sharpness; a conditioned model or 'spinsr-tf fit-image' takes yours)")
    if trained is not None:
        lo, hi = trained.sigma
        if not lo - 1e-9 <= used.sigma <= hi + 1e-9:
            notes.append(f"σ {used.sigma:g} HR px is outside the range the model was trained "
                         f"on ({lo:g} to {hi:g} HR px): expect a poorer result")
        if used.pixel not in [k for k, w in trained.pixel if w > 0]:
            notes.append(f"the model was never trained on {used.pixel!r} pixels: expect a "
                         "poorer result")
    return ServedImaging(used, source, conditioned, tuple(defaults), tuple(notes))


def trained_degradations(model_path):
    """The :class:`~spinsr_tf.data.degradation_generator.DegradationGenerator` a model's run
    drew its degradations from (``degradations`` of the ``config.json`` beside its ``.keras``
    file), or None: a fixed-degradation run, or no readable record."""
    from spinsr_tf.data.degradation_generator import as_generator

    if model_path is None or isinstance(model_path, keras.Model):
        return None
    path = Path(model_path).parent / "config.json"
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    value = record.get("degradations") if isinstance(record, dict) else None
    try:
        return None if value is None else as_generator(value)
    except UserError as exc:
        raise UserError(f"{str(path)!r} is damaged: {exc}") from None


def export_imaging(model: keras.Model, model_path=None, pixel=None, sigma=None,
                   report=None) -> ServedImaging:
    """The imaging an export serves (:func:`served_imaging` for an input that records none):
    a conditioned network gets ``pixel``/``sigma`` (defaults: camera pixels, its nominal σ)
    baked in; another one serves its own. Warnings are given; ``report(imaging)`` is called
    with the result (how a command line says it in its summary line)."""
    import warnings

    imaging = served_imaging(model, pixel=pixel, sigma=sigma,
                             trained=trained_degradations(model_path))
    for text in imaging.warnings:
        warnings.warn(text, stacklevel=3)
    if report is not None:
        report(imaging)
    return imaging


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


def export_saved_model(model_or_path, out_dir, force: bool = False, *, pixel=None,
                       sigma=None, report=None) -> Path:
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
    pixel, sigma : optional
        The imaging of the LR maps it will serve (pixel model, PSF σ in HR pixels): baked into
        a conditioned network's endpoint as a constant (defaults: camera pixels, its nominal
        σ); another network serves its own (a pixel model it cannot serve is refused, another
        σ warned of). Recorded in :data:`MARKER` (:func:`export_imaging`).
    report : callable, optional
        Called with the :class:`ServedImaging` once chosen.

    Returns
    -------
    Path of the SavedModel folder. Its ``serve`` endpoint maps float32 ``(N, h, w, C)`` to
    ``(N, h·scale, w·scale, C)`` for any N, h, w.

    Raises
    ------
    UserError
        Not a spinsr model, ``out_dir`` equal to or holding the model, a missing or read-only
        parent folder, a previous export without ``force``, a folder holding anything else;
        ``pixel``/``sigma`` as :func:`served_imaging` refuses them.
    """
    out_dir = Path(out_dir)
    check_not_input(out_dir, [model_or_path], "out_dir")
    _check_out_dir(out_dir, force)
    model = load_model(model_or_path)
    imaging = export_imaging(model, model_or_path, pixel, sigma, report)
    sr = serving_model(model, imaging.degradation if imaging.conditioned else None)
    record = {"format": "tensorflow_saved_model", "endpoint": "serve",
              "input": "lr (N, h, w, C) float32", "output": "SR (N, h*scale, w*scale, C)",
              "imaging": imaging.to_record(), "written_by": f"spinsr_tf {__version__}"}

    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
    try:
        write_saved_model(sr, tmp)
        write_text_atomic(tmp / MARKER, json.dumps(record, indent=1) + "\n")
        if out_dir.exists():
            os.replace(out_dir, old)
        os.replace(tmp, out_dir)
    finally:
        for leftover in (tmp, old):
            if leftover.exists():
                shutil.rmtree(leftover)
    return out_dir
