"""Super-resolve one large real image: train on its own patches, then infer the whole image.

This is the paper's Fig. 7 workflow. A microscope image (MOKE: one channel of Sz contrast; SPLEEM
or a coarse simulation: three components) has no high-resolution counterpart, but it is large:
split into overlapping P×P patches it is a training set for the unsupervised network (the loss
only compares the re-degraded SR patch with the LR patch). The trained, fully convolutional
network is then run over the *whole* image, tile by tile.

The run is a pipeline of named steps (:data:`STEPS`: read → estimate optics → saturation →
configure → train → super-resolve → uncertainty → write) over one frozen, checked
:class:`FitConfig`; each step reads and fills a :class:`FitRun`. A run lives in one folder::

    RUN_DIR/fit.json           the arguments and the image's identity (resume checks them)
    RUN_DIR/mapping.json       image values → network values, and back
    RUN_DIR/degradation.json   the optics the network assumed: PSF σ, pixel model, noise, and
                               how each was obtained (given, estimated, or a default); and
                               the symmetry group of the symmetry term and of the result's
                               mean (``ensemble``: :func:`ensemble_group`)
    RUN_DIR/patches.h5         dataset "lr" (N, P, P, C) + the degradation attributes
    RUN_DIR/train/             the training run (spinsr_tf.nn.training.train)
    RUN_DIR/sr.EXT             the SR image, mapped back to the input's units and encoding
    RUN_DIR/bicubic.EXT        aligned bicubic interpolation, the same way
    RUN_DIR/{lr,sr,bicubic}_values.npy   (H, W, C) float32 in network units
    RUN_DIR/uncertainty.npy    (H·f, W·f) float32: spread of the SR map over the lattice's
                               point symmetries (transform, super-resolve, transform back)
                               and the error of the same on the result degraded again
    RUN_DIR/uncertainty.png    the same as a picture
    RUN_DIR/preview.png        input | bicubic | result | uncertainty, with what was estimated

Optics. A microscope does not say how wide its point-spread function is, and camera pixels
integrate over their area. By default the pixel model is ``"integrate"`` and the PSF width and
the noise are estimated from the image itself (:mod:`spinsr_tf.inference.optics`, the noise
model :class:`~spinsr_tf.data.noise.NoiseModel`); given values override. With a noise level
the data term is :class:`~spinsr_tf.nn.losses.Recorrupted` (it does not reward reproducing
the noise; strength :data:`FIT_ALPHA`) instead of the plain LR term. An estimate the
estimator is unsure of is reported in one line and recorded, and a default is used instead.
The paper's assumptions are ``sigma=1, pixel="sample", noise="none"``.

Mapping. Image values go to the network's units and back through
:mod:`spinsr_tf.inference.image_io` (scalar images onto [-1, 1] by their min .. max, so the
result is not capped, or with ``clip`` by the 1st–99th percentiles and clipped there; vector
images by their saturation magnetisation estimated under the optics, :func:`saturation`, or
by their median vector length where that estimate is not trusted); the results keep the
input's layout and metadata (an OVF mesh, origin, units and title, a TIFF's pixel size) on the
finer grid. Patches and inference tiles: :mod:`spinsr_tf.inference.tiling`.

Masks. Cells outside the magnet (:mod:`spinsr_tf.data.mask`: zero or NaN vectors of a
3-component image, a grey image's burnt-in label, saturated, stuck or NaN pixels, found when it
is read; or a user's mask image; ``mask="none"`` turns it off)
are left out of the optics estimates, of training and of the misfit, and come back as holes:
zero vectors, or a scalar image's own value there. Training uses only the patches that lie on the
magnet entirely (:func:`training_patches`: a patch with a hole in it would teach the network an
edge that is not there; the training pipeline has no per-pixel weights). NaN never reaches the
network: holes are filled with their nearest magnet cell before it (so that the receptive field
of an edge pixel sees texture continued, not zeros) and restored after. ``degradation.json``
records the mask: where it came from, how many LR cells it leaves out, and how the patches were
chosen.

Start. Training starts from random weights, or (``init``) from the network of an earlier fit
of an image with the same optics (a series of micrographs), for a quarter of the length.

Paddings (boundary conditions): real images are not periodic, so the network, its degradation
and the bicubic baseline use mirror (``"reflect"``) padding.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import sys
from pathlib import Path
from typing import Callable

import numpy as np

from spinsr_tf.base.checks import (check_bool, check_choice, check_int, check_real,
                                   describe_mismatch)
from spinsr_tf.base.errors import UserError
from spinsr_tf.base.files import save_npy_atomic, write_json_atomic
from spinsr_tf.data.degradation import Degradation, check_degradation_args
from spinsr_tf.data.mask import (MASK_SUFFIXES, check_mask, fill_holes, hr_mask, hr_nearest,
                                 inside, mask_from_grey, mask_from_values, mask_record,
                                 read_mask)
from spinsr_tf.data.noise import NoiseModel
from spinsr_tf.inference.ensemble import ensemble_group
from spinsr_tf.inference.image_io import (BACKGROUNDS, CLIP_PERCENTILE, PERCENTILE,
                                          background_map, check_like_input, fit_background,
                                          read_input, to_network, value_mapping,
                                          write_like_input)
from spinsr_tf.inference.optics import DEFAULT_SIGMA, choose_optics, estimate_saturation
from spinsr_tf.inference.tiling import (MIN_IMAGE, MIN_PATCH, extract_patches, fit_patch,
                                        patch_starts, super_resolve)

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
#: A fit that starts from another fit's network (``init``) trains this share of the default
#: length: on two 256² films, 10 epochs from a fit of the other (the same optics) scored within
#: 0.44 dB of 40 from random weights (+6.31 vs +6.55, +6.46 vs +6.02 dB over aligned
#: bicubic_norm) in less than half the time (docs/generalization.md, "fit-image from a start").
START_SHARE = 4
#: Recorruption strength of the data term on a noisy image (:class:`~spinsr_tf.nn.losses.
#: Recorrupted`'s ``alpha``; 0.5 where many images train one network). One image's own noise is
#: in every recorrupted pair, and with 0.5 the fit follows it after about 20 epochs; with 2 the
#: input's fresh noise (twice the image's) hides it and the target's share (a quarter) is
#: small. Two 256² tune films, noise 0.05 Ms, 40 epochs, both ensembles without the flip: 29.43 /
#: 28.01 dB against 25.92 / 26.95 with 0.5 (at 80 epochs, weights averaged: 29.89 / 28.26,
#: still rising on the first); docs/generalization.md "fit-image on noisy images".
FIT_ALPHA = 2.0
#: Fewest training patches on the magnet entirely, at the run's stride, before denser ones are
#: taken (stride 1), and, if even those are fewer, the patches with holes (filled) as well.
MIN_INSIDE_PATCHES = 8
#: The mask settings other than a file.
MASK_CHOICES = ("auto", "none")
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
    n = len(patch_starts(shape[0], patch, stride)) * len(patch_starts(shape[1], patch, stride))
    return _epochs_for(n, batch_size)


def _epochs_for(n: int, batch_size: int, share: int = 1) -> int:
    """Epochs of a fit on ``n`` patches (:func:`default_epochs`), divided by ``share`` (a fit
    from a start, :data:`START_SHARE`)."""
    from spinsr_tf.data.stream import split_indices

    n_train = len(split_indices(n, _val_fraction(n))[0])
    steps = math.ceil(n_train / batch_size)
    return max(1, math.ceil(min(MAX_EPOCHS, math.ceil(STEP_BUDGET / steps)) / share))


def training_patches(image, mask, patch: int, stride: int):
    """The patches a fit trains on, and how they were chosen.

    Without a mask: every patch of the :func:`~spinsr_tf.inference.tiling.patch_starts` grid.
    With one (``(H, W)`` bool, True on the magnet): the patches on the magnet entirely, since
    the LR term of a patch with a hole would fit an edge that the texture does not have; if
    fewer than :data:`MIN_INSIDE_PATCHES` lie on the stride's grid, those at every position
    (stride 1); if still fewer, every patch of the grid, its holes filled with their nearest
    magnet cell (:func:`~spinsr_tf.data.mask.fill_holes`, done by the caller), said in ``how``.

    Returns
    -------
    patches : ndarray (N, patch, patch, C) float32
    corners : ndarray (N, 2) int64
    how : dict, ``patches`` (N) and ``rule`` (one line), recorded in ``degradation.json``
    """
    patches, corners = extract_patches(image, patch, stride)
    if mask is None:
        return patches, corners, {"patches": len(patches), "rule": "every patch"}
    keep = inside(mask, corners, patch)
    rule = f"the {int(keep.sum())} of {len(keep)} patches (stride {stride}) on the magnet entirely"
    if keep.sum() < MIN_INSIDE_PATCHES and stride > 1:
        dense, dense_corners = extract_patches(image, patch, 1)
        dense_keep = inside(mask, dense_corners, patch)
        if dense_keep.sum() >= MIN_INSIDE_PATCHES:
            patches, corners, keep = dense, dense_corners, dense_keep
            rule = (f"the {int(keep.sum())} patches at stride 1 on the magnet entirely (fewer "
                    f"than {MIN_INSIDE_PATCHES} at stride {stride})")
    if keep.sum() < MIN_INSIDE_PATCHES:
        return patches, corners, {
            "patches": len(patches),
            "rule": (f"every patch, holes filled with their nearest magnet cell (only "
                     f"{int(keep.sum())} lie on the magnet entirely; fewer than "
                     f"{MIN_INSIDE_PATCHES})")}
    return patches[keep], corners[keep], {"patches": int(keep.sum()), "rule": rule}


# --- the run ---------------------------------------------------------------------------------

def _write_patches(path: Path, patches: np.ndarray, corners: np.ndarray, attrs: dict) -> None:
    from spinsr_tf.data.io import h5_output   # HDF5 meeting a full disk crashes: built in memory

    with h5_output(path, patches.nbytes + corners.nbytes) as f:
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


def _check_out_parent(run_dir: Path) -> None:
    """The run folder can be made and written: its nearest existing ancestor is a writable
    folder (probed), so no run ends unable to store what it computed."""
    from spinsr_tf.base.files import check_writable_folder

    folder = run_dir.absolute()
    if folder.exists() and not folder.is_dir():
        return  # _check_out_dir says so
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise UserError(f"out_dir {str(run_dir)!r} cannot be made: {str(folder)!r} is not a "
                        "folder")
    check_writable_folder(folder, "out_dir's folder")


def _prepare(run_dir: Path, record: dict, resume: bool) -> None:
    """Check that a run folder may hold a run of ``record`` (a resumed one: the same settings
    but :data:`_RESUMABLE`), then make it and write ``fit.json``."""
    path = run_dir / FIT
    _check_out_dir(run_dir, resume)
    if path.exists():
        try:
            stored = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot read {str(path)!r}: {exc}") from None
        if isinstance(stored, dict):   # runs made before fits could start from one
            stored.setdefault("init", None)
        diff = describe_mismatch(stored, record, ignore=_RESUMABLE)
        if diff:
            raise UserError(f"cannot resume {str(run_dir)!r}: {diff}")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create out_dir {str(run_dir)!r}: {exc}") from None
    write_json_atomic(path, record)


def _preview(run_dir: Path, lr: np.ndarray, bicubic: np.ndarray, sr: np.ndarray, scale: int,
             spread: np.ndarray | None = None, caption: str | None = None,
             limit: int = 64) -> Path:
    """``preview.png``: input | bicubic | result | uncertainty (if computed) of the centre
    ``limit``² LR pixels, with colour bars, and ``caption`` (what was estimated) under it."""
    from spinsr_tf.data.render import comparison_panel

    h, w = lr.shape[:2]
    r0, c0 = max(0, (h - limit) // 2), max(0, (w - limit) // 2)
    r1, c1 = min(h, r0 + limit), min(w, c0 + limit)
    crop = lambda a, f: a[r0 * f:r1 * f, c0 * f:c1 * f]  # noqa: E731
    note = "" if (r1 - r0, c1 - c0) == (h, w) else f", centre {r1 - r0}x{c1 - c0} LR pixels"
    extra = None if spread is None else ("uncertainty", crop(spread, scale), "uncertainty")
    return comparison_panel({"input (LR)": crop(lr, 1), "bicubic": crop(bicubic, scale),
                             f"result (SR x{scale})": crop(sr, scale)},
                            run_dir / "preview.png", title=f"fit-image x{scale}{note}",
                            extra=extra, caption=caption)


def _optics_caption(optics: dict, uncertainty: bool) -> str:
    """What the run estimated and assumed, for the preview's caption (network units)."""
    def how(key):
        entry = optics["how"].get(key, {})
        method = str(entry.get("method", "")).split(" (")[0]
        if method.startswith("default") or entry.get("confident", True):
            return method
        return f"{method} unsure: default used"

    noise = ("none" if optics["noise_kind"] == "none" else
             f"{optics['noise_kind']}, std {optics['noise_std']:.3g}"
             + (f" + {optics['noise_slope']:.3g}*x in variance" if optics["noise_slope"] else "")
             + f" ({how('noise')})")
    text = (f"PSF σ = {optics['sigma']:.3g} HR px ({how('sigma')}); pixel model "
            f"{optics['pixel']}; noise {noise}. Values in network units.")
    if uncertainty:
        text += ("\nResult: mean over the lattice's point symmetries; uncertainty: their "
                 "spread + the error of the result degraded again (colour scale: 1st-99th "
                 "percentile).")
    return text


def _identity(image: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(image, dtype=np.float32).tobytes()).hexdigest()


# --- the settings ----------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class FitConfig:
    """Every setting of one fit-image run, checked when made (a :class:`UserError` names the
    first bad one, before anything is read or written).

    Parameters
    ----------
    image : str or PathLike
        ``.png``, ``.tif``/``.tiff``, ``.npy``, ``.h5``/``.hdf5`` or ``.ovf``: one image,
        grey levels (C = 1) or spin components (C = 3), see :func:`read_input`.
    out_dir : str or PathLike
        The run folder (see the module docstring); must be new or empty unless resuming.
    scale : int
        SR factor, a power of two (the paper: 8).
    patch : int
        Patch side in LR pixels (>= :data:`MIN_PATCH`; the paper's ×8 networks see 16). An
        image smaller than it is fitted with the largest power of two that fits and a stride
        scaled alike (:func:`~spinsr_tf.inference.tiling.fit_patch`), said and recorded in
        ``fit.json`` (``reduced``).
    stride : int, optional
        Distance between patches, LR pixels; default ``patch // STRIDE_SHARE`` (4 for the
        ×8 patch of 16). The last row and column of patches are shifted to end at the image
        border, so every pixel is covered.
    epochs : int, optional
        Training passes over the patches; default :func:`default_epochs` (40, fewer for a
        large image: about :data:`STEP_BUDGET` steps).
    batch_size, learning_rate, seed
        Training (:func:`spinsr_tf.nn.training.train`, Adam).
    network : str, optional
        The training recipe (:data:`spinsr_tf.nn.config.RECIPES`); default :data:`FIT_RECIPE`.
    init : "none", a model or a fit-image run folder
        The weights training starts from: random ("none", default), or those of a network of
        the same recipe, scale and components (a ``.keras`` file, ``pretrained:NAME``, or the
        folder of an earlier fit, its ``train/model.keras``): fit one image of a series, then
        start the others from it, :data:`START_SHARE` times shorter by default. The start's
        degradation is not used: the network is fitted to this image's optics
        (:class:`~spinsr_tf.nn.config.TrainConfig` ``init``). The shipped universal models
        (point samples, σ 1) measured no better than random as a start for a camera image.
    sigma : float or "auto"
        PSF width (HR pixels) the network assumes; "auto" estimates it from the image
        (:func:`spinsr_tf.inference.optics.choose_optics`).
    kernel_size : int, optional
        Odd Gaussian window side, HR pixels; default: enough for ±4σ (at least 23).
    pixel : {"integrate", "sample"}
        Camera pixels that average their f×f block (default), or point samples (the paper's).
    noise : "auto", "none", "gaussian", "poisson" or a number
        The noise model of the data term (:meth:`spinsr_tf.data.noise.NoiseModel.estimate`);
        "auto" estimates it (Poisson–Gaussian for integer images, Gaussian otherwise); a
        number is a Gaussian standard deviation in image units; "none" uses the plain LR term
        (fits the noise).
    uncertainty : bool
        Super-resolve the image once per point symmetry: the result is the members' mean and
        ``uncertainty.npy`` / ``.png`` their spread and their error on the result degraded
        again (:func:`~spinsr_tf.inference.uncertainty.symmetry_spread`; False: one tiled pass
        of the network).
    percentile : float, optional
        Scalar images: range used by the value mapping (:func:`value_mapping`); default
        :data:`~spinsr_tf.inference.image_io.PERCENTILE` (0: min .. max, the result is not
        capped), with ``clip`` :data:`~spinsr_tf.inference.image_io.CLIP_PERCENTILE` (1).
    clip : bool
        Scalar images: clip the results to the mapping's percentile range (the brightest and
        darkest features are cut; fewer grey levels go to a few outliers). Default False: the
        result's grey levels are the network's values through the inverted mapping.
    unit_vectors : bool
        Vector images: normalise every LR vector to unit length before training
        (:func:`value_mapping`); advisable for noisy component images.
    background : {"none", "plane", "poly2"}
        Scalar images: a smooth background (uneven illumination) fitted by least squares,
        taken off before the value mapping and added back to the results on the finer grid
        (:func:`~spinsr_tf.inference.image_io.fit_background`, recorded in ``mapping.json``).
    layer : int, optional
        OVF files with several z layers: the layer to use.
    mask : "auto", "none" or a path
        Cells outside the magnet (see the module docstring): "auto" finds them in a
        3-component image (zero or NaN vectors), in a grey one a burnt-in label, saturated,
        stuck or NaN cells (:func:`~spinsr_tf.data.mask.mask_from_grey`); a ``.npy``, ``.png``
        or ``.tif`` image of the LR image's shape, 0 outside the magnet and 1 or 255 on it
        (:func:`~spinsr_tf.data.mask.read_mask`); "none": every cell is magnet (NaN refused).
    tile : int
        Core tile side (LR pixels) of the whole-image inference (:func:`super_resolve`).
    jit_compile : bool
        XLA for the training step.
    resume : bool
        Continue a run in ``out_dir`` (patches reused, training resumed); the settings other
        than :data:`_RESUMABLE` must match.
    progress : bool
        Print what happens and show Keras' progress bar.
    """

    image: Path
    out_dir: Path = Path("fit_image_run")
    scale: int = 8
    patch: int = 16
    stride: int | None = None
    epochs: int | None = None
    batch_size: int = 16
    learning_rate: float = 1e-3
    seed: int = 0
    network: str | None = None
    init: str = "none"
    sigma: float | str = "auto"
    kernel_size: int | None = None
    pixel: str = "integrate"
    noise: str | float = "auto"
    uncertainty: bool = True
    percentile: float | None = None
    clip: bool = False
    unit_vectors: bool = False
    layer: int | None = None
    background: str = "none"
    mask: str | Path = "auto"
    tile: int = 128
    jit_compile: bool = True
    resume: bool = False
    progress: bool = True

    def __post_init__(self):
        from spinsr_tf.nn.config import RECIPES
        from spinsr_tf.nn.network import decoder_filters

        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731
        decoder_filters(self.scale)
        check_degradation_args(self.scale, 23 if self.kernel_size is None else self.kernel_size,
                               1.0 if self.sigma == "auto" else self.sigma, "reflect",
                               self.pixel)
        check_bool("uncertainty", self.uncertainty)
        check_bool("clip", self.clip)
        check_choice("background", self.background, tuple(BACKGROUNDS))
        if self.percentile is None:
            set_("percentile", CLIP_PERCENTILE if self.clip else PERCENTILE)
        patch = check_int("patch", self.patch, MIN_PATCH)
        stride = (max(1, patch // STRIDE_SHARE) if self.stride is None
                  else check_int("stride", self.stride, 1))
        if stride > patch:
            raise UserError(f"stride {stride} is larger than patch {patch}: pixels would be "
                            "skipped")
        set_("patch", patch)
        set_("stride", stride)
        if self.epochs is not None:
            set_("epochs", check_int("epochs", self.epochs, 1))
        for name, low in (("batch_size", 1), ("tile", 1), ("seed", 0)):
            set_(name, check_int(name, getattr(self, name), low))
        set_("network", FIT_RECIPE if self.network is None else self.network)
        check_choice("network", self.network, [n for n in RECIPES if n != "oracle"])
        if not isinstance(self.init, (str, os.PathLike)):
            raise UserError(f"init must be 'none', a model or a fit-image run folder, got "
                            f"{self.init!r}")
        set_("init", os.fspath(self.init))
        check_real("learning_rate", self.learning_rate, 0, strict=True)
        set_("image", Path(self.image))
        set_("out_dir", Path(self.out_dir))
        if isinstance(self.mask, (str, os.PathLike)) and str(self.mask) in MASK_CHOICES:
            set_("mask", str(self.mask))
        elif isinstance(self.mask, (str, os.PathLike)):
            path = Path(self.mask)
            if path.suffix.lower() not in MASK_SUFFIXES:
                raise UserError(f"mask must be 'auto', 'none' or a {', '.join(MASK_SUFFIXES)} "
                                f"file, got {str(self.mask)!r}")
            if not path.is_file():
                raise UserError(f"mask file {str(path)!r} does not exist")
            set_("mask", path)
        else:
            raise UserError(f"mask must be 'auto', 'none' or a file path, got {self.mask!r}")

    def record(self, run: "FitRun") -> dict:
        """``fit.json``: the settings as the run resolved them and the image's identity (a
        resumed run must match it but for :data:`_RESUMABLE`)."""
        h, w, c = run.lr.shape
        d = run.degradation
        return {"image": os.path.abspath(self.image), "image_sha256": _identity(run.raw),
                "image_shape": [h, w, c], "scale": d.factor, "patch": self.patch,
                "stride": self.stride, "epochs": run.epochs, "batch_size": self.batch_size,
                "learning_rate": float(self.learning_rate), "seed": self.seed,
                "sigma": d.sigma, "kernel_size": d.kernel_size, "pixel": d.pixel,
                "noise": run.noise.kind, "noise_std": run.noise.std,
                "noise_slope": run.noise.slope, "uncertainty": bool(self.uncertainty),
                "percentile": float(self.percentile), "clip": bool(self.clip),
                "value_scale": float(run.mapping["scale"]),
                "unit_vectors": bool(self.unit_vectors), "layer": self.layer,
                **({"background": self.background} if self.background != "none" else {}),
                "mask": (self.mask if isinstance(self.mask, str)
                         else os.path.abspath(self.mask)),
                "masked_cells": run.mask_how["masked_cells"],
                "tile": self.tile, "jit_compile": bool(self.jit_compile),
                "network": self.network, "init": run.init,
                **({"reduced": run.reduced} if run.reduced else {})}


@dataclasses.dataclass
class FitRun:
    """What the steps of one run hand on: each step fills its part (network units)."""

    config: FitConfig
    raw: np.ndarray | None = None          # the image as read, (H, W, C)
    info: dict | None = None               # its format and metadata (read_input)
    mapping: dict | None = None            # image values -> network values
    lr: np.ndarray | None = None           # (H, W, C) float32, network units, holes filled
    given: np.ndarray | None = None        # (H, W, C) the input in network units, NaN -> 0
    mask: np.ndarray | None = None         # (H, W) bool, True on the magnet; None: all
    mask_how: dict | None = None           # mask_record + how the patches were chosen
    patches: np.ndarray | None = None      # the training patches and their corners
    corners: np.ndarray | None = None
    epochs: int | None = None
    optics: dict | None = None             # degradation.json
    degradation: Degradation | None = None
    noise: NoiseModel | None = None
    n_patches: int = 0
    history: dict | None = None
    model: object = None
    sr: np.ndarray | None = None
    spread: np.ndarray | None = None       # (1, H·f, W·f) uncertainty, or None
    bicubic: np.ndarray | None = None
    uncertainty: Path | None = None
    result: dict = dataclasses.field(default_factory=dict)
    reduced: str | None = None             # what a small field of view reduced (fit_patch)
    init: str | None = None                # the model training starts from (None: random)

    @property
    def run_dir(self) -> Path:
        return self.config.out_dir

    def say(self, text: str) -> None:
        if self.config.progress:
            print(text)


# --- the steps -------------------------------------------------------------------------------

def _find_mask(config: FitConfig, raw: np.ndarray,
               dtype: str = "float32") -> tuple[np.ndarray | None, dict]:
    """The magnet of the image (None: all of it) and its record (:func:`mask_record`);
    ``dtype``: the stored one (an integer image's extreme levels, for a grey image's auto
    mask)."""
    h, w, c = raw.shape
    finite = np.all(np.isfinite(raw), axis=-1)
    if config.mask == "none":
        if not finite.all():
            raise UserError(f"image {str(config.image)!r} holds {int((~finite).sum())} NaN or "
                            "infinite cells; with mask 'none' every cell must be a value "
                            "(use mask 'auto' or a mask file)")
        return None, mask_record(None, "none (every cell is magnet)")
    if config.mask == "auto":
        if c == 3:
            mask, source = mask_from_values(raw), "auto: zero or NaN vectors"
        else:   # a burnt-in label, saturated, stuck or NaN cells
            mask, source = mask_from_grey(raw, dtype)
    else:
        mask = read_mask(config.mask, (h, w))
        source = f"file {os.path.abspath(config.mask)}"
        if not finite[mask].all():
            raise UserError(f"image {str(config.image)!r} holds {int((~finite[mask]).sum())} "
                            f"NaN or infinite cells where mask {str(config.mask)!r} says magnet")
    check_mask(mask, (h, w), config.patch * config.patch,
               name=f"the mask of {str(config.image)!r}")
    return (None if mask.all() else mask), mask_record(mask, source)


def start_model(config: FitConfig, channels: int) -> str | None:
    """The model a fit of a ``channels``-component image starts from (``config.init``
    resolved: a run folder to its network; None: random weights), loaded and checked now,
    before any work: its scale and components must be the fit's."""
    if config.init == "none":
        return None
    from spinsr_tf.base.pretrained import is_pretrained
    from spinsr_tf.nn.export import lr_input_shape
    from spinsr_tf.nn.network import LR_OUTPUT, load_sr_model
    from spinsr_tf.nn.training import MODEL

    path = config.init
    if not is_pretrained(path) and Path(path).is_dir():
        path = os.fspath(Path(path) / TRAIN / MODEL)
        if not Path(path).is_file():
            raise UserError(f"init {config.init!r} is a folder without a fit-image network "
                            f"({TRAIN}/{MODEL}); give a finished fit-image run or a model file")
    model = load_sr_model(path, compile=False)
    scale, comps = int(model.get_layer(LR_OUTPUT).factor), int(lr_input_shape(model)[-1])
    if (scale, comps) != (config.scale, channels):
        raise UserError(f"init model {config.init!r} super-resolves x{scale} maps of {comps} "
                        f"component(s); this fit is x{config.scale} of {channels}")
    return path if is_pretrained(path) else os.path.abspath(path)


def read(config: FitConfig, run: FitRun) -> None:
    """Read the image and its mask, check them and what the run will write, map the image to
    network units and choose the training patches; refuse a run folder the run may not use
    (all before any work)."""
    _check_out_parent(config.out_dir)
    raw, info = read_input(config.image, layer=config.layer, holes=True)
    h, w, c = raw.shape
    if min(h, w) < MIN_IMAGE:
        raise UserError(f"image {str(config.image)!r} is {h}x{w} pixels; fit-image needs at "
                        f"least {MIN_IMAGE}x{MIN_IMAGE} LR pixels")
    patch, stride, run.reduced = fit_patch((h, w), config.patch, config.stride)
    if run.reduced:   # a small field of view: the later steps see the reduced patch
        config = run.config = dataclasses.replace(config, patch=patch, stride=stride)
        print(f"fit-image: image is {h}x{w} LR pixels: {run.reduced}", file=sys.stderr)
    if config.clip and c != 1:
        raise UserError("clip applies to scalar (one-channel) images, not to spin components")
    run.mask, run.mask_how = _find_mask(config, raw, info["dtype"])
    run.init = start_model(config, c)
    # what the end of the run writes, checked before any work (format, metadata, layout)
    for name in ("sr", "bicubic"):
        check_like_input(config.out_dir / name, (h * config.scale, w * config.scale, c), info,
                         config.scale)
    values = np.where(np.isfinite(raw), raw, 0.0)   # NaN never goes further
    background = fit_background(values, config.background, run.mask, config.pixel)
    flat = values - background_map(background, values.shape)
    magnet = flat if run.mask is None else flat[run.mask][None]
    run.mapping = {**value_mapping(magnet, config.percentile, config.unit_vectors),
                   "background": background,
                   "format": info["format"], "dtype": info["dtype"], "channels": c,
                   "note": "network value x = (v - b - offset) / scale; v = x * scale + "
                           "offset + b, v being the image values (integer intensities after "
                           "from_intensity), b the background (0 if null) at each pixel"}
    run.raw, run.info = raw, info
    run.given = to_network(values, run.mapping)
    run.lr = run.given if run.mask is None else fill_holes(run.given, run.mask)
    run.patches, run.corners, chosen = training_patches(run.lr, run.mask, config.patch,
                                                        config.stride)
    run.mask_how = {**run.mask_how, "training": chosen}
    run.epochs = (_epochs_for(len(run.patches), config.batch_size,
                              START_SHARE if run.init else 1)
                  if config.epochs is None else config.epochs)
    _check_out_dir(config.out_dir, config.resume)


def estimate_optics(config: FitConfig, run: FitRun) -> None:
    """PSF width, pixel model and noise model: given, else estimated from the image's magnet
    cells, else defaults (:func:`~spinsr_tf.inference.optics.choose_optics`)."""
    dtype = np.dtype(run.info["dtype"])
    counts = bool(np.issubdtype(dtype, np.integer))
    # image units per network unit: grey levels for integer images (read_input maps their
    # full range onto [-1, 1]), the values themselves otherwise
    per_unit = (run.mapping["scale"] * (np.iinfo(dtype).max - np.iinfo(dtype).min) / 2.0
                if counts else run.mapping["scale"])
    auto = config.sigma == "auto"
    geometry = Degradation(config.scale, DEFAULT_SIGMA if auto else config.sigma,
                           pixel=config.pixel, padding="reflect")
    magnet = run.raw if run.mask is None else run.raw[run.mask]
    optics = choose_optics(run.lr, geometry, config.noise, estimate_sigma=auto,
                           image_scale=per_unit, counts=counts,
                           image_min=None if counts else float(np.min(magnet)),
                           mask=run.mask)
    if config.kernel_size is not None:
        optics["kernel_size"] = int(config.kernel_size)
    optics["mask"] = run.mask_how
    if run.mask_how["training"]["rule"].startswith("every patch, holes filled"):
        optics["warnings"].append(f"training on patches with holes: "
                                  f"{run.mask_how['training']['rule']}")
    run.optics, run.noise = optics, NoiseModel.from_dict(optics)
    run.degradation = Degradation(config.scale, optics["sigma"], optics["kernel_size"],
                                  config.pixel, "reflect")


def saturation(config: FitConfig, run: FitRun) -> None:
    """Vector images: the saturation magnetisation Ms, estimated under the run's degradation
    (:func:`~spinsr_tf.inference.optics.estimate_saturation`), is the network's unit and
    scales the result.

    :func:`read` divided the image by its median vector length. Blur shortens the LR vectors,
    so the median reads Ms low (0.78 Ms behind σ 2 and camera pixels), and a result written
    with it is that much short: the result (unit spins) is written at |M| = Ms
    (``mapping["result_scale"]``). Divided by the median, the image also asks for LR vectors no
    unit-vector map degraded can give: in units of Ms instead (the image, its patches and the
    noise model follow), a 256² film behind σ 2 scored 35.78 dB against 32.94 (noise none),
    34.56 against 32.38 (noise 0.01 Ms), 32.16 against 31.05 (0.02); at 0.05 Ms, with the
    data term's :data:`FIT_ALPHA`, 29.43 against 27.00 and 28.01 against 27.21 (two films,
    both ensembles without the flip).
    Not with ``unit_vectors`` (every LR vector is made unit length anyway), nor for a constant
    image; an estimate not trusted leaves the median, said."""
    mapping = run.mapping
    if mapping["kind"] != "vector_length" or mapping["unit_vectors"] or mapping["constant"]:
        return
    est = estimate_saturation(run.lr, run.degradation, run.mask, run.noise.std)
    if not est.confident:
        run.mapping = {**mapping, "saturation": est.to_json()}
        run.optics["warnings"].append(f"saturation estimate {est.value * mapping['scale']:.4g} "
                                      f"not used ({est.note}); dividing by the median vector "
                                      f"length {mapping['scale']:.4g}")
        return
    gain = est.value   # Ms in the median's units
    ms = mapping["scale"] * gain
    noise = math.sqrt(float(run.noise.variance(gain))) / gain   # at |v| = Ms, in units of Ms
    run.mapping = {**mapping, "kind": "saturation", "scale": ms, "result_scale": ms,
                   "median_length": mapping["scale"],
                   "saturation": {**est.to_json(), "value": ms, "noise_share": noise,
                                  "network_units": "saturation"}}
    run.given = (run.given / gain).astype(run.given.dtype)
    run.lr = (run.lr / gain).astype(run.lr.dtype)
    run.patches = (run.patches / gain).astype(run.patches.dtype)
    run.noise = run.noise.scaled(gain)
    run.optics = {**run.optics, **run.noise.to_dict(),
                  "how": {**run.optics["how"], "noise": dict(run.noise.how)}}
    run.say(f"fit-image: saturation {ms:.4g} (image units, estimated under the optics; the "
            f"median vector length is {mapping['scale'] / ms:.0%} of it): the network works "
            "in its units and the result is written at |M| = saturation")


def result_mapping(mapping: dict) -> dict:
    """The value mapping of a result: ``mapping`` with its ``scale`` the ``result_scale`` (the
    saturation, where estimated: :func:`saturation`)."""
    return {**mapping, "scale": mapping.get("result_scale", mapping["scale"])}


def configure(config: FitConfig, run: FitRun) -> None:
    """The run folder: ``fit.json`` (a resumed run is checked against it), ``mapping.json``,
    ``degradation.json``, what was assumed said once, and the patches (reused if there)."""
    run_dir = config.out_dir
    run.optics = {**run.optics,
                  "ensemble": ensemble_group(run.lr, run.mask, hamiltonian_known=False)}
    _prepare(run_dir, config.record(run), config.resume)
    write_json_atomic(run_dir / MAPPING, run.mapping)
    write_json_atomic(run_dir / DEGRADATION, run.optics)
    for line in run.optics["warnings"]:
        print(f"fit-image: {line}", file=sys.stderr)
    run.say(_optics_line(run.optics))
    ensemble = run.optics["ensemble"]
    run.say(f"fit-image: symmetry group {ensemble['group']!r} for the symmetry term"
            + (" and the result's mean" if config.uncertainty else "")
            + f" ({ensemble['why']})")
    patches_path = run_dir / PATCHES
    if patches_path.exists():
        import h5py

        with h5py.File(patches_path, "r") as f:
            run.n_patches = int(f["lr"].shape[0])
        run.say(f"fit-image: reusing {run.n_patches} patches in {patches_path}")
        return
    patches, corners = run.patches, run.corners
    run.n_patches = len(patches)
    _write_patches(patches_path, patches, corners,
                   {**run.degradation.to_attrs(), "patch": config.patch,
                    "stride": config.stride, "source": os.path.abspath(config.image)})
    h, w, c = run.lr.shape
    run.say(f"fit-image: {run.n_patches} patches of {config.patch}x{config.patch} (stride "
            f"{config.stride}) from a {h}x{w}x{c} image -> {patches_path}")
    if run.mask is not None:
        m = run.mask_how
        run.say(f"fit-image: mask ({m['source']}): {m['masked_cells']} of {m['cells']} LR "
                f"cells outside the magnet; training on {m['training']['rule']}")


def train(config: FitConfig, run: FitRun) -> None:
    """Train (or resume training) the recipe's network on the patches, its data term aware of
    the noise model (:func:`~spinsr_tf.nn.losses.recorrupted.noise_aware`, recorruption
    strength :data:`FIT_ALPHA`), its symmetry term over the group of :func:`ensemble_group`
    (without the flip on a magnetised image: on a tune film in a field 29.50 dB against 28.01
    at noise 0.05 Ms, 35.38 against 34.77 without noise)."""
    from spinsr_tf.nn.config import RECIPES, recipe
    from spinsr_tf.nn.losses import Equivariance
    from spinsr_tf.nn.losses.recorrupted import noise_aware
    from spinsr_tf.nn.network import load_sr_model
    from spinsr_tf.nn.training import CONFIG, MODEL
    from spinsr_tf.nn.training import train as train_network

    d = run.degradation
    train_dir = config.out_dir / TRAIN
    losses = noise_aware(RECIPES[config.network]["losses"], run.noise, alpha=FIT_ALPHA)
    group = run.optics["ensemble"]["group"]
    if group != "lattice":   # a magnetised image: the flip is no symmetry of it (ensemble_group)
        losses = tuple(dataclasses.replace(t, group=group)
                       if isinstance(t, Equivariance) and t.group == "lattice" else t
                       for t in losses)
    train_config = recipe(config.network, config.out_dir / PATCHES, d.factor,
                          epochs=run.epochs, batch_size=config.batch_size,
                          learning_rate=config.learning_rate,
                          val_fraction=_val_fraction(run.n_patches), seed=config.seed,
                          kernel_size=d.kernel_size, sigma=d.sigma, padding=d.padding,
                          pixel=d.pixel, jit_compile=config.jit_compile, init=run.init,
                          losses=losses)
    run.history = train_network(train_config, train_dir, resume=(train_dir / CONFIG).exists(),
                                progress=config.progress)
    run.model = load_sr_model(train_dir / MODEL, compile=False)


def super_resolve_image(config: FitConfig, run: FitRun) -> None:
    """The SR image and its bicubic baseline. With ``uncertainty`` the image is super-resolved
    once per point symmetry (of :func:`ensemble_group`): the result is the members' mean (it
    scores higher against ground truth than one pass: docs/uncertainty.md), their spread and
    their error on the result degraded again the map of where to trust it (kept for
    :func:`uncertainty`)."""
    epochs_done = len(run.history.get('epoch', []))
    if config.uncertainty:
        from spinsr_tf.inference.uncertainty import SpreadOptions, symmetry_spread

        run.say(f"fit-image: trained {epochs_done} epoch(s); super-resolving the image once per "
                "point symmetry (result: their mean), then the result degraded again "
                "(uncertainty: spread + error on it)")
        members_mean, run.spread = symmetry_spread(
            run.model, run.lr[None], group=run.optics["ensemble"]["group"],
            degradation=run.degradation,
            options=SpreadOptions(sr="mean"), batch_size=1)
        run.sr = members_mean[0]
    else:
        run.say(f"fit-image: trained {epochs_done} epoch(s); super-resolving the whole image "
                f"in tiles of {config.tile} LR pixels")
        run.sr = super_resolve(run.model, run.lr, tile=config.tile)
    run.bicubic = run.degradation.upsample(run.lr[None], "bicubic", "aligned")[0]
    if run.mask is not None:   # the holes back: what the input holds there
        outside = ~hr_mask(run.mask, run.degradation)
        given = hr_nearest(run.given, run.degradation)
        for values in (run.sr, run.bicubic):
            values[outside] = given[outside]
        if run.spread is not None:
            run.spread[:, outside] = 0.0


def uncertainty(config: FitConfig, run: FitRun) -> None:
    """``uncertainty.npy`` and ``uncertainty.png`` (when computed)."""
    if run.spread is None:
        return
    from spinsr_tf.inference.uncertainty import uncertainty_figure

    run.uncertainty = config.out_dir / UNCERTAINTY
    save_npy_atomic(run.uncertainty, run.spread[0].astype(np.float32))
    uncertainty_figure(run.spread[:1], config.out_dir / "uncertainty.png",
                       title="uncertainty, network units\n(symmetry spread + error "
                             "on the result degraded again)")


def write(config: FitConfig, run: FitRun) -> None:
    """The values (network units), the results in the input's format, the preview, and the
    LR misfit of the result and the baseline, compared with the noise variance."""
    run_dir, scale, lr = config.out_dir, config.scale, run.given
    outputs = {}
    for name, values in (("lr", lr), ("sr", run.sr), ("bicubic", run.bicubic)):
        save_npy_atomic(run_dir / f"{name}_values.npy", values)
        if name != "lr":   # the result (unit spins) at the saturation, if estimated
            mapping = run.mapping if name == "bicubic" else result_mapping(run.mapping)
            outputs[name] = write_like_input(run_dir / name, values, run.info, mapping,
                                             scale, clip=config.clip)
    spread = None if run.spread is None else run.spread[0]
    preview = _preview(run_dir, lr, run.bicubic, run.sr, scale, spread=spread,
                       caption=_optics_caption(run.optics, spread is not None))
    magnet = np.ones(lr.shape[:2], bool) if run.mask is None else run.mask
    lr_mse = {name: float(np.square(run.degradation.apply(values[None])[0] - lr)
                          .sum(axis=-1)[magnet].mean())
              for name, values in (("sr", run.sr), ("bicubic", run.bicubic))}
    noise_variance = run.noise.mean_variance(lr[magnet])
    h, w, c = lr.shape
    run.say(f"fit-image: wrote {outputs['sr']} ({h * scale}x{w * scale}x{c}), "
            f"{outputs['bicubic']}, {preview}" + (f", {run_dir / 'uncertainty.png'}"
                                                  if run.uncertainty is not None else ""))
    run.say(_misfit_line(lr_mse, noise_variance, run.optics, c,
                         None if run.mask is None else int(magnet.sum())))
    run.result = {"run_dir": run_dir, "sr": outputs["sr"], "bicubic": outputs["bicubic"],
                  "preview": preview, "mapping": run.mapping, "n_patches": run.n_patches,
                  "lr_shape": (h, w, c), "sr_shape": tuple(run.sr.shape),
                  "history": run.history, "lr_mse": lr_mse, "noise_variance": noise_variance,
                  "degradation": run.optics, "uncertainty": run.uncertainty,
                  "mask": run.mask_how}


#: The steps of a run, in order; each takes ``(config, run)``.
STEPS: tuple[Callable[[FitConfig, FitRun], None], ...] = (
    read, estimate_optics, saturation, configure, train, super_resolve_image, uncertainty,
    write)


def fit_image(image, **settings) -> dict:
    """Train the SR network on the patches of one image and super-resolve the whole image.

    ``image`` is a :class:`FitConfig`, or the image path with ``settings`` the other fields
    of one (the same names and defaults). Runs :data:`STEPS` in order.

    Returns
    -------
    dict: ``run_dir``, ``sr`` and ``bicubic`` (output paths), ``preview``, ``mapping``,
    ``n_patches``, ``lr_shape`` / ``sr_shape`` ``(H, W, C)``, ``history`` (per epoch),
    ``lr_mse`` (``{"sr", "bicubic"}``: mean squared difference between the re-degraded result
    and the LR image, network units, mean over pixels of the sum over components),
    ``noise_variance`` (what a result that does not fit the noise misfits by),
    ``degradation`` (what ``degradation.json`` holds), ``uncertainty`` (its path or None),
    ``mask`` (its record: ``source``, ``masked_cells``, ``cells``, ``training``). With a mask
    the misfit and the noise variance are means over the magnet's LR cells.

    Raises
    ------
    UserError
        Unreadable or unsuitable image (smaller than
        :data:`~spinsr_tf.inference.tiling.MIN_IMAGE` a side, NaN, colour, transparent),
        bad settings, a non-empty ``out_dir`` without ``resume``. Nothing is written in
        ``out_dir`` before the image and the settings have been checked.
    """
    if isinstance(image, FitConfig):
        config = dataclasses.replace(image, **settings) if settings else image
    else:
        config = FitConfig(image, **settings)
    run = FitRun(config)
    for step in STEPS:
        step(run.config, run)   # read() may reduce the patch of a small image
    return run.result


def _optics_line(optics: dict) -> str:
    """The one line that says which optics the run assumes (network units)."""
    sigma_how = optics["how"]["sigma"]
    sigma_source = sigma_how["method"]
    if not sigma_how.get("confident", True):   # the warning above says why: said once
        sigma_source = "assumed"
    noisy = optics["noise_kind"] != "none"
    return (f"fit-image: optics: sigma {optics['sigma']:.3g} HR px ({sigma_source}), "
            f"pixel {optics['pixel']}, noise {optics['noise_kind']}"
            + (f" std {optics['noise_std']:.3g}" if noisy else "")
            + (f" + {optics['noise_slope']:.3g}*x" if optics["noise_slope"] else "")
            + " (network units"
            + (f"; {optics['how']['noise']['method'].split(' (')[0]}" if noisy else "") + ")")


def _noise_variance(lr: np.ndarray, optics: dict) -> float:
    """The LR misfit of a result that explains the image but not its noise: the variance of
    the noise model a ``degradation.json`` record ``optics`` holds
    (:meth:`~spinsr_tf.data.noise.NoiseModel.mean_variance`). 0 without a noise model."""
    return NoiseModel.from_dict(optics).mean_variance(lr)


def _misfit_line(lr_mse: dict, noise_variance: float, optics: dict, channels: int,
                 magnet: int | None = None) -> str:
    """The misfit and what it is compared with: with a noise model the network is trained not
    to reproduce the noise, so a good result misfits by about the noise variance, not 0.
    ``magnet``: the number of LR cells on the magnet the means are over (None: all)."""
    what = ("LR misfit (the result degraded again against the input: squared difference"
            + (f" summed over the {channels} components" if channels > 1 else "")
            + (", mean per LR pixel" if magnet is None else
               f", mean over the {magnet} LR pixels on the magnet") + ", network units)")
    values = f"sr {lr_mse['sr']:.3g}, bicubic {lr_mse['bicubic']:.3g}"
    if optics["noise_kind"] == "none":
        return (f"fit-image: {what}: {values}; no noise model, so a result that fits the image "
                "misfits by about 0")
    std = f"std {optics['noise_std']:.3g}" + (
        f" + {optics['noise_slope']:.3g}*x in variance" if optics["noise_slope"] else "")
    return (f"fit-image: {what}: {values}; the estimated noise variance is "
            f"{noise_variance:.3g} ({optics['noise_kind']}, {std}): a result that fits the "
            "image but not its noise misfits by about that much")
