"""Physics: Hamiltonians, energies and Monte Carlo simulated annealing of spin lattices.

Everything imported here is NumPy/numba (no Keras); :mod:`.keras_energy` holds the same
energies in ``keras.ops`` for training graphs and is imported on its own. Units: energies, fields
and temperatures in units of the exchange J (k_B = 1). Spins: ``(L, L, 3)`` or ``(N, L, L, 3)`` arrays of 3D vectors on a
periodic square lattice, ``spins[i, j]`` at x = j, y = i.
"""

from spinsr_tf.physics.annealing import Schedule, anneal, default_schedule
from spinsr_tf.physics.dipolar import dipolar_field, dipolar_kernel
from spinsr_tf.physics.energy import energy, local_field, max_torque
from spinsr_tf.physics.hamiltonians import TypeI, TypeII, hamiltonian_from_attrs

__all__ = [
    "Schedule",
    "TypeI",
    "TypeII",
    "anneal",
    "default_schedule",
    "dipolar_field",
    "dipolar_kernel",
    "energy",
    "hamiltonian_from_attrs",
    "local_field",
    "max_torque",
]
