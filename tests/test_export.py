"""Export: the served SR map equals the Keras SR map, for any batch and size; --force replaces
a previous export only; the bioimage.io package passes bioimage.io's own validator and test run."""

import importlib.util
import json
import os
import sys
import zipfile
import tempfile
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from conftest import randomize_batchnorm

from spinsr_tf.cli import main
from spinsr_tf.base.errors import UserError
from spinsr_tf.nn.export import MARKER, export_saved_model, serving_model
from spinsr_tf.nn.network import build_sr_model, sr_submodel


def _model(input_size=None, seed=0):
    """A ×4 model with random weights and random BatchNorm statistics, so that inference mode
    (moving statistics) and training mode (batch statistics) give different SR maps."""
    tf.keras.utils.set_random_seed(seed)
    return randomize_batchnorm(build_sr_model(4, channels=3, input_size=input_size), seed)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    d = tmp_path_factory.mktemp("export")
    model = _model()
    model.save(d / "model.keras")
    return model, d


def test_saved_model_matches_keras_sr_output(saved):
    model, d = saved
    export_saved_model(d / "model.keras", d / "sm")
    served = tf.saved_model.load(str(d / "sm"))
    sr = sr_submodel(model)
    rng = np.random.default_rng(1)
    for shape in [(2, 8, 8, 3), (1, 6, 10, 3), (3, 5, 7, 3)]:
        x = rng.uniform(-1, 1, size=shape).astype(np.float32)
        got = served.serve(tf.constant(x)).numpy()
        want = sr(x, training=False).numpy()
        assert got.shape == (shape[0], shape[1] * 4, shape[2] * 4, 3)
        np.testing.assert_allclose(got, want, atol=1e-5)
    # the comparison is sensitive: batch statistics (training mode) give another map
    # (last, because a training-mode call also moves the BN statistics)
    assert np.max(np.abs(want - sr(x, training=True).numpy())) > 1e-3
    sig = served.signatures["serving_default"]
    out = list(sig(lr=tf.zeros((1, 4, 4, 3))).values())[0]
    assert out.shape == (1, 16, 16, 3)


def test_fixed_size_model_is_served_at_any_size(tmp_path):
    model = _model(input_size=8, seed=2)
    x = np.random.default_rng(3).uniform(-1, 1, size=(2, 8, 8, 3)).astype(np.float32)
    np.testing.assert_allclose(serving_model(model)(x, training=False),
                               sr_submodel(model)(x, training=False), atol=1e-6)
    served = tf.saved_model.load(str(export_saved_model(model, tmp_path / "sm")))
    assert served.serve(tf.zeros((1, 5, 6, 3))).shape == (1, 20, 24, 3)


def test_fixed_size_variant_is_served_as_the_same_variant(tmp_path):
    """The any-size rebuild keeps the variant (unit output, residual on aligned bicubic)."""
    tf.keras.utils.set_random_seed(4)
    model = build_sr_model(4, input_size=8, output="unit", residual=True)
    conv = model.get_layer("sr_conv")
    kernel, bias = conv.get_weights()
    conv.set_weights([np.random.default_rng(5).normal(0, 0.05, kernel.shape), bias])
    x = np.random.default_rng(6).uniform(-1, 1, size=(2, 8, 8, 3)).astype(np.float32)
    want = sr_submodel(model)(x, training=False).numpy()
    np.testing.assert_allclose(serving_model(model)(x, training=False), want, atol=1e-5)
    served = tf.saved_model.load(str(export_saved_model(model, tmp_path / "sm")))
    np.testing.assert_allclose(served.serve(tf.constant(x)).numpy(), want, atol=1e-5)


def test_overwrite_rules_and_atomicity(saved, tmp_path, capsys):
    model, d = saved
    out = tmp_path / "sm"
    out.mkdir()  # an existing empty folder is filled
    export_saved_model(model, out)
    assert (out / "saved_model.pb").is_file()
    first = (out / MARKER).stat().st_mtime_ns
    with pytest.raises(UserError, match="previous export"):
        export_saved_model(model, out)
    argv = ["export", "--model", str(d / "model.keras"), "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--force" in err
    assert (out / MARKER).stat().st_mtime_ns == first
    assert main(argv + ["--force"]) == 0
    assert (out / MARKER).stat().st_mtime_ns != first and (out / "saved_model.pb").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sm"]  # no temporary folders left


def test_cli_export_bad_inputs(tmp_path, capsys):
    (tmp_path / "fake.keras").write_text("not a zip")
    cases = [["--model", str(tmp_path / "missing.keras"), "--out", str(tmp_path / "a")],
             ["--model", str(tmp_path / "fake.keras"), "--out", str(tmp_path / "b")],
             ["--model", str(tmp_path / "fake.keras"), "--out", str(tmp_path / "no" / "c")]]
    for argv in cases:
        assert main(["export", *argv]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("spinsr-tf export: error:")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake.keras"]


# --- what --force may replace: a previous export, never a run folder or an input ---------------

def _snapshot(folder):
    """Every file under ``folder`` with its bytes and modification time."""
    return {p.relative_to(folder).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _one_line_error(capsys, *words):
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("spinsr-tf export: error:"), err
    for word in words:
        assert word in err, err
    return err


def test_force_never_replaces_a_run_folder_or_the_model(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    _model(seed=7).save(run / "model.keras")
    (run / "checkpoint.keras").write_bytes(b"checkpoint")
    (run / "history.csv").write_text("epoch,loss\n0,1.0\n")
    before = _snapshot(run)
    model = str(run / "model.keras")
    for out in (run, run / "model.keras", tmp_path):  # holds it, is it, holds its folder
        assert main(["export", "--model", model, "--out", str(out), "--force"]) == 2
        _one_line_error(capsys, "input")
    assert _snapshot(run) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_force_replaces_only_a_folder_holding_nothing_but_an_export(saved, tmp_path, capsys):
    model, d = saved
    other = tmp_path / "notes"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    argv = ["export", "--model", str(d / "model.keras"), "--force"]
    assert main(argv + ["--out", str(other)]) == 2
    _one_line_error(capsys, "never replaced")
    assert (other / "notes.txt").read_text() == "keep me"

    out = tmp_path / "sm"
    assert main(argv + ["--out", str(out)]) == 0
    marker = json.loads((out / MARKER).read_text())
    assert marker["format"] == "tensorflow_saved_model"
    (out / "README.txt").write_text("a note added to the export")  # no longer only an export
    assert main(argv + ["--out", str(out)]) == 2
    _one_line_error(capsys, "never replaced")
    assert (out / "README.txt").exists()


def test_output_folder_checked_before_the_model_is_read(tmp_path, capsys):
    """A missing or read-only parent is the one line, although the model would not load."""
    fake = tmp_path / "fake.keras"
    fake.write_text("not a model")
    assert main(["export", "--model", str(fake), "--out", str(tmp_path / "no" / "sm")]) == 2
    _one_line_error(capsys, "does not exist", str(tmp_path / "no"))
    read_only = tmp_path / "ro"
    read_only.mkdir()
    read_only.chmod(0o555)
    try:
        if os.access(read_only, os.W_OK):  # root writes anyway: take a folder nobody writes to
            read_only = Path("/sys")
            if not read_only.is_dir() or _writable(read_only):
                pytest.skip("no read-only folder to test with")
        for fmt, name in (("savedmodel", "sm"), ("bioimageio", "pkg.zip")):
            argv = ["export", "--model", str(fake), "--format", fmt,
                    "--out", str(read_only / name)]
            assert main(argv) == 2
            _one_line_error(capsys, "not writable")
    finally:
        (tmp_path / "ro").chmod(0o755)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake.keras", "ro"]
    assert sorted(p.name for p in (tmp_path / "ro").iterdir()) == []


def _writable(folder):
    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


# --- the bioimage.io package ------------------------------------------------------------------

needs_bioimageio = pytest.mark.skipif(
    importlib.util.find_spec("bioimageio.core") is None,
    reason="needs the bioimageio extra: pip install 'spinsr_tf[bioimageio]'")


def _scalar_run(d):
    """A fit-image-like run of a scalar (Sz contrast) ×4 model: RUN/train/ from one epoch of
    training, RUN/mapping.json with camera-like units (offset 1000, half-width 300, the 2 %
    percentile), and a results file with a row for the network and two baselines."""
    from conftest import run_training, smooth_unit_spins
    import h5py

    with h5py.File(d / "hr.h5", "w") as f:
        f["spins"] = smooth_unit_spins(4, 16, seed=3)[..., 2:]
    run = d / "fit"
    run_training(str(d / "hr.h5"), run / "train", scale=4, epochs=1, batch_size=4,
                 jit_compile=False, val_fraction=0.25)
    (run / "mapping.json").write_text(json.dumps({
        "kind": "percentile", "offset": 1000.0, "scale": 300.0, "percentile": 2.0,
        "unit_vectors": False, "constant": False}))
    row = {"mse": 0.1, "psnr": 15.0, "corr": 0.9}
    (d / "results.json").write_text(json.dumps({"n_images": 8, "methods": {
        "sr": {**row, "psnr": 21.5}, "bicubic": row, "bicubic_resize": {**row, "psnr": 30.0}}}))
    return run / "train" / "model.keras"


@needs_bioimageio
def test_bioimageio_package_passes_the_ecosystem_validator_and_test_run(tmp_path, capsys,
                                                                        monkeypatch):
    """bioimageio.spec's validation and bioimageio.core's test run (test input → the package's
    preprocessing → SavedModel → test output within 1e-3; then batch 1 and 2 at three sizes),
    on a test input in camera units, so a preprocessing unlike fit-image's mapping fails."""
    from bioimageio.core import test_model
    from bioimageio.spec import load_description

    model = _scalar_run(tmp_path)
    pkg = tmp_path / "model.zip"
    assert main(["export", "--model", str(model), "--format", "bioimageio", "--out", str(pkg),
                 "--results", str(tmp_path / "results.json"), "--author", "A. Researcher"]) == 0
    assert "wrote bioimage.io package" in capsys.readouterr().out

    descr = load_description(pkg, perform_io_checks=True)
    assert descr.validation_summary.status == "valid-format", descr.validation_summary.format()
    (tmp_path / "core").mkdir()
    monkeypatch.chdir(tmp_path / "core")  # bioimageio.core unzips the weights into the cwd
    summary = test_model(pkg)
    assert summary.status == "passed", summary.format_md()
    runs = [x.name for x in summary.details if x.status == "passed"]
    assert any("Reproduce test outputs" in n for n in runs)
    assert sum("inference for inputs with batch_size" in n for n in runs) == 6

    (ipt,), (out,) = descr.inputs, descr.outputs
    assert [str(a.id) for a in ipt.axes] == ["batch", "y", "x", "channel"]
    assert ipt.axes[1].size.min == 2 * 7 + 1  # 2·halo + 1 LR pixels: 4 convs + 2 up + 1
    assert out.axes[1].scale == 0.25 and str(out.axes[1].size.tensor_id) == "lr"
    assert out.axes[1].halo == 7 * 4
    assert [p.id for p in ipt.preprocessing][1:3] == ["scale_range", "scale_linear"]
    assert ipt.preprocessing[1].kwargs.min_percentile == 2.0
    assert ipt.preprocessing[1].kwargs.max_percentile == 98.0
    assert descr.weights.tensorflow_saved_model_bundle is not None
    assert str(descr.cite[0].doi) == "10.1038/s41598-023-38335-y"
    with zipfile.ZipFile(pkg) as z:
        names = set(z.namelist())
        card = z.read("README.md").decode()
        with z.open("test_input.npy") as f:
            test_input = np.load(f)
    assert test_input.shape == (1, 15, 15, 1) and 500 < test_input.mean() < 1500
    assert {"rdf.yaml", "README.md", "cover.png", "test_input.npy", "test_output.npy",
            "tf_saved_model_bundle.zip"} <= names
    for text in ("## Training data", "3 training and 1 validation maps, HR 16×16, LR 4×4",
                 "σ = 1 HR pixels (23×23 window)", "`lr_consistency` (weight = 1.0)",
                 "## Validation", "| sr | 0.1000 | 21.50 | 0.9000 |",
                 "bicubic (strongest aligned interpolation)", "2–98 percentile",
                 "https://doi.org/10.1038/s41598-023-38335-y"):
        assert text in card, text
    assert "bicubic_resize" not in card
    assert sorted(p.name for p in tmp_path.iterdir()) == ["core", "fit", "hr.h5", "model.zip",
                                                          "results.json"]


def test_bioimageio_value_mapping_is_fit_images(tmp_path):
    """The package's preprocessing, in NumPy, equals fit-image's mapping (scalar: percentile
    range → [−1, 1]; vectors: divided by the median length, then unit vectors)."""
    from spinsr_tf.inference.image_io import to_network, value_mapping
    from spinsr_tf.nn.bioimageio_export import _to_network, _unit_vectors_op, _value_mapping

    rng = np.random.default_rng(0)
    image = (1000 + 300 * rng.normal(size=(9, 11, 1))).astype(np.float32)
    want = to_network(image, value_mapping(image, percentile=3.0))
    got = _to_network(image[None], _value_mapping(1, None, 3.0))[0]
    np.testing.assert_allclose(got, want, atol=1e-5)
    vectors = (5 * rng.normal(size=(9, 11, 3))).astype(np.float32)
    mapping = value_mapping(vectors, unit_vectors=True)
    values = _value_mapping(3, mapping, None)
    assert values["kind"] == "fixed" and values["unit_vectors"]
    want = to_network(vectors, mapping)
    np.testing.assert_allclose(_to_network(vectors[None], values)[0], want, atol=1e-5)
    np.testing.assert_allclose(_unit_vectors_op(vectors / values["scale"]), want, atol=1e-5)
    # a run that estimated its saturation: inputs divided by the network's scale, the result
    # multiplied by the saturation (fit-image's result_mapping), whichever units it trained in
    for kind, scale in (("vector_length", 2.0), ("saturation", 2.5)):
        values = _value_mapping(3, {"kind": kind, "scale": scale, "result_scale": 2.5}, None)
        assert (values["kind"], values["scale"], values["output_scale"]) == ("fixed", scale, 2.5)
    assert _value_mapping(3, {"kind": "vector_length", "scale": 1.0}, None)["kind"] == "none"


@needs_bioimageio
def test_bioimageio_refusals_write_nothing(saved, tmp_path, capsys, monkeypatch):
    _, d = saved
    model = str(d / "model.keras")
    two = tmp_path / "two.keras"
    build_sr_model(4, channels=2).save(two)
    not_package = tmp_path / "other.zip"
    not_package.write_bytes(b"not a zip")
    old = tmp_path / "old.zip"
    with zipfile.ZipFile(old, "w") as z:
        z.writestr("rdf.yaml", "type: model\n")
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"methods": {"bicubic": {"psnr": 20.0}}}))
    before = _snapshot(tmp_path)
    cases = [
        (["--model", model, "--out", str(tmp_path / "pkg")], ".zip file"),
        (["--model", str(two), "--out", str(tmp_path / "a.zip")], "takes 2 channels"),
        (["--model", model, "--out", str(tmp_path / "b.zip"), "--percentile", "2"],
         "scalar (one-channel) models"),
        (["--model", model, "--out", str(not_package), "--force"], "never replaced"),
        (["--model", model, "--out", str(old)], "--force"),
        (["--model", model, "--out", str(tmp_path / "d.zip"), "--license", "free"], "SPDX"),
        (["--model", model, "--out", str(tmp_path / "e.zip"), "--name", "x/y"], "name must"),
        (["--model", model, "--out", str(tmp_path / "f.zip"), "--results", str(results)],
         "no row 'sr'"),
        # a previous package passes with --force: the missing model is what stops it
        (["--model", str(tmp_path / "missing.keras"), "--out", str(old), "--force"],
         "does not exist"),
    ]
    for argv, words in cases:
        assert main(["export", "--format", "bioimageio", *argv]) == 2, argv
        _one_line_error(capsys, words)
    assert main(["export", "--model", model, "--out", str(tmp_path / "sm"),
                 "--percentile", "2"]) == 2
    _one_line_error(capsys, "--format bioimageio only")
    monkeypatch.setitem(sys.modules, "bioimageio.spec", None)
    assert main(["export", "--format", "bioimageio", "--model", model,
                 "--out", str(tmp_path / "c.zip")]) == 2
    _one_line_error(capsys, "pip install 'spinsr_tf[bioimageio]'")
    assert _snapshot(tmp_path) == before
