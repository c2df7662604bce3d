"""NumPy Gaussian downsizing: brute-force sliding window, sampling offset, boundaries, errors."""

import numpy as np
import pytest

from spinsr_tf.data.degradation import (
    downsample_matrix,
    gaussian_downsample,
    gaussian_kernel,
    gaussian_kernel_1d,
    padded_indices,
)
from spinsr_tf.base.errors import UserError

NP_MODE = {"periodic": "wrap", "reflect": "reflect"}


def brute_force(x, factor, size=23, sigma=1.0, padding="periodic"):
    """The degradation formula as a literal 2D sliding window over an ``np.pad``-ed map."""
    k = gaussian_kernel(size, sigma)
    c = size // 2
    xp = np.pad(np.asarray(x, np.float64), ((0, 0), (c, c), (c, c), (0, 0)),
                mode=NP_MODE[padding])
    n, h, w, ch = x.shape
    out = np.zeros((n, h // factor, w // factor, ch))
    for a in range(h // factor):
        for b in range(w // factor):
            window = xp[:, a * factor:a * factor + size, b * factor:b * factor + size, :]
            out[:, a, b, :] = np.einsum("uv,nuvc->nc", k, window)
    return out


def test_kernel_normalised_centred_separable():
    k = gaussian_kernel(23, 1.0)
    assert k.shape == (23, 23) and k.dtype == np.float64
    assert k.sum() == pytest.approx(1.0, abs=1e-14)
    assert np.unravel_index(np.argmax(k), k.shape) == (11, 11)
    np.testing.assert_allclose(k, k[::-1, ::-1], rtol=0, atol=0)
    np.testing.assert_allclose(k, k.T, rtol=0, atol=0)
    r2 = (np.arange(23) - 11)[:, None] ** 2 + (np.arange(23) - 11)[None, :] ** 2
    expected = np.exp(-r2 / (2 * 2.5**2))
    np.testing.assert_allclose(gaussian_kernel(23, 2.5), expected / expected.sum(), rtol=1e-13)
    g = gaussian_kernel_1d(7, 1.5)
    np.testing.assert_allclose(gaussian_kernel(7, 1.5), np.outer(g, g), rtol=1e-14)
    assert gaussian_kernel(1, 1.0).tolist() == [[1.0]]


@pytest.mark.parametrize("padding", ["periodic", "reflect"])
@pytest.mark.parametrize("n", [2, 3, 8, 16])
@pytest.mark.parametrize("pads", [(0, 0), (1, 1), (11, 11), (2, 30)])
def test_padded_indices_match_numpy_pad(padding, n, pads):
    expected = np.pad(np.arange(n), pads, mode=NP_MODE[padding])
    np.testing.assert_array_equal(padded_indices(n, *pads, padding), expected)


@pytest.mark.parametrize("padding", ["periodic", "reflect"])
@pytest.mark.parametrize("factor,shape", [(1, (6, 10)), (2, (8, 8)), (4, (16, 12)), (8, (16, 32)),
                                          (16, (16, 16))])
@pytest.mark.parametrize("size,sigma", [(23, 1.0), (5, 2.5), (23, 4.0)])
def test_matches_brute_force(padding, factor, shape, size, sigma):
    x = np.random.default_rng(factor).normal(size=(2, *shape, 3))
    out = gaussian_downsample(x, factor, size, sigma, padding)
    assert out.dtype == np.float32 and out.shape == (2, shape[0] // factor, shape[1] // factor, 3)
    np.testing.assert_allclose(out, brute_force(x, factor, size, sigma, padding), atol=2e-7)


@pytest.mark.parametrize("padding", ["periodic", "reflect"])
def test_lr_pixel_k_samples_hr_pixel_k_times_f(padding):
    factor, size = 4, 23
    x = np.zeros((1, 32, 32, 1))
    x[0, 12, 20, 0] = 1.0  # HR pixel (3·4, 5·4)
    out = gaussian_downsample(x, factor, size, 1.0, padding)
    k = gaussian_kernel(size, 1.0)
    assert np.unravel_index(np.argmax(out[0, ..., 0]), (8, 8)) == (3, 5)
    assert out[0, 3, 5, 0] == pytest.approx(k[11, 11], rel=1e-6)
    assert out[0, 3, 4, 0] == pytest.approx(k[11, 11 - 4], rel=1e-6)
    # one HR pixel further: the LR samples see it off-centre, symmetrically for a and a+1
    x2 = np.zeros((1, 32, 32, 1))
    x2[0, 14, 20, 0] = 1.0
    out2 = gaussian_downsample(x2, factor, size, 1.0, padding)
    assert out2[0, 3, 5, 0] == pytest.approx(out2[0, 4, 5, 0], rel=1e-6)


@pytest.mark.parametrize("padding", ["periodic", "reflect"])
def test_constant_map_is_preserved(padding):
    x = np.full((1, 16, 16, 3), 0.7)
    np.testing.assert_allclose(gaussian_downsample(x, 4, padding=padding), 0.7, rtol=1e-6)


def test_periodic_translation_equivariance():
    x = np.random.default_rng(1).normal(size=(2, 32, 32, 3))
    out = gaussian_downsample(x, 8, sigma=3.0)
    rolled = gaussian_downsample(np.roll(x, (8, -16), axis=(1, 2)), 8, sigma=3.0)
    np.testing.assert_allclose(rolled, np.roll(out, (1, -2), axis=(1, 2)), atol=1e-6)


def test_operator_rows_sum_to_one_and_kernel_folds_on_small_lattice():
    for padding in ("periodic", "reflect"):
        d = downsample_matrix(8, 2, 23, 3.0, padding)
        assert d.shape == (4, 8)
        np.testing.assert_allclose(d.sum(axis=1), 1.0, rtol=1e-12)
    # periodic, kernel (23) longer than the lattice (8): the Gaussian wraps several times
    g = gaussian_kernel_1d(23, 3.0)
    folded = np.zeros(8)
    np.add.at(folded, (np.arange(23) - 11) % 8, g)
    np.testing.assert_allclose(downsample_matrix(8, 1, 23, 3.0)[0], folded, rtol=1e-12)


def test_chunking_and_input_dtypes_do_not_change_result():
    x = np.random.default_rng(2).normal(size=(7, 16, 16, 1))
    ref = gaussian_downsample(x, 4)
    np.testing.assert_array_equal(gaussian_downsample(x, 4, chunk=3), ref)
    np.testing.assert_allclose(gaussian_downsample(x.astype(np.float32), 4), ref, atol=1e-6)
    ints = np.arange(2 * 8 * 8).reshape(2, 8, 8, 1)
    np.testing.assert_allclose(gaussian_downsample(ints, 2), gaussian_downsample(ints * 1.0, 2))


@pytest.mark.parametrize("kwargs,word", [
    ({"factor": 0}, "factor"),
    ({"factor": -2}, "factor"),
    ({"factor": 2.0}, "factor"),
    ({"factor": True}, "factor"),
    ({"factor": 3}, "divisible"),
    ({"factor": 2, "kernel_size": 4}, "kernel_size"),
    ({"factor": 2, "kernel_size": 0}, "kernel_size"),
    ({"factor": 2, "sigma": 0.0}, "sigma"),
    ({"factor": 2, "sigma": -1.0}, "sigma"),
    ({"factor": 2, "sigma": float("nan")}, "sigma"),
    ({"factor": 2, "padding": "zeros"}, "padding"),
])
def test_bad_arguments_raise_user_error(kwargs, word):
    x = np.zeros((1, 8, 8, 3))
    with pytest.raises(UserError, match=word):
        gaussian_downsample(x, **kwargs)


def test_bad_input_arrays_raise_user_error():
    with pytest.raises(UserError, match=r"shape \(N, H, W, C\)"):
        gaussian_downsample(np.zeros((8, 8, 3)), 2)
    with pytest.raises(UserError, match="height 8 and width 12"):
        gaussian_downsample(np.zeros((1, 8, 12, 3)), 8)
    for bad in (np.nan, np.inf):
        x = np.zeros((1, 8, 8, 3))
        x[0, 1, 2, 0] = bad
        with pytest.raises(UserError, match="NaN or Inf"):
            gaussian_downsample(x, 2)
