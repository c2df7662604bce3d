"""Stream training batches from an HDF5 file without loading it.

A training file holds either LR maps (dataset ``lr``, from ``spinsr-tf downsample`` or a
microscope) or HR maps (dataset ``spins``, from ``spinsr-tf generate``). HR maps are degraded
on the fly with :func:`~spinsr_tf.data.gaussian_downsample`, a batch at a time; the LR image of
a sample is a function of that sample alone (the tests hold it bit for bit equal to the LR file
made from the whole set at once). The HR maps themselves are only handed out by
:meth:`TrainingData.hr`, for monitoring or for the supervised oracle; the unsupervised targets
are the LR maps.

Which samples go where is a pure function of ``(seed, epoch, step)`` (:class:`BatchPlan`), so a
resumed run sees exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

import functools
import math
import numbers
import os
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from spinsr_tf.base.errors import UserError
from spinsr_tf.data.degradation import check_degradation_args, gaussian_downsample

#: Dataset names: LR maps (the training input) and HR maps (degraded on the fly).
LR, HR = "lr", "spins"
#: Attributes of an LR file that record the degradation that produced it.
DEGRADATION_ATTRS = ("factor", "kernel_size", "sigma", "padding")


def _jsonable(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


@dataclass(frozen=True)
class Degradation:
    """The Gaussian filter downsizing as a value (factor, window, width, boundary)."""

    factor: int
    kernel_size: int = 23
    sigma: float = 1.0
    padding: str = "periodic"

    def __post_init__(self):
        check_degradation_args(self.factor, self.kernel_size, self.sigma, self.padding)

    def __call__(self, hr: np.ndarray) -> np.ndarray:
        """Degrade ``(B, H, W, C)`` HR maps → ``(B, H/f, W/f, C)`` float32, in one call.

        One call per batch, not per map: OpenBLAS spreads small matrix products over threads
        at a cost of ~8 ms per 128² map on 2 cores, ten times the work itself. Each LR value is
        still a dot product over the same HR pixels in the same order (the batch only adds
        independent columns to the matrix product), so it does not depend on the batch.
        """
        return gaussian_downsample(hr, self.factor, self.kernel_size, self.sigma, self.padding)


@dataclass
class MapFile:
    """One ``(N, H, W, C)`` dataset of an HDF5 file, read sample by sample.

    The file is opened on first use and kept open; :meth:`close` releases it.
    """

    path: Path
    dataset: str
    shape: tuple
    attrs: dict
    _file: h5py.File | None = field(default=None, repr=False)

    @classmethod
    def open(cls, path, dataset: str) -> "MapFile":
        """Describe ``dataset`` of ``path``; ``UserError`` if it is missing or not 4D."""
        path = Path(path)
        with _h5(path) as f:
            if dataset not in f:
                raise UserError(f"{str(path)!r} has no dataset {dataset!r} "
                                f"(found: {sorted(f.keys())})")
            data = f[dataset]
            if data.ndim != 4 or min(data.shape) < 1:
                raise UserError(f"dataset {dataset!r} in {str(path)!r} has shape {data.shape}, "
                                "expected (N, H, W, C)")
            if not np.issubdtype(data.dtype, np.floating):
                raise UserError(f"dataset {dataset!r} in {str(path)!r} has dtype {data.dtype}, "
                                "expected floats")
            attrs = {k: _jsonable(v) for k, v in f.attrs.items()}
            attrs.update({k: _jsonable(v) for k, v in data.attrs.items()})
            return cls(path, dataset, tuple(int(s) for s in data.shape), attrs)

    def read(self, indices) -> np.ndarray:
        """Samples ``indices`` (any order, repeats allowed) as ``(B, H, W, C)`` float32."""
        if self._file is None:
            self._file = _h5(self.path)
        data = self._file[self.dataset]
        indices = np.asarray(indices, dtype=np.int64)
        out = np.empty((len(indices), *self.shape[1:]), dtype=np.float32)
        for j, k in enumerate(indices):
            out[j] = data[int(k)]
        return out

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def describe(self) -> dict:
        """JSON-able identity of the data: dataset, shape and attributes (not the path)."""
        return {"dataset": self.dataset, "shape": list(self.shape), "attrs": self.attrs}


def _h5(path: Path) -> h5py.File:
    try:
        return h5py.File(path, "r")
    except (OSError, FileNotFoundError) as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot read HDF5 file {str(path)!r}: {text}") from None


def _datasets(path: Path) -> list[str]:
    with _h5(path) as f:
        return sorted(k for k in f.keys() if isinstance(f[k], h5py.Dataset))


@dataclass
class TrainingData:
    """LR input maps and, where available, the matching HR maps, by sample index.

    Build it with :func:`open_training_data`. ``lr(indices)`` reads LR maps or degrades HR maps;
    ``hr(indices)`` reads HR maps (None when there are none).
    """

    lr_file: MapFile | None
    hr_file: MapFile | None
    degradation: Degradation
    n: int

    @property
    def lr_shape(self) -> tuple:
        """``(h, w, C)`` of one LR map."""
        if self.lr_file is not None:
            return self.lr_file.shape[1:]
        h, w, c = self.hr_file.shape[1:]
        f = self.degradation.factor
        return (h // f, w // f, c)

    @property
    def has_hr(self) -> bool:
        return self.hr_file is not None

    @property
    def attrs(self) -> dict:
        """The attributes of the data (the LR file's, else the HR file's): its Hamiltonian."""
        return dict((self.lr_file or self.hr_file).attrs)

    def lr(self, indices) -> np.ndarray:
        """LR maps ``(B, h, w, C)`` float32: read, or degraded from HR maps."""
        if self.lr_file is not None:
            return self.lr_file.read(indices)
        return self.degradation(self.hr_file.read(indices))

    def hr(self, indices) -> np.ndarray:
        """HR maps ``(B, H, W, C)`` float32; never used as an unsupervised target."""
        if self.hr_file is None:
            raise UserError("no HR maps available (the data file holds LR maps only)")
        return self.hr_file.read(indices)

    def describe(self) -> dict:
        """JSON-able identity of the inputs (for ``config.json`` and resume checks)."""
        return {
            "lr": None if self.lr_file is None else self.lr_file.describe(),
            "hr": None if self.hr_file is None else self.hr_file.describe(),
            "n": self.n,
        }

    def close(self) -> None:
        for f in (self.lr_file, self.hr_file):
            if f is not None:
                f.close()


def open_training_data(path, scale: int, kernel_size: int | None = None,
                       sigma: float | None = None, padding: str | None = None,
                       hr_path=None, max_samples: int | None = None) -> TrainingData:
    """Open a training file: LR maps (``lr``) or HR maps (``spins``) degraded on the fly.

    Parameters
    ----------
    path : str or PathLike
        HDF5 file with dataset ``lr`` (N, h, w, C) or ``spins`` (N, H, W, C). A file with both
        trains on ``lr`` and uses ``spins`` as HR maps for monitoring.
    scale : int
        SR factor. An ``lr`` dataset's ``factor`` attribute must equal it.
    kernel_size, sigma, padding : optional
        Degradation parameters. None takes the LR file's attributes, else the
        defaults 23, 1.0, ``"periodic"``. Given values must agree with the LR file's attributes.
    hr_path : str or PathLike, optional
        A file with dataset ``spins`` holding the HR maps of the same samples, in the same
        order, for an LR-only ``path`` (monitoring and the supervised oracle only).
    max_samples : int, optional
        Use only the first ``max_samples`` samples.

    Returns
    -------
    TrainingData

    Raises
    ------
    UserError
        Missing/unreadable file or dataset, a degradation parameter that contradicts the LR
        file's attributes, HR maps whose shape does not match the LR maps times ``scale``.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"data file {str(path)!r} does not exist")
    names = _datasets(path)
    lr_file = MapFile.open(path, LR) if LR in names else None
    hr_file = MapFile.open(path, HR) if HR in names else None
    if lr_file is None and hr_file is None:
        raise UserError(f"{str(path)!r} holds neither an {LR!r} nor a {HR!r} dataset "
                        f"(found: {names})")
    if hr_path is not None:
        if hr_file is not None:
            raise UserError(f"hr_data given, but {str(path)!r} holds HR maps already")
        hr_path = Path(hr_path)
        if not hr_path.is_file():
            raise UserError(f"HR file {str(hr_path)!r} does not exist")
        hr_file = MapFile.open(hr_path, HR)

    given = {"kernel_size": kernel_size, "sigma": sigma, "padding": padding}
    params = {"kernel_size": 23, "sigma": 1.0, "padding": "periodic"}
    if lr_file is not None:
        stored = lr_file.attrs
        if "factor" in stored and int(stored["factor"]) != scale:
            raise UserError(f"scale {scale} does not match the factor {stored['factor']} of the "
                            f"LR maps in {str(path)!r}")
        for key in params:
            if key in stored:
                value = type(params[key])(stored[key])
                if given[key] is not None and given[key] != value:
                    raise UserError(f"{key} {given[key]!r} does not match the {key} {value!r} "
                                    f"the LR maps in {str(path)!r} were made with")
                params[key] = value
    params.update({k: v for k, v in given.items() if v is not None})
    degradation = Degradation(int(scale), **params)

    n = (lr_file or hr_file).shape[0]
    if lr_file is not None and hr_file is not None:
        l_n, lh, lw, lc = lr_file.shape
        h_n, hh, hw, hc = hr_file.shape
        if (h_n, hh, hw, hc) != (l_n, lh * scale, lw * scale, lc):
            raise UserError(f"HR maps of shape {hr_file.shape} do not match LR maps of shape "
                            f"{lr_file.shape} at scale {scale}")
    elif hr_file is not None:
        _, hh, hw, _ = hr_file.shape
        if hh % scale or hw % scale:
            raise UserError(f"HR maps of size {hh}x{hw} in {str(hr_file.path)!r} are not "
                            f"divisible by scale {scale}")
    if max_samples is not None:
        if (not isinstance(max_samples, numbers.Integral) or isinstance(max_samples, bool)
                or max_samples < 1):
            raise UserError(f"max_samples must be a positive integer, got {max_samples!r}")
        n = min(n, int(max_samples))
    return TrainingData(lr_file, hr_file, degradation, int(n))


def split_indices(n: int, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation sample indices: validation is the last ``val_fraction``.

    ``n_val = floor(n · val_fraction)``, at least 1 when ``val_fraction > 0``; at least one
    training sample must remain.
    """
    if (isinstance(val_fraction, bool) or not isinstance(val_fraction, numbers.Real)
            or not 0 <= val_fraction < 1):
        raise UserError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    n_val = max(1, math.floor(n * val_fraction)) if val_fraction > 0 else 0
    if n - n_val < 1:
        raise UserError(f"val_fraction {val_fraction} leaves no training sample out of {n}")
    idx = np.arange(n, dtype=np.int64)
    return idx[:n - n_val], idx[n - n_val:]


@functools.lru_cache(maxsize=4)
def _permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch]).permutation(n)


class BatchPlan:
    """Which samples form batch ``step`` of epoch ``epoch``: a pure function of its arguments.

    With ``shuffle`` the samples are permuted anew each epoch by a generator seeded with
    ``(seed, epoch)``; the last batch of an epoch may be smaller.

    Parameters
    ----------
    indices : array_like of int
        The sample indices to draw from (e.g. the training split).
    batch_size : int
    seed : int
    shuffle : bool
    """

    def __init__(self, indices, batch_size: int, seed: int = 0, shuffle: bool = True):
        if (not isinstance(batch_size, numbers.Integral) or isinstance(batch_size, bool)
                or batch_size < 1):
            raise UserError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.indices = np.asarray(indices, dtype=np.int64)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.shuffle = bool(shuffle)

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.indices) / self.batch_size)

    def order(self, epoch: int) -> np.ndarray:
        """All sample indices of ``epoch`` in the order they are visited."""
        if not self.shuffle:
            return self.indices
        return self.indices[_permutation(len(self.indices), self.seed, int(epoch))]

    def batch(self, epoch: int, step: int) -> np.ndarray:
        """Sample indices of batch ``step`` (0-based) of ``epoch``."""
        if not 0 <= step < self.steps_per_epoch:
            raise IndexError(f"step {step} outside 0..{self.steps_per_epoch - 1}")
        return self.order(epoch)[step * self.batch_size:(step + 1) * self.batch_size]


def as_path(p) -> str:
    """``p`` as an absolute path string (for configs)."""
    return os.path.abspath(os.fspath(p))
