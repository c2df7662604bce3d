"""Data-parallel training: which distribution strategy, and what it changes.

``strategy`` names, for :func:`spinsr_tf.nn.training.train` and ``spinsr-tf train --strategy``:

- ``"none"``: Keras' default device placement (the paper's setting).
- ``"mirrored"``: one replica per local accelerator (all GPUs, else every logical CPU device).
  TensorFlow backend: ``tf.distribute.MirroredStrategy``; JAX backend:
  ``keras.distribution.DataParallel`` over ``keras.distribution.list_devices()``.
- ``"multiworker"``: ``tf.distribute.MultiWorkerMirroredStrategy`` over the cluster of the
  ``TF_CONFIG`` environment variable (:func:`read_cluster`), every worker running the same
  command with the same run folder on a shared filesystem; only the chief writes it
  (:func:`~spinsr_tf.nn.multiworker.writes_files`). TensorFlow backend only: under JAX multi-host training needs
  ``jax.distributed.initialize`` and a ``keras.distribution`` over all hosts' devices, which is
  not implemented.

The batch size is the GLOBAL batch: each step splits it into ``batch_size / replicas`` samples
per replica and applies the mean gradient over the whole batch, so the same ``batch_size``,
learning rate and seed train the same network whatever the number of replicas.

BatchNormalization: in training mode a BN layer normalises with the mean and variance of the
batch it sees. Under ``tf.distribute`` that is the replica's sub-batch unless the layer is
``synchronized``; the statistics of a few samples are noisier than those of the global batch
and the result would depend on the replica count. So under a TensorFlow strategy with more than
one replica every BN layer is switched to ``synchronized=True`` (an all-reduce of the sums per
layer and step: cheap next to the convolutions), which makes a step equal to the single-device
step with the same global batch up to float rounding. JAX ``DataParallel`` shards one global
computation, so its batch statistics are global without any switch. Saved ``.keras`` files
always hold ``synchronized=False`` (:func:`paper_batch_norm`): the paper's architecture,
loadable under any backend (Keras refuses ``synchronized=True`` outside TensorFlow).

Multi-worker: every task reads the same batches (a pure function of seed, epoch and step) and
``tf.distribute`` hands each replica of each worker its slice of the global batch, so the
semantics above hold across machines (the cluster itself: :mod:`spinsr_tf.nn.multiworker`).
"""

from __future__ import annotations

import contextlib
import os

import keras

from spinsr_tf.base.checks import check_real
from spinsr_tf.base.errors import UserError
from spinsr_tf.nn.multiworker import CONNECT_TIMEOUT, multi_worker_scope, read_cluster

#: Accepted ``strategy`` values.
STRATEGIES = ("none", "mirrored", "multiworker")


def check_strategy(strategy) -> str:
    """Return ``strategy`` if it is one of :data:`STRATEGIES`, else raise a one-line UserError."""
    if not isinstance(strategy, str) or strategy not in STRATEGIES:
        raise UserError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    return strategy


def _mirrored():
    import tensorflow as tf

    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    return tf.distribute.MirroredStrategy([d.name for d in devices])


@contextlib.contextmanager
def strategy_scope(strategy: str, connect_timeout: float = CONNECT_TIMEOUT):
    """Context in which to build, load, compile and fit; yields the number of replicas.

    ``"none"`` changes nothing (1 replica). Everything that creates variables (building or
    loading the model, compiling, the optimizer's slots) must happen inside.
    ``connect_timeout``: seconds a ``"multiworker"`` task waits for the others (:func:`meet`).
    """
    strategy = check_strategy(strategy)
    if strategy == "none":
        yield 1
        return
    backend = keras.backend.backend()
    if strategy == "multiworker":
        if backend != "tensorflow":
            raise UserError(f"strategy 'multiworker' needs the TensorFlow backend, not "
                            f"{backend!r}: multi-host training under JAX (jax.distributed."
                            "initialize and a keras.distribution over every host's devices) is "
                            "not implemented")
        connect_timeout = check_real("connect_timeout", connect_timeout, 0, strict=True)
        with multi_worker_scope(read_cluster(os.environ), connect_timeout) as replicas:
            yield replicas
    elif backend == "tensorflow":
        tf_strategy = _mirrored()
        with tf_strategy.scope():
            yield int(tf_strategy.num_replicas_in_sync)
    elif backend == "jax":
        devices = keras.distribution.list_devices()
        data_parallel = keras.distribution.DataParallel(devices=devices)
        with data_parallel.scope():
            yield len(devices)
    else:
        raise UserError(f"strategy {strategy!r} needs the TensorFlow or JAX backend, "
                        f"not {backend!r}")


def needs_batch_norm_sync(replicas: int) -> bool:
    """True where BN statistics would otherwise be per replica (TensorFlow, > 1 replica)."""
    return keras.backend.backend() == "tensorflow" and replicas > 1


def supports_xla(replicas: int) -> bool:
    """False under a TensorFlow strategy with several replicas: Keras' XLA-compiled step then
    fails to reach variables mirrored on another device (seen with logical CPU devices)."""
    return not (keras.backend.backend() == "tensorflow" and replicas > 1)


def set_batch_norm_sync(model: keras.Model, synchronized: bool) -> None:
    """Set ``synchronized`` on every BatchNormalization layer of ``model`` (before its training
    step is traced; the flag only changes training-mode statistics under a strategy)."""
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.synchronized = bool(synchronized)


@contextlib.contextmanager
def paper_batch_norm(model: keras.Model):
    """Within the block every BN layer reads ``synchronized=False`` (for saving); restored
    afterwards. The traced training step keeps what it was traced with."""
    layers = [layer for layer in model._flatten_layers(include_self=False, recursive=True)
              if isinstance(layer, keras.layers.BatchNormalization)]
    before = [layer.synchronized for layer in layers]
    try:
        for layer in layers:
            layer.synchronized = False
        yield model
    finally:
        for layer, value in zip(layers, before):
            layer.synchronized = value


def check_batch_size(batch_size: int, replicas: int, n_train: int, n_val: int) -> None:
    """The global batch must split evenly over the replicas (and, under JAX, so must the
    smaller last batch of an epoch: a sharded array needs equal shards)."""
    if batch_size % replicas:
        raise UserError(f"batch_size (the global batch) must be a multiple of the {replicas} "
                        f"replicas, got {batch_size}")
    if keras.backend.backend() == "jax" and replicas > 1:
        for what, n in (("training", n_train), ("validation", n_val)):
            if n % batch_size % replicas:
                raise UserError(f"batch_size {batch_size} leaves a last {what} batch of "
                                f"{n % batch_size} samples, not a multiple of the {replicas} "
                                "replicas (JAX); choose another batch_size or max_samples")
