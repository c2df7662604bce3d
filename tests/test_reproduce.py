"""The reproduction pipeline: verdicts, the CLI, a tiny reproduction whose numbers are checked
against its own files, and (slow) all five notebooks executed at `smoke`."""

import ast
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from spinsr_tf.cli import main
from spinsr_tf.experiments.presets import NETWORKS, PRESETS, SCALES, Preset
from spinsr_tf.experiments.reproduce import reproduce, verdict
from conftest import fingerprint

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"

#: One Type I reproduction in seconds: 4 + 2 maps of 32², one network, one step per setting
#: (no validation split, one full batch: the training step is traced once).
TINY = Preset(size=32, n_train=4, n_test=2, epochs=1, batch_size=4, sweeps=20, jit_compile=False)
TINY_NETWORKS = {"sr_residual_unit": {**NETWORKS["sr_residual_unit"],
                                      "fields": {"val_fraction": 0.0}}}


def saved_state(run_dir):
    """The weights of ``RUN/model.keras`` and the optimizer steps of ``RUN/checkpoint.keras``:
    what a retraining would change, however the files were rewritten."""
    import keras

    from spinsr_tf.nn.network import load_sr_model

    checkpoint = keras.saving.load_model(run_dir / "checkpoint.keras", compile=True,
                                         safe_mode=True)
    return (load_sr_model(run_dir / "model.keras", compile=False).get_weights(),
            int(keras.ops.convert_to_numpy(checkpoint.optimizer.iterations)))


def assert_same_state(a, b):
    (wa, sa), (wb, sb) = a, b
    assert sa == sb, f"optimizer steps {sa} != {sb}"
    assert len(wa) == len(wb)
    for x, y in zip(wa, wb):
        np.testing.assert_array_equal(x, y)


def _result(**psnr_corr_mse):
    return {"methods": {name: {"psnr": p, "corr": c, "mse": m}
                        for name, (p, c, m) in psnr_corr_mse.items()}}


def test_verdict_compares_the_best_network_with_the_best_aligned_baseline():
    result = _result(bicubic=(30, 0.95, 0.004), bicubic_norm=(35, 0.99, 0.0013),
                     bicubic_resize=(40, 0.999, 0.0004),     # not aligned: not a competitor
                     sr=(20, 1.5, 0.04),                     # Corr > 1: no win
                     sr_residual_unit=(37, 0.98, 0.0008),
                     oracle=(60, 1.0, 1e-6))                 # supervised: never competes
    v = verdict(result)
    assert v["psnr"] == {"network": "sr_residual_unit", "value": 37, "baseline": "bicubic_norm",
                         "baseline_value": 35, "wins": True}
    assert v["mse"]["wins"] and v["mse"]["network"] == "sr_residual_unit"
    assert v["corr"]["network"] == "sr_residual_unit" and not v["corr"]["wins"]
    assert v["corr"]["baseline"] == "bicubic_norm"


def test_reproduce_cli_bad_arguments(tmp_path, capsys):
    for args, message in [(["--preset", "huge"], "invalid choice"),
                          (["--seed", "-1"], "--seed must be >= 0"),
                          (["--type", "III"], "invalid choice")]:
        try:
            code = main(["reproduce", "--out", str(tmp_path / "r"), *args])
        except SystemExit as exc:  # argparse's own errors
            code = exc.code
        assert code == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "r").exists()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A finished tiny Type I reproduction (read it; copy it before writing)."""
    out = tmp_path_factory.mktemp("tiny") / "reproduce"
    return out, reproduce(out, preset=TINY, types=("I",), networks=TINY_NETWORKS, progress=False)


def test_tiny_reproduction_scores_are_those_of_its_files(tiny):
    """Each row is recomputed here from test.h5 and the saved networks; the residual network,
    one step away from aligned bicubic + normalization, stays near it (measured within 0.2 dB),
    about 23 dB (x4) and 9 dB (x8) above the block-centre baseline where a skip misaligned by
    half a block would put it."""
    from spinsr_tf.data.degradation import gaussian_downsample
    from spinsr_tf.data.generate import read_spins
    from spinsr_tf.evaluation.baselines import BASELINES
    from spinsr_tf.evaluation.metrics import corr, psnr
    from spinsr_tf.evaluation.scoring import predict_sr
    from spinsr_tf.nn.network import load_sr_model

    out, summary = tiny
    assert set(summary["settings"]) == {"type_I_x4", "type_I_x8"}
    assert summary == json.loads((out / "results.json").read_text())
    hr = read_spins(out / "type_I" / "test.h5")
    assert hr.shape == (2, 32, 32, 3)
    for scale in SCALES["I"]:
        result = summary["settings"][f"type_I_x{scale}"]
        assert result["scale"] == scale and result["n_images"] == TINY.n_test
        methods = result["methods"]
        lr = gaussian_downsample(hr, scale)
        for name in ("bicubic_norm", "bicubic_resize_norm", "gaussian"):
            np.testing.assert_allclose(methods[name]["per_image"]["psnr"],
                                       psnr(BASELINES[name](lr, scale), hr), rtol=1e-6)
        run = out / "type_I" / f"x{scale}" / "run_sr_residual_unit"
        sr = predict_sr(load_sr_model(run / "model.keras"), lr)
        net = methods["sr_residual_unit"]
        np.testing.assert_allclose(net["per_image"]["psnr"], psnr(sr, hr), rtol=1e-5)
        np.testing.assert_allclose(net["per_image"]["corr"], corr(sr, hr), rtol=1e-5)
        assert abs(net["psnr"] - methods["bicubic_norm"]["psnr"]) < 2.0
        assert net["psnr"] > methods["bicubic_resize_norm"]["psnr"] + 5.0
        assert json.loads((run / "config.json").read_text())["epochs"] == 1
        assert (out / "type_I" / f"x{scale}" / "figure.png").stat().st_size > 1000
    table = (out / "table1.md").read_text()
    assert "Type I, x4" in table and "Type I, x8" in table and "best aligned baseline" in table
    v = verdict(summary["settings"]["type_I_x4"])
    assert v["psnr"]["network"] == "sr_residual_unit" and v["psnr"]["baseline"] == "bicubic_norm"


def test_a_rerun_reuses_everything_and_rescoring_retrains_nothing(tiny, tmp_path):
    src, summary = tiny
    out = tmp_path / "reproduce"
    shutil.copytree(src, out)
    before = fingerprint(out)
    again = reproduce(out, preset=TINY, types=("I",), networks=TINY_NETWORKS, progress=False)
    assert again["settings"] == summary["settings"]
    after = fingerprint(out)
    # only the summary and the table are written again, with the same content
    assert set(after) == set(before)
    assert {k for k in before if before[k] != after[k]} <= {"results.json", "table1.md"}
    assert all(before[k][2] == after[k][2] for k in before)
    # without a setting's cached scores it is scored again from the saved networks
    run = out / "type_I" / "x8" / "run_sr_residual_unit"
    state = saved_state(run)
    (out / "type_I" / "x8" / "results.json").unlink()
    rescored = reproduce(out, preset=TINY, types=("I",), networks=TINY_NETWORKS,
                         progress=False)
    data = fingerprint(out, (".h5",))
    assert data == {k: v for k, v in before.items() if k in data}
    assert_same_state(saved_state(run), state)
    x8 = rescored["settings"]["type_I_x8"]["methods"]
    for name, row in summary["settings"]["type_I_x8"]["methods"].items():
        assert x8[name]["psnr"] == pytest.approx(row["psnr"], rel=1e-6), name


def _code_cells(notebook: Path):
    cells = json.loads(notebook.read_text())["cells"]
    return ["".join(c["source"]) if isinstance(c["source"], list) else c["source"]
            for c in cells if c["cell_type"] == "code"]


def test_notebooks_call_the_library_as_it_is():
    """What the notebooks import from spinsr_tf exists, and every call of it binds to the
    function's signature (the notebooks themselves run, slowly, in the test below)."""
    import importlib
    import inspect

    names = sorted(NOTEBOOKS.glob("*.ipynb"))
    assert len(names) == 5
    for notebook in names:
        tree = ast.parse("\n".join(_code_cells(notebook)))
        imported = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module.startswith("spinsr_tf"):
                module = importlib.import_module(node.module)
                for alias in node.names:
                    assert hasattr(module, alias.name), (notebook.name, node.module, alias.name)
                    imported[alias.asname or alias.name] = getattr(module, alias.name)
        assert imported, notebook.name
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
                 and isinstance(n.func, ast.Name) and n.func.id in imported]
        assert calls, notebook.name
        for call in calls:
            fn = imported[call.func.id]
            if not callable(fn) or inspect.isclass(fn):
                continue
            args = [None] * len(call.args)
            kwargs = {k.arg: None for k in call.keywords if k.arg is not None}
            try:
                inspect.signature(fn).bind(*args, **kwargs)
            except TypeError as exc:
                pytest.fail(f"{notebook.name}: {call.func.id}(...) does not bind: {exc}")


def _execute(notebook: Path, cwd: Path) -> None:
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(notebook, as_version=4)
    nbclient.NotebookClient(nb, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(cwd)}}).execute()


@pytest.mark.slow
def test_table_notebooks_run_at_smoke_and_a_rerun_reuses_everything(tmp_path):
    """Both notebooks, as shipped (preset smoke), into one folder: five settings, two tables;
    then the figure notebooks on the same folder. The default suite covers the same pipeline on
    the tiny preset above; this runs the notebooks themselves, end to end."""
    from spinsr_tf.data.degradation import gaussian_downsample
    from spinsr_tf.data.generate import read_spins
    from spinsr_tf.evaluation.baselines import BASELINES
    from spinsr_tf.evaluation.metrics import psnr

    env = {"TF_CPP_MIN_LOG_LEVEL": "2"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        for name in ("table1_fig2_type_I.ipynb", "table2_fig3_type_II.ipynb"):
            _execute(NOTEBOOKS / name, tmp_path)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
    out = tmp_path / "reproduce_smoke"
    summary = json.loads((out / "results.json").read_text())
    expected = {f"type_{t}_x{s}" for t, scales in SCALES.items() for s in scales}
    assert set(summary["settings"]) == expected
    for key, result in summary["settings"].items():
        kind, scale = key.split("_")[1], int(key.split("x")[-1])
        assert result["scale"] == scale and result["n_images"] == PRESETS["smoke"].n_test
        methods = result["methods"]
        assert {"sr", "sr_norm", "sr_residual_unit", "sr_equivariant", "oracle", "bicubic",
                "bicubic_resize", "bicubic_norm"} <= set(methods)
        hr = read_spins(out / f"type_{kind}" / "test.h5")
        lr = gaussian_downsample(hr, scale)
        np.testing.assert_allclose(methods["bicubic_norm"]["per_image"]["psnr"],
                                   psnr(BASELINES["bicubic_norm"](lr, scale), hr), rtol=1e-6)
        # the residual networks start at aligned bicubic + normalization; two epochs on 8 maps
        # move them off it (measured at x4: Type I 41.4 / 39.8 dB against 45.4, Type II 45.3 /
        # 47.5 against 55.7), but they stay above the block-centre baselines (29.2, 38.3 dB),
        # which is where a skip misaligned by half a block would put them (SPEC §3)
        for net in ("sr_residual_unit", "sr_equivariant"):
            if scale == 4:
                assert methods[net]["psnr"] > methods["bicubic_resize_norm"]["psnr"] + 5.0, \
                    (key, net, methods[net]["psnr"], methods["bicubic_resize_norm"]["psnr"])
        assert (out / f"type_{kind}" / f"x{scale}" / "figure.png").stat().st_size > 1000
    table1, table2 = (out / "table1.md").read_text(), (out / "table2.md").read_text()
    assert "Type I, x8" in table1 and "Type II, x16" in table2 and "oracle" in table2
    assert "best aligned baseline" in table1

    stamps = fingerprint(out, (".keras", ".h5"))
    again = reproduce(out, preset="smoke", types=("I", "II"), progress=False)
    assert again["settings"] == summary["settings"]
    assert stamps == fingerprint(out, (".keras", ".h5"))

    # Figs. 4-6 reuse the trained networks of the same folder; Fig. 7 makes its own images
    os.environ.update(env)
    try:
        for name in ("fig4_cross_feeding.ipynb", "fig5_6_noise.ipynb",
                     "fig7_microscope_images.ipynb"):
            _execute(NOTEBOOKS / name, tmp_path)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
    assert stamps == fingerprint(out, (".keras", ".h5"))     # nothing retrained
    for net in ("sr_equivariant", "sr"):
        cross = json.loads((out / f"cross_feeding_{net}.json").read_text())
        assert cross and (out / f"fig4_cross_feeding_{net}.png").stat().st_size > 1000
        x4 = cross["scales"]["4"]["cases"]
        assert x4["Net I (Type I)"]["psnr"] == pytest.approx(
            summary["settings"]["type_I_x4"]["methods"][net]["psnr"], rel=1e-4)
    for kind, fig in (("I", "fig5_noise_type_I"), ("II", "fig6_noise_type_II")):
        noise = json.loads((out / f"noise_type_{kind}_sr_equivariant.json").read_text())
        assert noise["alphas"][0] == 0.0 and noise["peak_corr"][0] > noise["peak_corr"][-1]
        assert (out / f"{fig}_sr_equivariant.png").stat().st_size > 1000
    assert any((tmp_path / "fig7_smoke").rglob("*.png"))


def _captured_figure(monkeypatch):
    """Keep the matplotlib figure ``comparison_panel`` saves (it is still written)."""
    from spinsr_tf.data import render

    kept, save = [], render.save_figure
    monkeypatch.setattr(render, "save_figure", lambda fig, path: (kept.append(fig),
                                                                  save(fig, path))[1])
    return kept


def test_comparison_figure_shows_the_scores_of_the_result_and_an_error_row(tmp_path,
                                                                         monkeypatch):
    from spinsr_tf.evaluation.scoring import evaluate
    from spinsr_tf.experiments.reproduce import comparison_figure

    rng = np.random.default_rng(0)
    hr = rng.normal(size=(2, 16, 16, 3)).astype(np.float32)
    hr /= np.linalg.norm(hr, axis=-1, keepdims=True)
    result = evaluate(hr, {}, degradation=4)
    best = verdict(result, metrics=("psnr",))["psnr"]["baseline"]
    kept = _captured_figure(monkeypatch)
    path = comparison_figure({}, hr, result["degradation"], tmp_path / "figure.png",
                             title="Type I", result=result, index=1)
    assert path.stat().st_size > 1000
    titles = [ax.get_title() for ax in kept[0].axes if ax.get_title()]
    per = result["methods"][best]["per_image"]
    assert titles[:3] == ["LR input", f"{best}\nPSNR {per['psnr'][1]:.1f} dB, Corr "
                          f"{per['corr'][1]:.4f}", "ground truth"]
    labels = [ax.get_ylabel() for ax in kept[0].axes]
    assert "|map − truth|" in labels and "in-plane" in labels
    assert "x4" in kept[0].texts[-1].get_text() and "σ = 1" in kept[0].texts[-1].get_text()
