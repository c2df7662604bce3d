"""Scoring scalar (Sz) maps: interpolation clipped to [-1, 1] stands where unit normalization
stands for vectors (a normalized scalar is its sign), and evaluate picks the table by the
maps' channel count."""

import numpy as np
import pytest

from spinsr_tf.data.degradation import Degradation
from spinsr_tf.evaluation import baselines as b
from spinsr_tf.evaluation.scoring import evaluate, format_table, key_rows
from spinsr_tf.nn.network import build_sr_model


def sz_walls(n=2, size=32, width=0.6, seed=0):
    """Sz maps of sharp domain walls (tanh profiles, 0.6 sites wide) along random directions:
    bicubic overshoots beyond ±1 next to them."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] * (2 * np.pi / size)
    maps = []
    for _ in range(n):
        kx, ky = rng.integers(1, 3, size=2)
        phase = np.sin(kx * x + ky * y + rng.uniform(0, 2 * np.pi))
        maps.append(np.tanh(phase / (width * 2 * np.pi / size)))
    return np.asarray(maps, np.float32)[..., None]


def _mse_psnr(pred, truth):
    err = np.mean((pred.astype(np.float64) - truth) ** 2, axis=(1, 2, 3))
    return err, 10 * np.log10(4.0 / err)


def test_the_scalar_table_is_the_plain_six_and_their_clipped_twins():
    assert list(b.SCALAR_BASELINES) == [*(n for n in b.BASELINES if not n.endswith("_norm")),
                                        *(n[:-5] + "_clip" for n in b.BASELINES
                                          if n.endswith("_norm"))]
    assert b.baselines_for(1) is b.SCALAR_BASELINES and b.baselines_for(3) is b.BASELINES
    assert set(b.aligned_baselines(1)) <= set(b.SCALAR_BASELINES)
    assert (b.reference_baseline(1), b.reference_baseline(3)) == ("bicubic_clip", "bicubic_norm")


@pytest.mark.parametrize("pixel", ["sample", "integrate"])
def test_clip_baselines_match_numpy_and_never_score_worse(pixel):
    hr = sz_walls()
    deg = Degradation(4, pixel=pixel)
    lr = deg.apply(hr)
    for plain in ("gaussian", "bilinear", "bicubic", "bicubic_resize"):
        got = b.SCALAR_BASELINES[plain + "_clip"](lr, 4, padding="periodic", pixel=pixel)
        raw = b.BASELINES[plain](lr, 4, padding="periodic", pixel=pixel)
        np.testing.assert_array_equal(got, np.minimum(np.maximum(raw, -1.0), 1.0))
        assert got.dtype == raw.dtype and got.shape == hr.shape
        # |clip(p) − t| <= |p − t| for every truth t in [−1, 1]
        assert np.all(np.abs(got - hr) <= np.abs(raw - hr) + 1e-7)
    bicubic = b.BASELINES["bicubic"](lr, 4, padding="periodic", pixel=pixel)
    assert bicubic.max() > 1.01     # the walls make it overshoot: clipping matters here
    assert _mse_psnr(np.clip(bicubic, -1, 1), hr)[0].mean() < _mse_psnr(bicubic, hr)[0].mean()


def test_evaluate_scores_scalar_maps_against_the_clipped_table():
    hr = sz_walls(n=3)
    result = evaluate(hr, {"sr": build_sr_model(4, 1)})
    names = list(result["methods"])
    assert names == [*b.SCALAR_BASELINES, "sr", "sr_clip"]
    lr = Degradation(4).apply(hr)
    ref = np.clip(b.upsample(lr, 4, method="bicubic", convention="aligned"), -1, 1)
    mse, psnr = _mse_psnr(ref, hr)
    got = result["methods"]["bicubic_clip"]
    np.testing.assert_allclose(got["per_image"]["mse"], mse, rtol=1e-5)
    np.testing.assert_allclose(got["per_image"]["psnr"], psnr, rtol=1e-5)
    rows = key_rows(result)
    assert rows[0] == "sr" and rows[1] in b.ALIGNED_SCALAR_BASELINES and len(rows) == 2
    assert rows[1] == max(b.ALIGNED_SCALAR_BASELINES, key=lambda n: result["methods"][n]["psnr"])
    assert "_clip = clipped to [-1, 1]" in format_table(result)


def test_vector_maps_keep_the_normalized_table():
    rng = np.random.default_rng(1)
    hr = rng.normal(size=(2, 16, 16, 3)).astype(np.float32)
    hr /= np.linalg.norm(hr, axis=-1, keepdims=True)
    result = evaluate(hr, factor=4)
    assert list(result["methods"]) == list(b.BASELINES)
    assert "_norm = unit vectors" in format_table(result)
