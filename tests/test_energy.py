import itertools
import math

import numpy as np
import pytest

from spinsr_tf.base.errors import UserError
from spinsr_tf.physics import InField, TypeI, TypeII, energy, local_field, max_torque, with_field
from spinsr_tf.physics.dipolar import LATTICE_SUM
from references import pair_tensor

X, Y, Z = np.eye(3)


def _random(shape, seed, unit=True):
    s = np.random.default_rng(seed).normal(size=shape + (3,))
    return s / np.linalg.norm(s, axis=-1, keepdims=True) if unit else s


def brute_energy(s, ham):
    """Double loops straight from the Hamiltonians (pairs counted once); a Zeeman field as
    -Σ_i h·S_i over the sites."""
    h, w, _ = s.shape
    e = 0.0
    if isinstance(ham, InField):
        for i, j in itertools.product(range(h), range(w)):
            e -= np.asarray(ham.field) @ s[i, j]
        ham = ham.base
    for i, j in itertools.product(range(h), range(w)):
        for r_hat, (i1, j1) in ((X, (i, (j + 1) % w)), (Y, ((i + 1) % h, j))):
            e -= ham.J * s[i, j] @ s[i1, j1]
            if isinstance(ham, TypeI):
                d = ham.dmi * (np.cross(Z, r_hat) if ham.dmi_kind == "interfacial" else r_hat)
                e += d @ np.cross(s[i, j], s[i1, j1])
    if isinstance(ham, TypeII):
        e -= ham.anisotropy * np.sum(s[..., 2] ** 2)
        sites = list(itertools.product(range(h), range(w)))
        for a, b in itertools.product(sites, sites):  # ordered pairs and self-images, halved
            t = pair_tensor(b[1] - a[1], b[0] - a[0], h, w, ham.dipolar_factor,
                            ham.dipolar_images)
            e += 0.5 * ham.dipolar * s[a] @ t @ s[b]
    return e


HAMS = [TypeI(), TypeI(J=0.7, dmi=0.45, dmi_kind="bulk"), TypeII(dipolar_images="minimum"),
        TypeII(J=0.5, dipolar=0.2, anisotropy=0.3, dipolar_form="printed",
               dipolar_images="minimum"), TypeII(),
        TypeII(J=0.5, dipolar=0.2, anisotropy=0.3, dipolar_form="printed"),
        with_field(TypeI(), 0.05), with_field(TypeI(dmi_kind="bulk"), (0.3, -0.2, 0.1)),
        with_field(TypeII(dipolar=0.2, dipolar_images="minimum"), (0.0, 0.4, -0.25)),
        with_field(TypeII(), 0.02)]


@pytest.mark.parametrize("ham", HAMS)
@pytest.mark.parametrize("shape", [(4, 4), (6, 6), (5, 4)])
def test_energy_matches_double_loop(ham, shape):
    s = _random(shape, seed=shape[0] * 7 + shape[1])
    base = ham.base if isinstance(ham, InField) else ham
    exact = not isinstance(base, TypeII) or base.dipolar_images == "minimum"
    # the brute-force image sum is accurate to ~2e-5 per tensor element
    tol = 1e-12 if exact else ham.dipolar * (shape[0] * shape[1]) ** 2 * 2e-5
    assert energy(s, ham) == pytest.approx(brute_energy(s, ham), rel=1e-12, abs=tol)


@pytest.mark.parametrize("ham", HAMS)
def test_local_field_is_minus_the_numerical_gradient(ham):
    s = _random((4, 6), seed=3, unit=False)
    grad = np.zeros_like(s)
    eps = 1e-5
    for idx in itertools.product(range(4), range(6), range(3)):
        p, m = s.copy(), s.copy()
        p[idx] += eps
        m[idx] -= eps
        grad[idx] = (energy(p, ham) - energy(m, ham)) / (2 * eps)
    np.testing.assert_allclose(local_field(s, ham), -grad, atol=1e-8)


def test_batch_and_dtype_handling():
    s = _random((3, 6, 6), seed=5).astype(np.float32)
    e = energy(s, TypeII())
    assert e.shape == (3,)
    assert e[1] == pytest.approx(energy(s[1], TypeII()))
    assert isinstance(energy(s[0], TypeI()), float)
    assert local_field(s, TypeI()).shape == s.shape and local_field(s, TypeI()).dtype == np.float64
    assert max_torque(s, TypeI()).shape == (3,)


def _helix(n_sites, q, plane):
    phase = q * np.arange(n_sites)
    s = np.zeros((2, n_sites, 3))
    s[..., plane[0]] = np.sin(phase)
    s[..., plane[1]] = np.cos(phase)
    return s


@pytest.mark.parametrize("kind, plane", [("interfacial", (0, 2)), ("bulk", (1, 2))])
def test_helix_energy_is_minimal_at_the_expected_period(kind, plane):
    """Scan helices along x on a 2000-site strip: the lowest energy picks the period."""
    ham = TypeI(dmi_kind=kind)
    n = 2000
    windings = np.arange(-150, 151)
    energies = [energy(_helix(n, 2 * np.pi * k / n, plane), ham) for k in windings]
    best = windings[int(np.argmin(energies))]
    period = n / abs(best)
    assert period == pytest.approx(2 * math.pi / math.atan(0.3), rel=0.01)
    # one chirality only: the mirror helix costs energy
    assert energy(_helix(n, -2 * np.pi * best / n, plane), ham) > min(energies) + 100
    assert max_torque(_helix(n, 2 * np.pi * best / n, plane), ham) < 1e-12


def test_uniform_film_effective_anisotropy_minimum_image():
    """K_eff = (E(+x) - E(+z)) / N = K - 0.75 Ddip Σ 1/r³, Σ over the minimum images."""
    n = 16
    lattice_sum = sum(1.0 / (dx * dx + dy * dy) ** 1.5
                      for dx, dy in itertools.product(range(-n // 2, n // 2), repeat=2)
                      if (dx, dy) != (0, 0))
    ham = TypeII(dipolar_images="minimum")
    ez = energy(np.broadcast_to(Z, (n, n, 3)), ham) / n ** 2
    assert ez == pytest.approx(-2.0 - 0.215 + 0.5 * 0.03 * lattice_sum, rel=1e-12)
    ex = energy(np.broadcast_to(X, (n, n, 3)), ham) / n ** 2
    assert ex == pytest.approx(-2.0 - 0.25 * 0.03 * lattice_sum, rel=1e-12)


@pytest.mark.parametrize("form, k_eff", [("standard", 0.215 - 0.75 * 0.03 * LATTICE_SUM),
                                         ("printed", 0.215 - 0.25 * 0.03 * LATTICE_SUM)])
def test_effective_anisotropy_does_not_depend_on_the_box(form, k_eff):
    """Converged images: the uniform-state energies, hence K_eff ≈ 0.0117 (standard) and
    ≈ 0.147 (printed), are those of the infinite film on every box; the minimum image drifts."""
    def keff(n, images):
        ham = TypeII(dipolar_form=form, dipolar_images=images)
        return (energy(np.broadcast_to(X, (n, n, 3)), ham)
                - energy(np.broadcast_to(Z, (n, n, 3)), ham)) / n ** 2

    for n in (32, 64, 128, 256):
        assert keff(n, "converged") == pytest.approx(k_eff, rel=1e-6)
    ez = energy(np.broadcast_to(Z, (32, 32, 3)), TypeII(dipolar_form=form)) / 32 ** 2
    assert ez == pytest.approx(-2.0 - 0.215 + 0.5 * 0.03 * LATTICE_SUM, rel=1e-9)
    if form == "standard":
        drift = keff(32, "minimum") / keff(256, "minimum") - 1
        assert drift > 0.3  # what the minimum image did: 0.020 at L = 32, 0.013 at 256
    assert max_torque(np.broadcast_to(Z, (32, 32, 3)), TypeII(dipolar_form=form)) < 1e-12


def test_torque_of_random_state_is_large():
    assert max_torque(_random((8, 8), seed=1), TypeI()) > 0.5


@pytest.mark.parametrize("bad, word", [
    (np.zeros((4, 4)), "shape"),
    (np.zeros((1, 4, 3)), "shape"),
    (np.full((4, 4, 3), np.nan), "NaN"),
    (np.zeros((4, 4, 3), dtype=complex), "real"),
])
def test_bad_spins_raise_user_errors(bad, word):
    with pytest.raises(UserError, match=word):
        energy(bad, TypeI())


def test_bad_hamiltonian_raises_user_error():
    with pytest.raises(UserError, match="hamiltonian"):
        local_field(np.zeros((4, 4, 3)), {"type": "I"})
