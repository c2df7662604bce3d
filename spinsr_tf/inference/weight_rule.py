"""Physics priors: the energy of the SR map as free supervision, and how to weigh it.

A simulated ground truth is a (meta)stable state of a known Hamiltonian, and any real magnet obeys
exchange at least. So besides reproducing its LR input, an SR map should have low energy. Training
with a prior (``spinsr-tf train --physics ...``) adds ``λ · E_H(SR) / N`` to the LR loss (the HR
maps still never enter it); :func:`spinsr_tf.refine.refine` minimises the same objective for one
image at a time.

Priors (:data:`PRIORS`): ``"typeI"`` and ``"typeII"`` use the Hamiltonian the data were made with
(the file's ``hamiltonian.*`` attributes, else the defaults) with optional overrides;
``"exchange"`` is exchange alone, for images whose Hamiltonian is unknown.

The weight λ is chosen from the LR maps alone by the discrepancy principle
(:func:`choose_weight`): the largest λ of a grid whose refined maps still reproduce their LR
inputs to within the noise, or, for noise-free data, nearly as well as without the prior.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Mapping

import keras
import numpy as np
from keras import ops

from spinsr_tf.base.errors import UserError
from spinsr_tf.physics.hamiltonians import (Hamiltonian, TypeI, TypeII, check_hamiltonian,
                                   hamiltonian_from_attrs)
from spinsr_tf.physics.keras_energy import energy_per_spin, exchange_only

PRIORS = ("none", "typeI", "typeII", "exchange")
#: λ candidates of :func:`choose_weight`, in LR-MSE per J of energy per spin.
WEIGHT_GRID = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)
#: How much more LR misfit than at the grid's smallest λ a prior may cost (noise-free data).
MISFIT_FACTOR = 10.0
#: LR misfit that always counts as a perfect fit (LR PSNR 106 dB for spins): below it the
#: differences are the optimiser's rounding, not the prior's.
MISFIT_FLOOR = 1e-10


def resolve_prior(name: str, attrs: Mapping | None = None,
                  overrides: Mapping | None = None) -> Hamiltonian | None:
    """The Hamiltonian of a prior, or None for ``"none"``.

    Parameters
    ----------
    name : one of :data:`PRIORS`.
    attrs : attributes of the data file; its ``hamiltonian.*`` keys (as written by
        ``spinsr-tf generate``) supply the parameters of a matching type.
    overrides : e.g. ``{"dmi": 0.36}``: fields of the Hamiltonian to replace (a deliberately
        wrong Hamiltonian, or one known better than the file says).
    """
    if name not in PRIORS:
        raise UserError(f"physics prior must be one of {', '.join(PRIORS)}, got {name!r}")
    if name == "none":
        if overrides:
            raise UserError("Hamiltonian overrides given without a physics prior")
        return None
    if name == "exchange":
        ham = exchange_only()
    else:
        kind = "I" if name == "typeI" else "II"
        stored = {k[len("hamiltonian."):]: v for k, v in (attrs or {}).items()
                  if str(k).startswith("hamiltonian.")}
        ham = TypeI() if kind == "I" else TypeII()
        if stored:
            found = hamiltonian_from_attrs(stored)
            if isinstance(found, type(ham)):
                ham = found
    for key, value in (overrides or {}).items():
        fields = {f.name for f in dataclasses.fields(ham)}
        if key not in fields:
            raise UserError(f"{type(ham).__name__} has no parameter {key!r} "
                            f"(parameters: {', '.join(sorted(fields))})")
        ham = dataclasses.replace(ham, **{key: value})
    return ham


def parse_overrides(items) -> dict:
    """``["dmi=0.36", "anisotropy=0.2"]`` → ``{"dmi": 0.36, "anisotropy": 0.2}`` (numbers where
    they parse, text otherwise)."""
    out = {}
    for item in items or ():
        key, sep, value = str(item).partition("=")
        if not sep or not key:
            raise UserError(f"Hamiltonian override must look like NAME=VALUE, got {item!r}")
        try:
            out[key] = float(value)
        except ValueError:
            out[key] = value
    return out


def check_weight(weight) -> float:
    if (isinstance(weight, bool) or not isinstance(weight, numbers.Real)
            or not math.isfinite(weight) or weight < 0):
        raise UserError(f"physics weight must be a finite number >= 0, got {weight!r}")
    return float(weight)


@keras.saving.register_keras_serializable(package="spinsr_tf")
class PhysicsPrior(keras.layers.Layer):
    """Identity on the SR map that adds ``weight · mean_batch(E_H(SR) / N)`` to the model's loss.

    Placed between the SR map and the degradation layer, so that the loss Keras minimises is
    ``MSE(LR, re-degraded SR) + weight · energy per spin``. The Hamiltonian is stored as its
    flat attributes, so a saved model knows which prior trained it.
    """

    def __init__(self, hamiltonian: Mapping, weight: float, **kwargs):
        super().__init__(**kwargs)
        if isinstance(hamiltonian, (TypeI, TypeII)):
            hamiltonian = hamiltonian.to_attrs()
        self.hamiltonian = dict(hamiltonian)
        self.weight = check_weight(weight)
        self._ham = hamiltonian_from_attrs(self.hamiltonian)

    def call(self, sr):
        if self.weight:
            self.add_loss(self.weight * ops.mean(energy_per_spin(sr, self._ham)))
        return sr

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "hamiltonian": self.hamiltonian, "weight": self.weight}


def noise_variance(lr) -> float:
    """Noise variance of LR maps ``(N, h, w, C)`` estimated from the maps themselves.

    Donoho's robust estimator on the diagonal second difference
    ``(x[i,j] - x[i+1,j] - x[i,j+1] + x[i+1,j+1]) / 2``, which has the variance σ² of white noise
    and is small for smooth maps: σ = median(|d|) / 0.6745. Texture that varies on the pixel scale
    raises it, so it is an upper estimate for maps sampled near their Nyquist limit (Type I
    labyrinths at ×8: 0.24 for noise-free maps); :func:`choose_weight` uses it only when asked.
    """
    x = np.asarray(lr, dtype=np.float64)
    if x.ndim != 4 or min(x.shape[1:3]) < 2:
        raise UserError(f"lr must have shape (N, h, w, C) with h, w >= 2, got {x.shape}")
    d = 0.5 * (x[:, :-1, :-1] - x[:, 1:, :-1] - x[:, :-1, 1:] + x[:, 1:, 1:])
    return float((np.median(np.abs(d)) / 0.6745) ** 2)


def choose_weight(lr, hamiltonian, factor: int, grid=WEIGHT_GRID, max_maps: int = 4,
                  steps: int = 200, kernel_size: int = 23, sigma: float = 1.0,
                  noise: float | str | None = None, return_details: bool = False):
    """Largest λ of ``grid`` whose refined maps reproduce their LR inputs as well as the data allow.

    Morozov's discrepancy principle, from LR data only: for each λ (ascending) the first
    ``max_maps`` LR maps are refined (:func:`~spinsr_tf.refine.refine`, from aligned bicubic) and
    λ is kept while the mean LR misfit ``MSE(degrade(SR), LR)`` stays within the tolerance

        τ = max(noise, MISFIT_FACTOR · misfit at the smallest λ of the grid, MISFIT_FLOOR).

    The second term is what the refinement reaches when the prior barely acts: a prior that is
    right about the texture costs almost nothing in misfit as λ grows (a relaxed state of the
    Hamiltonian fits its own LR map exactly), a wrong one (D or K off, or the wrong type) soon
    costs orders of magnitude more, and the rule then backs off to a small λ. ``noise`` is the
    noise variance of the LR maps when it is known (a microscope's noise model), ``"estimate"``
    for :func:`noise_variance` (an upper estimate: texture on the pixel scale counts as noise),
    None (default) for noise-free data.

    Returns
    -------
    float (and, with ``return_details``, ``{"tolerance", "reference_misfit", "weights",
    "lr_mse"}``).
    """
    from spinsr_tf.data.degradation import gaussian_downsample
    from spinsr_tf.refine import refine

    ham = check_hamiltonian(hamiltonian)
    x = np.asarray(lr, dtype=np.float64)[:max(int(max_maps), 1)]
    grid = sorted(check_weight(w) for w in grid)
    if not grid:
        raise UserError("the weight grid is empty")
    if noise == "estimate":
        noise = noise_variance(x)
    elif noise is not None:
        noise = check_weight(noise)

    def misfit(weight):
        sr = refine(x, ham, weight, factor, steps=steps, kernel_size=kernel_size, sigma=sigma)
        return float(np.mean((gaussian_downsample(sr, factor, kernel_size, sigma) - x) ** 2))

    errors = [misfit(grid[0])]
    tolerance = max(noise or 0.0, MISFIT_FACTOR * errors[0], MISFIT_FLOOR)
    chosen = grid[0]
    for weight in grid[1:]:
        errors.append(misfit(weight))
        if errors[-1] > tolerance:
            break
        chosen = weight
    if return_details:
        return chosen, {"tolerance": tolerance, "reference_misfit": errors[0],
                        "weights": grid[:len(errors)], "lr_mse": errors}
    return chosen
