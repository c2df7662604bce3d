"""Training: the loss falls, HR maps never reach the weights, resume = uninterrupted run.

Data: 16 smooth random unit-vector maps of 32² (HR) → 8² LR at ×4, batch 4. Each run is a few
seconds, nearly all of it graph tracing.
"""

import csv
import importlib.util
import json

import h5py
import numpy as np
import pytest

from spinsr_tf.cli import main
from spinsr_tf.data import gaussian_downsample
from spinsr_tf.data.stream import BatchPlan, open_training_data, split_indices
from spinsr_tf.base.errors import UserError
from spinsr_tf.evaluation.metrics import mse
from spinsr_tf.nn.network import load_sr_model, sr_submodel
from spinsr_tf.nn.config import TrainConfig
from spinsr_tf.nn.training import read_history
from conftest import REFERENCE_RUN, run_training, smooth_unit_spins

N, L, SCALE = 16, 32, 4
# jit_compile=False: XLA compilation would double the time of these tiny runs
RUN = REFERENCE_RUN


def _write(path, name, array, **attrs):
    with h5py.File(path, "w") as f:
        f.create_dataset(name, data=array, chunks=(1, *array.shape[1:]))
        for key, value in attrs.items():
            f.attrs[key] = value
    return path


def _weights(path):
    return load_sr_model(path).get_weights()


def _assert_same_weights(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


@pytest.fixture(scope="module")
def files(tmp_path_factory, reference_data):
    d = tmp_path_factory.mktemp("data")
    hr = smooth_unit_spins(N, L, seed=0)
    # B differs from A on every HR row 2 (mod 4) by a random unit vector: a 3-tap Gaussian
    # centred on rows 0 (mod 4) never reads those rows, so LR(A) == LR(B) bit for bit.
    other = smooth_unit_spins(N, L, seed=1)
    hr_b = hr.copy()
    hr_b[:, 2::4] = other[:, 2::4]
    lr23 = gaussian_downsample(hr, SCALE)
    return {
        "A": reference_data,        # hr, one map a chunk, the attributes of B (conftest.py)
        "B": _write(d / "b.h5", "spins", hr_b, seed=0, hamiltonian="test"),
        "L23": _write(d / "l23.h5", "lr", lr23, factor=SCALE, kernel_size=23, sigma=1.0,
                      padding="periodic"),
        "hr": hr, "hr_b": hr_b, "lr23": lr23,
    }


@pytest.fixture(scope="module")
def base_run(reference_run):
    """RUN on A, shared with the other files' tests (read-only: copy it to change it)."""
    return reference_run


# --- the data stream ------------------------------------------------------------------------

def test_split_and_plan_are_deterministic():
    train_idx, val_idx = split_indices(16, 0.125)
    np.testing.assert_array_equal(val_idx, [14, 15])
    assert split_indices(16, 0.01)[1].tolist() == [15] and len(split_indices(16, 0)[1]) == 0
    plan = BatchPlan(train_idx, 4, seed=3)
    assert plan.steps_per_epoch == 4
    epoch = np.concatenate([plan.batch(1, s) for s in range(4)])
    assert sorted(epoch.tolist()) == list(range(14)) and len(plan.batch(1, 3)) == 2
    np.testing.assert_array_equal(epoch, BatchPlan(train_idx, 4, seed=3).order(1))
    assert not np.array_equal(plan.order(0), plan.order(1))
    assert not np.array_equal(plan.order(1), BatchPlan(train_idx, 4, seed=4).order(1))


def test_stream_degrades_hr_like_the_reference(files):
    data = open_training_data(files["A"], SCALE)
    idx = [5, 2, 5]
    np.testing.assert_array_equal(data.lr(idx), files["lr23"][idx])
    np.testing.assert_array_equal(data.hr(idx), files["hr"][idx])
    assert data.lr_shape == (8, 8, 3) and data.n == N
    data.close()
    assert open_training_data(files["A"], SCALE, max_samples=5).n == 5


# --- a short run ---------------------------------------------------------------------------

def test_short_run_lowers_loss_and_writes_the_run_folder(base_run, files):
    out, history = base_run
    assert history["epoch"] == [0, 1, 2]
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    with open(out / "history.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["epoch"] for r in rows] == ["0", "1", "2"]
    assert {"loss", "val_loss", "val_sr_mse"} <= set(rows[0])
    for name in ("model.keras", "checkpoint.keras", "config.json"):
        assert (out / name).is_file()
    assert not (out / "checkpoint.json").exists()   # the checkpoint is one file
    if importlib.util.find_spec("tensorboard") is not None:  # optional: logs need the package
        assert any((out / "logs").rglob("events.out.tfevents*"))
    assert not list(out.glob(".*tmp*"))
    config = json.loads((out / "config.json").read_text())
    assert config["scale"] == 4 and config["learning_rate"] == 0.01 and config["seed"] == 3
    assert config["kernel_size"] == 23 and config["padding"] == "periodic"
    assert config["run"]["n_train"] == 14 and config["run"]["n_val"] == 2
    assert config["run"]["data_identity"]["hr"]["attrs"] == {"seed": 0, "hamiltonian": "test"}
    assert config["run"]["versions"]["spinsr_tf"]
    assert config["losses"] == [{"term": "lr_consistency", "weight": 1.0}]
    assert TrainConfig.from_json({k: v for k, v in config.items() if k != "run"}).to_json() \
        == {k: v for k, v in config.items() if k != "run"}


def test_val_sr_mse_is_the_sr_error_of_the_final_model(base_run, files):
    out, history = base_run
    sr = sr_submodel(load_sr_model(out / "model.keras")).predict(files["lr23"][14:], verbose=0)
    expected = mse(sr, files["hr"][14:]).mean()
    np.testing.assert_allclose(history["val_sr_mse"][-1], expected, rtol=1e-5)


# --- HR maps never reach the weights ---------------------------------------------------------

def test_lr_file_gives_the_weights_of_the_hr_file(base_run, files, tmp_path):
    """Training on HR maps degraded on the fly == training on the LR file made from them."""
    out, history = base_run
    hist_lr = run_training(files["L23"], tmp_path / "lr", hr_data=files["A"], **RUN)
    _assert_same_weights(_weights(tmp_path / "lr" / "model.keras"), _weights(out / "model.keras"))
    np.testing.assert_array_equal(hist_lr["loss"], history["loss"])
    np.testing.assert_allclose(hist_lr["val_sr_mse"], history["val_sr_mse"], rtol=1e-12)


@pytest.fixture(scope="module")
def kernel3_runs(files, tmp_path_factory):
    d = tmp_path_factory.mktemp("k3")
    run = {**RUN, "epochs": 2, "kernel_size": 3}
    return {name: run_training(files[name], d / name, **run) for name in ("A", "B")}, d


def test_weights_do_not_depend_on_hr_beyond_its_lr_image(files, kernel3_runs):
    """A and B differ on a quarter of their sites (by whole unit vectors) but have the same
    LR images. The HR maps are read (val_sr_mse differs), yet the weights are bit-identical:
    HR enters training only through its LR image."""
    lr_a = gaussian_downsample(files["hr"], SCALE, kernel_size=3)
    np.testing.assert_array_equal(gaussian_downsample(files["hr_b"], SCALE, kernel_size=3), lr_a)
    assert np.mean(np.any(files["hr"] != files["hr_b"], axis=-1)) == pytest.approx(0.25)
    hist, d = kernel3_runs
    _assert_same_weights(_weights(d / "A" / "model.keras"), _weights(d / "B" / "model.keras"))
    np.testing.assert_array_equal(hist["A"]["loss"], hist["B"]["loss"])
    assert all(abs(a - b) > 0.01 for a, b in zip(hist["A"]["val_sr_mse"], hist["B"]["val_sr_mse"]))


@pytest.mark.slow  # a control: it shows the test above can fail (two trainings)
def test_control_supervised_oracle_does_see_the_difference(files, tmp_path):
    """The same comparison with the HR maps in the loss (the oracle) gives other weights, so
    the previous test would catch HR leaking into the loss."""
    run = {**RUN, "epochs": 1, "kernel_size": 3, "supervised": True, "val_fraction": 0.0}
    for name in ("A", "B"):
        history = run_training(files[name], tmp_path / name, **run)
        assert sorted(history) == ["epoch", "loss"]  # no validation, no placeholder columns
    wa, wb = _weights(tmp_path / "A" / "model.keras"), _weights(tmp_path / "B" / "model.keras")
    assert max(np.max(np.abs(x - y)) for x, y in zip(wa, wb)) > 1e-3


# --- resume ------------------------------------------------------------------------------------

def test_resume_continues_to_the_same_weights(base_run, files, tmp_path, capsys):
    """Two epochs from the command line, then resumed to three from Python: same config (the
    CLI maps its flags onto the same arguments), same weights as the run that went through."""
    out = tmp_path / "run"
    argv = ["train", "--data", str(files["A"]), "--scale", "4", "--out", str(out), "--epochs",
            "2", "--batch-size", "4", "--val-fraction", "0.125", "--seed", "3", "--no-xla",
            "--network", "paper"]
    assert main(argv) == 0
    assert "model.keras after 2 epochs" in capsys.readouterr().out
    assert len(read_history(out)["epoch"]) == 2
    # the same command again continues the run (here: nothing left to do, and the finished
    # model file is left as it is); Python asks for it
    stamp = (out / "model.keras").stat().st_mtime_ns
    assert main(argv) == 0
    assert "model.keras after 2 epochs" in capsys.readouterr().out
    assert (out / "model.keras").stat().st_mtime_ns == stamp
    assert len(read_history(out)["epoch"]) == 2
    with pytest.raises(UserError, match="holds a run \\(2 epoch\\(s\\) done\\); pass resume=True"):
        run_training(files["A"], out, **RUN)
    with pytest.raises(UserError, match="learning_rate=0.01 \\(now 0.02\\)"):
        run_training(files["A"], out, resume=True, **{**RUN, "learning_rate": 0.02})
    with pytest.raises(UserError, match="seed=3 \\(now 4\\)"):
        run_training(files["A"], out, resume=True, **{**RUN, "seed": 4})
    with pytest.raises(UserError, match="has 2 epochs already"):
        run_training(files["A"], out, resume=True, **{**RUN, "epochs": 1})
    history = run_training(files["A"], out, resume=True, **RUN)
    assert history["epoch"] == [0, 1, 2]
    _assert_same_weights(_weights(out / "model.keras"), _weights(base_run[0] / "model.keras"))
    np.testing.assert_allclose(history["loss"], base_run[1]["loss"], rtol=1e-6)
    # nothing left to do: a second resume returns the same history
    assert run_training(files["A"], out, resume=True, **RUN) == history


@pytest.mark.slow
def test_xla_run_matches_graph_mode(base_run, files, tmp_path):
    """The default XLA-compiled step trains the same network as graph mode (to rounding)."""
    history = run_training(files["A"], tmp_path / "xla", **{**RUN, "jit_compile": True})
    assert json.loads((tmp_path / "xla" / "config.json").read_text())["jit_compile"] is True
    # same first epoch to rounding; then Adam's normalised steps let rounding differences grow
    np.testing.assert_allclose(history["loss"][0], base_run[1]["loss"][0], rtol=1e-5)
    np.testing.assert_allclose(history["loss"], base_run[1]["loss"], rtol=1e-2)


def test_variant_run_stores_its_options_and_resume_checks_them(files, tmp_path, capsys):
    """``--output unit --residual`` from the command line: stored in config.json, built into the
    model, and a resume with another variant is refused; runs written before the options existed
    resume as the paper's network."""
    from spinsr_tf.nn.layers import AlignedUpsample, UnitVectors

    out = tmp_path / "variant"
    argv = ["train", "--data", str(files["A"]), "--scale", "4", "--out", str(out), "--epochs",
            "1", "--batch-size", "4", "--val-fraction", "0.125", "--seed", "3", "--no-xla",
            "--quiet", "--network", "paper", "--output", "unit", "--residual"]
    assert main(argv) == 0
    capsys.readouterr()
    config = json.loads((out / "config.json").read_text())
    assert config["output"] == "unit" and config["residual"] is True
    model = load_sr_model(out / "model.keras")
    assert isinstance(model.get_layer("sr"), UnitVectors)
    assert isinstance(model.get_layer("sr_skip"), AlignedUpsample)
    sr = np.asarray(sr_submodel(model).predict(files["lr23"][:2], verbose=0))
    np.testing.assert_allclose(np.linalg.norm(sr, axis=-1), 1.0, atol=1e-5)
    with pytest.raises(UserError, match="output='unit' \\(now 'linear'\\)"):
        run_training(files["A"], out, resume=True, **{**RUN, "epochs": 2, "residual": True})
    with pytest.raises(UserError, match="residual=True \\(now False\\)"):
        run_training(files["A"], out, resume=True, **{**RUN, "epochs": 2, "output": "unit"})
    for bad, word in (({"output": "tanh"}, "output"), ({"residual": "yes"}, "residual")):
        with pytest.raises(UserError, match=word):
            run_training(files["A"], tmp_path / "never", **{**RUN, **bad})
    assert not (tmp_path / "never").exists()


# --- refusals -------------------------------------------------------------------------------

def test_bad_arguments_and_data(files, tmp_path):
    out = tmp_path / "never"
    cases = [
        (dict(data=files["L23"], scale=8), "scale 8 does not match the factor 4"),
        (dict(data=files["L23"], sigma=2.0), "sigma 2.0 does not match"),
        (dict(data=files["L23"], supervised=True), "needs HR maps"),
        (dict(data=files["A"], val_fraction=1.0), "val_fraction must be a finite number in"),
        (dict(data=files["A"], scale=3), "power of two"),
        (dict(data=files["A"], batch_size=0), "batch_size must be"),
        (dict(data=files["A"], learning_rate=-1.0), "learning_rate must be"),
        (dict(data=tmp_path / "missing.h5"), "does not exist"),
        (dict(data=files["A"], hr_data=files["B"]), "holds HR maps already"),
    ]
    for kwargs, message in cases:
        args = {**RUN, "epochs": 1, **kwargs}
        data = args.pop("data")
        with pytest.raises(UserError, match=message):
            run_training(data, out, **args)
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(UserError, match="cannot read HDF5"):
        run_training(tmp_path / "junk.h5", out, **RUN)
    _write(tmp_path / "other.h5", "maps", files["hr"])
    with pytest.raises(UserError, match="neither an 'lr' nor a 'spins'"):
        run_training(tmp_path / "other.h5", out, **RUN)
    assert not out.exists()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("x")
    with pytest.raises(UserError, match="not empty"):
        run_training(files["A"], tmp_path / "full", **RUN)


# --- command line -------------------------------------------------------------------------------

def test_cli_train_bad_input_exits_2(files, tmp_path, capsys):
    out = tmp_path / "cli"
    for extra in (["--data", str(files["L23"]), "--scale", "16"],
                  ["--data", str(tmp_path / "nope.h5"), "--scale", "4"]):
        assert main(["train", *extra, "--out", str(out), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("spinsr-tf train: error:")
    assert not out.exists()


def test_a_run_made_before_the_pixel_model_resumes(base_run, files, tmp_path):
    """config.json of runs made before camera pixels existed has no "pixel": such a run was
    point-sampled, and resumes as one (other differences are still refused)."""
    import shutil

    old = tmp_path / "old"
    shutil.copytree(base_run[0], old)
    record = json.loads((old / "config.json").read_text())
    assert record.pop("pixel") == "sample"
    (old / "config.json").write_text(json.dumps(record))
    history = run_training(files["A"], old, resume=True, **{**RUN, "epochs": RUN["epochs"] + 1})
    assert len(history["epoch"]) == RUN["epochs"] + 1
    with pytest.raises(UserError, match="pixel"):
        run_training(files["A"], old, resume=True, **{**RUN, "pixel": "integrate"})


def test_data_annealed_again_resumes_other_data_is_refused(base_run, files, tmp_path):
    """A data file written again with the same content (another ``created`` time, another
    place: annealed again on another machine) resumes the run; an attribute that says what
    the file holds, changed, is refused."""
    import shutil

    import h5py

    run = tmp_path / "run"
    shutil.copytree(base_run[0], run)
    again = tmp_path / "again.h5"
    shutil.copyfile(files["A"], again)
    with h5py.File(again, "a") as f:
        f.attrs["created"] = "2031-01-01T00:00:00+0000"
    first = json.loads((run / "config.json").read_text())["run"]
    history = run_training(again, run, resume=True, **{**RUN, "epochs": RUN["epochs"] + 1})
    assert len(history["epoch"]) == RUN["epochs"] + 1
    # which software trained which epochs: the first segment's versions, then each resume's
    record = json.loads((run / "config.json").read_text())
    assert record["data"] == str(again)
    assert record["run"]["versions"] == first["versions"]
    assert [r["from_epoch"] for r in record["run"]["resumed"]] == [RUN["epochs"]]
    run_training(again, run, resume=True, **{**RUN, "epochs": RUN["epochs"] + 1})  # finished
    assert json.loads((run / "config.json").read_text())["run"] == record["run"]
    with h5py.File(again, "a") as f:
        f.attrs["relaxed.max_torque_median"] = 0.5
    with pytest.raises(UserError, match="data_identity"):
        run_training(again, run, resume=True, **{**RUN, "epochs": RUN["epochs"] + 2})


def test_init_starts_from_a_trained_model(base_run, files, tmp_path):
    """``init``: a new run's network starts from a trained model's weights — with a step too
    small to move them, its first epoch's loss is the trained model's (at most its last epoch's
    mean), far below a start from random weights; the run records it, and a model of another
    factor or a missing file is refused before anything is written."""
    run_dir, history = base_run
    still = {**RUN, "epochs": 1, "learning_rate": 1e-9}
    tuned = run_training(files["A"], tmp_path / "tuned",
                         **{**still, "init": str(run_dir / "model.keras")})
    config = json.loads((tmp_path / "tuned" / "config.json").read_text())
    assert config["init"] == str(run_dir / "model.keras")
    assert tuned["loss"][0] <= 1.05 * history["loss"][-1]
    scratch = run_training(files["A"], tmp_path / "scratch", **still)
    assert tuned["loss"][0] < 0.5 * scratch["loss"][0]
    with pytest.raises(UserError, match="cannot start"):
        run_training(files["A"], tmp_path / "never", **{**RUN, "scale": 8,
                                                        "init": str(run_dir / "model.keras")})
    assert not (tmp_path / "never").exists()
    with pytest.raises(UserError, match="does not exist"):
        run_training(files["A"], tmp_path / "never", **{**RUN, "init": str(tmp_path / "no.keras")})
    assert not (tmp_path / "never").exists()
