"""The Zeeman term: parameters and files, the field in every evaluator, annealing in a field
(magnetisation along h, skyrmions, saturation), and annealing without one unchanged bit for bit.
Energy against the double loop and the field against finite differences: tests/test_energy.py;
symmetry by energy invariance: tests/test_symmetry.py; detailed balance in a field:
tests/test_annealing.py."""

import hashlib

import h5py
import numpy as np
import pytest

from spinsr_tf.base.errors import UserError
from spinsr_tf.physics import (InField, Schedule, TypeI, TypeII, anneal, energy,
                               hamiltonian_from_attrs, local_field, max_torque, saturation_field,
                               topological_charge, with_field)
from spinsr_tf.physics import minimize
from spinsr_tf.physics.priors import resolve_prior


def _unit(shape, seed):
    s = np.random.default_rng(seed).normal(size=shape + (3,))
    return s / np.linalg.norm(s, axis=-1, keepdims=True)


# --- parameters and files -----------------------------------------------------------------------


def test_zero_field_is_the_hamiltonian_itself_and_fields_add():
    for ham in (TypeI(), TypeII()):
        assert with_field(ham, 0.0) is ham
        assert with_field(with_field(ham, 0.1), -0.1) == ham
    both = with_field(with_field(TypeI(), 0.25), (0.0, 0.5, 0.5))
    assert both == InField(TypeI(), (0.0, 0.5, 0.75)) and both.base == TypeI()
    ham = with_field(TypeI(dmi=0.2, dmi_kind="bulk"), 0.05)
    assert (ham.dmi, ham.dmi_kind, ham.kind, ham.code) == (0.2, "bulk", "typeI", "I")
    assert ham.helix_period() == TypeI(dmi=0.2).helix_period()
    assert ham.replace(dmi=0.1) == with_field(TypeI(dmi=0.1, dmi_kind="bulk"), 0.05)
    assert ham.replace(field_z=0.0) == TypeI(dmi=0.2, dmi_kind="bulk")
    assert "field" in ham.describe()


@pytest.mark.parametrize("ham", [with_field(TypeI(), 0.05),
                                 with_field(TypeII(dipolar_images="minimum"), (0.1, 0.0, -0.02))])
def test_attrs_round_trip_through_hdf5(tmp_path, ham):
    attrs = ham.to_attrs()
    assert attrs == {**ham.base.to_attrs(), "field_x": ham.field[0], "field_y": ham.field[1],
                     "field_z": ham.field[2]}
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f.attrs.update(attrs)
    with h5py.File(tmp_path / "a.h5", "r") as f:
        back = hamiltonian_from_attrs(dict(f.attrs))
    assert back == ham and type(back) is InField


def test_files_without_a_field_have_none():
    for ham in (TypeI(), TypeII()):
        assert type(hamiltonian_from_attrs(ham.to_attrs())) is type(ham)
        assert hamiltonian_from_attrs({**ham.to_attrs(), "field_z": np.float64(0.0)}) == ham
    stored = {f"hamiltonian.{k}": v for k, v in with_field(TypeI(), 0.04).to_attrs().items()}
    assert resolve_prior("typeI", stored) == with_field(TypeI(), 0.04)
    assert resolve_prior("typeI", None, {"field_z": 0.03}) == with_field(TypeI(), 0.03)


@pytest.mark.parametrize("field, word", [(float("nan"), "finite"), ("0.1", "real number"),
                                         ((0.1, 0.2), "hx, hy, hz"), (True, "real number"),
                                         ((0.0, float("inf"), 0.0), "field_y")])
def test_bad_fields_are_one_line_user_errors(field, word):
    with pytest.raises(UserError, match=word) as info:
        with_field(TypeI(), field)
    assert "\n" not in str(info.value)
    with pytest.raises(UserError, match="hamiltonian"):
        with_field("typeI", 0.1)


def test_saturation_field_estimates():
    assert saturation_field(TypeI()) == pytest.approx(2 * 0.3 ** 2)
    assert saturation_field(TypeII()) == pytest.approx(0.2 * 0.03)
    assert saturation_field(TypeI(dmi=0.0)) == 0.0
    assert saturation_field(with_field(TypeI(), 0.05)) == saturation_field(TypeI())


# --- the field in the evaluators ----------------------------------------------------------------


@pytest.mark.parametrize("base", [TypeI(), TypeII(dipolar=0.1)])
def test_field_adds_minus_h_dot_s_to_the_energy_and_h_to_the_local_field(base):
    s = _unit((6, 8), seed=1)
    h = np.array([0.1, -0.3, 0.2])
    ham = with_field(base, h)
    assert energy(s, ham) == pytest.approx(energy(s, base) - np.sum(s @ h), rel=1e-12)
    np.testing.assert_allclose(local_field(s, ham) - local_field(s, base),
                               np.broadcast_to(h, s.shape), atol=1e-12)
    # the uniform state along h is stationary, and has the lowest Zeeman energy
    up = np.broadcast_to(h / np.linalg.norm(h), (6, 8, 3))
    assert max_torque(up, with_field(TypeI(dmi=0.0), h)) < 1e-12


def test_relaxation_energy_counts_the_zeeman_term_once():
    """The L-BFGS energy E = -½ Σ S·h_eff is exact only if the linear term is counted in full."""
    ham = with_field(TypeI(dmi_kind="bulk"), (0.2, 0.1, -0.3))
    t = ham.terms()
    s = _unit((6, 6), seed=2)
    comp = np.ascontiguousarray(s.transpose(2, 0, 1))
    h, g = np.zeros_like(comp), np.zeros_like(comp)
    e, _ = minimize.local_field_energy(comp, np.zeros((3, 0, 0)), t.J, np.asarray(t.dmi),
                                       t.anisotropy, np.asarray(t.field), h, g)
    assert e == pytest.approx(energy(s, ham), rel=1e-12)
    np.testing.assert_allclose(h.transpose(1, 2, 0), local_field(s, ham), atol=1e-12)


def _skyrmion(L, radius, core=-1.0):
    """A Néel skyrmion drawn by hand: polar angle from the core (θ = π at r = 0) to the
    background (θ = 0 beyond ``2·radius``), radial in-plane part."""
    y, x = np.mgrid[0:L, 0:L] - (L - 1) / 2
    r = np.hypot(x, y)
    theta = np.pi * np.clip(1 - r / (2 * radius), 0, 1)
    phi = np.arctan2(y, x)
    s = np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)], -1)
    return s if core < 0 else -s


def test_topological_charge_counts_skyrmions():
    one = _skyrmion(24, 5)
    assert topological_charge(one) == pytest.approx(-1, abs=1e-9)
    assert topological_charge(_skyrmion(24, 5, core=1.0)) == pytest.approx(1, abs=1e-9)
    two = np.concatenate([one, np.roll(one, 7, axis=0)], axis=1)      # two on a 24×48 film
    np.testing.assert_allclose(topological_charge(np.stack([two, -two])), [-2, 2], atol=1e-9)
    assert topological_charge(np.broadcast_to([0.0, 0.0, 1.0], (8, 8, 3))) == 0.0


# --- annealing ----------------------------------------------------------------------------------

#: sha256 (first 32 hex digits) of spins annealed before the Hamiltonian interface existed.
BEFORE = {"typeI": "0933ceb3afe81228ed0f4458d9163f1a", "typeII": "99bfc84beb5b4c17efd4da27aeabf6ad",
          "typeI_lbfgs": "6eea1f3d3f655a99d95ba2ab1103635e"}


def _digest(spins):
    return hashlib.sha256(np.ascontiguousarray(spins).tobytes()).hexdigest()[:32]


def test_annealing_without_a_field_is_unchanged_bit_for_bit():
    quick = Schedule(sweeps=40, relax_sweeps=50)
    assert _digest(anneal(TypeI(), 16, 7, [0, 3], quick)) == BEFORE["typeI"]
    assert _digest(anneal(TypeII(), 16, 7, [0, 2], Schedule(t_start=2.0, t_end=0.1, sweeps=30,
                                                              relax_sweeps=20))) == BEFORE["typeII"]
    lbfgs = Schedule(sweeps=40, relax_sweeps=50, relax_method="lbfgs")
    assert _digest(anneal(TypeI(), 16, 7, [0], lbfgs)) == BEFORE["typeI_lbfgs"]
    # a zero field given explicitly runs through the same kernels, bit for bit
    np.testing.assert_array_equal(anneal(InField(TypeI(), (0.0, 0.0, 0.0)), 16, 7, [0, 3], quick),
                                  anneal(TypeI(), 16, 7, [0, 3], quick))


@pytest.mark.parametrize("hz", [0.06, -0.06])
def test_type_i_in_a_field_is_magnetised_along_it_and_holds_skyrmions(hz):
    """D/J = 0.3 at |hz| = 0.06 J: a skyrmion lattice (docs/physics.md) — net moment along h and
    a topological charge of several skyrmions whose cores point against h."""
    ham = with_field(TypeI(), hz)
    spins, info = anneal(ham, 48, 1, [0, 1], return_info=True)
    assert np.all(info["max_torque"] < 1e-4)
    mz = spins[..., 2].mean(axis=(1, 2))
    assert np.all(np.sign(hz) * mz > 0.4)                      # measured 0.58 (L = 96)
    q = topological_charge(spins)
    np.testing.assert_allclose(q, np.round(q), atol=1e-6)
    assert np.all(np.sign(hz) * q <= -3)                      # measured -10, -4


def test_a_saturating_field_gives_the_uniform_state_and_an_inplane_field_its_direction():
    spins = anneal(with_field(TypeI(), 0.25), 32, 1, [0])
    assert spins[..., 2].min() > 0.999 and abs(topological_charge(spins[0])) < 1e-6
    spins = anneal(with_field(TypeI(), (0.0, -0.3, 0.0)), 24, 1, [0])
    assert spins[..., 1].mean() < -0.99


@pytest.mark.parametrize("hz", [0.02, -0.02])
def test_type_ii_in_a_field_saturates_along_it(hz):
    """The dipolar kernel path with the field added to the dipolar field: the arrested domains
    of Type II give way to the film along h (uniform from hz ≈ 0.006 J, docs/physics.md)."""
    spins = anneal(with_field(TypeII(), hz), 16, 2, [0, 1])
    assert np.all(np.sign(hz) * spins[..., 2].mean(axis=(1, 2)) > 0.95)


@pytest.mark.parametrize("base", [TypeI(), TypeII()])
def test_lbfgs_relaxation_in_a_field_reaches_the_tolerance(base):
    ham = with_field(base, 0.05 if base.kind == "typeI" else 0.003)
    sched = Schedule(sweeps=60, relax_method="lbfgs", relax_sweeps=3000)
    spins, info = anneal(ham, 16, 3, [0], sched, return_info=True)
    assert max_torque(spins[0], ham) < 1.05 * sched.torque_tol
    assert info["max_torque"][0] < sched.torque_tol
