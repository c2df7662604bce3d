"""The camera pixel model: LR pixels that integrate the blurred map over their f×f block.

Checked against a literal block average of the stride-1 blur, in NumPy and in the network's
fixed layers, and for the placement of the aligned baselines (a camera pixel is centred on its
block, not on its first HR pixel).
"""

import keras
import numpy as np
import pytest

from spinsr_tf.base.errors import UserError
from spinsr_tf.data.degradation import (Degradation, degradation_taps, gaussian_downsample,
                                        kernel_size_for)
from spinsr_tf.data.interpolation import upsample
from spinsr_tf.nn.layers import AlignedUpsample, GaussianDownsample
from spinsr_tf.nn.network import build_sr_model


def block_mean_of_blur(x, factor, size, sigma, padding):
    """The camera model by its definition: blur at every HR pixel, then average each block."""
    full = gaussian_downsample(x, 1, size, sigma, padding).astype(np.float64)
    n, h, w, c = full.shape
    return full.reshape(n, h // factor, factor, w // factor, factor, c).mean(axis=(2, 4))


@pytest.mark.parametrize("padding", ["periodic", "reflect"])
@pytest.mark.parametrize("factor", [2, 4, 8])
def test_integrate_is_the_block_mean_of_the_blurred_map(padding, factor):
    x = np.random.default_rng(factor).normal(size=(2, 32, 40, 3))
    out = gaussian_downsample(x, factor, 23, 1.7, padding, pixel="integrate")
    np.testing.assert_allclose(out, block_mean_of_blur(x, factor, 23, 1.7, padding), atol=1e-6)
    # ... and differs from the point sample by far more than that
    point = gaussian_downsample(x, factor, 23, 1.7, padding)
    assert np.abs(out - point).max() > 0.05


@pytest.mark.parametrize("padding", ["periodic", "reflect"])
@pytest.mark.parametrize("factor", [2, 4, 8])
def test_layer_equals_numpy_operator(padding, factor):
    x = np.random.default_rng(1).normal(size=(2, 32, 48, 3)).astype(np.float32)
    layer = GaussianDownsample(factor, 23, 2.5, padding, pixel="integrate")
    np.testing.assert_allclose(np.asarray(layer(x)),
                               gaussian_downsample(x, factor, 23, 2.5, padding, pixel="integrate"),
                               atol=1e-6)


def test_taps_sum_to_one_and_widen_by_the_pixel():
    g = degradation_taps(4, 23, 1.0, "sample")
    box = degradation_taps(4, 23, 1.0, "integrate")
    assert g.size == 23 and box.size == 23 + 3
    assert g.sum() == pytest.approx(1.0) and box.sum() == pytest.approx(1.0)
    # the mean position of the integrating filter is the block centre, (f - 1)/2 past the sample
    u = np.arange(box.size) - 11
    assert (u * box).sum() == pytest.approx(1.5)


def test_kernel_size_for_keeps_four_sigma():
    assert kernel_size_for(1.0) == 23
    assert kernel_size_for(5.0) == 41
    assert kernel_size_for(5.0) % 2 == 1 and kernel_size_for(2.6, minimum=4) == 23


@pytest.mark.parametrize("factor", [4, 8])
def test_aligned_interpolation_is_centred_on_camera_pixels(factor):
    """A linear ramp survives blur + block integration and bilinear interpolation exactly only if
    the LR pixel is placed on its block centre (away from the mirrored border)."""
    h = 16 * factor
    ramp = np.broadcast_to(np.arange(h, dtype=np.float64)[:, None, None], (h, h, 1))[None]
    lr = gaussian_downsample(ramp, factor, 23, 1.0, "reflect", pixel="integrate")
    inner = slice(4 * factor, h - 4 * factor)
    good = upsample(lr, factor, "bilinear", padding="reflect", pixel="integrate")
    np.testing.assert_allclose(good[0, inner, inner], ramp[0, inner, inner], atol=1e-4)
    wrong = upsample(lr, factor, "bilinear", padding="reflect", pixel="sample")
    assert np.abs(wrong[0, inner, inner] - ramp[0, inner, inner]).max() == pytest.approx(
        (factor - 1) / 2, abs=1e-3)


@pytest.mark.parametrize("padding", ["periodic", "reflect"])
def test_aligned_upsample_layer_equals_numpy_for_camera_pixels(padding):
    lr = np.random.default_rng(2).normal(size=(2, 9, 12, 3)).astype(np.float32)
    layer = AlignedUpsample(4, "bicubic", padding, pixel="integrate")
    np.testing.assert_allclose(np.asarray(layer(lr)),
                               upsample(lr, 4, padding=padding, pixel="integrate"), atol=1e-5)


def test_network_with_camera_pixels_saves_and_loads(tmp_path):
    model = build_sr_model(Degradation(4, 3.0, kernel_size_for(3.0), "integrate", "reflect"), 3,
                           output="unit", residual=True)
    assert model.get_layer("lr").pixel == "integrate"
    assert model.get_layer("sr_skip").pixel == "integrate"
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert loaded.get_layer("lr").get_config() == model.get_layer("lr").get_config()
    x = np.random.default_rng(3).normal(size=(1, 8, 8, 3)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0)["sr"],
                                  model.predict(x, verbose=0)["sr"])
    # the untrained residual network is aligned bicubic + normalisation for camera pixels too
    ref = upsample(x, 4, padding="reflect", pixel="integrate", normalize=True)
    np.testing.assert_allclose(model.predict(x, verbose=0)["sr"], ref, atol=1e-5)


def test_unknown_pixel_model_is_refused():
    with pytest.raises(UserError, match="pixel"):
        gaussian_downsample(np.zeros((1, 8, 8, 1)), 2, pixel="box")
    with pytest.raises(UserError, match="pixel"):
        upsample(np.zeros((1, 4, 4, 1)), 2, pixel="box")
    with pytest.raises(UserError, match="pixel"):
        GaussianDownsample(2, pixel="box")


def test_training_takes_the_pixel_model_from_the_data(tmp_path):
    """An LR file made with camera pixels trains a network whose degradation and skip integrate
    too (a network that point-samples such data learns a shift of (f − 1)/2 HR pixels)."""
    import h5py
    import json

    from conftest import run_training, smooth_unit_spins
    from spinsr_tf.nn.network import load_sr_model

    hr = smooth_unit_spins(4, 32, seed=0)
    path = tmp_path / "lr.h5"
    with h5py.File(path, "w") as f:
        f["lr"] = gaussian_downsample(hr, 4, 23, 1.0, "periodic", pixel="integrate")
        f.attrs.update({"factor": 4, "kernel_size": 23, "sigma": 1.0, "padding": "periodic",
                        "pixel": "integrate"})
    run = tmp_path / "run"
    run_training(str(path), run, scale=4, epochs=1, batch_size=2, val_fraction=0.0,
                 output="unit", residual=True, jit_compile=False)
    model = load_sr_model(run / "model.keras")
    assert model.get_layer("lr").pixel == "integrate"
    assert model.get_layer("sr_skip").pixel == "integrate"
    assert json.loads((run / "config.json").read_text())["pixel"] == "integrate"
    with pytest.raises(UserError, match="pixel"):
        run_training(str(path), tmp_path / "other", scale=4, epochs=1, batch_size=2,
                     val_fraction=0.0, pixel="sample", jit_compile=False)


@pytest.mark.parametrize("deg", [Degradation(4), Degradation(8, 2.5, 17, "integrate", "reflect")],
                         ids=str)
def test_layer_is_built_from_a_degradation_and_gives_it_back(deg):
    layer = GaussianDownsample.from_degradation(deg, name="lr")
    assert layer.degradation == deg and layer.name == "lr"
    again = GaussianDownsample.from_config(layer.get_config())
    assert again.degradation == deg
    x = np.random.default_rng(4).normal(size=(2, 16, 24, 3)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(layer(x)), deg.apply(x), atol=1e-6)
    with pytest.raises(UserError, match="Degradation"):
        GaussianDownsample.from_degradation(4)


def test_upscale_refines_a_camera_pixel_model_with_camera_pixels(tmp_path, monkeypatch, capsys):
    """``upscale --refine physics --physics-weight auto`` hands the model's own degradation,
    camera pixels included, to the λ rule and to the refinement (both point-sampled before)."""
    from spinsr_tf.cli import main
    from spinsr_tf.inference import refine, weight_rule

    model = build_sr_model(Degradation(4, pixel="integrate"), 3)
    model.save(tmp_path / "m.keras")
    np.save(tmp_path / "in.npy", np.tile(np.float32([0, 0, 1]), (1, 8, 8, 1)))
    seen = {}

    def rule(lr, hamiltonian, degradation, **kwargs):
        seen["rule"] = degradation
        return 0.01

    def refined(lr, hamiltonian, weight, degradation, start=None, **kwargs):
        seen["refine"] = degradation
        return start

    monkeypatch.setattr(weight_rule, "choose_weight", rule)
    monkeypatch.setattr(refine, "refine", refined)
    code = main(["upscale", str(tmp_path / "in.npy"), "--model", str(tmp_path / "m.keras"),
                 "--out", str(tmp_path / "out.npy"), "--refine", "physics", "--physics",
                 "typeI", "--physics-weight", "auto", "--steps", "5"])
    assert code == 0, capsys.readouterr().err
    assert seen == {"rule": Degradation(4, pixel="integrate"),
                    "refine": Degradation(4, pixel="integrate")}
