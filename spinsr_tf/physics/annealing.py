"""Monte Carlo simulated annealing: ground-truth spin configurations.

Each sample starts from independent random spins (infinite temperature), is cooled by
Metropolis sweeps from ``t_start`` (above the ordering scale, ~2J) to ``t_end``, and is then
relaxed at zero temperature (over-relaxed sweeps, or L-BFGS: :mod:`~spinsr_tf.physics.minimize`)
until the largest local torque |S_i × h_i| is below ``torque_tol``, so the stored state is a
clean metastable state with no frozen thermal noise. (Type II's default schedule caps the
relaxation before domain coarsening: :func:`default_schedule`.)

Updates are checkerboard (two-sublattice) sweeps: all sites of one sublattice, whose nearest
neighbours all belong to the other one, are updated from the same neighbour values. For nearest-
neighbour terms (exchange, DMI) and the on-site anisotropy this is exactly a sequential sweep in
a particular order. The dipolar field of Type II couples sites of the same sublattice; it is
computed by FFT once per half-sweep and held fixed while that sublattice is updated, so each
move sees the dipolar field of the configuration at the start of its half-sweep. That is an
approximation (of order Ddip times the change of the other same-sublattice spins within one
half-sweep); the relaxation with the same refresh converges to a state whose exact torque is
below the tolerance, so the final states are true stationary points of the full Hamiltonian.

Moves are cones: S' = normalize(S + δ·g) with g uniform on the unit sphere (a symmetric proposal),
δ rescaled towards the target acceptance after each sweep that is followed by a lower
temperature, so moves stay effective at low T; at a fixed temperature δ is fixed, so the chain
keeps detailed balance.

Reproducibility: sample k depends only on ``(seed, k, hamiltonian, schedule, size)``: its random
numbers come from generators seeded by ``(seed, k)`` (:mod:`~spinsr_tf.physics.rng`) and nothing
in its computation depends on the other samples of the call, their order or the thread count.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import math
from typing import Union

import numba
import numpy as np

from spinsr_tf.base.checks import check_int, check_real
from spinsr_tf.base.errors import UserError
from . import _kernels as kern
from spinsr_tf.physics import minimize
from spinsr_tf.physics.dipolar import dipolar_kernel, kernel_spectrum, sublattice_spectra
from spinsr_tf.physics.hamiltonians import (TYPE_II_RELAX_OMEGA, TYPE_II_RELAX_SWEEPS,  # noqa: F401
                                            TYPE_II_SWEEPS, Terms, check_hamiltonian)
from spinsr_tf.physics.rng import lane_states, sample_key

COOLINGS = ("geometric", "linear")
#: Zero-temperature relaxation methods of a :class:`Schedule`.
RELAX_METHODS = ("overrelax", "lbfgs")


@dataclasses.dataclass(frozen=True)
class Schedule:
    """Annealing schedule and zero-temperature relaxation (temperatures in units of J).

    Parameters
    ----------
    t_start : first temperature, above the ordering scale (default 2.0).
    t_end : last Metropolis temperature, 0 < t_end <= t_start.
    sweeps : Metropolis sweeps (one per temperature; a sweep updates every site once).
    cooling : ``"geometric"`` (T_n = t_start·(t_end/t_start)^(n/(sweeps-1)), default) or
        ``"linear"``.
    relax_sweeps : cap on zero-temperature relaxation sweeps, or L-BFGS iterations (0 skips the
        relaxation).
    torque_tol : the relaxation stops once max_i |S_i × h_i| < torque_tol (units of J).
    acceptance : target acceptance of the cone moves, in (0, 1); the cone width adapts only
        between sweeps of different temperatures.
    relax_omega : over-relaxation step S ← normalize(S + ω(ĥ - S)); 1 aligns each spin with its
        field, values in (1, 2) over-relax. Near 2 the slow collective modes converge much faster
        (measured: 1.99 needs ~1,200 sweeps where 1.9 needs 4,000-20,000).
    relax_method : ``"overrelax"`` (checkerboard over-relaxed sweeps, default: fastest per
        sample, docs/physics.md) or ``"lbfgs"`` (L-BFGS on the product of spheres,
        :mod:`~spinsr_tf.physics.minimize`, float64).
    relax_memory : L-BFGS pairs kept (``"lbfgs"`` only), 1..50.
    relax_max_rotation : largest rotation of one spin in one L-BFGS step, radians, (0, 1].
    """

    t_start: float = 1.2
    t_end: float = 0.3
    sweeps: int = 300
    cooling: str = "geometric"
    relax_sweeps: int = 10000
    torque_tol: float = 1e-4
    acceptance: float = 0.4
    relax_omega: float = 1.99
    relax_method: str = "overrelax"
    relax_memory: int = 5
    relax_max_rotation: float = 0.2

    def __post_init__(self):
        t_start = check_real("t_start", self.t_start, 0.0, strict=True, unit="J")
        t_end = check_real("t_end", self.t_end, 0.0, strict=True, unit="J")
        if t_end > t_start:
            raise UserError(f"t_end must be <= t_start ({t_start}), got {t_end!r}")
        object.__setattr__(self, "t_start", t_start)
        object.__setattr__(self, "t_end", t_end)
        object.__setattr__(self, "sweeps", check_int("sweeps", self.sweeps, 1))
        if self.cooling not in COOLINGS:
            raise UserError(f"cooling must be one of {', '.join(map(repr, COOLINGS))}, "
                            f"got {self.cooling!r}")
        object.__setattr__(self, "cooling", str(self.cooling))
        object.__setattr__(self, "relax_sweeps", check_int("relax_sweeps", self.relax_sweeps, 0))
        object.__setattr__(self, "torque_tol",
                           check_real("torque_tol", self.torque_tol, 0.0, strict=True, unit="J"))
        object.__setattr__(self, "acceptance", check_real("acceptance", self.acceptance, 0.0,
                                                          strict=True, below=1.0))
        object.__setattr__(self, "relax_omega", check_real("relax_omega", self.relax_omega, 1.0,
                                                           below=2.0))
        if self.relax_method not in RELAX_METHODS:
            raise UserError(f"relax_method must be one of {', '.join(map(repr, RELAX_METHODS))}, "
                            f"got {self.relax_method!r}")
        object.__setattr__(self, "relax_method", str(self.relax_method))
        object.__setattr__(self, "relax_memory", check_int("relax_memory", self.relax_memory, 1,
                                                           50))
        object.__setattr__(self, "relax_max_rotation",
                           check_real("relax_max_rotation", self.relax_max_rotation, 0.0,
                                      strict=True, maximum=1.0))

    def temperatures(self) -> np.ndarray:
        """Temperature of each Metropolis sweep, shape ``(sweeps,)`` float64, units of J."""
        x = np.arange(self.sweeps) / max(self.sweeps - 1, 1)
        if self.cooling == "geometric":
            return self.t_start * (self.t_end / self.t_start) ** x
        return self.t_start + (self.t_end - self.t_start) * x

    def to_attrs(self) -> dict[str, Union[str, float, int]]:
        """Flat, HDF5-attribute friendly parameters."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_attrs(cls, attrs) -> "Schedule":
        """Inverse of :meth:`to_attrs` (unknown keys ignored, NumPy scalars and bytes accepted)."""
        kwargs = {}
        for f in dataclasses.fields(cls):
            if f.name in attrs:
                v = attrs[f.name]
                v = v.decode() if isinstance(v, bytes) else v
                kwargs[f.name] = v.item() if isinstance(v, np.generic) else v
        return cls(**kwargs)


def _check_size(size) -> int:
    return check_int("size (checkerboard updates)", size, 4, parity="even")


def _check_indices(indices) -> list[int]:
    arr = np.asarray(indices)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
        raise UserError(f"indices must be a 1D sequence of non-negative integers, got {indices!r}")
    out = [int(k) for k in arr]
    if any(k < 0 for k in out):
        raise UserError(f"indices must be non-negative, got {min(out)}")
    return out


def _anneal_dipolar_sample(s, st, betas, terms: Terms, schedule: Schedule):
    """Anneal one sample with a dipolar term: numba half-sweeps, dipolar field by FFT between
    them (the Zeeman field, if any, added to it).

    The field on sublattice t is the sum of two convolutions on the sublattices' own grids
    (:func:`~spinsr_tf.physics.dipolar.sublattice_spectra`), so a half-sweep transforms only the
    sublattice updated before it (half the lattice) and keeps the other's transform: half the
    FFT work of transforming the whole lattice twice per sweep, the same field to float32
    rounding.
    """
    import scipy.fft

    L = s.shape[2]
    M = L // 2
    # The self-image term W(0) (converged sums only) acts on S_i itself: as a field it would make
    # ΔE inexact, so it is left out of the sums and added as the equivalent anisotropy.
    w0 = dipolar_kernel((L, L), terms.dipolar_factor, terms.dipolar_images)[:, 0, 0]
    spectra = _scaled_spectra(L, terms.dipolar, terms.dipolar_factor, terms.dipolar_images)
    J = np.float32(terms.J)
    dvec = np.asarray(terms.dmi, dtype=np.float32)
    zeeman = np.asarray(terms.field, dtype=np.float32)[:, None, None] if terms.has_field else None
    sheared = np.empty((3, L, M), dtype=np.float32)
    transforms = [None, None]   # rfft2 of each sublattice's sheared spins, None when stale
    product = np.empty((3, L, M // 2 + 1), dtype=np.complex64)
    hm = np.empty((3, L, M), dtype=np.float32)
    aniso = np.float32(terms.anisotropy - 0.5 * terms.dipolar * (w0[3] - w0[0]))

    def field(t):
        """The dipolar field on sublattice t's sites into ``hm``; sublattice t is updated next."""
        for c in (0, 1):
            if transforms[c] is None:
                kern.shear_sublattice(s, c, sheared)
                transforms[c] = scipy.fft.rfft2(sheared, workers=1)
        kern.apply_pair_spectrum(transforms[t], spectra[t, t], transforms[1 - t],
                                 spectra[t, 1 - t], product)
        kern.unshear_field(scipy.fft.irfft2(product, s=(L, M), workers=1, overwrite_x=True),
                           t, hm)
        if zeeman is not None:
            hm[...] += zeeman
        transforms[t] = None

    kern.random_state(s, st)
    acc = np.zeros(M, dtype=np.int32)
    delta = 1.0
    for n, beta in enumerate(betas):
        acc[:] = 0
        for c in (0, 1):
            field(c)
            kern.mc_half_sweep(s, st, hm, c, beta, np.float32(delta), J, dvec, aniso, acc)
        if n + 1 < len(betas) and betas[n + 1] != beta:  # adapt only while cooling
            delta = kern.adapt_delta(delta, int(acc.sum()), float(L * L), schedule.acceptance)
    if schedule.relax_method == "lbfgs":
        return _lbfgs_sample(s, terms, schedule)
    # Relaxation, with the same per-half-sweep refresh. (Refreshing once per sweep, so that the
    # second sublattice sees a field lagging by the first one's update, halves the FFTs but lets
    # the over-relaxed iteration oscillate when the dipolar term dominates, e.g. for K = 0.)
    tmax = np.zeros(M, dtype=np.float32)
    omega = np.float32(schedule.relax_omega)
    tol2 = np.float32(schedule.torque_tol) ** 2
    sweeps, torque2 = 0, np.inf
    while sweeps < schedule.relax_sweeps:
        tmax[:] = 0
        for c in (0, 1):
            field(c)
            kern.relax_half_sweep(s, hm, c, J, dvec, aniso, omega, tmax)
        sweeps += 1
        torque2 = float(tmax.max())
        if torque2 < tol2:
            break
    return sweeps, math.sqrt(torque2)


@functools.lru_cache(maxsize=8)
def _scaled_spectra(L: int, dipolar: float, factor: float, images: str) -> np.ndarray:
    """``-Ddip`` times the sublattice spectra, complex64 (one per lattice size and material)."""
    spectra = -dipolar * sublattice_spectra(L, factor, images)
    return spectra.astype(np.complex64)


def _lbfgs_sample(s, t: Terms, schedule: Schedule):
    """L-BFGS relaxation of one sample in the sublattice layout ``s`` (float32, in place)."""
    L = s.shape[2]
    comp = np.empty((3, L, L), dtype=np.float32)
    kern.unpack_components(s, comp)
    x = comp.astype(np.float64)
    args = (schedule.torque_tol, schedule.relax_sweeps, schedule.relax_memory,
            schedule.relax_max_rotation)
    field = np.asarray(t.field, dtype=np.float64)
    if t.dipolar:
        spec = -t.dipolar * kernel_spectrum((L, L), t.dipolar_factor, images=t.dipolar_images)
        it, torque = minimize.lbfgs_dipolar(x, t.J, np.asarray(t.dmi, dtype=np.float64),
                                            t.anisotropy, field, spec, *args)
    else:
        it, torque = minimize.lbfgs_local(x, float(t.J), np.asarray(t.dmi, dtype=np.float64),
                                          float(t.anisotropy), field, *args, t.open)
    kern.pack_components(x.astype(np.float32), s)
    return it, torque


def _anneal_local(states, lanes, betas, t: Terms, schedule: Schedule, relax, torque):
    """Hamiltonians without a dipolar term (nearest-neighbour, on-site and Zeeman terms): one
    numba call, samples in parallel over the numba threads (the L-BFGS relaxation, if chosen,
    one sample per Python thread after it)."""
    lbfgs = schedule.relax_method == "lbfgs"
    kern.anneal_local_batch(states, lanes, betas, np.float32(t.J),
                            np.asarray(t.dmi, dtype=np.float32), np.float32(t.anisotropy),
                            np.asarray(t.field, dtype=np.float32), 1.0, schedule.acceptance,
                            0 if lbfgs else schedule.relax_sweeps, schedule.torque_tol,
                            np.float32(schedule.relax_omega), t.open, relax, torque)
    if lbfgs and schedule.relax_sweeps:
        def one(b):
            relax[b], torque[b] = _lbfgs_sample(states[b], t, schedule)

        _each(one, states.shape[0])


def _each(fn, n):
    """``fn(b)`` for b < n on as many Python threads as numba threads (the kernels release the
    GIL); each call touches only sample b."""
    workers = min(numba.get_num_threads(), n)
    if workers <= 1:
        for b in range(n):
            fn(b)
    else:
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(fn, range(n)))


def _anneal_dipolar(states, lanes, betas, t: Terms, schedule: Schedule, relax, torque):
    """A dipolar term (Type II): one sample per Python thread (numba kernels and FFTs release
    the GIL), as many threads as numba's thread count."""
    def one(b):
        relax[b], torque[b] = _anneal_dipolar_sample(states[b], lanes[b], betas, t, schedule)

    _each(one, states.shape[0])


def default_schedule(hamiltonian) -> Schedule:
    """The schedule that gives each Hamiltonian's intended texture.

    Type I: :class:`Schedule` defaults, T 1.2 → 0.3 in 300 sweeps (where the labyrinth forms),
    full relaxation with ω = 1.99 (labyrinths are stationary: DMI fixes their period); this
    matches the energy of 1,000 sweeps from T = 2 at a third of the cost (docs/physics.md).
    Type II: T 2 → 0.05 in 400 sweeps, then the relaxation capped at
    :data:`TYPE_II_RELAX_SWEEPS` over-relaxed sweeps with ω = 1.9. With K_eff = 0.0117 the
    equilibrium domain is far larger than a 128 box, so a full relaxation coarsens every sample
    into one or two domains (mostly uniform ±z); 200 sweeps remove the thermal noise (median
    torque 0.5 → 3e-3 J) but stop before curvature-driven coarsening erases the domains, giving
    the several domains and walls of the paper's Type II images. Those states are arrested, not
    stationary: the walls keep a torque of up to ~0.1 J, recorded in the data files'
    ``relaxed.*`` attributes. (Each Hamiltonian states its own overrides:
    ``schedule_defaults()``; a Zeeman field keeps its model's.)
    """
    return Schedule(**check_hamiltonian(hamiltonian).schedule_defaults())


def anneal(hamiltonian, size: int, seed: int, indices, schedule: Schedule | None = None,
           return_info: bool = False):
    """Anneal the samples ``indices`` of the ensemble defined by ``seed``.

    Parameters
    ----------
    hamiltonian : a :class:`~spinsr_tf.physics.hamiltonians.Hamiltonian` (``TypeI``,
        ``TypeII``, either in a field: :func:`~spinsr_tf.physics.zeeman.with_field`).
    size : lattice side L (even, >= 4), periodic L×L lattice.
    seed : global seed, integer in [0, 2**64).
    indices : sample indices (non-negative integers). Sample k depends only on
        ``(seed, k, hamiltonian, schedule, size)``: bit for bit the same whichever other indices
        are passed with it, in any order, with any number of numba threads
        (``numba.set_num_threads``), which also sets how many samples run in parallel.
    schedule : :class:`Schedule`; default :func:`default_schedule` of the Hamiltonian.
    return_info : also return ``{"relax_sweeps": (n,) int, "max_torque": (n,) float}``, the
        relaxation sweeps made and the final largest torque measured by the kernel (float32).

    Returns
    -------
    ``(len(indices), size, size, 3)`` float32 unit vectors, ``spins[b, i, j]`` at x = j, y = i;
    with ``return_info`` a tuple ``(spins, info)``.
    """
    ham = check_hamiltonian(hamiltonian)
    L = _check_size(size)
    check_int("seed", seed, 0, 2 ** 64 - 1)
    idx = _check_indices(indices)
    if schedule is None:
        schedule = default_schedule(ham)
    if not isinstance(schedule, Schedule):
        raise UserError(f"schedule must be a Schedule, got {schedule!r}")
    n, M = len(idx), L // 2
    states = np.zeros((n, 2, 3, L, M + 2), dtype=np.float32)
    lanes = np.stack([lane_states(sample_key(int(seed), k), M) for k in idx]) if n else \
        np.zeros((0, 4, M), dtype=np.uint32)
    betas = (1.0 / schedule.temperatures()).astype(np.float32)
    relax = np.zeros(n, dtype=np.int64)
    torque = np.zeros(n, dtype=np.float64)
    terms = ham.terms()
    if n and not terms.dipolar:
        _anneal_local(states, lanes, betas, terms, schedule, relax, torque)
    elif n:
        _anneal_dipolar(states, lanes, betas, terms, schedule, relax, torque)
    out = np.empty((n, L, L, 3), dtype=np.float32)
    for b in range(n):
        kern.unpack(states[b], out[b])
    if return_info:
        return out, {"relax_sweeps": relax, "max_torque": torque}
    return out
