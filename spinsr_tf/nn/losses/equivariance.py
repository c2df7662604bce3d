"""Equivariant imaging: learn what the LR image cannot pin down from the lattice's symmetries.

The LR-consistency term says nothing about the part of the SR map that the degradation A does
not see. The texture distribution is invariant under the lattice's symmetries T_g (translations
by any number of HR sites, quarter turns and mirrors with co-rotated spins, the global flip) while
A is not (it samples every f-th site), so with ``x̂ = f(y)`` the network must also reconstruct
``T_g x̂`` from *its* LR image (Chen, Tachella & Davies, ICCV 2021)::

    L_eq = MSE( f(A(T_g x̂)), T_g x̂ ),   T_g x̂ held fixed (no gradient through the target).

A translation by a non-multiple of f shows the network sites the sampling never saw. Scale is not
a symmetry here (labyrinths have a fixed period). For maps with borders (``padding="reflect"``) a
translation is not a roll: the target is a crop of x̂ at a random HR offset, one LR pixel smaller
on each axis, and the comparison leaves out a border of ``margin`` HR pixels.
"""

from __future__ import annotations

import dataclasses

import keras
from keras import ops

from spinsr_tf.base.errors import UserError
from spinsr_tf.nn.losses.base import (Graph, LossTerm, MeanSquaredDifference, StopGradient,
                                      register)
from spinsr_tf.nn.symmetry import GROUPS, RandomLatticeSymmetry, SavedSeeds, group_for

#: How a batch draws its symmetries: one element for the whole batch, or one per sample.
DRAWS = ("batch", "sample")


@register
@dataclasses.dataclass(frozen=True)
class Equivariance(LossTerm):
    """``weight · MSE(f(A(T_g x̂)), T_g x̂)`` with a random ``g`` of ``group`` per step.

    Parameters
    ----------
    weight : float
        Relative to the LR term (both are means over sites and components).
    group : str
        A named group of :mod:`spinsr_tf.nn.symmetry` (``"lattice"``: translations, quarter
        turns, mirrors where the interactions allow them, global flip; ``"translations"``;
        ``"rotations"``; ...).
    draw : {"batch", "sample"}
        One random element per step shared by the batch, or one per sample.
    stop_gradient : bool
        Hold the target ``T_g x̂`` fixed (the published form); False lets gradients flow through
        both sides.
    hamiltonian : dict or None
        The interactions the group must respect (a data file's ``hamiltonian.*`` attributes):
        mirrors are refused under bulk DMI. None: no check.
    """

    weight: float = 1.0
    group: str = "lattice"
    draw: str = "batch"
    stop_gradient: bool = True
    hamiltonian: dict | None = None
    kind = "equivariance"
    name = "equivariance"
    loss = "penalty"

    def __post_init__(self):
        super().__post_init__()
        if self.group not in GROUPS:
            raise UserError(f"equivariance group must be one of {', '.join(GROUPS)}, "
                            f"got {self.group!r}")
        if self.draw not in DRAWS:
            raise UserError(f"equivariance draw must be one of {', '.join(DRAWS)}, "
                            f"got {self.draw!r}")
        if not isinstance(self.stop_gradient, bool):
            raise UserError(f"stop_gradient must be True or False, got {self.stop_gradient!r}")

    def check(self, channels, padding, lr_shape):
        group = group_for(self.group, hamiltonian=self.hamiltonian, channels=channels)
        if group.translations and min(lr_shape[:2]) < 2:
            raise UserError(f"equivariance with translations needs LR maps of at least 2x2 (an "
                            f"HR lattice larger than the factor), got {lr_shape[0]}x{lr_shape[1]}")
        if padding == "reflect" and min(lr_shape[:2]) < 3:
            raise UserError(f"equivariance on maps with borders needs LR maps of at least 3x3, "
                            f"got {lr_shape[0]}x{lr_shape[1]}")

    def build(self, graph: Graph):
        periodic = graph.padding == "periodic"
        transform = RandomLatticeSymmetry(
            self.group, hamiltonian=self.hamiltonian, channels=graph.channels,
            per_sample=self.draw == "sample", translations=periodic, seed=graph.seed + 7919,
            name="equivariance_transform")
        target = transform(graph.sr)
        if not periodic:
            target = RandomCrop(graph.scale, seed=graph.seed + 104729,
                                name="equivariance_crop")(target)
        if self.stop_gradient:
            target = StopGradient(name="equivariance_target")(target)
        again = graph.network(graph.degrade(target))["sr"]
        if not periodic:
            target = BorderCrop(graph.scale, name="equivariance_target_interior")(target)
            again = BorderCrop(graph.scale, name="equivariance_sr_interior")(again)
        return MeanSquaredDifference(name="equivariance")(again, target)


@keras.saving.register_keras_serializable(package="spinsr_tf")
class RandomCrop(SavedSeeds, keras.layers.Layer):
    """A translation for maps with borders: the ``(H − f) × (W − f)`` window at a random HR
    offset ``(dy, dx) ∈ [0, f)²`` (one offset per batch), so its LR image has whole pixels.
    Its random state is saved with the model (:class:`~spinsr_tf.nn.symmetry.SavedSeeds`)."""

    def __init__(self, factor: int, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.factor, self.seed = int(factor), seed
        self._seeds = keras.random.SeedGenerator(seed)

    def call(self, x):
        f = self.factor
        shape = ops.shape(x)
        d = keras.random.randint((2,), 0, f, seed=self._seeds, dtype="int32")
        rows = ops.arange(shape[1] - f) + d[0]
        cols = ops.arange(shape[2] - f) + d[1]
        return ops.take(ops.take(x, rows, axis=1), cols, axis=2)

    def compute_output_shape(self, s):
        f = self.factor
        return (s[0], None if s[1] is None else s[1] - f, None if s[2] is None else s[2] - f,
                s[3])

    def get_config(self):
        return {**super().get_config(), "factor": self.factor, "seed": self.seed}


@keras.saving.register_keras_serializable(package="spinsr_tf")
class BorderCrop(keras.layers.Layer):
    """Drop ``margin`` HR pixels on every side (where mirror padding invents the texture)."""

    def __init__(self, margin: int, **kwargs):
        super().__init__(**kwargs)
        self.margin = int(margin)

    def call(self, x):
        m = self.margin
        return x[:, m:-m, m:-m, :]

    def compute_output_shape(self, s):
        m = 2 * self.margin
        return (s[0], None if s[1] is None else s[1] - m, None if s[2] is None else s[2] - m,
                s[3])

    def get_config(self):
        return {**super().get_config(), "margin": self.margin}
