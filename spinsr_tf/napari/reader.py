"""The napari reader: OVF/OMF vector fields, the project's HDF5 files and ``.npy`` maps as layers.

A 3-component map becomes two layers: an RGB layer holding (mx, my, mz) as red, green and blue
on the range [-1, 1], and an ``Sz`` layer (mz alone, a diverging colour map). The RGB layer keeps
the whole vector field in one layer, so the widget super-resolves one layer and returns one; the
Sz layer is the quantitative view (contrast, a colour bar, the sign of the out-of-plane
component), which an RGB rendering cannot give. One layer per component would leave the widget
three layers to pick and keep aligned.

Geometry: napari puts pixel ``k`` of a layer at ``translate + k * scale``. For an OVF file the
scale is the cell size and the translate the first cell's centre (``origin + cellsize / 2``), both
in the file's ``meshunit`` (the layer's ``units`` when it is a length); row 0 is the file's
``ymin`` row, drawn at the top as napari draws every image. Other files have no cell size: scale
1, in lattice sites.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: File suffixes the reader claims (lower case).
SUFFIXES = (".ovf", ".omf", ".h5", ".hdf5", ".npy")
#: Display range of unit-vector components.
UNIT_RANGE = (-1.0, 1.0)
#: Colour map of the Sz layer (diverging: the sign of mz is the domain).
SZ_COLORMAP = "PiYG"


def get_reader(path):
    """npe2 reader command: :func:`read_layers` for one file with a known suffix, else None
    (napari then asks another reader)."""
    if isinstance(path, (list, tuple)):
        if len(path) != 1:
            return None
        path = path[0]
    if Path(str(path)).suffix.lower() not in SUFFIXES:
        return None
    return read_layers


def vector_layers(values, name: str, scale, translate=None, units=None,
                  metadata: dict | None = None) -> list[tuple]:
    """LayerData of a vector map ``values`` (..., H, W, 3): the RGB layer and its Sz layer
    (module docstring). ``scale``/``translate`` cover the axes before the components."""
    kwargs = {"scale": tuple(scale), "metadata": dict(metadata or {})}
    if translate is not None:
        kwargs["translate"] = tuple(translate)
    if units is not None:
        kwargs["units"] = tuple(units)
    values = np.asarray(values, np.float32)
    return [(values, {**kwargs, "name": name, "rgb": True, "contrast_limits": UNIT_RANGE},
             "image"),
            (values[..., 2], {**kwargs, "name": f"{name} Sz", "colormap": SZ_COLORMAP,
                              "contrast_limits": UNIT_RANGE}, "image")]


def scalar_layer(values, name: str, scale, translate=None, units=None,
                 metadata: dict | None = None, colormap: str = "gray") -> tuple:
    """LayerData of a scalar map ``values`` (..., H, W)."""
    kwargs = {"scale": tuple(scale), "metadata": dict(metadata or {}), "name": name,
              "colormap": colormap}
    if translate is not None:
        kwargs["translate"] = tuple(translate)
    if units is not None:
        kwargs["units"] = tuple(units)
    return (np.asarray(values, np.float32), kwargs, "image")


def _ovf_layers(path: Path) -> list[tuple]:
    from spinsr_tf.data.ovf import MESH_UNITS, read_ovf

    field, meta = read_ovf(path, layer="all", normalize=True)   # (nz, ny, nx, 3) unit vectors
    unit = meta["meshunit"].strip()
    per_unit = MESH_UNITS.get(unit)                               # metres per file unit
    steps = np.array(meta["cellsize"][::-1], float)               # (dz, dy, dx)
    corner = np.array(meta["origin"][::-1], float)
    if per_unit is not None:
        steps, corner = steps / per_unit, corner / per_unit
    known = steps > 0
    scale = np.where(known, steps, 1.0)                           # unknown step: lattice sites
    translate = corner + np.where(known, steps, 0.0) / 2
    units = (unit,) * 3 if per_unit is not None and known.all() else None
    if field.shape[0] == 1:                                       # one layer: a 2D image
        field, scale, translate = field[0], scale[1:], translate[1:]
        units = None if units is None else units[1:]
    metadata = {"spinsr_tf": {"source": str(path), "kind": "spins", "normalized": True,
                              "magnitude": meta["magnitude"], "holes": meta["holes"],
                              "valueunits": meta["valueunits"], "meshunit": unit,
                              "title": meta["title"]}}
    return vector_layers(field, path.stem, scale, translate, units, metadata)


def read_layers(path) -> list[tuple]:
    """LayerData tuples of one file: OVF/OMF (unit vectors; Ms in the layer's metadata),
    HDF5 (dataset ``lr``, ``spins`` or ``sr``) or ``.npy`` maps ``(H, W)``, ``(H, W, C)`` or
    ``(N, H, W, C)``. C = 3: RGB + Sz layers; C = 1: one grey layer."""
    from spinsr_tf.base.errors import UserError
    from spinsr_tf.data.io import read_image

    path = Path(str(path))
    if path.suffix.lower() in (".ovf", ".omf"):
        return _ovf_layers(path)
    maps, info = read_image(path, return_info=True)               # (N, H, W, C) float32
    n, h, w, c = maps.shape
    name = path.stem if info.dataset is None else f"{path.stem} {info.dataset}"
    metadata = {"spinsr_tf": {"source": str(path), "dataset": info.dataset,
                              "kind": "spins" if c == 3 else "scalar"}}
    values = maps[0] if n == 1 else maps
    scale = (1.0,) * (values.ndim - 1)
    if c == 3:
        return vector_layers(values, name, scale, metadata=metadata)
    if c == 1:
        return [scalar_layer(values[..., 0], name, scale, metadata=metadata)]
    raise UserError(f"{str(path)!r} holds {c}-component maps; the reader opens 1 (scalar) or "
                    "3 (spin) components")
