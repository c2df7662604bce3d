"""Annealed spin datasets in HDF5, written so that an interrupted run resumes exactly.

Why a sidecar folder: HDF5 files are not crash-safe, and a ``kill -9`` in the middle of a write can
leave one unreadable, losing every sample in it. So finished samples are first saved as fixed
blocks of ``block`` samples in ``OUT.h5.partial/`` (each block written under a temporary name and
renamed: a block is either complete or absent). When every block exists they are assembled into
``OUT.h5`` (again through a temporary name and a rename) and the folder is removed. A block is
checked whenever it is read (shape, finite, unit vectors: :func:`.blocks.read_block`); a block
damaged on disk is annealed again, with a one-line warning, never assembled.

Each sample depends only on ``(seed, index)`` (see :func:`spinsr_tf.physics.anneal`) and block
boundaries are fixed by the block size, so the file is the same, bit for bit, however often the run
was interrupted and whatever the number of workers. A mixture (:mod:`.mixture`) draws each map's
Hamiltonian from ``(seed, index)`` too, and records it per map (dataset ``params``,
:func:`read_map_params`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from pathlib import Path
from typing import Callable

import h5py
import numpy as np

from spinsr_tf._version import __version__
from spinsr_tf.base.checks import check_int, describe_mismatch
from spinsr_tf.base.errors import UserError
from spinsr_tf.base.files import (check_writable_folder, remove_stale_temporaries,
                                  write_text_atomic)
from spinsr_tf.data.blocks import PARAMS_FILE, anneal_block, read_block
from spinsr_tf.data.io import (H5_OVERHEAD, available_memory, check_size, format_bytes,
                               h5_output)
from spinsr_tf.data.mixture import MAP_DTYPE, Mixture, map_record, record_hamiltonian

#: Name of the HR dataset in every spins file.
SPINS = "spins"
#: Name of the per-map parameter records of a mixed file (:data:`.mixture.MAP_DTYPE`).
MAP_PARAMS = "params"
_FORMAT = "spinsr_tf.spins/1"


def _partial_dir(path: Path) -> Path:
    return path.with_name(path.name + ".partial")


def _params(hamiltonian, schedule, n: int, size: int, seed: int) -> dict:
    """Everything that determines the file's contents (compared before resuming). A mixture
    records its distributions and the schedule overrides every map shares."""
    if isinstance(hamiltonian, Mixture):
        return {"format": _FORMAT, "n": int(n), "size": int(size), "seed": int(seed),
                "mixture": hamiltonian.to_dict(), "schedule": dict(schedule),
                "spinsr_tf_version": __version__}
    return {
        "format": _FORMAT,
        "n": int(n),
        "size": int(size),
        "seed": int(seed),
        "hamiltonian": hamiltonian.to_attrs(),
        "schedule": schedule.to_attrs(),
        "spinsr_tf_version": __version__,
    }


def _flat_attrs(params: dict) -> dict:
    """HDF5 attributes: the parameters flattened (``hamiltonian.J``...) plus the JSON original."""
    attrs = {"params_json": json.dumps(params, sort_keys=True)}
    for key, value in params.items():
        if isinstance(value, dict):
            for sub, subvalue in value.items():   # a mixture's distributions: JSON text
                attrs[f"{key}.{sub}"] = (json.dumps(subvalue, sort_keys=True)
                                         if isinstance(subvalue, (dict, list)) else subvalue)
        else:
            attrs[key] = value
    return attrs


def _describe_mismatch(old: dict, new: dict) -> str:
    return describe_mismatch(_flat_attrs(old), _flat_attrs(new), ignore=("params_json",),
                             word="requested")


def dataset_attrs(path: str | os.PathLike) -> dict:
    """The parameters a spins file was generated with (the ``params_json`` attribute, parsed)."""
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            raw = f.attrs.get("params_json")
    except (OSError, FileNotFoundError) as exc:
        raise UserError(f"cannot read HDF5 file {str(path)!r}: {exc}") from None
    if raw is None:
        raise UserError(f"{str(path)!r} has no 'params_json' attribute: not written by spinsr-tf generate")
    return json.loads(raw)


def read_spins(path: str | os.PathLike, dataset: str = SPINS, indices=None) -> np.ndarray:
    """Read ``(N, L, L, C)`` float32 maps from an HDF5 file, with one-line errors for user mistakes.

    ``indices`` (sorted, unique) selects samples without reading the rest of the file.
    """
    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except (OSError, FileNotFoundError) as exc:
        raise UserError(f"cannot read HDF5 file {str(path)!r}: {exc}") from None
    with f:
        if dataset not in f:
            raise UserError(f"{str(path)!r} has no dataset {dataset!r} (found: {sorted(f.keys())})")
        data = f[dataset]
        if data.ndim != 4:
            raise UserError(f"dataset {dataset!r} in {str(path)!r} has shape {data.shape}, expected (N, H, W, C)")
        out = data[()] if indices is None else data[np.asarray(indices)]
    return np.asarray(out, dtype=np.float32)


def read_map_params(path: str | os.PathLike) -> np.ndarray:
    """What each map of a spins file is: ``(N,)`` records of :data:`.mixture.MAP_DTYPE`
    (model, couplings in J, field in J, boundary, helix period in sites, schedule).

    A mixed file holds them (dataset ``params``); a single-Hamiltonian file gets its one
    Hamiltonian and schedule repeated, so callers read both kinds alike. The Hamiltonian of a
    record: :func:`.mixture.record_hamiltonian`.
    """
    from spinsr_tf.physics import Schedule, hamiltonian_from_attrs

    params = dataset_attrs(path)
    if "mixture" in params:
        with h5py.File(path, "r") as f:
            if MAP_PARAMS not in f:
                raise UserError(f"{str(path)!r} is a mixture without its {MAP_PARAMS!r} dataset")
            return np.asarray(f[MAP_PARAMS][()], dtype=MAP_DTYPE)
    ham = hamiltonian_from_attrs(params["hamiltonian"])
    record = map_record(ham, Schedule.from_attrs(params["schedule"]))
    return np.repeat(record, int(params["n"]))


def map_hamiltonians(path: str | os.PathLike) -> list:
    """The Hamiltonian of every map of a spins file (:func:`read_map_params`)."""
    return [record_hamiltonian(r) for r in read_map_params(path)]


def _mixture_schedule(mixture: Mixture, schedule) -> dict:
    """Schedule overrides shared by every map of a mixture (None: none), checked against each
    model's defaults so that a bad value is refused before anything is written."""
    from spinsr_tf.physics import Schedule, TypeI, TypeII

    if schedule is None:
        return {}
    if not isinstance(schedule, dict):
        raise UserError("a mixture takes schedule overrides as a dict (e.g. {'sweeps': 100}): "
                        "each map is annealed with its own model's schedule")
    names = {f.name for f in dataclasses.fields(Schedule)}
    unknown = sorted(set(schedule) - names)
    if unknown:
        raise UserError(f"schedule has no parameter {unknown[0]!r}")
    for ham in (TypeI(), TypeII()):
        mixture.schedule(ham, schedule)
    return {k: schedule[k] for k in sorted(schedule)}


def _check_args(n: int, size: int, seed: int, block: int) -> None:
    if not isinstance(n, (int, np.integer)) or n <= 0:
        raise UserError(f"n must be a positive integer, got {n!r}")
    if not isinstance(size, (int, np.integer)) or size < 8 or size % 2:
        raise UserError(f"size must be an even integer >= 8 (checkerboard updates), got {size!r}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise UserError(f"seed must be a non-negative integer, got {seed!r}")
    if not isinstance(block, (int, np.integer)) or block <= 0:
        raise UserError(f"block must be a positive integer, got {block!r}")


#: Working memory of the annealing, bytes per lattice site of each sample annealed at once
#: (with the dipolar field: more per sample, plus the lattice's FFT kernels once), and what the
#: process holds before it starts; measured at L = 512 and 1024 (maximum resident set size).
_BYTES_PER_SITE = {"sample": 260, "sample_dipolar": 430, "dipolar": 1000}
_BASE_BYTES = 300 << 20


#: Largest magnitude of a Hamiltonian parameter that annealing takes: it works in float32 (at
#: most 3.4e38), where local fields sum many parameter-sized terms (J = 1e38 gave NaN maps).
MAX_PARAMETER = 1e20


def _check_magnitudes(hamiltonian) -> None:
    """Refuse, before anything is written, parameters whose energies float32 cannot hold."""
    import dataclasses

    if not dataclasses.is_dataclass(hamiltonian):
        return
    for f in dataclasses.fields(hamiltonian):
        value = getattr(hamiltonian, f.name)
        for v in value if isinstance(value, tuple) else (value,):
            if (isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
                    and not abs(v) <= MAX_PARAMETER):
                raise UserError(f"{f.name}={value!r} is beyond what annealing (in float32) can "
                                f"represent; use |{f.name}| <= {MAX_PARAMETER:g}")


def memory_estimate(hamiltonian, size: int, block: int, processes: int = 1) -> int:
    """Bytes of memory annealing needs: ``processes`` each annealing ``block`` samples of
    ``size`` x ``size`` at once."""
    sites = int(size) ** 2
    dipolar = bool(getattr(hamiltonian, "dipolar", 0))
    per_sample = _BYTES_PER_SITE["sample_dipolar" if dipolar else "sample"] * sites
    once = _BYTES_PER_SITE["dipolar"] * sites if dipolar else 0
    return int(processes) * (_BASE_BYTES + int(block) * per_sample + once)


def _check_resources(path: Path, hamiltonian, n: int, size: int, block: int, scheduler,
                     blocks_done_bytes: int = 0) -> None:
    """Refuse, before anything is written, a run this machine cannot hold: an allocation of
    petabytes, or a disk filled half-way through (the blocks and the assembled file)."""
    block = min(int(block), int(n))
    processes = 1
    if scheduler is not None:
        from spinsr_tf.data.dask_generate import parse_scheduler

        kind, value = parse_scheduler(scheduler)
        processes = value if kind == "local" else 0    # remote workers: their own memory
    if processes:
        need, have = memory_estimate(hamiltonian, size, block, processes), available_memory()
        if have is not None and need > have:
            raise UserError(f"annealing blocks of {block} lattice(s) of {size}x{size} needs about "
                            f"{format_bytes(need)} of memory, {format_bytes(have)} is available; "
                            "choose a smaller size or block")
    sample = int(size) ** 2 * 3 * 4
    need = 2 * int(n) * sample - blocks_done_bytes   # the blocks, then the file beside them
    parent = path.parent if str(path.parent) else Path(".")
    free = shutil.disk_usage(parent).free
    if need > free:
        raise UserError(f"{n} lattice(s) of {size}x{size} need about {format_bytes(need)} of "
                        f"disk space in {str(parent)!r} (the blocks and the file), "
                        f"{format_bytes(free)} is free; choose a smaller n or size")
    # the file itself against the file-size limit (ulimit -f), before the annealing
    check_size(f"writing {str(path)!r}", disk=int(n) * sample + H5_OVERHEAD, folder=parent)


def _check_workers(workers, scheduler) -> None:
    if workers is None or scheduler is not None:
        return
    import numba

    check_int("workers", workers, 1, numba.config.NUMBA_NUM_THREADS)


def _read_params(folder: Path) -> dict | None:
    """The ``params.json`` of a partial folder, or None if it is missing, empty or damaged."""
    try:
        stored = json.loads((folder / PARAMS_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(stored, dict) or not isinstance(stored.get("params"), dict):
        return None
    try:
        block = int(stored.get("block"))
    except (TypeError, ValueError):
        return None
    return stored if block > 0 else None


def _finished_blocks(folder: Path) -> list[Path]:
    return sorted(folder.glob("block_*_*.npy"))


def _check_writable(path: Path) -> None:
    check_writable_folder(path.parent)
    if path.exists() and path.is_dir():
        raise UserError(f"output path {str(path)!r} is a directory")


def _anneal_here(folder: Path, todo, hamiltonian, size, seed, schedule):
    """Anneal the blocks ``todo`` in this process, yielding each ``(start, stop)`` once saved."""
    for start, stop in todo:
        anneal_block(folder, hamiltonian, size, seed, schedule, start, stop)
        yield start, stop


def _assemble(path: Path, folder: Path, params: dict, blocks: list[tuple[int, int]],
              hamiltonian, schedule) -> None:
    from spinsr_tf.physics.energy import torque_statistics
    from spinsr_tf.physics.hamiltonians import hamiltonian_from_attrs

    n, size = params["n"], params["size"]
    mixed = isinstance(hamiltonian, Mixture)
    # built in memory (or on disk after a space check) and written with plain I/O: HDF5 that
    # meets a full disk crashes the process (data.io.h5_output)
    with h5_output(path, n * size * size * 3 * 4) as h5:
        with h5 as f:
            data = f.create_dataset(SPINS, shape=(n, size, size, 3), dtype="float32",
                                    chunks=(1, size, size, 3), compression="gzip",
                                    compression_opts=4, shuffle=True)
            if mixed:
                records = hamiltonian.records(params["seed"], range(n), schedule)
                f.create_dataset(MAP_PARAMS, data=records)
                hams = [record_hamiltonian(r) for r in records]
            else:
                ham = hamiltonian_from_attrs(params["hamiltonian"])
            torque_max, torque_median = [], []
            for start, stop in blocks:
                spins = read_block(folder, start, stop, size)
                if spins is None:   # damaged since it was checked: make it again, here
                    anneal_block(folder, hamiltonian, size, params["seed"], schedule, start, stop)
                    spins = read_block(folder, start, stop, size)
                data[start:stop] = spins
                for k in range(start, stop) if mixed else [None]:
                    one = spins if k is None else spins[k - start:k - start + 1]
                    stats = torque_statistics(one, ham if k is None else hams[k])
                    torque_max.append(stats["max"])
                    torque_median.append(stats["median"])
            for key, value in _flat_attrs(params).items():
                f.attrs[key] = value
            # what the relaxation left (not parameters: Type II's arrested walls show here)
            torque_max, torque_median = np.concatenate(torque_max), np.concatenate(torque_median)
            f.attrs["relaxed.max_torque_median"] = float(np.median(torque_max))
            f.attrs["relaxed.max_torque_max"] = float(torque_max.max())
            f.attrs["relaxed.site_torque_median"] = float(np.median(torque_median))
            f.attrs["created"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")


def generate_dataset(
    path: str | os.PathLike,
    hamiltonian,
    n: int,
    size: int = 128,
    seed: int = 0,
    schedule=None,
    workers: int | None = None,
    block: int = 16,
    progress: bool | Callable[[int, int], None] = True,
    scheduler: str | None = None,
) -> Path:
    """Anneal ``n`` independent ``size``×``size`` configurations into ``path`` (dataset ``spins``).

    Parameters
    ----------
    path : output ``.h5`` file. If it exists with the same parameters the call returns at once;
        with other parameters it is refused. An interrupted earlier call is resumed.
    hamiltonian : a :class:`spinsr_tf.physics.Hamiltonian` (``TypeI``, ``TypeII``, either in a
        field: :func:`spinsr_tf.physics.with_field`), or a :class:`.mixture.Mixture` (each
        map's Hamiltonian drawn from ``(seed, index)``, recorded per map in dataset ``params``).
    n, size, seed : number of samples, lattice side (even, >= 8), global seed (sample ``k`` is
        reproducible from ``(seed, k)`` alone).
    schedule : :class:`spinsr_tf.physics.Schedule` (annealing schedule and relaxation); default
        :func:`spinsr_tf.physics.default_schedule` of the Hamiltonian. For a mixture, a dict of
        overrides of every map's own default schedule (e.g. ``{"sweeps": 100}``), or None.
    workers : numba threads (default: all cores).
    block : samples annealed per call and saved per sidecar file (the most an interruption loses).
    progress : show a progress bar (samples done, rate), or a callable ``(done, n)``.
    scheduler : None (this process), ``"tcp://HOST:PORT"`` of a running Dask scheduler, or
        ``"local:N"`` (a local cluster of N single-threaded worker processes): each block is then
        one Dask task writing its block file itself (:mod:`spinsr_tf.data.dask_generate`; needs a
        filesystem shared by all workers). ``workers`` is then the numba threads per task
        (default 1). The file is the same, bit for bit, and resumes across either mode.

    Returns
    -------
    Path of the finished file: dataset ``spins``, shape ``(n, size, size, 3)``, float32 unit
    vectors, one sample per HDF5 chunk, gzip-compressed; attributes record the Hamiltonian
    (``hamiltonian.*``: its ``to_attrs()``, with ``hamiltonian.field_x/_y/_z`` in J for a
    nonzero field and ``hamiltonian.boundary`` for an open film; files without them have
    neither), the schedule (``schedule.*``), ``seed``, ``n``, ``size`` and
    ``spinsr_tf_version`` (and all of them as JSON in ``params_json``), and the torque the
    relaxation left, in J: ``relaxed.max_torque_median`` and ``relaxed.max_torque_max`` (over
    samples of each sample's largest |S × h|), ``relaxed.site_torque_median`` (median over
    samples of each sample's median). A mixed file has ``mixture.*`` (each parameter's
    distribution as JSON) and ``schedule.*`` (the overrides) instead of ``hamiltonian.*`` and
    ``schedule.*``, and the dataset ``params``: one :data:`.mixture.MAP_DTYPE` record per map
    (:func:`read_map_params`).
    """
    from spinsr_tf.physics import default_schedule  # numba compile cost only when generating

    path = Path(path)
    if isinstance(hamiltonian, Mixture):
        schedule = _mixture_schedule(hamiltonian, schedule)
    else:
        schedule = default_schedule(hamiltonian) if schedule is None else schedule
    _check_args(n, size, seed, block)
    _check_magnitudes(hamiltonian)
    _check_writable(path)
    if scheduler is not None:
        from spinsr_tf.data.dask_generate import check_scheduler

        scheduler = check_scheduler(scheduler)
    _check_workers(workers, scheduler)
    params = _params(hamiltonian, schedule, n, size, seed)
    folder = _partial_dir(path)
    if folder.is_symlink():     # its blocks would land in the folder it points to
        raise UserError(f"{str(folder)!r} is a symbolic link; remove it to start over")

    if path.exists():
        try:
            existing = dataset_attrs(path)
        except UserError:
            raise UserError(f"{str(path)!r} exists and is not a spinsr-tf dataset; "
                            "choose another --out or remove it") from None
        if existing != params:
            raise UserError(f"{str(path)!r} was generated with other parameters: "
                            f"{_describe_mismatch(existing, params)}")
        if folder.exists():  # leftovers of a run killed after its final rename
            shutil.rmtree(folder)
        return path

    # A partial folder protects finished blocks; one without any (a first call that failed
    # before its first block) holds nothing to resume, whatever its params.json says.
    stored = _read_params(folder) if folder.is_dir() else None
    finished_files = _finished_blocks(folder) if folder.is_dir() else []
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{str(folder)!r} exists and is not a folder; remove it to start over")
    if finished_files and stored is None:
        raise UserError(f"{str(folder / PARAMS_FILE)!r} is missing or damaged, so the "
                        f"{len(finished_files)} finished block(s) beside it cannot be checked; "
                        "remove the folder to start over")
    if finished_files and stored["params"] != params:
        raise UserError(f"an interrupted run in {str(folder)!r} used other parameters: "
                        f"{_describe_mismatch(stored['params'], params)}")
    if finished_files:
        block = int(stored["block"])
    done_bytes = sum(p.stat().st_size for p in finished_files)
    _check_resources(path, hamiltonian, n, size, block, scheduler, done_bytes)

    created = not folder.exists()
    try:
        folder.mkdir(exist_ok=True)
        if not finished_files:
            write_text_atomic(folder / PARAMS_FILE, json.dumps({"params": params, "block": block},
                                                               indent=1, sort_keys=True))
        remove_stale_temporaries(folder)
        remove_stale_temporaries(path.parent if str(path.parent) else Path("."), path.stem)
        blocks = [(start, min(start + block, n)) for start in range(0, n, block)]
        todo = [b for b in blocks if read_block(folder, *b, size) is None]
        if workers is not None and scheduler is None:
            import numba

            numba.set_num_threads(workers)

        done = n - sum(stop - start for start, stop in todo)
        bar = _progress_bar(progress, n, done, path.name)
        try:
            if scheduler is None:
                finished = _anneal_here(folder, todo, hamiltonian, size, seed, schedule)
            else:
                from spinsr_tf.data.dask_generate import anneal_blocks

                finished = anneal_blocks(scheduler, folder, todo, hamiltonian, size, seed,
                                         schedule, threads=workers)
            for start, stop in finished:
                done += stop - start
                bar(stop - start, done)
        finally:
            bar(None, done)
    except BaseException:
        if created and not _finished_blocks(folder):   # nothing finished: leave nothing behind
            shutil.rmtree(folder, ignore_errors=True)
        raise
    _assemble(path, folder, params, blocks, hamiltonian, schedule)
    shutil.rmtree(folder)
    return path


def _progress_bar(progress, n: int, done: int, label: str):
    """Return ``update(step, done)``; ``update(None, done)`` closes the bar."""
    if callable(progress):
        return lambda step, now: step is not None and progress(now, n)
    if not progress:
        return lambda step, now: None
    import sys

    from spinsr_tf.base.console import bars_fit

    if not bars_fit(sys.stderr):   # a log file: one line at the end, not a redrawn bar
        start = time.monotonic()

        def line(step, now):
            if step is None:
                print(f"{label}: {now}/{n} samples ({time.monotonic() - start:.0f} s)",
                      file=sys.stderr, flush=True)

        return line
    from tqdm.auto import tqdm

    bar = tqdm(total=n, initial=done, unit="sample", desc=label, dynamic_ncols=True)

    def update(step, now):
        if step is None:
            bar.close()
        else:
            bar.update(step)

    return update
