"""Annealing on a Dask cluster: one task per block, each task writing its own block file.

Each task anneals one block of ``block`` samples and saves it with
:func:`spinsr_tf.data.generate.anneal_block`, the very function of the single-machine loop, into
the same ``OUT.h5.partial/`` folder under the same name (temporary name, fsync, rename). The
process that submitted the tasks assembles ``OUT.h5`` exactly as without Dask. Hence:

- the file is the same, bit for bit, as a single-process run with the same seed (sample ``k``
  depends only on ``(seed, k)``; block boundaries depend only on the block size);
- a worker killed mid-task loses only its unfinished block (Dask reschedules it on another
  worker); a killed client, or a run given up after repeated worker deaths, keeps every finished
  block, and re-running the command (with or without ``--scheduler``) completes the set;
- the refusal to resume with other parameters is the sidecar folder's, unchanged.

Why this needs a filesystem shared by all workers at the same path: workers write the blocks
and the client reads them. This is checked before any work is sent (every worker must see the
folder's ``params.json``) and again before assembly. Clusters without a shared filesystem are
not supported.

Dask is optional: ``pip install 'spinsr_tf[dask]'``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
from pathlib import Path

from spinsr_tf._version import __version__
from spinsr_tf.base.checks import check_int
from spinsr_tf.base.errors import UserError
from spinsr_tf.data.blocks import PARAMS_FILE, anneal_block, block_name

#: Seconds to wait for a ``tcp://`` scheduler to answer.
CONNECT_TIMEOUT = 5.0
#: Seconds to wait for a reachable scheduler to have at least one worker.
WORKER_TIMEOUT = 60.0

_LOCAL = re.compile(r"local:([+-]?\d+)")
_ADDRESS = re.compile(r"tcp://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})")
# numba's default threading layer must not be entered by two threads of one process at once,
# so a worker started with several threads runs its annealing tasks one at a time.
_ANNEAL_LOCK = threading.Lock()


def parse_scheduler(scheduler) -> tuple[str, int | str]:
    """``("local", N)`` for ``"local:N"`` (N >= 1), ``("address", s)`` for ``"tcp://HOST:PORT"``.

    Raises :class:`~spinsr_tf.base.errors.UserError` naming the value for anything else.
    """
    if isinstance(scheduler, str):
        local = _LOCAL.fullmatch(scheduler.strip())
        if local:
            n = int(local.group(1))
            if n <= 0:
                raise UserError(f"scheduler 'local:N' needs N >= 1 worker processes, "
                                f"got {scheduler!r}")
            return "local", n
        address = _ADDRESS.fullmatch(scheduler.strip())
        if address and 1 <= int(address.group(2)) <= 65535:
            return "address", scheduler.strip()
    raise UserError(f"scheduler must be 'tcp://HOST:PORT' (a running dask scheduler) or "
                    f"'local:N' (N local worker processes), got {scheduler!r}")


def _distributed():
    try:
        import distributed
    except ImportError:
        raise UserError("scheduler needs Dask, which is not installed: "
                        "pip install 'spinsr_tf[dask]'") from None
    return distributed


def check_scheduler(scheduler) -> str:
    """Validate ``scheduler`` (syntax, Dask installed) before any file is touched; return it
    stripped. Reachability is checked when the tasks are sent."""
    parse_scheduler(scheduler)
    _distributed()
    return scheduler.strip()


@contextlib.contextmanager
def dask_client(scheduler: str):
    """A ``distributed.Client`` on ``scheduler`` (a started ``LocalCluster`` for ``local:N``:
    N worker processes of one thread each, closed on exit)."""
    distributed = _distributed()
    kind, value = parse_scheduler(scheduler)
    if kind == "local":
        with distributed.LocalCluster(n_workers=value, threads_per_worker=1, processes=True,
                                      dashboard_address=":0",
                                      silence_logs=logging.ERROR) as cluster:
            with distributed.Client(cluster) as client:
                yield client
        return
    try:
        client = distributed.Client(value, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UserError(f"cannot reach the dask scheduler {value!r} within "
                        f"{CONNECT_TIMEOUT:g} s: {first}") from None
    with client:
        try:
            client.wait_for_workers(1, timeout=WORKER_TIMEOUT)
        except (OSError, TimeoutError):
            raise UserError(f"the dask scheduler {value!r} has no worker "
                            f"(waited {WORKER_TIMEOUT:g} s)") from None
        yield client


def _probe(params_path: str) -> tuple[bool, str]:
    """Run on every worker: does it see the sidecar folder, and which spinsr_tf does it run?"""
    return os.path.isfile(params_path), __version__


def _check_workers(client, folder: Path) -> None:
    try:
        answers = client.run(_probe, str(folder / PARAMS_FILE))
    except ImportError as exc:  # the probe is sent by reference to this module
        raise UserError(f"dask workers cannot import spinsr_tf ({exc}): install it, with the "
                        "same version, in every worker's environment") from None
    for worker, (sees, version) in sorted(answers.items()):
        if not sees:
            raise UserError(f"dask worker {worker} cannot see {str(folder)!r}: --scheduler needs "
                            "a filesystem shared by all workers at the same path")
        if version != __version__:
            raise UserError(f"dask worker {worker} runs spinsr_tf {version}, this process "
                            f"{__version__}: install the same version on every worker")


def _anneal_task(folder: str, hamiltonian, size: int, seed: int, schedule, start: int, stop: int,
                 threads: int) -> tuple[int, int]:
    """One Dask task: anneal and save block ``[start, stop)`` unless it exists already."""
    import numba

    path = Path(folder)
    if not (path / block_name(start, stop)).exists():
        if threads > numba.config.NUMBA_NUM_THREADS:
            raise UserError(f"workers={threads} numba threads per task, but this dask worker "
                            f"has {numba.config.NUMBA_NUM_THREADS}")
        with _ANNEAL_LOCK:
            numba.set_num_threads(threads)  # thread-local: this task's thread only
            anneal_block(path, hamiltonian, size, seed, schedule, start, stop)
    return start, stop


def anneal_blocks(scheduler: str, folder, todo, hamiltonian, size: int, seed: int, schedule,
                  threads: int | None = None):
    """Anneal the blocks ``todo`` on a Dask cluster, yielding each ``(start, stop)`` once saved.

    Parameters
    ----------
    scheduler : ``"tcp://HOST:PORT"`` or ``"local:N"`` (see :func:`parse_scheduler`).
    folder : the run's sidecar folder ``OUT.h5.partial`` (holding ``params.json``), on a
        filesystem that every worker sees at the same path.
    todo : ``[(start, stop), ...]`` blocks still missing; one task each.
    hamiltonian, size, seed, schedule : as for :func:`spinsr_tf.physics.anneal`.
    threads : numba threads per task (default 1: one sample at a time per worker thread).

    Yields
    ------
    ``(start, stop)`` of each block whose file exists, in order of completion.
    """
    threads = 1 if threads is None else threads
    check_int("workers (numba threads per dask task)", threads, 1)
    if not todo:
        return
    distributed = _distributed()
    folder = Path(folder).resolve()
    with dask_client(scheduler) as client:
        _check_workers(client, folder)
        futures = {client.submit(_anneal_task, str(folder), hamiltonian, int(size), int(seed),
                                 schedule, int(start), int(stop), int(threads), pure=False):
                   (start, stop) for start, stop in todo}
        try:
            for future in distributed.as_completed(futures):
                try:
                    future.result()
                except distributed.KilledWorker:
                    start, stop = futures[future]
                    raise UserError(f"dask workers kept dying on block {start}..{stop - 1}; "
                                    "finished blocks are kept: re-run the command to resume "
                                    "(worker memory?)") from None
                yield futures[future]
        finally:
            client.cancel(list(futures))
    missing = [b for b in todo if not (folder / block_name(*b)).exists()]
    if missing:
        raise UserError(f"{len(missing)} block(s) written by dask workers are not visible in "
                        f"{str(folder)!r}: --scheduler needs a filesystem shared by all workers")
