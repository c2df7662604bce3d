"""A microscope image in and out of the network's units: reading, the value mapping, writing back.

Scalar images (C = 1) are mapped affinely onto [-1, 1]: ``x = (v − offset) / scale`` with
``offset, scale`` the centre and half-width of the ``percentile .. 100 − percentile`` range of
the values ``v`` (integer images: after :func:`~spinsr_tf.data.io.from_intensity`), so a camera
image with arbitrary offset and contrast meets the network's ±1 domains. fit-image's default
percentile is 0 (min .. max): a narrower range would make the result's grey levels depend on
how far the network's scalar output may go beyond ±1 (:class:`~spinsr_tf.nn.layers.UnitVectors`,
the identity on [−1, 1], at most ±2); with
``clip=True`` the 1st–99th percentile range is used and the result clipped to it, which keeps a
few outliers (hot pixels, a burnt-in label) from compressing the contrast but cuts the
brightest features. Vector images (C = 3) are divided by the median vector length
(``offset = 0``), so spins stay spins and magnetisation in A/m becomes ~unit vectors; a blurred
image's vectors are shorter than Ms, and fit-image then replaces that scale by the saturation
estimated under its optics (:func:`~spinsr_tf.inference.fit_image.saturation`). A constant
image has no range: its scale is set to 1 (``mapping["constant"]``), it maps to 0 and comes back
unchanged. Results go back with ``v = x · scale + offset``, in the input's format and encoding,
with the input's metadata on the finer grid: an OVF mesh, origin, units and title
(:func:`~spinsr_tf.data.ovf.ovf_header`), a TIFF's pixel size divided by the factor.

Uneven illumination (a Kerr micrograph brighter on one side): a scalar image may first lose a
smooth background, a low-order polynomial in the pixel position fitted by least squares
(:func:`fit_background`: ``"plane"`` or ``"poly2"``), so the network and the value mapping see a
flat texture; the background, recorded in the mapping, is added back to the result on the finer
grid (:func:`background_map`). Default ``"none"``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from spinsr_tf.base.checks import check_choice, check_real
from spinsr_tf.base.errors import UserError

#: Input format → output extension of the results.
_OUT_EXT = {"npy": ".npy", "h5": ".h5", "tiff": ".tif", "png": ".png", "ovf": ".ovf"}
#: fit-image's default percentile of the scalar mapping (min .. max: nothing capped), and the
#: one of ``clip=True``.
PERCENTILE, CLIP_PERCENTILE = 0.0, 1.0
#: Smooth background models of a scalar image → their polynomial degree in the pixel position.
BACKGROUNDS = {"none": 0, "plane": 1, "poly2": 2}
_TERMS = ("1", "x", "y", "x^2", "x*y", "y^2")


def _png_alpha(path: Path) -> None:
    """Refuse a PNG whose alpha channel is not fully opaque (read_image drops alpha)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if "A" not in im.getbands():
                return
            lo, hi = im.getchannel("A").getextrema()
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError):
        return  # read_image reports unreadable files (and decompression bombs)
    if lo < 255:
        raise UserError(f"PNG file {str(path)!r} has transparent pixels (alpha {lo}..{hi}); "
                        "fit-image needs an opaque image (flatten or crop it first)")


def read_input(path, layer: int | None = None, holes: bool = False) -> tuple[np.ndarray, dict]:
    """Read one image for :func:`fit_image`: ``(H, W, C)`` float32 and a description.

    Formats: those of :func:`spinsr_tf.data.io.read_image` (``.npy``, ``.h5``, ``.tif``,
    ``.png``) and OVF (``.ovf``/``.omf``, :func:`spinsr_tf.data.ovf.read_ovf`, ``layer``).
    Colour images whose channels are equal (grey saved as RGB) become one channel; a PNG's
    alpha channel is dropped if fully opaque, refused otherwise; a colour image, a stack of
    several images, or C other than 1 or 3 is refused. Integer intensities come mapped onto
    [-1, 1] by :func:`~spinsr_tf.data.io.from_intensity`. With ``holes``, NaN or Inf in
    3-component or grey float maps are kept (cells outside the magnet,
    :mod:`spinsr_tf.data.mask`).

    Returns
    -------
    image : ndarray, shape (H, W, C), float32, or float64 for an OVF file's Binary 8 or Text
        values (their precision kept until the network)
    info : dict
        ``format``, ``dtype`` (stored dtype), ``intensity`` (bool), ``ovf`` (OVF metadata or
        None), ``ndim`` (the stored rank, 2, 3 or 4: the layout results are written in; 2
        for grey stored as equal RGB channels),
        ``pixel`` (a TIFF's pixel size, :attr:`~spinsr_tf.data.io.ImageInfo.meta`, or None).
    """
    from spinsr_tf.data.io import OVF_SUFFIXES, read_image

    path = Path(path)
    suffix = path.suffix.lower()
    if layer is not None and suffix not in OVF_SUFFIXES:
        raise UserError(f"layer applies to OVF files only, not {str(path)!r}")
    if suffix in OVF_SUFFIXES:
        from spinsr_tf.data.ovf import read_ovf

        field, meta = read_ovf(path, layer=layer, normalize=False, holes=holes)
        meta = {k: list(v) if isinstance(v, tuple) else v for k, v in meta.items()}
        return field, {"format": "ovf", "dtype": "float32", "intensity": False, "ovf": meta,
                       "ndim": 3, "pixel": None}
    if suffix == ".png" and path.is_file():
        _png_alpha(path)
    x, info = read_image(path, return_info=True, holes=holes)
    if x.shape[0] != 1:
        raise UserError(f"{str(path)!r} holds {x.shape[0]} images; fit-image takes one image "
                        "(split the stack first)")
    x, ndim = x[0], info.ndim
    if info.is_intensity and x.shape[-1] == 3:
        if np.array_equal(x[..., 0], x[..., 1]) and np.array_equal(x[..., 0], x[..., 2]):
            x, ndim = x[..., :1], 2
        else:
            raise UserError(f"{str(path)!r} is a colour image; fit-image reads grey-level "
                            "intensity images (one channel) or spin components stored as "
                            "floats (.npy, .tif, .h5, .ovf)")
    if x.shape[-1] not in (1, 3):
        raise UserError(f"{str(path)!r} has {x.shape[-1]} channels; expected 1 (scalar "
                        "contrast) or 3 (spin components)")
    pixel = info.meta if info.format == "tiff" else None
    return x, {"format": info.format, "dtype": info.dtype, "intensity": info.is_intensity,
               "ovf": None, "ndim": ndim, "pixel": pixel}


def value_mapping(image, percentile: float = PERCENTILE, unit_vectors: bool = False) -> dict:
    """The affine map ``x = (v − offset) / scale`` of an image onto network values.

    Parameters
    ----------
    image : array_like, shape (H, W, C), C = 1 or 3
    percentile : float in [0, 50)
        C = 1: ``offset, scale`` are the centre and half-width of the ``percentile ..
        100 − percentile`` range (0, the default: min..max, nothing beyond ±1). Ignored for
        C = 3 (median vector length).
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
    check_real("percentile", percentile, 0, below=50)
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


def _design(rows, cols, record: dict) -> np.ndarray:
    """The polynomial's terms (:data:`_TERMS`) at LR positions ``rows, cols`` (pixel centres)."""
    (r0, c0), unit = record["centre"], record["unit"]
    y, x = np.broadcast_arrays((np.asarray(rows, np.float64) - r0) / unit,
                               (np.asarray(cols, np.float64) - c0) / unit)
    terms = [np.ones_like(x), x, y, x * x, x * y, y * y]
    return np.stack(terms[:len(record["coefficients"])], axis=-1)


def fit_background(image, model: str = "none", mask=None, pixel: str = "integrate"):
    """A smooth background of a scalar image (uneven illumination), fitted by least squares.

    Parameters
    ----------
    image : array_like, shape (H, W, 1) or (H, W)
        Image values (integer images: after :func:`~spinsr_tf.data.io.from_intensity`).
    model : {"none", "plane", "poly2"}
        A polynomial of degree 0 (no background), 1 or 2 in the pixel position. Low orders only:
        a texture's domains average out of a plane or a parabola over the field of view, but a
        higher order starts to follow the texture itself.
    mask : ndarray (H, W) of bool, optional
        True where the fit may look (the magnet).
    pixel : {"integrate", "sample"}
        How the finer grid sits on the LR pixels (:func:`background_map`): camera pixels
        (LR pixel k is the mean of fine pixels k·f .. k·f + f − 1) or point samples (LR pixel
        k is fine pixel k·f).

    Returns
    -------
    None for ``"none"``, else the record :func:`background_map` evaluates (JSON-ready, kept in
    ``mapping.json``): ``model``, ``terms``, ``coefficients`` (image units), ``centre``
    (row, column) and ``unit`` (positions are ``(row − centre[0]) / unit`` and likewise for
    columns, in LR pixels), ``lr_shape``, ``pixel``.
    """
    check_choice("background", model, tuple(BACKGROUNDS))
    if model == "none":
        return None
    check_choice("pixel", pixel, ("integrate", "sample"))
    v = np.asarray(image, np.float64)
    if v.ndim == 3 and v.shape[-1] != 1:
        raise UserError(f"background {model!r} applies to scalar (one-channel) images, not to "
                        "spin components")
    v = v.reshape(v.shape[:2])
    h, w = v.shape
    n_terms = (1, 3, 6)[BACKGROUNDS[model]]   # the monomials of degree <= 0, 1, 2
    record = {"model": model, "terms": list(_TERMS[:n_terms]), "coefficients": [0.0] * n_terms,
              "centre": [(h - 1) / 2.0, (w - 1) / 2.0], "unit": max(h, w) / 2.0,
              "lr_shape": [h, w], "pixel": pixel}
    keep = np.isfinite(v) if mask is None else (np.asarray(mask, bool) & np.isfinite(v))
    if keep.sum() < 4 * len(record["terms"]):
        raise UserError(f"too few pixels ({int(keep.sum())}) to fit a {model} background")
    rows, cols = np.nonzero(keep)
    coef = np.linalg.lstsq(_design(rows, cols, record), v[keep], rcond=None)[0]
    record["coefficients"] = [float(a) for a in coef]
    return record


def background_map(record, shape) -> np.ndarray | float:
    """The background of :func:`fit_background` on the LR grid or on a grid ``f`` times finer,
    as ``shape`` ``(H, W, ...)`` says (``(h·f, w·f)``); ``(H, W, 1)`` float64, 0.0 without one.
    A fine pixel's centre sits at LR position ``(j + ½)/f − ½`` (camera pixels) or ``j/f``
    (point samples), so a plane averaged over each camera pixel's block is the LR plane."""
    if not record:
        return 0.0
    (h, w), (hh, ww) = record["lr_shape"], tuple(shape[:2])
    f = hh // h
    if f < 1 or (hh, ww) != (h * f, w * f):
        raise UserError(f"a background fitted on {h}x{w} pixels cannot be laid on {hh}x{ww}")
    grid = np.arange(hh), np.arange(ww)
    rows, cols = ((g + 0.5) / f - 0.5 if record["pixel"] == "integrate" else g / f
                  for g in grid)
    design = _design(rows[:, None], cols[None, :], record)
    return (design @ np.asarray(record["coefficients"], np.float64))[..., None]


def to_network(values, mapping: dict) -> np.ndarray:
    """``(v − background − offset) / scale`` as float32 (``mapping["background"]``: see
    :func:`fit_background`, on the grid of ``values``); with ``mapping["unit_vectors"]`` each
    vector is then scaled to unit length (zero vectors stay zero)."""
    v = np.asarray(values, np.float64)
    if mapping.get("background"):
        v = v - background_map(mapping["background"], v.shape)
    x = (v - mapping["offset"]) / mapping["scale"]
    if mapping.get("unit_vectors"):
        norm = np.sqrt(np.square(x).sum(axis=-1, keepdims=True))
        x = np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)
    return x.astype(np.float32)


def from_network(x, mapping: dict, clip: bool = False) -> np.ndarray:
    """``x · scale + offset`` (+ the background on the grid of ``x``, LR or finer) as float32:
    the inverse of :func:`to_network`, unclipped; with ``clip`` (scalar images) ``x`` is first
    clipped to [−1, 1], the mapping's percentile range."""
    x = np.asarray(x, np.float64)
    if clip and mapping.get("kind") == "percentile":
        x = np.clip(x, -1.0, 1.0)
    v = x * mapping["scale"] + mapping["offset"]
    if mapping.get("background"):
        v = v + background_map(mapping["background"], v.shape)
    return v.astype(np.float32)


def _output(stem, shape, info: dict, scale: int) -> tuple[Path, dict]:
    """The path and :func:`~spinsr_tf.data.io.write_image` arguments of a result of ``shape``
    (H·f, W·f, C) written like the input: format, bit depth, layout and metadata."""
    path = Path(f"{stem}{_OUT_EXT[info['format']]}")
    if info["format"] == "ovf":
        from spinsr_tf.data.ovf import ovf_header

        header = ovf_header(info["ovf"], scale,
                            desc=[f"spinsr-tf fit-image: x{scale} super-resolution"])
        return path, {"dtype": "float32", "ovf": header}
    dtype = info["dtype"] if info["format"] in ("png", "tiff") else "float32"
    if info["format"] == "png" and dtype not in ("uint8", "uint16"):
        dtype = "uint8"
    from spinsr_tf.data.io import scaled_pixel

    pixel = scaled_pixel(info.get("pixel"), scale) if info["format"] == "tiff" else None
    return path, {"dtype": dtype, "pixel": pixel}


def _layout_shape(shape, info: dict) -> tuple:
    """``(H, W, C)`` in the input's rank: ``(H, W)`` for a 2D grey image, ``(1, H, W, C)``
    for a stack of one."""
    shape, ndim = tuple(shape), info.get("ndim", 3)
    if ndim == 2 and shape[-1] == 1:
        return shape[:-1]
    return (1, *shape) if ndim == 4 else shape


def _layout(values, info: dict):
    return np.reshape(values, _layout_shape(np.shape(values), info))


def check_like_input(stem, shape, info: dict, scale: int) -> Path:
    """Check, before any work, that :func:`write_like_input` can write a result of ``shape``
    ``(H·f, W·f, C)``: the format can hold it and the input's metadata can be written on the
    finer grid (e.g. an OVF mesh). The folder is not looked at (the run creates it)."""
    from spinsr_tf.data.io import check_writable

    path, kwargs = _output(stem, shape, info, scale)
    check_writable(path, _layout_shape(shape, info), kwargs["dtype"], ovf=kwargs.get("ovf"),
                   pixel=kwargs.get("pixel"), folder=False)
    return path


def write_like_input(stem, x, info: dict, mapping: dict, scale: int,
                     clip: bool = False) -> Path:
    """Write network values in the input's units, format, encoding and layout; return the path.

    Parameters
    ----------
    stem : str or PathLike
        Output path without extension; the extension follows the input format (``.png``,
        ``.tif``, ``.npy``, ``.h5``, ``.ovf``).
    x : ndarray, shape (H, W, C)
        Network values; mapped back with :func:`from_network` (unclipped unless ``clip``).
    info : dict
        From :func:`read_input`: PNG/TIFF integer images are written in their bit depth
        (``to_intensity``), float images as float32, a 2D image as 2D; TIFF with its pixel size
        divided by ``scale``; OVF in the file's version with its metadata on the finer mesh
        (:func:`~spinsr_tf.data.ovf.ovf_header`: cell size divided by ``scale`` in x and y,
        origin, units, title kept).
    mapping : dict
        From :func:`value_mapping`.
    scale : int
        The SR factor.
    clip : bool
        Scalar images: clip to the mapping's percentile range (:func:`from_network`).
    """
    from spinsr_tf.data.io import write_image

    path, kwargs = _output(stem, np.shape(x), info, scale)
    if info["format"] == "ovf":  # float64 to the file: Binary 8 keeps it
        values = np.asarray(x, np.float64) * mapping["scale"] + mapping["offset"]
    else:
        values = from_network(x, mapping, clip=clip)
    return write_image(path, _layout(values, info), **kwargs)
