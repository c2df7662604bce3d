"""Read and write spin maps and microscope images as ``(N, H, W, C)`` float32 arrays.

Formats, chosen by the file extension (case-insensitive):

- ``.npy``: a NumPy array of shape (H, W), (H, W, C) or (N, H, W, C);
- ``.h5`` / ``.hdf5``: one dataset of such an array; by default the one of ``lr``, ``spins`` or
  ``sr`` that the file holds (or its only dataset), else the one named by ``dataset``;
- ``.tif`` / ``.tiff`` (tifffile): the first image series; its sample axis ``S`` (or ``C``)
  becomes the channels, every axis other than Y, X and the channels is flattened into N;
- ``.png`` (Pillow): one image, grayscale (8 or 16 bit) → C = 1, RGB (8 or 16 bit; 16-bit RGB
  through imagecodecs, which Pillow cannot decode) → C = 3; an alpha channel is dropped, palette
  images are converted to RGB;
- ``.ovf`` / ``.omf`` (:mod:`~spinsr_tf.data.ovf`): every z layer of an OOMMF/mumax3 vector
  field, one map per layer, values as stored (e.g. A/m); written as OVF with the metadata
  :func:`~spinsr_tf.data.ovf.ovf_header` gives.

Declared sizes are checked before anything is read (:func:`check_declared`: a header declaring
terabytes is refused in one line, not met with a ``MemoryError``), and a damaged file (a corrupt
compressed HDF5 chunk, a truncated ``.npy``, a decompression bomb) is a ``UserError`` naming it.

Values: float data are taken as they are (spin components in [-1, 1]). Integer intensities
(uint8, uint16, int8, int16 — what cameras and image files hold) are mapped linearly from the
dtype's full range onto [-1, 1] (:func:`from_intensity`), so that a MOKE image and a simulated
Sz map live on the same scale. :func:`read_image` can return an :class:`ImageInfo` recording
the stored dtype; writing with that dtype (:func:`to_intensity`) maps [-1, 1] back onto it, so
a uint8 image read and written again is unchanged.

A single image reads as N = 1: (H, W) → (1, H, W, 1), (H, W, C) → (1, H, W, C);
:attr:`ImageInfo.ndim` remembers the stored rank, and :func:`write_image` stores the rank it is
given, so a single map written back keeps its layout. What a file says about its grid travels in
:attr:`ImageInfo.meta`: an OVF header (mesh, origin, units, title), a TIFF's pixel size
(resolution tags, ImageJ unit), so a result can be written on a mesh ``scale`` times finer.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from spinsr_tf.base.errors import UserError
from spinsr_tf.base.files import atomic_path

#: File extension → format name.
FORMATS = {".npy": "npy", ".h5": "h5", ".hdf5": "h5", ".tif": "tiff", ".tiff": "tiff",
           ".png": "png", ".ovf": "ovf", ".omf": "ovf", ".ohf": "ovf", ".oef": "ovf"}
#: Extensions of OVF vector-field files (:mod:`~spinsr_tf.data.ovf`): OOMMF's for
#: magnetisation, fields and energy densities, and the generic one.
OVF_SUFFIXES = (".ovf", ".omf", ".ohf", ".oef")
#: HDF5 datasets looked for when none is named (LR input, HR ground truth, SR output).
H5_DATASETS = ("lr", "spins", "sr")
#: Integer dtypes understood as intensities and mapped onto [-1, 1].
INTENSITY_DTYPES = ("uint8", "uint16", "int8", "int16")
#: dtypes :func:`write_image` can store.
WRITE_DTYPES = ("float32",) + INTENSITY_DTYPES
#: HDF5 files planned at most this large (and at most half the free memory) are built in memory
#: and written with plain file I/O: HDF5 that meets a full disk or a file-size limit raises once,
#: then crashes the process (a segfault at exit, measured with h5py 3.14 / HDF5 1.14.6), where
#: plain I/O raises an ``OSError`` naming the file. Larger files go to disk after a space check.
H5_MEMORY_BYTES = 4 << 30
#: Bytes an HDF5 file holds beyond its data (superblock, B-trees, attributes), as a margin.
H5_OVERHEAD = 64 << 10


@dataclass(frozen=True)
class ImageInfo:
    """How an array was stored, so that results can be written back the same way.

    Attributes
    ----------
    format : {"npy", "h5", "tiff", "png", "ovf"}
    dtype : str
        The stored dtype (``"uint8"``, ``"float32"``...). For the dtypes of
        :data:`INTENSITY_DTYPES` the values were mapped from the dtype range onto [-1, 1].
    dataset : str or None
        The HDF5 dataset read (None for other formats).
    ndim : int
        Rank of the stored array: 2 (H, W), 3 (H, W, C; one OVF layer) or 4 (N, H, W, C; OVF
        layers), the layout a result is written back in.
    meta : dict or None
        OVF: :func:`~spinsr_tf.data.ovf.read_ovf`'s header (``magnitude`` over all layers);
        TIFF with a pixel size: ``resolution`` (pixels per unit, x and y), ``resolutionunit``
        (TIFF code: 1 none, 2 inch, 3 cm) and ``imagej_unit`` (ImageJ's, e.g. "um", or None).
    """

    format: str
    dtype: str
    dataset: str | None = None
    ndim: int = field(default=4, compare=False)
    meta: dict | None = field(default=None, compare=False)

    @property
    def is_intensity(self) -> bool:
        """True if the values were integer intensities mapped onto [-1, 1]."""
        return self.dtype in INTENSITY_DTYPES


def image_format(path: str | os.PathLike) -> str:
    """The format name of ``path`` from its extension, or a ``UserError`` listing the known ones."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise UserError(f"unknown image extension {suffix or '(none)'!r} of {str(path)!r}; "
                        f"use one of {', '.join(sorted(FORMATS))}")
    return FORMATS[suffix]


def _int_range(dtype) -> tuple[int, int]:
    info = np.iinfo(np.dtype(dtype))
    return int(info.min), int(info.max)


def from_intensity(values, dtype=None) -> np.ndarray:
    """Map integer intensities linearly from their dtype's range onto [-1, 1].

    ``x = 2 (v - lo) / (hi - lo) - 1`` with ``lo, hi`` the dtype's limits (0 and 255 for uint8),
    so ``lo → -1`` and ``hi → +1`` exactly.

    Parameters
    ----------
    values : array_like of an integer dtype in :data:`INTENSITY_DTYPES`
    dtype : dtype, optional
        The range to use; default ``values.dtype``.

    Returns
    -------
    ndarray, same shape, float32.
    """
    v = np.asarray(values)
    dtype = np.dtype(v.dtype if dtype is None else dtype)
    if dtype.name not in INTENSITY_DTYPES:
        raise UserError(f"intensity dtype must be one of {INTENSITY_DTYPES}, got {dtype.name!r}")
    lo, hi = _int_range(dtype)
    return ((v.astype(np.float64) - lo) * (2.0 / (hi - lo)) - 1.0).astype(np.float32)


def to_intensity(x, dtype) -> np.ndarray:
    """Inverse of :func:`from_intensity`: [-1, 1] → the integer range of ``dtype``.

    Values outside [-1, 1] are clipped; the result is rounded to the nearest integer, so
    ``to_intensity(from_intensity(v), v.dtype) == v`` exactly.

    Returns
    -------
    ndarray, same shape, of ``dtype``.
    """
    dtype = np.dtype(dtype)
    if dtype.name not in INTENSITY_DTYPES:
        raise UserError(f"intensity dtype must be one of {INTENSITY_DTYPES}, got {dtype.name!r}")
    lo, hi = _int_range(dtype)
    x = np.clip(np.asarray(x, dtype=np.float64), -1.0, 1.0)
    return np.rint((x + 1.0) * ((hi - lo) / 2.0) + lo).astype(dtype)


def _to_nhwc(array: np.ndarray, path) -> np.ndarray:
    if array.ndim == 2:
        return array[None, :, :, None]
    if array.ndim == 3:
        return array[None]
    if array.ndim == 4:
        return array
    raise UserError(f"{str(path)!r} holds an array of shape {array.shape}; expected (H, W), "
                    "(H, W, C) or (N, H, W, C)")


def _values(raw: np.ndarray, path, holes: bool = False) -> tuple[np.ndarray, str]:
    """float32 values of a raw array (intensities mapped) and the stored dtype name; with
    ``holes``, NaN or Inf in float 3-component or grey maps are kept (cells outside the
    magnet)."""
    dtype = raw.dtype
    if dtype.name in INTENSITY_DTYPES:
        out = from_intensity(raw)
    elif np.issubdtype(dtype, np.floating):
        out = raw.astype(np.float32)
    else:
        raise UserError(f"{str(path)!r} holds values of dtype {dtype.name}; expected a float "
                        f"dtype or one of {', '.join(INTENSITY_DTYPES)}")
    if out.size == 0:
        raise UserError(f"{str(path)!r} holds an empty array of shape {raw.shape}")
    if not (holes and out.shape[-1] in (1, 3) and np.issubdtype(dtype, np.floating)) \
            and not np.all(np.isfinite(out)):
        bad = int(np.count_nonzero(~np.isfinite(out)))
        raise UserError(f"{str(path)!r} contains {bad} NaN or infinite value(s)")
    return out, dtype.name


def _npy_header(path: Path) -> tuple[tuple, np.dtype, int]:
    """Shape, dtype and data offset a ``.npy`` header declares (nothing else is read)."""
    with open(path, "rb") as fh:
        fmt = np.lib.format
        version = fmt.read_magic(fh)
        read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, _, dtype = read(fh)
        return tuple(shape), dtype, fh.tell()


def _read_npy(path: Path) -> np.ndarray:
    try:
        shape, dtype, offset = _npy_header(path)
    except (ValueError, EOFError, SyntaxError, TypeError) as exc:
        raise UserError(f"cannot read {str(path)!r} as .npy: {_first_line(exc)}") from None
    if not dtype.hasobject:   # pickled objects: np.load refuses them below
        declared = array_bytes(shape, dtype)
        if declared != path.stat().st_size - offset:
            held = format_bytes(path.stat().st_size - offset)
            raise UserError(f"{str(path)!r} declares an array of shape {shape} ({dtype}, "
                            f"{format_bytes(declared)}) but holds {held} of data: a truncated or "
                            "damaged .npy file")
        check_declared(path, shape, dtype)
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            raise     # a failing device, not a damaged file: the command line says so
        raise UserError(f"cannot read {str(path)!r} as .npy: {_first_line(exc)}") from None


@contextlib.contextmanager
def damaged_file_errors(path, what: str = "HDF5 file"):
    """Turn the errors of reading a damaged file into one ``UserError`` naming it: those that
    carry no errno (HDF5's "filter returned failure" on a corrupt compressed chunk, a truncated
    dataset). An ``OSError`` with an errno (EIO: a failing device) passes on to the command
    line, which says whose fault it is."""
    try:
        yield
    except OSError as exc:
        if exc.errno is not None:
            raise
        raise UserError(f"cannot read {what} {str(path)!r}: {_first_line(exc)} (a damaged "
                        "file)") from None


def _read_h5(path: Path, dataset: str | None) -> tuple[np.ndarray, str]:
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise UserError(f"cannot read HDF5 file {str(path)!r}: {_first_line(exc)}") from None
    with f, damaged_file_errors(path):
        found = sorted(k for k in f.keys() if isinstance(f[k], h5py.Dataset))
        if dataset is None:
            known = [k for k in H5_DATASETS if k in found]
            if len(known) == 1:
                dataset = known[0]
            elif not known and len(found) == 1:
                dataset = found[0]
            else:
                raise UserError(f"{str(path)!r} holds datasets {found}; name the one to read "
                                "(--dataset NAME)")
        elif dataset not in found:
            raise UserError(f"{str(path)!r} has no dataset {dataset!r} (found: {found})")
        data = f[dataset]
        if data.dtype.kind in "biuf":
            check_declared(path, data.shape, data.dtype)
        return np.asarray(data[()]), dataset


def _tiff_pixel(tif) -> dict | None:
    """The pixel size a TIFF states: resolution tags (pixels per unit) and ImageJ's unit;
    None when it states none (no tags, or 1 pixel per no unit)."""
    page = tif.pages[0]
    if "XResolution" not in page.tags or "YResolution" not in page.tags:
        return None
    x, y = (float(v) for v in page.get_resolution())
    unit = int(page.resolutionunit)
    imagej = (tif.imagej_metadata or {}).get("unit") if tif.is_imagej else None
    if not (np.isfinite(x) and np.isfinite(y) and x > 0 and y > 0) \
            or (unit == 1 and not imagej and x == y == 1.0):
        return None
    return {"resolution": (x, y), "resolutionunit": unit,
            "imagej_unit": None if imagej is None else str(imagej)}


def _read_tiff(path: Path) -> tuple[np.ndarray, dict | None]:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            check_declared(path, series.shape, series.dtype)   # before the pages are read
            axes, data = series.axes.upper(), series.asarray()
            pixel = _tiff_pixel(tif)
    except UserError:
        raise
    except (tifffile.TiffFileError, OSError, ValueError, IndexError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            raise     # a failing device, not a damaged file: the command line says so
        raise UserError(f"cannot read TIFF file {str(path)!r}: {_first_line(exc)}") from None
    if "Y" not in axes or "X" not in axes or len(axes) != data.ndim:
        raise UserError(f"TIFF file {str(path)!r} has axes {axes!r}; expected Y and X")
    channel = [i for i, a in enumerate(axes) if a in "SC"]
    if len(channel) > 1:
        raise UserError(f"TIFF file {str(path)!r} has two channel axes ({axes!r})")
    spatial = [axes.index("Y"), axes.index("X")]
    rest = [i for i in range(data.ndim) if i not in spatial + channel]
    data = np.transpose(data, rest + spatial + channel)
    h, w = data.shape[len(rest)], data.shape[len(rest) + 1]
    c = data.shape[-1] if channel else 1
    if not rest:  # one image keeps its layout: (H, W) or (H, W, C)
        return (data if channel else data.reshape(h, w)), pixel
    return data.reshape(-1, h, w, c), pixel


def _png_header(path: Path) -> tuple[int, int, int, int] | None:
    """Width, height, bit depth and colour type of a PNG's IHDR chunk; None if not a PNG."""
    with open(path, "rb") as fh:
        head = fh.read(26)
    if len(head) < 26 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return (int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big"),
            head[24], head[25])


def _read_png16_colour(path: Path, width: int, height: int) -> np.ndarray:
    """A 16-bit RGB(A) PNG at 16 bits (Pillow reads it as 8-bit): decoded by imagecodecs
    (tifffile's codec package), the alpha channel dropped."""
    try:
        import imagecodecs
    except ImportError:
        raise UserError(f"PNG file {str(path)!r} is 16-bit RGB, which Pillow reads at 8 bits "
                        "only; install imagecodecs (pip install imagecodecs) or save it as a "
                        "16-bit TIFF") from None
    check_declared(path, (height, width, 4), "uint16")
    try:
        data = imagecodecs.png_decode(path.read_bytes())
    except (imagecodecs.PngError, ValueError) as exc:
        raise UserError(f"cannot read PNG file {str(path)!r}: {_first_line(exc)}") from None
    return np.asarray(data[..., :3], dtype=np.uint16)


def _read_png(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    header = _png_header(path)
    if header is not None:
        width, height, depth, colour = header
        if width * height > 4 * Image.MAX_IMAGE_PIXELS:   # Pillow's limit for a bomb, twice
            raise UserError(f"PNG file {str(path)!r} declares {width}x{height} pixels, more than "
                            "any microscope image (a decompression bomb?)")
        check_declared(path, (height, width, 4), "uint8" if depth <= 8 else "uint16")
        if depth == 16 and colour in (2, 6):
            return _read_png16_colour(path, width, height)
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            if mode == "P":
                im = im.convert("RGB")
            elif mode == "1":
                im = im.convert("L")
            elif mode in ("LA", "RGBA"):
                im = im.convert(mode[:-1])
            data = np.asarray(im)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError,
            ValueError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            raise     # a failing device, not a damaged file: the command line says so
        raise UserError(f"cannot read PNG file {str(path)!r}: {_first_line(exc)}") from None
    if mode.startswith("I;16"):
        data = data.astype(np.uint16)
    elif mode == "I":
        if data.min() < 0 or data.max() > 65535:
            raise UserError(f"PNG file {str(path)!r} holds 32-bit values outside 0..65535")
        data = data.astype(np.uint16)
    elif mode not in ("1", "L", "LA", "P", "RGB", "RGBA"):
        raise UserError(f"PNG file {str(path)!r} has unsupported mode {mode!r}")
    return data


def read_image(path: str | os.PathLike, dataset: str | None = None, *,
               return_info: bool = False, holes: bool = False):
    """Read maps from ``.npy``, ``.h5``/``.hdf5``, ``.tif``/``.tiff``, ``.png`` or ``.ovf``.

    OVF files: every z layer is one map (N = znodes), values as stored (float32 here; the
    file's float64 stays in :func:`~spinsr_tf.data.ovf.read_ovf`).

    Parameters
    ----------
    path : str or PathLike
    dataset : str, optional
        HDF5 only: the dataset to read; default the one of ``lr``, ``spins``, ``sr`` present
        (or the file's only dataset).
    return_info : bool
        Also return an :class:`ImageInfo` (stored format, dtype, rank and metadata), to write
        results back in the same encoding and layout.
    holes : bool
        Keep NaN or Inf in float 3-component or grey (one-channel) maps: cells outside the
        magnet (:mod:`spinsr_tf.data.mask`); refused otherwise.

    Returns
    -------
    ndarray, shape (N, H, W, C), float32
        Float data as stored; integer intensities mapped onto [-1, 1] (:func:`from_intensity`).
    ImageInfo
        Only with ``return_info=True``.

    Raises
    ------
    UserError
        Missing or unreadable file, unknown extension, a rank other than 2, 3 or 4, a dtype that
        is neither float nor an intensity, NaN or Inf values, or an ambiguous HDF5 dataset.
    """
    path = Path(path)
    if path.suffix.lower() in OVF_SUFFIXES:   # vector fields of OOMMF / mumax3
        from spinsr_tf.data.ovf import read_ovf

        if not path.is_file():
            raise UserError(f"input file {str(path)!r} does not exist")
        if dataset is not None:
            raise UserError(f"dataset={dataset!r} applies to HDF5 files only, not {str(path)!r}")
        field_, meta = read_ovf(path, layer="all", normalize=False, holes=holes)
        if field_.shape[0] == 1:
            field_ = field_[0]
        values, _ = _values(_to_nhwc(field_, path), path, holes)
        return (values, ImageInfo(format="ovf", dtype="float32", dataset=None,
                                  ndim=field_.ndim, meta=meta)) if return_info else values
    fmt = image_format(path)
    if not path.is_file():
        raise UserError(f"input file {str(path)!r} does not exist")
    if dataset is not None and fmt != "h5":
        raise UserError(f"dataset={dataset!r} applies to HDF5 files only, not {str(path)!r}")
    name, meta = None, None
    if fmt == "npy":
        raw = _read_npy(path)
    elif fmt == "h5":
        raw, name = _read_h5(path, dataset)
    elif fmt == "tiff":
        raw, meta = _read_tiff(path)
    else:
        raw = _read_png(path)
    ndim = np.ndim(raw)
    raw = _to_nhwc(raw, path)
    values, dtype = _values(raw, path, holes)
    if return_info:
        return values, ImageInfo(format=fmt, dtype=dtype, dataset=name, ndim=ndim, meta=meta)
    return values


def _encode(x: np.ndarray, dtype: str) -> np.ndarray:
    return x.astype(np.float32) if dtype == "float32" else to_intensity(x, dtype)


def _json_attr(value):
    if isinstance(value, (str, int, float, bool, np.integer, np.floating)):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def check_writable(path, shape, dtype: str | None = None, *, ovf: dict | None = None,
                   pixel: dict | None = None, folder: bool = True) -> tuple[str, str]:
    """Check, before computing anything, that ``write_image(path, array of shape, dtype, ...)``
    can succeed; return ``(format, stored dtype)``.

    ``shape`` is the array's, any layout :func:`write_image` takes; ``ovf`` and ``pixel`` are
    its metadata arguments. With ``folder=False`` the output folder is not looked at (one the
    command creates later).

    Raises
    ------
    UserError
        Unknown extension, missing output folder, ``path`` a folder, an empty or badly shaped
        array, a dtype/shape the format cannot store (see :func:`write_image`), or an OVF
        header :func:`~spinsr_tf.data.ovf.write_ovf` cannot write (not 3 components, negative
        steps, ...).
    """
    path = Path(path)
    fmt = image_format(path)
    shape = tuple(int(n) for n in shape)
    if len(shape) not in (2, 3, 4) or min(shape) < 1:
        raise UserError(f"array must have shape (H, W), (H, W, C) or (N, H, W, C) with no "
                        f"empty axis, got {shape}")
    n, h, w, c = (1,) * (4 - len(shape)) + shape if len(shape) > 2 else (1, *shape, 1)
    dtype = ("uint8" if fmt == "png" else "float32") if dtype is None else np.dtype(dtype).name
    if dtype not in WRITE_DTYPES:
        raise UserError(f"dtype must be one of {WRITE_DTYPES}, got {dtype!r}")
    if fmt == "png":
        if n != 1:
            raise UserError(f"a PNG file holds one image, got N={n}; write .npy, .h5 or .tif")
        if dtype not in ("uint8", "uint16") or (dtype == "uint16" and c != 1) or c not in (1, 3):
            raise UserError(f"PNG stores uint8 with 1 or 3 channels or uint16 with 1 channel, "
                            f"got dtype {dtype} with {c} channel(s); write .tif for other data")
    if fmt == "ovf":
        from spinsr_tf.data.ovf import check_ovf_header

        if c != 3:
            raise UserError(f"an OVF file holds 3-component vectors, got {c} channel(s); "
                            "write .npy, .h5 or .tif")
        if dtype != "float32":
            raise UserError(f"an OVF file holds float values, got dtype {dtype}")
        check_ovf_header((n, h, w, c), **(ovf or {}))
    if pixel is not None:
        _check_pixel(pixel)
    if folder:
        parent = path.parent
        if not parent.is_dir():
            raise UserError(f"output directory {str(parent)!r} does not exist")
        if path.is_dir():
            raise UserError(f"output path {str(path)!r} is a directory")
    return fmt, dtype


def _check_pixel(pixel: dict) -> None:
    try:
        x, y = (float(v) for v in pixel["resolution"])
        unit = int(pixel.get("resolutionunit", 1))
    except (KeyError, TypeError, ValueError):
        raise UserError(f"pixel must hold 'resolution' (x, y) pixels per unit, got {pixel!r}") \
            from None
    if not (np.isfinite(x) and np.isfinite(y) and x > 0 and y > 0) or unit not in (1, 2, 3):
        raise UserError(f"TIFF resolution must be two finite numbers > 0 per unit 1, 2 or 3, "
                        f"got {pixel!r}")


def scaled_pixel(pixel: dict | None, scale: int) -> dict | None:
    """A TIFF pixel size (:attr:`ImageInfo.meta`) for pixels ``scale`` times smaller: the
    resolution (pixels per unit) times ``scale``, the unit kept; None stays None."""
    if not pixel:
        return None
    x, y = pixel["resolution"]
    return {**pixel, "resolution": (float(x) * scale, float(y) * scale)}


def write_image(path: str | os.PathLike, array, *, dtype: str | None = None, dataset: str = "sr",
                attrs: dict | None = None, ovf: dict | None = None,
                pixel: dict | None = None) -> Path:
    """Write maps to ``.npy``, ``.h5``/``.hdf5``, ``.tif``/``.tiff``, ``.png`` or ``.ovf``,
    atomically.

    The file is written under a temporary name in the same folder and renamed, so ``path`` is
    either the complete new file or untouched.

    Parameters
    ----------
    path : str or PathLike
        Output file; the format follows its extension.
    array : array_like, shape (N, H, W, C), (H, W, C) or (H, W)
        Values, nominally in [-1, 1]. ``.npy`` and ``.h5`` store the array in the rank given
        (a single map stays ``(H, W, C)``); an OVF file holds ``(H, W, 3)`` as one layer and
        ``(N, H, W, 3)`` as N layers.
    dtype : {"float32", "uint8", "uint16", "int8", "int16"}, optional
        Stored dtype; integer dtypes map [-1, 1] onto their full range (:func:`to_intensity`,
        values outside clipped). Default ``"uint8"`` for PNG, ``"float32"`` otherwise. PNG
        stores uint8 (C = 1 or 3) or uint16 (C = 1) only, and one image (N = 1); OVF float
        values only.
    dataset : str
        HDF5 only: dataset name (default ``"sr"``); written one map per chunk.
    attrs : dict, optional
        HDF5 only: attributes of the file (non-scalar values stored as JSON text).
    ovf : dict, optional
        OVF only: :func:`~spinsr_tf.data.ovf.write_ovf` keyword arguments (mesh, origin,
        units, title...; :func:`~spinsr_tf.data.ovf.ovf_header`); default a 1 nm mesh at 0.
    pixel : dict, optional
        TIFF only: the pixel size to state (:attr:`ImageInfo.meta` of a TIFF,
        :func:`scaled_pixel` for a finer grid): resolution tags, and ImageJ's unit where the
        dtype and channels allow an ImageJ file (uint8, uint16, float32; one channel).

    Returns
    -------
    Path of the written file.

    Raises
    ------
    UserError
        Unknown extension, missing output folder, wrong rank, NaN or Inf, or a dtype/shape the
        format cannot store.
    """
    path = Path(path)
    x = np.asarray(array)
    if x.ndim not in (2, 3, 4):
        _to_nhwc(x, "array")
    if not np.issubdtype(x.dtype, np.number) or np.iscomplexobj(x):
        raise UserError(f"array must hold real numbers, got dtype {x.dtype}")
    fmt, dtype = check_writable(path, x.shape, dtype, ovf=ovf, pixel=pixel)
    if not np.all(np.isfinite(x)):
        raise UserError("array contains NaN or infinite values; refusing to write them")
    if fmt == "ovf":
        from spinsr_tf.data.ovf import write_ovf

        kwargs = dict(ovf or {})
        values = x if kwargs.get("binary", 4) != 4 else x.astype(np.float32)
        return write_ovf(path, values, **kwargs)
    data = _encode(x, dtype)
    nhwc = _to_nhwc(data, "array")
    n, h, w, c = nhwc.shape
    if fmt == "h5":
        _write_h5(path, data, dataset, attrs)
        return path
    try:
        with atomic_path(path) as tmp:
            if fmt == "npy":
                with open(tmp, "wb") as fh:
                    np.save(fh, data)
            elif fmt == "tiff":
                _write_tiff(tmp, nhwc, pixel)
            else:
                from PIL import Image

                Image.fromarray(nhwc[0, :, :, 0] if c == 1 else nhwc[0]).save(tmp, format="PNG")
    except OSError as exc:   # a full disk, a file-size limit: the command line says which
        exc.filename = str(path)
        raise
    return path


def _write_h5(path: Path, data: np.ndarray, dataset: str, attrs: dict | None) -> None:
    with h5_output(path, data.nbytes) as f:
        chunks = (1, *data.shape[1:]) if data.ndim == 4 else None
        f.create_dataset(dataset, data=data, chunks=chunks)
        if data.dtype.name in INTENSITY_DTYPES:
            f.attrs["intensity_range"] = _int_range(data.dtype)
        for key, value in (attrs or {}).items():
            f.attrs[key] = _json_attr(value)


def _write_tiff(tmp: Path, data: np.ndarray, pixel: dict | None = None) -> None:
    import tifffile

    n, h, w, c = data.shape
    extra = {}
    if pixel:
        extra = {"resolution": tuple(float(v) for v in pixel["resolution"]),
                 "resolutionunit": int(pixel.get("resolutionunit", 1))}
        unit = pixel.get("imagej_unit")
        if unit and c == 1 and data.dtype.name in ("uint8", "uint16", "float32"):
            tifffile.imwrite(tmp, data[0, :, :, 0] if n == 1 else data[..., 0], imagej=True,
                             metadata={"unit": unit}, **extra)
            return
    if c == 1:
        tifffile.imwrite(tmp, data[0, :, :, 0] if n == 1 else data[..., 0],
                         photometric="minisblack", **extra)
    elif c == 3:
        tifffile.imwrite(tmp, data[0] if n == 1 else data, photometric="rgb", **extra)
    else:
        tifffile.imwrite(tmp, data, photometric="minisblack", planarconfig="contig",
                         metadata={"axes": "QYXS"}, **extra)


def format_bytes(n: float) -> str:
    """``n`` bytes for a message: three significant digits and a binary unit (``"3.06 MiB"``)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} EiB"  # pragma: no cover


def available_memory() -> int | None:
    """Bytes of memory a new allocation can have (Linux: MemAvailable), or None if unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


def _file_size_limit() -> int | None:
    """The largest file this process may write (``ulimit -f``), bytes; None if unlimited."""
    try:
        import resource
    except ImportError:   # Windows: no such limit
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    return None if soft == resource.RLIM_INFINITY else int(soft)


def array_bytes(shape, dtype="float32") -> int:
    """Bytes of an array of ``shape`` and ``dtype`` (exact integers: no overflow)."""
    return math.prod(int(n) for n in shape) * np.dtype(dtype).itemsize


def check_size(what: str, *, memory: int = 0, disk: int = 0, folder=None) -> None:
    """Refuse, before reading or allocating, work this machine cannot hold.

    ``memory``: bytes the command will hold at once (against the available memory); ``disk``:
    bytes of one file it will write into ``folder`` (against the free space and the file-size
    limit). ``what`` names the work in the one-line refusal (e.g. ``"reading 'x.h5' (spins of
    shape (...))"``). A file declaring terabytes is refused here, not after hours of work.
    """
    memory, disk = int(memory), int(disk)
    have = available_memory() if memory else None
    if have is not None and memory > have:
        raise UserError(f"{what} needs about {format_bytes(memory)} of memory, "
                        f"{format_bytes(have)} is available")
    if disk and folder is not None:
        folder = Path(folder) if str(folder) else Path(".")
        try:
            free = shutil.disk_usage(folder).free
        except OSError:
            free = None
        if free is not None and disk > free:
            raise UserError(f"{what} needs about {format_bytes(disk)} of disk space in "
                            f"{str(folder)!r}, {format_bytes(free)} is free")
        limit = _file_size_limit()
        if limit is not None and disk > limit:
            raise UserError(f"{what} writes a file of about {format_bytes(disk)}, more than the "
                            f"file size limit of {format_bytes(limit)} (ulimit -f)")


def check_declared(path, shape, dtype, *, copies: float = 1.0, out_bytes: int = 0,
                   out_folder=None) -> int:
    """:func:`check_size` for a stored dataset of ``shape`` and ``dtype`` read whole as float32,
    held ``copies`` times at once, and an output of ``out_bytes`` in ``out_folder``; returns
    the float32 bytes of the data. A header declaring terabytes is refused before any read."""
    nbytes = array_bytes(shape, "float32")
    stored = array_bytes(shape, dtype)
    check_size(f"reading {str(path)!r} (shape {tuple(int(n) for n in shape)}, {dtype})",
               memory=int((nbytes + stored) * copies), disk=out_bytes, folder=out_folder)
    return nbytes


@contextlib.contextmanager
def h5_output(path, planned_bytes: int):
    """``with h5_output(p, n) as f:`` an open, writable ``h5py.File`` whose contents appear at
    ``p`` complete, or not at all; ``n`` is the data's planned size in bytes (uncompressed).

    The space is checked first (:func:`check_size`); a file of at most :data:`H5_MEMORY_BYTES`
    (and half the free memory) is built in memory and written with plain file I/O, so a full
    disk or a file-size limit is an ``OSError`` naming ``p``, never a crash inside HDF5.
    """
    import h5py

    path = Path(path)
    planned = int(planned_bytes) + H5_OVERHEAD
    check_size(f"writing {str(path)!r}", disk=planned, folder=path.parent)
    have = available_memory()
    in_memory = planned <= H5_MEMORY_BYTES and (have is None or 2 * planned <= have)
    with atomic_path(path) as tmp:
        if not in_memory:
            with h5py.File(tmp, "w") as f:
                yield f
            return
        buffer = io.BytesIO()
        with h5py.File(buffer, "w") as f:
            yield f
        try:
            with open(tmp, "wb") as fh:
                fh.write(buffer.getbuffer())
        except OSError as exc:
            exc.filename = str(path)
            raise


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
