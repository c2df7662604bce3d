"""The loss-term interface, the training graph the terms add their outputs to, and the registry.

Why outputs and not ``add_loss``: every term is then an ordinary compiled loss on a named output,
so Keras logs each one (``lr_loss``, ``equivariance_loss`` ...) in ``history.csv``, weighs it with
``loss_weights``, and the same graph trains under both backends and every strategy.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import keras
import numpy as np
from keras import ops

from spinsr_tf.base.checks import check_real
from spinsr_tf.base.errors import UserError

#: term name -> class; filled by :func:`register`.
TERMS: dict[str, type] = {}


def register(cls):
    """Class decorator: make a term known to :func:`term_from_config` under ``cls.kind``."""
    TERMS[cls.kind] = cls
    return cls


def check_weight(name: str, weight) -> float:
    return check_real(f"{name} weight", weight, 0)


@dataclasses.dataclass(frozen=True)
class Graph:
    """What a term may build on: the LR input, the SR network and its two outputs.

    ``degrade`` is the network's own fixed degradation layer (named ``"lr"``), so a term that
    re-degrades a map uses exactly the operator the data term uses.
    """

    lr_input: object
    network: keras.Model
    sr: object
    lr: object
    degrade: keras.layers.Layer
    scale: int
    channels: int
    padding: str
    seed: int


@dataclasses.dataclass(frozen=True)
class LossTerm:
    """One weighted term of the training loss.

    Subclasses set ``kind`` (the registry key, as in ``config.json``), ``name`` (the output's
    name, as in the logged ``NAME_loss``), ``loss`` (``"mse"``
    against :meth:`target`, or ``"penalty"`` (:func:`penalty`) for outputs that are already
    per-sample losses), ``needs_hr`` (HR ground truth), ``needs_teacher`` (a teacher network's
    SR maps) and ``needs_unit_output``, and implement :meth:`build`.
    """

    weight: float = 1.0
    kind: ClassVar[str] = ""
    name: ClassVar[str] = ""
    loss: ClassVar[str] = "mse"
    needs_hr: ClassVar[bool] = False
    needs_teacher: ClassVar[bool] = False
    needs_unit_output: ClassVar[bool] = False

    def __post_init__(self):
        object.__setattr__(self, "weight", check_weight(self.name, self.weight))

    def check(self, channels: int, padding: str, lr_shape: tuple) -> None:
        """Refuse data the term cannot work on (one-line :class:`UserError`); default: none."""

    def build(self, graph: Graph):
        """The term's output tensor in the training graph."""
        raise NotImplementedError

    def target(self, lr: np.ndarray, hr: np.ndarray | None,
               teacher: np.ndarray | None = None) -> np.ndarray:
        """The batch's target for the output (its LR maps, HR maps where the term needs them,
        a teacher's SR maps where it needs those): zeros (one per sample) for penalties."""
        return np.zeros((len(lr),), np.float32)

    def keras_loss(self):
        """The Keras loss of the term's output."""
        return penalty if self.loss == "penalty" else self.loss

    def to_config(self) -> dict:
        return {"term": self.kind, **dataclasses.asdict(self)}


def term_from_config(config: dict) -> LossTerm:
    """Inverse of :meth:`LossTerm.to_config`."""
    config = dict(config)
    name = config.pop("term", None)
    if name not in TERMS:
        raise UserError(f"unknown loss term {name!r} (known: {', '.join(sorted(TERMS))})")
    try:
        return TERMS[name](**config)
    except TypeError as exc:
        raise UserError(f"loss term {name!r}: {exc}") from None


@keras.saving.register_keras_serializable(package="spinsr_tf")
def penalty(y_true, y_pred):
    """Loss of an output that is already one loss value per sample: its mean (target ignored)."""
    del y_true
    return y_pred


@keras.saving.register_keras_serializable(package="spinsr_tf")
class StopGradient(keras.layers.Layer):
    """Identity whose output carries no gradient (a target built from the network's own output)."""

    def call(self, x):
        return ops.stop_gradient(x)

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="spinsr_tf")
class MeanSquaredDifference(keras.layers.Layer):
    """Per-sample mean over sites and components of ``(a − b)²``: shape ``(N,)``.

    The same normalisation as Keras' ``"mse"`` on the LR output, so term weights compare.
    """

    def call(self, a, b):
        return ops.mean(ops.square(a - b), axis=tuple(range(1, len(a.shape))))

    def compute_output_shape(self, a_shape, b_shape=None):
        return (a_shape[0],)
