"""The block files of an interrupted ``generate``: fixed runs of finished samples in a sidecar folder.

One module for the single-machine loop (:mod:`.generate`) and the Dask tasks (:mod:`.dask_generate`)
alike, so both write the same bytes under the same names.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from spinsr_tf.base.files import atomic_path

#: The parameters of the run that owns a partial folder (compared before resuming).
PARAMS_FILE = "params.json"


def block_name(start: int, stop: int) -> str:
    return f"block_{start:09d}_{stop:09d}.npy"


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
    """
    from spinsr_tf.physics import anneal

    spins = anneal(hamiltonian, size, seed, np.arange(start, stop), schedule=schedule)
    _save_block(folder, start, stop, spins)
