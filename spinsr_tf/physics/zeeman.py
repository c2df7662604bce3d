"""The Zeeman term: a uniform external field added to any Hamiltonian.

``H_Z = -Σ_i h·S_i``, with h = (hx, hy, hz) in units of J (k_B = 1, the magnetic moment absorbed
into h): a spin along h lowers its energy by |h|, so annealing in a field gives a net
magnetisation along h. The term enters the effective field as the constant h
(``h_eff = -∂E/∂S`` gains +h), which is exactly what the annealing kernels and the relaxation
take (:class:`~spinsr_tf.physics.hamiltonians.Terms`), so nothing else changes for it.

Symmetry: the field is odd under the global flip S → −S, so a field breaks it (and, along ẑ,
zflip and the flip-over, which reverse Sz); with h → −h the flip is again a symmetry. Lattice
operations whose spin matrix P leaves h fixed survive: for h ∥ ẑ the quarter turns and the
mirror (P = diag(−1, 1, 1)) keep the field.

Scale (measured, docs/physics.md): annealed Type I films of D/J = 0.3 form a skyrmion lattice
for hz ≈ 0.03–0.09 J and isolated skyrmions in a uniform background at 0.12–0.15 J, and are
uniform from hz ≈ 0.165 J; with D/J = 0.2 they are uniform from 0.09 J. That is about
2·D²/J (the continuum chiral field H_D = D²/(2A) = D²/J, stiffness A = J/2, times ~2). Type II
films (Ddip = 0.03, K = 0.215, default schedule) are uniform from hz ≈ 0.006 J = 0.2·Ddip: their
domains are arrested, not equilibrium ones, and a small field biases them during the cooling.
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar, Mapping

import numpy as np

from spinsr_tf.base.errors import UserError
from spinsr_tf.physics.hamiltonians import (ATTR_EXTENSIONS, Hamiltonian, Terms, Wrapped,
                                            check_hamiltonian)

#: Attribute names of the field components (units of J) in files and ``to_attrs()``.
FIELD_KEYS = ("field_x", "field_y", "field_z")


def _field_vector(field) -> tuple[float, float, float]:
    """A scalar (hz) or a 3-vector → a tuple of three finite floats."""
    values = np.asarray(field, dtype=object).reshape(-1)
    if values.size == 1:
        values = np.array([0.0, 0.0, values[0]], dtype=object)
    if values.size != 3:
        raise UserError(f"field must be hz or a vector (hx, hy, hz), got {field!r}")
    out = []
    for name, v in zip(FIELD_KEYS, values):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer,
                                                                  np.floating)):
            raise UserError(f"{name} must be a real number, got {v!r}")
        if not math.isfinite(float(v)):
            raise UserError(f"{name} must be finite, got {v!r}")
        out.append(float(v))
    return tuple(out)


@dataclasses.dataclass(frozen=True)
class InField(Wrapped):
    """``base`` plus the Zeeman term ``-Σ_i h·S_i`` (h = ``field``, units of J).

    Build it with :func:`with_field`, which keeps a zero field out (so a Hamiltonian without a
    field is written to files exactly as before). Parameters and methods of ``base``
    (``dmi``, ``helix_period``…) are reachable on this object.
    """

    base: Hamiltonian
    field: tuple = (0.0, 0.0, 0.0)
    name: ClassVar[str] = "zeeman"

    def __post_init__(self):
        base = check_hamiltonian(self.base)
        field = _field_vector(self.field)
        if isinstance(base, InField):   # one field: the sum
            field = tuple(a + b for a, b in zip(base.field, field))
            base = base.base
        object.__setattr__(self, "base", base)
        object.__setattr__(self, "field", field)

    def terms(self) -> Terms:
        t = self.base.terms()
        return dataclasses.replace(t, field=tuple(a + b for a, b in zip(t.field, self.field)))

    def describe(self) -> str:
        return f"{self.base.describe()} in the field h = {self.field}"

    def own_params(self) -> dict:
        return dict(zip(FIELD_KEYS, self.field))

    def replace(self, **changes) -> Hamiltonian:
        own = {k: changes.pop(k) for k in FIELD_KEYS if k in changes}
        field = [own.get(k, v) for k, v in zip(FIELD_KEYS, self.field)]
        return with_field(self.base.replace(**changes), field)


def with_field(hamiltonian, field) -> Hamiltonian:
    """``hamiltonian`` in the uniform field ``field`` (hz, or (hx, hy, hz); units of J).

    A Hamiltonian already in a field gets the sum. A zero total field returns the Hamiltonian
    without a Zeeman term (the same object for a zero ``field``: same attrs, same annealing bit
    for bit).
    """
    ham = check_hamiltonian(hamiltonian)
    h = _field_vector(field)
    if not any(h):
        return ham
    base, old = (ham.base, ham.field) if isinstance(ham, InField) else (ham, (0.0, 0.0, 0.0))
    total = tuple(a + b for a, b in zip(old, h))
    return InField(base, total) if any(total) else base


def field_of(hamiltonian) -> np.ndarray:
    """The Zeeman field of a Hamiltonian, shape (3,) float64 (zeros without one)."""
    return check_hamiltonian(hamiltonian).terms().field_vector()


def saturation_field(hamiltonian) -> float:
    """The field (units of J) from which an annealed film comes out uniform, estimated from the
    measurements in the module docstring: ``2·D²/J`` for DMI plus ``0.2·Ddip`` for a dipolar
    term (0 for exchange alone: any field saturates a ferromagnet). A guide for warnings, not
    a phase boundary."""
    t = check_hamiltonian(hamiltonian).terms()
    dx, _ = t.dmi_vectors()
    chiral = 2.0 * float(dx @ dx) / abs(t.J) if t.J else math.inf
    return chiral + 0.2 * t.dipolar


def topological_charge(spins) -> np.ndarray:
    """Skyrmion number Q = (1/4π) Σ solid angles of periodic unit spins (Berg–Lüscher: each
    plaquette split into two triangles), an integer on a periodic lattice: −1 for each skyrmion
    whose core points against +ẑ (the textures of hz > 0), +1 against −ẑ.

    Parameters
    ----------
    spins : ``(L, W, 3)`` or ``(N, L, W, 3)`` unit vectors, periodic.

    Returns
    -------
    float64, () or ``(N,)``.
    """
    s = np.asarray(spins, dtype=np.float64)
    if s.ndim not in (3, 4) or s.shape[-1] != 3:
        raise UserError(f"spins must have shape (H, W, 3) or (N, H, W, 3), got {s.shape}")
    b, d = np.roll(s, -1, -2), np.roll(s, -1, -3)
    c = np.roll(d, -1, -2)

    def omega(x, y, z):
        num = np.sum(x * np.cross(y, z), -1)
        den = 1 + np.sum(x * y, -1) + np.sum(y * z, -1) + np.sum(z * x, -1)
        return 2 * np.arctan2(num, den)

    return (omega(s, b, c) + omega(s, c, d)).sum(axis=(-2, -1)) / (4 * np.pi)


def _from_attrs(ham: Hamiltonian, attrs: Mapping) -> Hamiltonian:
    """Read the field keys of a file (absent in files without a field: none)."""
    values = []
    for key in FIELD_KEYS:
        v = attrs.get(key, 0.0)
        values.append(v.item() if isinstance(v, np.generic) or (
            isinstance(v, np.ndarray) and v.shape == ()) else v)
    return with_field(ham, values)


ATTR_EXTENSIONS.append(_from_attrs)
