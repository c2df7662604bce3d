"""``spinsr-tf upscale``: super-resolve an image or a stack of maps with a trained model."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from spinsr_tf.cli import model_argument


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "upscale",
        help="super-resolve LR maps or images with a trained model",
        description="Read INPUT (.npy, .h5/.hdf5, .tif/.tiff, .png or OOMMF/mumax3 .ovf/.omf), "
        "run the SR network and write the SR maps to --out (format from its extension; HDF5 "
        "dataset 'sr'), in the input's layout (one map (H, W, C) stays one map). 8/16-bit "
        "images are mapped to [-1, 1] and written back in the same bit depth when --out is a "
        "PNG or TIFF; a TIFF's pixel size is divided by the factor. A grey image (one channel: "
        "Sz, Kerr, MFM) with a scalar model (pretrained:universal-sz-x4, -x8): its values are "
        "mapped onto [-1, 1] by their range (min..max over the input, as fit-image does) and "
        "back, recorded as value_mapping. OVF input: every layer is "
        "a map, divided by Ms for the network and multiplied back (Ms: the median vector length, "
        "or for a blurred file the saturation estimated under the imaging); "
        "an .ovf --out keeps the file's mesh (cell size divided by the factor in x and y), "
        "origin, units and title. Holes (cells outside the magnet: zero or NaN vectors, NaN grey "
        "levels) are never fed to the network (it sees their nearest magnet cell) and come "
        "back as zero vectors (0 for a grey map): no output file holds NaN. The imaging model "
        "of the LR maps (PSF σ, pixel model) is "
        "the one an HDF5 input records (spinsr-tf downsample); for an input that records none, "
        "a conditioned model is told --pixel/--sigma and another model assumes its own, and the "
        "summary line says which. Every check is made before the network runs.",
    )
    p.add_argument("input", metavar="INPUT", help="LR image or maps")
    p.add_argument("--model", required=True, type=model_argument,
                   help="trained model, e.g. RUN_DIR/model.keras, or pretrained:NAME for a "
                   "shipped one (docs/pretrained.md)")
    p.add_argument("--out", required=True,
                   help="output file (.npy, .h5, .tif, .png or .ovf for 3-component maps)")
    p.add_argument("--dataset", default=None,
                   help="HDF5 input: dataset to read (default: 'lr', 'spins' or 'sr')")
    p.add_argument("--batch-size", type=int, default=8, help="maps per forward pass (default 8)")
    i = p.add_argument_group("imaging of an input that records none (.npy, .ovf, images)")
    i.add_argument("--pixel", choices=PIXEL_CHOICES, default=None,
                   help="how the LR pixels were made: 'integrate' (camera pixels averaging their "
                   "area; default for a conditioned model) or 'sample' (point samples). A model "
                   "with one fixed degradation serves its own pixel model only")
    i.add_argument("--sigma", type=sigma_argument, default=None, metavar="S",
                   help="Gaussian PSF width of the LR maps, HR pixels (> 0; default: the "
                   "model's). A conditioned model is told it (a warning outside the range it was "
                   "trained on); another model warns when it is not its own. What was used is "
                   "recorded in the output (HDF5 attributes lr_degradation.*, an OVF header line "
                   "or OUT_STEM.degradation.json)")
    u = p.add_argument_group("symmetric copies and uncertainty (docs/uncertainty.md)")
    u.add_argument("--single-pass", action="store_true",
                   help="one forward pass of the network (the paper's recipe; 8-16 times "
                   "faster). Default: the mean of the SR maps of the input's symmetric copies "
                   "(quarter turns, the mirrors the model's Hamiltonian keeps, and the flip "
                   "where the map has no net Sz), which scores higher (docs/uncertainty.md)")
    u.add_argument("--uncertainty", action="store_true",
                   help="also write OUT_STEM.uncertainty.npy (N, H, W) and a PNG of it: per HR "
                   "pixel, the spread of the SR maps of the symmetric copies and the error the "
                   "same maps make on their mean degraded again: high where they disagree or go "
                   "wrong (twice the network passes of the mean alone)")
    p.add_argument("--force", action="store_true",
                   help="replace an existing --out file (and uncertainty files); never the input")
    r = p.add_argument_group("per-image physics refinement (periodic spin maps; "
                             "docs/physics_sr.md)")
    r.add_argument("--refine", choices=["none", "physics"], default="none",
                   help="physics: start from the network's SR map and minimise MSE(degrade(SR), "
                   "LR) + lambda * E/N per map (default none)")
    r.add_argument("--physics", choices=["typeI", "typeII", "exchange"], default=None,
                   help="Hamiltonian of the refinement (default: the model's training prior)")
    r.add_argument("--physics-weight", default=None, metavar="LAMBDA",
                   help="lambda (default: the model's; 'auto' or none there: chosen from the "
                   "LR maps alone)")
    r.add_argument("--physics-set", action="append", default=[], metavar="NAME=VALUE",
                   help="replace a Hamiltonian parameter, e.g. dmi=0.36 (repeatable)")
    r.add_argument("--steps", type=int, default=300, help="refinement steps (default 300)")
    p.set_defaults(func=run, inputs=("input", "model"), outputs=("out",), output_files=("out",))


#: ``--pixel`` values (:data:`spinsr_tf.data.degradation.PIXEL_MODELS`).
PIXEL_CHOICES = ("sample", "integrate")


def sigma_argument(text: str) -> float:
    """argparse type of ``--sigma``: a finite PSF width > 0, HR pixels."""
    import math

    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0 (HR pixels), got {text!r}")
    return value


def refinement_plan(args, model, lr, degradation=None):
    """``(hamiltonian, weight)`` of ``--refine physics``: from the flags, else the prior the
    model was trained with (its run's ``config.json``), else an error; λ 'auto' is chosen from
    ``lr`` made with ``degradation`` (default: the model's)."""
    from spinsr_tf.base.errors import UserError
    from spinsr_tf.inference.weight_rule import choose_weight
    from spinsr_tf.nn.losses import PhysicsPrior
    from spinsr_tf.nn.network import LR_OUTPUT
    from spinsr_tf.nn.training import read_run_config
    from spinsr_tf.physics.priors import check_weight, parse_overrides, resolve_prior

    config = read_run_config(Path(args.model).parent)
    trained = None if config is None else config.term(PhysicsPrior)
    overrides = parse_overrides(args.physics_set)
    if args.physics is None and trained is None:
        raise UserError("--refine physics needs --physics (the model was trained without a prior)")
    attrs = None if trained is None else {f"hamiltonian.{k}": v
                                          for k, v in trained.hamiltonian.items()}
    name = args.physics or trained.prior
    ham = resolve_prior(name, attrs, overrides)
    if args.physics_weight not in (None, "auto"):
        try:
            return ham, check_weight(float(args.physics_weight))
        except ValueError:
            raise UserError(f"--physics-weight must be a number or 'auto', got "
                            f"{args.physics_weight!r}") from None
    if args.physics_weight is None and trained is not None and args.physics is None:
        return ham, trained.weight
    return ham, choose_weight(lr, ham, degradation or model.get_layer(LR_OUTPUT).degradation)


#: Smallest LR side the network accepts (its 1-pixel reflect padding needs two pixels).
MIN_SIZE = 2
#: Working memory of the mean over the symmetric copies per byte of SR output (float32): the
#: streamed moments in float64 (a reference, the sums, the squares) and one member's float64
#: temporaries; one pass needs 4.
SYMMETRIC_MEMORY = 14


def output_dtype(out_format: str, info) -> str:
    """Stored dtype of the SR output: an 8/16-bit input is written back in its bit depth to
    PNG/TIFF; PNG otherwise stores uint8; float everywhere else."""
    if out_format in ("png", "tiff") and info.is_intensity:
        return info.dtype
    return "uint8" if out_format == "png" else "float32"


def uncertainty_paths(out: Path) -> tuple[Path, Path]:
    """``OUT_STEM.uncertainty.npy`` and ``.png`` beside ``out``."""
    stem = out.with_suffix("")
    return (stem.with_name(stem.name + ".uncertainty.npy"),
            stem.with_name(stem.name + ".uncertainty.png"))


def _check_uncertainty_paths(paths, args) -> None:
    from spinsr_tf.base.errors import UserError

    for path in paths:
        if path.exists() and Path(args.input).exists() and path.samefile(args.input):
            raise UserError(f"uncertainty file {str(path)!r} is the input file; choose another "
                            f"--out")
        if path.is_dir():
            raise UserError(f"uncertainty file {str(path)!r} is a directory")
        if path.exists() and not args.force:
            raise UserError(f"uncertainty file {str(path)!r} exists; pass --force to replace it")


def recorded_degradation(path) -> dict:
    """The degradation attributes an HDF5 input records (``downsample`` writes factor,
    kernel_size, sigma, padding and pixel), as stored; empty when it records none."""
    import h5py

    from spinsr_tf.data.stream import DEGRADATION_ATTRS

    with h5py.File(path, "r") as f:
        return {k: f.attrs[k] for k in DEGRADATION_ATTRS if k in f.attrs}


def stated_record(attrs: dict) -> dict:
    """The pixel model and σ an input's attributes say (a file that records a degradation but
    not these two was made before they were recorded: point samples, σ 1), for comparing
    ``--pixel``/``--sigma`` with; empty when it records none."""
    if not attrs:
        return {}
    pixel = attrs.get("pixel", "sample")
    return {"pixel": pixel.decode() if isinstance(pixel, bytes) else pixel,
            "sigma": attrs.get("sigma", 1.0)}


def check_recorded_degradation(path, layer, keys=None) -> None:
    """Refuse LR maps whose file records a degradation other than the model's (``downsample``
    writes factor, kernel_size, sigma, padding and pixel as file attributes): a network inverts
    one degradation, and on another it would return confident nonsense. ``keys``: the settings
    compared (default all; a conditioned network is told σ and pixel model, so only its factor
    and boundary must agree). Settings the file does not record are not compared."""
    import numpy as np

    from spinsr_tf.base.errors import UserError
    from spinsr_tf.data.stream import DEGRADATION_ATTRS

    attrs = recorded_degradation(path)
    for key in keys or DEGRADATION_ATTRS:
        if key not in attrs:
            continue
        recorded, own = attrs[key], getattr(layer, key)
        recorded = recorded.decode() if isinstance(recorded, bytes) else recorded
        if key == "sigma":
            try:
                recorded = float(recorded)
            except (TypeError, ValueError):
                raise UserError(f"input {str(path)!r} records sigma={recorded!r}, not a number: "
                                "a damaged attribute") from None
        same = (np.isclose(recorded, float(own), rtol=1e-6) if key == "sigma"
                else str(recorded) == str(own))
        if not same:
            raise UserError(f"input {str(path)!r} was degraded with {key}={recorded}, the model "
                            f"inverts {key}={own}; use a model trained on the input's degradation")


def output_layout(shape, info) -> tuple:
    """The SR maps' ``(N, H, W, C)`` shape in the input's layout: one map read from an
    ``(H, W)`` or ``(H, W, C)`` file is written back as one (:attr:`ImageInfo.ndim`)."""
    n, h, w, c = shape
    if n == 1 and info.ndim == 2 and c == 1:
        return (h, w)
    if n == 1 and info.ndim == 3:
        return (h, w, c)
    return tuple(shape)


def output_metadata(out_format: str, info, scale: int, model_path, notes=()) -> dict:
    """``write_image`` metadata of the SR maps: an OVF header (the input file's on the finer
    mesh, else an unknown mesh: steps 0; ``notes`` as further description lines) or a TIFF
    pixel size divided by ``scale``."""
    from spinsr_tf.data.io import scaled_pixel

    if out_format == "ovf":
        from spinsr_tf.data.ovf import ovf_header

        model = Path(model_path)
        note = f"spinsr-tf upscale: x{scale} super-resolution by {model.parent.name}/{model.name}"
        if info.format == "ovf":
            return {"ovf": ovf_header(info.meta, scale, desc=[note, *notes])}
        return {"ovf": {"cellsize": (0.0, 0.0, 0.0),
                        "desc": [note, "cell size unknown", *notes]}}
    if out_format == "tiff" and info.format == "tiff":
        return {"pixel": scaled_pixel(info.meta, scale)}
    return {}


def degradation_path(out: Path) -> Path:
    """``OUT_STEM.degradation.json`` beside ``out``: the imaging record of an output format
    without attributes (.npy, .png, .tif)."""
    stem = out.with_suffix("")
    return stem.with_name(stem.name + ".degradation.json")


#: How a grey image's values ``v`` meet the network (the record's ``value_mapping``).
MAPPING_NOTE = ("network value x = (v - offset) / scale; output v = x * scale + offset, v being "
                "the image values (8/16-bit intensities after from_intensity: -1..1)")


def mapping_summary(mapping: dict, intensity_dtype: str | None = None) -> str:
    """The summary line's words for a grey image's value mapping, in the file's units: the
    stored grey levels of an 8/16-bit image (``intensity_dtype``), else the values."""
    half = 0.0 if mapping["constant"] else mapping["scale"]
    lo, hi = (mapping["offset"] + s * half for s in (-1.0, 1.0))
    if intensity_dtype is not None:
        from spinsr_tf.data.io import to_intensity

        lo, hi = (int(to_intensity(v, intensity_dtype)) for v in (lo, hi))
    if mapping["constant"]:
        return f"grey levels: a constant image ({lo:.4g}) maps to 0 and back"
    return f"grey levels {lo:.4g}..{hi:.4g} mapped onto [-1, 1] and back"


#: Output formats whose imaging record is a sidecar file (:func:`degradation_path`).
SIDECAR_FORMATS = ("npy", "png", "tiff")


def saturation_gain(lr, magnet, degradation):
    """Ms of OVF spin maps ``lr`` ``(N, H, W, 3)`` already divided by their median vector
    length, estimated under the imaging they are served with
    (:func:`~spinsr_tf.inference.optics.estimate_saturation`, as fit-image does): the median of
    the maps' trusted estimates, or None if none is trusted. A file that was blurred (block-
    averaged camera pixels) has LR vectors shorter than Ms where the texture turns, and its
    median reads Ms low; a simulation's own cells are not blurred, and keep the median."""
    import numpy as np

    from spinsr_tf.inference.optics import estimate_saturation

    gains = []
    for x, m in zip(lr, magnet):
        est = estimate_saturation(x, degradation, None if m.all() else m)
        if est.confident:
            gains.append(est.value)
    return float(np.median(gains)) if gains else None


def imaging_notes(served) -> list[str]:
    """OVF description lines of the imaging the SR maps were served with."""
    d = served.degradation
    return [(f"LR imaging ({served.source}): factor {d.factor}, sigma {d.sigma:g} HR px, "
             f"pixel {d.pixel}, kernel {d.kernel_size}, padding {d.padding}"),
            *(f"warning: {w}" for w in served.warnings)]


def write_imaging_record(out: Path, served, args, mapping: dict | None = None,
                         groups: list | None = None) -> None:
    """The sidecar :func:`degradation_path` of ``out``: what the SR maps were served with (and
    a grey image's ``value_mapping``, :func:`~spinsr_tf.inference.image_io.value_mapping`;
    ``ensemble``: each map's symmetry group, or ``"single pass"``)."""
    import json

    from spinsr_tf.base.files import write_text_atomic

    record = {**served.to_record(), "model": os.path.abspath(args.model),
              "input": os.path.abspath(args.input), "output": os.path.abspath(out)}
    if mapping is not None:
        record["value_mapping"] = {**mapping, "note": MAPPING_NOTE}
    record["ensemble"] = {"groups": list(groups)} if groups else "single pass"
    write_text_atomic(degradation_path(out), json.dumps(record, indent=1) + "\n")


def served_for(args, model, attrs: dict):
    """The :class:`~spinsr_tf.nn.export.ServedImaging` of this run: the input's record
    (``attrs``), else ``--pixel``/``--sigma``, else the model's; its warnings given."""
    import warnings

    from spinsr_tf.data.degradation import Degradation
    from spinsr_tf.nn.export import served_imaging, trained_degradations
    from spinsr_tf.nn.network import LR_OUTPUT, is_conditioned

    own = model.get_layer(LR_OUTPUT).degradation
    recorded = None
    if attrs:
        check_recorded_degradation(args.input, model.get_layer(LR_OUTPUT),
                                   ("factor", "padding") if is_conditioned(model) else None)
        # what the file leaves out: the model's own for a fixed network (the rule of
        # check_recorded_degradation), the reader's legacy defaults for a conditioned one
        base = ({"factor": own.factor, "padding": own.padding} if is_conditioned(model)
                else own.to_attrs())
        recorded = Degradation.from_attrs({**base, **attrs})
    served = served_imaging(model, recorded=recorded, pixel=args.pixel, sigma=args.sigma,
                            trained=trained_degradations(args.model))
    for text in served.warnings:
        warnings.warn(text, stacklevel=2)
    return served


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from spinsr_tf.data.io import check_writable, image_format, read_image, write_image
    from spinsr_tf.base.errors import UserError

    out = Path(args.out)
    out_format = image_format(out)
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be a positive integer, got {args.batch_size}")
    if args.uncertainty and args.single_pass:
        raise UserError("--uncertainty needs the symmetric copies; leave out --single-pass")
    if out.exists() and Path(args.input).exists() and out.samefile(args.input):
        raise UserError(f"--out {str(out)!r} is the input file; choose another output")
    lr, info = read_image(args.input, dataset=args.dataset, return_info=True, holes=True)
    from spinsr_tf.nn.export import check_stated

    attrs = recorded_degradation(args.input) if info.format == "h5" else {}
    check_stated(args.pixel, args.sigma, stated_record(attrs), f"input {args.input!r}")
    n, h, w, c = lr.shape
    if min(h, w) < MIN_SIZE:
        raise UserError(f"input {args.input!r} is {h}x{w}; the network needs at least "
                        f"{MIN_SIZE}x{MIN_SIZE} pixels")
    # what the output can hold, before the model is loaded (the factor does not change it)
    check_writable(out, output_layout((n, h, w, c), info), output_dtype(out_format, info),
                   **output_metadata(out_format, info, 2, args.model))
    if out_format in SIDECAR_FORMATS:
        _check_uncertainty_paths([degradation_path(out)], args)
    magnitude = 1.0
    if info.format == "ovf" and info.meta["magnitude"] > 0:
        # stored values (e.g. A/m) -> ~unit vectors for the network, and back
        magnitude = float(info.meta["magnitude"])
        lr = (lr / magnitude).astype(np.float32)
    from spinsr_tf.data.mask import fill_holes, hr_mask, mask_from_values

    # cells outside the magnet (zero or NaN vectors, NaN grey levels): the network sees their
    # nearest magnet cell (never NaN), the result a hole (spinsr_tf.data.mask)
    magnet = mask_from_values(lr) if c in (1, 3) else np.all(np.isfinite(lr), axis=-1)
    if not magnet.all():
        lr = np.where(np.isfinite(lr), lr, 0).astype(lr.dtype)
        lr = np.stack([fill_holes(x, m) if m.any() else x for x, m in zip(lr, magnet)])

    from spinsr_tf.nn.export import lr_input_shape, serving_model
    from spinsr_tf.nn.network import LR_OUTPUT, load_sr_model

    model = load_sr_model(args.model, compile=False)
    channels = int(lr_input_shape(model)[-1])
    if c != channels:
        hint = ("; for a grey (Sz, Kerr, MFM) image use 'spinsr-tf fit-image', which trains on "
                "the image itself, or a scalar model (pretrained:universal-sz-x4, ...)"
                if c == 1 else
                "; a spin-vector map needs a 3-component model (pretrained:type-I-x4, ...)"
                if c == 3 else "")
        raise UserError(f"input {args.input!r} has {c} channel(s) but the model expects "
                        f"{channels}{hint}")
    mapping = None
    if c == 1:
        # grey levels (any offset and contrast) onto the network's [-1, 1] as fit-image maps
        # them (min..max of the input, all its maps), and back after the network
        from spinsr_tf.inference.image_io import to_network, value_mapping

        mapping = value_mapping(lr)
        lr = to_network(lr, mapping)
    scale = int(model.get_layer(LR_OUTPUT).factor)
    served = served_for(args, model, attrs)
    if args.uncertainty and served.conditioned:
        raise UserError("--uncertainty does not serve a conditioned model yet; leave it out")
    meta = output_metadata(out_format, info, scale, args.model, imaging_notes(served))
    layout = output_layout((n, h * scale, w * scale, c), info)
    fmt, dtype = check_writable(out, layout, output_dtype(out_format, info), **meta)
    # the SR maps (float32, with a float64 copy for stored units) in memory and on disk, before
    # the network runs: a large input at x16 is 256 times larger out
    from spinsr_tf.data.io import array_bytes, check_size

    sr_bytes = array_bytes((n, h * scale, w * scale, c))
    symmetric = not (args.single_pass or served.conditioned)
    check_size(f"super-resolving {str(args.input)!r} ({n} map(s) of {h}x{w} at x{scale}"
               + ("; the mean of its symmetric copies, --single-pass needs less)" if symmetric
                  else ")"),
               memory=(SYMMETRIC_MEMORY if symmetric else 4) * sr_bytes, disk=sr_bytes,
               folder=out.parent)
    if args.uncertainty:
        upaths = uncertainty_paths(out)
        _check_uncertainty_paths(upaths, args)
    if args.refine == "physics":
        if c != 3 or model.get_layer(LR_OUTPUT).padding != "periodic":
            raise UserError("--refine physics needs periodic spin maps (3 channels, a model "
                            "trained with periodic padding)")
        if args.steps < 0:
            raise UserError(f"--steps must be >= 0, got {args.steps}")
    value_notes = []   # after the checks: the estimate re-degrades every map
    if magnitude != 1.0 and c == 3:
        gain = saturation_gain(lr, magnet, served.degradation)
        if gain is not None:   # a blurred file: its median length reads Ms low
            lr = (lr / gain).astype(np.float32)
            value_notes = [f"values: divided by the saturation {magnitude * gain:.6g} estimated "
                           f"under the imaging (median vector length {magnitude:.6g})"]
            magnitude *= gain
            meta = output_metadata(out_format, info, scale, args.model,
                                   imaging_notes(served) + value_notes)
    if args.refine == "physics":   # its weight rule reads the maps in network units
        hamiltonian, weight = refinement_plan(args, model, lr, served.degradation)
    groups = None
    if symmetric:
        from spinsr_tf.inference.ensemble import IN_FIELD, MAGNETISED, NO_REFLECTIONS
        from spinsr_tf.inference.uncertainty import symmetric_mean, trained_hamiltonian

        print(f"super-resolving {n} map(s) and their symmetric copies "
              f"({model.get_layer(LR_OUTPUT).padding} maps; --single-pass: one pass)")
        sr, spread, groups = symmetric_mean(model, lr, magnet, trained_hamiltonian(args.model),
                                            uncertainty=args.uncertainty,
                                            batch_size=args.batch_size, progress=print)
        magnetised = sum(g in (IN_FIELD, NO_REFLECTIONS[IN_FIELD]) for g in groups)
        if magnetised:
            print(f"{magnetised} of {n} map(s) magnetised (|mean Sz| > {MAGNETISED:g}): their "
                  "copies leave out the flip S -> -S")
    else:
        sr = serving_model(model, served.degradation if served.conditioned else None).predict(
            lr, batch_size=args.batch_size, verbose=0)
    if args.refine == "physics":
        import time

        from spinsr_tf.inference.refine import refine

        t0 = time.perf_counter()
        sr = refine(lr, hamiltonian, weight, served.degradation, start=sr, steps=args.steps)
        print(f"refined {n} map(s) with lambda {weight:g}, {args.steps} steps "
              f"({time.perf_counter() - t0:.1f} s)")
    sr = np.asarray(sr, np.float64 if magnitude != 1.0 else np.float32) * magnitude
    if mapping is not None:
        from spinsr_tf.inference.image_io import from_network

        sr = from_network(sr, mapping)
    if not magnet.all():
        outside = ~hr_mask(magnet, served.degradation)
        sr[outside] = 0.0
        if args.uncertainty:
            spread[outside] = 0.0
        print(f"holes: {int((~magnet).sum())} LR cells outside the magnet "
              + ("(zero or NaN vectors) come back as zero vectors" if c == 3 else
                 "(NaN) come back as 0"))
    record = served.to_record()
    write_image(out, np.reshape(sr, layout), dtype=dtype, dataset="sr",
                attrs={"scale": scale, "model": os.path.abspath(args.model),
                       "input": os.path.abspath(args.input),
                       **{f"lr_degradation.{k}": v
                          for k, v in served.degradation.to_attrs().items()},
                       "lr_degradation.source": served.source,
                       **({"ensemble.groups": groups} if groups else {}),
                       "lr_degradation.warnings": record["warnings"],
                       **{f"value_mapping.{k}": v for k, v in (mapping or {}).items()}},
                **meta)
    if out_format in SIDECAR_FORMATS:
        write_imaging_record(out, served, args, mapping, groups)
    print(f"wrote {out}: {n} SR map(s) of {h * scale}x{w * scale}x{c} (x{scale}, {dtype}); "
          f"{served.summary()}" + ("" if mapping is None else "; " + mapping_summary(
              mapping, info.dtype if info.is_intensity else None))
          + "".join(f"; {note}" for note in value_notes)
          + ("; the mean of the symmetric copies" if groups else "; one pass"))
    if args.uncertainty:
        from spinsr_tf.base.files import atomic_path
        from spinsr_tf.inference.uncertainty import uncertainty_figure

        with atomic_path(upaths[0]) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, spread)
        uncertainty_figure(spread, upaths[1], title=f"uncertainty of {out.name}")
        print(f"wrote {upaths[0]} and {upaths[1]}: uncertainty mean "
              f"{float(spread.mean()):.3g}, max {float(spread.max()):.3g}")
    return 0
