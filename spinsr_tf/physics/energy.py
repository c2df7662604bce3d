"""Energy, effective field and torque of spin configurations: the NumPy reference.

These float64 functions define the Hamiltonians of :mod:`~spinsr_tf.physics.hamiltonians`
numerically; the annealing kernels are tested against them. Every function takes one
configuration ``(H, W, 3)`` or a batch ``(N, H, W, 3)`` (periodic unless the Hamiltonian is on
an open film; any H, W >= 2; the spins need not be unit vectors, so that energy and field can
be differentiated freely). Energies are in
units of J with every pair counted once; the field is ``h_eff = -∂E/∂S`` (same units). Both are
evaluated from the Hamiltonian's :class:`~spinsr_tf.physics.hamiltonians.Terms`, so they hold
for any Hamiltonian built from those terms.
"""

from __future__ import annotations

import numpy as np

from spinsr_tf.base.errors import UserError
from spinsr_tf.physics.dipolar import dipolar_field
from spinsr_tf.physics.hamiltonians import check_hamiltonian


def _as_spins(spins, name: str = "spins") -> np.ndarray:
    s = np.asarray(spins)
    if s.dtype.kind not in "fiu":
        raise UserError(f"{name} must be a real array, got dtype {s.dtype}")
    if s.ndim not in (3, 4) or s.shape[-1] != 3 or s.shape[-2] < 2 or s.shape[-3] < 2:
        raise UserError(f"{name} must have shape (H, W, 3) or (N, H, W, 3) with H, W >= 2, "
                        f"got {s.shape}")
    s = s.astype(np.float64, copy=False)
    if not np.all(np.isfinite(s)):
        raise UserError(f"{name} contains NaN or infinite values")
    return s


def _neighbour(s: np.ndarray, shift: int, axis: str, open_: bool = False) -> np.ndarray:
    """Spins of the neighbour at +1 (shift=1) or -1 along x (columns) or y (rows); zeros where
    an open film has no neighbour (its edges)."""
    ax = -2 if axis == "x" else -3
    out = np.roll(s, -shift, axis=ax)
    if open_:
        edge = [slice(None)] * s.ndim
        edge[ax] = -1 if shift > 0 else 0
        out[tuple(edge)] = 0.0
    return out


def _cross(a: np.ndarray, b) -> np.ndarray:
    return np.cross(a, b)


def energy(spins, hamiltonian):
    """Total energy of a configuration, pairs counted once, in units of J.

    Parameters
    ----------
    spins : ``(H, W, 3)`` (or a batch ``(N, H, W, 3)``), periodic.
    hamiltonian : a :class:`~spinsr_tf.physics.hamiltonians.Hamiltonian` (``TypeI``,
        ``TypeII``, either in a field).

    Returns
    -------
    float for one configuration, float64 array ``(N,)`` for a batch. Divide by H·W for the
    energy per spin.
    """
    s = _as_spins(spins)
    t = check_hamiltonian(hamiltonian).terms()
    sx, sy = _neighbour(s, 1, "x", t.open), _neighbour(s, 1, "y", t.open)
    e = -t.J * np.sum(s * (sx + sy), axis=-1)
    if t.has_dmi:
        dx, dy = t.dmi_vectors()
        e = e + _cross(s, sx) @ dx + _cross(s, sy) @ dy
    if t.anisotropy:
        e = e - t.anisotropy * s[..., 2] ** 2
    if t.has_field:
        e = e - s @ t.field_vector()
    if t.dipolar:
        h = dipolar_field(s, t.dipolar, t.dipolar_factor, t.dipolar_images)
        e = e - 0.5 * np.sum(s * h, axis=-1)
    total = e.sum(axis=(-2, -1))
    return float(total) if s.ndim == 3 else total


def local_field(spins, hamiltonian) -> np.ndarray:
    """Effective field ``h_i = -∂E/∂S_i`` at every site, units of J.

    ``J Σ_nn S_j + D_x × (S_{i+x} - S_{i-x}) + D_y × (S_{i+y} - S_{i-y}) + 2K S_iz ẑ + h + h_dip``
    (each term where the Hamiltonian has it; dipolar field by FFT, periodic images as its
    ``dipolar_images`` says).

    Returns
    -------
    float64 array of the shape of ``spins``.
    """
    s = _as_spins(spins)
    t = check_hamiltonian(hamiltonian).terms()
    xp, xm = _neighbour(s, 1, "x", t.open), _neighbour(s, -1, "x", t.open)
    yp, ym = _neighbour(s, 1, "y", t.open), _neighbour(s, -1, "y", t.open)
    h = t.J * (xp + xm + yp + ym)
    if t.has_dmi:
        dx, dy = t.dmi_vectors()
        h += _cross(dx, xp - xm) + _cross(dy, yp - ym)
    if t.anisotropy:
        h[..., 2] += 2.0 * t.anisotropy * s[..., 2]
    if t.has_field:
        h += t.field_vector()
    if t.dipolar:
        h += dipolar_field(s, t.dipolar, t.dipolar_factor, t.dipolar_images)
    return h


def max_torque(spins, hamiltonian):
    """Largest local torque ``max_i |S_i × h_i|`` (units of J): zero in a relaxed state.

    Returns
    -------
    float for one configuration, float64 array ``(N,)`` for a batch.
    """
    s = _as_spins(spins)
    t = np.linalg.norm(np.cross(s, local_field(s, hamiltonian)), axis=-1).max(axis=(-2, -1))
    return float(t) if s.ndim == 3 else t


def torque_statistics(spins, hamiltonian) -> dict[str, np.ndarray]:
    """Per-configuration torque summary, units of J: ``{"max": (N,), "median": (N,)}`` of the
    local torques |S_i × h_i| (float64, computed on the stored spins). Zero for a stationary
    state; Type II's default (arrested) states keep a finite torque on their walls."""
    s = _as_spins(spins)
    if s.ndim == 3:
        s = s[None]
    ham = check_hamiltonian(hamiltonian)
    t = np.linalg.norm(np.cross(s, local_field(s, ham)), axis=-1)
    flat = t.reshape(t.shape[0], -1)
    return {"max": flat.max(axis=1), "median": np.median(flat, axis=1)}
