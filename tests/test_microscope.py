"""Microscope stand-ins: Kerr image statistics (mean vs Sz, Poisson variance), optics = the
project's degradation, SPLEEM noise, stand-in files reused, refusals."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spinsr_tf.experiments import microscope
from spinsr_tf.data.degradation import Degradation, gaussian_downsample
from spinsr_tf.base.errors import UserError
from spinsr_tf.experiments.microscope import kerr_image, spleem_image, standin


def _optics(factor, sigma=1.0, **settings):
    """The optics the stand-ins default to (23 taps, point samples, mirror) at ``factor``."""
    return Degradation(factor, sigma, **{"kernel_size": 23, "padding": "reflect", **settings})


def _uniform(sz, size=512):
    s = np.zeros((size, size, 3))
    s[..., 2] = sz
    s[..., 0] = np.sqrt(1 - sz ** 2)
    return s


@pytest.mark.parametrize("sz", [-1.0, 0.0, 0.5, 1.0])
def test_kerr_mean_and_shot_noise(sz):
    photons, contrast = 1000.0, 0.8
    img, mapping = kerr_image(_uniform(sz), _optics(2), photons=photons, contrast=contrast, seed=1)
    assert img.dtype == np.uint8 and img.shape == (256, 256)
    u = 0.5 * (1 + contrast * sz)
    dn = img.astype(np.float64)
    # E[DN] = 255 u; Var[DN] = 255² u / photons (Poisson) + ~1/12 (rounding to grey levels,
    # only roughly uniform when the shot noise spans a few levels); 65536 pixels
    assert abs(dn.mean() - 255 * u) < 0.3
    np.testing.assert_allclose(dn.var(), 255 ** 2 * u / photons + 1 / 12, rtol=0.03,
                               atol=1 / 12)
    # the returned mapping takes the mean grey level back to Sz
    assert abs(mapping["sz_per_dn"] * dn.mean() + mapping["sz_offset"] - sz) < 0.005


def test_kerr_optics_are_the_project_degradation():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(64, 48, 3))
    spins = v / np.linalg.norm(v, axis=-1, keepdims=True)
    img, m = kerr_image(spins, _optics(4, 1.5), photons=None, contrast=1.0, bits=16)
    assert img.dtype == np.uint16 and img.shape == (16, 12)
    ref = gaussian_downsample(spins[None, ..., 2:3], 4, 23, 1.5, "reflect")[0, ..., 0]
    sz = m["sz_per_dn"] * img + m["sz_offset"]
    np.testing.assert_allclose(sz, ref, atol=1.0 / 65535 + 1e-6)  # half a grey level
    # an instrument's window grows with its PSF (±4σ: 25 taps for σ = 3)
    optics = microscope.instrument_optics({"psf_sigma": 3.0, "pixel": "sample"}, 4, "reflect")
    assert optics == Degradation(4, 3.0, 25, "sample", "reflect")
    wider, m2 = kerr_image(spins, optics, photons=None, contrast=1.0, bits=16)
    ref3 = gaussian_downsample(spins[None, ..., 2:3], 4, 25, 3.0, "reflect")[0, ..., 0]
    np.testing.assert_allclose(m2["sz_per_dn"] * wider + m2["sz_offset"], ref3, atol=2e-5)
    assert Degradation.from_dict(m2["degradation"]) == optics


def test_kerr_seeded_noise():
    s = _uniform(0.3, size=64)
    a, _ = kerr_image(s, _optics(4), seed=5)
    b, _ = kerr_image(s, _optics(4), seed=5)
    c, _ = kerr_image(s, _optics(4), seed=6)
    np.testing.assert_array_equal(a, b)
    assert np.any(a != c)


def test_spleem_noise_statistics():
    rng = np.random.default_rng(2)
    v = rng.normal(size=(256, 256, 3))
    spins = v / np.linalg.norm(v, axis=-1, keepdims=True)
    clean = spleem_image(spins, _optics(2), noise=0.0)
    np.testing.assert_allclose(clean, gaussian_downsample(spins[None], 2, 23, 1.0, "reflect")[0],
                               atol=1e-6)
    noisy = spleem_image(spins, _optics(2), noise=0.2, seed=3)
    assert noisy.dtype == np.float32 and noisy.shape == (128, 128, 3)
    diff = (noisy - clean).astype(np.float64)
    assert abs(diff.mean()) < 0.005
    np.testing.assert_allclose(diff.std(axis=(0, 1)), 0.2, rtol=0.03)
    # the draws are the noise model's and, being Gaussian, the ones the stand-in files of
    # docs/results.md were made with: 0.2 · standard_normal of the seed's generator
    from spinsr_tf.data.noise import NoiseModel

    lr = gaussian_downsample(spins[None], 2, 23, 1.0, "reflect")[0].astype(np.float64)
    np.testing.assert_array_equal(noisy, NoiseModel("gaussian", 0.2).sample(lr, 3)
                                  .astype(np.float32))
    z = np.random.default_rng(3).standard_normal(lr.shape)
    np.testing.assert_allclose(noisy, lr + 0.2 * z, atol=1e-6)


@pytest.mark.parametrize("call,message", [
    (lambda s: kerr_image(s, contrast=1.5), r"contrast must be a finite number in \(0, 1\]"),
    (lambda s: kerr_image(s, black_level=1.0), r"black_level must be a finite number in \[0, 1\)"),
    (lambda s: kerr_image(s, bits=12), "bits must be 8 or 16"),
    (lambda s: kerr_image(s, photons=0), "photons must be a finite number > 0"),
    (lambda s: kerr_image(s, _optics(3)), "divisible by factor 3"),
    (lambda s: kerr_image(s, 4), "optics must be a Degradation"),
    (lambda s: kerr_image(s[..., :2]), r"shape \(H, W, 3\)"),
    (lambda s: spleem_image(s, noise=-1), "noise must be"),
    (lambda s: spleem_image(s[..., 2]), "3 components"),
])
def test_refusals(call, message):
    with pytest.raises(UserError, match=message):
        call(_uniform(0.0, size=16))


def test_standin_writes_and_reuses(tmp_path):
    first = standin("kerr", size=32, factor=4, seed=0, out_dir=tmp_path, progress=False)
    assert first["annealed"]
    truth = np.load(first["truth"])
    assert truth.shape == (32, 32, 3)
    np.testing.assert_allclose(np.linalg.norm(truth, axis=-1), 1.0, atol=1e-5)
    img = np.asarray(Image.open(first["image"]))
    assert img.dtype == np.uint8 and img.shape == (4, 4)   # 8 LR pixels less the crop of 2
    meta = json.loads((tmp_path / "kerr.json").read_text())
    assert meta["mapping"]["contrast"] == 0.8 and meta["params"]["size"] == 32
    assert meta["params"]["optics"] == microscope.INSTRUMENTS["kerr"]
    # the optics as the files were always made: PSF 3 HR px in 25 taps, camera pixels, periodic
    ref, _ = kerr_image(truth, Degradation(4, 3.0, 25, "integrate", "periodic"), seed=0,
                        crop=2, black_level=0.1)
    np.testing.assert_array_equal(img, ref)
    assert microscope.truth_window(truth, meta).shape == (16, 16, 3)
    mtime = first["truth"].stat().st_mtime_ns
    again = standin("kerr", size=32, factor=4, seed=0, out_dir=tmp_path, progress=False)
    assert not again["annealed"] and first["truth"].stat().st_mtime_ns == mtime
    # another noise setting re-images the same truth
    other = standin("kerr", size=32, factor=4, seed=0, out_dir=tmp_path, photons=50.0,
                    progress=False)
    assert not other["annealed"] and other["meta"]["params"]["photons"] == 50.0
    sp = standin("spleem", size=32, factor=4, seed=0, out_dir=tmp_path, progress=False)
    image = np.load(sp["image"])
    assert image.shape == (4, 4, 3) and image.dtype == np.float32
    assert sorted(p.name for p in tmp_path.iterdir() if ".tmp" in p.name) == []
    with pytest.raises(UserError, match="kind must be one of"):
        standin("stxm", size=16, factor=4, out_dir=tmp_path)
    with pytest.raises(UserError, match="divisible by factor"):
        standin("kerr", size=20, factor=8, out_dir=tmp_path)


def test_presets_are_consistent():
    for name, cfg in microscope.PRESETS.items():
        lr = cfg["size"] // cfg["factor"]
        assert cfg["size"] % cfg["factor"] == 0 and cfg["patch"] <= lr, name
        assert cfg["stride"] <= cfg["patch"], name


def test_scores_table_rows():
    res = {"kind": "kerr", "lr_mse": {"sr": 1e-3, "bicubic": 2e-3},
           "scores": {"sr": {"psnr": 20.0, "corr": 0.5, "mse": 0.04},
                      "bicubic_norm": {"psnr": 18.5, "corr": 0.45, "mse": 0.0566}}}
    table = microscope.scores_table([res]).splitlines()
    assert table[2] == "| kerr | sr | 20.00 | 0.5000 | – | 0.0400 | 1.00e-03 |"
    assert table[3] == "| kerr | bicubic_norm | 18.50 | 0.4500 | – | 0.0566 | – |"


def test_kerr_calibration_scores_the_map_as_returned(tmp_path):
    """The recorded Spearman ranks the error of the returned Sz map; the affine-fit one (the
    truth's grey-level fit, which no user has) is recorded beside it, and they differ."""
    from spinsr_tf.evaluation.calibration import calibration, pixel_error

    res = microscope.run_experiment("kerr", tmp_path, preset="smoke", progress=False)
    run = Path(res["files"]["run_dir"])
    meta = json.loads((tmp_path / "kerr.json").read_text())
    truth = microscope.truth_window(np.load(res["files"]["truth"]), meta)[..., 2:3]
    sr, u = np.load(run / "sr_values.npy"), np.load(run / "uncertainty.npy")
    a, b = res["scores"]["sr"]["affine"]
    assert res["uncertainty_calibration"] == pytest.approx(
        calibration(u, pixel_error(sr[None], truth[None])[0]), abs=1e-12)
    assert res["uncertainty_calibration_affine"] == pytest.approx(
        calibration(u, pixel_error((a * sr + b)[None], truth[None])[0]), abs=1e-12)
    # each pinned to its definition above; here only that they are two numbers, not one
    assert abs(res["uncertainty_calibration"] - res["uncertainty_calibration_affine"]) > 1e-5
    line = microscope.scores_table([res]).splitlines()[-1]
    assert line == (f"kerr: uncertainty vs actual error, Spearman "
                    f"{res['uncertainty_calibration']:.2f} (after the affine fit to the truth: "
                    f"{res['uncertainty_calibration_affine']:.2f})")


def test_standin_instrument_replaces_optics_and_refuses_unknown_ones(tmp_path):
    made = standin("kerr", size=32, factor=4, seed=0, out_dir=tmp_path, progress=False,
                   instrument={"psf_sigma": 5.0, "bits": 16})
    assert made["meta"]["params"]["optics"] == {**microscope.INSTRUMENTS["kerr"],
                                                "psf_sigma": 5.0, "bits": 16}
    image = np.asarray(Image.open(made["image"]))
    truth = np.load(made["truth"])
    ref, _ = kerr_image(truth, Degradation(4, 5.0, 41, "integrate", "periodic"), seed=0,
                        crop=2, black_level=0.1, bits=16)
    np.testing.assert_array_equal(image, ref)
    assert ref.dtype == np.uint16
    with pytest.raises(UserError, match=r"unknown optics \['psf'\]"):
        standin("kerr", size=32, factor=4, out_dir=tmp_path, instrument={"psf": 2.0})


def test_microscope_figure_error_row_and_scores(tmp_path, monkeypatch):
    """The Fig. 7 panel: LR | SR | the better bicubic | truth, titles with the given scores,
    an error row, the optics in the caption; a scalar map is shown after its affine fit."""
    from spinsr_tf.data import render

    kept, save = [], render.save_figure
    monkeypatch.setattr(render, "save_figure", lambda fig, path: (kept.append(fig),
                                                                  save(fig, path))[1])
    rng = np.random.default_rng(0)
    truth = rng.uniform(-1, 1, size=(16, 16, 1)).astype(np.float32)
    sr = 0.5 * truth + 0.05 * rng.normal(size=truth.shape).astype(np.float32)
    values = {"lr": truth[::4, ::4], "sr": sr, "bicubic": truth + 0.1}
    scores = {"sr": {"psnr": 40.0, "corr": 0.9, "pearson": 0.99, "affine": [2.0, 0.0]},
              "bicubic": {"psnr": 30.0, "corr": 0.8, "pearson": 0.9, "affine": [1.0, 0.0]},
              "bicubic_norm": {"psnr": 20.0, "corr": 0.7, "pearson": 0.8, "affine": [1.0, 0.0]}}
    path = microscope.microscope_figure("kerr", values, truth, scores, {"psf_sigma": 3.0},
                                        {"sigma": 2.5, "kernel_size": 23}, 4,
                                        tmp_path / "kerr_figure.png")
    assert path.stat().st_size > 1000
    fig = kept[0]
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles[:4] == ["LR (input)", "SR (network)\nPSNR 40.0 dB\nCorr 0.9000, r 0.990",
                          "bicubic\nPSNR 30.0 dB\nCorr 0.8000, r 0.900", "truth"]
    assert "|map − truth|" in [ax.get_ylabel() for ax in fig.axes]
    shown = [ax for ax in fig.axes if ax.get_title().startswith("SR")][0]
    np.testing.assert_allclose(shown.images[0].get_array(), 2.0 * sr[..., 0], atol=1e-6)
    errors = [ax for ax in fig.axes if ax.images and ax.images[0].cmap.name == "magma"]
    assert len(errors) == 2   # SR and bicubic; none for LR (another grid) and the truth
    caption = fig.texts[-1].get_text()
    assert "PSF σ 3 HR px" in caption and "PSF σ 2.5 HR px" in caption
