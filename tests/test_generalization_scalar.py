"""The foreign-texture benchmark's scalar rows: a one-channel model scored on the Sz component
of the same Spirit maps, served as ``upscale`` serves a grey image, against bicubic clipped to
[-1, 1]."""

import json

import numpy as np
import pytest
from conftest import benchmark_module


@pytest.mark.slow
def test_scalar_rows_score_sz_against_clipped_bicubic(tmp_path, capsys):
    pytest.importorskip("spirit")
    import keras

    from spinsr_tf.data.degradation import Degradation
    from spinsr_tf.evaluation.baselines import upsample
    from spinsr_tf.evaluation.metrics import psnr
    from spinsr_tf.nn.network import build_sr_model, sr_submodel

    gen, ft = benchmark_module("generalization"), benchmark_module("foreign_textures")
    keras.utils.set_random_seed(7)
    model = build_sr_model(Degradation(4), channels=1)
    model.save(tmp_path / "sz.keras")
    out = tmp_path / "g.json"
    argv = ["--families", "neel_short", "--models", str(tmp_path / "sz.keras"), "--n", "1",
            "--size", "32", "--home-n", "0", "--cache", str(tmp_path / "cache")]
    assert gen.main([*argv, "--json", str(out), "--single-pass"]) == 0
    printed = capsys.readouterr().out
    assert "| bicubic_clip (dB) |" in printed and "held-out gain over bicubic_clip" in printed
    got = json.loads(out.read_text())["families"]["neel_short"]["parts"]["heldout"]["scores"]
    got = got[str(tmp_path / "sz.keras")]
    assert "bicubic_norm" not in got
    hr, _ = ft.family_maps("neel_short", "heldout", 1, 32, tmp_path / "cache")
    sz = hr[..., 2:3]
    lr = Degradation(4).apply(sz)
    clip = np.clip(upsample(lr, 4, method="bicubic"), -1, 1)
    # the network sees the LR map's range on [-1, 1], the result goes back into Sz
    lo, hi = lr.min(), lr.max()
    net = sr_submodel(model)(((lr - (lo + hi) / 2) / ((hi - lo) / 2)).astype(np.float32),
                             training=False).numpy()
    sr = net * ((hi - lo) / 2) + (lo + hi) / 2
    assert got["bicubic_clip"]["psnr"] == pytest.approx(float(psnr(clip, sz)[0]), abs=1e-5)
    assert got["model"]["psnr"] == pytest.approx(float(psnr(sr, sz)[0]), abs=1e-3)
    assert got["gain"] == pytest.approx(float(psnr(sr, sz)[0] - psnr(clip, sz)[0]), abs=1e-3)
    assert json.loads(out.read_text())["upscale"] == "single pass"

    # upscale's default: the mean over the symmetric copies of the mapped map, mapped back
    from spinsr_tf.inference.uncertainty import symmetric_mean

    assert gen.main([*argv, "--json", str(tmp_path / "mean.json")]) == 0
    mean = json.loads((tmp_path / "mean.json").read_text())
    assert mean["upscale"] == "mean of the symmetric copies"
    scores = mean["families"]["neel_short"]["parts"]["heldout"]["scores"]
    scores = scores[str(tmp_path / "sz.keras")]
    net = symmetric_mean(model, ((lr - (lo + hi) / 2) / ((hi - lo) / 2)).astype(np.float32))[0]
    sr = net * ((hi - lo) / 2) + (lo + hi) / 2
    assert scores["model"]["psnr"] == pytest.approx(float(psnr(sr, sz)[0]), abs=1e-3)
