"""Super-resolve one large real image: train on its own patches, then infer the whole image.

This is the paper's Fig. 7 workflow. A microscope image (MOKE: one channel of Sz contrast; SPLEEM
or a coarse simulation: three components) has no high-resolution counterpart, but it is large:
split into overlapping P×P patches it is a training set for the unsupervised network (the loss
only compares the re-degraded SR patch with the LR patch). The trained, fully convolutional
network is then run over the *whole* image, tile by tile.

A run lives in one folder::

    RUN_DIR/fit.json           the arguments and the image's identity (resume checks them)
    RUN_DIR/mapping.json       image values → network values, and back
    RUN_DIR/degradation.json   the optics the network assumed: PSF σ, pixel model, noise, and
                               how each was obtained (given, estimated, or a default)
    RUN_DIR/patches.h5         dataset "lr" (N, P, P, C) + the degradation attributes
    RUN_DIR/train/             the training run (spinsr_tf.nn.training.train)
    RUN_DIR/sr.EXT             the SR image, mapped back to the input's units and encoding
    RUN_DIR/bicubic.EXT        aligned bicubic interpolation, the same way
    RUN_DIR/{lr,sr,bicubic}_values.npy   (H, W, C) float32 in network units
    RUN_DIR/uncertainty.npy    (H·f, W·f) float32: spread of the SR map over the lattice's
                               point symmetries (transform, super-resolve, transform back)
                               and the error of the same on the result degraded again
    RUN_DIR/uncertainty.png    the same as a picture
    RUN_DIR/preview.png        LR | bicubic | SR side by side

Optics. A microscope does not say how wide its point-spread function is, and camera pixels
integrate over their area. By default the pixel model is ``"integrate"`` and the PSF width and
the noise are estimated from the image itself (:mod:`spinsr_tf.inference.optics`); given
values override. With a noise level the data term is :class:`~spinsr_tf.nn.losses.Recorrupted`
(it does not reward reproducing the noise) instead of the plain LR term. An estimate the
estimator is unsure of is reported in one line and recorded, and a default is used instead.
The paper's assumptions are ``sigma=1, pixel="sample", noise="none"``.

Mapping. Image values go to the network's units and back through
:mod:`spinsr_tf.inference.image_io` (scalar images onto [-1, 1] by percentiles, vector images
by their median length); OVF cells of zero magnitude (holes, outside the magnet) enter as zero
vectors, which the unit-vector SR output cannot reproduce, so mask them in the result if they
matter. Patches and inference tiles: :mod:`spinsr_tf.inference.tiling`.

Paddings (boundary conditions): real images are not periodic, so the network, its degradation and the bicubic
baseline use mirror (``"reflect"``) padding.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import os
import sys
from pathlib import Path

import numpy as np

from spinsr_tf.data.degradation import check_degradation_args, gaussian_downsample
from spinsr_tf.base.checks import check_bool, check_int
from spinsr_tf.base.errors import UserError
from spinsr_tf.base.files import atomic_path, save_npy_atomic, write_text_atomic
from spinsr_tf.inference.image_io import read_input, to_network, value_mapping, write_like_input
from spinsr_tf.inference.optics import choose_optics
from spinsr_tf.inference.tiling import MIN_PATCH, extract_patches, patch_starts, super_resolve

FIT, MAPPING, PATCHES, TRAIN = "fit.json", "mapping.json", "patches.h5", "train"
DEGRADATION, UNCERTAINTY = "degradation.json", "uncertainty.npy"
#: The training recipe of fit-image (:data:`spinsr_tf.nn.config.RECIPES`).
FIT_RECIPE = "equivariant"
#: fit.json keys a resumed run may change.
_RESUMABLE = ("epochs", "progress", "jit_compile", "tile", "image")
#: Default training length: MAX_EPOCHS passes over the patches, fewer for a large image so that
#: training takes about STEP_BUDGET optimizer steps at most (its time grows with the patches,
#: its quality stops growing; measured in docs/results.md, Fig. 7).
MAX_EPOCHS, STEP_BUDGET = 40, 720
#: Default patch spacing, in patch sides: a quarter patch. On the 512² Fig. 7 stand-ins, under
#: the default length rule, a quarter beats a half by 0.8 dB (Kerr) and 1.3 dB (SPLEEM); an
#: eighth takes twice the time for +0.16 / −1.5 dB (docs/results.md, "Patch spacing").
STRIDE_SHARE = 4


def _val_fraction(n_patches: int) -> float:
    """Share of the patches held out for validation (none for a handful)."""
    return 0.1 if n_patches >= 10 else 0.0


def default_epochs(shape, patch: int, stride: int, batch_size: int) -> int:
    """Epochs of a fit of an ``(h, w)`` image: :data:`MAX_EPOCHS`, or fewer so that the
    training patches (as :func:`fit_image` splits them) take about :data:`STEP_BUDGET` steps
    of ``batch_size``."""
    from spinsr_tf.data.stream import split_indices

    n = len(patch_starts(shape[0], patch, stride)) * len(patch_starts(shape[1], patch, stride))
    n_train = len(split_indices(n, _val_fraction(n))[0])
    steps = math.ceil(n_train / batch_size)
    return max(1, min(MAX_EPOCHS, math.ceil(STEP_BUDGET / steps)))


# --- the run ---------------------------------------------------------------------------------

def _write_patches(path: Path, patches: np.ndarray, corners: np.ndarray, attrs: dict) -> None:
    import h5py

    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("lr", data=patches, chunks=(1, *patches.shape[1:]))
        f.create_dataset("corners", data=corners)
        for key, value in attrs.items():
            f.attrs[key] = value


def _check_out_dir(run_dir: Path, resume: bool) -> None:
    """Refuse a folder the run may not use, before any work (the estimates take seconds)."""
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"out_dir {str(run_dir)!r} exists and is not a folder")
    if (run_dir / FIT).exists():
        if not resume:
            raise UserError(f"out_dir {str(run_dir)!r} holds a fit-image run; pass "
                            "resume=True / --resume to continue it, or choose another folder")
    elif run_dir.exists() and any(run_dir.iterdir()):
        raise UserError(f"out_dir {str(run_dir)!r} exists, is not empty and holds no "
                        "fit-image run; choose an empty or new folder")


def _prepare(run_dir: Path, config: dict, resume: bool) -> None:
    path = run_dir / FIT
    _check_out_dir(run_dir, resume)
    if path.exists():
        try:
            stored = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot read {str(path)!r}: {exc}") from None
        diff = sorted(k for k in set(stored) | set(config)
                      if k not in _RESUMABLE and stored.get(k) != config.get(k))
        if diff:
            shown = ", ".join(f"{k}={stored.get(k)!r} (now {config.get(k)!r})" for k in diff[:3])
            raise UserError(f"cannot resume {str(run_dir)!r}: {shown}")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create out_dir {str(run_dir)!r}: {exc}") from None
    write_text_atomic(path, json.dumps(config, indent=1, sort_keys=True) + "\n")


def _preview(run_dir: Path, lr: np.ndarray, bicubic: np.ndarray, sr: np.ndarray, scale: int,
             limit: int = 64) -> Path:
    from spinsr_tf.data.render import comparison_panel

    h, w = lr.shape[:2]
    r0, c0 = max(0, (h - limit) // 2), max(0, (w - limit) // 2)
    r1, c1 = min(h, r0 + limit), min(w, c0 + limit)
    crop = lambda a, f: a[r0 * f:r1 * f, c0 * f:c1 * f]  # noqa: E731
    note = "" if (r1 - r0, c1 - c0) == (h, w) else f" (centre {r1 - r0}x{c1 - c0} LR pixels)"
    return comparison_panel({"LR": crop(lr, 1), "bicubic": crop(bicubic, scale),
                             f"SR x{scale}": crop(sr, scale)}, run_dir / "preview.png",
                            title=f"fit-image{note}")


def _identity(image: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(image, dtype=np.float32).tobytes()).hexdigest()


def fit_image(image_path, scale: int = 8, patch: int = 16, out_dir="fit_image_run",
              stride: int | None = None, epochs: int | None = None, batch_size: int = 16,
              learning_rate: float = 1e-3, seed: int = 0, sigma="auto",
              kernel_size: int | None = None, resume: bool = False, progress: bool = True,
              percentile: float = 1.0, unit_vectors: bool = False, layer: int | None = None,
              tile: int = 128, jit_compile: bool = True, network: str = None,
              pixel: str = "integrate", noise="auto", uncertainty: bool = True) -> dict:
    """Train the SR network on the patches of one image and super-resolve the whole image.

    Parameters
    ----------
    image_path : str or PathLike
        ``.png``, ``.tif``/``.tiff``, ``.npy``, ``.h5``/``.hdf5`` or ``.ovf``: one image,
        grey levels (C = 1) or spin components (C = 3), see :func:`read_input`.
    scale : int
        SR factor, a power of two (the paper: 8).
    patch : int
        Patch side in LR pixels (>= :data:`MIN_PATCH`; the paper's ×8 networks see 16).
    out_dir : str or PathLike
        The run folder (see the module docstring); must be new or empty unless resuming.
    stride : int, optional
        Distance between patches, LR pixels; default ``patch // STRIDE_SHARE`` (4 for the
        ×8 patch of 16). The last row and column
        of patches are shifted to end at the image border, so every pixel is covered.
    epochs : int, optional
        Training passes over the patches; default :func:`default_epochs` (40, fewer for a
        large image: about :data:`STEP_BUDGET` steps).
    batch_size, learning_rate, seed
        Training (:func:`spinsr_tf.nn.training.train`, Adam).
    network : str, optional
        The training recipe (:data:`spinsr_tf.nn.config.RECIPES`); default :data:`FIT_RECIPE`.
    sigma : float or "auto"
        PSF width (HR pixels) the network assumes; "auto" estimates it from the image
        (:func:`spinsr_tf.inference.optics.choose_optics`).
    kernel_size : int, optional
        Odd Gaussian window side, HR pixels; default: enough for ±4σ (at least 23).
    pixel : {"integrate", "sample"}
        Camera pixels that average their f×f block (default), or point samples (the paper's).
    noise : "auto", "none", "gaussian", "poisson" or a number
        The noise model of the data term; "auto" estimates it (Poisson–Gaussian for integer
        images, Gaussian otherwise); a number is a Gaussian standard deviation in image
        units; "none" uses the plain LR term (fits the noise).
    uncertainty : bool
        Super-resolve the image once per point symmetry: the result is the members' mean and
        ``uncertainty.npy`` / ``.png`` their spread and their error on the result degraded
        again (:func:`~spinsr_tf.inference.uncertainty.symmetry_spread`; False: one tiled pass
        of the network).
    resume : bool
        Continue a run in ``out_dir`` (patches reused, training resumed); the settings other
        than ``epochs`` and ``tile`` must match.
    progress : bool
        Print what happens and show Keras' progress bar.
    percentile : float
        Scalar images: range used by the value mapping (:func:`value_mapping`).
    unit_vectors : bool
        Vector images: normalise every LR vector to unit length before training
        (:func:`value_mapping`); advisable for noisy component images.
    layer : int, optional
        OVF files with several z layers: the layer to use.
    tile : int
        Core tile side (LR pixels) of the whole-image inference (:func:`super_resolve`).
    jit_compile : bool
        XLA for the training step.

    Returns
    -------
    dict: ``run_dir``, ``sr`` and ``bicubic`` (output paths), ``preview``, ``mapping``,
    ``n_patches``, ``lr_shape`` / ``sr_shape`` ``(H, W, C)``, ``history`` (per epoch),
    ``lr_mse`` (``{"sr", "bicubic"}``: mean squared difference between the re-degraded result
    and the LR image, network units, mean over pixels of the sum over components),
    ``degradation`` (what ``degradation.json`` holds), ``uncertainty`` (its path or None).

    Raises
    ------
    UserError
        Unreadable or unsuitable image (too small for one patch, NaN, colour, transparent),
        bad arguments, a non-empty ``out_dir`` without ``resume``. Nothing is written in
        ``out_dir`` before the image and the arguments have been checked.
    """
    from spinsr_tf.nn.network import decoder_filters

    decoder_filters(scale)
    check_degradation_args(scale, 23 if kernel_size is None else kernel_size,
                           1.0 if sigma == "auto" else sigma, "reflect", pixel)
    check_bool("uncertainty", uncertainty)
    patch = check_int("patch", patch, MIN_PATCH)
    stride = max(1, patch // STRIDE_SHARE) if stride is None else check_int("stride", stride, 1)
    if stride > patch:
        raise UserError(f"stride {stride} is larger than patch {patch}: pixels would be skipped")
    if epochs is not None:
        epochs = check_int("epochs", epochs, 1)
    batch_size = check_int("batch_size", batch_size, 1)
    tile = check_int("tile", tile, 1)
    seed = check_int("seed", seed, 0)
    from spinsr_tf.nn.config import RECIPES

    network = FIT_RECIPE if network is None else network
    if network not in RECIPES or network == "oracle":
        raise UserError(f"network must be one of {', '.join(n for n in RECIPES if n != 'oracle')}"
                        f", got {network!r}")
    if (isinstance(learning_rate, bool) or not isinstance(learning_rate, numbers.Real)
            or not math.isfinite(learning_rate) or learning_rate <= 0):
        raise UserError(f"learning_rate must be a finite number > 0, got {learning_rate!r}")
    image_path = Path(image_path)
    raw, info = read_input(image_path, layer=layer)
    h, w, c = raw.shape
    if min(h, w) < patch:
        raise UserError(f"image {str(image_path)!r} is {h}x{w} pixels, smaller than one "
                        f"patch ({patch}x{patch}); use a smaller patch")
    mapping = {**value_mapping(raw, percentile, unit_vectors), "format": info["format"],
               "dtype": info["dtype"], "channels": c,
               "note": "network value x = (v - offset) / scale; v = x * scale + offset, "
                       "v being the image values (integer intensities after from_intensity)"}
    lr = to_network(raw, mapping)
    if epochs is None:
        epochs = default_epochs((h, w), patch, stride, batch_size)
    run_dir = Path(out_dir)
    _check_out_dir(run_dir, resume)
    counts = bool(np.issubdtype(np.dtype(info["dtype"]), np.integer))
    # image units per network unit: grey levels for integer images (read_input maps their
    # full range onto [-1, 1]), the values themselves otherwise
    per_unit = mapping["scale"] * (np.iinfo(np.dtype(info["dtype"])).max
                                   - np.iinfo(np.dtype(info["dtype"])).min) / 2.0 \
        if counts else mapping["scale"]
    optics = choose_optics(lr, scale, sigma, pixel, noise, image_scale=per_unit,
                           counts=counts, image_min=None if counts else float(np.min(raw)))
    if kernel_size is not None:
        optics["kernel_size"] = int(kernel_size)
    sigma, kernel_size = optics["sigma"], optics["kernel_size"]
    config = {"image": os.path.abspath(image_path), "image_sha256": _identity(raw),
              "image_shape": [h, w, c], "scale": int(scale), "patch": patch, "stride": stride,
              "epochs": epochs, "batch_size": batch_size, "learning_rate": float(learning_rate),
              "seed": seed, "sigma": float(sigma), "kernel_size": int(kernel_size),
              "pixel": pixel, "noise": optics["noise_kind"],
              "noise_std": optics["noise_std"], "noise_slope": optics["noise_slope"],
              "uncertainty": bool(uncertainty),
              "percentile": float(percentile), "unit_vectors": bool(unit_vectors),
              "layer": layer, "tile": tile,
              "jit_compile": bool(jit_compile), "network": network}
    _prepare(run_dir, config, resume)
    say = print if progress else (lambda *a, **k: None)
    write_text_atomic(run_dir / MAPPING, json.dumps(mapping, indent=1, sort_keys=True) + "\n")
    write_text_atomic(run_dir / DEGRADATION, json.dumps(optics, indent=1, sort_keys=True) + "\n")
    for line in optics["warnings"]:
        print(f"fit-image: {line}", file=sys.stderr)
    sigma_how = optics["how"]["sigma"]
    sigma_source = sigma_how["method"]
    if not sigma_how.get("confident", True) and not sigma_source.startswith("default"):
        sigma_source = "default, estimate not used"
    say(f"fit-image: optics: sigma {sigma:.3g} HR px ({sigma_source}), "
        f"pixel {pixel}, noise {optics['noise_kind']}"
        + (f" std {optics['noise_std']:.3g}" if optics["noise_kind"] != "none" else "")
        + (f" + {optics['noise_slope']:.3g}*x" if optics["noise_slope"] else "")
        + " (network units"
        + (f"; {optics['how']['noise']['method'].split(' (')[0]}"
           if optics["noise_kind"] != "none" else "") + ")")

    patches_path = run_dir / PATCHES
    if patches_path.exists():
        import h5py

        with h5py.File(patches_path, "r") as f:
            n_patches = int(f["lr"].shape[0])
        say(f"fit-image: reusing {n_patches} patches in {patches_path}")
    else:
        patches, corners = extract_patches(lr, patch, stride)
        n_patches = len(patches)
        _write_patches(patches_path, patches, corners,
                       {"factor": int(scale), "kernel_size": int(kernel_size),
                        "sigma": float(sigma), "padding": "reflect", "pixel": pixel,
                        "patch": patch,
                        "stride": stride, "source": os.path.abspath(image_path)})
        say(f"fit-image: {n_patches} patches of {patch}x{patch} (stride {stride}) from a "
            f"{h}x{w}x{c} image -> {patches_path}")

    from spinsr_tf.nn.config import RECIPES, recipe
    from spinsr_tf.nn.losses import LRConsistency, Recorrupted
    from spinsr_tf.nn.training import CONFIG, MODEL, train

    losses = RECIPES[network]["losses"]
    if optics["noise_kind"] != "none":
        losses = tuple(Recorrupted(noise_std=optics["noise_std"],
                                   noise_slope=optics["noise_slope"])
                       if isinstance(t, LRConsistency) else t for t in losses)
    train_dir = run_dir / TRAIN
    train_config = recipe(network, patches_path, scale, epochs=epochs, batch_size=batch_size,
                          learning_rate=learning_rate,
                          val_fraction=_val_fraction(n_patches), seed=seed,
                          kernel_size=kernel_size, sigma=sigma, padding="reflect",
                          pixel=pixel, jit_compile=jit_compile, losses=losses)
    history = train(train_config, train_dir, resume=(train_dir / CONFIG).exists(),
                    progress=progress)
    from spinsr_tf.data.interpolation import upsample
    from spinsr_tf.nn.network import load_sr_model

    model = load_sr_model(train_dir / MODEL, compile=False)
    epochs_done = len(history.get('epoch', []))
    spread = None
    if uncertainty:
        from spinsr_tf.inference.uncertainty import symmetry_spread

        # the members T_g⁻¹ f(T_g y) give both: their mean is the result (it scores higher
        # against ground truth than f(y) alone: docs/uncertainty.md), their spread and their
        # error on the result degraded again the map of where to trust it
        say(f"fit-image: trained {epochs_done} epoch(s); super-resolving the image once per "
            "point symmetry (result: their mean), then the result degraded again "
            "(uncertainty: spread + error on it)")
        members_mean, spread = symmetry_spread(model, lr[None], padding="reflect", pixel=pixel,
                                               sr="mean", batch_size=1)
        sr = members_mean[0]
    else:
        say(f"fit-image: trained {epochs_done} epoch(s); super-resolving the whole image in "
            f"tiles of {tile} LR pixels")
        sr = super_resolve(model, lr, tile=tile)
    bicubic = upsample(lr[None], scale, "bicubic", "aligned", padding="reflect", pixel=pixel)[0]
    outputs = {}
    for name, values in (("lr", lr), ("sr", sr), ("bicubic", bicubic)):
        save_npy_atomic(run_dir / f"{name}_values.npy", values)
        if name != "lr":
            outputs[name] = write_like_input(run_dir / name, values, info, mapping, scale)
    preview = _preview(run_dir, lr, bicubic, sr, scale)
    uncertainty_path = None
    if spread is not None:
        from spinsr_tf.inference.uncertainty import uncertainty_figure

        uncertainty_path = run_dir / UNCERTAINTY
        save_npy_atomic(uncertainty_path, spread[0].astype(np.float32))
        uncertainty_figure(spread[:1], run_dir / "uncertainty.png",
                           title="uncertainty (symmetry spread + error on the result degraded "
                                 "again, network units)")
    lr_mse = {}
    for name, values in (("sr", sr), ("bicubic", bicubic)):
        back = gaussian_downsample(values[None], scale, kernel_size, sigma, "reflect",
                                   pixel=pixel)[0]
        lr_mse[name] = float(np.square(back - lr).sum(axis=-1).mean())
    say(f"fit-image: wrote {outputs['sr']} ({h * scale}x{w * scale}x{c}), "
        f"{outputs['bicubic']}, {preview}; LR misfit sr {lr_mse['sr']:.3g}, "
        f"bicubic {lr_mse['bicubic']:.3g}")
    return {"run_dir": run_dir, "sr": outputs["sr"], "bicubic": outputs["bicubic"],
            "preview": preview, "mapping": mapping, "n_patches": n_patches,
            "lr_shape": (h, w, c), "sr_shape": tuple(sr.shape), "history": history,
            "lr_mse": lr_mse, "degradation": optics, "uncertainty": uncertainty_path}
