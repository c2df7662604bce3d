"""The physics prior: λ · energy per spin of the SR map under a known (or generic) Hamiltonian.

Beyond the paper (``docs/physics_sr.md``): a simulated ground truth is a (meta)stable state of
its Hamiltonian and any real magnet obeys exchange at least, so besides reproducing its LR input
an SR map should have low energy. The HR maps still never enter the loss. λ = None means "choose
it from the LR maps" (:func:`spinsr_tf.inference.weight_rule.with_chosen_weights`), which must
happen before training starts.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

import keras
from keras import ops

from spinsr_tf.base.errors import UserError
from spinsr_tf.nn.losses.base import Graph, LossTerm, check_weight, register
from spinsr_tf.physics.hamiltonians import check_hamiltonian, hamiltonian_from_attrs
from spinsr_tf.physics.keras_energy import energy_per_spin
from spinsr_tf.physics.priors import PRIORS, resolve_prior


@register
@dataclasses.dataclass(frozen=True)
class PhysicsPrior(LossTerm):
    """``weight · mean E_H(SR)/N``.

    Parameters
    ----------
    prior : {"typeI", "typeII", "exchange"}
        Which Hamiltonian (:mod:`spinsr_tf.physics.priors`); Type I/II parameters come from the
        data file's ``hamiltonian.*`` attributes unless ``hamiltonian`` is given.
    weight : float or None
        λ, in LR-MSE per J of energy per spin; None until chosen from the LR maps.
    overrides : dict
        Hamiltonian parameters to replace, e.g. ``{"dmi": 0.36}``.
    hamiltonian : dict or None
        The resolved Hamiltonian's attributes (filled by :meth:`resolved`; recorded).
    weight_rule : dict or None
        The evidence of an automatic choice of λ (recorded, not used).
    """

    weight: float | None = None
    prior: str = "typeI"
    overrides: Mapping = dataclasses.field(default_factory=dict)
    hamiltonian: Mapping | None = None
    weight_rule: Mapping | None = None
    kind = "physics_prior"
    name = "energy"
    loss = "penalty"
    needs_unit_output = True

    def __post_init__(self):
        if self.prior not in PRIORS or self.prior == "none":
            raise UserError(f"physics prior must be one of {', '.join(PRIORS[1:])}, "
                            f"got {self.prior!r}")
        if self.weight is not None:
            object.__setattr__(self, "weight", check_weight("physics", self.weight))
        object.__setattr__(self, "overrides", dict(self.overrides or {}))

    def resolved(self, attrs: Mapping | None) -> "PhysicsPrior":
        """This term with its Hamiltonian resolved from a data file's attributes."""
        if self.hamiltonian is not None:
            return self
        ham = resolve_prior(self.prior, attrs, self.overrides)
        return dataclasses.replace(self, hamiltonian=ham.to_attrs())

    def check(self, channels, padding, lr_shape):
        if channels != 3:
            raise UserError(f"a physics prior needs spin vectors (3 channels), got {channels}")
        if padding != "periodic":
            raise UserError("a physics prior needs periodic maps (padding='periodic')")

    def build(self, graph: Graph):
        if self.weight is None or self.hamiltonian is None:
            raise UserError("the physics weight must be chosen before training "
                            "(spinsr_tf.inference.weight_rule.with_chosen_weights)")
        return EnergyPerSpin(dict(self.hamiltonian), name="energy")(graph.sr)


@keras.saving.register_keras_serializable(package="spinsr_tf")
class EnergyPerSpin(keras.layers.Layer):
    """Energy per spin ``E_H(S)/N`` of each map of a batch ``(B, H, W, 3)`` → ``(B,)``, in J."""

    def __init__(self, hamiltonian: Mapping, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(hamiltonian, Mapping):
            hamiltonian = check_hamiltonian(hamiltonian).to_attrs()
        self.hamiltonian = dict(hamiltonian)
        self._ham = hamiltonian_from_attrs(self.hamiltonian)

    def call(self, sr):
        return ops.cast(energy_per_spin(sr, self._ham), sr.dtype)

    def compute_output_shape(self, input_shape):
        return (input_shape[0],)

    def get_config(self):
        return {**super().get_config(), "hamiltonian": self.hamiltonian}
