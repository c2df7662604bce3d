import itertools

import numpy as np
import pytest

from spinsr_tf.base.errors import UserError
from spinsr_tf.physics import dipolar_field, dipolar_kernel
from spinsr_tf.physics.dipolar import IMAGE_SHELLS, LATTICE_SUM, image_sum, kernel_spectrum
from conftest import random_unit_spins
from references import pair_tensor, periodic_tensor  # noqa: F401


def _random_spins(shape, seed):
    """float64 unit spins on a lattice of ``shape`` (the components axis is added)."""
    return random_unit_spins(tuple(shape) + (3,), seed, np.float64)


def brute_field(s, strength, factor, images="minimum"):
    """O(N²) double loop over all pairs (and, converged, each spin's own images), the images
    handled independently of the library."""
    h, w, _ = s.shape
    out = np.zeros_like(s, dtype=np.float64)
    for i0, j0, i1, j1 in itertools.product(range(h), range(w), range(h), range(w)):
        t = pair_tensor(j1 - j0, i1 - i0, h, w, factor, images)
        out[i0, j0] -= strength * t @ s[i1, j1]
    return out


@pytest.mark.parametrize("shape", [(6, 6), (8, 8), (5, 5), (4, 6)])
@pytest.mark.parametrize("factor", [3.0, 1.0])
def test_fft_field_matches_brute_force(shape, factor):
    s = _random_spins(shape, seed=sum(shape))
    np.testing.assert_allclose(dipolar_field(s, 0.07, factor, "minimum"),
                               brute_field(s, 0.07, factor), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("shape", [(6, 6), (8, 8), (5, 5), (4, 6)])
@pytest.mark.parametrize("factor", [3.0, 1.0])
def test_fft_field_matches_brute_force_with_images(shape, factor):
    """The converged kernel against a disk of images of radius 400 plus its continuum tail
    (accurate to ~2e-5 per tensor element); the minimum image is ~1e-2 away."""
    s = _random_spins(shape, seed=sum(shape))
    brute = brute_field(s, 0.07, factor, "converged")
    tol = 0.07 * shape[0] * shape[1] * 3e-5
    np.testing.assert_allclose(dipolar_field(s, 0.07, factor), brute, rtol=0, atol=tol)
    assert np.abs(dipolar_field(s, 0.07, factor, "minimum") - brute).max() > 30 * tol


def test_converged_kernel_sums_to_the_infinite_lattice_and_has_converged():
    for n in (8, 32, 64):
        k = dipolar_kernel((n, n))
        np.testing.assert_allclose(k.sum(axis=(1, 2)),
                                   np.array([-0.5, 0.0, -0.5, 1.0]) * LATTICE_SUM, atol=1e-9)
        # four times the image shells: the remainder really is uniform across the box
        more = image_sum((n, n), 3.0, 4 * IMAGE_SHELLS)
        more += (np.array([-0.5, 0, -0.5, 1.0]) * LATTICE_SUM - more.sum(axis=(1, 2))
                 * np.array([1, 0, 1, 1]))[:, None, None] / n ** 2
        assert np.abs(k - more).max() < 3e-4 * np.abs(k[3]).min()


def test_lattice_sum_constant():
    """Σ_{r≠0} 1/r³ by a direct sum over a disk of radius 1500 plus its tail 2π/R."""
    R = 1500
    x = np.arange(-R, R + 1, dtype=np.float64)
    total = 0.0
    for row in np.array_split(x, 30):
        r2 = row[:, None] ** 2 + x[None, :] ** 2
        ok = (r2 > 0) & (r2 <= R * R)
        total += np.sum(r2[ok] ** -1.5)
    assert total + 2 * np.pi / R == pytest.approx(LATTICE_SUM, abs=2e-6)


def test_bad_images_is_one_line_user_error():
    with pytest.raises(UserError, match="dipolar_images") as info:
        dipolar_kernel((4, 4), images="ewald")
    assert "\n" not in str(info.value)


def test_batch_equals_single_configurations():
    s = _random_spins((3, 6, 8), seed=1)
    batch = dipolar_field(s, 0.03)
    for b in range(3):
        np.testing.assert_allclose(batch[b], dipolar_field(s[b], 0.03), atol=1e-14)


@pytest.mark.parametrize("images", ["converged", "minimum"])
def test_kernel_is_even_with_real_spectrum(images):
    k = dipolar_kernel((8, 6), images=images)
    flipped = np.roll(k[:, ::-1, ::-1], 1, axis=(1, 2))  # W(-r)
    np.testing.assert_allclose(k, flipped, rtol=1e-13, atol=1e-15)
    assert np.all(k[:, 0, 0] == 0) == (images == "minimum")
    spec = np.fft.fft2(k)
    assert np.abs(spec.imag).max() < 1e-12
    np.testing.assert_allclose(kernel_spectrum((8, 6), images=images), np.fft.rfft2(k).real)


def test_equidistant_images_cancel_the_xy_component():
    k = dipolar_kernel((8, 8), images="minimum")
    assert np.all(k[1, 4, :] == 0) and np.all(k[1, :, 4] == 0)
    assert k[1, 1, 1] == pytest.approx(-3 * 1 * 1 / 2 ** 2.5)  # (dy, dx) = (1, 1)


def test_lattice_sum_of_inverse_cubes_tends_to_the_plane_value():
    # Σ_{r≠0} 1/r³ over the infinite square lattice is ≈ 9.0336; the minimum image truncates
    # it at half the box, a tail decaying as 1/L.
    sums = {n: dipolar_kernel((n, n), images="minimum")[3].sum() for n in (32, 64, 128, 256)}
    gaps = [9.0336 - sums[n] for n in (32, 64, 128, 256)]
    assert all(g > 0 for g in gaps)
    assert all(0.45 < gaps[i + 1] / gaps[i] < 0.55 for i in range(3))  # ~1/L convergence
    assert gaps[-1] < 0.06


@pytest.mark.parametrize("size", [6, 8, 16])
@pytest.mark.parametrize("images", ["converged", "minimum"])
def test_sublattice_convolutions_give_the_whole_lattice_field(size, images):
    """The annealing's half-size transforms (each sublattice on its own sheared grid) give, on
    every site, the dipolar field of the whole-lattice FFT (self term left out)."""
    import scipy.fft

    from spinsr_tf.physics import _kernels as kern
    from spinsr_tf.physics.dipolar import sublattice_spectra

    rng = np.random.default_rng(size)
    spins = rng.normal(size=(size, size, 3))
    spins /= np.linalg.norm(spins, axis=-1, keepdims=True)
    w0 = dipolar_kernel((size, size), 3.0, images)[:, 0, 0]
    reference = dipolar_field(spins, 1.0, 3.0, images)
    reference += np.stack([w0[0] * spins[..., 0] + w0[1] * spins[..., 1],
                           w0[1] * spins[..., 0] + w0[2] * spins[..., 1],
                           w0[3] * spins[..., 2]], axis=-1)   # without the self term
    m = size // 2
    packed = np.zeros((2, 3, size, m + 2), dtype=np.float32)
    kern.pack_components(np.moveaxis(spins, -1, 0).astype(np.float32), packed)
    spectra = -sublattice_spectra(size, 3.0, images)
    transforms = []
    for c in (0, 1):
        sheared = np.empty((3, size, m), dtype=np.float32)
        kern.shear_sublattice(packed, c, sheared)
        transforms.append(scipy.fft.rfft2(sheared.astype(np.float64)))
    got = np.zeros((size, size, 3))
    for t in (0, 1):
        product = np.empty_like(transforms[0])
        kern.apply_pair_spectrum(transforms[t], spectra[t, t], transforms[1 - t],
                                 spectra[t, 1 - t], product)
        field = np.fft.irfft2(product, s=(size, m)).astype(np.float32)
        on_sites = np.empty((3, size, m), dtype=np.float32)
        kern.unshear_field(field, t, on_sites)
        for i in range(size):
            j = 2 * np.arange(m) + (i + t) % 2
            got[i, j] = on_sites[:, i].T
    np.testing.assert_allclose(got, reference, atol=2e-6)
