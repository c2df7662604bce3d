"""Training across worker processes (``--strategy multiworker``) equals single-process training.

``TF_CONFIG`` is checked before anything starts (:func:`read_cluster`), and the tasks meet over
plain sockets before TensorFlow's server starts (:func:`meet`, tested with threads of this
process). The real run: two worker processes on this machine (localhost, CPU only, one thread
each) run ``spinsr-tf train`` with the same ``--out`` on the data of ``test_strategy`` (16
smooth maps of 32² → 8² at ×4, global batch 4 = 2 per worker, 2 epochs of 4 steps), against one
process with the same seed and global batch.

Tolerances: per-epoch training loss within 1e-4 relative (measured: 5e-7), every weight within
3e-3 (measured: 1.1e-4) except the biases of convolutions feeding a BatchNormalization (their
gradient is rounding noise; ``test_strategy``). Each way of getting the replicas wrong fails
both, measured: summing the replicas' gradients instead of averaging them (Keras' division by
the replica count left out) doubles the logged loss (relative difference 1.0) and moves the
weights by 1.1e-2; the doubled gradient alone, with the loss logged right, moves the loss by
8e-4 (Adam's step hardly depends on the gradient's scale) and the weights by 1.1e-2; per-worker
BatchNorm statistics move the loss by 2.4e-2 and the weights by 0.16.

Which worker writes is watched with an audit hook in each worker process (every file opened for
writing, renamed, removed or created under ``--out``): the chief's list is long, the other
worker's must be empty.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import keras
import numpy as np
import pytest

from spinsr_tf.base.errors import UserError
from spinsr_tf.cli import main
from spinsr_tf.nn import strategy as distribute
from spinsr_tf.nn.multiworker import Cluster, Task, meet, read_cluster
from spinsr_tf.nn.training import read_history
from test_strategy import WEIGHT_ATOL, _differences, data  # noqa: F401 (the same 16 maps)

LOSS_RTOL = 1e-4

ARGS = ["--scale", "4", "--network", "paper", "--batch-size", "4", "--val-fraction", "0.125",
        "--seed", "3", "--no-jit"]
RUN_FILES = {"checkpoint.keras", "config.json", "history.csv", "logs", "model.keras"}

# A worker: ``spinsr-tf train`` (the CLI's main, as ``python -m spinsr_tf``) with an audit hook
# that lists what the process writes under --out.
_WORKER = r"""
import atexit, json, os, sys

out, log = os.path.abspath(sys.argv[1]), sys.argv[2]
writes = []


def inside(path):
    if isinstance(path, int):
        return False
    path = os.path.abspath(os.fsdecode(path))
    return path == out or path.startswith(out + os.sep)


def audit(event, args):
    if event == "open":
        path, mode, flags = args
        writing = (any(c in mode for c in "wax+") if isinstance(mode, str)
                   else bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)))
        paths = [path] if writing else []
    elif event == "os.rename":
        paths = args[:2]
    elif event in ("os.remove", "os.mkdir", "os.rmdir", "shutil.rmtree", "os.truncate",
                   "os.utime", "os.chmod"):
        paths = args[:1]
    else:
        return
    writes.extend(f"{event} {os.fsdecode(p)}" for p in paths if inside(p))


atexit.register(lambda: open(log, "w").write(json.dumps(writes)))
sys.addaudithook(audit)
from spinsr_tf.cli import main
sys.exit(main(sys.argv[3:]))
"""


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("localhost", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _tf_config(ports, index):
    return json.dumps({"cluster": {"worker": [f"localhost:{p}" for p in ports]},
                       "task": {"type": "worker", "index": index}})


def _start_workers(data, out, root, epochs, extra=()):
    """Two worker processes of one cluster (``extra``: more arguments of ``train``); returns them
    (Popen) and their audit logs."""
    ports = _free_ports(2)
    workers, logs = [], []
    for index in range(2):
        tmp = root / f"tmp{index}"
        tmp.mkdir(exist_ok=True)
        logs.append(root / f"writes{index}.json")
        env = dict(os.environ, TF_CONFIG=_tf_config(ports, index), CUDA_VISIBLE_DEVICES="",
                   KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3", TMPDIR=str(tmp),
                   TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="1", OMP_NUM_THREADS="1",
                   PYTHONPATH=os.pathsep.join([os.path.dirname(os.path.dirname(__file__)),
                                               os.environ.get("PYTHONPATH", "")]))
        workers.append(subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(out), str(logs[index]), "train",
             "--data", str(data), "--out", str(out), "--epochs", str(epochs),
             "--strategy", "multiworker", *ARGS, *extra],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    return workers, logs


def _finish(workers, timeout=240):
    """``[(returncode, stdout, stderr)]`` of each worker; kills them all after ``timeout``."""
    deadline = time.monotonic() + timeout
    results = []
    try:
        for worker in workers:
            out, err = worker.communicate(timeout=max(1.0, deadline - time.monotonic()))
            results.append((worker.returncode, out, err))
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.communicate()
    return results


@pytest.fixture(scope="module")
def runs(data, tmp_path_factory):
    """The single-process run (``none``, in this process) and the two-worker run (``run``)."""
    root = tmp_path_factory.mktemp("multiworker")
    workers, logs = _start_workers(data, root / "run", root, epochs=2)
    try:
        assert main(["train", "--data", str(data), "--out", str(root / "none"), "--epochs", "2",
                     "--quiet", *ARGS]) == 0
    finally:
        results = _finish(workers)
    for rc, _, err in results:
        assert rc == 0, err[-3000:]
    return {"root": root, "results": results,
            "writes": [json.loads(log.read_text()) for log in logs]}


@pytest.mark.slow  # ~35-50 s: two worker processes and a single-process run (CI's slow step)
def test_two_workers_train_the_single_process_network(runs):
    root = runs["root"]
    config = json.loads((root / "run" / "config.json").read_text())
    assert config["strategy"] == "multiworker" and config["run"]["replicas"] == 2
    assert config["batch_size"] == 4  # the global batch, as given
    assert read_history(root / "run")["epoch"] == [0, 1]
    loss, weights = _differences(root / "none", root / "run")
    assert loss < LOSS_RTOL and weights < WEIGHT_ATOL, (loss, weights)


@pytest.mark.slow  # shares the runs of the test above
def test_only_the_chief_writes_the_run(runs):
    root = runs["root"]
    chief, other = runs["writes"]
    assert any(w.endswith("checkpoint.keras") for w in chief)  # the hook sees the writes
    assert other == []
    assert {p.name for p in (root / "run").iterdir()} == RUN_FILES
    for index in range(2):  # the other worker's temporary folder is gone
        assert not any((root / f"tmp{index}").glob("spinsr-tf-worker-*"))
    # both return the whole history (the other worker from a copy of the chief's)
    (_, chief_out, _), (_, other_out, _) = runs["results"]
    chief_line, other_line = chief_out.splitlines()[-1], other_out.splitlines()[-1]
    assert chief_line.startswith(f"wrote {root / 'run'}/model.keras after 2 epochs (loss ")
    assert other_line.startswith("worker 1 (localhost:")
    assert " trained 2 epochs (loss " in other_line
    assert other_line.endswith(f"; the chief writes {root / 'run'}")
    assert chief_line.split("(loss ")[1] == other_line.split("(loss ")[1].split(";")[0]


@pytest.mark.slow  # ~80 s: a run until its first checkpoint, then the whole run again
def test_after_a_worker_dies_the_same_command_continues_the_run(runs, data, tmp_path):
    """Worker 1 is killed after the first checkpoint: the chief stops in one line (it does not
    wait for ever); the same command on both workers then ends with the single-process
    network."""
    out = tmp_path / "run"
    workers, _ = _start_workers(data, out, tmp_path, epochs=3)
    try:
        deadline = time.monotonic() + 180
        while not (out / "checkpoint.keras").exists() and time.monotonic() < deadline:
            assert workers[0].poll() is None, workers[0].communicate()[1][-3000:]
            time.sleep(0.05)
        workers[1].send_signal(signal.SIGKILL)
    finally:
        (rc, _, err), _ = _finish(workers, timeout=120)
    assert rc == 2 and err.count("\n") == 1 and "lost the cluster" in err, err
    assert 1 <= len(read_history(out)["epoch"]) < 3

    workers, _ = _start_workers(data, out, tmp_path, epochs=2)
    results = _finish(workers)
    for rc, _, err in results:
        assert rc == 0, err[-3000:]
    assert " trained 2 epochs " in results[1][1].splitlines()[-1]  # the chief's history
    loss, weights = _differences(runs["root"] / "none", out)
    assert loss < LOSS_RTOL and weights < WEIGHT_ATOL, (loss, weights)


@pytest.mark.parametrize("tf_config, message", [
    (None, "needs the environment variable TF_CONFIG"),
    ('{"cluster": {"worker": ["localhost:1"]}, "task": ', "not valid JSON"),
    ('{"cluster": {"worker": ["localhost:1"]}}', "with 'cluster' and 'task'"),
    ('{"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 2}}',
     "index 2 is not one of the cluster's 2 'worker' task(s)"),
    ('{"cluster": {"worker": ["a:1", "A:1"]}, "task": {"type": "worker", "index": 0}}',
     "names 'A:1' twice (worker 0 and worker 1)"),
])
def test_bad_tf_config_is_one_line_exit_2(data, tmp_path, capsys, monkeypatch, tf_config,
                                          message):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    rc = main(["train", "--data", str(data), "--out", str(tmp_path / "r"), "--epochs", "1",
               "--strategy", "multiworker", "--quiet", *ARGS])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "r").exists()


def test_a_worker_that_finds_no_peer_stops_in_one_line_after_the_timeout(data, tmp_path,
                                                                         capsys, monkeypatch):
    ports = _free_ports(2)
    monkeypatch.setenv("TF_CONFIG", _tf_config(ports, 0))
    start = time.monotonic()
    rc = main(["train", "--data", str(data), "--out", str(tmp_path / "r"), "--epochs", "1",
               "--strategy", "multiworker", "--connect-timeout", "1.5", "--quiet", *ARGS])
    elapsed = time.monotonic() - start
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1, err
    assert "within 1.5 s (--connect-timeout)" in err and f"worker 1 (localhost:{ports[1]})" in err
    assert 1.5 <= elapsed < 15
    assert not (tmp_path / "r").exists()


def _cluster(jobs, job, index):
    return read_cluster({"TF_CONFIG": json.dumps({"cluster": jobs,
                                                  "task": {"type": job, "index": index}})})


def test_read_cluster_orders_the_tasks_and_names_the_chief():
    workers = {"worker": ["h1:1", "h2:2"]}
    first, second = _cluster(workers, "worker", 0), _cluster(workers, "worker", 1)
    assert first.tasks == second.tasks == (Task("worker", 0, "h1:1"), Task("worker", 1, "h2:2"))
    assert first.is_chief and not second.is_chief  # worker 0 without a chief
    assert second.task == Task("worker", 1, "h2:2") and second.peers == (first.task,)
    assert first.fingerprint == second.fingerprint and first.spec() == workers

    jobs = {"worker": ["h2:2"], "chief": ["h1:1"]}
    chief, worker = _cluster(jobs, "chief", 0), _cluster(jobs, "worker", 0)
    assert chief.tasks[0] == Task("chief", 0, "h1:1") and chief.is_chief
    assert not worker.is_chief
    assert _cluster({"worker": ["[::1]:7"]}, "worker", 0).task.port == 7


@pytest.mark.parametrize("text, message", [
    ("", "needs the environment variable TF_CONFIG"),
    ("{", "TF_CONFIG is not valid JSON"),
    ("[]", "must be a JSON object with 'cluster' and 'task'"),
    ('{"task": {"type": "worker", "index": 0}}', "with 'cluster' and 'task'"),
    ('{"cluster": {}, "task": {"type": "worker", "index": 0}}', "must map jobs to lists"),
    ('{"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}}', "non-empty list"),
    ('{"cluster": {"worker": "h:1"}, "task": {"type": "worker", "index": 0}}', "non-empty list"),
    ('{"cluster": {"worker": ["h:1"], "ps": ["h:2"]}, "task": {"type": "worker", "index": 0}}',
     "job 'ps' has no part"),
    ('{"cluster": {"worker": ["h"]}, "task": {"type": "worker", "index": 0}}', "'host:port'"),
    ('{"cluster": {"worker": ["h:0"]}, "task": {"type": "worker", "index": 0}}', "1 to 65535"),
    ('{"cluster": {"worker": [":80"]}, "task": {"type": "worker", "index": 0}}', "'host:port'"),
    ('{"cluster": {"worker": [7]}, "task": {"type": "worker", "index": 0}}', "'host:port'"),
    ('{"cluster": {"chief": ["a:1", "b:1"]}, "task": {"type": "chief", "index": 0}}',
     "2 chiefs"),
    ('{"cluster": {"chief": ["h:1"], "worker": ["h:1"]}, "task": {"type": "worker", "index": 0}}',
     "names 'h:1' twice (chief 0 and worker 0)"),
    ('{"cluster": {"worker": ["h:1"]}, "task": "worker"}', "'task' must be an object"),
    ('{"cluster": {"worker": ["h:1"]}, "task": {"type": "chief", "index": 0}}',
     "task type 'chief' is not a job of the cluster ('worker')"),
    ('{"cluster": {"worker": ["h:1"]}, "task": {"type": "worker", "index": 1}}',
     "task index 1 is not one of the cluster's 1 'worker' task(s) (0 to 0)"),
    ('{"cluster": {"worker": ["h:1"]}, "task": {"type": "worker", "index": "0"}}',
     "task index '0'"),
    ('{"cluster": {"worker": ["h:1"]}, "task": {"type": "worker", "index": true}}',
     "task index True"),
])
def test_read_cluster_refuses_in_one_line(text, message):
    with pytest.raises(UserError) as err:
        read_cluster({"TF_CONFIG": text})
    assert message in str(err.value) and "\n" not in str(err.value)


def _meet_all(clusters, timeout=10.0):
    """:func:`meet` of each cluster in its own thread; their errors (None where it met)."""
    errors = [None] * len(clusters)

    def one(i):
        try:
            meet(clusters[i], timeout)
        except UserError as exc:
            errors[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(clusters))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout + 5)
    return errors


def test_the_tasks_of_a_cluster_meet_whatever_order_they_start_in():
    ports = _free_ports(3)
    tasks = tuple(Task("worker", i, f"localhost:{p}") for i, p in enumerate(ports))
    assert _meet_all([Cluster(tasks, t) for t in reversed(tasks)]) == [None] * 3
    for port in ports:  # every port is free again, for TensorFlow's server
        socket.create_server(("", port)).close()


def test_tasks_of_different_clusters_do_not_meet():
    ports = _free_ports(3)
    two = tuple(Task("worker", i, f"localhost:{p}") for i, p in enumerate(ports[:2]))
    three = (*two, Task("worker", 2, f"localhost:{ports[2]}"))
    errors = _meet_all([Cluster(two, two[0]), Cluster(three, three[1])], timeout=3)
    assert all("runs with another TF_CONFIG cluster" in str(e) for e in errors), errors



def test_two_processes_claiming_one_task_do_not_meet():
    """Possible across hosts only (on one host the second cannot listen): a process that
    answers at worker 1's address as worker 0."""
    ports = _free_ports(2)
    tasks = tuple(Task("worker", i, f"localhost:{p}") for i, p in enumerate(ports))
    cluster = Cluster(tasks, tasks[0])
    with socket.create_server(("", ports[1])) as server:
        def answer_as_worker_0():
            conn, _ = server.accept()
            with conn:
                conn.recv(256)
                conn.sendall(f"spinsr-tf-cluster {cluster.fingerprint} worker:0\n".encode())

        threading.Thread(target=answer_as_worker_0, daemon=True).start()
        with pytest.raises(UserError, match=f"the process at localhost:{ports[1]} runs as "
                                            "worker 0, not as worker 1"):
            meet(cluster, timeout=3)


def test_a_task_whose_port_is_taken_is_refused():
    with socket.create_server(("", 0)) as taken:
        port = taken.getsockname()[1]
        tasks = (Task("worker", 0, f"localhost:{port}"), Task("worker", 1, "localhost:1"))
        with pytest.raises(UserError, match=f"cannot listen on port {port} of this task"):
            meet(Cluster(tasks, tasks[0]), timeout=1)


def test_multiworker_needs_the_tensorflow_backend(monkeypatch):
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    with pytest.raises(UserError, match="needs the TensorFlow backend, not 'jax'.*not "
                                        "implemented"):
        with distribute.strategy_scope("multiworker"):
            pass


@pytest.mark.slow  # ~40 s: two worker processes
def test_two_workers_train_on_sizes_that_do_not_split_evenly(data, tmp_path):
    """14 maps: 13 for training (a last batch of 1 of the global 4) and 1 for validation, which
    two workers cannot share evenly; the batches are padded (``training._even``), so no
    collective meets tensors of different shapes and both workers finish the run."""
    workers, _ = _start_workers(data, tmp_path / "run", tmp_path, epochs=2,
                                extra=("--max-samples", "14"))
    for rc, _, err in _finish(workers):
        assert rc == 0, err[-3000:]
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (config["run"]["n_train"], config["run"]["n_val"]) == (13, 1)
    history = read_history(tmp_path / "run")
    assert history["epoch"] == [0, 1] and len(history["val_sr_mse"]) == 2
    assert (tmp_path / "run" / "model.keras").is_file()


def test_uneven_batches_are_padded_with_their_own_samples():
    from spinsr_tf.nn.training import _even

    idx = np.array([7, 3, 5])
    assert _even(idx, 1) is idx and _even(idx, 3) is idx
    np.testing.assert_array_equal(_even(idx, 2), [7, 3, 5, 7])
    np.testing.assert_array_equal(_even(idx[:1], 4), [7, 7, 7, 7])
