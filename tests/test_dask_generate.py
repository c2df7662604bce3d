"""Generation on Dask: the file equals the single-process one bit for bit, whatever is killed.

8 Type I samples of 16², 30 sweeps, blocks of 2 (4 tasks); the reference is the single-process
:func:`generate_dataset` with the same seed. Each local cluster takes a few seconds to start.
"""

import os
import signal
import socket
import sys

import h5py
import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

from spinsr_tf.cli import main  # noqa: E402
from spinsr_tf.data import dask_generate as dist  # noqa: E402
from spinsr_tf.data.generate import generate_dataset  # noqa: E402
from spinsr_tf.base.errors import UserError  # noqa: E402
from spinsr_tf.physics import Schedule, TypeI  # noqa: E402

N, L, SEED, BLOCK = 8, 16, 11, 2
HAM, SCHEDULE = TypeI(), Schedule(sweeps=30)
RUN = dict(hamiltonian=HAM, n=N, size=L, seed=SEED, schedule=SCHEDULE, block=BLOCK)


def _contents(path):
    """``spins`` and every attribute except the creation time."""
    with h5py.File(path, "r") as f:
        spins = f["spins"][()]
        attrs = {k: v for k, v in f.attrs.items() if k != "created"}
    return spins, attrs


def _assert_same_file(path, reference):
    spins, attrs = _contents(path)
    ref_spins, ref_attrs = reference
    assert spins.dtype == ref_spins.dtype and spins.shape == (N, L, L, 3)
    np.testing.assert_array_equal(spins, ref_spins)
    assert attrs.keys() == ref_attrs.keys()
    for key in ref_attrs:
        assert np.array_equal(attrs[key], ref_attrs[key]), key
    assert not path.with_name(path.name + ".partial").exists()


def _blocks(path):
    return sorted(path.with_name(path.name + ".partial").glob("block_*.npy"))


class _StopAfter:
    """Progress callback that interrupts the run like Ctrl-C once ``k`` samples are done."""

    def __init__(self, k):
        self.k = k

    def __call__(self, done, n):
        if done >= self.k:
            raise KeyboardInterrupt


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    path = tmp_path_factory.mktemp("ref") / "ref.h5"
    generate_dataset(path, progress=False, **RUN)
    return _contents(path)


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0", silence_logs=50) as c:
        yield c


def test_local_cluster_equals_single_process(tmp_path, reference):
    out = generate_dataset(tmp_path / "d.h5", progress=False, scheduler="local:2", **RUN)
    _assert_same_file(out, reference)


def test_mixture_on_a_local_cluster_equals_single_process(tmp_path):
    from spinsr_tf.data.generate import read_map_params
    from spinsr_tf.data.mixture import Mixture

    run = dict(RUN, hamiltonian=Mixture.parse("universal"), schedule={"sweeps": 30})
    ref = generate_dataset(tmp_path / "ref.h5", progress=False, **run)
    with pytest.raises(KeyboardInterrupt):   # half of it here, the rest on Dask
        generate_dataset(tmp_path / "d.h5", progress=_StopAfter(2 * BLOCK), **run)
    out = generate_dataset(tmp_path / "d.h5", progress=False, scheduler="local:2", **run)
    _assert_same_file(out, _contents(ref))
    np.testing.assert_array_equal(read_map_params(out), read_map_params(ref))


def test_tcp_scheduler_with_two_numba_threads_per_task(tmp_path, reference, cluster):
    import numba

    threads = min(2, numba.config.NUMBA_NUM_THREADS)  # the workers run on this machine
    out = generate_dataset(tmp_path / "d.h5", progress=False, workers=threads,
                           scheduler=cluster.scheduler_address, **RUN)
    _assert_same_file(out, reference)


def test_interrupted_client_keeps_blocks_and_rerun_completes(tmp_path, reference, cluster):
    path = tmp_path / "d.h5"
    with pytest.raises(KeyboardInterrupt):
        generate_dataset(path, progress=_StopAfter(BLOCK), scheduler=cluster.scheduler_address,
                         **RUN)
    assert not path.exists()
    kept = _blocks(path)
    assert 1 <= len(kept) <= N // BLOCK
    for block in kept:  # every block on disk is already final
        start, stop = (int(v) for v in block.stem.split("_")[1:])
        np.testing.assert_array_equal(np.load(block), reference[0][start:stop])
    generate_dataset(path, progress=False, scheduler=cluster.scheduler_address, **RUN)
    _assert_same_file(path, reference)


def test_blocks_of_a_single_process_run_are_reused(tmp_path, reference):
    path = tmp_path / "d.h5"
    with pytest.raises(KeyboardInterrupt):
        generate_dataset(path, progress=_StopAfter(2 * BLOCK), **RUN)
    assert len(_blocks(path)) == 2
    seen = []
    generate_dataset(path, progress=lambda done, n: seen.append(done), scheduler="local:2", **RUN)
    assert seen == [3 * BLOCK, 4 * BLOCK]  # only the two missing blocks were sent
    _assert_same_file(path, reference)


def test_killed_workers_cost_only_their_blocks(tmp_path, reference, cluster):
    with distributed.Client(cluster) as client:
        pids = sorted(client.run(os.getpid).values())
    killed = []

    def kill_workers(done, n):  # after the first block: the other tasks are running or queued
        for pid in pids[len(killed):]:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    path = tmp_path / "d.h5"
    generate_dataset(path, progress=kill_workers, scheduler=cluster.scheduler_address, **RUN)
    _assert_same_file(path, reference)
    with distributed.Client(cluster) as client:  # the nannies restarted both workers
        client.wait_for_workers(2, timeout=30)
        assert len(killed) == 2 and set(client.run(os.getpid).values()).isdisjoint(killed)


def test_other_parameters_are_refused_on_resume(tmp_path, cluster):
    path = tmp_path / "d.h5"
    with pytest.raises(KeyboardInterrupt):
        generate_dataset(path, progress=_StopAfter(BLOCK), **RUN)
    with pytest.raises(UserError, match="seed"):
        generate_dataset(path, progress=False, scheduler=cluster.scheduler_address,
                         **{**RUN, "seed": SEED + 1})


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("value, message", [
    ("local:0", "N >= 1"),
    ("local:-3", "N >= 1"),
    ("local:two", "tcp://HOST:PORT"),
    ("127.0.0.1:8786", "tcp://HOST:PORT"),
    ("udp://127.0.0.1:8786", "tcp://HOST:PORT"),
    ("tcp://127.0.0.1:99999", "tcp://HOST:PORT"),
    ("unreachable", "cannot reach"),
])
def test_bad_scheduler_is_one_line_exit_2(tmp_path, capsys, monkeypatch, value, message):
    monkeypatch.setattr(dist, "CONNECT_TIMEOUT", 1.0)
    if value == "unreachable":
        value = f"tcp://127.0.0.1:{_free_port()}"
    out = tmp_path / "d.h5"
    rc = main(["generate", "--type", "I", "--n", "4", "--size", "16", "--sweeps", "5",
               "--out", str(out), "--quiet", "--scheduler", value])
    err = capsys.readouterr().err
    assert rc == 2 and not out.exists()
    assert err.count("\n") == 1 and "scheduler" in err and message in err, err


def test_missing_dask_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(UserError, match=r"pip install 'spinsr_tf\[dask\]'"):
        generate_dataset(tmp_path / "d.h5", progress=False, scheduler="local:1", **RUN)
    assert not (tmp_path / "d.h5.partial").exists()
