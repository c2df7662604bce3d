import math

import numpy as np
import pytest

from spinsr_tf.base.errors import UserError
from spinsr_tf.evaluation.metrics import corr, mse, psnr, score, summarize
from conftest import random_unit_spins


def test_identical_unit_vectors():
    s = random_unit_spins((3, 4, 5, 3))
    np.testing.assert_array_equal(mse(s, s), np.zeros(3))
    assert np.all(np.isposinf(psnr(s, s)))
    np.testing.assert_allclose(corr(s, s), np.ones(3), atol=1e-6)


def test_opposite_unit_vectors():
    s = random_unit_spins((2, 3, 3, 3), seed=1)
    np.testing.assert_allclose(mse(s, -s), [4.0, 4.0], atol=1e-6)
    np.testing.assert_allclose(corr(s, -s), [-1.0, -1.0], atol=1e-6)
    np.testing.assert_allclose(psnr(s, -s), [0.0, 0.0], atol=1e-5)


def test_hand_computed_two_sites():
    pred = np.zeros((1, 1, 2, 3), np.float32)
    truth = np.zeros((1, 1, 2, 3), np.float32)
    pred[0, 0, 0] = [1, 0, 0]
    truth[0, 0, 0] = [0, 1, 0]  # |d|² = 2, dot 0
    pred[0, 0, 1] = [0, 0, 1]
    truth[0, 0, 1] = [0, 0, 1]  # |d|² = 0, dot 1
    assert mse(pred, truth)[0] == pytest.approx(1.0)
    assert corr(pred, truth)[0] == pytest.approx(0.5)
    assert psnr(pred, truth)[0] == pytest.approx(10 * math.log10(4.0))
    assert psnr(pred, truth, max_value=1.0)[0] == pytest.approx(0.0)


def test_scalar_channel():
    pred = np.array([0.5, -0.5, 1.0, 0.0], np.float32).reshape(1, 2, 2, 1)
    truth = np.array([1.0, -1.0, 1.0, 1.0], np.float32).reshape(1, 2, 2, 1)
    assert mse(pred, truth)[0] == pytest.approx((0.25 + 0.25 + 0 + 1) / 4)
    assert corr(pred, truth)[0] == pytest.approx((0.5 + 0.5 + 1 + 0) / 4)


def test_per_image_values_match_a_loop():
    rng = np.random.default_rng(2)
    pred = rng.normal(size=(4, 3, 5, 3)).astype(np.float32)
    truth = rng.normal(size=(4, 3, 5, 3)).astype(np.float32)
    m, p, c = mse(pred, truth), psnr(pred, truth), corr(pred, truth)
    assert m.shape == p.shape == c.shape == (4,)
    assert m.dtype == p.dtype == c.dtype == np.float64
    for n in range(4):
        d2 = [float(np.dot(pred[n, i, j] - truth[n, i, j], pred[n, i, j] - truth[n, i, j]))
              for i in range(3) for j in range(5)]
        dot = [float(np.dot(pred[n, i, j], truth[n, i, j])) for i in range(3) for j in range(5)]
        assert m[n] == pytest.approx(np.mean(d2), rel=1e-6)
        assert p[n] == pytest.approx(10 * math.log10(4.0 / np.mean(d2)), rel=1e-6)
        assert c[n] == pytest.approx(np.mean(dot), rel=1e-6, abs=1e-7)


def test_score_dict_is_mean_and_population_std_over_images():
    """The row is computed here from the definitions, not through the library's metrics."""
    s = random_unit_spins((3, 4, 4, 3), seed=3)
    t = random_unit_spins((3, 4, 4, 3), seed=4)
    out = score(s, t)
    assert list(out) == ["mse", "psnr", "corr", "mse_std", "psnr_std", "corr_std"]
    assert all(isinstance(v, float) for v in out.values())
    s64, t64 = s.astype(np.float64), t.astype(np.float64)
    per_image = {"mse": [np.mean([[np.sum((s64[n, i, j] - t64[n, i, j]) ** 2) for j in range(4)]
                                  for i in range(4)]) for n in range(3)],
                 "corr": [np.mean([[np.dot(s64[n, i, j], t64[n, i, j]) for j in range(4)]
                                   for i in range(4)]) for n in range(3)]}
    per_image["psnr"] = [10 * math.log10(4.0 / m) for m in per_image["mse"]]
    for name, values in per_image.items():
        mean = sum(values) / 3
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / 3)   # ddof = 0
        assert out[name] == pytest.approx(mean, rel=1e-9), name
        assert out[f"{name}_std"] == pytest.approx(std, rel=1e-6), name
        assert std > 1e-3    # the three images differ, so ddof = 1 would be told apart
    assert score(s, t, max_value=1.0)["psnr"] == pytest.approx(out["psnr"] - 20 * math.log10(2))


def test_summarize():
    assert summarize([1.0, 3.0]) == {"mean": 2.0, "std": 1.0}
    assert summarize([np.inf, np.inf]) == {"mean": np.inf, "std": 0.0}
    inf_mixed = summarize([np.inf, 3.0])
    assert inf_mixed["mean"] == np.inf and math.isnan(inf_mixed["std"])
    with pytest.raises(UserError, match="values"):
        summarize([])
    with pytest.raises(UserError, match="NaN"):
        summarize([1.0, np.nan])


@pytest.mark.parametrize("fn", [mse, psnr, corr, score])
def test_bad_inputs(fn):
    a = np.zeros((2, 4, 4, 3), np.float32)
    with pytest.raises(UserError, match=r"\(2, 4, 4, 3\).*\(2, 4, 4, 1\)"):
        fn(a, np.zeros((2, 4, 4, 1)))
    with pytest.raises(UserError, match=r"\(4, 4, 3\)"):
        fn(a[0], a[0])
    bad = a.copy()
    bad[1, 2, 3, 0] = np.nan
    with pytest.raises(UserError, match="truth contains 1 NaN"):
        fn(a, bad)
    with pytest.raises(UserError, match="pred contains 1 NaN"):
        fn(bad, a)


def test_bad_max_value():
    a = np.zeros((1, 2, 2, 3))
    for bad in (0.0, -2.0, np.nan, "2"):
        with pytest.raises(UserError, match="max_value"):
            psnr(a, a, max_value=bad)
