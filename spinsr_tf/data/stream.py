"""Training batches from an HDF5 file: degraded once, held in memory, read in slabs.

A training file holds either LR maps (dataset ``lr``, from ``spinsr-tf downsample`` or a
microscope) or HR maps (dataset ``spins``, from ``spinsr-tf generate``). HR maps are degraded
with :func:`~spinsr_tf.data.gaussian_downsample`; the LR image of a sample is a function of that
sample alone (the tests hold it bit for bit equal to the LR file made from the whole set at
once), so it does not matter how many maps one call degrades. The HR maps themselves are only
handed out by :meth:`TrainingData.hr`, for monitoring or for the supervised oracle; the
unsupervised targets are the LR maps.

:meth:`TrainingData.prepare` (called once per run by the trainer) degrades every HR map once,
in contiguous slabs, and keeps the LR maps in memory while they fit under a bound
(:data:`CACHE_BYTES`); past it they go to an uncompressed cache file in the run folder, keyed
by the data file and the degradation, and reused on resume. Without ``prepare`` every call
reads (and degrades) what it is asked for, one HDF5 read per run of consecutive indices.

Which samples go where is a pure function of ``(seed, epoch, step)`` (:class:`BatchPlan`), so a
resumed run sees exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

import functools
import json
import math
import os
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import h5py
import numpy as np

from spinsr_tf.base.checks import check_int, check_real, is_int
from spinsr_tf.base.errors import UserError
from spinsr_tf.data.degradation import FIELDS, LEGACY_KERNEL_SIZE, Degradation
from spinsr_tf.data.io import damaged_file_errors, h5_output
from spinsr_tf.data.degradation_generator import DegradationGenerator, DrawnDegradation, batch_rng

#: Dataset names: LR maps (the training input) and HR maps (degraded on the fly).
LR, HR = "lr", "spins"
#: Attributes of an LR file that record the degradation that produced it
#: (:meth:`spinsr_tf.data.degradation.Degradation.to_attrs`).
DEGRADATION_ATTRS = FIELDS
#: Default bound on the bytes of maps :meth:`TrainingData.prepare` holds in memory.
CACHE_BYTES = 2 * 1024 ** 3
#: The LR cache file a run folder gets when the LR maps do not fit under the bound.
LR_CACHE = "lr_cache.h5"
#: Samples per read while preparing (64 HR maps of 128² are 12 MB).
SLAB = 64


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


@dataclass
class MapFile:
    """One ``(N, H, W, C)`` dataset of an HDF5 file, read in contiguous runs of samples.

    The file is opened on first use and kept open (h5py serialises the threads that share it);
    :meth:`close` releases it.
    """

    path: Path
    dataset: str
    shape: tuple
    attrs: dict
    _file: h5py.File | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

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

    def _data(self) -> h5py.Dataset:
        with self._lock:
            if self._file is None:
                self._file = _h5(self.path)
            return self._file[self.dataset]

    def read(self, indices) -> np.ndarray:
        """Samples ``indices`` (any order, repeats allowed) as ``(B, H, W, C)`` float32;
        ``UserError`` naming the first sample that holds a NaN or an infinity.

        One HDF5 read per run of consecutive indices (after sorting): a slab costs one call,
        where a loop over samples pays the per-call overhead once per map.
        """
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if len(indices) and not (0 <= indices.min() and indices.max() < self.shape[0]):
            raise IndexError(f"sample index outside 0..{self.shape[0] - 1} in {str(self.path)!r}")
        if not len(indices):
            return np.empty((0, *self.shape[1:]), dtype=np.float32)
        unique, inverse = np.unique(indices, return_inverse=True)
        starts = np.flatnonzero(np.diff(unique, prepend=-2) != 1)
        ends = np.append(starts[1:], len(unique))
        data = self._data()
        rows = np.empty((len(unique), *self.shape[1:]), dtype=data.dtype)
        with damaged_file_errors(self.path):   # a corrupt chunk: one line naming the file
            for a, b in zip(starts, ends):
                data.read_direct(rows, np.s_[int(unique[a]):int(unique[a]) + int(b - a)],
                                 np.s_[int(a):int(b)])
        rows = rows.astype(np.float32, copy=False)
        finite = np.isfinite(rows).reshape(len(unique), -1).all(axis=1)
        if not finite.all():
            raise UserError(f"dataset {self.dataset!r} in {str(self.path)!r} holds NaN or "
                            f"infinite values (sample {int(unique[np.argmin(finite)])})")
        if len(unique) == len(indices) and np.array_equal(unique, indices):
            return rows
        return rows[inverse.reshape(-1)]

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def describe(self) -> dict:
        """JSON-able identity of the data: dataset, shape and attributes (not the path)."""
        return {"dataset": self.dataset, "shape": list(self.shape), "attrs": self.attrs}

    def identity(self) -> dict:
        """:meth:`describe` plus the file's absolute path, size and modification time: what a
        cache made from this file must match to be reused."""
        stat = self.path.stat()
        return {**self.describe(), "path": os.path.abspath(self.path), "size": stat.st_size,
                "mtime_ns": stat.st_mtime_ns}


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
    ``hr(indices)`` reads HR maps (None when there are none); ``teacher(indices)`` a teacher
    network's SR maps of the same samples (the distillation term's target). After
    :meth:`prepare` they come from memory (or the run's LR cache file) instead, with the same
    values bit for bit.
    """

    lr_file: MapFile | None
    hr_file: MapFile | None
    degradation: Degradation
    n: int
    teacher_file: MapFile | None = None
    _lr: np.ndarray | MapFile | None = field(default=None, repr=False)
    _hr: np.ndarray | None = field(default=None, repr=False)
    _hr_row: np.ndarray | None = field(default=None, repr=False)
    _teacher: np.ndarray | None = field(default=None, repr=False)
    _cache_path: Path | None = field(default=None, repr=False)

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
        """LR maps ``(B, h, w, C)`` float32: from the cache, read, or degraded from HR maps."""
        if isinstance(self._lr, np.ndarray):
            return self._lr[np.asarray(indices, dtype=np.int64)]
        if self._lr is not None:
            return self._lr.read(indices)
        if self.lr_file is not None:
            return self.lr_file.read(indices)
        return self.degradation(self.hr_file.read(indices))

    def drawn_lr(self, indices, generator: DegradationGenerator, seed: int, epoch: int,
                 step: int, stream: int = 0) -> tuple[np.ndarray, np.ndarray, DrawnDegradation]:
        """One blind-training batch: LR maps made from the HR maps of ``indices`` with a
        degradation (and noise) drawn from ``generator``, a pure function of
        ``(seed, stream, epoch, step)`` and the data.

        Returns ``(lr (B, h, w, C) float32, taps (B, T) float32, draw)``: ``taps`` is the drawn
        filter (:meth:`DegradationGenerator.padded_taps`) once per sample, what
        :class:`spinsr_tf.nn.layers.TapsDownsample` re-applies. The boundary condition is this
        data's (:attr:`degradation`). ``UserError`` without HR maps.
        """
        if self.hr_file is None:
            raise UserError("drawn degradations need HR maps (dataset 'spins'): the data file "
                            "holds LR maps only")
        rng = batch_rng(seed, epoch, step, stream)
        draw = generator.draw(rng, self.degradation.factor, self.degradation.padding)
        lr = generator.degrade(self.hr(indices), draw, rng)
        taps = np.broadcast_to(generator.padded_taps(draw.degradation).astype(np.float32),
                               (len(lr), generator.taps_length(draw.degradation.factor)))
        return lr, np.ascontiguousarray(taps), draw

    def hr(self, indices) -> np.ndarray:
        """HR maps ``(B, H, W, C)`` float32; never used as an unsupervised target."""
        if self.hr_file is None:
            raise UserError("no HR maps available (the data file holds LR maps only)")
        indices = np.asarray(indices, dtype=np.int64)
        if self._hr is not None and len(indices) and indices.max() < len(self._hr_row):
            rows = self._hr_row[indices]
            if rows.min() >= 0:
                return self._hr[rows]
        return self.hr_file.read(indices)

    def teacher(self, indices) -> np.ndarray:
        """A teacher network's SR maps ``(B, H, W, C)`` float32 of samples ``indices``: not
        ground truth, the distillation term's target."""
        if self.teacher_file is None:
            raise UserError("no teacher maps available (give teacher_data)")
        if self._teacher is not None:
            return self._teacher[np.asarray(indices, dtype=np.int64)]
        return self.teacher_file.read(indices)

    def prepare(self, hr_indices=(), max_bytes: int | None = None, cache_dir=None,
                teacher: bool = False) -> dict:
        """Degrade once and hold the maps a run needs: call before the first epoch.

        The LR maps of all ``n`` samples go into memory if they take at most ``max_bytes``
        (None: :data:`CACHE_BYTES`). Otherwise LR maps degraded from HR maps go into
        ``cache_dir/lr_cache.h5``, reused while its key (the HR file's identity and the
        degradation) matches (without ``cache_dir`` they are degraded per call), and an LR
        file is read as needed. The HR maps of ``hr_indices`` (the validation split, or all
        for the supervised oracle) go into memory if they fit in what the LR maps leave of
        ``max_bytes``; with ``teacher``, then the teacher's maps of all ``n`` samples if they
        fit in what is left. The values are those the unprepared calls return, bit for bit.

        Returns
        -------
        dict
            ``lr``: where the LR maps now come from (``"memory"``, ``"cache file"`` or
            ``"data file"``), ``hr`` and ``teacher``: the number of HR and teacher maps held
            in memory.
        """
        max_bytes = CACHE_BYTES if max_bytes is None else int(max_bytes)
        itemsize = np.dtype(np.float32).itemsize
        lr_bytes = self.n * int(np.prod(self.lr_shape)) * itemsize
        used = 0
        if isinstance(self._lr, np.ndarray):
            used = lr_bytes
        elif lr_bytes <= max_bytes:
            self._lr = np.empty((self.n, *self.lr_shape), dtype=np.float32)
            for start, block in self._lr_slabs():
                self._lr[start:start + len(block)] = block
            used = lr_bytes
        elif self.lr_file is None and cache_dir is not None and self._lr is None:
            self._lr = self._cache_file(Path(cache_dir))
        where = ("memory" if isinstance(self._lr, np.ndarray) else
                 "cache file" if self._lr is not None else "data file")

        hr_indices = np.unique(np.asarray(hr_indices, dtype=np.int64))
        if self.hr_file is not None and len(hr_indices):
            hr_bytes = len(hr_indices) * int(np.prod(self.hr_file.shape[1:])) * itemsize
            if used + hr_bytes <= max_bytes:
                self._hr = self.hr_file.read(hr_indices)
                self._hr_row = np.full(int(hr_indices.max()) + 1, -1, dtype=np.int64)
                self._hr_row[hr_indices] = np.arange(len(hr_indices))
                used += hr_bytes
        if teacher and self.teacher_file is not None and self._teacher is None:
            t_bytes = self.n * int(np.prod(self.teacher_file.shape[1:])) * itemsize
            if used + t_bytes <= max_bytes:
                self._teacher = self.teacher_file.read(np.arange(self.n))
        return {"lr": where, "hr": 0 if self._hr is None else len(self._hr),
                "teacher": 0 if self._teacher is None else len(self._teacher)}

    def _lr_slabs(self):
        """``(start, LR maps)`` of samples ``0 .. n - 1`` in slabs of :data:`SLAB`, in order.

        From HR maps, the next slab is read in a background thread while this one is degraded
        (NumPy's matrix products release the GIL, so the two overlap).
        """
        source = self.lr_file or self.hr_file

        def read(start):
            return source.read(np.arange(start, min(start + SLAB, self.n)))

        if self.lr_file is not None:
            for start in range(0, self.n, SLAB):
                yield start, read(start)
            return
        with ThreadPoolExecutor(max_workers=1) as pool:
            ahead = pool.submit(read, 0)
            for start in range(0, self.n, SLAB):
                block = ahead.result()
                if start + SLAB < self.n:
                    ahead = pool.submit(read, start + SLAB)
                yield start, self.degradation(block)

    def _cache_key(self) -> str:
        return json.dumps({"hr": self.hr_file.identity(), "n": self.n,
                           "degradation": asdict(self.degradation)}, sort_keys=True)

    def _cache_file(self, cache_dir: Path) -> MapFile:
        """The run's LR cache file, reused if its key matches, else written anew."""
        path = cache_dir / LR_CACHE
        key = self._cache_key()
        if path.is_file():
            try:
                with h5py.File(path, "r") as f:
                    if f.attrs.get("key") == key and f[LR].shape == (self.n, *self.lr_shape):
                        self._cache_path = path
                        return MapFile.open(path, LR)
            except (OSError, KeyError):
                pass  # damaged or foreign: rebuild it
        # the space is checked before the first map (h5_output): a file declaring terabytes
        # is refused here, not after hours of writing
        nbytes = self.n * int(np.prod(self.lr_shape)) * np.dtype(np.float32).itemsize
        with h5_output(path, nbytes) as f:
            data = f.create_dataset(LR, shape=(self.n, *self.lr_shape), dtype="float32",
                                    chunks=(1, *self.lr_shape))
            for start, block in self._lr_slabs():
                data[start:start + len(block)] = block
            f.attrs["key"] = key
        self._cache_path = path
        return MapFile.open(path, LR)

    def remove_cache(self) -> None:
        """Delete the LR cache file :meth:`prepare` wrote (a finished run needs it no more)."""
        if isinstance(self._lr, MapFile):
            self._lr.close()
            self._lr = None
        if self._cache_path is not None:
            self._cache_path.unlink(missing_ok=True)
            self._cache_path = None

    def describe(self) -> dict:
        """JSON-able identity of the inputs (for ``config.json`` and resume checks)."""
        out = {
            "lr": None if self.lr_file is None else self.lr_file.describe(),
            "hr": None if self.hr_file is None else self.hr_file.describe(),
            "n": self.n,
        }
        if self.teacher_file is not None:   # absent otherwise: earlier runs still resume
            out["teacher"] = self.teacher_file.describe()
        return out

    def close(self) -> None:
        for f in (self.lr_file, self.hr_file, self.teacher_file, self._lr):
            if isinstance(f, MapFile):
                f.close()


def _given_settings(degradation) -> dict:
    """The degradation settings a caller fixed, as ``{name: value}`` with ``factor`` always
    there (the rest may be missing: read from the data file)."""
    if isinstance(degradation, Degradation):
        return degradation.to_dict()
    if is_int(degradation):
        return {"factor": check_int("scale", degradation, 1)}
    if isinstance(degradation, Mapping):
        unknown = sorted(map(str, set(degradation) - set(FIELDS)))
        if unknown:
            raise UserError(f"unknown degradation setting(s): {', '.join(unknown)} "
                            f"(known: {', '.join(FIELDS)})")
        given = {k: v for k, v in degradation.items() if v is not None}
        if "factor" not in given:
            raise UserError("the degradation settings need 'factor' (the SR scale)")
        check_int("scale", given["factor"], 1)
        return given
    raise UserError(f"degradation must be a Degradation, an integer factor or a mapping of "
                    f"its settings, got {degradation!r}")


def open_training_data(path, degradation, hr_path=None, max_samples: int | None = None,
                       teacher_path=None) -> TrainingData:
    """Open a training file: LR maps (``lr``) or HR maps (``spins``) degraded on the fly.

    Parameters
    ----------
    path : str or PathLike
        HDF5 file with dataset ``lr`` (N, h, w, C) or ``spins`` (N, H, W, C). A file with both
        trains on ``lr`` and uses ``spins`` as HR maps for monitoring.
    degradation : Degradation, int or mapping
        The imaging model of the maps, whole or in part: a
        :class:`~spinsr_tf.data.degradation.Degradation`; an integer, its factor (the SR
        scale) alone; or a mapping of some of its settings (keys of
        :data:`~spinsr_tf.data.degradation.FIELDS`, ``factor`` required; None stands for a
        setting not given, as in :class:`~spinsr_tf.nn.config.TrainConfig`). A setting not
        given takes the LR file's attribute, else the default (window 23 whatever σ, σ 1.0,
        ``"periodic"``, ``"sample"``). Given settings must agree with the LR file's
        attributes; an ``lr`` dataset's ``factor`` attribute must equal the factor.
    hr_path : str or PathLike, optional
        A file with dataset ``spins`` holding the HR maps of the same samples, in the same
        order, for an LR-only ``path`` (monitoring and the supervised oracle only).
    max_samples : int, optional
        Use only the first ``max_samples`` samples.
    teacher_path : str or PathLike, optional
        A file with dataset ``spins`` holding a teacher network's SR maps of the same samples,
        in the same order, on the HR grid (the distillation term's target).

    Returns
    -------
    TrainingData

    Raises
    ------
    UserError
        Missing/unreadable file or dataset, a degradation setting that contradicts the LR
        file's attributes, HR or teacher maps whose shape does not match the LR maps times
        the factor.
    """
    given = _given_settings(degradation)
    scale = int(given.pop("factor"))
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

    params = {"kernel_size": LEGACY_KERNEL_SIZE, "sigma": 1.0, "padding": "periodic",
              "pixel": "sample"}
    if lr_file is not None:
        stored = lr_file.attrs
        for key in ("factor", *params):   # a damaged attribute: one line, not a ValueError
            kind = int if key == "factor" else type(params[key])
            try:
                if key in stored:
                    kind(stored[key])
            except (TypeError, ValueError):
                raise UserError(f"the LR maps in {str(path)!r} record {key}={stored[key]!r}, "
                                f"not a valid {key}: a damaged attribute") from None
        if "factor" in stored and int(stored["factor"]) != scale:
            raise UserError(f"scale {scale} does not match the factor {stored['factor']} of the "
                            f"LR maps in {str(path)!r}")
        for key in params:
            if key in stored:
                value = type(params[key])(stored[key])
                if key in given and given[key] != value:
                    raise UserError(f"{key} {given[key]!r} does not match the {key} {value!r} "
                                    f"the LR maps in {str(path)!r} were made with")
                params[key] = value
    params.update(given)
    degradation = Degradation(scale, **params)

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
    teacher_file = None
    if teacher_path is not None:
        teacher_path = Path(teacher_path)
        if not teacher_path.is_file():
            raise UserError(f"teacher file {str(teacher_path)!r} does not exist")
        teacher_file = MapFile.open(teacher_path, HR)
        l_n, lh, lw, lc = (lr_file.shape if lr_file is not None else
                           (hr_file.shape[0], hr_file.shape[1] // scale,
                            hr_file.shape[2] // scale, hr_file.shape[3]))
        expected = (l_n, lh * scale, lw * scale, lc)
        if teacher_file.shape != expected:
            raise UserError(f"teacher maps of shape {teacher_file.shape} in "
                            f"{str(teacher_path)!r} do not match the {expected} the data "
                            f"needs at scale {scale}")
    if max_samples is not None:
        n = min(n, check_int("max_samples", max_samples, 1))
    return TrainingData(lr_file, hr_file, degradation, int(n), teacher_file)


def split_indices(n: int, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation sample indices: validation is the last ``val_fraction``.

    ``n_val = floor(n · val_fraction)``, at least 1 when ``val_fraction > 0``; at least one
    training sample must remain.
    """
    check_real("val_fraction", val_fraction, 0, below=1)
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
        self.batch_size = check_int("batch_size", batch_size, 1)
        self.indices = np.asarray(indices, dtype=np.int64)
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
