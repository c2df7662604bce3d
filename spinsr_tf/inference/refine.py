"""Per-image physics refinement: the SR map that fits the LR data at low energy.

An LR map says little about the HR map between its samples; a magnet says a lot: its texture is a
(meta)stable state of a known Hamiltonian. :func:`refine` minimises, for each map separately,

    L(m) = MSE(degrade(m), LR) + λ · E_H(m) / N,         |m_i| = 1 at every site,

where ``degrade`` is the network's own degradation (a
:class:`~spinsr_tf.data.degradation.Degradation`: PSF, window and pixel model, so a camera-pixel
model is refined against camera pixels), ``E_H`` the energy of
:func:`spinsr_tf.physics.energy` and N the number of HR sites. The unit-length constraint is kept
by descending on the sphere: the gradient is projected onto the tangent plane of every spin, a step
of Adam is taken and the spins are normalised again. Gradients are exact and analytic
(``∂E/∂m = -h_eff``, :func:`spinsr_tf.physics.local_field`; the data term's is ``2/M Dᵀ(Dm - LR)``
with :meth:`~spinsr_tf.data.degradation.Degradation.apply` and its
:meth:`~spinsr_tf.data.degradation.Degradation.adjoint`), in float64 NumPy: no graph to build,
any map size, and the same objective as the physics prior of training
(:mod:`spinsr_tf.inference.weight_rule`).

The start is the network's SR map or, by default, aligned bicubic interpolation (placed for the
degradation's pixel model) + normalisation.
The maps are periodic (simulations): the energy has no open padding.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from spinsr_tf.data.interpolation import unit_normalize
from spinsr_tf.data.degradation import Degradation, as_degradation
from spinsr_tf.base.checks import check_int, check_real
from spinsr_tf.base.errors import UserError
from spinsr_tf.physics.energy import energy, local_field
from spinsr_tf.physics.hamiltonians import check_hamiltonian


@dataclasses.dataclass(frozen=True)
class Objective:
    """The two terms of the refinement loss for a batch of maps, ``(B,)`` float64 each."""

    data: np.ndarray      # MSE(degrade(m), LR) over the LR pixels and channels
    energy: np.ndarray    # E_H(m) / N, units of J


def _check_lr(lr) -> np.ndarray:
    x = np.asarray(lr, dtype=np.float64)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[-1] != 3 or 0 in x.shape:
        raise UserError(f"lr must have shape (N, h, w, 3) (spin vectors), got {np.shape(lr)}")
    if not np.isfinite(x).all():
        raise UserError("lr contains NaN or infinite values")
    return x


def _periodic(degradation) -> Degradation:
    deg = as_degradation(degradation)
    if deg.padding != "periodic":
        raise UserError("refinement needs periodic maps (the energy has no open boundary), got "
                        f"a degradation with {deg.padding} padding")
    return deg


def objective(sr, lr, hamiltonian, weight: float, degradation) -> Objective:
    """The two terms of ``L`` for SR maps ``(B, H, W, 3)`` against LR maps ``(B, h, w, 3)``
    (the total is ``data + weight · energy``); ``degradation`` as in :func:`refine`."""
    deg = _periodic(degradation)
    factor = deg.factor
    lr = _check_lr(lr)
    m = np.asarray(sr, dtype=np.float64)
    if m.ndim == 3:
        m = m[None]
    if m.shape[0] != lr.shape[0] or m.shape[1:3] != (lr.shape[1] * factor, lr.shape[2] * factor):
        raise UserError(f"sr of shape {m.shape} does not match lr {lr.shape} at factor {factor}")
    data = np.mean((deg.apply(m, dtype=np.float64) - lr) ** 2, axis=(1, 2, 3))
    n = m.shape[1] * m.shape[2]
    return Objective(data=data, energy=np.atleast_1d(energy(m, check_hamiltonian(hamiltonian))) / n)


def refine(lr, hamiltonian, weight: float, degradation, start=None, steps: int = 300,
           step_size: float = 0.02, mask=None, return_history: bool = False):
    """Minimise ``MSE(degrade(m), LR) + weight · E_H(m)/N`` over unit-vector maps ``m``.

    Parameters
    ----------
    lr : ``(N, h, w, 3)`` (or one ``(h, w, 3)``) LR spin maps, periodic.
    hamiltonian : :class:`~spinsr_tf.physics.TypeI`, :class:`~spinsr_tf.physics.TypeII`, or
        :func:`~spinsr_tf.physics.keras_energy.exchange_only` when only exchange is known.
    weight : λ >= 0, the weight of the energy per spin (units: LR MSE per J). 0 fits the LR data
        alone. :func:`spinsr_tf.inference.weight_rule.choose_weight` picks it from the LR maps.
    degradation : the :class:`~spinsr_tf.data.degradation.Degradation` that made ``lr`` (a
        model's is ``model.get_layer("lr").degradation``), periodic; an integer is that factor
        with the paper's settings (σ = 1, 23 taps, point samples).
    start : ``(N, h·f, w·f, 3)`` initial SR maps (e.g. a network's output); default aligned
        bicubic interpolation placed for the degradation's pixel model. Normalised to unit
        vectors first.
    steps, step_size : iterations of Adam and its step (radians, roughly, per spin and step).
    mask : optional ``(N, h, w)`` 0/1 weights of the LR pixels in the data term (the others are
        left to the prior; :func:`spinsr_tf.inference.weight_rule.choose_weight` holds pixels out this way).
    return_history : also return the per-step loss terms.

    Returns
    -------
    float32 ``(N, h·f, w·f, 3)`` unit-vector SR maps (one map in, one map out); with
    ``return_history`` also a dict ``{"data": (steps + 1, N), "energy": (steps + 1, N)}``.
    """
    single = np.ndim(lr) == 3
    x = _check_lr(lr)
    ham = check_hamiltonian(hamiltonian)
    deg = _periodic(degradation)
    factor = deg.factor
    weight = check_real("weight", weight, 0.0)
    steps = check_int("steps", steps, 0)
    step_size = check_real("step_size", step_size, 0.0)
    b, h, w, _ = x.shape
    shape = (b, h * factor, w * factor, 3)
    if start is None:
        m = deg.upsample(x, "bicubic", "aligned").astype(np.float64)
    else:
        m = np.asarray(start, dtype=np.float64)
        if m.shape != shape and not (b == 1 and m.shape == shape[1:]):
            raise UserError(f"start must have shape {shape}, got {m.shape}")
        m = m.reshape(shape)
        if not np.isfinite(m).all():
            raise UserError("start contains NaN or infinite values")
    m = unit_normalize(m)
    if mask is None:
        keep = np.ones((b, h, w, 1))
    else:
        keep = np.asarray(mask, dtype=np.float64).reshape(b, h, w, 1) \
            if np.size(mask) == b * h * w else None
        if keep is None or not np.all((keep == 0) | (keep == 1)) or not keep.any(axis=(1, 2)).all():
            raise UserError(f"mask must hold 0/1 values of shape {(b, h, w)} with at least one "
                            "1 per map")
    n_lr, n_hr = 3 * keep.sum(axis=(1, 2, 3))[:, None, None, None], shape[1] * shape[2]
    first, second = np.zeros_like(m), np.zeros_like(m)
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    history = {"data": [], "energy": []}
    for t in range(1, steps + 2):
        residual = (deg.apply(m, dtype=np.float64) - x) * keep
        field = local_field(m, ham)
        if return_history:
            history["data"].append(np.sum(residual ** 2, axis=(1, 2, 3)) / n_lr[:, 0, 0, 0])
            # E is quadratic in the spins, so E = -1/2 Σ m·h_eff (no second energy pass)
            history["energy"].append(-0.5 * np.sum(m * field, axis=(1, 2, 3)) / n_hr)
        if t > steps:
            break
        grad = (2.0 / n_lr) * deg.adjoint(residual) - (weight / n_hr) * field
        grad -= np.sum(grad * m, axis=-1, keepdims=True) * m
        first = beta1 * first + (1 - beta1) * grad
        second = beta2 * second + (1 - beta2) * grad * grad
        step = (first / (1 - beta1 ** t)) / (np.sqrt(second / (1 - beta2 ** t)) + eps)
        m = unit_normalize(m - step_size * step)
    out = m.astype(np.float32)
    out = out[0] if single else out
    if return_history:
        return out, {k: np.stack(v) for k, v in history.items()}
    return out

