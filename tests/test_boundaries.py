"""Open boundaries: energy against a double loop over the film's bonds, field against finite
differences, the Keras energy, annealing (relaxed to the open film's torque, detailed balance
against an independent Metropolis), symmetry by energy invariance, files."""

import itertools
import math

import keras
import numpy as np
import pytest

from spinsr_tf.base.errors import UserError
from spinsr_tf.nn.symmetry import LatticeOp, apply, group_for
from spinsr_tf.physics import (OpenFilm, Schedule, TypeI, TypeII, anneal, energy,
                               hamiltonian_from_attrs, local_field, max_torque, with_boundary,
                               with_field)
from spinsr_tf.physics.keras_energy import energy_per_spin

X, Y, Z = np.eye(3)
HAMS = [with_boundary(TypeI(), "open"), with_boundary(TypeI(J=0.7, dmi=-0.4, dmi_kind="bulk"),
                                                      "open"),
        with_boundary(with_field(TypeII(dipolar=0.0, anisotropy=0.3), (0.1, 0.0, -0.2)), "open")]


def _random(shape, seed, unit=True):
    s = np.random.default_rng(seed).normal(size=shape + (3,))
    return s / np.linalg.norm(s, axis=-1, keepdims=True) if unit else s


def brute_energy(s, ham):
    """Bonds inside the film only (i → i + x̂ while j + 1 < W, i → i + ŷ while i + 1 < H), the
    on-site terms at every site."""
    t = ham.terms()
    dx, dy = t.dmi_vectors()
    h, w, _ = s.shape
    e = 0.0
    for i, j in itertools.product(range(h), range(w)):
        for d, (i1, j1) in ((dx, (i, j + 1)), (dy, (i + 1, j))):
            if i1 < h and j1 < w:
                e += -t.J * s[i, j] @ s[i1, j1] + d @ np.cross(s[i, j], s[i1, j1])
        e -= t.anisotropy * s[i, j, 2] ** 2 + t.field_vector() @ s[i, j]
    return e


@pytest.mark.parametrize("ham", HAMS, ids=lambda h: h.describe())
@pytest.mark.parametrize("shape", [(4, 4), (5, 6)])
def test_energy_matches_the_double_loop_over_the_films_bonds(ham, shape):
    s = _random(shape, seed=sum(shape))
    assert energy(s, ham) == pytest.approx(brute_energy(s, ham), rel=1e-12, abs=1e-12)
    periodic = ham.replace(boundary="periodic")
    assert abs(energy(s, periodic) - energy(s, ham)) > 1e-3      # the seam bonds are gone


@pytest.mark.parametrize("ham", HAMS, ids=lambda h: h.describe())
def test_local_field_is_minus_the_numerical_gradient(ham):
    s = _random((4, 5), seed=2, unit=False)
    grad = np.zeros_like(s)
    eps = 1e-5
    for idx in itertools.product(range(4), range(5), range(3)):
        p, m = s.copy(), s.copy()
        p[idx] += eps
        m[idx] -= eps
        grad[idx] = (energy(p, ham) - energy(m, ham)) / (2 * eps)
    np.testing.assert_allclose(local_field(s, ham), -grad, atol=1e-8)


@pytest.mark.parametrize("ham", HAMS, ids=lambda h: h.describe())
def test_keras_energy_matches_numpy(ham):
    s = np.random.default_rng(1).normal(size=(2, 6, 8, 3))
    got = keras.ops.convert_to_numpy(energy_per_spin(s, ham))
    np.testing.assert_allclose(got, energy(s, ham) / 48, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("relax", ["overrelax", "lbfgs"])
def test_annealed_open_film_is_relaxed_under_the_open_hamiltonian(relax):
    """The kernels drop the seam bonds: the result is stationary for the open film's field and
    not for the periodic one (whose seam bonds pull the edge spins)."""
    ham = with_boundary(TypeI(), "open")
    spins = anneal(ham, 16, 4, [0, 1], Schedule(sweeps=100, relax_method=relax))
    # (the over-relaxed kernel measures the torque before its last update: up to 2× the tol)
    assert np.all(max_torque(spins, ham) < (2e-4 if relax == "overrelax" else 1.05e-4))
    assert np.all(max_torque(spins, TypeI()) > 0.05)


def _reference_metropolis(L, T, replicas, sweeps, seed, open_):
    """Independent Type I Metropolis (uniform proposals, fields by np.roll with the edge
    neighbours removed on an open film): energy per spin of each replica."""
    rng = np.random.default_rng(seed)

    def unit(shape):
        v = rng.normal(size=shape + (3,))
        return v / np.linalg.norm(v, axis=-1, keepdims=True)

    keep = np.ones((L, L, 1))
    last = keep.copy()
    if open_:
        last[-1] = 0.0

    def nb(s, shift, axis):
        out = np.roll(s, -shift, axis)
        if open_:
            edge = [slice(None)] * 4
            edge[axis] = -1 if shift > 0 else 0
            out[tuple(edge)] = 0.0
        return out

    s = unit((replicas, L, L))
    dx, dy = np.array([0, 0.3, 0.0]), np.array([-0.3, 0, 0.0])
    mask = (np.add.outer(np.arange(L), np.arange(L)) % 2)[None, :, :]
    for _ in range(sweeps):
        for c in (0, 1):
            xp, xm, yp, ym = nb(s, 1, 2), nb(s, -1, 2), nb(s, 1, 1), nb(s, -1, 1)
            h = xp + xm + yp + ym + np.cross(dx, xp - xm) + np.cross(dy, yp - ym)
            new = unit(s.shape[:3])
            de = -np.sum(h * (new - s), axis=-1)
            ok = (rng.random(de.shape) < np.exp(-np.maximum(de, 0) / T)) & (mask == c)
            s = np.where(ok[..., None], new, s)
    ham = with_boundary(TypeI(), "open" if open_ else "periodic")
    return energy(s, ham) / L ** 2


def test_open_film_metropolis_samples_the_boltzmann_distribution():
    """Detailed balance on a 4×4 open film at T = 0.5 (mean energy), against the reference;
    the periodic lattice's mean energy is many σ away (12 of the 32 bonds are gone)."""
    L, T, n = 4, 0.5, 600
    ham = with_boundary(TypeI(), "open")
    ours = energy(anneal(ham, L, 8, range(n),
                         Schedule(t_start=T, t_end=T, sweeps=150, relax_sweeps=0)), ham) / L ** 2
    ref = _reference_metropolis(L, T, n, 300, seed=11, open_=True)
    err = math.hypot(ours.std(), ref.std()) / math.sqrt(n)
    assert abs(ours.mean() - ref.mean()) < 4 * err and err < 0.02
    periodic = _reference_metropolis(L, T, n, 300, seed=11, open_=False)
    assert abs(periodic.mean() - ref.mean()) > 12 * err


def test_translations_break_and_point_operations_about_the_centre_survive():
    ham = with_boundary(TypeI(), "open")
    group = group_for("lattice", ham)
    assert not group.translations and group.rotations and group.flip
    s = _random((8, 8), seed=5)[None]
    for op in group.elements(8, 8):
        assert abs(energy(apply(s, op), ham)[0] - energy(s, ham)[0]) < 1e-10, op
    assert abs(energy(apply(s, LatticeOp(shift=(0, 3))), ham)[0] - energy(s, ham)[0]) > 1e-3
    assert not ham.translation_symmetric and TypeI().translation_symmetric
    with pytest.raises(UserError, match="translations"):
        group_for("translations+rotations", ham)
    assert not group_for("lattice", ham.to_attrs()).translations


def test_attrs_round_trip_and_composition_with_a_field():
    a = with_field(with_boundary(TypeI(), "open"), 0.05)
    b = with_boundary(with_field(TypeI(), 0.05), "open")
    assert a == b and a.terms().open and a.terms().field == (0.0, 0.0, 0.05)
    assert a.to_attrs()["boundary"] == "open" and hamiltonian_from_attrs(a.to_attrs()) == a
    assert hamiltonian_from_attrs({**TypeI().to_attrs(), "boundary": b"open"}) == OpenFilm(TypeI())
    assert type(hamiltonian_from_attrs(TypeI().to_attrs())) is TypeI        # files as before
    assert with_boundary(a, "periodic") == with_field(TypeI(), 0.05)
    assert a.kind == "typeI" and "open film" in a.describe() and a.dmi == 0.3


@pytest.mark.parametrize("call, word", [
    (lambda: with_boundary(TypeII(), "open"), "dipolar"),
    (lambda: with_boundary(TypeI(), "closed"), "boundary"),
    (lambda: hamiltonian_from_attrs({**TypeI().to_attrs(), "boundary": "x"}), "boundary"),
])
def test_bad_boundaries_are_one_line_user_errors(call, word):
    with pytest.raises(UserError, match=word) as info:
        call()
    assert "\n" not in str(info.value)
