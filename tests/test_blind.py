"""Blind training across drawn degradations: the generator (ranges, draws, records, specs), the
per-sample-taps layer against the NumPy degradation, deterministic batches, a short blind run
that resumes bit for bit, and an SR network that takes the LR map alone.

Data: 9 smooth unit-vector maps of 16² (HR) at ×4, batch 4 (as tests/test_robustness.py).
"""

import json

import h5py
import keras
import numpy as np
import pytest

from spinsr_tf.base.errors import UserError
from spinsr_tf.cli import main
from spinsr_tf.data.degradation import Degradation, kernel_size_for
from spinsr_tf.data.degradation_generator import (DegradationGenerator, as_generator,
                                                  batch_rng)
from spinsr_tf.data.stream import open_training_data
from spinsr_tf.nn.config import TrainConfig, recipe
from spinsr_tf.nn.layers import TapsDownsample
from spinsr_tf.nn.losses import Recorrupted
from spinsr_tf.nn.network import load_sr_model, sr_submodel
from spinsr_tf.nn.training import CHECKPOINT, CONFIG, MODEL, read_history, read_run_config, train
from conftest import smooth_unit_spins

N, L, SCALE = 9, 16, 4
GEN = DegradationGenerator(sigma=(0.5, 3.0), pixel={"sample": 1, "integrate": 1},
                           noise=(0.0, 0.05))


def _numpy_reference(x, deg):
    """Brute-force sum over the 2D window: out[n,a,b,c] = Σ t[u] t[v] x[s(a·f+u−k//2), ...]."""
    f, half = deg.factor, deg.kernel_size // 2
    t = deg.taps()
    n, h, w, c = x.shape

    def src(i, size):
        i = np.asarray(i)
        if deg.padding == "periodic":
            return i % size
        period = 2 * (size - 1)
        i = np.abs(i) % period
        return np.where(i >= size, period - i, i)

    rows = src(np.arange(h // f)[:, None] * f + np.arange(t.size)[None, :] - half, h)
    cols = src(np.arange(w // f)[:, None] * f + np.arange(t.size)[None, :] - half, w)
    out = np.zeros((n, h // f, w // f, c))
    for a in range(h // f):
        for b in range(w // f):
            window = x[:, rows[a]][:, :, cols[b]]          # (n, T, T, c)
            out[:, a, b] = np.einsum("u,v,nuvc->nc", t, t, window)
    return out


# --- the generator ------------------------------------------------------------------------------

def test_draws_cover_the_ranges_and_follow_the_weights():
    gen = DegradationGenerator(sigma=(0.7, 2.5), pixel={"sample": 3, "integrate": 1},
                               noise=(0.01, 0.04))
    draws = [gen.draw(batch_rng(3, 0, s), 4) for s in range(400)]
    sigmas = np.array([d.degradation.sigma for d in draws])
    noise = np.array([d.noise_std for d in draws])
    assert 0.7 <= sigmas.min() < 0.8 and 2.4 < sigmas.max() <= 2.5
    assert 0.01 <= noise.min() and noise.max() <= 0.04
    share = np.mean([d.degradation.pixel == "sample" for d in draws])
    assert 0.68 < share < 0.82                       # weight 3 : 1
    assert {d.degradation.kernel_size for d in draws} == {kernel_size_for(2.5)}


def test_draws_are_a_pure_function_of_seed_epoch_step():
    a = [GEN.draw(batch_rng(7, e, s), 4) for e in range(3) for s in range(3)]
    b = [GEN.draw(batch_rng(7, e, s), 4) for e in range(3) for s in range(3)]
    assert a == b
    assert len({d.degradation.sigma for d in a}) == len(a)     # every batch its own
    assert GEN.draw(batch_rng(8, 0, 0), 4) != a[0]
    assert GEN.draw(batch_rng(7, 0, 0, stream=1), 4) != a[0]


def test_json_and_spec_round_trips():
    assert DegradationGenerator.from_dict(json.loads(json.dumps(GEN.to_dict()))) == GEN
    assert DegradationGenerator.parse("blind") == GEN
    parsed = DegradationGenerator.parse("sigma=1:2; pixel=integrate:2+sample, noise=0")
    assert parsed == DegradationGenerator((1.0, 2.0), {"integrate": 2, "sample": 1}, 0.0)
    assert as_generator(parsed.to_dict()) == parsed
    assert DegradationGenerator.parse("sigma=1.5").sigma == (1.5, 1.5)


@pytest.mark.parametrize("spec, words", [
    ("sigma=3:1", "inverted"), ("sigma=0:2", "> 0"), ("noise=-0.1:0", ">= 0"),
    ("pixel=camera", "pixel model"), ("pixel=sample:0", "not all be 0"),
    ("sigma=a:b", "numbers"), ("psf=1", "not one of"), ("sigma=1,sigma=2", "twice"),
    ("", "blind"), ("sigma=nan", "finite"),
])
def test_bad_specs_are_one_line_user_errors(spec, words):
    with pytest.raises(UserError, match=words) as err:
        DegradationGenerator.parse(spec)
    assert "\n" not in str(err.value)


def test_padded_taps_put_both_pixel_models_on_one_grid():
    """Tap u weighs HR pixel k·f + u − k//2 for both models: the sample filter's centre is tap
    k//2, the camera pixel's mass centre is k//2 + (f − 1)/2."""
    k = GEN.kernel_size()
    for pixel, centre in (("sample", k // 2), ("integrate", k // 2 + 1.5)):
        taps = GEN.padded_taps(Degradation(4, 1.3, k, pixel))
        assert taps.shape == (GEN.taps_length(4),)
        assert taps.sum() == pytest.approx(1.0)
        assert (taps * np.arange(taps.size)).sum() == pytest.approx(centre)
    with pytest.raises(UserError):
        GEN.padded_taps(Degradation(4, 1.0, 5))


# --- the layer ----------------------------------------------------------------------------------

@pytest.mark.parametrize("padding", ["periodic", "reflect"])
def test_taps_layer_equals_the_numpy_degradation_for_each_draw(padding):
    """Per sample its own drawn filter: every sample equals Degradation.apply and a brute-force
    window sum (1e-6), with static and free spatial sizes, under XLA too."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 16, 12, 3)).astype(np.float32)
    draws = [GEN.draw(batch_rng(1, 0, s), 4, padding) for s in range(6)]
    assert {d.degradation.pixel for d in draws} == {"sample", "integrate"}
    taps = np.stack([GEN.padded_taps(d.degradation) for d in draws]).astype(np.float32)
    layer = TapsDownsample(4, GEN.kernel_size(), padding)
    xin = keras.Input((None, None, 3))
    tin = keras.Input((GEN.taps_length(4),))
    free = keras.Model([xin, tin], layer(xin, tin))
    got = {"static": np.asarray(layer(x, taps)),
           "free": np.asarray(free.predict_on_batch([x, taps])),
           "xla": np.asarray(keras.ops.convert_to_numpy(
               _jit(lambda a, b: layer(a, b))(x, taps)))}
    for i, d in enumerate(draws):
        ref = d.degradation.apply(x[i:i + 1], dtype=np.float64)[0]
        np.testing.assert_allclose(_numpy_reference(x[i:i + 1].astype(np.float64),
                                                    d.degradation)[0], ref, atol=1e-12)
        for name, out in got.items():
            np.testing.assert_allclose(out[i], ref, atol=1e-6, err_msg=name)


def _jit(fn):
    if keras.backend.backend() == "jax":
        import jax
        return jax.jit(fn)
    import tensorflow as tf
    return tf.function(fn, jit_compile=True)


def test_taps_layer_config_round_trip():
    layer = TapsDownsample(8, 25, "reflect", name="t")
    again = TapsDownsample.from_config(layer.get_config())
    assert (again.factor, again.kernel_size, again.padding, again.taps_length) == (8, 25,
                                                                                   "reflect", 32)
    with pytest.raises(UserError):
        TapsDownsample(4, 22)


# --- training -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    hr = smooth_unit_spins(N, L, seed=2)
    with h5py.File(folder / "hr.h5", "w") as f:
        f.create_dataset("spins", data=hr)
    with h5py.File(folder / "lr.h5", "w") as f:
        f.create_dataset("lr", data=Degradation(SCALE, kernel_size=5).apply(hr))
    return folder


def _config(data, epochs, **changes):
    fields = dict(epochs=epochs, batch_size=4, val_fraction=1 / N, seed=5, jit_compile=False,
                  kernel_size=5, degradations=GEN)
    return recipe("equivariant", data / "hr.h5", SCALE, **{**fields, **changes})


def test_a_batch_is_made_with_its_draw_and_is_reproducible(data):
    source = open_training_data(data / "hr.h5", SCALE)
    idx = np.array([3, 0, 5])
    lr, taps, draw = source.drawn_lr(idx, GEN, seed=5, epoch=2, step=1)
    lr2, taps2, draw2 = source.drawn_lr(idx, GEN, seed=5, epoch=2, step=1)
    np.testing.assert_array_equal(lr, lr2)
    np.testing.assert_array_equal(taps, taps2)
    assert draw == draw2
    clean = draw.degradation.apply(source.hr(idx))
    noise = lr - clean
    assert noise.std() == pytest.approx(draw.noise_std, rel=0.3)
    np.testing.assert_array_equal(taps, np.tile(GEN.padded_taps(draw.degradation), (3, 1))
                                  .astype(np.float32))
    other, _, _ = source.drawn_lr(idx, GEN, seed=5, epoch=2, step=2)
    assert not np.array_equal(other, lr)


def test_blind_run_resumes_bit_exactly_and_serves_lr_alone(data, tmp_path):
    """One epoch then resumed to two equals two straight (checkpoint, model, history); the
    config records the generator; the saved SR network takes the LR map alone."""
    train(_config(data, 2), tmp_path / "through", progress=False)
    train(_config(data, 1), tmp_path / "run", progress=False)
    history = train(_config(data, 2), tmp_path / "run", resume=True, progress=False)
    states = []
    for run in ("through", "run"):
        model = keras.saving.load_model(tmp_path / run / CHECKPOINT, compile=True)
        assert sorted(model.input) == ["lr_input", "taps"]      # the drawn taps are an input
        states.append([np.asarray(v) for v in model.variables + model.optimizer.variables])
    for a, b in zip(*states):
        np.testing.assert_array_equal(a, b)
    assert history == read_history(tmp_path / "through")
    assert np.isfinite(history["loss"]).all() and "equivariance_loss" in history
    assert read_run_config(tmp_path / "run").degradations == GEN
    record = json.loads((tmp_path / "run" / CONFIG).read_text())
    assert record["degradations"]["sigma"] == [0.5, 3.0]

    network = load_sr_model(tmp_path / "run" / MODEL)
    sr = sr_submodel(network)
    assert len(sr.inputs) == 1
    lr = Degradation(SCALE, 2.0, pixel="integrate").apply(smooth_unit_spins(2, L, seed=9))
    assert np.asarray(sr.predict_on_batch(lr)).shape == (2, L, L, 3)


def test_blind_training_refuses_lr_only_data_and_fixed_degradation_terms(data, tmp_path):
    with pytest.raises(UserError, match="need HR maps") as err:
        train(_config(data, 1).replace(data=data / "lr.h5"), tmp_path / "out", progress=False)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "out").exists()
    with pytest.raises(UserError, match="drawn degradations"):
        TrainConfig(data=data / "hr.h5", scale=SCALE, degradations=GEN,
                    losses=(Recorrupted(noise_std=0.1),))


@pytest.mark.parametrize("flags, words", [
    (["--degradations", "sigma=2:1"], "inverted"),
    (["--blind", "--degradations", "sigma=1"], "not both"),
    (["--blind", "--data-file-is-lr"], "need HR maps"),
])
def test_cli_bad_spec_is_one_line_exit_2_and_writes_nothing(flags, words, data, tmp_path,
                                                            capsys):
    out = tmp_path / "run"
    source = data / ("lr.h5" if "--data-file-is-lr" in flags else "hr.h5")
    flags = [f for f in flags if f != "--data-file-is-lr"]
    status = main(["train", "--data", str(source), "--scale", "4", "--out", str(out),
                   "--epochs", "1", "--kernel-size", "5", "--quiet", *flags])
    err = capsys.readouterr().err.strip()
    assert status == 2 and words in err and len(err.splitlines()) == 1, err
    assert not out.exists()


# --- the conditioned variant --------------------------------------------------------------------

def test_untrained_conditioned_residual_network_is_aligned_bicubic_of_the_told_pixel_model():
    """The skip path follows the condition: zero-initialised correction, so SR = aligned
    bicubic for point samples or camera pixels, per sample, as the condition says."""
    from spinsr_tf.data.degradation_generator import condition_vector
    from spinsr_tf.nn.network import build_sr_model, is_conditioned

    net = build_sr_model(Degradation(4, kernel_size=5), residual=True, conditioned=True)
    assert is_conditioned(net) and not is_conditioned(build_sr_model(Degradation(4, kernel_size=5)))
    hr = smooth_unit_spins(2, L, seed=4)
    degs = [Degradation(4, 1.0), Degradation(4, 2.0, pixel="integrate")]
    lr = np.concatenate([d.apply(hr[i:i + 1]) for i, d in enumerate(degs)])
    cond = np.stack([condition_vector(d) for d in degs])
    sr = np.asarray(sr_submodel(net).predict_on_batch({"lr_input": lr, "degradation": cond}))
    for i, d in enumerate(degs):
        np.testing.assert_allclose(sr[i], d.upsample(lr[i:i + 1])[0], atol=1e-5)


def test_conditioned_run_trains_saves_and_is_told_the_degradation(data, tmp_path):
    train(_config(data, 1, conditioned=True), tmp_path / "run", progress=False)
    history = read_history(tmp_path / "run")
    assert np.isfinite(history["loss"]).all() and np.isfinite(history["val_sr_mse"]).all()
    assert read_run_config(tmp_path / "run").conditioned
    checkpoint = keras.saving.load_model(tmp_path / "run" / CHECKPOINT, compile=True)
    assert sorted(checkpoint.input) == ["degradation", "lr_input", "taps"]
    sr = sr_submodel(load_sr_model(tmp_path / "run" / MODEL))
    assert len(sr.inputs) == 2
    with pytest.raises(UserError, match="needs drawn degradations"):
        _config(data, 1, conditioned=True, degradations=None)
