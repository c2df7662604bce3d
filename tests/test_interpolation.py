import functools

import numpy as np
import pytest
from scipy import ndimage

from spinsr_tf.data.interpolation import upsample, upsample_matrix
from spinsr_tf.evaluation.baselines import BASELINES
from spinsr_tf.base.errors import UserError
from conftest import random_unit_spins

METHODS = ("gaussian", "bilinear", "bicubic")
CONVENTIONS = ("aligned", "resize")
PADDINGS = ("periodic", "reflect")


def _lr_coords(n_hr, factor, convention):
    x = np.arange(n_hr, dtype=np.float64)
    return x / factor if convention == "aligned" else (x + 0.5) / factor - 0.5


def _smooth_field(L):
    """A periodic 3-component field on an L×L grid, low frequency (periods L and L/2)."""
    y, x = np.meshgrid(np.arange(L), np.arange(L), indexing="ij")
    k = 2 * np.pi / L
    return np.stack([np.cos(k * x), np.sin(k * y), np.cos(k * (x + 2 * y))], -1)[None]


@pytest.mark.parametrize("padding, mode", [("periodic", "grid-wrap"), ("reflect", "mirror")])
@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize("method, order", [("bilinear", 1), ("bicubic", 3)])
def test_splines_match_map_coordinates(method, order, convention, padding, mode):
    f = 4
    lr = np.random.default_rng(1).normal(size=(2, 5, 7, 2))
    out = upsample(lr, f, method, convention, padding=padding)
    assert out.shape == (2, 20, 28, 2) and out.dtype == np.float32
    uy, ux = np.meshgrid(_lr_coords(20, f, convention), _lr_coords(28, f, convention),
                         indexing="ij")
    for n in range(2):
        for c in range(2):
            ref = ndimage.map_coordinates(lr[n, :, :, c], [uy, ux], order=order, mode=mode)
            np.testing.assert_allclose(out[n, :, :, c], ref, atol=1e-6)


def _spline_reference(lr, f, order, convention, mode="grid-wrap"):
    """``lr`` interpolated by SciPy's spline of ``order`` at the HR sites of ``convention``."""
    n, h, w, c = lr.shape
    uy, ux = np.meshgrid(_lr_coords(h * f, f, convention), _lr_coords(w * f, f, convention),
                         indexing="ij")
    return np.stack([np.stack([ndimage.map_coordinates(lr[i, :, :, k], [uy, ux], order=order,
                                                       mode=mode) for k in range(c)], -1)
                     for i in range(n)])


def _gaussian_reference(lr, f, convention, padding="periodic", sigma=None):
    """Normalized Gaussian weights of the LR samples, summed site by site (brute force)."""
    sigma = f / 2 if sigma is None else sigma
    n, h, w, c = lr.shape
    pad = 4
    mode = "wrap" if padding == "periodic" else "reflect"
    ky, kx = np.meshgrid(np.arange(-pad, h + pad), np.arange(-pad, w + pad), indexing="ij")
    if convention == "aligned":
        py, px = ky * f, kx * f
    else:
        py, px = (ky + 0.5) * f - 0.5, (kx + 0.5) * f - 0.5
    ref = np.empty((n, h * f, w * f, c))
    for i in range(n):
        ext = np.pad(lr[i], ((pad, pad), (pad, pad), (0, 0)), mode=mode)
        for Y in range(h * f):
            for X in range(w * f):
                wgt = np.exp(-((Y - py) ** 2 + (X - px) ** 2) / (2 * sigma**2))
                ref[i, Y, X] = (wgt[..., None] * ext).sum((0, 1)) / wgt.sum()
    return ref


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize("sigma_up", [None, 1.3])
def test_gaussian_matches_brute_force(convention, padding, sigma_up):
    f, h, w = 2, 6, 5
    lr = np.random.default_rng(2).normal(size=(1, h, w, 2))
    out = upsample(lr, f, "gaussian", convention, padding=padding, sigma_up=sigma_up)
    np.testing.assert_allclose(out, _gaussian_reference(lr, f, convention, padding, sigma_up),
                               atol=1e-5)


@pytest.mark.parametrize("f", [4, 8])
def test_aligned_bicubic_does_not_shift_a_smooth_field(f):
    truth = _smooth_field(128)
    lr = truth[:, ::f, ::f]
    err_aligned = np.abs(upsample(lr, f, "bicubic", "aligned") - truth).max()
    err_resize = np.abs(upsample(lr, f, "bicubic", "resize") - truth).max()
    assert err_aligned < 1e-2
    assert err_resize > 0.1
    assert err_resize > 20 * err_aligned


@pytest.mark.parametrize("method", ["gaussian", "bilinear"])
@pytest.mark.parametrize("f", [4, 8])
def test_resize_convention_is_worse_for_every_method(method, f):
    truth = _smooth_field(128)
    lr = truth[:, ::f, ::f]
    err_aligned = np.abs(upsample(lr, f, method, "aligned") - truth).max()
    err_resize = np.abs(upsample(lr, f, method, "resize") - truth).max()
    assert err_resize > 4 * err_aligned


@pytest.mark.parametrize("method", METHODS)
def test_aligned_keeps_mirror_symmetry_about_a_sample(method):
    L, f = 64, 4
    x = np.arange(L)
    truth = np.exp(np.cos(2 * np.pi * x / L))[None, None, :, None] * np.ones((1, L, 1, 1))
    sym = lambda a: a[:, :, (-np.arange(L)) % L]  # noqa: E731  x -> -x (mod L)
    out = upsample(truth[:, ::f, ::f], f, method, "aligned")
    np.testing.assert_allclose(out, sym(out), atol=1e-6)
    shifted = upsample(truth[:, ::f, ::f], f, method, "resize")
    assert np.abs(shifted - sym(shifted)).max() > 1e-2


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("method", ["bilinear", "bicubic"])
def test_aligned_splines_reproduce_the_samples(method, padding):
    lr = np.random.default_rng(3).normal(size=(2, 6, 5, 3)).astype(np.float32)
    for f in (2, 4, 8):
        out = upsample(lr, f, method, "aligned", padding=padding)
        np.testing.assert_allclose(out[:, ::f, ::f], lr, atol=1e-6)


@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize("method", METHODS)
def test_periodic_roll_commutes(method, convention):
    f = 4
    lr = np.random.default_rng(4).normal(size=(2, 6, 8, 3))
    out = upsample(lr, f, method, convention)
    for axis in (1, 2):
        rolled = upsample(np.roll(lr, 1, axis=axis), f, method, convention)
        np.testing.assert_allclose(rolled, np.roll(out, f, axis=axis), atol=1e-6)


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize("method", METHODS)
def test_constant_field_stays_constant(method, convention, padding):
    value = np.array([0.3, -0.8, 0.52], np.float32)
    lr = np.broadcast_to(value, (2, 5, 6, 3))
    out = upsample(lr, 8, method, convention, padding=padding)
    np.testing.assert_allclose(out, np.broadcast_to(value, (2, 40, 48, 3)), atol=1e-6)


@pytest.mark.parametrize("name", [n for n in BASELINES if n.endswith("_norm")])
def test_normalize_gives_unit_vectors(name):
    lr = random_unit_spins((2, 8, 8, 3), seed=5)
    out = BASELINES[name](lr, 4)
    np.testing.assert_allclose(np.linalg.norm(out, axis=-1), 1.0, atol=1e-5)
    plain = BASELINES[name[: -len("_norm")]](lr, 4)
    assert np.linalg.norm(plain, axis=-1).min() < 0.99


def test_normalize_is_zero_safe_and_clips_scalars():
    zero = upsample(np.zeros((1, 4, 4, 3)), 4, normalize=True)
    assert np.isfinite(zero).all() and not zero.any()
    s = np.random.default_rng(6).choice([-1.0, 1.0], size=(1, 6, 6, 1))
    raw = upsample(s, 4, "bicubic")
    out = upsample(s, 4, "bicubic", normalize=True)
    assert raw.max() > 1.0 and raw.min() < -1.0
    np.testing.assert_array_equal(out, np.clip(raw, -1.0, 1.0))


def test_baselines_table():
    """Each name means what it says, checked against SciPy splines and a brute-force Gaussian
    (the name is parsed here; the table's own keywords are not used)."""
    assert list(BASELINES) == [
        "gaussian", "bilinear", "bicubic",
        "gaussian_resize", "bilinear_resize", "bicubic_resize",
        "gaussian_norm", "bilinear_norm", "bicubic_norm",
        "gaussian_resize_norm", "bilinear_resize_norm", "bicubic_resize_norm",
    ]
    lr = random_unit_spins((1, 4, 6, 3), seed=7).astype(np.float64)
    for name, fn in BASELINES.items():
        method = name.split("_")[0]
        convention = "resize" if "_resize" in name else "aligned"
        if method == "gaussian":
            ref = _gaussian_reference(lr, 4, convention)
        else:
            ref = _spline_reference(lr, 4, {"bilinear": 1, "bicubic": 3}[method], convention)
        if name.endswith("_norm"):
            ref = ref / np.linalg.norm(ref, axis=-1, keepdims=True)
        np.testing.assert_allclose(fn(lr, 4), ref, atol=2e-5, err_msg=name)
    with pytest.raises(TypeError):
        BASELINES["x"] = functools.partial(upsample)


def test_upsample_matrix_rows_sum_to_one():
    for method in METHODS:
        for convention in CONVENTIONS:
            for padding in PADDINGS:
                m = upsample_matrix(5, 4, method, convention, padding)
                assert m.shape == (20, 5)
                np.testing.assert_allclose(m.sum(axis=1), 1.0, atol=1e-12)
                assert not m.flags.writeable


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"lr": np.zeros((4, 4, 3))}, r"lr must have shape .*\(4, 4, 3\)"),
        ({"lr": np.zeros((1, 0, 4, 3))}, "lr must have shape"),
        ({"lr": np.full((1, 4, 4, 3), np.nan)}, "lr contains 48 NaN"),
        ({"factor": 0}, "factor must be an integer >= 1, got 0"),
        ({"factor": 2.5}, "factor must be an integer >= 1, got 2.5"),
        ({"factor": True}, "factor"),
        ({"method": "nearest"}, "method must be one of .*'nearest'"),
        ({"convention": "centre"}, "convention must be one of .*'centre'"),
        ({"padding": "zero"}, "padding must be one of .*'zero'"),
        ({"normalize": "yes"}, "normalize must be True or False"),
        ({"method": "gaussian", "sigma_up": 0.0}, r"sigma_up must be a finite number > 0 \(HR pixels\)"),
        ({"method": "gaussian", "sigma_up": np.inf}, "sigma_up"),
    ],
)
def test_bad_inputs(kwargs, match):
    args = {"lr": np.zeros((1, 4, 4, 3)), "factor": 4, **kwargs}
    with pytest.raises(UserError, match=match):
        upsample(**args)
