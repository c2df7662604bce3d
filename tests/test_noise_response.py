"""Noise injection and the recursive feed (paper, Figs. 5–6)."""

import json

import numpy as np
import pytest
from scipy import integrate

from spinsr_tf.data.interpolation import unit_normalize, upsample
from spinsr_tf.data.degradation import gaussian_downsample
from spinsr_tf.base.errors import UserError
from spinsr_tf.evaluation.metrics import corr, mse
from spinsr_tf.experiments.noise_response import (add_noise, default_alphas, noise_figures, noise_sweep,
                             random_unit_vectors, recursive_feed, run_noise_experiment)


def _textures(n=3, size=32, seed=0):
    """Smooth periodic unit-vector maps: a few random long-wavelength Fourier modes, normalized."""
    rng = np.random.default_rng(seed)
    y, x = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    out = np.zeros((n, size, size, 3))
    for i in range(n):
        for _ in range(4):
            kx, ky = rng.integers(-2, 3, size=2)
            phase = 2 * np.pi * (kx * x + ky * y) / size + rng.uniform(0, 2 * np.pi)
            out[i] += rng.standard_normal(3) * np.cos(phase)[..., None]
        out[i, ..., 2] += 0.3
    return unit_normalize(out).astype(np.float32)


def _expected_corr(alpha):
    """E[S·S'] for S' = L2(S + αN), N uniform on the sphere: u = cos θ uniform in [-1, 1]."""
    f = lambda u: (1 + alpha * u) / np.sqrt(1 + alpha ** 2 + 2 * alpha * u)  # noqa: E731
    return 0.5 * integrate.quad(f, -1, 1, points=[-1 / alpha] if alpha > 1 else None)[0]


@pytest.fixture(scope="module")
def untrained():
    from spinsr_tf.nn.network import build_sr_model

    return build_sr_model(4, residual=True, output="unit")


@pytest.fixture(scope="module")
def random_net():
    """A net whose SR map differs from bicubic: the paper's linear head, random weights."""
    import keras

    from spinsr_tf.nn.network import build_sr_model

    keras.utils.set_random_seed(3)
    return build_sr_model(4)


def test_random_unit_vectors_are_unit_and_isotropic():
    n = random_unit_vectors((4, 32, 32, 3), seed=1).reshape(-1, 3).astype(np.float64)
    np.testing.assert_allclose(np.linalg.norm(n, axis=1), 1, atol=1e-6)
    # uniform on the sphere: mean 0, second moment I/3, each component uniform in [-1, 1]
    np.testing.assert_allclose(n.mean(axis=0), 0, atol=0.02)
    np.testing.assert_allclose(n.T @ n / len(n), np.eye(3) / 3, atol=0.01)
    assert abs(np.mean(n[:, 2] ** 2) - 1 / 3) < 0.01 and abs(np.mean(np.abs(n[:, 2])) - 0.5) < 0.01


def test_add_noise_unit_norm_identity_and_seeds():
    s = _textures()
    for alpha in (0.0, 0.3, 5.0):
        out = add_noise(s, alpha, seed=2)
        assert out.dtype == np.float32 and out.shape == s.shape
        np.testing.assert_allclose(np.linalg.norm(out, axis=-1), 1, atol=1e-5)
    np.testing.assert_allclose(add_noise(s, 0.0, seed=9), s, atol=1e-6)
    shorter = 0.5 * s
    np.testing.assert_allclose(add_noise(shorter, 0.0), s, atol=1e-6)   # α=0: just L2
    np.testing.assert_array_equal(add_noise(s, 1.0, seed=4), add_noise(s, 1.0, seed=4))
    assert not np.array_equal(add_noise(s, 1.0, seed=4), add_noise(s, 1.0, seed=5))
    # the same seed draws the same N for every α: S' ∝ S + αN with one N
    a, b = add_noise(s, 1e6, seed=4), add_noise(s, 2e6, seed=4)
    np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(a, random_unit_vectors(s.shape, 4), atol=1e-5)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 3.0, 20.0])
def test_add_noise_corr_with_input_matches_the_sphere_average(alpha):
    s = _textures(n=4, size=64, seed=1)
    c = corr(add_noise(s, alpha, seed=0), s).mean()
    assert c == pytest.approx(_expected_corr(alpha), abs=0.01)
    if alpha == 1.0:
        assert c == pytest.approx(2 / 3, abs=0.01)


def test_add_noise_large_alpha_forgets_the_input_and_noise_is_orthogonal_on_average():
    s = _textures(n=4, size=64)
    n = random_unit_vectors(s.shape, 7)
    assert abs(corr(n, s).mean()) < 0.01                                   # E[S·N] = 0
    assert abs(corr(add_noise(s, 1e4, seed=7), s).mean()) < 0.01


def test_add_noise_scalar_maps_clip_and_bad_input():
    s = np.linspace(-1, 1, 2 * 8 * 8).reshape(2, 8, 8, 1).astype(np.float32)
    out = add_noise(s, 0.5, seed=0)
    assert out.min() >= -1 and out.max() <= 1 and not np.allclose(out, s)
    np.testing.assert_array_equal(add_noise(s, 0.0), s)
    for bad in (-1.0, float("nan"), "1", True):
        with pytest.raises(UserError, match="alpha"):
            add_noise(s, bad)
    with pytest.raises(UserError, match="spins"):
        add_noise(s[0], 1.0)


def test_default_alphas():
    a = default_alphas("I", 5)
    assert a[0] == 0 and a[-1] == pytest.approx(200) and np.all(np.diff(a) > 0)
    assert default_alphas("II", 3)[-1] == pytest.approx(50)
    with pytest.raises(UserError, match="kind"):
        default_alphas("III")


def test_recursive_feed_equals_a_python_loop_of_predict(random_net):
    hr = _textures(n=5, size=32, seed=2)
    lr = add_noise(gaussian_downsample(hr, 4), 0.5, seed=1)
    run = recursive_feed(random_net, lr, iterations=4, hr=hr, batch_size=2, snapshots=(1, 4))
    x, corrs, mses = lr, [], []
    for _ in range(4):
        out = random_net.predict(x, verbose=0)
        x, sr = out["lr"], out["sr"]
        corrs.append(corr(sr, hr)), mses.append(mse(sr, hr))
    np.testing.assert_allclose(run["sr"], sr, atol=1e-5)
    np.testing.assert_allclose(run["lr"], x, atol=1e-5)
    np.testing.assert_allclose(run["corr_per_image"], np.stack(corrs, 1), atol=1e-5)
    np.testing.assert_allclose(run["mse"], np.stack(mses, 1).mean(0), rtol=1e-4, atol=1e-6)
    assert run["corr"].shape == (4,) and run["corr_per_image"].shape == (5, 4)
    np.testing.assert_allclose(run["snapshots"][4], sr[0], atol=1e-5)
    assert not np.allclose(run["corr"][0], run["corr"][-1])   # the net really changes the map


def test_recursive_feed_of_the_untrained_residual_net_is_bicubic_norm_then_degrade(untrained):
    """Untrained residual unit net = unit(aligned bicubic): the recursion has a NumPy twin, and on
    smooth textures Corr stays defined and drifts by about 1 % per pass."""
    hr = _textures(n=3, size=32, seed=3)
    lr = gaussian_downsample(hr, 4)
    run = recursive_feed(untrained, lr, iterations=6, hr=hr)
    x, ref = lr, []
    for _ in range(6):
        sr = upsample(x, 4, "bicubic", normalize=True)
        ref.append(corr(sr, hr).mean())
        x = gaussian_downsample(sr, 4)
    np.testing.assert_allclose(run["corr"], ref, atol=1e-4)
    assert np.isfinite(run["corr"]).all()
    assert run["corr"][0] > 0.98 and np.abs(np.diff(run["corr"])).max() < 0.015


def test_recursive_feed_bad_arguments(untrained):
    lr = np.zeros((2, 8, 8, 3), np.float32)
    with pytest.raises(UserError, match="iterations"):
        recursive_feed(untrained, lr, iterations=0)
    with pytest.raises(UserError, match="channels"):
        recursive_feed(untrained, np.zeros((2, 8, 8, 1), np.float32))
    with pytest.raises(UserError, match="hr"):
        recursive_feed(untrained, lr, iterations=1, hr=np.zeros((3, 32, 32, 3)))
    with pytest.raises(UserError, match="snapshots"):
        recursive_feed(untrained, lr, iterations=2, snapshots=(3,))


def test_noise_sweep_structure_peak_and_shared_noise(untrained, random_net, tmp_path):
    hr = _textures(n=2, size=32, seed=4)
    res = noise_sweep(untrained, hr, alphas=[0.0, 1.0, 100.0], iterations=3, seed=5)
    assert res["alphas"] == [0.0, 1.0, 100.0] and res["n_images"] == 2
    assert np.shape(res["corr"]) == (3, 3) and np.shape(res["corr_per_image"]) == (3, 2, 3)
    for i in range(3):
        assert res["peak_corr"][i] == pytest.approx(max(res["corr"][i]))
        assert res["corr"][i][res["peak_iteration"][i] - 1] == res["peak_corr"][i]
    assert res["peak_corr"][0] > res["peak_corr"][1] > res["peak_corr"][2]
    assert res["input_corr"]["bicubic_norm"][0] > res["input_corr"]["bicubic_norm"][2]
    # iteration 1 of the untrained residual net IS bicubic_norm of the noisy input
    np.testing.assert_allclose([c[0] for c in res["corr"]], res["input_corr"]["bicubic_norm"],
                               atol=1e-4)
    lr_noisy = add_noise(gaussian_downsample(hr, 4), 1.0, seed=5)
    one = recursive_feed(untrained, lr_noisy, iterations=3, hr=hr)
    np.testing.assert_allclose(res["corr"][1], one["corr"], atol=1e-6)
    hr_res = noise_sweep(untrained, hr, alphas=[1.0], iterations=1, seed=5, noise_on="hr")
    assert hr_res["corr"][0][0] > res["corr"][1][0]     # the blur averages HR noise away
    path = noise_figures(res, tmp_path / "fig.png", title="test")
    assert path.stat().st_size > 5000
    with pytest.raises(UserError, match="noise_on"):
        noise_sweep(untrained, hr, alphas=[0.0], iterations=1, noise_on="both")
    with pytest.raises(UserError, match="alpha"):
        noise_sweep(untrained, hr, alphas=[-1.0], iterations=1)


def test_run_noise_experiment_on_a_hand_made_reproduction(untrained, tmp_path):
    import h5py

    hr = _textures(n=2, size=32, seed=6)
    run_dir = tmp_path / "type_II" / "x4" / "run_sr_residual_unit"
    run_dir.mkdir(parents=True)
    untrained.save(run_dir / "model.keras")
    with h5py.File(tmp_path / "type_II" / "test.h5", "w") as f:
        f["spins"] = hr
    res = run_noise_experiment(tmp_path, preset="smoke", kind="II", alphas=[0.0, 2.0],
                               iterations=2, network="sr_residual_unit")
    saved = json.loads((tmp_path / "noise_type_II_sr_residual_unit.json").read_text())
    assert saved["kind"] == "II" and saved["scale"] == 4 and saved["alphas"] == [0.0, 2.0]
    np.testing.assert_allclose(saved["corr"], res["corr"])
    assert "snapshots" not in saved
    assert (tmp_path / "fig6_noise_type_II_sr_residual_unit.png").stat().st_size > 5000
    with pytest.raises(UserError, match="network"):
        run_noise_experiment(tmp_path, kind="II", network="nope")
    with pytest.raises(UserError, match="scale"):
        run_noise_experiment(tmp_path, kind="I", scale=16)


def test_recursive_feed_compiles_once_and_never_retraces_per_iteration():
    import keras

    from spinsr_tf.nn.network import build_sr_model

    if keras.backend.backend() != "tensorflow":
        pytest.skip("tracing counts are a tf.function notion")
    random_net = build_sr_model(4)
    hr = _textures(n=5, size=32, seed=7)
    lr = gaussian_downsample(hr, 4)
    recursive_feed(random_net, lr, iterations=2, batch_size=2)       # chunks of 2, 2, 1
    traced = random_net.predict_function.experimental_get_tracing_count()
    recursive_feed(random_net, lr, iterations=8, batch_size=2)
    assert random_net.predict_function.experimental_get_tracing_count() == traced <= 2
