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
    RUN_DIR/uncertainty.png    the same as a picture
    RUN_DIR/preview.png        LR | bicubic | SR side by side

Optics. A microscope does not say how wide its point-spread function is, and camera pixels
integrate over their area. By default the pixel model is ``"integrate"`` and the PSF width and
the noise are estimated from the image itself (:mod:`spinsr_tf.inference.optics`); given
values override. With a noise level the data term is :class:`~spinsr_tf.nn.losses.Recorrupted`
(it does not reward reproducing the noise) instead of the plain LR term. An estimate the
estimator is unsure of is reported in one line and recorded, and a default is used instead.
The paper's assumptions are ``sigma=1, pixel="sample", noise="none"``.

Mapping. Scalar images (C = 1) are mapped affinely onto [-1, 1]: ``x = (v − offset) / scale``
with ``offset, scale`` the centre and half-width of the ``percentile .. 100 − percentile``
range of the values ``v`` (integer images: after :func:`~spinsr_tf.data.io.from_intensity`),
so a camera image with arbitrary offset and contrast meets the network's ±1 domains; the tails
beyond the percentiles are kept, not clipped. Vector images (C = 3) are divided by the median
vector length (``offset = 0``), so spins stay spins and magnetisation in A/m becomes ~unit
vectors. A constant image has no range: its scale is set to 1 (``mapping["constant"]``), it maps
to 0 and comes back unchanged. Outputs are mapped back with ``v = x · scale + offset``.
OVF cells of zero magnitude (holes, outside the magnet) enter as zero vectors; the unit-vector
SR output cannot reproduce them, so mask them in the result if they matter.

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
from spinsr_tf.inference.optics import choose_optics

FIT, MAPPING, PATCHES, TRAIN = "fit.json", "mapping.json", "patches.h5", "train"
DEGRADATION, UNCERTAINTY = "degradation.json", "uncertainty.npy"
#: Smallest LR patch side: the network's 1-pixel mirror padding needs >= 2, and the
#: expanding part's receptive field (radius 4) should fit in the patch.
MIN_PATCH = 4
#: LR pixels on either side of an output pixel that can change it: the residual skip path
#: (AlignedUpsample keeps cubic-spline taps up to 16 LR pixels away) reaches further than
#: the convolutions (4 + log2(scale) + 1 pixels). Tiles are cropped by this margin.
SKIP_REACH = 16
#: Input format → output extension of the results.
_OUT_EXT = {"npy": ".npy", "h5": ".h5", "tiff": ".tif", "png": ".png", "ovf": ".ovf"}
#: fit.json keys a resumed run may change.
#: The training recipe of fit-image (:data:`spinsr_tf.nn.config.RECIPES`).
FIT_RECIPE = "equivariant"
_RESUMABLE = ("epochs", "progress", "jit_compile", "tile", "image")


def receptive_margin(scale: int) -> int:
    """LR pixels by which tiles overlap on each side so that tiled inference equals one-shot.

    ``max(SKIP_REACH, 4 + log2(scale) + 1)``: four 3×3 convolutions at LR resolution, one per
    up-sampling block (each at most one LR pixel), the last convolution, and the 16-pixel
    reach of the aligned bicubic skip path.
    """
    return max(SKIP_REACH, 4 + int(math.log2(scale)) + 1)


# --- reading and mapping ---------------------------------------------------------------------

def _png_alpha(path: Path) -> None:
    """Refuse a PNG whose alpha channel is not fully opaque (read_image drops alpha)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if "A" not in im.getbands():
                return
            lo, hi = im.getchannel("A").getextrema()
    except (UnidentifiedImageError, OSError, ValueError):
        return  # read_image reports unreadable files
    if lo < 255:
        raise UserError(f"PNG file {str(path)!r} has transparent pixels (alpha {lo}..{hi}); "
                        "fit-image needs an opaque image (flatten or crop it first)")


def read_input(path, layer: int | None = None) -> tuple[np.ndarray, dict]:
    """Read one image for :func:`fit_image`: ``(H, W, C)`` float32 and a description.

    Formats: those of :func:`spinsr_tf.data.io.read_image` (``.npy``, ``.h5``, ``.tif``,
    ``.png``) and OVF (``.ovf``/``.omf``, :func:`spinsr_tf.data.ovf.read_ovf`, ``layer``).
    Colour images whose channels are equal (grey saved as RGB) become one channel; a PNG's
    alpha channel is dropped if fully opaque, refused otherwise; a colour image, a stack of
    several images, or C other than 1 or 3 is refused. Integer intensities come mapped onto
    [-1, 1] by :func:`~spinsr_tf.data.io.from_intensity`.

    Returns
    -------
    image : ndarray, shape (H, W, C), float32
    info : dict
        ``format``, ``dtype`` (stored dtype), ``intensity`` (bool), ``ovf`` (OVF metadata or
        None).
    """
    from spinsr_tf.data.io import read_image

    path = Path(path)
    suffix = path.suffix.lower()
    if layer is not None and suffix not in (".ovf", ".omf"):
        raise UserError(f"layer applies to OVF files only, not {str(path)!r}")
    if suffix in (".ovf", ".omf"):
        from spinsr_tf.data.ovf import read_ovf

        field, meta = read_ovf(path, layer=layer, normalize=False)
        meta = {k: list(v) if isinstance(v, tuple) else v for k, v in meta.items()}
        return field, {"format": "ovf", "dtype": "float32", "intensity": False, "ovf": meta}
    if suffix == ".png" and path.is_file():
        _png_alpha(path)
    x, info = read_image(path, return_info=True)
    if x.shape[0] != 1:
        raise UserError(f"{str(path)!r} holds {x.shape[0]} images; fit-image takes one image "
                        "(split the stack first)")
    x = x[0]
    if info.is_intensity and x.shape[-1] == 3:
        if np.array_equal(x[..., 0], x[..., 1]) and np.array_equal(x[..., 0], x[..., 2]):
            x = x[..., :1]
        else:
            raise UserError(f"{str(path)!r} is a colour image; fit-image reads grey-level "
                            "intensity images (one channel) or spin components stored as "
                            "floats (.npy, .tif, .h5, .ovf)")
    if x.shape[-1] not in (1, 3):
        raise UserError(f"{str(path)!r} has {x.shape[-1]} channels; expected 1 (scalar "
                        "contrast) or 3 (spin components)")
    return x, {"format": info.format, "dtype": info.dtype, "intensity": info.is_intensity,
               "ovf": None}


def value_mapping(image, percentile: float = 1.0, unit_vectors: bool = False) -> dict:
    """The affine map ``x = (v − offset) / scale`` of an image onto network values.

    Parameters
    ----------
    image : array_like, shape (H, W, C), C = 1 or 3
    percentile : float in [0, 50)
        C = 1: ``offset, scale`` are the centre and half-width of the ``percentile ..
        100 − percentile`` range (0: min..max). Ignored for C = 3 (median vector length).
    unit_vectors : bool
        C = 3 only: :func:`to_network` then also scales every LR vector to unit length (zero
        vectors stay zero), as the paper did with its SPLEEM data. With noisy components the
        noise in ``|v|`` cannot be fitted by unit-vector SR maps except by inventing
        sub-pixel textures; normalising removes it. The map is then not invertible for the
        input itself (outputs, unit vectors, are still multiplied by ``scale``).

    Returns
    -------
    dict: ``offset``, ``scale`` (> 0), ``kind`` ("percentile" or "vector_length"),
    ``percentile``, ``unit_vectors``, ``constant`` (True if the range was zero and ``scale``
    set to 1).
    """
    v = np.asarray(image, dtype=np.float64)
    if (isinstance(percentile, bool) or not isinstance(percentile, numbers.Real)
            or not 0 <= percentile < 50):
        raise UserError(f"percentile must be a number in [0, 50), got {percentile!r}")
    if v.shape[-1] == 1:
        lo, hi = np.percentile(v, [percentile, 100.0 - percentile])
        offset, scale, kind = 0.5 * (lo + hi), 0.5 * (hi - lo), "percentile"
    else:
        norm = np.sqrt(np.square(v).sum(axis=-1))
        offset, kind = 0.0, "vector_length"
        scale = float(np.median(norm[norm > 0])) if np.any(norm > 0) else 0.0
    constant = not scale > 1e-12 * max(1.0, abs(offset))
    return {"kind": kind, "offset": float(offset), "scale": 1.0 if constant else float(scale),
            "percentile": float(percentile),
            "unit_vectors": bool(unit_vectors) and v.shape[-1] == 3, "constant": bool(constant)}


def to_network(values, mapping: dict) -> np.ndarray:
    """``(v − offset) / scale`` as float32; with ``mapping["unit_vectors"]`` each vector is then
    scaled to unit length (zero vectors stay zero)."""
    x = (np.asarray(values, np.float64) - mapping["offset"]) / mapping["scale"]
    if mapping.get("unit_vectors"):
        norm = np.sqrt(np.square(x).sum(axis=-1, keepdims=True))
        x = np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)
    return x.astype(np.float32)


def from_network(x, mapping: dict) -> np.ndarray:
    """``x · scale + offset`` as float32: the inverse of :func:`to_network`."""
    return (np.asarray(x, np.float64) * mapping["scale"] + mapping["offset"]).astype(np.float32)


# --- patches and tiles -----------------------------------------------------------------------

def patch_starts(n: int, patch: int, stride: int) -> np.ndarray:
    """First index of each patch along an axis of length ``n``: ``0, stride, 2·stride, ...``
    and, if that leaves the end uncovered, ``n − patch``; every index is covered."""
    if patch > n:
        raise UserError(f"patch {patch} is larger than the image side {n}")
    starts = list(range(0, n - patch + 1, stride))
    if starts[-1] + patch < n:
        starts.append(n - patch)
    return np.asarray(starts, dtype=np.int64)


def extract_patches(image, patch: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """All ``patch × patch`` windows of an ``(H, W, C)`` image on the :func:`patch_starts` grid.

    Returns
    -------
    patches : ndarray, shape (N, patch, patch, C), float32, row-major order
    corners : ndarray, shape (N, 2), int64: (row, column) of each patch's first pixel
    """
    x = np.asarray(image, dtype=np.float32)
    rows = patch_starts(x.shape[0], patch, stride)
    cols = patch_starts(x.shape[1], patch, stride)
    corners = np.array([(r, c) for r in rows for c in cols], dtype=np.int64)
    patches = np.stack([x[r:r + patch, c:c + patch] for r, c in corners])
    return patches, corners


def tile_windows(n: int, tile: int, margin: int) -> list[tuple[int, int, int, int]]:
    """Split an axis into cores of ``tile`` pixels, each inside a window of equal length.

    Every window has length ``min(n, tile + 2·margin)`` and contains its core plus ``margin``
    pixels on each side, except where the image ends (the window is shifted inwards), so all
    tiles have one shape.

    Returns
    -------
    list of ``(core_start, core_stop, window_start, window_stop)``.
    """
    size = min(n, tile + 2 * margin)
    out = []
    for start in range(0, n, tile):
        stop = min(start + tile, n)
        w0 = min(max(start - margin, 0), n - size)
        out.append((start, stop, w0, w0 + size))
    return out


def super_resolve(model, lr, tile: int | None = 128, margin: int | None = None,
                  batch_size: int = 4) -> np.ndarray:
    """Run a trained SR network over a whole ``(H, W, C)`` LR image, tile by tile.

    Each tile is a window of ``tile + 2·margin`` LR pixels; only its central ``tile × tile``
    core (times the scale) is kept. With ``margin >= receptive_margin(scale)`` no kept pixel
    depends on the window's edge, so the result equals running the network on the whole image
    at once (to float rounding), at a memory cost bounded by the tile size. All windows have
    one shape (:func:`tile_windows`), so the network is traced once.

    Parameters
    ----------
    model : keras.Model
        A spinsr model (:func:`~spinsr_tf.nn.network.build_sr_model`, ``load_sr_model``).
    lr : array_like, shape (H, W, C), float32
    tile : int or None
        Core side in LR pixels; None: the whole image in one call.
    margin : int, optional
        Default :func:`receptive_margin`.
    batch_size : int
        Tiles per forward pass.

    Returns
    -------
    ndarray, shape (H·scale, W·scale, C), float32.
    """
    from spinsr_tf.nn.export import serving_model
    from spinsr_tf.nn.network import LR_OUTPUT

    f = int(model.get_layer(LR_OUTPUT).factor)
    sr_model = serving_model(model)
    x = np.asarray(lr, dtype=np.float32)
    if x.ndim != 3:
        raise UserError(f"lr must have shape (H, W, C), got {x.shape}")
    h, w, c = x.shape
    if tile is None:
        return np.asarray(sr_model(x[None], training=False), dtype=np.float32)[0]
    tile = check_int("tile", tile, 1)
    margin = receptive_margin(f) if margin is None else check_int("margin", margin, 0)
    batch_size = check_int("batch_size", batch_size, 1)
    jobs = [(r, q) for r in tile_windows(h, tile, margin) for q in tile_windows(w, tile, margin)]
    out = np.empty((h * f, w * f, c), dtype=np.float32)
    # Tracing a graph costs ~2 s, an eager call ~0.2 s more per batch than a traced one: few
    # batches run eagerly; many run traced, padded to one batch shape so it is traced once.
    traced = len(jobs) > 8 * batch_size
    for start in range(0, len(jobs), batch_size):
        chunk = jobs[start:start + batch_size]
        batch = np.stack([x[r[2]:r[3], q[2]:q[3]] for r, q in chunk])
        if traced:
            full = np.zeros((batch_size, *batch.shape[1:]), np.float32)
            full[:len(batch)] = batch
            pred = np.asarray(sr_model.predict_on_batch(full))
        else:
            pred = np.asarray(sr_model(batch, training=False))
        for k, (r, q) in enumerate(chunk):
            out[r[0] * f:r[1] * f, q[0] * f:q[1] * f] = pred[
                k, (r[0] - r[2]) * f:(r[1] - r[2]) * f, (q[0] - q[2]) * f:(q[1] - q[2]) * f]
    return out


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


def write_like_input(stem, x, info: dict, mapping: dict, scale: int) -> Path:
    """Write network values in the input's units, format and encoding; return the path.

    Parameters
    ----------
    stem : str or PathLike
        Output path without extension; the extension follows the input format (``.png``,
        ``.tif``, ``.npy``, ``.h5``, ``.ovf``).
    x : ndarray, shape (H, W, C)
        Network values; mapped back with :func:`from_network`.
    info : dict
        From :func:`read_input`: PNG/TIFF integer images are written in their bit depth
        (``to_intensity``), float images as float32, OVF as OVF 2.0 Binary 4 with the cell
        size divided by ``scale`` in x and y.
    mapping : dict
        From :func:`value_mapping`.
    scale : int
        The SR factor (OVF cell size).
    """
    from spinsr_tf.data.io import write_image

    path = Path(f"{stem}{_OUT_EXT[info['format']]}")
    values = from_network(x, mapping)
    if info["format"] == "ovf":
        from spinsr_tf.data.ovf import write_ovf

        meta = info["ovf"]
        dx, dy, dz = meta["cellsize"]
        unit = (meta["valueunits"] or "1").split()[0]
        return write_ovf(path, values, binary=4, cellsize=(dx / scale, dy / scale, dz),
                         title=meta["title"] or "m", valueunit=unit,
                         desc=[f"spinsr-tf fit-image: x{scale} super-resolution"])
    dtype = info["dtype"] if info["format"] in ("png", "tiff") else "float32"
    if info["format"] == "png" and dtype not in ("uint8", "uint16"):
        dtype = "uint8"
    return write_image(path, values, dtype=dtype)


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
              stride: int | None = None, epochs: int = 40, batch_size: int = 16,
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
        Distance between patches, LR pixels; default ``patch // 2``. The last row and column
        of patches are shifted to end at the image border, so every pixel is covered.
    epochs, batch_size, learning_rate, seed
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
        ``uncertainty.npy`` / ``.png`` their spread (False: one tiled pass of the network).
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
    stride = patch // 2 if stride is None else check_int("stride", stride, 1)
    if stride > patch:
        raise UserError(f"stride {stride} is larger than patch {patch}: pixels would be skipped")
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
    say(f"fit-image: optics: sigma {sigma:.3g} HR px ({optics['how']['sigma']['method']}), "
        f"pixel {pixel}, noise {optics['noise_kind']}"
        + (f" std {optics['noise_std']:.3g}" if optics["noise_kind"] != "none" else "")
        + (f" + {optics['noise_slope']:.3g}*x" if optics["noise_slope"] else "")
        + " (network units)")

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
                          val_fraction=0.1 if n_patches >= 10 else 0.0, seed=seed,
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
        # against ground truth than f(y) alone: docs/uncertainty.md), their spread the map of
        # where to trust it
        say(f"fit-image: trained {epochs_done} epoch(s); super-resolving the image once per "
            "point symmetry (result: their mean; uncertainty: their spread)")
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
                           title="uncertainty (RMS spread over the symmetries, network units)")
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
