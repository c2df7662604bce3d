"""NumPy Gaussian downsizing: brute-force sliding window, sampling offset, boundaries, errors."""

import dataclasses
import json

import numpy as np
import pytest

from spinsr_tf.data.degradation import (
    FIELDS,
    Degradation,
    as_degradation,
    check_degradation_args,
    downsample_matrix,
    gaussian_downsample,
    gaussian_kernel,
    gaussian_kernel_1d,
    kernel_size_for,
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


# -- the Degradation value object -------------------------------------------------------------

SETTINGS = [Degradation(4), Degradation(2, 2.5, 11, "integrate", "reflect"),
            Degradation(8, 5.0, pixel="integrate"), Degradation(1, 0.7, 3)]


def test_defaults_are_the_papers_and_the_window_follows_sigma():
    d = Degradation(4)
    assert (d.factor, d.sigma, d.kernel_size, d.pixel, d.padding) == (4, 1.0, 23, "sample",
                                                                       "periodic")
    assert Degradation(4, sigma=5.0).kernel_size == 41 == kernel_size_for(5.0)
    assert Degradation(4, sigma=5.0, kernel_size=7).kernel_size == 7
    f = Degradation(np.int64(4), np.float32(1.0))
    assert type(f.factor) is int and type(f.sigma) is float and f == d and hash(f) == hash(d)
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.factor = 2
    assert d.replace(pixel="integrate") == Degradation(4, pixel="integrate")


@pytest.mark.parametrize("kwargs,word", [
    ({"factor": 0}, "factor"), ({"factor": 2.0}, "factor"), ({"factor": True}, "factor"),
    ({"factor": 2, "kernel_size": 4}, "kernel_size"), ({"factor": 2, "sigma": 0.0}, "sigma"),
    ({"factor": 2, "sigma": float("inf")}, "sigma"),
    ({"factor": 2, "padding": "zeros"}, "padding"),
    ({"factor": 2, "pixel": "box"}, "pixel"),
])
def test_invalid_settings_are_one_user_error(kwargs, word):
    with pytest.raises(UserError, match=word):
        Degradation(**kwargs)
    with pytest.raises(UserError, match=word):
        check_degradation_args(**kwargs)


@pytest.mark.parametrize("deg", SETTINGS, ids=str)
def test_apply_is_the_separable_operator_of_its_matrices(deg):
    x = np.random.default_rng(0).normal(size=(3, 16, 24, 2))
    dh, dw = deg.matrices(16, 24)
    np.testing.assert_array_equal(dh, downsample_matrix(16, deg.factor, deg.kernel_size,
                                                        deg.sigma, deg.padding, deg.pixel))
    expected = np.einsum("ah,nhwc,bw->nabc", dh, x, dw)
    np.testing.assert_allclose(deg.apply(x, dtype=np.float64), expected, rtol=1e-12, atol=1e-14)
    out = deg.apply(x)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, gaussian_downsample(x, deg.factor, deg.kernel_size,
                                                           deg.sigma, deg.padding,
                                                           pixel=deg.pixel))
    np.testing.assert_array_equal(deg(x), out)


@pytest.mark.parametrize("deg", SETTINGS, ids=str)
def test_adjoint_is_the_transpose(deg):
    """``<D x, r> = <x, Dᵀ r>`` for random maps: what the refinement's gradient relies on."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 16, 24, 3))
    r = rng.normal(size=(2, 16 // deg.factor, 24 // deg.factor, 3))
    back = deg.adjoint(r)
    assert back.shape == x.shape and back.dtype == np.float64
    assert np.vdot(deg.apply(x, dtype=np.float64), r) == pytest.approx(np.vdot(x, back),
                                                                      rel=1e-12)


@pytest.mark.parametrize("deg", SETTINGS, ids=str)
def test_upsample_places_samples_for_its_own_geometry(deg):
    from spinsr_tf.data.interpolation import upsample

    lr = np.random.default_rng(2).normal(size=(2, 5, 6, 3))
    for method in ("bicubic", "bilinear"):
        np.testing.assert_array_equal(
            deg.upsample(lr, method, normalize=True),
            upsample(lr, deg.factor, method, normalize=True, padding=deg.padding,
                     pixel=deg.pixel))


@pytest.mark.parametrize("deg", SETTINGS, ids=str)
def test_json_round_trip(deg):
    record = json.loads(json.dumps(deg.to_dict()))
    assert set(record) == set(FIELDS)
    assert Degradation.from_dict(record) == deg


def test_from_dict_refuses_unknown_and_missing_settings():
    with pytest.raises(UserError, match="unknown degradation setting.*kernel"):
        Degradation.from_dict({"factor": 4, "kernel": 23})
    with pytest.raises(UserError, match="factor"):
        Degradation.from_dict({"sigma": 1.0})
    with pytest.raises(UserError, match="mapping"):
        Degradation.from_dict([4])


@pytest.mark.parametrize("deg", SETTINGS, ids=str)
def test_hdf5_attribute_round_trip(deg, tmp_path):
    import h5py

    with h5py.File(tmp_path / "lr.h5", "w") as f:
        f.attrs.update(deg.to_attrs())
        f.attrs["hamiltonian.type"] = "I"  # other attributes are left alone
    with h5py.File(tmp_path / "lr.h5", "r") as f:
        assert Degradation.from_attrs(f.attrs) == deg
        assert Degradation.from_attrs(f.attrs, factor=deg.factor) == deg
        with pytest.raises(UserError, match="factor"):
            Degradation.from_attrs(f.attrs, factor=deg.factor * 2)


def test_reads_the_files_downsample_writes_and_older_files(tmp_path):
    import h5py

    from spinsr_tf.data.lr_file import downsample_file

    hr = np.random.default_rng(3).normal(size=(2, 16, 16, 3)).astype(np.float32)
    with h5py.File(tmp_path / "hr.h5", "w") as f:
        f["spins"] = hr
    out, _ = downsample_file(tmp_path / "hr.h5", tmp_path / "lr.h5",
                             Degradation(4, 1.5, 9, "integrate", "reflect"))
    with h5py.File(out, "r") as f:
        deg = Degradation.from_attrs(f.attrs)
        assert deg == Degradation(4, 1.5, 9, "integrate", "reflect")
        np.testing.assert_array_equal(f["lr"][...], deg.apply(hr))
    # a file from before pixel models (and windows) were recorded: the then-only settings
    old = {"factor": np.int64(8), "sigma": np.float64(3.0), "padding": b"periodic"}
    assert Degradation.from_attrs(old) == Degradation(8, 3.0, 23, "sample", "periodic")
    assert Degradation.from_attrs({}, factor=2) == Degradation(2, kernel_size=23)
    with pytest.raises(UserError, match="factor"):
        Degradation.from_attrs({"sigma": 1.0})
    with pytest.raises(UserError, match="sigma"):
        Degradation.from_attrs({"factor": 2, "sigma": -1.0})


def test_as_degradation():
    deg = Degradation(4, pixel="integrate")
    assert as_degradation(deg) is deg
    assert as_degradation(8) == Degradation(8)
    for bad in (8.0, "8", None, True):
        with pytest.raises(UserError, match="degradation"):
            as_degradation(bad)


def test_from_attrs_refuses_a_non_integer_factor_or_window():
    with pytest.raises(UserError, match="factor"):
        Degradation.from_attrs({"factor": 4.5})
    with pytest.raises(UserError, match="kernel_size"):
        Degradation.from_attrs({"factor": 4, "kernel_size": b"23"})
    assert Degradation.from_attrs({"factor": 4.0, "kernel_size": np.float64(9.0)}) == \
        Degradation(4, kernel_size=9)
