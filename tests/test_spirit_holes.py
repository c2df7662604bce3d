"""Films with holes relaxed by Spirit (benchmarks/foreign_textures.py): the holes are vacancies.

The PyPI build of Spirit ignores its own vacancies (``defects`` OFF), so a film with holes is
one large basis cell holding only the magnet's sites, with its bonds listed. Checked here: the
hole cells come back as exact zeros, the magnet's cells as unit vectors, and Spirit's energy of
a film with holes is the package's open-boundary energy of the same map with the holes set to
zero vectors (a hole has no moment and no bond); the same map with the holes filled has a
different energy, so a hole that still interacted would fail.
"""


import numpy as np
import pytest
from conftest import benchmark_module

from spinsr_tf.physics import TypeI, energy, max_torque, with_field

pytest.importorskip("spirit")

ft = benchmark_module("foreign_textures")

# non-square, so that a transposed site order cannot pass
SHAPE = (14, 18)


def _magnet():
    m = np.ones(SHAPE, dtype=bool)
    m[5:9, 6:10] = False      # an interior hole
    m[0, 0] = False           # a corner site
    m[13, 4] = False          # an edge site
    m[2, 15] = False          # a single interior vacancy
    return m


def _open_energy(spins, ham) -> float:
    """The package's open-boundary energy: one row and column of zeros meet the wrap-around
    bonds."""
    return energy(np.pad(spins, ((0, 1), (0, 1), (0, 0))), ham)


def test_film_pairs_are_the_bonds_between_magnet_sites():
    m = _magnet()
    pairs = ft.film_pairs(m)
    y, x = np.nonzero(m)
    want = set()
    for a in range(len(y)):
        for b in range(len(y)):
            if (x[b] - x[a], y[b] - y[a]) in ((1, 0), (0, 1)):
                want.add((a, b, x[b] - x[a], y[b] - y[a]))
    assert set(map(tuple, pairs.tolist())) == want and len(pairs) == len(want)


@pytest.mark.parametrize("kind,dmi", [("interfacial", 0.3), ("bulk", -0.25)])
def test_holes_interact_with_nothing(kind, dmi):
    m = _magnet()
    s = ft.random_spins(SHAPE, seed=11)
    material = ft.Material(J=1.1, dmi=dmi, dmi_kind=kind, anisotropy=0.2, field=0.07,
                           periodic=False)
    ham = with_field(TypeI(J=1.1, dmi=dmi, dmi_kind=kind), 0.07)
    holes_zero = s * m[..., None]
    want = _open_energy(holes_zero, ham) - 0.2 * np.sum(holes_zero[..., 2] ** 2)
    got = ft.spirit_film_energy(s, material, m)
    # Spirit returns its energy as a C float
    assert got == pytest.approx(want, rel=1e-6, abs=1e-5)
    filled = _open_energy(s, ham) - 0.2 * np.sum(s[..., 2] ** 2)
    assert abs(filled - want) > 0.5
    # what a hole holds in the input does not matter
    other = np.where(m[..., None], s, ft.random_spins(SHAPE, seed=12))
    assert ft.spirit_film_energy(other, material, m) == pytest.approx(got, abs=1e-5)
    # without holes the film is the regular lattice of spirit_config
    full = np.ones(SHAPE, dtype=bool)
    assert ft.spirit_film_energy(s, material, full) == pytest.approx(
        ft.spirit_energy(s, material), rel=1e-6, abs=1e-5)


def test_relaxed_film_has_zero_holes_and_unit_spins(tmp_path):
    m = _magnet()
    material = ft.Material(dmi=0.3, periodic=False)
    spins, rec = ft.load_or_make_film(material, m, seed=5, cache=tmp_path)
    assert spins.shape == (*SHAPE, 3) and spins.dtype == np.float32
    assert np.all(spins[~m] == 0.0)
    np.testing.assert_allclose(np.linalg.norm(spins[m], axis=-1), 1.0, atol=1e-6)
    assert rec["converged"] and rec["holes"] == int((~m).sum())
    # a low-torque state of the package's Hamiltonian with the holes as zeros
    padded = np.pad(spins.astype(np.float64), ((0, 1), (0, 1), (0, 0)))
    assert max_torque(padded, TypeI(dmi=0.3)) < 1e-3
    start = ft.random_spins(SHAPE, 5) * m[..., None]
    assert _open_energy(spins, TypeI(dmi=0.3)) < _open_energy(start, TypeI(dmi=0.3)) - 50
    again, rec2 = ft.load_or_make_film(material, m, seed=5, cache=tmp_path)
    np.testing.assert_array_equal(again, spins)
    assert rec2 == rec


def test_film_with_holes_rejects_periodic_and_dipolar(tmp_path):
    m = _magnet()
    with pytest.raises(ValueError, match="open edges"):
        ft.spirit_film_config(ft.Material(dmi=0.3), m, tmp_path)
    with pytest.raises(ValueError, match="dipolar"):
        ft.spirit_film_config(ft.Material(dipolar=0.1, periodic=False), m, tmp_path)
