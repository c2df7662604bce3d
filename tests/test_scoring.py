"""Evaluation: baselines and networks scored on the HR grid; the evaluate CLI; the quickstart."""

import json

import h5py
import numpy as np
import pytest

from spinsr_tf.evaluation.baselines import BASELINES, unit_normalize
from spinsr_tf.cli import main
from spinsr_tf.base.errors import UserError
from spinsr_tf.data.degradation import Degradation
from spinsr_tf.evaluation.scoring import evaluate, format_table, write_json
from spinsr_tf.nn.network import build_sr_model
from conftest import fingerprint


def smooth_spins(n=3, size=32, seed=0):
    """Unit-vector maps from a few low Fourier modes: smooth and periodic, like a relaxed texture."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] * (2 * np.pi / size)
    maps = []
    for _ in range(n):
        comps = []
        for _ in range(3):
            kx, ky = rng.integers(-2, 3, size=2)
            comps.append(np.cos(kx * x + ky * y + rng.uniform(0, 2 * np.pi)) + 0.3)
        m = np.stack(comps, axis=-1)
        maps.append(m / np.linalg.norm(m, axis=-1, keepdims=True))
    return np.asarray(maps, dtype=np.float32)


def test_baselines_only_result_structure_and_ordering():
    hr = smooth_spins()
    result = evaluate(hr, factor=4)
    assert result["scale"] == 4 and result["n_images"] == 3
    assert list(result["methods"]) == list(BASELINES)
    for m in result["methods"].values():
        assert set(m) == {"mse", "psnr", "corr", "mse_std", "psnr_std", "corr_std", "per_image"}
        assert len(m["per_image"]["psnr"]) == 3
        assert m["mse"] == pytest.approx(np.mean(m["per_image"]["mse"]))
    methods = result["methods"]
    # aligned interpolation of a smooth field beats the half-block-shifted resize convention
    assert methods["bicubic"]["psnr"] > methods["bicubic_resize"]["psnr"] + 5
    assert methods["bicubic_norm"]["corr"] > 0.99


def test_network_rows_and_degradation_read_from_the_model():
    """An untrained residual network is aligned bicubic of its LR input, so its rows, and the
    baselines', are known here: the LR maps must be made with the model's σ = 2 at ×4, not with
    the ``factor=8`` passed in (or the default σ = 1)."""
    from spinsr_tf.data.degradation import gaussian_downsample
    from spinsr_tf.data.interpolation import upsample
    from spinsr_tf.evaluation.metrics import corr, mse

    hr = smooth_spins(n=2, size=32)
    model = build_sr_model(Degradation(4, 2.0), residual=True)
    result = evaluate(hr, {"sr": model}, factor=8)  # the model's degradation wins over factor=8
    assert result["scale"] == 4 and result["degradation"]["sigma"] == 2.0
    methods = result["methods"]
    assert {"sr", "sr_norm"} <= set(methods)
    sr = upsample(gaussian_downsample(hr, 4, sigma=2.0), 4, "bicubic")
    for name, pred in (("sr", sr), ("sr_norm", unit_normalize(sr))):
        np.testing.assert_allclose(methods[name]["per_image"]["mse"], mse(pred, hr), rtol=1e-4)
        np.testing.assert_allclose(methods[name]["per_image"]["corr"], corr(pred, hr), rtol=1e-4)
    np.testing.assert_allclose(methods["bicubic"]["per_image"]["mse"], mse(sr, hr), rtol=1e-5)
    # the wide blur shortens the interpolated vectors; normalizing them restores Corr (measured
    # 0.72 -> 0.98)
    assert methods["sr_norm"]["corr"] > methods["sr"]["corr"] + 0.15
    # the default σ = 1 gives other LR maps, far outside the tolerance above
    other = upsample(gaussian_downsample(hr, 4, sigma=1.0), 4, "bicubic")
    assert np.all(np.abs(mse(other, hr) / mse(sr, hr) - 1) > 0.1)


def test_models_with_different_degradations_are_refused():
    with pytest.raises(UserError, match="degrades with"):
        evaluate(smooth_spins(n=1, size=32), {"sr": build_sr_model(4), "sr_8": build_sr_model(8)})


def test_bad_test_sets_are_refused():
    with pytest.raises(UserError, match="not divisible"):
        evaluate(smooth_spins(n=1, size=30), factor=4)
    with pytest.raises(UserError, match="channels"):
        evaluate(smooth_spins(n=1, size=32)[..., :1], {"sr": build_sr_model(4)})
    with pytest.raises(UserError, match=r"\(N, H, W, C\)"):
        evaluate(smooth_spins(n=1, size=32)[0], factor=4)


def test_unit_normalize():
    x = np.array([[[[3.0, 0, 4.0], [0, 0, 0]]]], dtype=np.float32)
    out = unit_normalize(x)
    np.testing.assert_allclose(out[0, 0, 0], [0.6, 0, 0.8], rtol=1e-6)
    np.testing.assert_array_equal(out[0, 0, 1], [0, 0, 0])


def test_json_is_strict_and_table_lists_every_method(tmp_path):
    hr = smooth_spins(n=1)
    hr_copy = hr.copy()
    result = evaluate(hr, factor=4)
    result["methods"]["exact"] = {"mse": 0.0, "psnr": float("inf"), "corr": 1.0, "mse_std": 0.0,
                                  "psnr_std": float("nan"), "corr_std": 0.0}
    path = write_json(result, tmp_path / "r.json")
    loaded = json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"non-strict {c}"))
    assert loaded["methods"]["exact"]["psnr"] == "inf"
    table = format_table(result)
    assert all(f"| {name} |" in table for name in result["methods"])
    np.testing.assert_array_equal(hr, hr_copy)  # inputs untouched


def test_table_puts_the_key_rows_first_defines_the_spread_and_keeps_every_number():
    from spinsr_tf.evaluation.baselines import ALIGNED_BASELINES
    from spinsr_tf.evaluation.scoring import key_rows

    result = evaluate(smooth_spins(n=3), factor=4)
    methods = result["methods"]
    rng = np.random.default_rng(0)
    for name in ("sr", "sr_norm", "sr_equivariant", "oracle"):
        methods[name] = {"mse": float(rng.uniform(1e-5, 1e-3)), "mse_std": 3e-5,
                         "psnr": 40.0, "psnr_std": 1.0, "corr": 0.9999, "corr_std": 1e-5}
    best = max(ALIGNED_BASELINES, key=lambda n: methods[n]["psnr"])   # brute force
    assert key_rows(result) == ["sr", "sr_equivariant", best, "oracle"]
    table = format_table(result)
    lines = table.splitlines()
    rows = [line for line in lines if line.startswith("| ") and not line.startswith("| method")]
    # the key rows, then the full table in the result's order
    assert [r.split(" | ")[0][2:] for r in rows] == key_rows(result) + list(methods)
    assert "± = standard deviation over the 3 test images" in lines[-1]
    for row in rows:   # every number is the result's, at the printed precision
        name, mse, psnr, corr = (cell.strip() for cell in row.strip("|").split("|"))
        m = methods[name]
        for cell, mean, std in ((mse, m["mse"], m["mse_std"]), (psnr, m["psnr"], m["psnr_std"]),
                                (corr, m["corr"], m["corr_std"])):
            shown_mean, shown_std = (float(v) for v in cell.split(" ± "))
            assert shown_mean == pytest.approx(mean, rel=6e-3, abs=6e-5)
            assert shown_std == pytest.approx(std, rel=6e-3, abs=6e-5)
        assert "e-" in mse   # small MSEs keep their digits: 2.1e-04, not 0.0002
    # no network and no oracle: no key rows, the full table alone
    del methods["sr"], methods["sr_norm"], methods["sr_equivariant"], methods["oracle"]
    assert key_rows(result) == [] and format_table(result).count("| method |") == 1


def _write_spins(path, spins):
    with h5py.File(path, "w") as f:
        f["spins"] = spins


def test_evaluate_cli(tmp_path, capsys):
    model_path = tmp_path / "model.keras"
    build_sr_model(4).save(model_path)
    data = tmp_path / "test.h5"
    _write_spins(data, smooth_spins(n=2, size=32))
    out = tmp_path / "r.json"
    assert main(["evaluate", "--model", str(model_path), "--data", str(data), "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["scale"] == 4 and result["n_images"] == 2 and "sr" in result["methods"]
    assert "| bicubic |" in capsys.readouterr().out


def test_evaluate_cli_refuses_other_scale_and_notes_other_lattice_size(tmp_path, capsys):
    model_path = tmp_path / "model.keras"
    build_sr_model(4).save(model_path)
    (tmp_path / "config.json").write_text(json.dumps({"run": {"hr_size": [64, 64]}}))
    data = tmp_path / "test.h5"
    _write_spins(data, smooth_spins(n=1, size=32))
    argv = ["evaluate", "--model", str(model_path), "--data", str(data), "--quiet"]
    assert main(argv + ["--scale", "8"]) == 2
    err = capsys.readouterr().err.strip()
    assert "is a x4 model, not x8" in err and len(err.splitlines()) == 1
    # another lattice size is scored, as upscale serves it, with one warning line
    assert main(argv) == 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("spinsr-tf: warning:")
    assert "trained on 64x64 lattices and the test set has 32x32" in err
    assert main(argv + ["--any-size", "--scale", "4"]) == 0
    assert capsys.readouterr().err == ""


def test_evaluate_reads_the_lattice_size_a_real_run_records(tmp_path, capsys):
    """The shipped models' config.json is what train writes: trained on 128² lattices, they are
    scored on 32² test lattices with a note unless --any-size."""
    data = tmp_path / "test.h5"
    _write_spins(data, smooth_spins(n=1, size=32))
    argv = ["evaluate", "--model", "pretrained:type-I-x4", "--data", str(data), "--quiet"]
    assert main(argv) == 0
    assert "trained on 128x128 lattices and the test set has 32x32" in capsys.readouterr().err
    assert main(argv + ["--any-size"]) == 0
    assert "lattices" not in capsys.readouterr().err


def test_evaluate_cli_bad_inputs(tmp_path, capsys):
    model_path = tmp_path / "model.keras"
    build_sr_model(4).save(model_path)
    no_spins = tmp_path / "lr_only.h5"
    with h5py.File(no_spins, "w") as f:
        f["lr"] = np.zeros((1, 8, 8, 3), np.float32)
    odd = tmp_path / "odd.h5"
    _write_spins(odd, smooth_spins(n=1, size=30))
    for args, message in [
        (["--data", str(no_spins)], "no dataset 'spins'"),
        (["--data", str(odd)], "not divisible"),
        (["--data", str(tmp_path / "missing.h5")], "does not exist"),
    ]:
        assert main(["evaluate", "--model", str(model_path), *args, "--json",
                     str(tmp_path / "r.json")]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1
        assert not (tmp_path / "r.json").exists()


def test_quickstart_end_to_end_and_rerun_reuses_steps(tmp_path):
    from spinsr_tf.data.degradation import gaussian_downsample
    from spinsr_tf.data.generate import read_spins
    from spinsr_tf.evaluation.metrics import psnr
    from spinsr_tf.evaluation.scoring import predict_sr
    from spinsr_tf.experiments.quickstart import quickstart
    from spinsr_tf.nn.network import load_sr_model

    out = tmp_path / "qs"
    kwargs = dict(n_train=4, n_test=2, size=16, epochs=1, batch_size=2, sweeps=20, progress=False,
                  jit_compile=False)
    result = quickstart(out, **kwargs)
    for name in ("train.h5", "test.h5", "results.json", "table.md", "figure.png", "run_sr/model.keras"):
        assert (out / name).exists(), name
    assert result["n_images"] == 2
    methods = result["methods"]
    assert {"sr", "sr_equivariant", "bicubic_norm"} <= set(methods)
    # the scores are those of the files: the test maps, degraded here, and the trained networks
    hr = read_spins(out / "test.h5")
    lr = gaussian_downsample(hr, 4)
    np.testing.assert_allclose(methods["bicubic_norm"]["per_image"]["psnr"],
                               psnr(BASELINES["bicubic_norm"](lr, 4), hr), rtol=1e-6)
    sr = predict_sr(load_sr_model(out / "run_sr_equivariant" / "model.keras"), lr)
    np.testing.assert_allclose(methods["sr_equivariant"]["per_image"]["psnr"], psnr(sr, hr),
                               rtol=1e-5)
    # the default recipe starts at aligned bicubic + normalization and one epoch keeps it there
    # (measured 37.7 dB, both), 27 dB above the block-centre baseline, where a skip misaligned
    # by half a block would put it
    equivariant, start = methods["sr_equivariant"]["psnr"], methods["bicubic_norm"]["psnr"]
    assert abs(equivariant - start) < 2.0
    assert equivariant > methods["bicubic_resize_norm"]["psnr"] + 5.0

    before = fingerprint(out)
    again = quickstart(out, **kwargs)
    after = fingerprint(out)
    # nothing annealed, trained or scored again: only the table is written, with the same text
    assert set(after) == set(before)
    assert {k for k in before if before[k] != after[k]} <= {"table.md"}
    assert all(before[k][2] == after[k][2] for k in before)
    assert again["methods"] == json.loads(json.dumps(methods))
    # (scoring again without retraining, when only the scores are gone, is run_setting's:
    # tests/test_reproduce.py)
