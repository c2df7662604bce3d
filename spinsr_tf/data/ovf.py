"""Read and write OOMMF vector field files (OVF 1.0 and 2.0), as written by OOMMF and mumax3.

Supported: rectangular meshes, three-component values (``valuedim: 3``), data as ``Text``,
``Binary 4`` or ``Binary 8``. Binary data start with a check value (1234567.0 for 4-byte,
123456789012345.0 for 8-byte floats), big-endian in OVF 1.0 and little-endian in OVF 2.0; a
wrong check value means a damaged file or the wrong byte order, and is refused. OVF 1.0's
``valuemultiplier`` is applied. Irregular meshes, other ``valuedim``, missing mesh keys,
truncated data and non-finite values are refused with one :class:`~spinsr_tf.base.errors.UserError`
line.

Other tools. ``tests/test_ovf.py`` round-trips every variant with ubermag's ``discretisedfield``
(which writes OVF 2.0 only) and ``pyovf`` (OVF 2.0 Binary 4 only) where they are installed,
and reads headers written after mumax3's and OOMMF's writers: bare ``#`` lines are blank,
``Data binary 4`` may be spelt in any case, mesh lengths in ``nm`` or ``µm`` are converted to
metres, and multi-word value labels are written as braced Tcl words. :func:`to_field` and
:func:`from_field` convert to and from a ``discretisedfield.Field`` (``fields`` extra).

Metadata kept. :func:`read_ovf` returns the header (mesh unit, cell size, origin, title, value
labels and units as written, OVF 1.0's value multiplier, data format); :func:`ovf_header` turns
it into the :func:`write_ovf` arguments of a result on a finer mesh: the same region (``xmin``
.. ``xmax``), the cell size divided by the SR factor in x and y, so the first cell's centre
(``xbase``) moves to ``xmin + dx / (2 f)``; z, the units, the title, the labels and the version
stay. A step of 0 in a header (some mumax3 files) means "unknown" and is written back as 0.
Values keep their stored precision: Binary 8 and Text as float64, Binary 4 as float32.

Orientation. OVF stores x fastest, then y, then z. :func:`read_ovf` returns one z layer as
``(H, W, 3)`` = ``(ynodes, xnodes, 3)`` with ``array[i, j]`` the cell at x index ``j`` and
y index ``i``: row 0 is the cell row at ``ymin``, and the spin components keep OVF's x, y, z.
That is this package's convention (``spins[i, j]`` at x = j, y = i, components in the same
frame), so chirality and DMI signs are preserved. Shown with ``imshow`` (row 0 at the top) the
map is mirrored top-to-bottom with respect to OOMMF/mumax3 viewers (y up); use
``imshow(..., origin="lower")`` to see it as they do. No row is flipped and no component is
negated on reading or writing.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from spinsr_tf.base.checks import is_int
from spinsr_tf.base.errors import UserError
from spinsr_tf.base.files import atomic_path

#: First value of a binary data block, by float size.
CHECK_VALUES = {4: 1234567.0, 8: 123456789012345.0}
#: Metres per mesh unit, for the units OOMMF, mumax3 and discretisedfield write.
MESH_UNITS = {"m": 1.0, "cm": 1e-2, "mm": 1e-3, "um": 1e-6, "\u00b5m": 1e-6, "\u03bcm": 1e-6,
              "nm": 1e-9, "pm": 1e-12}
#: Mesh keys a file must have.
_NODES = ("xnodes", "ynodes", "znodes")
_END_DATA = re.compile(rb"^[ \t]*#[ \t]*end[ \t]*:[ \t]*data", re.IGNORECASE | re.MULTILINE)


def _fail(path, message: str) -> UserError:
    return UserError(f"OVF file {str(path)!r}: {message}")


def _normal(key: str) -> str:
    return re.sub(r"\s+", "", key).lower()


def _split_header(line: str) -> tuple[str, str] | None:
    """``"# Key: value ## comment"`` → ``("key", "value")``; None for a comment or blank line.

    A bare ``#`` is a blank header line: OOMMF's OVF 2.0 writer and discretisedfield put them
    between the sections, as the OVF 2.0 specification's example does.
    """
    comment = line.find("##")
    if comment >= 0:
        line = line[:comment]
    if not line.strip() or (line.startswith("#") and not line[1:].strip()):
        return None
    if not line.startswith("#"):
        return ("", line)
    key, _, value = line[1:].partition(":")
    return _normal(key), value.strip()


def _decode(line: bytes) -> str:
    """A header line: UTF-8 (e.g. a ``µm`` mesh unit) where it is, else Latin-1."""
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        return line.decode("latin-1")


def _version(first: str, path) -> int:
    text = " ".join(first.lower().replace("#", " ").split())
    if text == "oommf ovf 2.0":
        return 2
    if text in ("oommf: rectangular mesh v1.0", "oommf ovf 1.0"):
        return 1
    if text == "oommf: irregular mesh v1.0":
        raise _fail(path, "irregular meshes are not supported (rectangular only)")
    raise _fail(path, f"first line {first.strip()[:60]!r} is not an OVF 1.0 or 2.0 header")


def _parse_header(raw: bytes, path) -> tuple[int, dict, list, str, int]:
    """Version, header keys, ``Desc`` lines, data kind and the offset of the data."""
    pos, first = 0, None
    header: dict[str, str] = {}
    desc: list[str] = []
    while True:
        end = raw.find(b"\n", pos)
        if end < 0:
            raise _fail(path, "no '# Begin: Data' line (truncated header?)")
        line = _decode(raw[pos:end]).rstrip("\r")
        pos = end + 1
        if first is None:
            if not line.strip():
                continue
            first = line
            version = _version(line, path)
            continue
        parts = _split_header(line)
        if parts is None:
            continue
        key, value = parts
        if key == "":
            raise _fail(path, f"unexpected line {value.strip()[:60]!r} in the header")
        if key == "begin" and _normal(value).startswith("data"):
            kind = " ".join(value.lower().split()[1:])
            if kind not in ("text", "binary 4", "binary 8"):
                raise _fail(path, f"data format {value!r} is not supported "
                                  "(Text, Binary 4 or Binary 8)")
            return version, header, desc, kind, pos
        if key == "desc":
            desc.append(value)
        elif key not in ("begin", "end"):
            header.setdefault(key, value)


def _int_key(header: dict, key: str, path) -> int:
    if key not in header:
        raise _fail(path, f"header key {key!r} is missing")
    try:
        value = int(header[key])
    except ValueError:
        raise _fail(path, f"header key {key!r} is {header[key]!r}, not an integer") from None
    if value < 1:
        raise _fail(path, f"header key {key!r} is {value}, must be >= 1")
    return value


def _float_key(header: dict, key: str, default: float, path) -> float:
    if key not in header:
        return default
    try:
        return float(header[key])
    except ValueError:
        raise _fail(path, f"header key {key!r} is {header[key]!r}, not a number") from None


def _binary_values(raw: bytes, pos: int, count: int, size: int, version: int, path):
    dtype = np.dtype((">" if version == 1 else "<") + f"f{size}")
    need = (count + 1) * size
    if len(raw) - pos < need:
        have = max(len(raw) - pos - size, 0) // size
        raise _fail(path, f"truncated data: {have} of {count} values present")
    values = np.frombuffer(raw, dtype=dtype, count=count + 1, offset=pos)
    if values[0] != CHECK_VALUES[size]:
        raise _fail(path, f"wrong check value {float(values[0])!r} of Binary {size} data "
                          f"(expected {CHECK_VALUES[size]!r}; wrong byte order or damaged file)")
    return values[1:].astype(np.float64)


def _text_values(raw: bytes, pos: int, count: int, path):
    match = _END_DATA.search(raw, pos)
    block = raw[pos:match.start() if match else len(raw)].decode("latin-1")
    lines = [ln.split("#", 1)[0] for ln in block.splitlines()]
    try:
        values = np.array(" ".join(lines).split(), dtype=np.float64)
    except ValueError as exc:
        raise _fail(path, f"data text is not numeric ({exc})") from None
    if values.size < count:
        raise _fail(path, f"truncated data: {values.size} of {count} values present")
    if values.size > count:
        raise _fail(path, f"data holds {values.size} values, the header announces {count}")
    return values


def read_ovf(path: str | os.PathLike, layer: int | None = None, normalize: bool = True,
             holes: bool = False):
    """Read one z layer of an OVF 1.0/2.0 vector field.

    Parameters
    ----------
    path : str or PathLike
        An ``.ovf`` (or ``.omf``) file from OOMMF or mumax3.
    layer : int or "all", optional
        The z layer to return, ``0 .. znodes - 1``. Required when ``znodes > 1``; ``"all"``
        returns every layer, ``(znodes, ynodes, xnodes, 3)``.
    normalize : bool
        Return unit vectors (``m / |m|``) where ``|m| > 0``; zero-magnitude cells (holes,
        outside the magnet) stay zero vectors and are counted in ``meta["holes"]``. With
        False the values are returned as stored (e.g. magnetisation in A/m), times OVF 1.0's
        ``valuemultiplier``.
    holes : bool
        Accept NaN or infinite values as cells outside the magnet (some tools write them so);
        they are returned as they are and counted in ``meta["holes"]``. False: refused.

    Returns
    -------
    array : ndarray, shape (ynodes, xnodes, 3)
        ``array[i, j]`` is the cell at y index ``i`` (row 0 at ``ymin``) and x index ``j``;
        components (mx, my, mz) in the file's frame (see the module docstring). float32 for
        Binary 4 data, float64 for Binary 8 and Text (their stored precision).
    meta : dict
        ``version`` (1 or 2), ``format`` ("text", "binary 4", "binary 8"), ``title``,
        ``meshunit`` (as written), ``cellsize`` (dx, dy, dz) and ``origin`` (xmin, ymin,
        zmin: the corner of the first cell, whose centre is at origin + cellsize / 2) in metres
        when ``meshunit`` is a length in :data:`MESH_UNITS` (else as stored; a step of 0, or
        none, is 0: unknown), ``nodes`` (xnodes, ynodes, znodes), ``layer`` ("all" or the
        index), ``valueunits`` and ``valuelabels`` (as written: OVF 2.0 Tcl lists such as
        ``"1 1 1"``; OVF 1.0 ``valueunit``), ``valuemultiplier`` (OVF 1.0, already applied;
        1.0 for OVF 2.0), ``desc`` (list of ``Desc`` lines),
        ``magnitude`` (median ``|m|`` of the non-zero cells of the layer, in the stored unit
        — Ms for a magnetisation file, 1 for a unit vector field), ``holes`` (zero cells),
        ``normalized``.

    Raises
    ------
    UserError
        Missing file, not OVF 1.0/2.0, irregular mesh, ``valuedim`` other than 3, a missing or
        invalid mesh key (a negative or non-finite step or origin), unsupported data format,
        wrong check value, truncated data, NaN/Inf, or a bad ``layer``.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"input file {str(path)!r} does not exist")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {str(path)!r}: {exc}") from None
    version, header, desc, kind, pos = _parse_header(raw, path)
    mesh = header.get("meshtype", "rectangular").lower()
    if mesh != "rectangular":
        raise _fail(path, f"meshtype {mesh!r} is not supported (rectangular only)")
    dim = _int_key(header, "valuedim", path) if version == 2 else 3
    if dim != 3:
        raise _fail(path, f"valuedim is {dim}; only 3-component vector fields are supported")
    nx, ny, nz = (_int_key(header, k, path) for k in _NODES)
    count = nx * ny * nz * 3
    if kind == "text":
        values = _text_values(raw, pos, count, path)
    else:
        values = _binary_values(raw, pos, count, int(kind[-1]), version, path)
    multiplier = _float_key(header, "valuemultiplier", 1.0, path) if version == 1 else 1.0
    if not (np.isfinite(multiplier) and multiplier != 0):
        raise _fail(path, f"valuemultiplier is {multiplier!r}; must be a finite number, not 0")
    values = values * multiplier
    steps = tuple(_float_key(header, f"{a}stepsize", 0.0, path) for a in "xyz")
    # the first cell's corner; a header with only the centre (``xbase``) gives it too
    corner = tuple(_float_key(header, f"{a}min", 0.0, path) if f"{a}min" in header or
                   f"{a}base" not in header else _float_key(header, f"{a}base", 0.0, path) - d / 2
                   for a, d in zip("xyz", steps))
    if not all(np.isfinite(v) for v in steps + corner) or min(steps) < 0:
        raise _fail(path, f"mesh steps {steps} and origin {corner} must be finite, the steps "
                          ">= 0 (0: unknown)")
    if layer is None:
        if nz > 1:
            raise _fail(path, f"it has znodes={nz} layers; choose one with layer=0..{nz - 1}")
        layer = 0
    every = isinstance(layer, str) and layer == "all"
    if not every and not (is_int(layer) and 0 <= layer < nz):
        raise UserError(f"layer must be an integer in 0..{nz - 1} or 'all' for "
                        f"{str(path)!r}, got {layer!r}")
    field = values.reshape(nz, ny, nx, 3)
    field = field if every else field[int(layer)]
    if not holes and not np.all(np.isfinite(field)):
        raise _fail(path, f"{int(np.count_nonzero(~np.isfinite(field)))} NaN or infinite "
                          "value(s)")
    norm = np.sqrt(np.square(field).sum(axis=-1))
    filled = np.isfinite(norm) & (norm > 0)
    if normalize:
        field = np.divide(field, norm[..., None], out=np.zeros_like(field),
                          where=filled[..., None])
    meshunit = header.get("meshunit", "")
    metres = MESH_UNITS.get(meshunit.strip(), 1.0)
    meta = {
        "version": version, "format": kind, "title": header.get("title", ""),
        "meshunit": meshunit,
        "cellsize": tuple(metres * v for v in steps),
        "origin": tuple(metres * v for v in corner),
        "nodes": (nx, ny, nz), "layer": "all" if every else int(layer),
        "valueunits": header.get("valueunits", header.get("valueunit", "")),
        "valuelabels": header.get("valuelabels", ""),
        "valuemultiplier": float(multiplier),
        "desc": desc,
        "magnitude": float(np.median(norm[filled])) if filled.any() else 0.0,
        "holes": int(np.count_nonzero(~filled)), "normalized": bool(normalize),
    }
    return field.astype(np.float32 if kind == "binary 4" else np.float64), meta


def _tcl_word(text: str) -> str:
    """One element of a Tcl list: OVF 2.0 ``valuelabels``/``valueunits`` are Tcl lists, so a
    label with spaces (or an empty unit) is braced, as OOMMF writes ``{Total field_x}``."""
    return text if text and not any(c.isspace() or c in '{}"' for c in text) \
        else "{" + text + "}"


def tcl_words(text: str) -> list[str]:
    """The elements of a Tcl list (``valuelabels``, ``valueunits``): words split at white
    space, ``{...}`` and ``"..."`` grouping, so ``"{Total field_x} A/m"`` is two words."""
    words, i, n = [], 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        if text[i] in '{"':
            close, depth, j = ("}" if text[i] == "{" else '"'), 1, i + 1
            while j < n and depth:
                if text[i] == "{" and text[j] == "{":
                    depth += 1
                elif text[j] == close:
                    depth -= 1
                j += 1
            words.append(text[i + 1:j - 1] if not depth else text[i + 1:])
            i = j
        else:
            j = i
            while j < n and not text[j].isspace():
                j += 1
            words.append(text[i:j])
            i = j
    return words


def _three(value, name: str, default) -> tuple[str, str, str]:
    """One string for all three components, or three strings (one per component)."""
    if value is None:
        return default
    if isinstance(value, str):
        value = (value,) * 3
    value = tuple(str(v) for v in value)
    if len(value) != 3:
        raise UserError(f"{name} must be one string or three (x, y, z), got {value!r}")
    return value


def _length(value: float, unit: str) -> str:
    """A length in metres written in the mesh unit (15 digits: no conversion noise)."""
    factor = MESH_UNITS.get(unit)
    if factor is None or factor == 1.0:
        return repr(float(value))
    return repr(float(f"{value / factor:.15g}"))


def _header_lines(version: int, shape, cellsize, origin, meshunit: str, title: str,
                  units, labels, multiplier: float, magnitudes, desc) -> list[str]:
    nz, ny, nx = shape
    steps = [float(c) for c in cellsize]
    lo = [float(o) for o in origin]
    hi = [o + n * d for o, n, d in zip(lo, (nx, ny, nz), steps)]
    base = [o + d / 2 for o, d in zip(lo, steps)]
    put = lambda v: _length(v, meshunit)  # noqa: E731
    mesh = [*(f"{a}min: {put(v)}" for a, v in zip("xyz", lo)),
            *(f"{a}max: {put(v)}" for a, v in zip("xyz", hi))]
    grid = [*(f"{a}base: {put(v)}" for a, v in zip("xyz", base)),
            f"xnodes: {nx}", f"ynodes: {ny}", f"znodes: {nz}",
            *(f"{a}stepsize: {put(v)}" for a, v in zip("xyz", steps))]
    notes = [f"Desc: {line}" for line in desc]
    if version == 2:
        lines = ["OOMMF OVF 2.0", "Segment count: 1", "Begin: Segment", "Begin: Header",
                 f"Title: {title}", "meshtype: rectangular", f"meshunit: {meshunit}", *mesh,
                 "valuedim: 3", "valuelabels: " + " ".join(_tcl_word(t) for t in labels),
                 "valueunits: " + " ".join(_tcl_word(u) for u in units), *notes, *grid,
                 "End: Header"]
    else:
        lines = ["OOMMF: rectangular mesh v1.0", "Segment count: 1", "Begin: Segment",
                 "Begin: Header", f"Title: {title}", *notes, "meshtype: rectangular",
                 f"meshunit: {meshunit}", *grid, *mesh,
                 f"ValueRangeMinMag: {magnitudes[0]!r}", f"ValueRangeMaxMag: {magnitudes[1]!r}",
                 f"valueunit: {units[0]}", f"valuemultiplier: {multiplier!r}", "End: Header"]
    return [f"# {line}" for line in lines]


def _layers(array) -> np.ndarray:
    """``(H, W, 3)`` or ``(Z, H, W, 3)`` finite numbers as ``(Z, H, W, 3)``; UserError else."""
    x = np.asarray(array)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[-1] != 3 or min(x.shape) < 1:
        raise UserError(f"array must have shape (H, W, 3) or (Z, H, W, 3), got {x.shape}")
    if not np.issubdtype(x.dtype, np.number) or not np.all(np.isfinite(x)):
        raise UserError("array must hold finite real numbers")
    return x


def _cellsize(cellsize, unknown: bool = False) -> tuple[float, float, float]:
    """Three finite steps > 0 (metres); with ``unknown``, 0 is allowed too (a header's step of
    0, which OVF readers take as "not given")."""
    try:
        cell = tuple(float(c) for c in cellsize)
    except (TypeError, ValueError):
        cell = ()
    if len(cell) != 3 or not all(np.isfinite(c) and (c >= 0 if unknown else c > 0)
                                 for c in cell):
        rule = ">= 0 (0: unknown)" if unknown else "> 0"
        raise UserError(f"cellsize must be three numbers {rule} (metres), got {cellsize!r}")
    return cell


def _origin(origin) -> tuple[float, float, float]:
    try:
        corner = tuple(float(c) for c in origin)
    except (TypeError, ValueError):
        corner = ()
    if len(corner) != 3 or not all(np.isfinite(c) for c in corner):
        raise UserError(f"origin must be three finite numbers (metres), got {origin!r}")
    return corner


def check_ovf_header(array_shape, binary: int | None = 4, version: int = 2,
                     cellsize=(1e-9, 1e-9, 1e-9), title: str = "m", valueunit="1", desc=(), *,
                     origin=(0.0, 0.0, 0.0), meshunit: str = "m", valuelabels=None,
                     valuemultiplier: float = 1.0) -> dict:
    """Check, before any work, that :func:`write_ovf` can write an array of ``array_shape``
    with these arguments; return them normalised (the header it would write).

    Raises
    ------
    UserError
        A shape other than ``(H, W, 3)`` / ``(Z, H, W, 3)``, a bad ``binary`` or ``version``,
        negative or non-finite steps or origin, a zero or non-finite multiplier, or a text
        field over two lines or holding ``##`` (the OVF comment mark).
    """
    shape = tuple(int(n) for n in array_shape)
    if len(shape) == 3:
        shape = (1, *shape)
    if len(shape) != 4 or shape[-1] != 3 or min(shape) < 1:
        raise UserError(f"an OVF file holds (H, W, 3) or (Z, H, W, 3) vectors, got shape "
                        f"{tuple(array_shape)}")
    if binary not in (4, 8, None):
        raise UserError(f"binary must be 4, 8 or None (text), got {binary!r}")
    if version not in (1, 2):
        raise UserError(f"version must be 1 or 2, got {version!r}")
    multiplier = float(valuemultiplier)
    if not (np.isfinite(multiplier) and multiplier != 0):
        raise UserError(f"valuemultiplier must be a finite number, not 0, got {valuemultiplier!r}")
    title = str(title)
    units = _three(valueunit, "valueunit", ("1", "1", "1"))
    labels = _three(valuelabels, "valuelabels", tuple(f"{title}_{c}" for c in "xyz"))
    meshunit = str(meshunit).strip() or "m"
    desc = [str(d) for d in desc]
    for name, text in (("title", title), ("meshunit", meshunit), *(("valueunit", u) for u in units),
                       *(("valuelabels", t) for t in labels), *(("desc", d) for d in desc)):
        if "\n" in text or "\r" in text or "##" in text:
            raise UserError(f"{name} must be one line without '##', got {text!r}")
    return {"shape": shape[:3], "binary": binary, "version": version,
            "cellsize": _cellsize(cellsize, unknown=True), "origin": _origin(origin),
            "title": title, "units": units, "labels": labels, "meshunit": meshunit,
            "multiplier": multiplier, "desc": desc}


def ovf_header(meta: dict, scale: int = 1, desc=()) -> dict:
    """The :func:`write_ovf` keyword arguments of a result on a ``scale`` times finer mesh.

    ``meta`` is :func:`read_ovf`'s. The region stays (same ``xmin``, ``ymin``; ``xmax``,
    ``ymax`` follow from ``nodes · step``), the x and y steps are divided by ``scale`` (a step
    of 0, unknown, stays 0), z keeps its step; a single layer ``k`` read from a stack sits at
    ``zmin + k · dz``. Version, mesh unit, title, value labels, units and multiplier are the
    file's; Binary 4 data are written as Binary 4, Binary 8 and Text as Binary 8 (no precision
    lost). ``desc`` lines are added to the file's.
    """
    dx, dy, dz = (float(c) for c in meta["cellsize"])
    x0, y0, z0 = (float(c) for c in meta["origin"])
    layer = meta.get("layer", 0)
    if not isinstance(layer, str):
        z0 += int(layer) * dz
    units = tcl_words(meta.get("valueunits", "") or "")
    labels = tcl_words(meta.get("valuelabels", "") or "")
    return {"binary": 4 if meta.get("format") == "binary 4" else 8,
            "version": int(meta.get("version", 2)),
            "cellsize": (dx / scale, dy / scale, dz), "origin": (x0, y0, z0),
            "meshunit": (meta.get("meshunit") or "m").strip() or "m",
            "title": meta.get("title") or "m",
            "valueunit": tuple(units) if len(units) == 3 else (units[0] if len(units) == 1
                                                                else ""),
            "valuelabels": tuple(labels) if len(labels) == 3 else None,
            "valuemultiplier": float(meta.get("valuemultiplier", 1.0)),
            "desc": [*meta.get("desc", []), *desc]}


def write_ovf(path: str | os.PathLike, array, binary: int | None = 4, version: int = 2,
              cellsize=(1e-9, 1e-9, 1e-9), title: str = "m", valueunit="1",
              desc=(), *, origin=(0.0, 0.0, 0.0), meshunit: str = "m", valuelabels=None,
              valuemultiplier: float = 1.0) -> Path:
    """Write a vector field as an OVF file (readable by OOMMF, mumax3 and :func:`read_ovf`).

    Written through a temporary name in the same folder and renamed: ``path`` is either the
    complete new file or untouched. :func:`ovf_header` gives the arguments that keep a file's
    metadata on a finer mesh.

    Parameters
    ----------
    path : str or PathLike
    array : array_like, shape (H, W, 3) or (Z, H, W, 3)
        ``array[..., i, j, :]`` is the cell at y index ``i``, x index ``j`` (row 0 at ``ymin``,
        the orientation :func:`read_ovf` returns); a 4D array holds ``Z`` layers (z index
        first). Finite values, in the unit ``valueunit``.
    binary : {4, 8, None}
        ``Binary 4`` (float32), ``Binary 8`` (float64), or None for ``Text``.
    version : {1, 2}
        OVF 2.0 (mumax3's default, little-endian binary) or OVF 1.0 (OOMMF, big-endian).
    cellsize : (dx, dy, dz)
        Cell size in metres (in ``meshunit`` itself if that is not a length of
        :data:`MESH_UNITS`); 0 means unknown and is written as 0.
    title : str
        The field's name (``Title``; OVF 2.0 ``valuelabels`` default to ``title_x`` ...).
    valueunit : str or three str
        Unit of the values, e.g. ``"1"`` for unit vectors or ``"A/m"``, or one per component
        (OVF 2.0 ``valueunits``; OVF 1.0 has one, the first).
    desc : iterable of str
        ``Desc`` header lines.
    origin : (xmin, ymin, zmin)
        The corner of the first cell, metres (the first cell's centre ``xbase`` is
        ``xmin + dx / 2``).
    meshunit : str
        Unit the mesh lengths are written in (``m``, ``nm``, ...: converted from metres).
    valuelabels : three str, optional
        OVF 2.0 component labels.
    valuemultiplier : float
        OVF 1.0: values are stored divided by it, and the header says it (readers multiply).

    Returns
    -------
    Path of the written file.
    """
    path = Path(path)
    x = _layers(array)
    head = check_ovf_header(x.shape, binary, version, cellsize, title, valueunit, desc,
                            origin=origin, meshunit=meshunit, valuelabels=valuelabels,
                            valuemultiplier=valuemultiplier)
    parent = path.parent
    if not parent.is_dir():
        raise UserError(f"output directory {str(parent)!r} does not exist")
    if path.is_dir():
        raise UserError(f"output path {str(path)!r} is a directory")
    kind = "Text" if binary is None else f"Binary {binary}"
    flat = x.reshape(-1).astype(np.float64)
    if version == 1:
        flat = flat / head["multiplier"]
    norms = np.sqrt(np.square(flat.reshape(-1, 3)).sum(axis=-1))
    magnitudes = (float(norms[norms > 0].min()) if np.any(norms > 0) else 0.0,
                  float(norms.max()))
    lines = _header_lines(version, head["shape"], head["cellsize"], head["origin"],
                          head["meshunit"], head["title"], head["units"], head["labels"],
                          head["multiplier"], magnitudes, head["desc"])
    lines.append(f"# Begin: Data {kind}")
    if binary is None:
        body = "\n".join(" ".join(f"{v:.17g}" for v in row) for row in flat.reshape(-1, 3))
        data = (body + "\n").encode("ascii")
    else:
        dtype = np.dtype((">" if version == 1 else "<") + f"f{binary}")
        data = np.concatenate([[CHECK_VALUES[binary]], flat]).astype(dtype).tobytes() + b"\n"
    tail = f"# End: Data {kind}\n# End: Segment\n"
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            fh.write(("\n".join(lines) + "\n").encode("utf-8"))
            fh.write(data)
            fh.write(tail.encode("ascii"))
    except OSError as exc:
        raise UserError(f"cannot write {str(path)!r}: {exc}") from None
    return path


def _discretisedfield():
    try:
        import discretisedfield
    except ImportError:
        raise UserError("discretisedfield is not installed: pip install 'spinsr_tf[fields]'") \
            from None
    return discretisedfield


def to_field(array, cellsize, valueunit: str | None = None):
    """A spin map as a ``discretisedfield.Field``, for ubermag's analysis and plotting.

    Needs the ``fields`` extra (``pip install 'spinsr_tf[fields]'``). The mesh is the one
    :func:`write_ovf` describes: from (0, 0, 0) to ``nodes · cellsize``, metres.

    Parameters
    ----------
    array : array_like, shape (H, W, 3) or (Z, H, W, 3)
        ``array[..., i, j, :]`` is the cell at y index ``i``, x index ``j`` (this package's
        orientation, as :func:`read_ovf` returns it); a batch of one SR map ``(1, H, W, 3)``
        is one layer.
    cellsize : (dx, dy, dz)
        Cell size in metres; for an SR map, the LR map's divided by the scale in x and y.
    valueunit : str, optional
        Unit of the values (e.g. ``"A/m"``); None for unit vectors.

    Returns
    -------
    discretisedfield.Field
        ``nvdim=3``; ``field.array[j, i, k]`` is ``array[k, i, j]``.
    """
    df = _discretisedfield()
    x = _layers(array).astype(np.float64)
    cell = _cellsize(cellsize)
    nz, ny, nx, _ = x.shape
    mesh = df.Mesh(p1=(0.0, 0.0, 0.0), p2=tuple(n * c for n, c in zip((nx, ny, nz), cell)),
                   n=(nx, ny, nz))
    return df.Field(mesh, nvdim=3, value=x.transpose(2, 1, 0, 3), unit=valueunit)


def from_field(field) -> np.ndarray:
    """The values of a three-component ``discretisedfield.Field`` in this package's orientation.

    Returns
    -------
    ndarray, shape (ny, nx, 3) for one z layer, else (nz, ny, nx, 3), float32
        ``out[..., i, j, :]`` is the cell at y index ``i``, x index ``j``: what :func:`read_ovf`
        returns for the field's OVF file, values as stored (not normalised). The cell size is
        ``field.mesh.cell``, in ``field.mesh.region.units``.
    """
    df = _discretisedfield()
    if not isinstance(field, df.Field):
        raise UserError(f"field must be a discretisedfield.Field, got {type(field).__name__}")
    if field.nvdim != 3 or field.mesh.region.ndim != 3:
        raise UserError(f"field must have 3 value components on a 3D mesh, got "
                        f"nvdim={field.nvdim} on a {field.mesh.region.ndim}D mesh")
    values = np.asarray(field.array, dtype=np.float32).transpose(2, 1, 0, 3)
    return values[0] if values.shape[0] == 1 else values
