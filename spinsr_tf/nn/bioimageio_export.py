"""Export a trained spinsr model as a bioimage.io model package (model description format 0.5).

bioimage.io tools (deepImageJ/Fiji, ilastik, napari, BiaPy, ``bioimageio.core``) run a model from
one zip whose ``rdf.yaml`` describes its tensors, value processing and weights. The package
written here holds::

    rdf.yaml                    the description, built and validated with bioimageio.spec
    tf_saved_model_bundle.zip   the SR map as a TensorFlow SavedModel: serve(lr) -> {"sr": SR}
    test_input.npy              one LR map, in image units, shape (1, h, w, C)
    test_output.npy             what the package makes of it, shape (1, h·scale, w·scale, C)
    sample_input.tif, sample_output.tif   the same two maps for viewers
    cover.png                   LR | SR of the test tensors (spinsr_tf.data.render)
    README.md                   model card: training data, degradation, loss terms, scores

Axes are channels-last like the network: input ``lr`` and output ``sr`` are (batch, y, x,
channel). An input side is any ``min + n`` pixels (``min`` = 2·halo + 1 LR pixels); each output
side is the input's times ``scale`` (a size reference to the input axis, the output pixel being
``1/scale`` of an input pixel). The output halo is the network's reach (:func:`halo_lr`) times
``scale``: tiles cropped by it join into the one-shot result.

Values. The network works in [−1, 1]. A scalar image (C = 1) is mapped as ``fit-image`` maps
it: its ``percentile .. 100 − percentile`` range goes onto [−1, 1] (``scale_range`` then
``scale_linear``, per image); the SR output stays in network units.
Spin components (C = 3) are unit vectors already, or, for a ``fit-image`` run, divided by the
value scale of its training image (its saturation magnetisation, estimated under the optics, or
its median vector length: a fixed ``scale_linear``, undone on the output);
a run that normalised every LR vector has that step inside the SavedModel, since it is per
pixel and so the same on any tile.

A fit-image run with ``--background plane|poly2`` took a polynomial in the pixel position off
its image before the value mapping (uneven illumination). That background belongs to the one
micrograph, not to the network: another image has its own (and another size), and bioimage.io's
processing steps cannot fit one. So the package keeps the percentile mapping, its inputs must
have their illumination flattened (said in the input's description and the model card, and in
one warning at export), its outputs come without a background too, and the fitted record
(coefficients in image units, the LR shape) is kept in ``config.spinsr_tf.values.background``,
so the fit's own image minus it is the package's input. Refusing would withhold a network that
is right for flattened images; applying the recorded plane to other images would be wrong.

A conditioned network (trained across drawn degradations, told each one) is packaged with one
imaging model baked in as a constant (``pixel``/``sigma``; :func:`spinsr_tf.nn.export.
serving_model`), stated in the description, the model card and ``config.spinsr_tf.imaging``:
bioimage.io consumers feed one image tensor and have no way to give a second, non-image input.
"""

from __future__ import annotations

import json
import math
import string
import tempfile
import zipfile
from pathlib import Path

import keras
import numpy as np

from spinsr_tf._version import __version__
from spinsr_tf.base.checks import check_real
from spinsr_tf.base.errors import UserError
from spinsr_tf.base.files import atomic_path, check_replaceable, check_writable_folder
from spinsr_tf.nn.export import (check_not_input, describe_imaging, export_imaging,
                                 load_model, lr_input_shape, serving_model, write_saved_model)
from spinsr_tf.nn.network import LR_OUTPUT

INPUT_ID, OUTPUT_ID = "lr", "sr"
WEIGHTS = "tf_saved_model_bundle.zip"
#: The paper every package cites.
PAPER = ("Lee, D.B., Yoon, H.G., Park, S.M. et al. Super-resolution of magnetic systems using "
         "deep learning. Sci Rep 13, 11526 (2023)")
PAPER_DOI = "10.1038/s41598-023-38335-y"
#: The percentile of runs whose mapping.json records none: fit-image's mapping before it
#: became min..max (``spinsr_tf.inference.image_io.value_mapping``; ``--clip`` still uses it).
DEFAULT_PERCENTILE = 1.0
#: Files of a fit-image run that describe a model at RUN_DIR/train/model.keras.
_FIT_MAPPING, _FIT_TRAIN = "mapping.json", "train"
#: Test tensors are at most this many LR pixels a side (larger maps are cropped).
_TEST_SIDE = 48
_INTERPOLATIONS = ("gaussian", "bilinear", "bicubic")
_INSTALL_HINT = "pip install 'spinsr_tf[bioimageio]'"
#: What bioimage.io allows in a package name.
_NAME_CHARACTERS = frozenset(string.ascii_letters + string.digits + "_+- ()")


def halo_lr(model) -> int:
    """LR pixels on either side of an output pixel that can change it.

    Four 3×3 convolutions at LR resolution, one per up-sampling block (each at most one LR
    pixel) and the last convolution; the residual variant's aligned bicubic skip path keeps
    spline taps up to 16 LR pixels away. The same reach as fit-image's tile margin.
    """
    scale = int(model.get_layer(LR_OUTPUT).factor)
    reach = 4 + int(math.log2(scale)) + 1
    if "sr_skip" in {layer.name for layer in model.layers}:
        reach = max(reach, 16)
    return reach


def _read_json(path: Path, what: str):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{what} {str(path)!r} is not readable JSON ({exc})") from None


def run_facts(model_path, results=None) -> dict:
    """What the files beside a ``.keras`` model say about it.

    ``config`` (``config.json`` of its training run), ``mapping`` (``mapping.json`` of a
    fit-image run, for ``RUN_DIR/train/model.keras``) and ``scores`` (its rows of a
    ``results.json``: ``results``, the model folder's own (a pretrained model) or that of the
    folder holding ``run_NAME/``), each None when absent. A present but unreadable file is refused.
    """
    facts = {"config": None, "mapping": None, "scores": None}
    run_dir = Path(model_path).parent if model_path is not None else Path("-")
    if model_path is not None and (run_dir / "config.json").is_file():
        facts["config"] = _read_json(run_dir / "config.json", "run configuration")
    if (model_path is not None and run_dir.name == _FIT_TRAIN
            and (run_dir.parent / _FIT_MAPPING).is_file()):
        facts["mapping"] = _read_json(run_dir.parent / _FIT_MAPPING, "fit-image mapping")
    if results is None and model_path is not None and (run_dir / "results.json").is_file():
        results = run_dir / "results.json"  # a pretrained model's folder holds its scores
    elif results is None and model_path is not None and run_dir.name.startswith("run_"):
        candidate = run_dir.parent / "results.json"
        results = candidate if candidate.is_file() else None
    if results is not None:
        record = _read_json(Path(results), "results file")
        methods = record.get("methods") if isinstance(record, dict) else None
        if not isinstance(methods, dict):
            raise UserError(f"results file {str(results)!r} has no 'methods' table")
        networks = [k for k in methods if k.startswith("sr") and not k.endswith("_norm")]
        name = (run_dir.name[len("run_"):] if run_dir.name.startswith("run_")
                else networks[0] if len(networks) == 1 else "sr")
        if name not in methods:
            raise UserError(f"results file {str(results)!r} has no row {name!r} for this model "
                            f"(rows: {', '.join(sorted(methods))})")
        facts["scores"] = _score_rows(record, methods, name)
    return facts


def _score_rows(record: dict, methods: dict, name: str) -> dict:
    """The network's rows (and unit-normalised ones) and the strongest aligned interpolation."""
    rows = {k: methods[k] for k in (name, f"{name}_norm") if k in methods}
    baselines = {k: v for k, v in methods.items()
                 if k.split("_")[0] in _INTERPOLATIONS and "resize" not in k}
    if baselines:
        best = max(baselines, key=lambda k: float(baselines[k].get("psnr", -math.inf)))
        rows[f"{best} (strongest aligned interpolation)"] = baselines[best]
    return {"n_images": record.get("n_images"), "rows": rows}


def _check_percentile(percentile, channels: int):
    if percentile is None:
        return None
    if channels != 1:
        raise UserError("percentile applies to scalar (one-channel) models; spin components are "
                        "not mapped by percentiles")
    return check_real("percentile", percentile, 0, below=50)


def _check_out(out: Path, force: bool, inputs) -> None:
    if out.suffix.lower() != ".zip":
        raise UserError(f"a bioimage.io package is a .zip file, got --out {str(out)!r}")
    check_not_input(out, inputs, "out")
    check_writable_folder(out.parent, "out's folder")
    check_replaceable(out, "out", force, lambda p: p.is_file() and _is_package(p),
                      "bioimage.io package")


def _is_package(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as z:
            return "rdf.yaml" in z.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def _spec():
    try:
        from bioimageio.spec import save_bioimageio_package
        from bioimageio.spec.model import v0_5
    except ImportError:
        raise UserError(f"--format bioimageio needs bioimageio.spec: {_INSTALL_HINT}") from None
    return v0_5, save_bioimageio_package


def _metadata(v0_5, name, authors, license: str):
    """Name, authors and license as the description takes them, refused in one line if it
    would not (``name`` None: filled in later)."""
    if name is not None and (not isinstance(name, str) or not 5 <= len(name) <= 128
                             or not set(name) <= _NAME_CHARACTERS):
        raise UserError(f"name must be 5 to 128 letters, digits, spaces or _+-(), got {name!r}")
    if isinstance(authors, str) or any(not isinstance(a, str) or not a.strip() or "/" in a
                                       for a in authors):
        raise UserError(f"authors must be a list of names without '/', got {authors!r}")
    try:
        license_id = v0_5.LicenseId(license)
    except ValueError:
        raise UserError(f"license must be an SPDX license identifier (e.g. MIT, CC-BY-4.0), "
                        f"got {license!r}") from None
    return [v0_5.Author(name=a.strip()) for a in authors], license_id


def _value_mapping(channels: int, mapping: dict | None, percentile) -> dict:
    """How image values reach the network: ``kind`` "percentile" (with ``percentile``),
    "fixed" (``scale``, C = 3) or "none"; ``unit_vectors`` (per-pixel normalisation); scalar
    images also ``background``: the fit-image run's fitted background record (None without),
    which the package does not apply (the module's docstring says why)."""
    mapping = mapping or {}
    if channels == 1:
        p = percentile if percentile is not None else mapping.get("percentile",
                                                                  DEFAULT_PERCENTILE)
        return {"kind": "percentile", "percentile": float(p), "unit_vectors": False,
                "background": mapping.get("background") or None}
    fixed = mapping.get("kind") in ("vector_length", "saturation")
    scale = float(mapping.get("scale", 1.0)) if fixed else 1.0
    # the result (unit spins) at the saturation where the run estimated it (fit-image writes
    # its own result so: inference.fit_image.result_mapping)
    out = float(mapping.get("result_scale", scale)) if fixed else 1.0
    return {"kind": "fixed" if (scale, out) != (1.0, 1.0) else "none", "scale": scale,
            "output_scale": out, "unit_vectors": bool(mapping.get("unit_vectors", False))}


def _to_network(x: np.ndarray, values: dict) -> np.ndarray:
    """The package's preprocessing in NumPy, as bioimageio.core applies it (per image)."""
    x = np.asarray(x, np.float64)
    if values["kind"] == "percentile":
        p = values["percentile"]
        lo, hi = np.percentile(x, [p, 100.0 - p], axis=(1, 2), keepdims=True)
        x = 2.0 * (x - lo) / (hi - lo + 1e-6) - 1.0
    elif values["kind"] == "fixed":
        x = x / values["scale"]
    if values["unit_vectors"]:
        norm = np.sqrt(np.square(x).sum(axis=-1, keepdims=True))
        x = np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)
    return x.astype(np.float32)


def _unit_vectors_op(x):
    from keras import ops

    norm = ops.sqrt(ops.sum(ops.square(x), axis=-1, keepdims=True))
    return ops.where(norm > 0, x / ops.maximum(norm, 1e-30), ops.zeros_like(x))


def _sample_map(model, facts: dict, model_path, side_min: int,
                degradation=None) -> tuple[np.ndarray, str]:
    """One LR map in image units, ``(h, w, C)``, and where it comes from.

    The first map of the training data when its file is still there (HR maps degraded by
    ``degradation``, default the model's own ``lr`` layer), else a smooth random texture,
    taken back to image values with
    a fit-image run's mapping; padded (periodic or mirror, as
    the model) to at least ``side_min`` and cropped to at most ``_TEST_SIDE`` pixels a side.
    """
    import h5py

    down = model.get_layer(LR_OUTPUT)
    channels = int(lr_input_shape(model)[-1])
    config = facts["config"] or {}
    x, origin = None, "a smooth random texture (no training data file found)"
    data = config.get("data")
    paths = [] if not isinstance(data, str) else [Path(data)] + (
        [Path(model_path).parent / data] if model_path is not None else [])
    for path in paths:
        try:
            with h5py.File(path, "r") as f:
                if "lr" in f:
                    x = np.asarray(f["lr"][0], np.float32)
                elif "spins" in f and degradation is not None:
                    x = degradation.apply(np.asarray(f["spins"][:1], np.float32))[0]
                elif "spins" in f:
                    x = np.asarray(down(np.asarray(f["spins"][:1], np.float32)))[0]
        except (OSError, KeyError, ValueError):
            continue
        if x is not None and x.ndim == 3 and x.shape[-1] == channels and np.all(np.isfinite(x)):
            origin = f"the first map of the training data ({path.name})"
            break
        x = None
    if x is None:
        x = _smooth_texture(max(side_min, 32), channels, seed=0)
    mapping = facts["mapping"]
    if mapping:  # network values back to the image's (fit-image's from_network)
        x = x * float(mapping.get("scale", 1.0)) + float(mapping.get("offset", 0.0))
    pad = [(0, max(0, side_min - n)) for n in x.shape[:2]] + [(0, 0)]
    x = np.pad(x, pad, mode="wrap" if down.padding == "periodic" else "symmetric")
    return np.ascontiguousarray(x[:_TEST_SIDE, :_TEST_SIDE]), origin


def _smooth_texture(side: int, channels: int, seed: int) -> np.ndarray:
    """Unit vectors (or their z component) from low-pass filtered noise: domains a few LR
    pixels wide, so the SR map has something to show."""
    rng = np.random.default_rng(seed)
    k = np.fft.fftfreq(side)
    lowpass = np.exp(-(k[:, None] ** 2 + k[None, :] ** 2) / (2 * 0.08 ** 2))
    v = np.fft.ifft2(np.fft.fft2(rng.normal(size=(side, side, 3)), axes=(0, 1))
                     * lowpass[:, :, None], axes=(0, 1)).real
    v /= np.linalg.norm(v, axis=-1, keepdims=True)
    return (v if channels == 3 else v[..., 2:]).astype(np.float32)


def export_bioimageio(model_or_path, out, force: bool = False, *, percentile=None,
                      results=None, name: str | None = None, authors=(),
                      license: str = "MIT", pixel=None, sigma=None, report=None) -> Path:
    """Write a spinsr model as a bioimage.io model package (one ``.zip``, format 0.5).

    Parameters
    ----------
    model_or_path : keras.Model or str or PathLike
        A spinsr model, or its ``.keras`` file; the files beside it (``config.json``, a
        fit-image run's ``mapping.json``, a ``results.json``) feed the model card.
    out : str or PathLike
        The package, ``*.zip``. A previous package is replaced only with ``force``; any other
        existing file never.
    force : bool
        Replace a previous package at ``out``.
    percentile : float in [0, 50), optional
        Scalar models only: the percentile mapping's tails (default: the fit-image run's,
        else 1).
    results : str or PathLike, optional
        A ``results.json`` of ``spinsr-tf evaluate --json`` / ``reproduce`` whose rows for
        this model go into the model card (default: the one beside ``run_NAME/``).
    name, authors, license
        The package's name (letters, digits, spaces, ``_+-()``; default from the scale and
        channels), its authors (names) and its SPDX license.
    pixel, sigma, report
        The imaging of the images it will serve, baked into a conditioned network
        (:func:`spinsr_tf.nn.export.export_imaging`: defaults camera pixels and the nominal σ;
        a fixed network serves its own); ``report`` is called with the choice.

    Returns
    -------
    Path of the package, written through a temporary name (complete or absent).

    Raises
    ------
    UserError
        bioimageio.spec not installed, a model the package cannot describe (channels other
        than 1 or 3, a percentile for spin components), ``out`` not a ``.zip``, equal to an
        input, in a missing or read-only folder, or an existing file as above; a name,
        author or license the format refuses; an unreadable ``config.json``/``mapping.json``,
        a results file without this model's row. All before anything is written.
    """
    out = Path(out)
    _check_out(out, force, [model_or_path, results])
    v0_5, save_package = _spec()
    authors, license_id = _metadata(v0_5, name, authors, license)
    model_path = None if isinstance(model_or_path, keras.Model) else Path(model_or_path)
    model = load_model(model_or_path)
    channels = int(lr_input_shape(model)[-1])
    if channels not in (1, 3):
        raise UserError(f"a bioimage.io package describes scalar (1 channel) or spin-vector "
                        f"(3 channel) models; this model takes {channels} channels")
    percentile = _check_percentile(percentile, channels)
    facts = run_facts(model_path, results)
    values = _value_mapping(channels, facts["mapping"], percentile)
    if values.get("background"):
        import warnings

        warnings.warn(f"the fit-image run took a {values['background']['model']} background "
                      "(uneven illumination) off its image; the package cannot, so its inputs "
                      "must be flattened likewise (said in its model card; the fitted "
                      "coefficients are in config.spinsr_tf.values.background)", stacklevel=2)
    down = model.get_layer(LR_OUTPUT)
    scale = int(down.factor)
    halo = halo_lr(model)
    imaging = export_imaging(model, model_path, pixel, sigma, report)
    baked = imaging.degradation if imaging.conditioned else None
    sr = serving_model(model, baked)

    lr, origin = _sample_map(model, facts, model_path, 2 * halo + 1, baked)
    test_input = lr[None].astype(np.float32)
    net_in = _to_network(test_input, values)
    net_out = np.asarray(sr(net_in, training=False), np.float32)
    test_output = net_out * values["output_scale"] if values["kind"] == "fixed" else net_out

    name = name or _default_name(scale, channels)
    with tempfile.TemporaryDirectory(prefix="spinsr-bioimageio-") as tmp:
        tmp = Path(tmp)
        files = _write_files(tmp, sr, values, test_input, test_output, net_in, net_out)
        files["readme"] = tmp / "README.md"
        files["readme"].write_text(model_card(model, facts, values, halo, origin, name,
                                              imaging))
        descr = _description(v0_5, model, facts, values, halo, files, name, authors,
                             license_id, imaging)
        with atomic_path(out) as part:
            save_package(descr, output_path=part)
    return out


def _default_name(scale: int, channels: int) -> str:
    return f"spinsr_tf x{scale} super-resolution of " + (
        "spin maps" if channels == 3 else "magnetic contrast images")


def _write_files(tmp: Path, sr, values, test_input, test_output, net_in, net_out) -> dict:
    """SavedModel bundle (zipped), test tensors (``.npy``; ``.tif`` samples for viewers) and
    cover image in ``tmp``."""
    import tifffile

    from spinsr_tf.data.render import comparison_panel

    bundle = write_saved_model(sr, tmp / "saved_model", output_key=OUTPUT_ID,
                               preprocess=_unit_vectors_op if values["unit_vectors"] else None)
    with zipfile.ZipFile(tmp / WEIGHTS, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(bundle.rglob("*")):
            if path.is_file():
                z.write(path, path.relative_to(bundle).as_posix())
    files = {"weights": tmp / WEIGHTS, "cover": tmp / "cover.png"}
    for key, array in (("input", test_input), ("output", test_output)):
        files[f"test_{key}"] = tmp / f"test_{key}.npy"
        np.save(files[f"test_{key}"], array)
        files[f"sample_{key}"] = tmp / f"sample_{key}.tif"
        tifffile.imwrite(files[f"sample_{key}"], array[0])
    scale = net_out.shape[1] // net_in.shape[1]
    comparison_panel({"LR": net_in[0], f"SR x{scale}": net_out[0]}, files["cover"])
    return files


def _description(v0_5, model, facts, values, halo, files, name, authors, license,
                 imaging=None):
    """The bioimage.io ``ModelDescr`` of the package (validated as it is built)."""
    import tensorflow as tf

    down = model.get_layer(LR_OUTPUT)
    scale, channels = int(down.factor), int(lr_input_shape(model)[-1])
    baked = ("" if imaging is None or not imaging.conditioned else
             " A network conditioned on the imaging model, served here with "
             f"{describe_imaging(imaging.degradation)} baked in.")
    names = ["sx", "sy", "sz"] if channels == 3 else ["sz"]
    in_id, out_id = v0_5.TensorId(INPUT_ID), v0_5.TensorId(OUTPUT_ID)
    y, x = v0_5.AxisId("y"), v0_5.AxisId("x")

    def in_axis(axis_id):
        return v0_5.SpaceInputAxis(id=axis_id, size=v0_5.ParameterizedSize(min=2 * halo + 1,
                                                                            step=1))

    def out_axis(axis_id):
        return v0_5.SpaceOutputAxisWithHalo(
            id=axis_id, size=v0_5.SizeReference(tensor_id=in_id, axis_id=axis_id),
            scale=1.0 / scale, halo=halo * scale)

    pre, post = [], []
    if values["kind"] == "percentile":
        p = values["percentile"]
        pre = [v0_5.ScaleRangeDescr(kwargs=v0_5.ScaleRangeKwargs(
                   axes=(y, x), min_percentile=p, max_percentile=100.0 - p)),
               v0_5.ScaleLinearDescr(kwargs=v0_5.ScaleLinearKwargs(gain=2.0, offset=-1.0))]
    elif values["kind"] == "fixed":
        pre = [v0_5.ScaleLinearDescr(kwargs=v0_5.ScaleLinearKwargs(gain=1.0 / values["scale"]))]
        post = [v0_5.ScaleLinearDescr(kwargs=v0_5.ScaleLinearKwargs(
            gain=values["output_scale"]))]
    unit_out = type(model.get_layer("sr")).__name__ == "UnitVectors"
    in_range = (-1.0, 1.0) if values["kind"] == "none" else (None, None)
    out_range = (-1.0, 1.0) if unit_out and not post else (None, None)
    inputs = [v0_5.InputTensorDescr(
        id=in_id, description=_input_text(channels, values),
        axes=[v0_5.BatchAxis(), in_axis(y), in_axis(x), v0_5.ChannelAxis(channel_names=names)],
        test_tensor=v0_5.FileDescr(source=files["test_input"]),
        sample_tensor=v0_5.FileDescr(source=files["sample_input"]),
        data=v0_5.IntervalOrRatioDataDescr(type="float32", range=in_range),
        preprocessing=pre)]
    outputs = [v0_5.OutputTensorDescr(
        id=out_id, description=f"SR map, {scale}x the input in y and x",
        axes=[v0_5.BatchAxis(), out_axis(y), out_axis(x), v0_5.ChannelAxis(channel_names=names)],
        test_tensor=v0_5.FileDescr(source=files["test_output"]),
        sample_tensor=v0_5.FileDescr(source=files["sample_output"]),
        data=v0_5.IntervalOrRatioDataDescr(type="float32", range=out_range),
        postprocessing=post)]
    weights = v0_5.WeightsDescr(
        tensorflow_saved_model_bundle=v0_5.TensorflowSavedModelBundleWeightsDescr(
            source=files["weights"], tensorflow_version=v0_5.Version(tf.__version__),
            comment="Keras 3 export: endpoint 'serve' (also serving_default), input 'lr', "
                    "output {'sr': SR}; inference mode"))
    config = facts["config"] or {}
    return v0_5.ModelDescr(
        name=name,
        description=(f"Unsupervised x{scale} super-resolution of magnetic textures (Lee et al. "
                     "2023): trained on low-resolution maps alone, its SR map degraded by the "
                     "known imaging operator reproduces the input." + baked
                     + (" Inputs must have their illumination flattened: the network was fitted "
                        f"to an image whose {values['background']['model']} background was "
                        "taken off, and the package fits none."
                        if values.get("background") else "")),
        authors=authors,
        cite=[v0_5.CiteEntry(text=PAPER, doi=v0_5.Doi(PAPER_DOI))],
        license=license,
        tags=["super-resolution", "magnetism", "spin-textures", "unsupervised", "2d",
              "tensorflow"],
        documentation=v0_5.FileDescr(source=files["readme"]),
        covers=[v0_5.FileDescr(source=files["cover"])],
        inputs=inputs, outputs=outputs, weights=weights,
        config={"spinsr_tf": {"version": __version__, "scale": scale, "halo_lr": halo,
                              "degradation": (_degradation(down) if imaging is None
                                              else imaging.degradation.to_dict()),
                              "imaging": None if imaging is None else imaging.to_record(),
                              "values": values,
                              "losses": config.get("losses"),
                              "recipe": {k: config.get(k) for k in ("output", "residual")}}})


def _input_text(channels: int, values: dict) -> str:
    if channels == 1:
        # at most 128 characters (bioimage.io): the model card says more
        return ("scalar image (e.g. MOKE Sz contrast)"
                + (", illumination flattened" if values.get("background") else "")
                + f"; its {values['percentile']:g}...{100 - values['percentile']:g} percentile "
                  "range is mapped to [-1, 1]")
    if values["kind"] == "fixed":
        return (f"spin components; divided by {values['scale']:.6g} (the value scale of the "
                "training image)")
    return "spin components (Sx, Sy, Sz), unit vectors"


def _degradation(down) -> dict:
    return {"factor": int(down.factor), "kernel_size": int(down.kernel_size),
            "sigma": float(down.sigma), "padding": str(down.padding),
            "pixel": str(getattr(down, "pixel", "sample"))}


def model_card(model, facts: dict, values: dict, halo: int, test_origin: str, name: str,
               imaging=None) -> str:
    """The package's README.md: what the model was trained on and how, and how well it does."""
    down = model.get_layer(LR_OUTPUT)
    deg = _degradation(down) if imaging is None else imaging.degradation.to_dict()
    scale, channels = deg["factor"], int(lr_input_shape(model)[-1])
    config = facts["config"] or {}
    run = config.get("run") or {}
    subject = ("spin maps (Sx, Sy, Sz)" if channels == 3
               else "scalar magnetic contrast images (Sz)")
    lines = [f"# {name}", "",
             f"Super-resolution ×{scale} of {subject}, "
             "trained without high-resolution images: the network's SR map, degraded again by "
             "the known imaging operator, must reproduce the low-resolution input "
             f"(Lee et al. 2023). Exported by spinsr_tf {__version__}.", "",
             "## Training data", ""]
    if config:
        hr = run.get("hr_size")
        lines += [f"- file: `{config.get('data')}`" + (f" (HR maps `{config['hr_data']}`)"
                                                       if config.get("hr_data") else ""),
                  f"- {run.get('n_train', '?')} training and {run.get('n_val', '?')} "
                  f"validation maps" + (f", HR {hr[0]}×{hr[1]}, LR {hr[0] // scale}×"
                                        f"{hr[1] // scale}" if hr else ""),
                  f"- {config.get('epochs', '?')} epochs, batch {config.get('batch_size', '?')},"
                  f" learning rate {config.get('learning_rate', '?')}, seed "
                  f"{config.get('seed', '?')}; {run.get('loss', '')}".rstrip("; ")]
    else:
        lines += ["Not recorded (no `config.json` beside the model)."]
    lines += ["", "## Degradation", "",
              f"Gaussian blur σ = {deg['sigma']:g} HR pixels ({deg['kernel_size']}×"
              f"{deg['kernel_size']} window), then "
              + ("point sampling every" if deg["pixel"] == "sample" else "camera pixels of")
              + f" {scale} HR pixels; {deg['padding']} boundaries. Images degraded otherwise "
              "(another σ, pixel model or factor) are outside what the network was trained "
              "for." + _conditioned_text(imaging, facts), "", "## Loss terms", ""]
    losses = config.get("losses")
    if losses:
        for term in losses:
            extra = ", ".join(f"{k} = {v}" for k, v in term.items() if k not in ("term",))
            lines.append(f"- `{term.get('term')}` ({extra})")
    else:
        lines.append("Not recorded (no `config.json` beside the model).")
    sr_layer = type(model.get_layer("sr")).__name__
    lines += ["", "## Network", "",
              f"The paper's network ({model.count_params():,} parameters), "
              + ("SR output projected onto unit vectors, " if sr_layer == "UnitVectors" else "")
              + ("residual on aligned bicubic interpolation, "
                 if "sr_skip" in {layer.name for layer in model.layers} else "")
              + f"cut at its SR output. Tiles: halo {halo} LR pixels ({halo * scale} output "
              "pixels) on each side.", "", "## Input and output values", "",
              _values_text(values, channels), "",
              "## Validation", ""]
    scores = facts["scores"]
    if scores:
        lines += [f"Scores against ground truth on {scores.get('n_images', '?')} test images "
                  "(HR grid; PSNR with MAX = 2, Corr = mean S·S′):", "",
                  "| method | MSE | PSNR (dB) | Corr |", "|---|---|---|---|"]
        for label, row in scores["rows"].items():
            lines.append(f"| {label} | {_num(row.get('mse'))} | {_num(row.get('psnr'), 2)} | "
                         f"{_num(row.get('corr'))} |")
    else:
        lines += ["No scores were recorded with this model. With ground truth at hand, "
                  "`spinsr-tf evaluate --model model.keras --data test.h5 --json results.json` "
                  "scores it against interpolation; a re-export with `--results results.json` "
                  "puts them here."]
    lines += ["", f"The test tensors are {test_origin}.", "", "## Citation", "",
              f"{PAPER}. https://doi.org/{PAPER_DOI}", ""]
    return "\n".join(lines)


def _conditioned_text(imaging, facts: dict) -> str:
    """The model card's words on a conditioned network: which imaging is baked in, and the
    range it was trained across."""
    if imaging is None or not imaging.conditioned:
        return ""
    drawn = (facts["config"] or {}).get("degradations") or {}
    sigma = drawn.get("sigma")
    trained = (f" It was trained across σ {sigma[0]:g} to {sigma[1]:g} HR pixels and told each "
               "one" if isinstance(sigma, list) and len(sigma) == 2 else
               " It was trained across drawn degradations and told each one")
    return (trained + "; this package tells it the degradation above as a constant "
            "(`spinsr-tf export --pixel/--sigma` makes a package for another).")


def _values_text(values: dict, channels: int) -> str:
    if channels == 1:
        p = values["percentile"]
        return (f"Each input image's {p:g}–{100 - p:g} percentile range is mapped onto [−1, 1] "
                "(as `spinsr-tf fit-image` does); tails beyond it are kept. The output is in "
                "these network units." + _background_text(values.get("background")))
    text = ("Inputs are spin components (Sx, Sy, Sz) of unit length" if values["kind"] == "none"
            else f"Inputs are divided by {values['scale']:.6g}, the value scale of the training "
                 "image (its saturation, or its median vector length), and outputs (unit spins) "
                 f"multiplied by {values['output_scale']:.6g}, its saturation where estimated")
    if values["unit_vectors"]:
        text += "; the network normalises every input vector to unit length"
    return text + "."


def _background_text(record) -> str:
    """The model card's words on the fitted background of a fit-image run (none: "")."""
    if not record:
        return ""
    terms = ", ".join(f"{t} {c:.6g}" for t, c in zip(record["terms"], record["coefficients"]))
    h, w = record["lr_shape"]
    return ("\n\n**Illumination must be flattened.** The network was fitted (`spinsr-tf "
            f"fit-image --background {record['model']}`) to a {h}×{w} image from which a "
            f"{record['model']} background, fitted by least squares, had been taken off before "
            "the mapping above. That background was the one image's uneven illumination, not "
            "part of the model, and this package cannot fit one: give it images whose "
            "illumination is already flat (e.g. with a background of the same kind taken off); "
            "its output has no background either. The fitted background "
            f"(image units; y = (row − {record['centre'][0]:g}) / {record['unit']:g}, "
            f"x = (column − {record['centre'][1]:g}) / {record['unit']:g}, rows and columns in "
            f"LR pixels): {terms}; "
            "recorded in `config.spinsr_tf.values.background`.")


def _num(value, digits: int = 4) -> str:
    return "–" if not isinstance(value, (int, float)) else f"{value:.{digits}f}"
