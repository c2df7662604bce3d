"""Open boundaries: a finite L×W film instead of a torus.

An open film has no exchange or DMI bonds across its edges: the sites of the first and last
rows and columns simply have fewer neighbours (``Terms.boundary = "open"``, which the NumPy and
Keras energies, the annealing kernels and the L-BFGS relaxation honour). Edges of chiral
magnets tilt their spins (the DMI boundary twist), so an annealed open film differs from a
periodic one near its edges.

Symmetry: translations are no longer symmetries; the point operations about the film's centre
(quarter turns of a square film, mirrors) keep what the bulk Hamiltonian keeps. The dipolar
sums here are periodic, so a dipolar term is refused on an open film.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Mapping

from spinsr_tf.base.errors import UserError
from spinsr_tf.physics.hamiltonians import (ATTR_EXTENSIONS, BOUNDARIES, Hamiltonian, Terms,
                                            Wrapped, check_hamiltonian)
from spinsr_tf.physics.zeeman import InField


@dataclasses.dataclass(frozen=True)
class OpenFilm(Wrapped):
    """``base`` on an open film (no bonds across the edges). Build it with
    :func:`with_boundary`; parameters and methods of ``base`` are reachable on this object."""

    base: Hamiltonian
    name: ClassVar[str] = "open"

    def __post_init__(self):
        base = check_hamiltonian(self.base)
        if base.terms().dipolar:
            raise UserError(f"open boundaries need a Hamiltonian without a dipolar term (the "
                            f"dipolar sums are periodic), got {base.describe()}")
        object.__setattr__(self, "base", base)

    def terms(self) -> Terms:
        return dataclasses.replace(self.base.terms(), boundary="open")

    def describe(self) -> str:
        return f"{self.base.describe()} on an open film"

    def own_params(self) -> dict:
        return {"boundary": "open"}

    def replace(self, **changes) -> Hamiltonian:
        boundary = changes.pop("boundary", "open")
        return with_boundary(self.base.replace(**changes), boundary)


def with_boundary(hamiltonian, boundary: str) -> Hamiltonian:
    """``hamiltonian`` with ``"open"`` or ``"periodic"`` boundaries. The film wraps the model
    itself and a Zeeman field wraps the film, whichever order they are added in, so equal
    Hamiltonians compare equal."""
    ham = check_hamiltonian(hamiltonian)
    if boundary not in BOUNDARIES:
        raise UserError(f"boundary must be one of {', '.join(map(repr, BOUNDARIES))}, "
                        f"got {boundary!r}")
    if isinstance(ham, InField):
        return InField(with_boundary(ham.base, boundary), ham.field)
    if isinstance(ham, OpenFilm):
        ham = ham.base
    return OpenFilm(ham) if boundary == "open" else ham


def _from_attrs(ham: Hamiltonian, attrs: Mapping) -> Hamiltonian:
    """Files without a ``boundary`` attribute are periodic."""
    value = attrs.get("boundary", "periodic")
    value = value.decode() if isinstance(value, bytes) else str(value)
    return with_boundary(ham, value)


ATTR_EXTENSIONS.append(_from_attrs)
