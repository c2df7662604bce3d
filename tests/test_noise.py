"""The noise model: draws match its variance, estimates recover a known noise, its record
round-trips and reads the degradation.json that fit-image runs have written."""

import json

import numpy as np
import pytest

from spinsr_tf.base.errors import UserError
from spinsr_tf.data.noise import KINDS, NoiseModel

#: degradation.json as fit-image wrote it before the noise model was one object (a Kerr
#: stand-in, 8-bit: Poisson–Gaussian lowered to the spectrum floor; sigma not estimated).
OLD_RECORD = """{
 "how": {
  "noise": {
   "confident": true,
   "floor": {
    "confident": true,
    "method": "power-spectrum floor (85 frequencies above 0.85 of the highest, 9 tapers)",
    "value": 0.029001047504972614
   },
   "method": "robust variance of the second difference in 16 of 16 intensity bins, line fit, level lowered to the spectrum floor"
  },
  "sigma": {
   "confident": false,
   "method": "default (scalar images carry no vector length to estimate it from)"
  }
 },
 "kernel_size": 23,
 "noise_kind": "poisson",
 "noise_slope": 3.33704500767994e-06,
 "noise_std": 0.029001051453329364,
 "noise_std_image": 3.6976340602994937,
 "pixel": "integrate",
 "sigma": 1.0,
 "warnings": [
  "PSF width not estimated for a scalar image; assuming sigma = 1 HR pixel (give --sigma)"
 ]
}
"""


def _texture(n=96, seed=0):
    """A smooth two-wave pattern in [-0.8, 0.8]: little power at the pixel scale."""
    y, x = np.mgrid[0:n, 0:n].astype(np.float64)
    phase = np.random.default_rng(seed).uniform(0, 6, 2)
    return 0.4 * (np.sin(2 * np.pi * x / 23 + phase[0]) + np.cos(2 * np.pi * y / 31 + phase[1]))


@pytest.mark.parametrize("model", [NoiseModel("gaussian", 0.07),
                                   NoiseModel("poisson", 0.02, 0.01)])
def test_draws_have_the_model_variance(model):
    """Per clean level, the variance of 40 000 seeded draws matches ``std² + slope·y`` (4σ of
    the sample variance's scatter), and the draws are unbiased."""
    levels = np.array([-0.5, 0.0, 0.5, 1.0])
    clean = np.repeat(levels[:, None], 40000, axis=1)
    noisy = model.sample(clean, np.random.default_rng(1))
    want = np.maximum(model.std ** 2 + model.slope * levels, 0.0)
    np.testing.assert_allclose(model.variance(levels), want)
    got = (noisy - clean).var(axis=1)
    np.testing.assert_allclose(got, want, rtol=4 * np.sqrt(2 / 40000))
    assert np.all(np.abs((noisy - clean).mean(axis=1)) <= 4 * np.sqrt(want / 40000))
    # seeded: the same draw again, another seed another one
    np.testing.assert_array_equal(model.sample(clean, np.random.default_rng(1)), noisy)
    assert not np.array_equal(model.sample(clean, np.random.default_rng(2)), noisy)


def test_gaussian_draw_is_the_plain_one_and_none_draws_nothing():
    """A Gaussian draw is ``y + std·z`` with ``z`` from the generator as it comes (so a
    simulation written that way keeps its numbers); "none" returns the clean values."""
    clean = _texture(16)
    z = np.random.default_rng(5).standard_normal(clean.shape)
    np.testing.assert_array_equal(NoiseModel("gaussian", 0.1).sample(clean, 5), clean + 0.1 * z)
    np.testing.assert_array_equal(NoiseModel().sample(clean, 5), clean)
    assert NoiseModel().mean_variance(clean[..., None]) == 0.0


def test_variance_under_keras_ops_is_the_numpy_one():
    """The data term's variance (keras.ops, float32) is the NumPy formula's."""
    from keras import ops

    y = np.linspace(-1, 1, 41, dtype=np.float32)
    model = NoiseModel("poisson", 0.1, 0.02)
    np.testing.assert_allclose(np.asarray(model.variance(ops.convert_to_tensor(y), ops)),
                               np.maximum(0.01 + 0.02 * y.astype(np.float64), 0), rtol=1e-6)
    low = NoiseModel("poisson", 0.01, 0.5)            # clipped at 0 where std² + slope·y < 0
    assert low.variance(-1.0) == 0.0


@pytest.mark.parametrize("sigma", [0.03, 0.08])
def test_estimate_recovers_a_known_gaussian_sigma(sigma):
    clean = np.stack([_texture(seed=1), _texture(seed=2)], -1)
    noisy = NoiseModel("gaussian", sigma).sample(clean, np.random.default_rng(3))
    model = NoiseModel.estimate(noisy, "gaussian")
    assert model.kind == "gaussian" and model.slope == 0.0
    assert model.std == pytest.approx(sigma, rel=0.15)
    assert model.how["confident"] and not model.warning
    # a number is a given Gaussian std in image units: image_scale converts it
    given = NoiseModel.estimate(noisy, 0.5, image_scale=2.0)
    assert (given.kind, given.std, given.how["method"]) == ("gaussian", 0.25, "given")
    assert NoiseModel.estimate(noisy, "none") == NoiseModel()


def test_estimate_recovers_shot_noise():
    """A count image (Poisson–Gaussian): the variance model's level over the image within
    20 % of the truth's."""
    truth = NoiseModel("poisson", 0.02, 0.004)
    clean = _texture(128, seed=4)[..., None] + 0.9           # counts are non-negative
    noisy = truth.sample(clean, np.random.default_rng(6))
    model = NoiseModel.estimate(noisy, "auto", counts=True)
    assert model.kind == "poisson"
    assert model.mean_variance(clean) == pytest.approx(truth.mean_variance(clean), rel=0.2)
    with pytest.raises(UserError, match="non-negative counts"):
        NoiseModel.estimate(noisy, "poisson", image_min=-1.0)


def test_record_round_trip_and_old_files():
    for model in (NoiseModel(), NoiseModel("gaussian", 0.05),
                  NoiseModel("poisson", 0.02, 0.003)):
        record = json.loads(json.dumps(model.to_dict()))
        assert NoiseModel.from_dict(record) == model
        assert set(record) == {"noise_kind", "noise_std", "noise_slope"}
    old = json.loads(OLD_RECORD)
    model = NoiseModel.from_dict(old)
    assert (model.kind, model.std, model.slope) == ("poisson", old["noise_std"],
                                                    old["noise_slope"])
    assert model.how == old["how"]["noise"]
    assert {**old, **model.to_dict()} == old        # written back, the same record
    assert NoiseModel.from_dict({"noise_kind": "none"}) == NoiseModel()


@pytest.mark.parametrize("kwargs,message", [
    ({"kind": "laplace"}, "noise kind must be one of"),
    ({"kind": "none", "std": 0.1}, "has no std or slope"),
    ({"kind": "gaussian", "std": 0.1, "slope": 0.2}, "no signal-dependent part"),
    ({"kind": "gaussian", "std": -0.1}, "noise_std must be a finite number >= 0"),
    ({"kind": "poisson", "std": 0.1, "slope": float("nan")}, "noise_slope must be"),
])
def test_bad_models_are_refused(kwargs, message):
    with pytest.raises(UserError, match=message):
        NoiseModel(**kwargs)
    with pytest.raises(UserError, match="noise_kind"):
        NoiseModel.from_dict({"noise_std": 0.1})
    assert KINDS == ("none", "gaussian", "poisson")


@pytest.mark.parametrize("model", [NoiseModel("gaussian", 0.05),
                                   NoiseModel("poisson", 0.02, 0.003,
                                              how={"floor": {"value": 0.02}})])
def test_scaled_model_is_the_same_noise_in_larger_units(model):
    """Values divided by f: the variance of y / f is v(y) / f² (what a new value scale does)."""
    y = np.linspace(0.0, 2.0, 9)
    f = 1.7
    scaled = model.scaled(f)
    np.testing.assert_allclose(scaled.variance(y / f), model.variance(y) / f ** 2, rtol=1e-12)
    assert scaled.kind == model.kind and scaled.how.get("floor", {}).get("value") in (
        None, pytest.approx(0.02 / f))
    with pytest.raises(UserError, match="factor"):
        model.scaled(0.0)
