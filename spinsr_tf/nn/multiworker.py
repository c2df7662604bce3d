"""Training on several machines: the ``TF_CONFIG`` cluster, meeting it, and what only the chief does.

Every task reads the same batches (a pure function of seed, epoch and step) and ``tf.distribute``
hands each replica of each worker its slice of the global batch, so one global batch trains the
same network on one process or many (:mod:`spinsr_tf.nn.strategy`). Before TensorFlow's server
starts, the tasks meet over plain sockets (:func:`meet`): TensorFlow itself waits without end
for a task that never comes. Then the workers decide together whether and where to resume
(:func:`together`), so that none starts alone or from another checkpoint, and only the chief
writes the run folder (:func:`writes_files`). Keras' own ``fit`` trains, through a subclass of
the strategy whose ``reduce`` takes what Keras 3.15 hands it (:func:`_multi_worker_strategy`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import re
import socket
import threading
import time

import keras
import numpy as np

from spinsr_tf.base.checks import is_int
from spinsr_tf.base.errors import UserError

#: Seconds a multi-worker task waits for the other tasks of its cluster (``--connect-timeout``).
CONNECT_TIMEOUT = 120.0
#: The ``TF_CONFIG`` jobs that train, in TensorFlow's order (no ``ps``, no ``evaluator``).
JOBS = ("chief", "worker")


@dataclasses.dataclass(frozen=True)
class Task:
    """One task of a cluster: its job (``"chief"`` or ``"worker"``), index and ``host:port``."""

    job: str
    index: int
    address: str

    @property
    def key(self) -> str:
        return f"{self.job}:{self.index}"

    @property
    def port(self) -> int:
        return int(self.address.rpartition(":")[2])

    def __str__(self) -> str:
        return f"{self.job} {self.index} ({self.address})"


@dataclasses.dataclass(frozen=True)
class Cluster:
    """The training tasks of ``TF_CONFIG`` (the chief first, then the workers) and this
    process's own."""

    tasks: tuple[Task, ...]
    task: Task

    @property
    def is_chief(self) -> bool:
        """Whether this task writes the run: the ``chief``, or worker 0 when there is none."""
        return self.task == self.tasks[0]

    @property
    def peers(self) -> tuple[Task, ...]:
        return tuple(t for t in self.tasks if t != self.task)

    def spec(self) -> dict[str, list[str]]:
        """``{job: [host:port, ...]}``, what ``tf.train.ClusterSpec`` takes."""
        jobs: dict[str, list[str]] = {}
        for t in self.tasks:
            jobs.setdefault(t.job, []).append(t.address)
        return jobs

    @property
    def fingerprint(self) -> str:
        """A hash of the cluster, not of the task: the same on every task of one cluster."""
        return hashlib.sha256(json.dumps(self.spec(), sort_keys=True).encode()).hexdigest()[:16]


_TF_CONFIG_EXAMPLE = ('{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                      '"task": {"type": "worker", "index": 0}}')


def read_cluster(environ) -> Cluster:
    """The cluster of ``environ["TF_CONFIG"]`` and this task's place in it, checked.

    ``TF_CONFIG`` is TensorFlow's JSON, e.g. ``{"cluster": {"worker": ["host1:12345",
    "host2:12345"]}, "task": {"type": "worker", "index": 0}}``, with at most one ``"chief"``
    job besides. Every mistake is a one-line UserError here: TensorFlow would wait without end
    or fail with a traceback on most of them.
    """
    text = environ.get("TF_CONFIG") or ""
    if not text.strip():
        raise UserError("strategy 'multiworker' needs the environment variable TF_CONFIG on "
                        f"every worker, e.g. {_TF_CONFIG_EXAMPLE} (docs/scaling.md)")
    try:
        config = json.loads(text)
    except ValueError as exc:
        raise UserError(f"TF_CONFIG is not valid JSON: {exc}") from None
    if not isinstance(config, dict) or "cluster" not in config or "task" not in config:
        raise UserError("TF_CONFIG must be a JSON object with 'cluster' and 'task', e.g. "
                        f"{_TF_CONFIG_EXAMPLE}")
    jobs, task = config["cluster"], config["task"]
    if not isinstance(jobs, dict) or not jobs:
        raise UserError(f"TF_CONFIG 'cluster' must map jobs to lists of 'host:port', got {jobs!r}")
    for job in jobs:
        if job not in JOBS:
            raise UserError(f"TF_CONFIG job {job!r} has no part in strategy 'multiworker': "
                            "its cluster has 'worker' tasks and at most one 'chief'")
    tasks, named = [], {}
    for job in (j for j in JOBS if j in jobs):
        addresses = jobs[job]
        if not isinstance(addresses, list) or not addresses:
            raise UserError(f"TF_CONFIG cluster {job!r} must be a non-empty list of 'host:port', "
                            f"got {addresses!r}")
        if job == "chief" and len(addresses) > 1:
            raise UserError(f"TF_CONFIG names {len(addresses)} chiefs; a cluster has at most one")
        for index, address in enumerate(addresses):
            host, _, port = address.rpartition(":") if isinstance(address, str) else ("", "", "")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise UserError(f"TF_CONFIG cluster {job!r} entry {index} must be 'host:port' "
                                f"with a port from 1 to 65535, got {address!r}")
            if address.lower() in named:
                raise UserError(f"TF_CONFIG names {address!r} twice ({named[address.lower()]} and "
                                f"{job} {index}): every task needs its own host:port")
            named[address.lower()] = f"{job} {index}"
            tasks.append(Task(job, index, address))
    if not isinstance(task, dict):
        raise UserError(f"TF_CONFIG 'task' must be an object with 'type' and 'index', got {task!r}")
    job, index = task.get("type"), task.get("index")
    if job not in jobs:
        raise UserError(f"TF_CONFIG task type {job!r} is not a job of the cluster "
                        f"({', '.join(map(repr, jobs))})")
    mine = [t for t in tasks if t.job == job]
    if not is_int(index) or not 0 <= index < len(mine):
        raise UserError(f"TF_CONFIG task index {index!r} is not one of the cluster's {len(mine)} "
                        f"{job!r} task(s) (0 to {len(mine) - 1})")
    return Cluster(tuple(tasks), mine[index])


#: First word of the greetings :func:`meet` exchanges, and the greeter's acknowledgement.
_GREETING, _ACK = "spinsr-tf-cluster", "met"
#: Seconds to wait for a peer's port to accept, and for a line of the greeting.
_CONNECT_WAIT, _LINE_WAIT = 2.0, 10.0


def meet(cluster: Cluster, timeout: float = CONNECT_TIMEOUT) -> None:
    """Return once this task has reached every other task of ``cluster`` and been reached by
    each; a one-line UserError after ``timeout`` seconds otherwise.

    To be called before TensorFlow's server takes this task's port: once started, TensorFlow
    waits without end for a task that never comes, and no option bounds that wait. Each task
    listens on its own port and greets every other task with the cluster's fingerprint; the
    greeted task answers likewise, and the greeter acknowledges the answer. A task stops
    listening only once every other task has greeted it and had its answer, so no task needs
    the port any more when TensorFlow takes it over. Tasks started with different clusters,
    or two processes claiming one task, are refused here too.
    """
    if not cluster.peers:
        return
    server = _listen(cluster.task)
    greeted_by: set[str] = set()
    stop = threading.Event()
    answering = threading.Thread(target=_answer_greetings, daemon=True,
                                 args=(server, cluster, greeted_by, stop))
    answering.start()
    try:
        deadline = time.monotonic() + timeout
        unreached = list(cluster.peers)
        while True:
            unreached = [t for t in unreached if not _greet(t, cluster, deadline)]
            missing = [t for t in cluster.peers if t in unreached or t.key not in greeted_by]
            if not missing:
                return
            if time.monotonic() >= deadline:
                raise UserError(f"no answer within {timeout:g} s (--connect-timeout) from "
                                f"{', '.join(map(str, missing))}: start the same command on "
                                "every task of TF_CONFIG, and check that their ports are open")
            time.sleep(0.2)
    finally:
        stop.set()
        answering.join()
        server.close()


def _listen(task: Task) -> socket.socket:
    try:
        if socket.has_dualstack_ipv6():
            return socket.create_server(("", task.port), family=socket.AF_INET6,
                                        dualstack_ipv6=True)
        return socket.create_server(("", task.port))
    except OSError as exc:
        raise UserError(f"cannot listen on port {task.port} of this task, {task} in TF_CONFIG: "
                        f"{exc.strerror or exc}") from None


def _greeting(cluster: Cluster) -> bytes:
    return f"{_GREETING} {cluster.fingerprint} {cluster.task.key}\n".encode()


def _read_line(conn: socket.socket) -> list[str]:
    """The words of one short line from ``conn`` (what a greeting holds)."""
    data = b""
    while not data.endswith(b"\n") and len(data) < 256:
        chunk = conn.recv(256)
        if not chunk:
            break
        data += chunk
    return data.decode("ascii", "replace").split()


def _greet(task: Task, cluster: Cluster, deadline: float) -> bool:
    """Whether ``task`` answered this task's greeting (False: not, or not yet, listening)."""
    host = task.address.rpartition(":")[0].strip("[]")
    wait = min(_CONNECT_WAIT, max(0.1, deadline - time.monotonic()))
    try:
        with socket.create_connection((host, task.port), timeout=wait) as conn:
            conn.settimeout(_LINE_WAIT)
            conn.sendall(_greeting(cluster))
            answer = _read_line(conn)
            if len(answer) != 3 or answer[0] != _GREETING:
                return False
            if answer[1] != cluster.fingerprint:
                raise UserError(f"{task} runs with another TF_CONFIG cluster: every task needs "
                                "the same 'cluster' (only 'task' differs)")
            if answer[2] != task.key:
                raise UserError(f"the process at {task.address} runs as "
                                f"{answer[2].replace(':', ' ')}, not as {task.job} {task.index}: "
                                "every task needs its own TF_CONFIG 'task'")
            conn.sendall(f"{_ACK}\n".encode())
    except OSError:
        return False
    return True


def _answer_greetings(server: socket.socket, cluster: Cluster, greeted_by: set,
                      stop: threading.Event) -> None:
    """Answer the greetings of the other tasks until ``stop``; record who greeted."""
    server.settimeout(0.2)
    while not stop.is_set():
        try:
            conn, _ = server.accept()
        except TimeoutError:
            continue
        except OSError:
            return
        with conn:
            try:
                conn.settimeout(_LINE_WAIT)
                greeting = _read_line(conn)
                if len(greeting) != 3 or greeting[0] != _GREETING:
                    continue
                conn.sendall(_greeting(cluster))
                acknowledged = _read_line(conn) == [_ACK]
            except OSError:
                continue
            if acknowledged and greeting[1] == cluster.fingerprint:
                greeted_by.add(greeting[2])


#: The multi-worker strategy of this process: TensorFlow starts its server once per process.
_JOINED: dict[Cluster, object] = {}


@contextlib.contextmanager
def multi_worker_scope(cluster: Cluster, connect_timeout: float = CONNECT_TIMEOUT):
    """Join ``cluster`` (once per process) and enter its strategy; yields the replica count."""
    import tensorflow as tf

    if cluster not in _JOINED:
        if _JOINED:
            raise UserError("this process has joined another TF_CONFIG cluster already; start "
                            "a new process for this one")
        meet(cluster, connect_timeout)
        try:
            _JOINED[cluster] = _multi_worker_strategy(cluster)
        except tf.errors.OpError as exc:
            raise UserError(f"cannot join the cluster of TF_CONFIG as {cluster.task}: "
                            f"{_reason(exc)}") from None
    tf_strategy = _JOINED[cluster]
    try:
        with tf_strategy.scope():
            yield int(tf_strategy.num_replicas_in_sync)
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError,
            tf.errors.AbortedError, tf.errors.CancelledError) as exc:
        raise UserError(f"lost the cluster of TF_CONFIG ({_reason(exc)}): run the same "
                        "command again on every task to continue from the last checkpoint"
                        ) from None


def _reason(exc: BaseException) -> str:
    """The first line of a TensorFlow error, without the op and abort prefixes it repeats."""
    text = re.sub(r"\{\{[^}]*\}\}\s*", "", getattr(exc, "message", None) or str(exc))
    text = re.sub(r"(Collective ops is aborted by: )+", "", text)
    return (text.strip().splitlines() or [type(exc).__name__])[0].rstrip(": ")[:160]


def _multi_worker_strategy(cluster: Cluster):
    import tensorflow as tf

    class MultiWorker(tf.distribute.MultiWorkerMirroredStrategy):
        """MultiWorkerMirroredStrategy whose ``reduce`` takes what Keras' ``fit`` hands it.

        Keras 3.15's TensorFlow trainer reduces a whole nested batch at once (to learn its
        shapes before the first step) and asks for the ``axis=0`` mean of scalar metrics;
        MirroredStrategy accepts both, MultiWorkerMirroredStrategy across workers neither, so
        ``fit`` failed before its first step. Here each leaf is reduced alone, and the mean of
        a scalar is over the replicas (``axis=None``), as MirroredStrategy computes it.
        """

        def reduce(self, reduce_op, value, axis):
            def leaf(v):
                scalar = (axis is not None
                          and self.experimental_local_results(v)[0].shape.rank == 0)
                return super(MultiWorker, self).reduce(reduce_op, v, None if scalar else axis)

            return tf.nest.map_structure(leaf, value)

    resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
        tf.train.ClusterSpec(cluster.spec()), task_type=cluster.task.job,
        task_id=cluster.task.index, rpc_layer="grpc")
    strategy = MultiWorker(cluster_resolver=resolver)
    strategy.cluster = cluster
    return strategy


def _cluster_in_scope() -> Cluster | None:
    """The cluster of the multi-worker strategy in scope, or None."""
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    return getattr(tf.distribute.get_strategy(), "cluster", None)


def writes_files() -> bool:
    """Whether this process writes the run folder: not the workers of a multi-worker strategy
    in scope other than the chief (they share the folder)."""
    cluster = _cluster_in_scope()
    return cluster is None or cluster.is_chief


def together(check, disagreement: str, same=None):
    """``check()`` on every worker of the multi-worker strategy in scope, as one decision.

    For what must be decided alike before the workers exchange tensors, where a worker giving
    up alone would leave the others waiting: a UserError of ``check`` on any worker is raised on
    all, and ``UserError(disagreement)`` if ``check()`` or ``same`` (JSON-able) differs between
    workers. Without such a strategy: ``check()``.
    """
    cluster = _cluster_in_scope()
    if cluster is None:
        return check()
    import tensorflow as tf

    try:
        result, error = check(), None
    except UserError as exc:
        result, error = None, exc
    digest = hashlib.sha256(json.dumps([result, same], sort_keys=True).encode()).hexdigest()
    # float64 holds the 52-bit digest exactly
    mine = tf.constant([[cluster.tasks.index(cluster.task), error is not None,
                         int(digest[:13], 16)]], dtype=tf.float64)
    strategy = tf.distribute.get_strategy()
    rows = strategy.gather(strategy.experimental_distribute_values_from_function(
        lambda _: mine), axis=0).numpy().astype(np.int64)
    if error is not None:
        raise error
    refused = [cluster.tasks[int(position)] for position, failed, _ in rows if failed]
    if refused:
        raise UserError(f"{refused[0]} refused to start (its own error says why)")
    if len({int(d) for _, _, d in rows}) > 1:
        raise UserError(disagreement)
    return result
