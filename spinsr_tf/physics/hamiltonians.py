"""The two model Hamiltonians, as small immutable parameter sets.

Units: every coupling is in units of the exchange scale (energies in J = 1 by default), and the
temperature of :mod:`~spinsr_tf.physics.annealing` in the same units (k_B = 1). Spins are unit
3D vectors on a periodic square lattice; ``spins[i, j]`` is the site at x = j, y = i and the
components (Sx, Sy, Sz) are in that same frame, so the bond to the right is +x̂ and the bond to
the next row is +ŷ.

Type I (labyrinths, chiral)::

    H = -J Σ_<ij> Si·Sj + Σ_<ij> Dij·(Si × Sj)

over nearest-neighbour pairs, each counted once and oriented from i to j = i + r̂ (r̂ = +x̂ or +ŷ).
Interfacial (Néel) DMI: Dij = dmi (ẑ × r̂ij); bulk (Bloch) DMI: Dij = dmi r̂ij. At T = 0 the
ground state is a helix of wavevector q = arctan(dmi / J) per site, period 2π / q ≈ 21.6 sites for
dmi = 0.3.

Type II (out-of-plane domains and walls)::

    H = -J Σ_<ij> Si·Sj + Ddip Σ_{i<j} [Si·Sj - c (Si·r̂)(Sj·r̂)] / r³ - K Σ_i Siz²

with c = 3 (``dipolar_form="standard"``, the physical dipole-dipole energy, default) or c = 1
(``"printed"``, as the paper's formula reads). With c = 3 the shape anisotropy of a uniform film
nearly cancels K = 0.215, leaving the small effective anisotropy K_eff ≈ 0.01 that produces
domains separated by narrow walls. The dipolar sum runs over all periodic images
(``dipolar_images="converged"``, default) or the minimum image only (``"minimum"``, the form of
data made before the image sum existed); see :mod:`~spinsr_tf.physics.dipolar`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Mapping, Union

import numpy as np

from spinsr_tf.base.errors import UserError

DMI_KINDS = ("interfacial", "bulk")
DIPOLAR_FORMS = ("standard", "printed")
DIPOLAR_IMAGES = ("converged", "minimum")


def _finite(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise UserError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise UserError(f"{name} must be finite, got {value!r}")
    return value


def _choice(name: str, value, choices: tuple) -> str:
    if value not in choices:
        raise UserError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return str(value)


@dataclasses.dataclass(frozen=True)
class TypeI:
    """Exchange + Dzyaloshinskii-Moriya interaction (labyrinth textures).

    Parameters
    ----------
    J : nearest-neighbour exchange (J > 0 ferromagnetic), units of energy.
    dmi : DMI strength |D| in units of J (a negative value reverses the chirality).
    dmi_kind : ``"interfacial"`` (Néel, Dij = |D| ẑ × r̂ij) or ``"bulk"`` (Bloch, Dij = |D| r̂ij).
    """

    J: float = 1.0
    dmi: float = 0.3
    dmi_kind: str = "interfacial"

    def __post_init__(self):
        object.__setattr__(self, "J", _finite("J", self.J))
        object.__setattr__(self, "dmi", _finite("dmi", self.dmi))
        object.__setattr__(self, "dmi_kind", _choice("dmi_kind", self.dmi_kind, DMI_KINDS))

    def dmi_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """DMI vectors ``(D_x, D_y)`` of the bonds i → i + x̂ and i → i + ŷ, each shape (3,) float64."""
        if self.dmi_kind == "interfacial":
            return np.array([0.0, self.dmi, 0.0]), np.array([-self.dmi, 0.0, 0.0])
        return np.array([self.dmi, 0.0, 0.0]), np.array([0.0, self.dmi, 0.0])

    def helix_period(self) -> float:
        """T = 0 helix period 2π / arctan(|dmi| / J) in lattice sites (inf without DMI)."""
        q = math.atan2(abs(self.dmi), abs(self.J))
        return math.inf if q == 0 else 2 * math.pi / q

    def to_attrs(self) -> dict[str, Union[str, float]]:
        """Flat, HDF5-attribute friendly parameters, with ``"type": "I"``."""
        return {"type": "I", "J": self.J, "dmi": self.dmi, "dmi_kind": self.dmi_kind}


@dataclasses.dataclass(frozen=True)
class TypeII:
    """Exchange + dipole-dipole interaction + perpendicular anisotropy (domains and walls).

    Parameters
    ----------
    J : nearest-neighbour exchange, units of energy.
    dipolar : dipolar strength Ddip >= 0 in units of J: two parallel spins one site apart,
        both perpendicular to their bond, have dipolar energy ``dipolar``.
    anisotropy : uniaxial anisotropy K in units of J (K > 0 favours ±ẑ).
    dipolar_form : ``"standard"`` (factor 3, default) or ``"printed"`` (factor 1, the paper's
        formula as printed).
    dipolar_images : ``"converged"`` (lattice sum over all periodic images, default: K_eff does
        not depend on the box) or ``"minimum"`` (minimum image, box-dependent K_eff).
    """

    J: float = 1.0
    dipolar: float = 0.03
    anisotropy: float = 0.215
    dipolar_form: str = "standard"
    dipolar_images: str = "converged"

    def __post_init__(self):
        object.__setattr__(self, "J", _finite("J", self.J))
        object.__setattr__(self, "dipolar", _finite("dipolar", self.dipolar))
        if self.dipolar < 0:
            raise UserError(f"dipolar must be >= 0, got {self.dipolar!r}")
        object.__setattr__(self, "anisotropy", _finite("anisotropy", self.anisotropy))
        object.__setattr__(self, "dipolar_form",
                           _choice("dipolar_form", self.dipolar_form, DIPOLAR_FORMS))
        object.__setattr__(self, "dipolar_images",
                           _choice("dipolar_images", self.dipolar_images, DIPOLAR_IMAGES))

    @property
    def dipolar_factor(self) -> float:
        """The c in ``[Si·Sj - c (Si·r̂)(Sj·r̂)] / r³``: 3 (standard) or 1 (printed)."""
        return 3.0 if self.dipolar_form == "standard" else 1.0

    def to_attrs(self) -> dict[str, Union[str, float]]:
        """Flat, HDF5-attribute friendly parameters, with ``"type": "II"``."""
        return {"type": "II", "J": self.J, "dipolar": self.dipolar,
                "anisotropy": self.anisotropy, "dipolar_form": self.dipolar_form,
                "dipolar_images": self.dipolar_images}


Hamiltonian = Union[TypeI, TypeII]


def _text(value) -> str:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray) and value.shape == ():
        return _text(value.item())
    return str(value)


def hamiltonian_from_attrs(attrs: Mapping) -> Hamiltonian:
    """Rebuild a :class:`TypeI` or :class:`TypeII` from :meth:`~TypeI.to_attrs` output.

    Accepts values as HDF5 returns them (NumPy scalars, bytes); keys other than the Hamiltonian's
    own are ignored, so a file's whole attribute set can be passed. Type II attributes without
    ``dipolar_images`` were written before the image sum existed and describe the minimum-image
    form, so that is what they give.
    """
    if not isinstance(attrs, Mapping) or "type" not in attrs:
        raise UserError("hamiltonian attributes must be a mapping with a 'type' key ('I' or 'II')")
    kind = _text(attrs["type"])
    cls = {"I": TypeI, "II": TypeII}.get(kind)
    if cls is None:
        raise UserError(f"hamiltonian type must be 'I' or 'II', got {kind!r}")
    kwargs = {}
    for field in dataclasses.fields(cls):
        if field.name in attrs:
            value = attrs[field.name]
            if field.type == "str" or isinstance(field.default, str):
                kwargs[field.name] = _text(value)
            else:
                if isinstance(value, np.ndarray) and value.shape == ():
                    value = value.item()
                kwargs[field.name] = value
    if cls is TypeII and "dipolar_images" not in attrs:
        kwargs["dipolar_images"] = "minimum"
    return cls(**kwargs)


def check_hamiltonian(hamiltonian) -> Hamiltonian:
    """Return ``hamiltonian`` if it is a :class:`TypeI` or :class:`TypeII`, else raise UserError."""
    if not isinstance(hamiltonian, (TypeI, TypeII)):
        raise UserError(f"hamiltonian must be a TypeI or TypeII instance, got {hamiltonian!r}")
    return hamiltonian
