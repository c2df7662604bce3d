"""A microscope image in and out of the network's units: reading, the value mapping, writing back.

Scalar images (C = 1) are mapped affinely onto [-1, 1]: ``x = (v − offset) / scale`` with
``offset, scale`` the centre and half-width of the ``percentile .. 100 − percentile`` range of
the values ``v`` (integer images: after :func:`~spinsr_tf.data.io.from_intensity`), so a camera
image with arbitrary offset and contrast meets the network's ±1 domains; the tails beyond the
percentiles are kept, not clipped. Vector images (C = 3) are divided by the median vector length
(``offset = 0``), so spins stay spins and magnetisation in A/m becomes ~unit vectors. A constant
image has no range: its scale is set to 1 (``mapping["constant"]``), it maps to 0 and comes back
unchanged. Results go back with ``v = x · scale + offset``, in the input's format and encoding.
"""

from __future__ import annotations

import numbers
from pathlib import Path

import numpy as np

from spinsr_tf.base.errors import UserError

#: Input format → output extension of the results.
_OUT_EXT = {"npy": ".npy", "h5": ".h5", "tiff": ".tif", "png": ".png", "ovf": ".ovf"}


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
