"""Train the SR network from LR maps alone, resumably, streaming the data from HDF5.

A run lives in one folder::

    RUN_DIR/config.json       every argument, the package versions, the data identity
    RUN_DIR/history.csv       one row per epoch: loss, val_loss, val_sr_mse (if HR is known)
    RUN_DIR/logs/             TensorBoard event files (if the tensorboard package is installed)
    RUN_DIR/checkpoint.keras  model + optimizer state after the last finished epoch
    RUN_DIR/checkpoint.json   that epoch's number
    RUN_DIR/model.keras       the final model

The loss is MSE(LR input, re-degraded SR). HR maps, where the data file has them, are
degraded into the LR inputs and otherwise feed only the monitored ``val_sr_mse``; only the
supervised oracle (``supervised=True``, not part of the method) trains the SR output on them.

Batches are a pure function of ``(seed, epoch, step)`` and the checkpoint holds the optimizer
state, so a run interrupted and resumed ends with the same weights as one that ran through.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import numbers
import os
import shutil
from pathlib import Path

import keras
import numpy as np

from . import distribute
from spinsr_tf._version import __version__
from spinsr_tf.data.stream import BatchPlan, TrainingData, as_path, open_training_data, split_indices
from spinsr_tf.base.errors import UserError
from spinsr_tf.base.files import write_text_atomic
from spinsr_tf.physics.hamiltonians import hamiltonian_from_attrs
from spinsr_tf.model import (LR_OUTPUT, OUTPUTS, SR_OUTPUT, build_sr_model, compile_sr_model,
                    decoder_filters, load_sr_model, sr_submodel)

CONFIG, HISTORY, LOGS = "config.json", "history.csv", "logs"
CHECKPOINT, CHECKPOINT_INFO, MODEL = "checkpoint.keras", "checkpoint.json", "model.keras"
#: config.json keys that a resumed run may change.
_RESUMABLE = ("epochs", "data", "hr_data", "versions", "jit_compile", "strategy", "replicas")


class _Batches(keras.utils.PyDataset):
    """Batches of ``plan`` for epochs ``first_epoch`` .. ``first_epoch + epochs - 1``, in order.

    Item ``i`` is batch ``i mod steps`` of epoch ``first_epoch + i div steps``: the content of
    every batch is fixed in advance, whatever Keras prefetches and whenever it asks.
    Targets are the LR maps themselves (unsupervised) or the HR maps (supervised oracle).
    """

    def __init__(self, data: TrainingData, plan: BatchPlan, first_epoch: int, epochs: int,
                 supervised: bool):
        super().__init__(workers=1, use_multiprocessing=False)
        self.data, self.plan = data, plan
        self.first_epoch, self.epochs, self.supervised = first_epoch, epochs, supervised

    @property
    def num_batches(self) -> int:
        return self.plan.steps_per_epoch * self.epochs

    def __len__(self) -> int:
        return self.num_batches

    def __getitem__(self, i: int):
        epoch, step = divmod(int(i), self.plan.steps_per_epoch)
        idx = self.plan.batch(self.first_epoch + epoch, step)
        lr = self.data.lr(idx)
        # Targets keyed by output name, like the compiled loss: with a bare array the JAX
        # trainer fails to match it to the one-of-two-outputs loss once a smaller last batch
        # makes it retrace.
        if self.supervised:
            return lr, {SR_OUTPUT: self.data.hr(idx)}
        return lr, {LR_OUTPUT: lr}


class SRValidation(keras.callbacks.Callback):
    """Adds ``val_sr_mse`` to the epoch logs: the SR map against the HR ground truth.

    ``val_sr_mse`` = mean over validation maps of the paper's MSE (squared distance summed over
    the C components, averaged over HR sites; :func:`spinsr_tf.metrics.mse`), with the network
    in inference mode. It is a monitor only: nothing here touches gradients. Put this callback
    before ``CSVLogger``/``TensorBoard`` so that they record the value.
    """

    def __init__(self, data: TrainingData, indices, batch_size: int, replicas: int = 1):
        super().__init__()
        self.data, self.indices, self.batch_size = data, np.asarray(indices), int(batch_size)
        self.replicas = int(replicas)
        self._sr = None

    def sr_mse(self) -> float:
        if self._sr is None:
            self._sr = sr_submodel(self.model)
        total = 0.0
        for start in range(0, len(self.indices), self.batch_size):
            idx = self.indices[start:start + self.batch_size]
            if self.replicas > 1:  # predict_on_batch would hand every replica the whole batch
                sr = self._sr.predict(self.data.lr(idx), batch_size=len(idx), verbose=0)
            else:
                sr = self._sr.predict_on_batch(self.data.lr(idx))
            sr = np.asarray(sr, dtype=np.float64)
            total += float(np.square(sr - self.data.hr(idx)).sum(axis=-1).mean(axis=(1, 2)).sum())
        return total / len(self.indices)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["val_sr_mse"] = self.sr_mse()


class _Checkpoint(keras.callbacks.Callback):
    """Saves model and optimizer after every epoch (temporary name, then ``os.replace``)."""

    def __init__(self, run_dir: Path):
        super().__init__()
        self.run_dir = run_dir

    def on_epoch_end(self, epoch, logs=None):
        save_model_atomic(self.model, self.run_dir / CHECKPOINT)
        _write_json(self.run_dir / CHECKPOINT_INFO, {"epoch": int(epoch) + 1})


def save_model_atomic(model: keras.Model, path: Path) -> None:
    """``model.save(path)`` through a temporary ``.keras`` file in the same folder."""
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}.keras")
    try:
        with distribute.paper_batch_norm(model):  # files hold the paper's BN, any strategy
            model.save(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _write_json(path: Path, obj) -> None:
    write_text_atomic(path, json.dumps(obj, indent=1, sort_keys=True) + "\n")


def read_history(run_dir) -> dict[str, list]:
    """``RUN_DIR/history.csv`` as ``{column: [value per epoch]}`` (``epoch`` as int; missing
    values as NaN; columns with no value at all left out)."""
    path = Path(run_dir) / HISTORY
    if not path.exists():
        return {}
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        return {}
    history = {}
    for key in rows[0]:
        values = [r[key] for r in rows]
        if key != "epoch" and all(v in ("", "NA") for v in values):
            continue  # CSVLogger's placeholder val_* columns of a run without validation
        history[key] = [int(v) if key == "epoch" else (math.nan if v in ("", "NA") else float(v))
                        for v in values]
    return history


def _truncate_history(run_dir: Path, epochs: int) -> None:
    """Keep the header and the rows of epochs ``< epochs`` (a run killed between the CSV row
    and the checkpoint of an epoch would otherwise list that epoch twice)."""
    path = run_dir / HISTORY
    if not path.exists():
        return
    with open(path, newline="") as fh:
        lines = fh.read().splitlines(keepends=True)
    if not lines:
        return
    rows = list(csv.DictReader(lines))
    keep = [lines[0]] + [line for line, row in zip(lines[1:], rows)
                         if row.get("epoch", "").isdigit() and int(row["epoch"]) < epochs]
    write_text_atomic(path, "".join(keep))


def _check_int(name, value, minimum):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
        raise UserError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _describe_mismatch(stored: dict, new: dict) -> str:
    keys = sorted(k for k in set(stored) | set(new)
                  if k not in _RESUMABLE and stored.get(k) != new.get(k))
    def short(value):
        text = repr(value)
        return text if len(text) <= 60 else text[:57] + "..."

    return ", ".join(f"{k}={short(stored.get(k))} (now {short(new.get(k))})" for k in keys[:4])


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


def train(data, scale: int, out_dir, epochs: int = 400, batch_size: int = 32,
          learning_rate: float = 0.01, val_fraction: float = 0.1, seed: int = 0,
          resume: bool = False, supervised: bool = False, kernel_size: int | None = None,
          sigma: float | None = None, padding: str | None = None, max_samples: int | None = None,
          hr_data=None, jit_compile: bool = True, output: str | None = None,
          residual: bool = False, progress: bool = True,
          strategy: str = "none", physics: str = "none", physics_weight: float | None = None,
          physics_overrides: dict | None = None) -> dict[str, list]:
    """Train the SR network on LR maps; resumable; returns the full history.

    Parameters
    ----------
    data : str or PathLike
        HDF5 file with LR maps (dataset ``lr``, attributes ``factor``, ``kernel_size``,
        ``sigma``, ``padding``) or HR maps (dataset ``spins``), which are degraded on the fly
        with the model's own degradation and otherwise used only for ``val_sr_mse``.
    scale : int
        SR factor: 4, 8 or 16 (a power of two); must equal an LR file's ``factor``.
    out_dir : str or PathLike
        The run folder (created). A folder holding a run needs ``resume=True``.
    epochs : int
        Total number of epochs of the run (a resumed run trains the missing ones). The paper
        trains 400.
    batch_size : int
        The global batch: under a ``strategy`` with R replicas each replica gets
        ``batch_size / R`` samples per step (a multiple of R is required).
    learning_rate : float
        Adam step size (paper: 0.01).
    val_fraction : float
        The last ``floor(N · val_fraction)`` samples (at least one if > 0) are held out:
        ``val_loss`` (the LR loss) and, with HR maps, ``val_sr_mse`` are measured on them.
    seed : int
        Seeds the weights (``keras.utils.set_random_seed``) and the per-epoch shuffle.
    resume : bool
        Continue the run in ``out_dir`` from its last checkpoint; every argument except
        ``epochs`` (and the file paths) must match the stored ``config.json``.
    supervised : bool
        The oracle: MSE(SR, HR) on HR maps instead of the LR loss. Not part of the method;
        needs HR maps.
    kernel_size, sigma, padding : optional
        Degradation of the network's fixed output layer and of HR data. None takes
        an LR file's attributes, else 23, 1.0 (HR pixels), ``"periodic"``.
    max_samples : int, optional
        Use the first ``max_samples`` samples of the file only.
    hr_data : str or PathLike, optional
        HR maps (dataset ``spins``) matching an LR-only ``data`` file sample by sample, for
        ``val_sr_mse`` (and the oracle) only.
    jit_compile : bool
        Compile the training step with XLA: on a 2-core AVX2 CPU 10-50 % more samples/s than
        Keras' plain graph mode (``benchmarks/bench_training.py``), for a few seconds of
        compilation at the start. May differ between a run and its resumption. Off under a
        TensorFlow strategy with several replicas (config.json records what was used).
    output : {"linear", "unit"}, optional
        SR output of the network (:func:`~spinsr_tf.model.build_sr_model`): the paper's linear
        convolution, or projected onto unit vectors. Default: ``"unit"`` with a physics prior
        (which needs it), else ``"linear"``. Stored; a resume must match it.
    residual : bool
        Learn a correction to aligned bicubic interpolation (starts *at* that baseline).
        Stored; a resume must match it.
    progress : bool
        Keras progress bar (``False``: silent).
    strategy : {"none", "mirrored", "multiworker"}
        Data-parallel training (:mod:`spinsr_tf.distribute`): ``"mirrored"`` over the local
        devices; ``"multiworker"`` is refused (Keras 3's ``fit`` fails under it). Under a
        TensorFlow strategy the BatchNormalization statistics are synchronized across replicas,
        so a step equals the single-device step with the same global batch up to float
        rounding; saved models are the same architecture either way. Recorded in config.json
        (with ``replicas``); a resume may use another strategy.
    physics : {"none", "typeI", "typeII", "exchange"}
        Physics prior (:mod:`spinsr_tf.prior`): adds ``physics_weight · E(SR)/N`` to the loss,
        with the Hamiltonian of the data file's ``hamiltonian.*`` attributes (``"exchange"``:
        exchange alone). The HR maps still never enter the loss.
    physics_weight : float, optional
        λ. None chooses it from the first training LR maps (:func:`~spinsr_tf.prior.choose_weight`,
        LR data only); the choice and its evidence go to config.json.
    physics_overrides : dict, optional
        Hamiltonian parameters to replace, e.g. ``{"dmi": 0.36}``.

    Returns
    -------
    dict
        ``{column: [value per epoch]}`` read back from ``history.csv``: ``epoch``, ``loss``,
        ``val_loss`` (if validating), ``val_sr_mse`` (if HR maps are known).

    Raises
    ------
    UserError
        Bad arguments or data, a folder holding another run, a resume whose configuration
        differs from the stored one.
    """
    epochs = _check_int("epochs", epochs, 1)
    batch_size = _check_int("batch_size", batch_size, 1)
    seed = _check_int("seed", seed, 0)
    decoder_filters(scale)
    if output is None:
        output = "linear" if physics == "none" else "unit"
    if output not in OUTPUTS:
        raise UserError(f"output must be one of {OUTPUTS}, got {output!r}")
    if not isinstance(residual, bool):
        raise UserError(f"residual must be True or False, got {residual!r}")
    strategy = distribute.check_strategy(strategy)
    run_dir = Path(out_dir)
    source = open_training_data(data, scale, kernel_size, sigma, padding, hr_path=hr_data,
                                max_samples=max_samples)
    try:
        prior = _physics_config(source, physics, physics_weight, physics_overrides, run_dir,
                                resume, val_fraction, output, progress)
        with distribute.strategy_scope(strategy) as replicas:
            return _train(source, run_dir, epochs, batch_size, learning_rate, val_fraction, seed,
                          resume, supervised, data, hr_data, max_samples, progress, scale,
                          bool(jit_compile), output, residual, strategy, replicas, prior)
    finally:
        source.close()


def _train(source: TrainingData, run_dir: Path, epochs, batch_size, learning_rate, val_fraction,
           seed, resume, supervised, data, hr_data, max_samples, progress, scale, jit_compile,
           output, residual, strategy="none", replicas=1, prior=None):
    if supervised and not source.has_hr:
        raise UserError("supervised=True needs HR maps: the data file holds LR maps only "
                        "(give hr_data / --hr)")
    if (isinstance(learning_rate, bool) or not isinstance(learning_rate, numbers.Real)
            or not math.isfinite(learning_rate) or learning_rate <= 0):
        raise UserError(f"learning_rate must be a finite number > 0, got {learning_rate!r}")
    train_idx, val_idx = split_indices(source.n, val_fraction)
    distribute.check_batch_size(batch_size, replicas, len(train_idx), len(val_idx))
    jit_compile = jit_compile and distribute.supports_xla(replicas)
    deg = source.degradation
    config = {
        "data": as_path(data), "hr_data": None if hr_data is None else as_path(hr_data),
        "data_identity": source.describe(), "scale": int(scale), "channels": source.lr_shape[-1],
        "hr_size": [int(v) * int(scale) for v in source.lr_shape[:2]],
        "epochs": epochs, "batch_size": batch_size, "learning_rate": float(learning_rate),
        "val_fraction": float(val_fraction), "n_train": len(train_idx), "n_val": len(val_idx),
        "seed": seed, "supervised": bool(supervised),
        "loss": ("MSE(SR, HR): supervised oracle, not part of the method" if supervised
                 else "MSE(LR input, re-degraded SR): unsupervised"),
        "kernel_size": deg.kernel_size,
        "sigma": deg.sigma, "padding": deg.padding, "max_samples": max_samples,
        "jit_compile": jit_compile, "output": output, "residual": residual,
        "strategy": strategy, "replicas": replicas, "versions": _versions(),
        **(prior or _NO_PRIOR),
    }
    config = json.loads(json.dumps(config))
    done = _prepare_run_dir(run_dir, config, resume)
    plan = BatchPlan(train_idx, batch_size, seed=seed, shuffle=True)

    if done:
        model = load_sr_model(run_dir / CHECKPOINT, compile=True)
        steps = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
        if steps != done * plan.steps_per_epoch:
            raise UserError(f"checkpoint in {str(run_dir)!r} has {steps} optimizer steps, not "
                            f"{done} epochs of {plan.steps_per_epoch}; start a new run")
    else:
        keras.utils.set_random_seed(seed)
        model = build_sr_model(scale=int(scale), channels=config["channels"],
                               padding=deg.padding, kernel_size=deg.kernel_size, sigma=deg.sigma,
                               output=output, residual=residual,
                               prior=(hamiltonian_from_attrs(prior["physics_hamiltonian"])
                                      if prior else None),
                               prior_weight=prior["physics_weight"] if prior else 0.0)
        compile_sr_model(model, learning_rate=float(learning_rate), supervised=bool(supervised))
        # Creating the Adam slots now, not inside the first traced step, spares TensorFlow a
        # second trace of the whole training step (about half of a short run's time).
        model.optimizer.build(model.trainable_variables)

    distribute.set_batch_norm_sync(model, distribute.needs_batch_norm_sync(replicas))
    model.jit_compile = jit_compile
    if done < epochs:
        callbacks = []
        if source.has_hr and len(val_idx):
            callbacks.append(SRValidation(source, val_idx, batch_size, replicas))
        callbacks.append(keras.callbacks.CSVLogger(str(run_dir / HISTORY), append=True))
        if _tensorflow() is not None and importlib.util.find_spec("tensorboard") is not None:
            callbacks.append(keras.callbacks.TensorBoard(log_dir=str(run_dir / LOGS),
                                                         write_graph=False))
        callbacks.append(_Checkpoint(run_dir))
        val = None
        if len(val_idx):
            val = _Batches(source, BatchPlan(val_idx, batch_size, shuffle=False), 0, 1,
                           supervised)
        model.fit(_Batches(source, plan, done, epochs - done, supervised),
                  validation_data=val, epochs=epochs, initial_epoch=done,
                  steps_per_epoch=plan.steps_per_epoch, shuffle=False, callbacks=callbacks,
                  verbose=1 if progress else 0)
    save_model_atomic(model, run_dir / MODEL)
    return read_history(run_dir)


_NO_PRIOR = {"physics": "none", "physics_weight": 0.0, "physics_hamiltonian": None,
             "physics_weight_rule": None}


def _physics_config(source: TrainingData, physics, weight, overrides, run_dir: Path, resume,
                    val_fraction, output, progress) -> dict | None:
    """The prior's config.json entries (None without a prior); λ chosen here if not given."""
    from spinsr_tf.prior import check_weight, choose_weight, resolve_prior

    attrs = dict((source.lr_file or source.hr_file).attrs)
    ham = resolve_prior(physics, attrs, overrides)
    if ham is None:
        if weight not in (None, 0, 0.0):
            raise UserError("physics_weight given without a physics prior (physics='none')")
        return None
    if output != "unit":
        raise UserError(f"a physics prior needs output='unit' (unit spins), got {output!r}")
    if source.degradation.padding != "periodic":
        raise UserError("a physics prior needs periodic maps (padding='periodic')")
    if source.lr_shape[-1] != 3:
        raise UserError(f"a physics prior needs spin vectors (3 channels), got "
                        f"{source.lr_shape[-1]}")
    rule = None
    if weight is None:
        stored = _stored_config(run_dir) if resume else {}
        if stored.get("physics") == physics and stored.get("physics_weight_rule"):
            weight, rule = stored["physics_weight"], stored["physics_weight_rule"]
        else:
            train_idx, _ = split_indices(source.n, val_fraction)
            deg = source.degradation
            if progress:
                print("choosing the physics weight from the LR maps (discrepancy principle)",
                      flush=True)
            weight, rule = choose_weight(source.lr(train_idx[:4]), ham, deg.factor,
                                         kernel_size=deg.kernel_size, sigma=deg.sigma,
                                         return_details=True)
            if progress:
                print(f"physics weight {weight:g} (LR misfit tolerance {rule['tolerance']:.3g})",
                      flush=True)
    return json.loads(json.dumps({"physics": physics, "physics_weight": check_weight(weight),
                                  "physics_hamiltonian": ham.to_attrs(),
                                  "physics_weight_rule": rule}))


def _stored_config(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / CONFIG).read_text())
    except (OSError, ValueError):
        return {}


def _prepare_run_dir(run_dir: Path, config: dict, resume: bool) -> int:
    """Create or check the run folder; return the number of epochs already done."""
    config_path = run_dir / CONFIG
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"out_dir {str(run_dir)!r} exists and is not a folder")
    if config_path.exists():
        try:
            stored = json.loads(config_path.read_text())
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot read {str(config_path)!r}: {exc}") from None
        stored = {"output": "linear", "residual": False, **_NO_PRIOR, **stored}  # older runs
        info = run_dir / CHECKPOINT_INFO
        done = 0
        if info.exists() and (run_dir / CHECKPOINT).exists():
            done = int(json.loads(info.read_text())["epoch"])
        if not resume:
            raise UserError(f"out_dir {str(run_dir)!r} holds a run ({done} epoch(s) done); "
                            "pass resume=True / --resume to continue it, or choose another folder")
        mismatch = _describe_mismatch(stored, config)
        if mismatch:
            raise UserError(f"cannot resume {str(run_dir)!r}: configuration differs from the "
                            f"stored one: {mismatch}")
        if done > config["epochs"]:
            raise UserError(f"the run in {str(run_dir)!r} has {done} epochs already, more than "
                            f"epochs={config['epochs']}")
        _truncate_history(run_dir, done)
        if done == 0:
            shutil.rmtree(run_dir / LOGS, ignore_errors=True)
        _write_json(config_path, config)
        return done
    if run_dir.exists() and any(run_dir.iterdir()):
        raise UserError(f"out_dir {str(run_dir)!r} exists, is not empty and holds no run; "
                        "choose an empty or new folder")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create out_dir {str(run_dir)!r}: {exc}") from None
    _write_json(config_path, config)
    return 0
