"""The block files of an interrupted ``generate``: fixed runs of finished samples in a sidecar folder.

One module for the single-machine loop (:mod:`.generate`) and the Dask tasks (:mod:`.dask_generate`)
alike, so both write the same bytes under the same names.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from spinsr_tf.base.errors import RepairWarning
from spinsr_tf.base.files import atomic_path

#: The parameters of the run that owns a partial folder (compared before resuming).
PARAMS_FILE = "params.json"


def block_name(start: int, stop: int) -> str:
    return f"block_{start:09d}_{stop:09d}.npy"


#: Largest | |S| - 1 | a block may hold: float32 unit vectors are exact to ~1e-7.
UNIT_TOLERANCE = 1e-4


def block_problem(path: Path, shape: tuple) -> tuple[np.ndarray | None, str]:
    """``(spins, "")`` for a sound block file of ``shape``, else ``(None, what is wrong)``.

    Sound: a readable ``.npy`` of float32 with exactly that shape, all finite, all unit vectors.
    A disk or memory fault, or a copy cut short, must not reach the assembled file.
    """
    try:
        spins = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        text = " ".join(str(exc).split()) or type(exc).__name__
        return None, f"is unreadable ({text[:80]})"
    if spins.dtype != np.float32 or spins.shape != tuple(shape):
        return None, f"holds {spins.dtype} {spins.shape}, not float32 {tuple(shape)}"
    bad = np.count_nonzero(~np.isfinite(spins))
    if bad:
        return None, f"holds {bad} NaN or infinite value(s)"
    deviation = float(np.abs(np.sqrt(np.einsum("...c,...c->...", spins, spins,
                                               dtype=np.float64)) - 1.0).max(initial=0.0))
    if deviation > UNIT_TOLERANCE:
        return None, f"holds spins that are not unit vectors (| |S| - 1 | up to {deviation:.2g})"
    return spins, ""


def read_block(folder: Path, start: int, stop: int, size: int) -> np.ndarray | None:
    """The samples ``start .. stop - 1`` of a block file, or None (and its file removed, with a
    one-line :class:`RepairWarning`) if it is missing or damaged, so that it is annealed again."""
    path = Path(folder) / block_name(start, stop)
    if not path.exists():
        return None
    spins, problem = block_problem(path, (stop - start, size, size, 3))
    if spins is None:
        warnings.warn(f"block file {str(path)!r} {problem}; annealing samples {start}..{stop - 1} "
                      "again", RepairWarning, stacklevel=2)
        path.unlink()
    return spins


def _save_block(folder: Path, start: int, stop: int, spins: np.ndarray) -> None:
    final = folder / block_name(start, stop)
    with atomic_path(final) as tmp, open(tmp, "wb") as fh:  # unique per writer
        np.save(fh, spins)
        fh.flush()
        os.fsync(fh.fileno())


def anneal_block(folder: Path, hamiltonian, size: int, seed: int, schedule, start: int,
                 stop: int) -> None:
    """Anneal samples ``start .. stop - 1`` and save them as their block file in ``folder``.

    The one place a block is made, by the single-machine loop and by every Dask task alike
    (:mod:`spinsr_tf.data.dask_generate`), so both write the same bytes under the same name.
    ``hamiltonian`` may be a :class:`~spinsr_tf.data.mixture.Mixture`, ``schedule`` then its
    overrides (a dict).
    """
    from spinsr_tf.data.mixture import Mixture
    from spinsr_tf.physics import anneal

    if isinstance(hamiltonian, Mixture):   # each map its own Hamiltonian; schedule: overrides
        spins = hamiltonian.anneal(size, seed, range(start, stop), schedule)
    else:
        spins = anneal(hamiltonian, size, seed, np.arange(start, stop), schedule=schedule)
    _save_block(folder, start, stop, spins)
