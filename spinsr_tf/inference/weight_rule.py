"""The weight λ of a physics prior, chosen from the LR maps alone (the discrepancy principle).

A simulated ground truth is a (meta)stable state of a known Hamiltonian, and any real magnet obeys
exchange at least. So besides reproducing its LR input, an SR map should have low energy. Training
with a prior (``spinsr-tf train --physics ...``) adds ``λ · E_H(SR) / N`` to the LR loss (the HR
maps still never enter it); :func:`spinsr_tf.inference.refine.refine` minimises the same objective for one
image at a time.

The priors themselves (names, Hamiltonians, overrides) are :mod:`spinsr_tf.physics.priors`.

The weight λ is chosen from the LR maps alone by the discrepancy principle
(:func:`choose_weight`): the largest λ of a grid whose refined maps still reproduce their LR
inputs to within the noise, or, for noise-free data, nearly as well as without the prior.
"""

from __future__ import annotations

import numpy as np

from spinsr_tf.base.errors import UserError
from spinsr_tf.physics.hamiltonians import check_hamiltonian
from spinsr_tf.physics.priors import check_weight
#: λ candidates of :func:`choose_weight`, in LR-MSE per J of energy per spin.
WEIGHT_GRID = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)
#: How much more LR misfit than at the grid's smallest λ a prior may cost (noise-free data).
MISFIT_FACTOR = 10.0
#: LR misfit that always counts as a perfect fit (LR PSNR 106 dB for spins): below it the
#: differences are the optimiser's rounding, not the prior's.
MISFIT_FLOOR = 1e-10


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


def choose_weight(lr, hamiltonian, degradation, grid=WEIGHT_GRID, max_maps: int = 4,
                  steps: int = 200, noise: float | str | None = None,
                  return_details: bool = False):
    """Largest λ of ``grid`` whose refined maps reproduce their LR inputs as well as the data allow.

    Morozov's discrepancy principle, from LR data only: for each λ (ascending) the first
    ``max_maps`` LR maps are refined (:func:`~spinsr_tf.inference.refine.refine`, from aligned bicubic) and
    λ is kept while the mean LR misfit ``MSE(degrade(SR), LR)`` stays within the tolerance

        τ = max(noise, MISFIT_FACTOR · misfit at the smallest λ of the grid, MISFIT_FLOOR).

    The second term is what the refinement reaches when the prior barely acts: a prior that is
    right about the texture costs almost nothing in misfit as λ grows (a relaxed state of the
    Hamiltonian fits its own LR map exactly), a wrong one (D or K off, or the wrong type) soon
    costs orders of magnitude more, and the rule then backs off to a small λ. ``noise`` is the
    noise variance of the LR maps when it is known (a microscope's noise model), ``"estimate"``
    for :func:`noise_variance` (an upper estimate: texture on the pixel scale counts as noise),
    None (default) for noise-free data. ``degradation`` is the
    :class:`~spinsr_tf.data.degradation.Degradation` that made ``lr`` (its pixel model
    included; an integer is that factor with the paper's settings), used by both the refinement
    and the misfit.

    Returns
    -------
    float (and, with ``return_details``, ``{"tolerance", "reference_misfit", "weights",
    "lr_mse"}``).
    """
    from spinsr_tf.data.degradation import as_degradation
    from spinsr_tf.inference.refine import refine

    ham = check_hamiltonian(hamiltonian)
    deg = as_degradation(degradation)
    x = np.asarray(lr, dtype=np.float64)[:max(int(max_maps), 1)]
    grid = sorted(check_weight(w) for w in grid)
    if not grid:
        raise UserError("the weight grid is empty")
    if noise == "estimate":
        noise = noise_variance(x)
    elif noise is not None:
        noise = check_weight(noise)

    def misfit(weight):
        sr = refine(x, ham, weight, deg, steps=steps)
        return float(np.mean((deg.apply(sr) - x) ** 2))

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


def with_chosen_weights(config, out_dir=None, resume: bool = False, progress: bool = True):
    """``config`` (a :class:`~spinsr_tf.nn.config.TrainConfig`) with every physics term's
    λ = None replaced by :func:`choose_weight` on the first four training LR maps.

    A resumed run reuses the λ its ``config.json`` recorded for the same prior, so resuming
    never re-runs the search (nor changes λ).
    """
    import dataclasses
    import json
    from pathlib import Path

    from spinsr_tf.data.stream import split_indices
    from spinsr_tf.nn.losses import PhysicsPrior
    from spinsr_tf.nn.training import open_config_data

    term = config.term(PhysicsPrior)
    if term is None or term.weight is not None:
        return config
    stored = None
    if resume and out_dir is not None and (Path(out_dir) / "config.json").is_file():
        try:
            record = json.loads((Path(out_dir) / "config.json").read_text())
            stored = next((t for t in record.get("losses", ())
                           if t.get("term") == PhysicsPrior.kind
                           and t.get("prior") == term.prior and t.get("weight") is not None),
                          None)
        except (OSError, ValueError, AttributeError):
            stored = None
    if stored is not None:
        chosen = dataclasses.replace(term, weight=stored["weight"],
                                     weight_rule=stored.get("weight_rule"))
    else:
        source = open_config_data(config)
        try:
            term = term.resolved(source.attrs)
            term.check(source.lr_shape[-1], source.degradation.padding, source.lr_shape[:2])
            train_idx, _ = split_indices(source.n, config.val_fraction)
            if progress:
                print("choosing the physics weight from the LR maps (discrepancy principle)",
                      flush=True)
            from spinsr_tf.physics.hamiltonians import hamiltonian_from_attrs

            weight, rule = choose_weight(source.lr(train_idx[:4]),
                                         hamiltonian_from_attrs(term.hamiltonian),
                                         source.degradation, return_details=True)
        finally:
            source.close()
        if progress:
            print(f"physics weight {weight:g} (LR misfit tolerance {rule['tolerance']:.3g})",
                  flush=True)
        chosen = dataclasses.replace(term, weight=weight,
                                     weight_rule=json.loads(json.dumps(rule)))
    losses = tuple(chosen if isinstance(t, PhysicsPrior) else t for t in config.losses)
    return config.replace(losses=losses)
