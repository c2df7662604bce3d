"""Named physics priors: which Hamiltonian an SR map's energy is measured with, and its weight.

``"typeI"`` and ``"typeII"`` use the Hamiltonian the data were made with (a data file's
``hamiltonian.*`` attributes, else the defaults) with optional overrides; ``"exchange"`` is
exchange alone, for images whose Hamiltonian is unknown. NumPy only: the training term
(:mod:`spinsr_tf.nn.losses.physics_prior`) and the refinement (:mod:`spinsr_tf.inference.refine`)
both start from here.
"""

from __future__ import annotations

from typing import Mapping

from spinsr_tf.base.checks import check_real
from spinsr_tf.base.errors import UserError
from spinsr_tf.physics.hamiltonians import (Hamiltonian, TypeI, hamiltonian_by_name,
                                            hamiltonian_from_attrs)
from spinsr_tf.physics.zeeman import FIELD_KEYS

PRIORS = ("none", "typeI", "typeII", "exchange")


def exchange_only(J: float = 1.0) -> TypeI:
    """The generic prior for textures whose Hamiltonian is unknown: exchange alone (Type I, D = 0)."""
    return TypeI(J=J, dmi=0.0)


def resolve_prior(name: str, attrs: Mapping | None = None,
                  overrides: Mapping | None = None) -> Hamiltonian | None:
    """The Hamiltonian of a prior, or None for ``"none"``.

    Parameters
    ----------
    name : one of :data:`PRIORS`.
    attrs : attributes of the data file; its ``hamiltonian.*`` keys (as written by
        ``spinsr-tf generate``) supply the parameters of a matching type.
    overrides : e.g. ``{"dmi": 0.36}`` or ``{"field_z": 0.05}``: parameters of the Hamiltonian
        to replace (a deliberately wrong Hamiltonian, or one known better than the file says).
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
        stored = {k[len("hamiltonian."):]: v for k, v in (attrs or {}).items()
                  if str(k).startswith("hamiltonian.")}
        ham = hamiltonian_by_name(name)
        if stored:
            found = hamiltonian_from_attrs(stored)
            if found.kind == ham.kind:
                ham = found
    return _override(ham, dict(overrides or {}))


def _override(ham: Hamiltonian, overrides: dict) -> Hamiltonian:
    """``ham`` with some parameters replaced; the field components may be set on any model."""
    if not overrides:
        return ham
    names = set(ham.parameter_names()) | set(FIELD_KEYS)
    for key in overrides:
        if key not in names:
            raise UserError(f"{ham.describe()} has no parameter {key!r} "
                            f"(parameters: {', '.join(sorted(names))})")
    return hamiltonian_from_attrs({**ham.to_attrs(), **overrides})


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
    """λ of a physics prior: a finite number >= 0."""
    return check_real("physics weight", weight, 0)
