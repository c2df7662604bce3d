import itertools

import numpy as np
import pytest

from spinsr_tf.physics import dipolar_field, dipolar_kernel
from spinsr_tf.physics.dipolar import kernel_spectrum


def _images(d, n):
    """Minimum-image displacements of offset d on a ring of n sites (two when equidistant)."""
    d = d % n
    cands = [d, d - n]
    best = min(abs(c) for c in cands)
    return [c for c in cands if abs(c) == best]


def _pair_tensor(dx, dy, h, w, factor):
    imgs = list(itertools.product(_images(dx, w), _images(dy, h)))
    t = np.zeros((3, 3))
    for x, y in imgs:
        r = np.hypot(x, y)
        u = np.array([x, y, 0.0]) / r
        t += (np.eye(3) - factor * np.outer(u, u)) / r ** 3
    return t / len(imgs)


def brute_field(s, strength, factor):
    """O(N²) double loop over all pairs, image averaging done independently of the library."""
    h, w, _ = s.shape
    out = np.zeros_like(s, dtype=np.float64)
    for i0, j0, i1, j1 in itertools.product(range(h), range(w), range(h), range(w)):
        if (i0, j0) == (i1, j1):
            continue
        out[i0, j0] -= strength * _pair_tensor(j1 - j0, i1 - i0, h, w, factor) @ s[i1, j1]
    return out


def _random_spins(shape, seed):
    s = np.random.default_rng(seed).normal(size=shape + (3,))
    return s / np.linalg.norm(s, axis=-1, keepdims=True)


@pytest.mark.parametrize("shape", [(6, 6), (8, 8), (5, 5), (4, 6)])
@pytest.mark.parametrize("factor", [3.0, 1.0])
def test_fft_field_matches_brute_force(shape, factor):
    s = _random_spins(shape, seed=sum(shape))
    np.testing.assert_allclose(dipolar_field(s, 0.07, factor), brute_field(s, 0.07, factor),
                               rtol=1e-10, atol=1e-12)


def test_batch_equals_single_configurations():
    s = _random_spins((3, 6, 8), seed=1)
    batch = dipolar_field(s, 0.03)
    for b in range(3):
        np.testing.assert_allclose(batch[b], dipolar_field(s[b], 0.03), atol=1e-14)


def test_kernel_is_even_with_real_spectrum():
    k = dipolar_kernel((8, 6))
    flipped = np.roll(k[:, ::-1, ::-1], 1, axis=(1, 2))  # W(-r)
    np.testing.assert_array_equal(k, flipped)
    assert np.all(k[:, 0, 0] == 0)
    spec = np.fft.fft2(k)
    assert np.abs(spec.imag).max() < 1e-12
    np.testing.assert_allclose(kernel_spectrum((8, 6)), np.fft.rfft2(k).real)


def test_equidistant_images_cancel_the_xy_component():
    k = dipolar_kernel((8, 8))
    assert np.all(k[1, 4, :] == 0) and np.all(k[1, :, 4] == 0)
    assert k[1, 1, 1] == pytest.approx(-3 * 1 * 1 / 2 ** 2.5)  # (dy, dx) = (1, 1)


def test_lattice_sum_of_inverse_cubes_tends_to_the_plane_value():
    # Σ_{r≠0} 1/r³ over the infinite square lattice is ≈ 9.0336; the minimum image truncates
    # it at half the box, a tail decaying as 1/L.
    sums = {n: dipolar_kernel((n, n))[3].sum() for n in (32, 64, 128, 256)}
    gaps = [9.0336 - sums[n] for n in (32, 64, 128, 256)]
    assert all(g > 0 for g in gaps)
    assert all(0.45 < gaps[i + 1] / gaps[i] < 0.55 for i in range(3))  # ~1/L convergence
    assert gaps[-1] < 0.06
