"""Read and write spin maps and microscope images as ``(N, H, W, C)`` float32 arrays.

Formats, chosen by the file extension (case-insensitive):

- ``.npy``: a NumPy array of shape (H, W), (H, W, C) or (N, H, W, C);
- ``.h5`` / ``.hdf5``: one dataset of such an array; by default the one of ``lr``, ``spins`` or
  ``sr`` that the file holds (or its only dataset), else the one named by ``dataset``;
- ``.tif`` / ``.tiff`` (tifffile): the first image series; its sample axis ``S`` (or ``C``)
  becomes the channels, every axis other than Y, X and the channels is flattened into N;
- ``.png`` (Pillow): one image, grayscale (8 or 16 bit) → C = 1, RGB (8 bit) → C = 3; an alpha
  channel is dropped, palette images are converted to RGB.

Values: float data are taken as they are (spin components in [-1, 1]). Integer intensities
(uint8, uint16, int8, int16 — what cameras and image files hold) are mapped linearly from the
dtype's full range onto [-1, 1] (:func:`from_intensity`), so that a MOKE image and a simulated
Sz map live on the same scale. :func:`read_image` can return an :class:`ImageInfo` recording
the stored dtype; writing with that dtype (:func:`to_intensity`) maps [-1, 1] back onto it, so
a uint8 image read and written again is unchanged.

A single image reads as N = 1: (H, W) → (1, H, W, 1), (H, W, C) → (1, H, W, C).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spinsr_tf.base.errors import UserError
from spinsr_tf.base.files import atomic_path

#: File extension → format name.
FORMATS = {".npy": "npy", ".h5": "h5", ".hdf5": "h5", ".tif": "tiff", ".tiff": "tiff",
           ".png": "png"}
#: Extensions of OVF vector-field files (:mod:`~spinsr_tf.data.ovf`), which are read, not written.
OVF_SUFFIXES = (".ovf", ".omf")
#: HDF5 datasets looked for when none is named (LR input, HR ground truth, SR output).
H5_DATASETS = ("lr", "spins", "sr")
#: Integer dtypes understood as intensities and mapped onto [-1, 1].
INTENSITY_DTYPES = ("uint8", "uint16", "int8", "int16")
#: dtypes :func:`write_image` can store.
WRITE_DTYPES = ("float32",) + INTENSITY_DTYPES


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
    """

    format: str
    dtype: str
    dataset: str | None = None

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


def _values(raw: np.ndarray, path) -> tuple[np.ndarray, str]:
    """float32 values of a raw array (intensities mapped) and the stored dtype name."""
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
    if not np.all(np.isfinite(out)):
        bad = int(np.count_nonzero(~np.isfinite(out)))
        raise UserError(f"{str(path)!r} contains {bad} NaN or infinite value(s)")
    return out, dtype.name


def _read_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise UserError(f"cannot read {str(path)!r} as .npy: {_first_line(exc)}") from None


def _read_h5(path: Path, dataset: str | None) -> tuple[np.ndarray, str]:
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise UserError(f"cannot read HDF5 file {str(path)!r}: {_first_line(exc)}") from None
    with f:
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
        return np.asarray(f[dataset][()]), dataset


def _read_tiff(path: Path) -> np.ndarray:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            axes, data = series.axes.upper(), series.asarray()
    except (tifffile.TiffFileError, OSError, ValueError, IndexError) as exc:
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
    return data.reshape(-1, h, w, c)


def _read_png(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

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
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
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
               return_info: bool = False):
    """Read maps from ``.npy``, ``.h5``/``.hdf5``, ``.tif``/``.tiff``, ``.png`` or ``.ovf``.

    Parameters
    ----------
    path : str or PathLike
    dataset : str, optional
        HDF5 only: the dataset to read; default the one of ``lr``, ``spins``, ``sr`` present
        (or the file's only dataset).
    return_info : bool
        Also return an :class:`ImageInfo` (stored format and dtype), to write results back in
        the same encoding.

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
    if path.suffix.lower() in OVF_SUFFIXES:   # vector fields of OOMMF / mumax3, read only
        from spinsr_tf.data.ovf import read_ovf

        if not path.is_file():
            raise UserError(f"input file {str(path)!r} does not exist")
        if dataset is not None:
            raise UserError(f"dataset={dataset!r} applies to HDF5 files only, not {str(path)!r}")
        values, _ = _values(_to_nhwc(read_ovf(path, normalize=False)[0], path), path)
        return (values, ImageInfo(format="ovf", dtype="float32", dataset=None)) \
            if return_info else values
    fmt = image_format(path)
    if not path.is_file():
        raise UserError(f"input file {str(path)!r} does not exist")
    if dataset is not None and fmt != "h5":
        raise UserError(f"dataset={dataset!r} applies to HDF5 files only, not {str(path)!r}")
    name = None
    if fmt == "npy":
        raw = _read_npy(path)
    elif fmt == "h5":
        raw, name = _read_h5(path, dataset)
    elif fmt == "tiff":
        raw = _read_tiff(path)
    else:
        raw = _read_png(path)
    raw = _to_nhwc(raw, path)
    values, dtype = _values(raw, path)
    if return_info:
        return values, ImageInfo(format=fmt, dtype=dtype, dataset=name)
    return values


def _encode(x: np.ndarray, dtype: str) -> np.ndarray:
    return x.astype(np.float32) if dtype == "float32" else to_intensity(x, dtype)


def _json_attr(value):
    if isinstance(value, (str, int, float, bool, np.integer, np.floating)):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def check_writable(path, shape, dtype: str | None = None) -> tuple[str, str]:
    """Check, before computing anything, that ``write_image(path, array of shape, dtype)`` can
    succeed; return ``(format, stored dtype)``.

    Raises
    ------
    UserError
        Unknown extension, missing output folder, ``path`` a folder, an empty or badly shaped
        array, or a dtype/shape the format cannot store (see :func:`write_image`).
    """
    path = Path(path)
    fmt = image_format(path)
    if len(shape) != 4 or min(shape) < 1:
        raise UserError(f"array must have shape (N, H, W, C) with no empty axis, "
                        f"got {tuple(shape)}")
    dtype = ("uint8" if fmt == "png" else "float32") if dtype is None else np.dtype(dtype).name
    if dtype not in WRITE_DTYPES:
        raise UserError(f"dtype must be one of {WRITE_DTYPES}, got {dtype!r}")
    n, h, w, c = shape
    if fmt == "png":
        if n != 1:
            raise UserError(f"a PNG file holds one image, got N={n}; write .npy, .h5 or .tif")
        if dtype not in ("uint8", "uint16") or (dtype == "uint16" and c != 1) or c not in (1, 3):
            raise UserError(f"PNG stores uint8 with 1 or 3 channels or uint16 with 1 channel, "
                            f"got dtype {dtype} with {c} channel(s); write .tif for other data")
    parent = path.parent
    if not parent.is_dir():
        raise UserError(f"output directory {str(parent)!r} does not exist")
    if path.is_dir():
        raise UserError(f"output path {str(path)!r} is a directory")
    return fmt, dtype


def write_image(path: str | os.PathLike, array, *, dtype: str | None = None, dataset: str = "sr",
                attrs: dict | None = None) -> Path:
    """Write maps to ``.npy``, ``.h5``/``.hdf5``, ``.tif``/``.tiff`` or ``.png``, atomically.

    The file is written under a temporary name in the same folder and renamed, so ``path`` is
    either the complete new file or untouched.

    Parameters
    ----------
    path : str or PathLike
        Output file; the format follows its extension.
    array : array_like, shape (N, H, W, C), (H, W, C) or (H, W)
        Values, nominally in [-1, 1].
    dtype : {"float32", "uint8", "uint16", "int8", "int16"}, optional
        Stored dtype; integer dtypes map [-1, 1] onto their full range (:func:`to_intensity`,
        values outside clipped). Default ``"uint8"`` for PNG, ``"float32"`` otherwise. PNG
        stores uint8 (C = 1 or 3) or uint16 (C = 1) only, and one image (N = 1).
    dataset : str
        HDF5 only: dataset name (default ``"sr"``); written one map per chunk.
    attrs : dict, optional
        HDF5 only: attributes of the file (non-scalar values stored as JSON text).

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
    x = _to_nhwc(np.asarray(array), "array")
    if not np.issubdtype(x.dtype, np.number) or np.iscomplexobj(x):
        raise UserError(f"array must hold real numbers, got dtype {x.dtype}")
    fmt, dtype = check_writable(path, x.shape, dtype)
    if not np.all(np.isfinite(x)):
        raise UserError("array contains NaN or infinite values; refusing to write them")
    n, h, w, c = x.shape
    data = _encode(x, dtype)
    try:
        with atomic_path(path) as tmp:
            if fmt == "npy":
                with open(tmp, "wb") as fh:
                    np.save(fh, data)
            elif fmt == "h5":
                _write_h5(tmp, data, dataset, attrs)
            elif fmt == "tiff":
                _write_tiff(tmp, data)
            else:
                from PIL import Image

                Image.fromarray(data[0, :, :, 0] if c == 1 else data[0]).save(tmp, format="PNG")
    except OSError as exc:
        raise UserError(f"cannot write {str(path)!r}: {_first_line(exc)}") from None
    return path


def _write_h5(tmp: Path, data: np.ndarray, dataset: str, attrs: dict | None) -> None:
    import h5py

    with h5py.File(tmp, "w") as f:
        f.create_dataset(dataset, data=data, chunks=(1, *data.shape[1:]))
        if data.dtype.name in INTENSITY_DTYPES:
            f.attrs["intensity_range"] = _int_range(data.dtype)
        for key, value in (attrs or {}).items():
            f.attrs[key] = _json_attr(value)


def _write_tiff(tmp: Path, data: np.ndarray) -> None:
    import tifffile

    n, h, w, c = data.shape
    if c == 1:
        tifffile.imwrite(tmp, data[0, :, :, 0] if n == 1 else data[..., 0],
                         photometric="minisblack")
    elif c == 3:
        tifffile.imwrite(tmp, data[0] if n == 1 else data, photometric="rgb")
    else:
        tifffile.imwrite(tmp, data, photometric="minisblack", planarconfig="contig",
                         metadata={"axes": "QYXS"})


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
