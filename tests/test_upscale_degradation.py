"""The imaging model an input is served with: ``upscale --pixel/--sigma``, the input file's
record, a conditioned network told it (upscale, evaluate, export), a fixed one serving its own;
every refusal is one line, exit 2, nothing written."""

import importlib.util
import json

import h5py
import numpy as np
import pytest
from conftest import randomize_batchnorm

from spinsr_tf.base.errors import UserError
from spinsr_tf.cli import main
from spinsr_tf.data.degradation import Degradation
from spinsr_tf.data.degradation_generator import DegradationGenerator, condition_vector
from spinsr_tf.nn.config import TrainConfig
from spinsr_tf.nn.export import served_imaging, serving_model
from spinsr_tf.nn.network import build_sr_model, sr_submodel


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A fixed ×4 model (no run record) and a conditioned one whose config.json records the
    drawn range σ 0.5–3 HR px, both pixel models."""
    import keras

    d = tmp_path_factory.mktemp("models")
    keras.utils.set_random_seed(0)
    fixed = build_sr_model(4, 3)
    (d / "fixed").mkdir()
    fixed.save(d / "fixed" / "model.keras")
    keras.utils.set_random_seed(1)
    cond = build_sr_model(4, 3, conditioned=True)
    randomize_batchnorm(cond, 1)
    (d / "cond").mkdir()
    cond.save(d / "cond" / "model.keras")
    config = TrainConfig(data="train.h5", scale=4, conditioned=True,
                         degradations=DegradationGenerator(sigma=(0.5, 3.0)))
    (d / "cond" / "config.json").write_text(json.dumps(config.to_json()))
    return {"fixed": (d / "fixed" / "model.keras", fixed),
            "cond": (d / "cond" / "model.keras", cond)}


def smooth_spins(n, size, seed):
    """Unit-vector maps from a few low Fourier modes: smooth and periodic."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] * (2 * np.pi / size)
    comps = [np.cos(kx * x + ky * y + phase) + 0.3
             for kx, ky, phase in zip(rng.integers(-2, 3, size=3 * n),
                                      rng.integers(-2, 3, size=3 * n),
                                      rng.uniform(0, 2 * np.pi, size=3 * n))]
    m = np.stack(comps, axis=-1).reshape(size, size, n, 3).transpose(2, 0, 1, 3)
    return (m / np.linalg.norm(m, axis=-1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def lr_maps():
    return np.random.default_rng(2).uniform(-1, 1, size=(2, 8, 6, 3)).astype(np.float32)


def _told(model, x, degradation):
    """The conditioned network's SR maps, told ``degradation`` by hand."""
    inputs = {"lr_input": x, "degradation": np.tile(condition_vector(degradation), (len(x), 1))}
    return np.asarray(sr_submodel(model)(inputs, training=False))


def _upscale(capsys, *argv):
    code = main(["upscale", *map(str, argv)])
    return code, capsys.readouterr()


def _one_line_error(cap, *words):
    lines = cap.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in cap.err, cap.err
    for word in words:
        assert word in lines[0], (word, lines[0])


# -- the conditioned network is told the imaging -------------------------------------------------

def test_sigma_reaches_a_conditioned_network_and_not_a_fixed_one(models, lr_maps, tmp_path,
                                                                 capsys):
    np.save(tmp_path / "in.npy", lr_maps)
    path, cond = models["cond"]
    outs = {}
    for sigma in ("1.5", "2.5"):
        out = tmp_path / f"c{sigma}.npy"
        code, cap = _upscale(capsys, tmp_path / "in.npy", "--model", path, "--out", out,
                             "--pixel", "sample", "--sigma", sigma)
        assert code == 0 and cap.err == ""
        assert (f"told the network the imaging: point samples every 4 HR px, Gaussian σ "
                f"{sigma} HR px") in cap.out
        assert "by default" not in cap.out
        outs[sigma] = np.load(out)
        np.testing.assert_allclose(
            outs[sigma], _told(cond, lr_maps, Degradation(4, float(sigma), pixel="sample")),
            atol=1e-5)
        record = json.loads((tmp_path / f"c{sigma}.degradation.json").read_text())
        assert record["degradation"]["sigma"] == float(sigma)
        assert record["degradation"]["pixel"] == "sample"
        assert record["source"] == "stated" and record["warnings"] == []
    assert np.max(np.abs(outs["1.5"] - outs["2.5"])) > 1e-3

    # a fixed network inverts its own degradation whatever σ is stated
    path, fixed = models["fixed"]
    got = []
    for sigma in ("1", "2.5"):
        out = tmp_path / f"f{sigma}.npy"
        code, cap = _upscale(capsys, tmp_path / "in.npy", "--model", path, "--out", out,
                             "--sigma", sigma, "--single-pass")
        assert code == 0
        got.append(np.load(out))
    np.testing.assert_array_equal(got[0], got[1])
    np.testing.assert_allclose(got[0], sr_submodel(fixed)(lr_maps, training=False), atol=1e-5)


def test_conditioned_defaults_are_a_camera_image(models, lr_maps, tmp_path, capsys):
    """No record, no flags: camera pixels and the model's nominal σ (1 HR px), said so."""
    path, cond = models["cond"]
    np.save(tmp_path / "in.npy", lr_maps)
    code, cap = _upscale(capsys, tmp_path / "in.npy", "--model", path, "--out",
                         tmp_path / "out.npy")
    assert code == 0
    assert ("told the network the imaging: camera pixels of 4x4 HR px, Gaussian σ 1 HR px "
            "(pixel and sigma by default, for a camera image; state yours with "
            "--pixel/--sigma)") in cap.out
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"),
                               _told(cond, lr_maps, Degradation(4, 1.0, pixel="integrate")),
                               atol=1e-5)
    record = json.loads((tmp_path / "out.degradation.json").read_text())
    assert record["defaults"] == ["pixel", "sigma"] and record["conditioned"] is True


def test_sigma_outside_the_trained_range_is_a_recorded_warning(models, lr_maps, tmp_path,
                                                               capsys):
    path, _ = models["cond"]
    np.save(tmp_path / "in.npy", lr_maps)
    code, cap = _upscale(capsys, tmp_path / "in.npy", "--model", path, "--out",
                         tmp_path / "out.h5", "--sigma", "4")
    assert code == 0
    lines = cap.err.strip().splitlines()
    assert len(lines) == 1 and "warning" in lines[0]
    assert "σ 4 HR px is outside the range the model was trained on (0.5 to 3 HR px)" in lines[0]
    with h5py.File(tmp_path / "out.h5") as f:
        assert f.attrs["lr_degradation.sigma"] == 4.0
        assert f.attrs["lr_degradation.pixel"] == "integrate"
        assert f.attrs["lr_degradation.source"] == "stated"
        assert "outside the range" in json.loads(f.attrs["lr_degradation.warnings"])[0]
    # inside the range: no warning
    code, cap = _upscale(capsys, tmp_path / "in.npy", "--model", path, "--out",
                         tmp_path / "ok.h5", "--sigma", "3")
    assert code == 0 and cap.err == ""


# -- an input that records its degradation -------------------------------------------------------

def _recorded_h5(path, x, degradation):
    with h5py.File(path, "w") as f:
        f["lr"] = x
        for key, value in degradation.to_attrs().items():
            f.attrs[key] = value


def test_a_record_is_told_and_contradicting_flags_are_refused(models, lr_maps, tmp_path,
                                                              capsys):
    path, cond = models["cond"]
    camera = Degradation(4, 2.0, pixel="integrate")
    _recorded_h5(tmp_path / "in.h5", lr_maps, camera)
    code, cap = _upscale(capsys, tmp_path / "in.h5", "--model", path, "--out",
                         tmp_path / "out.h5")
    assert code == 0
    assert ("imaging as the input records: camera pixels of 4x4 HR px, Gaussian σ 2 HR px"
            in cap.out)
    with h5py.File(tmp_path / "out.h5") as f:
        np.testing.assert_allclose(f["sr"][()], _told(cond, lr_maps, camera), atol=1e-5)
        assert f.attrs["lr_degradation.source"] == "file"
        assert f.attrs["lr_degradation.sigma"] == 2.0
    # flags that agree are accepted; flags that contradict are one line, before the model
    assert _upscale(capsys, tmp_path / "in.h5", "--model", path, "--out", tmp_path / "o2.h5",
                    "--sigma", "2", "--pixel", "integrate")[0] == 0
    for flags, words in ((("--sigma", "1"), ("--sigma 1", "sigma=2")),
                         (("--pixel", "sample"), ("--pixel sample", "pixel=integrate"))):
        out = tmp_path / "bad.h5"
        code, cap = _upscale(capsys, tmp_path / "in.h5", "--model", path, "--out", out, *flags)
        assert code == 2 and not out.exists()
        _one_line_error(cap, "contradicts", *words)
    # a fixed network refuses the record of another degradation, as before
    code, cap = _upscale(capsys, tmp_path / "in.h5", "--model", models["fixed"][0], "--out",
                         tmp_path / "bad.h5")
    assert code == 2 and not (tmp_path / "bad.h5").exists()
    _one_line_error(cap, "sigma=2.0", "sigma=1.0")


# -- a fixed network serves its own ---------------------------------------------------------------

def test_fixed_model_says_what_it_assumed_and_warns_of_another_sigma(models, lr_maps, tmp_path,
                                                                     capsys):
    path, _ = models["fixed"]
    np.save(tmp_path / "in.npy", lr_maps)
    code, cap = _upscale(capsys, tmp_path / "in.npy", "--model", path, "--out",
                         tmp_path / "a.npy")
    assert code == 0 and cap.err == ""
    assert ("assumed the model's imaging: point samples every 4 HR px, Gaussian σ 1 HR px "
            "(state yours with --pixel/--sigma)") in cap.out
    assert json.loads((tmp_path / "a.degradation.json").read_text())["source"] == "model"
    code, cap = _upscale(capsys, tmp_path / "in.npy", "--model", path, "--out",
                         tmp_path / "b.npy", "--sigma", "2")
    assert code == 0
    lines = cap.err.strip().splitlines()
    assert len(lines) == 1 and "not the stated --sigma 2" in lines[0]
    record = json.loads((tmp_path / "b.degradation.json").read_text())
    assert record["degradation"]["sigma"] == 1.0 and "--sigma 2" in record["warnings"][0]


def test_ovf_output_records_the_imaging_in_its_header(models, lr_maps, tmp_path, capsys):
    path, _ = models["cond"]
    np.save(tmp_path / "in.npy", lr_maps[:1])
    code, _ = _upscale(capsys, tmp_path / "in.npy", "--model", path, "--out",
                       tmp_path / "out.ovf", "--sigma", "2")
    assert code == 0
    header = (tmp_path / "out.ovf").read_bytes().split(b"# Begin: Data")[0].decode()
    assert "LR imaging (stated): factor 4, sigma 2 HR px, pixel integrate" in header
    assert not (tmp_path / "out.degradation.json").exists()


def test_a_blurred_ovf_is_written_at_its_saturation(models, tmp_path, capsys):
    """A film in A/m behind σ 2 and 4×4 camera pixels: its median vector length reads Ms 28 %
    low, so the maps are divided by the saturation estimated under the stated imaging (within
    3 % of Ms) and the network's result multiplied by it; a simulation's own unblurred cells
    keep their median length (Ms)."""
    import re

    from conftest import vector_labyrinth

    from spinsr_tf.data.degradation import kernel_size_for
    from spinsr_tf.data.ovf import read_ovf, write_ovf

    path, _ = models["cond"]
    ms, hr = 5.8e5, vector_labyrinth(128)
    blurred = Degradation(4, 2.0, kernel_size_for(2.0), "integrate", "reflect").apply(
        hr[None], dtype=np.float64)[0] * ms
    assert np.median(np.linalg.norm(blurred, axis=-1)) < 0.8 * ms
    imaging = ("--pixel", "integrate", "--sigma", "2")
    for name, lr in (("blurred", blurred), ("cells", hr[::4, ::4] * ms)):
        write_ovf(tmp_path / f"{name}.ovf", lr, cellsize=(4e-9, 4e-9, 1e-9), valueunit="A/m")
        code, cap = _upscale(capsys, tmp_path / f"{name}.ovf", "--model", path, "--out",
                             tmp_path / f"{name}-sr.ovf", *imaging)
        assert code == 0, cap.err
        header = (tmp_path / f"{name}-sr.ovf").read_bytes().split(b"# Begin: Data")[0].decode()
        found = re.search(r"divided by the saturation ([0-9.e+]+)", cap.out)
        if name == "blurred":
            assert found and "divided by the saturation" in header
            divisor = float(found.group(1))
            assert divisor == pytest.approx(ms, rel=0.03)
        else:
            assert found is None and "saturation" not in header
            divisor = ms
        # the same maps in network units through a .npy: the OVF result is that times Ms
        np.save(tmp_path / f"{name}.npy", (lr / divisor).astype(np.float32))
        code, _ = _upscale(capsys, tmp_path / f"{name}.npy", "--model", path, "--out",
                           tmp_path / f"{name}-sr.npy", *imaging)
        sr, _ = read_ovf(tmp_path / f"{name}-sr.ovf", normalize=False)
        np.testing.assert_allclose(sr, np.load(tmp_path / f"{name}-sr.npy") * divisor,
                                   rtol=1e-4, atol=1e-4 * ms)


# -- refusals ----------------------------------------------------------------------------------

@pytest.mark.parametrize("flags,words", [
    (("--sigma", "0"), ("--sigma", "> 0")),
    (("--sigma", "-1"), ("--sigma", "> 0")),
    (("--sigma", "nan"), ("--sigma", "> 0")),
    (("--sigma", "wide"), ("--sigma",)),
    (("--pixel", "bayer"), ("--pixel", "bayer")),
])
def test_bad_flags_are_refused_before_the_model_loads(models, tmp_path, capsys, monkeypatch,
                                                      flags, words):
    from spinsr_tf.nn import network

    def no_load(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(network, "load_sr_model", no_load)
    np.save(tmp_path / "in.npy", np.full((1, 8, 8, 3), 0.5, np.float32))
    with pytest.raises(SystemExit) as exc:
        main(["upscale", str(tmp_path / "in.npy"), "--model", str(models["cond"][0]),
              "--out", str(tmp_path / "out.npy"), *flags])
    assert exc.value.code == 2
    _one_line_error(capsys.readouterr(), *words)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.npy"]


def test_a_pixel_model_a_fixed_network_cannot_serve_is_refused(models, tmp_path, capsys):
    np.save(tmp_path / "in.npy", np.full((1, 8, 8, 3), 0.5, np.float32))
    code, cap = _upscale(capsys, tmp_path / "in.npy", "--model", models["fixed"][0], "--out",
                         tmp_path / "out.npy", "--pixel", "integrate")
    assert code == 2
    _one_line_error(cap, "serves point samples every 4 HR px", "--pixel integrate", "fit-image")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.npy"]


def test_an_existing_record_file_is_not_replaced_without_force(models, tmp_path, capsys):
    np.save(tmp_path / "in.npy", np.full((1, 8, 8, 3), 0.5, np.float32))
    (tmp_path / "out.degradation.json").write_text("{}")
    code, cap = _upscale(capsys, tmp_path / "in.npy", "--model", models["fixed"][0], "--out",
                         tmp_path / "out.npy")
    assert code == 2 and not (tmp_path / "out.npy").exists()
    _one_line_error(cap, "out.degradation.json", "--force")
    assert _upscale(capsys, tmp_path / "in.npy", "--model", models["fixed"][0], "--out",
                    tmp_path / "out.npy", "--force")[0] == 0
    assert json.loads((tmp_path / "out.degradation.json").read_text())["source"] == "model"


def test_uncertainty_of_a_conditioned_model_is_refused(models, tmp_path, capsys):
    np.save(tmp_path / "in.npy", np.full((1, 8, 8, 3), 0.5, np.float32))
    code, cap = _upscale(capsys, tmp_path / "in.npy", "--model", models["cond"][0], "--out",
                         tmp_path / "out.npy", "--uncertainty")
    assert code == 2
    _one_line_error(cap, "--uncertainty", "conditioned")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.npy"]


def test_served_imaging_rules(models):
    fixed, cond = models["fixed"][1], models["cond"][1]
    trained = DegradationGenerator(sigma=(0.5, 3.0), pixel={"sample": 1.0, "integrate": 0.0})
    told = served_imaging(cond, pixel="integrate", sigma=1.0, trained=trained)
    assert told.warnings and "never trained on 'integrate' pixels" in told.warnings[0]
    with pytest.raises(UserError, match="sigma must be|--sigma"):
        served_imaging(cond, sigma=0.0)
    with pytest.raises(UserError, match="factor=8"):
        served_imaging(cond, recorded=Degradation(8))
    # a blind network (one input, trained across σ and both pixel models) serves them silently
    blind = served_imaging(fixed, pixel="integrate", sigma=2.0, trained=DegradationGenerator())
    assert blind.warnings == () and blind.degradation.pixel == "integrate"
    with pytest.raises(UserError, match="serving it needs one"):
        serving_model(cond)
    with pytest.raises(UserError, match="takes none"):
        serving_model(fixed, Degradation(4))


# -- evaluate and export -----------------------------------------------------------------------

def test_evaluate_tells_a_conditioned_network_the_test_degradation(models):
    from spinsr_tf.evaluation.metrics import psnr
    from spinsr_tf.evaluation.scoring import evaluate

    hr = smooth_spins(n=2, size=32, seed=3)
    cond, fixed = models["cond"][1], models["fixed"][1]
    camera = Degradation(4, 2.0, pixel="integrate")
    result = evaluate(hr, {"sr": cond}, degradation=camera)
    assert result["degradation"] == camera.to_dict()
    want = psnr(_told(cond, camera.apply(hr), camera), hr)
    np.testing.assert_allclose(result["methods"]["sr"]["per_image"]["psnr"], want, rtol=1e-5)
    # without a degradation: its nominal one (σ 1, point samples), told as such
    nominal = evaluate(hr, {"sr": cond})
    own = Degradation(4)
    np.testing.assert_allclose(nominal["methods"]["sr"]["per_image"]["psnr"],
                               psnr(_told(cond, own.apply(hr), own), hr), rtol=1e-5)
    with pytest.raises(UserError, match="inverts sigma=1.0"):
        evaluate(hr, {"sr": fixed}, degradation=camera)


def test_cli_evaluate_pixel_sigma(models, tmp_path, capsys):

    with h5py.File(tmp_path / "test.h5", "w") as f:
        f["spins"] = smooth_spins(n=2, size=32, seed=4)
    code = main(["evaluate", "--model", str(models["cond"][0]), "--data",
                 str(tmp_path / "test.h5"), "--pixel", "integrate", "--sigma", "2", "--quiet",
                 "--json", str(tmp_path / "r.json")])
    assert code == 0
    record = json.loads((tmp_path / "r.json").read_text())
    assert record["degradation"]["sigma"] == 2.0 and record["degradation"]["pixel"] == "integrate"
    capsys.readouterr()
    code = main(["evaluate", "--model", str(models["fixed"][0]), "--data",
                 str(tmp_path / "test.h5"), "--pixel", "integrate", "--quiet"])
    assert code == 2
    _one_line_error(capsys.readouterr(), "inverts pixel=sample")


def test_export_bakes_the_imaging_into_a_conditioned_network(models, lr_maps, tmp_path,
                                                            capsys):
    import tensorflow as tf

    from spinsr_tf.nn.export import MARKER

    path, cond = models["cond"]
    code = main(["export", "--model", str(path), "--out", str(tmp_path / "sm"),
                 "--pixel", "sample", "--sigma", "2"])
    cap = capsys.readouterr()
    assert code == 0 and "baked in the imaging: point samples every 4 HR px, Gaussian σ 2" in cap.out
    served = tf.saved_model.load(str(tmp_path / "sm"))
    np.testing.assert_allclose(served.serve(tf.constant(lr_maps)).numpy(),
                               _told(cond, lr_maps, Degradation(4, 2.0)), atol=1e-5)
    record = json.loads((tmp_path / "sm" / MARKER).read_text())["imaging"]
    assert record["degradation"]["sigma"] == 2.0 and record["conditioned"] is True
    # a fixed network refuses a pixel model it cannot serve, writing nothing
    code = main(["export", "--model", str(models["fixed"][0]), "--out", str(tmp_path / "f"),
                 "--pixel", "integrate"])
    assert code == 2 and not (tmp_path / "f").exists()
    _one_line_error(capsys.readouterr(), "fit-image")


@pytest.mark.skipif(importlib.util.find_spec("bioimageio.core") is None,
                    reason="needs the bioimageio extra: pip install 'spinsr_tf[bioimageio]'")
def test_bioimageio_package_of_a_conditioned_network_has_one_image_input(models, tmp_path,
                                                                         capsys, monkeypatch):
    """The package bakes the stated imaging in: one input tensor, what bioimage.io consumers
    feed; the validator and bioimageio.core's test run pass; the rdf and card state it."""
    import zipfile

    import yaml
    from bioimageio.core import test_model
    from bioimageio.spec import load_description

    path, cond = models["cond"]
    pkg = tmp_path / "cond.zip"
    assert main(["export", "--model", str(path), "--format", "bioimageio", "--out", str(pkg),
                 "--sigma", "2"]) == 0
    assert ("baked in the imaging: camera pixels of 4x4 HR px, Gaussian σ 2 HR px (pixel by "
            "default" in capsys.readouterr().out)
    descr = load_description(pkg, perform_io_checks=True)
    assert descr.validation_summary.status == "valid-format", descr.validation_summary.format()
    assert [str(t.id) for t in descr.inputs] == ["lr"]
    (tmp_path / "core").mkdir()
    monkeypatch.chdir(tmp_path / "core")  # bioimageio.core unzips the weights into the cwd
    assert test_model(pkg).status == "passed"
    with zipfile.ZipFile(pkg) as z:
        rdf = yaml.safe_load(z.read("rdf.yaml"))
        card = z.read("README.md").decode()
        with z.open("test_input.npy") as f:
            test_input = np.load(f)
        with z.open("test_output.npy") as f:
            test_output = np.load(f)
    camera = Degradation(4, 2.0, pixel="integrate")
    np.testing.assert_allclose(test_output, _told(cond, test_input, camera), atol=1e-5)
    imaging = rdf["config"]["spinsr_tf"]["imaging"]
    assert imaging["degradation"]["sigma"] == 2.0 and imaging["defaults"] == ["pixel"]
    assert "baked in" in rdf["description"]
    assert "trained across σ 0.5 to 3 HR pixels" in card
