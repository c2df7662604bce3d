"""Cross-feeding Net I and Net II (paper, Fig. 4) on a hand-made reproduction folder."""

import json

import h5py
import numpy as np
import pytest

from spinsr_tf.data.interpolation import upsample, unit_normalize
from spinsr_tf.experiments.cross_feeding import (CASES, PAPER_ORDER, cross_feed, cross_scores,
                                     format_cross_table, format_ordering, ordering)
from spinsr_tf.data.degradation import Degradation, gaussian_downsample
from spinsr_tf.base.errors import UserError
from spinsr_tf.evaluation.metrics import corr, psnr


def _maps(n, size, seed, walls=False):
    """Periodic unit-vector maps: smooth random textures, or up/down domains (Type II-like)."""
    rng = np.random.default_rng(seed)
    y, x = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    out = np.zeros((n, size, size, 3))
    for i in range(n):
        for _ in range(3):
            kx, ky = rng.integers(-2, 3, size=2)
            phase = 2 * np.pi * (kx * x + ky * y) / size + rng.uniform(0, 2 * np.pi)
            out[i] += rng.standard_normal(3) * np.cos(phase)[..., None]
        if walls:
            out[i, ..., 2] = 4 * np.tanh(3 * out[i, ..., 2])
    return unit_normalize(out).astype(np.float32)


def _save_test_set(path, maps):
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f["spins"] = maps


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """OUT/type_{I,II}/{test.h5, x{4,8}/run_NAME/model.keras}: untrained residual unit nets
    (= aligned bicubic + unit normalization) at x4 and x8, and at x4 the paper's net trained
    on its own type (four maps, two epochs, seed 0: Net I and Net II start from the same
    weights). 64² maps: at x8 a 4×4 LR map leaves near-zero interpolated vectors whose direction
    is float noise."""
    import keras

    from conftest import run_training
    from spinsr_tf.nn.network import build_sr_model

    out = tmp_path_factory.mktemp("reproduce_tiny")
    keras.utils.set_random_seed(0)
    for k, kind in enumerate(("I", "II")):
        walls = kind == "II"
        _save_test_set(out / f"type_{kind}" / "test.h5", _maps(2, 64, k, walls=walls))
        _save_test_set(out / f"type_{kind}" / "train.h5", _maps(4, 64, 10 + k, walls=walls))
        for scale in (4, 8):
            run = out / f"type_{kind}" / f"x{scale}" / "run_sr_residual_unit"
            run.mkdir(parents=True)
            build_sr_model(scale, residual=True, output="unit").save(run / "model.keras")
        run_training(out / f"type_{kind}" / "train.h5", out / f"type_{kind}" / "x4" / "run_sr",
                     scale=4, epochs=2, batch_size=4, val_fraction=0.0, seed=0,
                     jit_compile=False)
    return out


@pytest.fixture()
def no_reproduce(monkeypatch):
    """cross_feed's call to reproduce() recorded instead of annealing and training."""
    calls = []
    monkeypatch.setattr("spinsr_tf.experiments.reproduce.reproduce",
                        lambda out, **kw: calls.append((out, kw)))
    return calls


def test_cross_feed_json_figure_and_values_on_untrained_nets(folder, no_reproduce):
    res = cross_feed(folder, preset="smoke", network="sr_residual_unit")
    assert no_reproduce[0][1]["types"] == ("I", "II") and no_reproduce[0][1]["preset"] == "smoke"
    saved = json.loads((folder / "cross_feeding_sr_residual_unit.json").read_text())
    assert (folder / "fig4_cross_feeding_sr_residual_unit.png").stat().st_size > 10000
    assert set(saved["scales"]) == {"4", "8"} and saved["network"] == "sr_residual_unit"
    for scale, r in saved["scales"].items():
        assert r["scale"] == int(scale) and r["n_images"] == {"I": 2, "II": 2}
        assert set(r["cases"]) == set(CASES)
        assert set(r["baselines"]["I"]) == {"gaussian", "bilinear", "bicubic", "bicubic_norm"}
        for label, (net, data) in CASES.items():
            c = r["cases"][label]
            assert (c["net"], c["data"]) == (net, data) and len(c["per_image"]["psnr"]) == 2
            # an untrained residual unit net is aligned bicubic + normalization, whoever trained it
            ref = r["baselines"][data]["bicubic_norm"]
            for m in ("mse", "psnr", "corr"):
                assert c[m] == pytest.approx(ref[m], rel=1e-3, abs=1e-5)
    # and against a NumPy reference computed here
    hr = {k: np.asarray(h5py.File(folder / f"type_{k}" / "test.h5")["spins"]) for k in ("I", "II")}
    sr = upsample(gaussian_downsample(hr["II"], 8), 8, "bicubic", normalize=True)
    np.testing.assert_allclose(res["scales"]["8"]["cases"]["Net I (Type II)"]["per_image"]["corr"],
                               corr(sr, hr["II"]), atol=1e-4)
    assert saved["ordering"] == json.loads(json.dumps(ordering(res)))


def test_cross_feed_paper_network_differs_per_training_type(folder, no_reproduce):
    """Net I and Net II are the paper's network trained alike from the same weights, each on its
    own type: every case is the named network on the named data, and the two networks, told
    apart only by their training data, score differently on the same maps (measured at x4:
    0.5 vs 3.0 dB on Type I, 4.9 vs 7.0 dB on Type II)."""
    from spinsr_tf.evaluation.scoring import predict_sr
    from spinsr_tf.nn.network import load_sr_model

    configs = [json.loads((folder / f"type_{k}" / "x4" / "run_sr" / "config.json").read_text())
               for k in ("I", "II")]
    assert [{k: v for k, v in c.items() if k not in ("data", "run")} for c in configs] == \
        [{k: v for k, v in configs[0].items() if k not in ("data", "run")}] * 2
    res = cross_feed(folder, scales=(4,), network="sr")
    cases = res["scales"]["4"]["cases"]
    hr = {k: np.asarray(h5py.File(folder / f"type_{k}" / "test.h5")["spins"]) for k in ("I", "II")}
    nets = {k: load_sr_model(folder / f"type_{k}" / "x4" / "run_sr" / "model.keras")
            for k in ("I", "II")}
    for label, (net, data) in CASES.items():
        ref = psnr(predict_sr(nets[net], gaussian_downsample(hr[data], 4)), hr[data])
        np.testing.assert_allclose(cases[label]["per_image"]["psnr"], ref, rtol=1e-4,
                                   err_msg=label)
    for data in ("I", "II"):
        gap = cases[f"Net II (Type {data})"]["psnr"] - cases[f"Net I (Type {data})"]["psnr"]
        assert abs(gap) > 1.0, (data, gap)
    assert (folder / "cross_feeding_sr.json").exists()


def _fake(psnrs, base):
    cases = {label: {"net": n, "data": d, "psnr": psnrs[label],
                     "mse": 4 / 10 ** (psnrs[label] / 10), "corr": 0.9}
             for label, (n, d) in CASES.items()}
    baselines = {k: {"bicubic": {"psnr": base[k], "mse": 4 / 10 ** (base[k] / 10), "corr": 0.8},
                     "bilinear": {"psnr": base[k] - 5, "mse": 1.0, "corr": 0.7}}
                 for k in ("I", "II")}
    return {"scales": {"4": {"scale": 4, "cases": cases, "baselines": baselines}}}


def test_ordering_against_the_paper():
    paper_like = dict(zip(PAPER_ORDER, (40.0, 35.0, 30.0, 25.0)))
    row = ordering(_fake(paper_like, {"I": 28.0, "II": 20.0}))["4"]
    assert row["order"] == list(PAPER_ORDER) and row["matches_paper"]
    assert row["best_interpolation"] == {"I": "bicubic", "II": "bicubic"}
    assert row["beats_interpolation"] == {label: True for label in CASES}
    by_mse = ordering(_fake(paper_like, {"I": 28.0, "II": 20.0}), metric="mse")["4"]
    assert by_mse["order"] == list(PAPER_ORDER)
    swapped = dict(paper_like, **{"Net I (Type I)": 45.0})
    row = ordering(_fake(swapped, {"I": 50.0, "II": 20.0}))["4"]
    assert row["order"][0] == "Net I (Type I)" and not row["matches_paper"]
    assert not row["beats_interpolation"]["Net I (Type I)"]
    assert not row["beats_interpolation"]["Net II (Type I)"]
    assert row["beats_interpolation"]["Net I (Type II)"]
    assert "x4" in format_ordering(_fake(paper_like, {"I": 1.0, "II": 1.0}))
    with pytest.raises(UserError, match="metric"):
        ordering(_fake(paper_like, {"I": 1.0, "II": 1.0}), metric="ssim")


def test_different_degradations_are_refused(tmp_path):
    from spinsr_tf.nn.network import build_sr_model

    hr = {"I": _maps(1, 32, 0), "II": _maps(1, 32, 1)}
    models = {"I": build_sr_model(4, residual=True, output="unit"),
              "II": build_sr_model(Degradation(4, 2.0), residual=True, output="unit")}
    with pytest.raises(UserError, match="share one degradation"):
        cross_scores(models, hr)
    models["II"] = build_sr_model(4, residual=True, output="unit")
    res = cross_scores(models, hr)
    assert "Net II (Type II)" in format_cross_table({"scales": {"4": res}, "network": "x"})


def test_cross_feed_bad_arguments(folder, no_reproduce):
    with pytest.raises(UserError, match="network"):
        cross_feed(folder, network="srgan")
    with pytest.raises(UserError, match="scales"):
        cross_feed(folder, scales=(16,))
    assert not no_reproduce


def test_cross_figure_legend_groups_and_caption(tmp_path, monkeypatch):
    """Fig. 4 bars: one row per scale, a legend of the three colours, a line between the two
    test sets, labelled MSE decades and a caption with the test-set sizes."""
    from spinsr_tf.data import render
    from spinsr_tf.experiments.cross_feeding import cross_figure

    kept, save = [], render.save_figure
    monkeypatch.setattr(render, "save_figure", lambda fig, path: (kept.append(fig),
                                                                  save(fig, path))[1])

    def scores(k):
        return {"mse": 0.012 * k, "psnr": 30.0 + k, "corr": 0.9 + 0.01 * k,
                "mse_std": 0.001, "psnr_std": 1.0, "corr_std": 0.01}

    res = {"cases": {label: {"net": net, "data": data, **scores(i + 1)}
                     for i, (label, (net, data)) in enumerate(CASES.items())},
           "baselines": {k: {"bicubic": scores(5), "bicubic_norm": scores(6)} for k in ("I", "II")},
           "n_images": {"I": 3, "II": 5},
           "degradation": {"factor": 4, "sigma": 1.0, "pixel": "sample", "padding": "periodic"}}
    path = cross_figure({"scales": {"4": res, "8": res}}, tmp_path / "fig4.png", title="t")
    assert path.stat().st_size > 10000
    fig = kept[0]
    assert len(fig.axes) == 6 and len(fig.legends[0].get_texts()) == 3
    assert all(len(ax.lines) >= 1 for ax in fig.axes)   # the Type I / Type II separator
    mse = fig.axes[0]
    assert mse.get_xscale() == "log" and mse.get_xlim()[0] < 0.012
    assert any(t.get_text() for t in mse.get_xticklabels())
    assert any("3 Type I and 5 Type II" in t.get_text() for t in fig.texts)
