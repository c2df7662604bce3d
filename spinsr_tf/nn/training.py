"""Train the SR network from LR maps alone, resumably, streaming the data from HDF5.

A run lives in one folder::

    RUN_DIR/config.json       the TrainConfig (resolved against the data) and the run's facts
    RUN_DIR/history.csv       one row per epoch: loss, each term's loss, val_*, val_sr_mse
    RUN_DIR/logs/             TensorBoard event files (if the tensorboard package is installed)
    RUN_DIR/checkpoint.keras  the training graph + optimizer state after the last finished epoch
    RUN_DIR/model.keras       the final SR network

The loss is the weighted sum of the configuration's loss terms (:mod:`spinsr_tf.nn.losses`),
each an output of one training graph built around the SR network. HR maps, where the data file
has them, are degraded into the LR inputs and otherwise feed only the monitored ``val_sr_mse``;
only the supervised oracle's term (not part of the method) trains on them. A teacher network's
SR maps (``teacher_data``) are the target of the distillation term alone.

Batches are a pure function of ``(seed, epoch, step)`` and the checkpoint holds the optimizer
state, whose step count *is* the number of finished epochs, and the state of every random draw of
the loss terms (:class:`~spinsr_tf.nn.symmetry.SavedSeeds`), in one file, so it cannot disagree
with itself: a run interrupted and resumed ends with the same weights, bit for bit, as one that
ran through. Under the command line's signal handler (:mod:`spinsr_tf.base.interrupts`) a run
stops between batches or after an epoch's checkpoint, never inside a step or a save.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import importlib.util
import json
import math
import shutil
import tempfile
import time
import zipfile
from pathlib import Path

import keras
import numpy as np

from spinsr_tf._version import __version__
from spinsr_tf.base.checks import describe_mismatch
from spinsr_tf.base.console import bars_fit
from spinsr_tf.base import interrupts
from spinsr_tf.base.errors import UserError
from spinsr_tf.base.files import (atomic_path, remove_stale_temporaries,
                                  unchanged_unless_committed, write_text_atomic)
from spinsr_tf.data.stream import BatchPlan, TrainingData, open_training_data, split_indices
from spinsr_tf.nn import multiworker
from spinsr_tf.nn import strategy as distribute
from spinsr_tf.nn.config import RESUMABLE, TrainConfig
from spinsr_tf.nn.layers import GaussianDownsample, TapsDownsample
from spinsr_tf.nn.losses import Graph, PhysicsPrior
from spinsr_tf.data.degradation_generator import condition_vector
from spinsr_tf.nn.network import (CONDITION_INPUT, LR_OUTPUT, SR_OUTPUT, build_sr_model,
                                  copy_weights, is_conditioned, load_sr_model, sr_submodel)

CONFIG, HISTORY, LOGS = "config.json", "history.csv", "logs"
CHECKPOINT, MODEL = "checkpoint.keras", "model.keras"


class _Batches(keras.utils.PyDataset):
    """Batches of ``plan`` for epochs ``first_epoch`` .. ``first_epoch + epochs - 1``, in order.

    Item ``i`` is batch ``i mod steps`` of epoch ``first_epoch + i div steps``: the content of
    every batch is fixed in advance, whatever Keras prefetches and whenever it asks. Targets are
    keyed by output name, one per loss term (with a bare array the JAX trainer fails to match
    it to the outputs once a smaller last batch makes it retrace). With ``multiple`` > 1 every
    batch is padded to a multiple of it (:func:`_even`).
    """

    def __init__(self, data: TrainingData, plan: BatchPlan, first_epoch: int, epochs: int,
                 terms, multiple: int = 1, degradations=None, stream: int = 0,
                 conditioned: bool = False):
        super().__init__(workers=1, use_multiprocessing=False)
        self.data, self.plan, self.terms = data, plan, tuple(terms)
        self.multiple = int(multiple)
        self.first_epoch, self.epochs = first_epoch, epochs
        self.needs_hr = any(t.needs_hr for t in self.terms)
        self.needs_teacher = any(t.needs_teacher for t in self.terms)
        self.degradations, self.stream = degradations, int(stream)
        self.conditioned = bool(conditioned)

    @property
    def num_batches(self) -> int:
        return self.plan.steps_per_epoch * self.epochs

    def __len__(self) -> int:
        return self.num_batches

    def __getitem__(self, i: int):
        epoch, step = divmod(int(i), self.plan.steps_per_epoch)
        idx = _even(self.plan.batch(self.first_epoch + epoch, step), self.multiple)
        hr = self.data.hr(idx) if self.needs_hr else None
        teacher = self.data.teacher(idx) if self.needs_teacher else None
        if self.degradations is not None:   # blind: this batch's own degradation
            lr, taps, draw = self.data.drawn_lr(idx, self.degradations, self.plan.seed,
                                                self.first_epoch + epoch, step, self.stream)
            x = {"lr_input": lr, "taps": taps}
            if self.conditioned:
                x[CONDITION_INPUT] = np.tile(condition_vector(draw.degradation), (len(lr), 1))
            return x, {t.name: t.target(lr, hr, teacher) for t in self.terms}
        lr = self.data.lr(idx)
        return lr, {t.name: t.target(lr, hr, teacher) for t in self.terms}


def _even(idx: np.ndarray, multiple: int) -> np.ndarray:
    """``idx`` repeated cyclically up to a multiple of ``multiple`` samples.

    The workers of a multi-worker strategy each take an equal share of a global batch, and a
    batch that does not split evenly (the smaller last batch of an epoch, a single validation
    map) hands them tensors of different shapes, which their collective operations cannot join.
    Padding with the batch's own first samples keeps every sample and the order; only those
    few count twice in that one step.
    """
    if multiple <= 1 or len(idx) % multiple == 0:
        return idx
    return np.resize(idx, -(-len(idx) // multiple) * multiple)


class SRValidation(keras.callbacks.Callback):
    """Adds ``val_sr_mse`` to the epoch logs: the SR map against the HR ground truth.

    ``val_sr_mse`` = mean over validation maps of the paper's MSE (squared distance summed over
    the C components, averaged over HR sites; :func:`spinsr_tf.evaluation.metrics.mse`), with the network
    in inference mode. It is a monitor only: nothing here touches gradients. Put this callback
    before ``CSVLogger``/``TensorBoard`` so that they record the value.
    """

    def __init__(self, network: keras.Model, data: TrainingData, indices, batch_size: int,
                 replicas: int = 1):
        super().__init__()
        self.network = network
        self.data, self.indices, self.batch_size = data, np.asarray(indices), int(batch_size)
        self.replicas = int(replicas)
        self._sr = None

    def _inputs(self, idx):
        """The LR maps of ``idx`` (a conditioned network is also told their degradation)."""
        lr = self.data.lr(idx)
        if not is_conditioned(self.network):
            return lr
        return {"lr_input": lr, CONDITION_INPUT: np.tile(
            condition_vector(self.data.degradation), (len(lr), 1))}

    def sr_mse(self) -> float:
        if self._sr is None:
            self._sr = sr_submodel(self.network)
        total = 0.0
        for start in range(0, len(self.indices), self.batch_size):
            idx = self.indices[start:start + self.batch_size]
            if self.replicas > 1:  # predict_on_batch would hand every replica the whole batch
                padded = _even(idx, self.replicas)      # equal shares (the extra ones dropped)
                sr = self._sr.predict(self._inputs(padded), batch_size=len(padded),
                                      verbose=0)[:len(idx)]
            else:
                sr = self._sr.predict_on_batch(self._inputs(idx))
            sr = np.asarray(sr, dtype=np.float64)
            total += float(np.square(sr - self.data.hr(idx)).sum(axis=-1).mean(axis=(1, 2)).sum())
        return total / len(self.indices)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["val_sr_mse"] = self.sr_mse()


class EpochLines(keras.callbacks.Callback):
    """Progress for a log file: one short line at the first epoch, every ``every`` epochs and
    the last (about ten per run), instead of Keras's progress bar, whose redraws and colour
    codes fill a file. ``every`` defaults to a tenth of the epochs."""

    def __init__(self, epochs: int, every: int | None = None, print_fn=print):
        super().__init__()
        self.epochs = int(epochs)
        self.every = max(1, math.ceil(self.epochs / 10)) if every is None else int(every)
        self.print_fn = print_fn
        self._start, self._first = time.monotonic(), True

    def on_train_begin(self, logs=None):
        self._start, self._first = time.monotonic(), True

    def on_epoch_end(self, epoch, logs=None):
        done, first = epoch + 1, self._first
        self._first = False
        if not first and done % self.every and done != self.epochs:
            return
        values = ", ".join(f"{k} {v:.3g}" for k, v in (logs or {}).items()
                           if k in ("loss", "val_loss", "val_sr_mse")
                           and isinstance(v, (int, float)))
        elapsed = time.monotonic() - self._start
        self.print_fn(f"    epoch {done}/{self.epochs}: {values} ({elapsed:.0f} s)", flush=True)


class _StopAtSignal(keras.callbacks.Callback):
    """The safe points of a run for :mod:`spinsr_tf.base.interrupts`: after a training batch,
    and after an epoch's checkpoint (so a signal during an epoch's last batch or its validation
    still lets that epoch be saved). Put it last."""

    def __init__(self, steps_per_epoch: int):
        super().__init__()
        self.steps_per_epoch = int(steps_per_epoch)

    def on_train_batch_end(self, batch, logs=None):
        if batch + 1 < self.steps_per_epoch:
            interrupts.check()

    def on_epoch_end(self, epoch, logs=None):
        interrupts.check()


class _Checkpoint(keras.callbacks.Callback):
    """Saves the training graph and optimizer after every epoch, as one file (temporary name,
    then ``os.replace``): the optimizer's step count says how many epochs it holds."""

    def __init__(self, run_dir: Path, on_saved=None):
        super().__init__()
        self.run_dir, self.on_saved = run_dir, on_saved

    def on_epoch_end(self, epoch, logs=None):
        save_model_atomic(self.model, self.run_dir / CHECKPOINT)
        if self.on_saved is not None:
            self.on_saved()


def save_model_atomic(model: keras.Model, path: Path) -> None:
    """``model.save(path)`` through a temporary ``.keras`` file in the same folder."""
    # files hold the paper's BN, any strategy
    with atomic_path(path) as tmp, distribute.paper_batch_norm(model):
        model.save(tmp)


def _write_json(path: Path, obj) -> None:
    write_text_atomic(path, json.dumps(obj, indent=1, sort_keys=True) + "\n")


def read_history(run_dir) -> dict[str, list]:
    """``RUN_DIR/history.csv`` as ``{column: [value per epoch]}`` (``epoch`` as int; missing
    values as NaN; columns with no value at all left out)."""
    path = Path(run_dir) / HISTORY
    if not path.exists():
        return {}
    try:
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
        if not rows:
            return {}
        history = {}
        for key in rows[0]:
            values = [r[key] for r in rows]
            if key != "epoch" and all(v in ("", "NA") for v in values):
                continue  # CSVLogger's placeholder val_* columns of a run without validation
            history[key] = [int(v) if key == "epoch" else
                            (math.nan if v in ("", "NA") else float(v)) for v in values]
    except (OSError, UnicodeDecodeError, csv.Error, ValueError, TypeError, KeyError) as exc:
        raise UserError(f"cannot read the run's history {str(path)!r}: it is damaged "
                        f"({' '.join(str(exc).split())[:80] or type(exc).__name__})") from None
    return history


def _truncate_history(run_dir: Path, epochs: int) -> None:
    """Keep the header and the rows of epochs ``< epochs`` (a run killed between the CSV row
    and the checkpoint of an epoch would otherwise list that epoch twice)."""
    path = run_dir / HISTORY
    if not path.exists():
        return
    try:
        with open(path, newline="") as fh:
            lines = fh.read().splitlines(keepends=True)
        if not lines:
            return
        rows = list(csv.DictReader(lines))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"cannot read the run's history {str(path)!r}: it is damaged "
                        f"({' '.join(str(exc).split())[:80] or type(exc).__name__})") from None
    keep = [lines[0]] + [line for line, row in zip(lines[1:], rows)
                         if str(row.get("epoch") or "").isdigit() and int(row["epoch"]) < epochs]
    write_text_atomic(path, "".join(keep))


def _tensorflow():
    """The ``tensorflow`` module, or None (the JAX backend can train without it)."""
    try:
        import tensorflow as tf
    except ImportError:
        return None
    return tf


def _versions() -> dict:
    tf = _tensorflow()
    return {"spinsr_tf": __version__, "keras": keras.__version__,
            "backend": keras.backend.backend(), "tensorflow": tf and tf.__version__}


def open_config_data(config: TrainConfig) -> TrainingData:
    """The training data ``config`` names, with the degradation settings it fixes; those left
    None are read from an LR file's attributes
    (:func:`~spinsr_tf.data.stream.open_training_data`)."""
    given = {"factor": config.scale, "kernel_size": config.kernel_size, "sigma": config.sigma,
             "padding": config.padding, "pixel": config.pixel}
    return open_training_data(config.data, given, hr_path=config.hr_data,
                              max_samples=config.max_samples, teacher_path=config.teacher_data)


def resolve_config(config: TrainConfig, source: TrainingData) -> TrainConfig:
    """``config`` with its degradation read from the data and its terms' Hamiltonians resolved
    from the data file's attributes: what ``config.json`` records and a resume compares."""
    deg = source.degradation
    attrs = source.attrs
    losses = []
    for term in config.losses:
        if isinstance(term, PhysicsPrior):
            term = term.resolved(attrs)
        elif hasattr(term, "hamiltonian") and term.hamiltonian is None:
            ham = {k[len("hamiltonian."):]: _plain(v) for k, v in attrs.items()
                   if str(k).startswith("hamiltonian.")}
            term = dataclasses.replace(term, hamiltonian=ham or None)
        losses.append(term)
    return config.replace(kernel_size=deg.kernel_size, sigma=deg.sigma, padding=deg.padding,
                          pixel=deg.pixel, losses=tuple(losses))


def _plain(value):
    return value.item() if isinstance(value, np.generic) else (
        value.decode() if isinstance(value, bytes) else value)


class _Told:
    """A conditioned network bound to the training graph's condition input: called on LR maps
    alone (as the loss terms call the network), it is told the batch's degradation."""

    def __init__(self, network: keras.Model, condition):
        self.network, self.condition = network, condition

    def __call__(self, x):
        return self.network({"lr_input": x, CONDITION_INPUT: self.condition})


class _WithTaps:
    """A :class:`~spinsr_tf.nn.layers.TapsDownsample` bound to the training graph's taps
    input: called on a map like a fixed degradation layer, it applies each sample's drawn
    filter (so the loss terms re-degrade with the batch's own degradation)."""

    def __init__(self, layer: TapsDownsample, taps):
        self.layer, self.taps = layer, taps

    def __call__(self, x):
        return self.layer(x, self.taps)


def build_training_graph(network: keras.Model, config: TrainConfig) -> keras.Model:
    """The model ``fit`` trains: the SR network and one output per loss term, keyed by the
    term's name. Compiled with Adam and each term's loss and weight.

    With drawn degradations (``config.degradations``, blind training) the graph has a second
    input ``"taps"`` ``(B, T)``, the batch's drawn filter per sample, and every re-degradation
    of the terms (the LR output, the equivariance term's ``A``) is a
    :class:`~spinsr_tf.nn.layers.TapsDownsample` of it. The SR network itself is the same
    one-input network (its ``lr`` layer keeps the nominal degradation), so inference, export
    and :func:`~spinsr_tf.nn.network.sr_submodel` never need the taps.
    """
    shape = network.get_layer("lr_input").output.shape
    channels = int(shape[-1])
    lr_input = keras.Input(shape[1:], name="lr_input")
    told = network
    if is_conditioned(network):
        condition = keras.Input(network.get_layer(CONDITION_INPUT).output.shape[1:],
                                name=CONDITION_INPUT)
        told = _Told(network, condition)
    outputs = told(lr_input)
    inputs, lr = lr_input, outputs[LR_OUTPUT]
    if config.degradations is None:
        degrade = network.get_layer(LR_OUTPUT)
        degrade = GaussianDownsample.from_config({**degrade.get_config(), "name": "lr_again"})
    else:
        gen = config.degradations
        taps = keras.Input((gen.taps_length(config.scale),), name="taps")
        layer = TapsDownsample(config.scale, gen.kernel_size(), config.padding,
                               name="lr_drawn")
        inputs = {"lr_input": lr_input, "taps": taps}
        if told is not network:
            inputs[CONDITION_INPUT] = condition
        lr = layer(outputs[SR_OUTPUT], taps)
        degrade = _WithTaps(layer, taps)
    graph = Graph(lr_input=lr_input, network=told, sr=outputs[SR_OUTPUT], lr=lr,
                  degrade=degrade, scale=config.scale, channels=channels,
                  padding=config.padding, seed=config.seed)
    model = keras.Model(inputs, {t.name: t.build(graph) for t in config.losses},
                        name=f"train_{network.name}")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=float(config.learning_rate)),
                  loss={t.name: t.keras_loss() for t in config.losses},
                  loss_weights={t.name: t.weight for t in config.losses})
    return model


def network_of(training_graph: keras.Model) -> keras.Model:
    """The SR network inside a training graph (its one nested model)."""
    return next(layer for layer in training_graph.layers if isinstance(layer, keras.Model))


def train(config: TrainConfig, out_dir, resume: bool = False, progress: bool = True,
          connect_timeout: float = multiworker.CONNECT_TIMEOUT) -> dict[str, list]:
    """Train the SR network of ``config`` into ``out_dir``; resumable; returns the history.

    Parameters
    ----------
    config : TrainConfig
        What to train (:mod:`spinsr_tf.nn.config`; :func:`~spinsr_tf.nn.config.recipe` builds
        the named ones). A physics term whose weight is None must first get one
        (:func:`spinsr_tf.inference.weight_rule.with_chosen_weights`).
    out_dir : str or PathLike
        The run folder (created). A folder holding a run needs ``resume=True``.
    resume : bool
        Continue the run in ``out_dir`` from its last checkpoint; the configuration must equal
        the stored one except in :data:`~spinsr_tf.nn.config.RESUMABLE` fields.
    progress : bool
        Keras's progress bar on a terminal, a line every tenth of the epochs otherwise
        (:class:`EpochLines`); ``False``: silent.
    connect_timeout : float
        Seconds a task of ``strategy="multiworker"`` waits for the others of ``TF_CONFIG``.

    Returns
    -------
    dict
        ``{column: [value per epoch]}`` read back from ``history.csv``.

    Raises
    ------
    UserError
        Bad arguments or data, a folder holding another run, a resume whose configuration
        differs from the stored one.
    """
    if not isinstance(config, TrainConfig):
        raise UserError(f"config must be a TrainConfig, got {type(config).__name__}")
    distribute.check_strategy(config.strategy)
    run_dir = Path(out_dir)
    source = open_config_data(config)
    try:
        config = resolve_config(config, source)
        for term in config.losses:
            term.check(source.lr_shape[-1], config.padding, source.lr_shape[:2])
        if config.degradations is not None and not source.has_hr:
            raise UserError(f"drawn degradations need HR maps (dataset 'spins'): "
                            f"{str(config.data)!r} holds LR maps only")
        if config.supervised and not source.has_hr:
            raise UserError("the supervised oracle needs HR maps: the data file holds LR maps "
                            "only (give hr_data / --hr)")
        # the weights to start from, read before any work (a new run only)
        start = (load_sr_model(config.init, compile=False)
                 if config.init is not None and not (run_dir / CONFIG).is_file() else None)
        with distribute.strategy_scope(config.strategy, connect_timeout) as replicas, \
                _writable(run_dir) as (files, commit):
            return _train(config, source, run_dir, files, resume, progress, replicas, commit,
                          start)
    finally:
        source.close()


@contextlib.contextmanager
def _writable(run_dir: Path):
    """``(folder to write, commit)``: ``run_dir``, left as it was found if a failure comes
    before ``commit()`` (no config.json of a run that never ran, no history row lost by a
    resume that could not start). On the workers of a multi-worker strategy other than the
    chief, which write nothing there, a temporary folder instead, removed afterwards: saving a
    model is a collective operation there, so they save what the chief saves, and the folder
    starts with the run's history so that they return the chief's history."""
    if multiworker.writes_files():
        with unchanged_unless_committed(run_dir) as commit:
            yield run_dir, commit
        return
    with tempfile.TemporaryDirectory(prefix="spinsr-tf-worker-") as scratch:
        if (run_dir / HISTORY).is_file():
            shutil.copyfile(run_dir / HISTORY, Path(scratch) / HISTORY)
        yield Path(scratch), lambda: None


def _train(config: TrainConfig, source: TrainingData, run_dir: Path, files: Path,
           resume: bool, progress: bool, replicas: int, commit, start=None):
    """Train the run of ``run_dir``, writing into ``files`` (:func:`_writable`); the
    TensorBoard logs only where ``files`` is the run. ``start``: the model a new run's weights
    are copied from (``config.init``)."""
    train_idx, val_idx = split_indices(source.n, config.val_fraction)
    distribute.check_batch_size(config.batch_size, replicas, len(train_idx), len(val_idx))
    jit_compile = config.jit_compile and distribute.supports_xla(replicas)
    record = {**config.to_json(), "run": {
        "data_identity": source.describe(), "channels": source.lr_shape[-1],
        "hr_size": [int(v) * config.scale for v in source.lr_shape[:2]],
        "n_train": len(train_idx), "n_val": len(val_idx), "replicas": replicas,
        "jit_compile": jit_compile, "versions": _versions(),
        "loss": ("supervised oracle on HR maps: not part of the method" if config.supervised
                 else "distilled from a teacher network's SR maps: no HR map in the loss"
                 if config.distilled else "unsupervised: no HR map in the loss")}}
    record = json.loads(json.dumps(record))
    plan = BatchPlan(train_idx, config.batch_size, seed=config.seed, shuffle=True)
    # every worker of a cluster decides alike, before the first collective
    stored = multiworker.together(
        lambda: _check_run_dir(run_dir, record, resume), same=record,
        disagreement=f"the workers differ in configuration, data or software, or see different "
        f"run folders {str(run_dir)!r}: run the same command on every worker, with --out on a "
        "filesystem they share")

    if stored:
        model = _load_checkpoint(run_dir)
        steps = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
        done, rest = divmod(steps, plan.steps_per_epoch)
        if rest:
            raise UserError(f"checkpoint in {str(run_dir)!r} has {steps} optimizer steps, not a "
                            f"whole number of epochs of {plan.steps_per_epoch} steps; start a "
                            "new run")
        if done > config.epochs:
            raise UserError(f"the run in {str(run_dir)!r} has {done} epochs already, more than "
                            f"epochs={config.epochs}")
        network = network_of(model)
        _keep_segments(record, _read_json(run_dir / CONFIG), done, config.epochs)
    else:
        done = 0
        keras.utils.set_random_seed(config.seed)
        network = build_sr_model(source.degradation, channels=source.lr_shape[-1],
                                 output=config.output, residual=config.residual,
                                 conditioned=config.conditioned)
        if start is not None:
            copy_weights(start, network)
        model = build_training_graph(network, config)
        # Creating the Adam slots now, not inside the first traced step, spares TensorFlow a
        # second trace of the whole training step (about half of a short run's time).
        model.optimizer.build(model.trainable_variables)
    _start_run_dir(files, record, done)

    distribute.set_batch_norm_sync(model, distribute.needs_batch_norm_sync(replicas))
    model.jit_compile = jit_compile
    if done < config.epochs:
        # Degrade once for the whole run: every epoch then indexes memory (or the run's cache).
        # drawn degradations make every batch's LR maps from its HR maps
        source.prepare(hr_indices=(np.arange(source.n)
                                   if config.supervised or config.degradations is not None
                                   else val_idx if source.has_hr else ()), cache_dir=files,
                       teacher=config.distilled)
        callbacks = []
        if source.has_hr and len(val_idx):
            callbacks.append(SRValidation(network, source, val_idx, config.batch_size, replicas))
        callbacks.append(keras.callbacks.CSVLogger(str(files / HISTORY), append=True))
        if (files == run_dir and _tensorflow() is not None
                and importlib.util.find_spec("tensorboard") is not None):
            callbacks.append(keras.callbacks.TensorBoard(log_dir=str(files / LOGS),
                                                         write_graph=False))
        callbacks.append(_Checkpoint(files, on_saved=commit))
        bars = progress and bars_fit()   # a file or a pipe gets EpochLines instead
        if progress and not bars:
            callbacks.append(EpochLines(config.epochs))
        callbacks.append(_StopAtSignal(plan.steps_per_epoch))
        # workers of a cluster need batches that split evenly among them
        even = replicas if config.strategy == "multiworker" else 1
        val = None
        if len(val_idx):
            val = _Batches(source, BatchPlan(val_idx, config.batch_size, seed=config.seed,
                                             shuffle=False), 0, 1,
                           config.losses, multiple=even, degradations=config.degradations,
                           stream=1, conditioned=config.conditioned)
        # a signal stops the run at the next safe point (_StopAtSignal), never inside a step
        with interrupts.deferred():
            model.fit(_Batches(source, plan, done, config.epochs - done, config.losses, even,
                               degradations=config.degradations,
                               conditioned=config.conditioned),
                      validation_data=val, epochs=config.epochs, initial_epoch=done,
                      steps_per_epoch=plan.steps_per_epoch, shuffle=False, callbacks=callbacks,
                      verbose=1 if bars else 0)
        source.remove_cache()
    # a finished run resumed keeps its model file untouched (decided on the shared run folder,
    # so that every worker of a cluster takes part in the collective save, or none)
    if done < config.epochs or not (run_dir / MODEL).is_file():
        save_model_atomic(network, files / MODEL)
    return read_history(files)


def _load_checkpoint(run_dir: Path) -> keras.Model:
    path = run_dir / CHECKPOINT
    try:
        return keras.saving.load_model(path, compile=True, safe_mode=True)
    except (ValueError, TypeError, KeyError, OSError, zipfile.BadZipFile) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot read the checkpoint {str(path)!r}: {first}") from None


def read_run_config(run_dir) -> TrainConfig | None:
    """The :class:`TrainConfig` stored in ``RUN_DIR/config.json``, or None if there is none."""
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        return None
    record = _read_json(path)
    if isinstance(record, dict):
        record.pop("run", None)
    try:
        return TrainConfig.from_json(record)
    except UserError as exc:   # hand-edited or damaged: say which file
        raise UserError(f"{str(path)!r} is damaged: {exc}") from None


def _read_json(path: Path) -> dict:
    try:
        obj = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read {str(path)!r}: {exc}") from None
    if not isinstance(obj, dict):
        raise UserError(f"{str(path)!r} is not a run configuration")
    return obj


#: Configuration keys added after runs were made, with the value every earlier run had: a run
#: stored without one of them is compared (and resumed) as the value it was trained with.
_ADDED_KEYS = {"pixel": "sample", "degradations": None, "conditioned": False, "init": None,
               "teacher_data": None}


#: Data-file attributes that say when a file was written, not what it holds: a file annealed
#: again with the same parameters (on another machine, say) resumes the run; the content-derived
#: attributes (``relaxed.*`` torque statistics) still tell another content apart.
_VOLATILE_ATTRS = ("created",)


def _comparable(record: dict) -> dict:
    out = {**_ADDED_KEYS, **{k: v for k, v in record.items() if k != "run"}}
    identity = record.get("run", {}).get("data_identity")
    if isinstance(identity, dict):
        identity = {key: ({**part, "attrs": {k: v for k, v in part["attrs"].items()
                                             if k not in _VOLATILE_ATTRS}}
                          if isinstance(part, dict) and isinstance(part.get("attrs"), dict)
                          else part)
                    for key, part in identity.items()}
    out["data_identity"] = identity
    return out


def _check_run_dir(run_dir: Path, record: dict, resume: bool) -> bool:
    """Check the run folder without changing it; True if it holds a run to resume."""
    config_path = run_dir / CONFIG
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"out_dir {str(run_dir)!r} exists and is not a folder")
    if not config_path.exists():
        if run_dir.exists() and any(run_dir.iterdir()):
            raise UserError(f"out_dir {str(run_dir)!r} exists, is not empty and holds no run; "
                            "choose an empty or new folder")
        return False
    stored = _read_json(config_path)
    if not resume:
        done = len(read_history(run_dir).get("epoch", []))
        raise UserError(f"out_dir {str(run_dir)!r} holds a run ({done} epoch(s) done); pass "
                        "resume=True to continue it, or choose another folder")
    mismatch = describe_mismatch(_comparable(stored), _comparable(record), RESUMABLE)
    if mismatch:
        raise UserError(f"cannot resume {str(run_dir)!r}: configuration differs from the "
                        f"stored one: {mismatch}")
    return (run_dir / CHECKPOINT).exists()


def _keep_segments(record: dict, stored: dict, done: int, epochs: int) -> None:
    """Which software trained which epochs: ``run.versions`` stays that of the first
    segment, each resume that trains more adds ``{"from_epoch", "versions"}`` to
    ``run.resumed`` (another backend or machine, say), and a finished run asked again keeps
    its record as it was (only what a resume may change, e.g. the data path, is rewritten)."""
    run, old = record["run"], stored.get("run", {})
    run["versions"] = old.get("versions", run["versions"])
    resumed = list(old.get("resumed", []))
    if done < epochs:
        resumed.append({"from_epoch": done, "versions": _versions()})
    if resumed:
        run["resumed"] = resumed


def _start_run_dir(run_dir: Path, record: dict, done: int) -> None:
    """Create the folder (or bring a resumed one to its checkpoint) and write config.json."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create out_dir {str(run_dir)!r}: {exc}") from None
    remove_stale_temporaries(run_dir)   # of saves killed in an earlier call
    _truncate_history(run_dir, done)
    if done == 0:
        shutil.rmtree(run_dir / LOGS, ignore_errors=True)
    _write_json(run_dir / CONFIG, record)
