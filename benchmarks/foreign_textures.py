"""Foreign spin textures: relaxed maps from an independent simulator (Spirit), per family.

The models of this package are trained on lattices it annealed itself. To see how they fare on
textures made elsewhere, this module asks Spirit (atomistic spin dynamics, ``pip install
spirit``) for relaxed 2D square-lattice maps: random initial spins from a NumPy seed, relaxed with
Spirit's own minimiser (LLG method, LBFGS_OSO solver) until the largest torque is below
``TORQUE_TOL`` J, then converted to the package's layout ``(N, H, W, 3)`` float32 with
``spins[i, j]`` at x = j, y = i.

Units: the package works in units of the exchange J; Spirit in meV, tesla and Bohr magnetons.
:func:`spirit_parameters` is the one conversion (``tests/test_foreign_textures.py`` checks it by
comparing energies of the same configuration in both codes). Spirit's site index is
``a + Na·b`` with position (a, b), so its ``(NOS, 3)`` array reshaped to ``(Nb, Na, 3)`` is the
package's ``spins[y, x]``. Spirit's DMI energy is ``-Σ D n_ij·(Si × Sj)`` with ``n_ij = r̂ij × ẑ``
(Néel) or ``r̂ij`` (Bloch); the package's is ``+Σ Dij·(Si × Sj)`` with ``Dij = dmi ẑ × r̂ij``
(interfacial) or ``dmi r̂ij`` (bulk): the same Néel chirality for ``D = +dmi``, the same Bloch
chirality for ``D = -dmi``.

Each family has a ``tune`` part and a ``held-out`` part that differ in seeds and in parameters.
The held-out part is never used to choose anything (a default, a range, a training recipe): it
is only reported. Maps are cached on disk (``--cache``, default
``$XDG_CACHE_HOME/spinsr_tf/foreign_textures`` or ``~/.cache/...``), one ``.npz`` per map with
its family, part, parameters, seed, size, Spirit version and generation time.

Films with holes (:func:`load_or_make_film`): open films whose hole sites are vacancies during
the relaxation (no moment, no bond), cached under ``film_holes/``.

    python benchmarks/foreign_textures.py --quick            # make (or load) the quick maps
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

#: Spirit's Bohr magneton in meV/T (``spirit.constants.mu_B``; written here so that the
#: conversion can be read and tested without Spirit installed).
MU_B_MEV_PER_T = 0.057883817555
#: Spirit's μ0 (``Constants::mu_0``), in the units that make ``μ0 μB² / (4π · 1e-30)`` the
#: dipolar energy scale in meV for moments in μB at distances in Å.
_MU_0_SPIRIT = 2.0133545e-28
#: Dipole-dipole energy of two parallel 1 μB moments 1 Å apart, perpendicular to their bond,
#: in meV: ``μ0 μB² / (4π Å³)`` as Spirit computes it.
DDI_MEV = _MU_0_SPIRIT * MU_B_MEV_PER_T ** 2 / (4 * math.pi * 1e-30)

#: Energy of J in meV and moment μ_s in Bohr magnetons used for every Spirit state. Any values
#: give the same textures; these keep Spirit's numbers equal to the package's.
ENERGY_UNIT_MEV = 1.0
MU_S = 1.0

#: Relaxation stops when Spirit's largest torque falls below this (units of J), or after
#: ``MAX_ITERATIONS`` LBFGS iterations (recorded per map as ``converged``).
TORQUE_TOL = 1e-4
MAX_ITERATIONS = 100_000

PARTS = ("tune", "heldout")


@dataclasses.dataclass(frozen=True)
class Material:
    """A 2D square-lattice spin Hamiltonian in units of the exchange J (J > 0 ferromagnetic).

    ``H = -J Σ_<ij> Si·Sj + Σ_<ij> Dij·(Si × Sj) - K Σ_i Siz² - h Σ_i Siz + H_dip`` with
    ``Dij = dmi ẑ × r̂ij`` (``dmi_kind="interfacial"``, Néel) or ``dmi r̂ij`` (``"bulk"``,
    Bloch) as in :class:`spinsr_tf.physics.TypeI`; ``dipolar`` the energy of two parallel spins
    one site apart, perpendicular to their bond (as :class:`spinsr_tf.physics.TypeII`);
    ``periodic`` False gives a finite film with open edges.
    """

    J: float = 1.0
    dmi: float = 0.0
    dmi_kind: str = "interfacial"
    anisotropy: float = 0.0
    field: float = 0.0
    dipolar: float = 0.0
    periodic: bool = True

    def helix_period(self) -> float:
        """T = 0 helix period 2π / arctan(|dmi| / J) in sites (inf without DMI)."""
        q = math.atan2(abs(self.dmi), abs(self.J))
        return math.inf if q == 0 else 2 * math.pi / q

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def spirit_parameters(material: Material, energy_unit_mev: float = ENERGY_UNIT_MEV,
                      mu_s: float = MU_S) -> dict:
    """Spirit's parameters for ``material``: the one unit conversion of this module.

    ``energy_unit_mev`` is J in meV, ``mu_s`` the moment in Bohr magnetons. Returns Spirit's
    config values: ``jij``, ``dij`` (meV, sign included: Spirit's Bloch normal is r̂ij with an
    energy ``-D n·(Si × Sj)``, so the package's bulk ``dmi`` is ``dij = -dmi``),
    ``dm_chirality`` (2 Néel, 1 Bloch), ``anisotropy_magnitude`` (meV),
    ``external_field_magnitude`` (tesla: ``h J = μ_s μ_B B``), ``mu_s``, ``lattice_constant``
    (Å; it sets the dipolar strength, ``μ0 μ_s² μ_B² / (4π a³) = dipolar J``; 1 Å without
    dipolar), ``ddi_method``, ``boundary_conditions``.
    """
    if material.dmi_kind not in ("interfacial", "bulk"):
        raise ValueError(f"dmi_kind must be 'interfacial' or 'bulk', got {material.dmi_kind!r}")
    if material.dipolar < 0:
        raise ValueError(f"dipolar must be >= 0, got {material.dipolar!r}")
    unit = float(energy_unit_mev)
    bloch = material.dmi_kind == "bulk"
    lattice_constant = 1.0
    if material.dipolar:
        lattice_constant = (DDI_MEV * mu_s ** 2 / (material.dipolar * unit)) ** (1.0 / 3.0)
    return {
        "jij": material.J * unit,
        "dij": (-material.dmi if bloch else material.dmi) * unit,
        "dm_chirality": 1 if bloch else 2,
        "anisotropy_magnitude": material.anisotropy * unit,
        "external_field_magnitude": material.field * unit / (mu_s * MU_B_MEV_PER_T),
        "mu_s": float(mu_s),
        "lattice_constant": lattice_constant,
        "ddi_method": "fft" if material.dipolar else "none",
        "boundary_conditions": (1, 1, 0) if material.periodic else (0, 0, 0),
    }


def _run_lines(energy_unit_mev: float) -> list[str]:
    """The input-file lines every state here shares: no logs or output files, and the LLG
    minimiser's convergence at :data:`TORQUE_TOL` (in J, as meV)."""
    return ["log_to_console 0", "log_to_file 0", "save_input_initial 0", "save_input_final 0",
            "llg_output_any 0", "mc_output_any 0",
            f"llg_force_convergence {TORQUE_TOL * energy_unit_mev!r}", ""]


def spirit_config(material: Material, shape: tuple[int, int],
                  energy_unit_mev: float = ENERGY_UNIT_MEV, mu_s: float = MU_S) -> str:
    """Spirit input file text for an ``H × W`` monolayer of ``material`` (no output files)."""
    p = spirit_parameters(material, energy_unit_mev, mu_s)
    h, w = (int(v) for v in shape)
    bc = " ".join(str(b) for b in p["boundary_conditions"])
    return "\n".join([
        "hamiltonian heisenberg_neighbours",
        f"boundary_conditions {bc}",
        f"external_field_magnitude {p['external_field_magnitude']!r}",
        "external_field_normal 0.0 0.0 1.0",
        f"mu_s {p['mu_s']!r}",
        f"anisotropy_magnitude {p['anisotropy_magnitude']!r}",
        "anisotropy_normal 0.0 0.0 1.0",
        "n_shells_exchange 1",
        f"jij {p['jij']!r}",
        "n_shells_dmi 1",
        f"dij {p['dij']!r}",
        f"dm_chirality {p['dm_chirality']}",
        f"ddi_method {p['ddi_method']}",
        "ddi_n_periodic_images 4 4 0",
        "ddi_pb_zero_padding 1",
        "bravais_lattice sc",
        f"lattice_constant {p['lattice_constant']!r}",
        f"n_basis_cells {w} {h} 1",
        *_run_lines(energy_unit_mev),
    ])


@contextlib.contextmanager
def _quiet_stdout():
    """Silence Spirit's C++ banner, which it prints on stdout even in quiet mode."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def spirit_version() -> str:
    from spirit import version

    return str(version.version_full)


@contextlib.contextmanager
def spirit_state(material: Material, shape: tuple[int, int]):
    """A Spirit state of an ``H × W`` monolayer of ``material`` (its ``p_state``)."""
    from spirit import state

    with tempfile.TemporaryDirectory(prefix="spinsr_spirit_") as tmp:
        cfg = Path(tmp) / "input.cfg"
        cfg.write_text(spirit_config(material, shape))
        with _quiet_stdout():
            p_state = state.setup(str(cfg), quiet=True)
        try:
            yield p_state
        finally:
            with _quiet_stdout():
                state.delete(p_state)


def set_spins(p_state, spins) -> None:
    """Write one package map ``(H, W, 3)`` (``spins[y, x]``) into Spirit's spins."""
    from spirit import system

    s = np.asarray(spins, dtype=np.float64)
    view = system.get_spin_directions(p_state)
    if view.shape != (s.shape[0] * s.shape[1], 3):
        raise ValueError(f"spins of shape {s.shape} do not fit Spirit's {view.shape}")
    view[:] = s.reshape(-1, 3)
    system.update_data(p_state)


def get_spins(p_state, shape: tuple[int, int]) -> np.ndarray:
    """Spirit's spins as a package map ``(H, W, 3)`` float64 (site a + W·b → ``[b, a]``)."""
    from spirit import system

    h, w = shape
    return np.array(system.get_spin_directions(p_state), dtype=np.float64).reshape(h, w, 3)


def spirit_energy(spins, material: Material) -> float:
    """Spirit's total energy of one map ``(H, W, 3)``, converted to units of J."""
    from spirit import system

    s = np.asarray(spins)
    with spirit_state(material, s.shape[:2]) as p_state:
        set_spins(p_state, s)
        return float(system.get_energy(p_state)) / ENERGY_UNIT_MEV


def random_spins(shape: tuple[int, int], seed) -> np.ndarray:
    """Independent random unit vectors ``(H, W, 3)`` float64 from a NumPy seed."""
    rng = np.random.default_rng(seed)
    s = rng.normal(size=(*shape, 3))
    return s / np.linalg.norm(s, axis=-1, keepdims=True)


def relax(material: Material, shape: tuple[int, int], seed,
          max_iterations: int = MAX_ITERATIONS) -> tuple[np.ndarray, dict]:
    """Relax random spins (``seed``) with Spirit's LBFGS_OSO minimiser.

    Returns the map ``(H, W, 3)`` float32 and ``{"iterations", "max_torque" (J), "converged",
    "seconds", "energy_per_site" (J)}``.
    """
    with spirit_state(material, shape) as p_state:
        set_spins(p_state, random_spins(shape, seed))
        outcome = _minimise(p_state, max_iterations, shape[0] * shape[1])
        spins = get_spins(p_state, shape)
    spins /= np.linalg.norm(spins, axis=-1, keepdims=True)
    return spins.astype(np.float32), outcome


def _minimise(p_state, max_iterations: int, sites: int) -> dict:
    """Run Spirit's LBFGS_OSO minimiser on ``p_state``; return the outcome :func:`relax`
    records (energy per site over ``sites``, torque and energy in J)."""
    from spirit import simulation, system

    t0 = time.perf_counter()
    info = simulation.start(p_state, simulation.METHOD_LLG, simulation.SOLVER_LBFGS_OSO,
                            n_iterations=int(max_iterations))
    seconds = time.perf_counter() - t0
    e = float(system.get_energy(p_state)) / ENERGY_UNIT_MEV
    torque = float(info.max_torque) / ENERGY_UNIT_MEV
    return {"iterations": int(info.total_iterations), "max_torque": torque,
            "converged": bool(torque < TORQUE_TOL), "seconds": round(seconds, 3),
            "energy_per_site": e / sites}


# --- films with holes ------------------------------------------------------------------------
#
# Spirit's own vacancies (``n_defects`` with type -1, ``geometry.get_atom_types``) need a build
# with ``SPIRIT_ENABLE_DEFECTS``; the PyPI wheel has ``spirit.version.defects == "OFF"`` and
# ignores them (a film with "vacancies" has the energy of the full film). A film with holes is
# therefore built with the holes absent: one basis cell holding only the magnet's sites (at
# their lattice positions), open edges, and every nearest-neighbour bond between two magnet
# sites written out (``hamiltonian heisenberg_pairs``). A hole site has no moment and no bond.


def film_pairs(magnet) -> np.ndarray:
    """Nearest-neighbour bonds of the magnet's sites: rows ``(i, j, dx, dy)``, ``i``/``j``
    indices into the magnet's sites in row-major (y, x) order, ``(dx, dy)`` from i to j."""
    m = np.asarray(magnet, dtype=bool)
    index = np.full(m.shape, -1, dtype=np.int64)
    index[m] = np.arange(int(m.sum()))
    rows = []
    for dy, dx in ((0, 1), (1, 0)):
        a = index[: m.shape[0] - dy, : m.shape[1] - dx]
        b = index[dy:, dx:]
        both = (a >= 0) & (b >= 0)
        rows.append(np.stack([a[both], b[both], np.full(both.sum(), dx),
                              np.full(both.sum(), dy)], 1))
    return np.concatenate(rows)


def spirit_film_config(material: Material, magnet, folder: Path,
                       energy_unit_mev: float = ENERGY_UNIT_MEV, mu_s: float = MU_S) -> str:
    """Spirit input text of a film whose sites are ``magnet`` (``(H, W)`` bool, ``[y, x]``);
    the bonds go to ``folder/pairs.txt``. Open edges only (``material.periodic`` must be
    False) and no dipolar term (Spirit's FFT sum needs a regular lattice). Spirit's set-up
    checks every pair of basis sites for overlap: quadratic, ~3 min for a 256² film."""
    if material.periodic:
        raise ValueError("a film with holes has open edges: use a material with periodic=False")
    if material.dipolar:
        raise ValueError("a film with holes has no dipolar term here")
    p = spirit_parameters(material, energy_unit_mev, mu_s)
    m = np.asarray(magnet, dtype=bool)
    if m.ndim != 2 or not m.any():
        raise ValueError(f"magnet must be a 2D boolean map with a site, got shape {m.shape}")
    y, x = np.nonzero(m)
    pairs = film_pairs(m)
    # DM vector of bond i -> j (unit r): the package's +dmi (ẑ × r̂) for Néel, dmi r̂ for
    # Bloch; Spirit's pair energy is -J Si·Sj - D·(Si × Sj), so Spirit's D is minus that.
    r = np.stack([pairs[:, 2], pairs[:, 3], np.zeros(len(pairs))], 1).astype(np.float64)
    if material.dmi_kind == "bulk":
        d = -material.dmi * r
    else:
        d = -material.dmi * np.cross([0.0, 0.0, 1.0], r)
    d *= energy_unit_mev
    lines = ["i j da db dc Jij Dijx Dijy Dijz"]
    lines += [f"{i} {j} 0 0 0 {p['jij']!r} {dx!r} {dy!r} {dz!r}"
              for (i, j, _, _), (dx, dy, dz) in zip(pairs.tolist(), d.tolist())]
    (Path(folder) / "pairs.txt").write_text("\n".join(lines) + "\n")
    h, w = m.shape
    basis = "\n".join(f"{a / w!r} {b / h!r} 0" for a, b in zip(x.tolist(), y.tolist()))
    return "\n".join([
        "hamiltonian heisenberg_pairs",
        "boundary_conditions 0 0 0",
        f"external_field_magnitude {p['external_field_magnitude']!r}",
        "external_field_normal 0.0 0.0 1.0",
        f"anisotropy_magnitude {p['anisotropy_magnitude']!r}",
        "anisotropy_normal 0.0 0.0 1.0",
        f"interaction_pairs_file {Path(folder) / 'pairs.txt'}",
        "ddi_method none",
        # one cell as large as the film, so that no translated copy lands on a site
        f"bravais_vectors\n{w} 0 0\n0 {h} 0\n0 0 1",
        "lattice_constant 1.0",
        f"basis\n{len(x)}\n{basis}",
        "mu_s " + " ".join([repr(p["mu_s"])] * len(x)),
        "n_basis_cells 1 1 1",
        *_run_lines(energy_unit_mev),
    ])


@contextlib.contextmanager
def spirit_film_state(material: Material, magnet):
    """A Spirit state of the film ``magnet`` (its ``p_state``); its sites are the magnet's
    cells in row-major order (see :func:`set_film_spins`)."""
    from spirit import state

    with tempfile.TemporaryDirectory(prefix="spinsr_spirit_") as tmp:
        cfg = Path(tmp) / "input.cfg"
        cfg.write_text(spirit_film_config(material, magnet, Path(tmp)))
        with _quiet_stdout():
            p_state = state.setup(str(cfg), quiet=True)
        try:
            from spirit import system

            n = system.get_nos(p_state)
            if n != int(np.count_nonzero(magnet)):
                raise RuntimeError(f"Spirit made {n} sites for {np.count_nonzero(magnet)}")
            yield p_state
        finally:
            with _quiet_stdout():
                state.delete(p_state)


def set_film_spins(p_state, spins, magnet) -> None:
    """Write the magnet's cells of a map ``(H, W, 3)`` into a film state."""
    from spirit import system

    view = system.get_spin_directions(p_state)
    view[:] = np.asarray(spins, dtype=np.float64)[np.asarray(magnet, dtype=bool)]
    system.update_data(p_state)


def get_film_spins(p_state, magnet) -> np.ndarray:
    """A film state's spins as a map ``(H, W, 3)`` float64, hole cells exactly zero."""
    from spirit import system

    m = np.asarray(magnet, dtype=bool)
    out = np.zeros((*m.shape, 3))
    out[m] = np.array(system.get_spin_directions(p_state), dtype=np.float64)
    return out


def spirit_film_energy(spins, material: Material, magnet) -> float:
    """Spirit's total energy (units of J) of the film ``magnet`` in the state ``spins``."""
    from spirit import system

    with spirit_film_state(material, magnet) as p_state:
        set_film_spins(p_state, spins, magnet)
        return float(system.get_energy(p_state)) / ENERGY_UNIT_MEV


def relax_film(material: Material, magnet, seed,
               max_iterations: int = MAX_ITERATIONS) -> tuple[np.ndarray, dict]:
    """Relax random spins (``seed``, drawn on the full ``(H, W)`` grid) of a film with holes
    with Spirit's LBFGS_OSO minimiser. Returns the map ``(H, W, 3)`` float32, hole cells exactly
    zero, and the outcome as :func:`relax` (energy per magnet site)."""
    m = np.asarray(magnet, dtype=bool)
    with spirit_film_state(material, m) as p_state:
        set_film_spins(p_state, random_spins(m.shape, seed), m)
        outcome = _minimise(p_state, max_iterations, int(m.sum()))
        spins = get_film_spins(p_state, m)
    spins[m] /= np.linalg.norm(spins[m], axis=-1, keepdims=True)
    return spins.astype(np.float32), outcome


def load_or_make_film(material: Material, magnet, seed: int, cache: Path | None,
                      log=None) -> tuple[np.ndarray, dict]:
    """A relaxed film with holes, read from ``cache/film_holes/`` or relaxed (and cached) now;
    the file name holds a hash of the material, the magnet map, the seed and Spirit's
    version."""
    m = np.asarray(magnet, dtype=bool)
    record = {"family": "film_holes", "size": list(m.shape), "seed": int(seed),
              "magnet_sha256": hashlib.sha256(np.packbits(m).tobytes()).hexdigest(),
              "holes": int((~m).sum()), "material": material.to_dict(),
              "solver": "LLG/LBFGS_OSO", "torque_tol": TORQUE_TOL,
              "spirit_version": spirit_version()}
    key = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]
    name = f"{m.shape[0]}x{m.shape[1]}-{key}.npz"
    path = None if cache is None else Path(cache) / "film_holes" / name
    spins, record, made = _cached(path, record, lambda: relax_film(material, m, seed))
    if made and log:
        log(f"  film with {record['holes']} hole sites, {material_label(material)}: "
            f"{record['seconds']:.1f} s, {record['iterations']} iterations, "
            f"max torque {record['max_torque']:.1e} J")
    return spins, record


# --- the families -------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Family:
    """A texture family: the materials of its tune and held-out parts (maps cycle through
    them) and a one-line description."""

    name: str
    description: str
    tune: tuple[Material, ...]
    heldout: tuple[Material, ...]

    def materials(self, part: str) -> tuple[Material, ...]:
        if part not in PARTS:
            raise ValueError(f"part must be one of {PARTS}, got {part!r}")
        return self.tune if part == "tune" else self.heldout

    @property
    def periodic(self) -> bool:
        return all(m.periodic for m in self.tune + self.heldout)


def _neel(dmi, **kw):
    return Material(dmi=dmi, dmi_kind="interfacial", **kw)


def _bloch(dmi, **kw):
    return Material(dmi=dmi, dmi_kind="bulk", **kw)


#: The families. Tune and held-out parts differ in parameters (and seeds, see :func:`map_seed`);
#: the home distribution of the shipped Type I models is Néel D/J = 0.3 (period 21.6).
FAMILIES = {f.name: f for f in (
    Family("neel_long", "Néel labyrinths, long period (D/J 0.12-0.25: period 25-52 sites)",
           tune=(_neel(0.20), _neel(0.15)), heldout=(_neel(0.25), _neel(0.12))),
    Family("neel_short", "Néel labyrinths, short period (D/J 0.40-0.60: period 11-16 sites)",
           tune=(_neel(0.45), _neel(0.60)), heldout=(_neel(0.40), _neel(0.55))),
    Family("bloch", "Bloch labyrinths, bulk DMI (D/J 0.2-0.45: period 15-32 sites)",
           tune=(_bloch(0.30), _bloch(0.45)), heldout=(_bloch(0.25), _bloch(0.40))),
    Family("skyrmions", "Néel skyrmions and bubbles in a perpendicular field h (units of J)",
           tune=(_neel(0.30, field=0.03), _neel(0.30, field=0.05)),
           heldout=(_neel(0.35, field=0.04), _neel(0.25, field=0.02, anisotropy=0.01))),
    Family("domains", "perpendicular anisotropy K + dipolar domains, no DMI (K_eff = K - ~6.8 "
           "Ddip, narrow walls)",
           tune=(Material(anisotropy=0.75, dipolar=0.10),),
           heldout=(Material(anisotropy=1.10, dipolar=0.15),)),
    Family("film", "finite Néel film with open edges (edge tilt), with and without field",
           tune=(_neel(0.30, periodic=False), _neel(0.30, field=0.03, periodic=False)),
           heldout=(_neel(0.35, periodic=False), _neel(0.25, field=0.02, periodic=False))),
)}


def map_seed(family: str, part: str, index: int) -> int:
    """The NumPy seed of map ``index`` of a family part: distinct for every (family, part,
    index), so tune and held-out maps never share initial spins."""
    digest = hashlib.sha256(f"{family}/{part}/{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def default_cache() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "spinsr_tf" / "foreign_textures"


def _record(family: str, part: str, index: int, material: Material, size: int) -> dict:
    return {"family": family, "part": part, "index": int(index), "size": int(size),
            "seed": map_seed(family, part, index), "material": material.to_dict(),
            "helix_period": material.helix_period(), "solver": "LLG/LBFGS_OSO",
            "torque_tol": TORQUE_TOL, "spirit_version": spirit_version()}


def _cached(path: Path | None, record: dict, make) -> tuple[np.ndarray, dict, bool]:
    """``(spins, record, made)``: the map cached at ``path``, else ``make()`` → ``(spins,
    outcome)``, the outcome merged into ``record`` and both written there atomically (``path``
    None: no cache)."""
    if path is not None and path.exists():
        with np.load(path) as z:
            return z["spins"], json.loads(str(z["record"])), False
    spins, outcome = make()
    record = {**record, **outcome}
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(tmp, spins=spins, record=json.dumps(record))
        os.replace(tmp, path)
    return spins, record, True


def _cache_path(cache: Path, record: dict) -> Path:
    key = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]
    name = f"{record['part']}-{record['size']}-{record['index']}-{key}.npz"
    return cache / record["family"] / name


def load_or_make(family: str, part: str, index: int, size: int, cache: Path | None,
                 log=None) -> tuple[np.ndarray, dict]:
    """Map ``index`` of a family part: read from ``cache`` or relaxed (and cached) now.

    Returns ``(spins (size, size, 3) float32, record)``; the record holds the family, part,
    parameters, seed, Spirit version and the relaxation's outcome and time.
    """
    fam = FAMILIES[family]
    materials = fam.materials(part)
    material = materials[index % len(materials)]
    record = _record(family, part, index, material, size)
    path = None if cache is None else _cache_path(Path(cache), record)
    spins, record, made = _cached(path, record,
                                  lambda: relax(material, (size, size), record["seed"]))
    if made and log:
        log(f"  {family}/{part}[{index}] {material_label(material)}: {record['seconds']:.1f} s, "
            f"{record['iterations']} iterations, max torque {record['max_torque']:.1e} J")
    return spins, record


def family_maps(family: str, part: str, n: int, size: int, cache: Path | None,
                log=None) -> tuple[np.ndarray, list[dict]]:
    """``n`` maps ``(n, size, size, 3)`` float32 of a family part and their records."""
    maps, records = zip(*(load_or_make(family, part, i, size, cache, log) for i in range(n)))
    return np.stack(maps), list(records)


def material_label(m: Material) -> str:
    """Short text of a material's parameters, e.g. ``Néel D/J 0.30 h 0.03 open``."""
    parts = []
    if m.dmi:
        parts.append(f"{'Néel' if m.dmi_kind == 'interfacial' else 'Bloch'} D/J {m.dmi:.2f} "
                     f"(period {m.helix_period():.1f})")
    if m.anisotropy:
        parts.append(f"K {m.anisotropy:g}")
    if m.dipolar:
        parts.append(f"Ddip {m.dipolar:g}")
    if m.field:
        parts.append(f"h {m.field:g}")
    if not m.periodic:
        parts.append("open edges")
    return ", ".join(parts) or "exchange only"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="64x64, 2 maps per family part")
    p.add_argument("--size", type=int, default=None, help="lattice side (default 128, quick 64)")
    p.add_argument("--n", type=int, default=None, help="maps per family part (default 4, quick 2)")
    p.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
    p.add_argument("--cache", default=str(default_cache()), help="cache folder")
    args = p.parse_args(argv)
    size = args.size or (64 if args.quick else 128)
    n = args.n or (2 if args.quick else 4)
    for name in args.families:
        print(f"{name}: {FAMILIES[name].description}")
        for part in PARTS:
            _, records = family_maps(name, part, n, size, Path(args.cache), log=print)
            secs = [r.get("seconds", float("nan")) for r in records]
            print(f"  {part}: {n} maps of {size}x{size}, relaxation {np.mean(secs):.1f} s/map "
                  f"(when made), converged {sum(r.get('converged', True) for r in records)}/{n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
