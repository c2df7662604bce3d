"""Physics: Hamiltonians, energies and Monte Carlo simulated annealing of spin lattices.

Everything imported here is NumPy/numba (no Keras); :mod:`.keras_energy` holds the same
energies in ``keras.ops`` for training graphs and is imported on its own. Units: energies, fields
and temperatures in units of the exchange J (k_B = 1). Spins: ``(L, L, 3)`` or ``(N, L, L, 3)``
arrays of 3D vectors on a periodic square lattice (or an open film: :func:`with_boundary`),
``spins[i, j]`` at x = j, y = i. Hamiltonians share one interface
(:class:`~spinsr_tf.physics.hamiltonians.Hamiltonian`); :func:`with_field` adds a Zeeman field.
"""

from spinsr_tf.physics.annealing import Schedule, anneal, default_schedule
from spinsr_tf.physics.dipolar import dipolar_field, dipolar_kernel
from spinsr_tf.physics.energy import energy, local_field, max_torque
from spinsr_tf.physics.hamiltonians import (REGISTRY, Hamiltonian, Terms, TypeI, TypeII,
                                            hamiltonian_by_name, hamiltonian_from_attrs)
from spinsr_tf.physics.zeeman import InField, saturation_field, topological_charge, with_field
from spinsr_tf.physics.boundaries import OpenFilm, with_boundary

__all__ = [
    "REGISTRY",
    "Hamiltonian",
    "InField",
    "OpenFilm",
    "Schedule",
    "Terms",
    "TypeI",
    "TypeII",
    "anneal",
    "default_schedule",
    "dipolar_field",
    "dipolar_kernel",
    "energy",
    "hamiltonian_by_name",
    "hamiltonian_from_attrs",
    "local_field",
    "max_torque",
    "saturation_field",
    "topological_charge",
    "with_boundary",
    "with_field",
]
