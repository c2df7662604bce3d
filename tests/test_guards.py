"""Nothing lost, nothing left behind, one line per mistake (issue 15).

Outputs never replace inputs, nor existing files without ``--force``; a failed call leaves the
disk as it found it; damaged files of our own (block files, history, results) give one line,
and block files are annealed again; TensorFlow's start-up lines never pad a one-line error.
"""

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import warnings

import h5py
import numpy as np
import pytest

from spinsr_tf.base.errors import UserError
from spinsr_tf.cli import main
from spinsr_tf.data import generate_dataset, read_spins
from spinsr_tf.physics import Schedule, TypeI
from conftest import run_training, smooth_unit_spins

FAST = dataclasses.replace(Schedule(), sweeps=30)


def _fingerprint(folder):
    """Every file under ``folder``: bytes (as a hash) and modification time."""
    return {p.relative_to(folder).as_posix(): (hashlib.sha256(p.read_bytes()).hexdigest(),
                                               p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _one_line(capsys, command):
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"spinsr-tf {command}: error: "), err
    return err


def _spins_file(path, n=2, size=16, seed=0):
    with h5py.File(path, "w") as f:
        f["spins"] = smooth_unit_spins(n, size, seed)
    return path


@pytest.fixture(scope="module")
def model_and_data(tmp_path_factory):
    """An untrained x4 model file and a 16x16 test file, in a folder of their own."""
    from spinsr_tf.nn.network import build_sr_model

    d = tmp_path_factory.mktemp("eval")
    build_sr_model(4).save(d / "model.keras")
    return d / "model.keras", _spins_file(d / "test.h5")


# --- outputs never replace inputs, nor existing files without --force ------------------------

@pytest.mark.parametrize("target", ["data", "model", "data_link"])
def test_evaluate_output_that_is_an_input_is_refused_even_with_force(model_and_data, tmp_path,
                                                                     capsys, target):
    model, data = model_and_data
    link = tmp_path / "link.h5"
    os.symlink(data, link)
    out = {"data": data, "model": model, "data_link": link}[target]
    before = {p: p.read_bytes() for p in (model, data)}
    for extra in ([], ["--force"]):
        for flag in ("--json", "--table"):
            argv = ["evaluate", "--model", str(model), "--data", str(data), flag, str(out)]
            assert main(argv + extra) == 2
            assert "overwrite the input" in _one_line(capsys, "evaluate")
    assert {p: p.read_bytes() for p in (model, data)} == before


def test_existing_output_file_is_replaced_only_with_force(model_and_data, tmp_path, capsys):
    model, data = model_and_data
    notes = tmp_path / "notes.json"
    notes.write_text("my notes")
    argv = ["evaluate", "--model", str(model), "--data", str(data), "--json", str(notes)]
    assert main(argv) == 2
    assert "exists; pass --force" in _one_line(capsys, "evaluate")
    assert notes.read_text() == "my notes"
    assert main(argv + ["--force", "--quiet"]) == 0
    assert json.loads(notes.read_text())["n_images"] == 2
    src = _spins_file(tmp_path / "hr.h5")
    lr = tmp_path / "lr.h5"
    lr.write_text("other")
    assert main(["downsample", str(src), "--factor", "4", "--out", str(lr)]) == 2
    assert "exists; pass --force" in _one_line(capsys, "downsample")
    assert lr.read_text() == "other"


@pytest.mark.parametrize("where", ["missing", "read-only"])
def test_evaluate_checks_its_output_folder_before_the_work(model_and_data, tmp_path, capsys,
                                                           monkeypatch, where):
    import spinsr_tf.evaluation.scoring as scoring

    model, data = model_and_data
    folder = tmp_path / "results"
    if where == "read-only":   # as root a chmod would not stop writes: refuse the probe file
        import tempfile

        folder.mkdir()
        real_mkstemp = tempfile.mkstemp

        def mkstemp(*args, dir=None, **kwargs):
            if dir is not None and os.path.abspath(dir) == str(folder):
                raise PermissionError(13, "Permission denied")
            return real_mkstemp(*args, dir=dir, **kwargs)

        monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(scoring, "evaluate", lambda *a, **k: pytest.fail("evaluated first"))
    for flag in ("--json", "--table"):
        assert main(["evaluate", "--model", str(model), "--data", str(data), flag,
                     str(folder / "r.out")]) == 2
        err = _one_line(capsys, "evaluate")
        assert ("does not exist" if where == "missing" else "is not writable") in err
    assert not folder.exists() or not any(folder.iterdir())


# --- generate: block files are checked when read; a failed first call leaves nothing ------------

def _gen(path, n=4, block=2, progress=False):
    return generate_dataset(path, TypeI(), n=n, size=8, seed=5, schedule=FAST, block=block,
                            progress=progress)


def _interrupted(path, blocks=2):
    """Leave ``path``'s partial folder with the first ``blocks`` blocks of a run of 3."""
    calls = []

    def stop(done, n):
        calls.append(done)
        if len(calls) == blocks:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _gen(path, n=6, progress=stop)
    partial = path.with_name(path.name + ".partial")
    return sorted(partial.glob("block_*.npy"))


@pytest.mark.parametrize("damage", ["nan", "truncated", "not_unit", "wrong_shape"])
def test_damaged_block_is_annealed_again_with_one_warning(tmp_path, capsys, damage):
    reference = read_spins(_gen(tmp_path / "ref.h5", n=6))
    path = tmp_path / "out.h5"
    first, second = _interrupted(path)
    spins = np.load(second)
    if damage == "nan":
        spins[0, 3, 3, 1] = np.nan
        np.save(second, spins)
    elif damage == "truncated":
        second.write_bytes(second.read_bytes()[:200])
    elif damage == "not_unit":
        np.save(second, spins * 1.01)
    else:
        np.save(second, spins[:1])
    argv = ["generate", "--type", "I", "--n", "6", "--size", "8", "--seed", "5", "--sweeps",
            "30", "--block", "2", "--out", str(path), "--quiet"]
    assert main(argv) == 0
    cap = capsys.readouterr()
    assert cap.out == ""
    assert cap.err.count("\n") == 1 and cap.err.startswith("spinsr-tf: warning: block file")
    assert second.name in cap.err and "annealing samples 2..3 again" in cap.err
    np.testing.assert_array_equal(read_spins(path), reference)
    assert not path.with_name("out.h5.partial").exists()


def test_damaged_params_json_beside_finished_blocks_is_one_line(tmp_path, capsys):
    path = tmp_path / "out.h5"
    blocks = _interrupted(path)
    (blocks[0].parent / "params.json").write_text("")
    argv = ["generate", "--type", "I", "--n", "6", "--size", "8", "--seed", "5", "--sweeps",
            "30", "--block", "2", "--out", str(path)]
    assert main(argv) == 2
    assert "params.json" in _one_line(capsys, "generate")


def test_failed_first_call_leaves_nothing_that_refuses_the_next(tmp_path, capsys, monkeypatch):
    import spinsr_tf.data.generate as generate

    path = tmp_path / "out.h5"
    argv = ["generate", "--type", "I", "--n", "4", "--size", "8", "--seed", "5", "--sweeps",
            "30", "--block", "2", "--out", str(path), "--quiet"]
    assert main(argv + ["--workers", "9999"]) == 2
    assert "workers" in _one_line(capsys, "generate")
    assert sorted(os.listdir(tmp_path)) == []

    def out_of_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(generate, "anneal_block", out_of_memory)
    with pytest.raises(MemoryError):
        _gen(path, n=4)
    assert sorted(os.listdir(tmp_path)) == []
    monkeypatch.undo()
    # a partial folder of other parameters but no finished block protects nothing
    partial = tmp_path / "out.h5.partial"
    partial.mkdir()
    (partial / "params.json").write_text(json.dumps({"params": {"n": 99}, "block": 7}))
    assert main(argv) == 0
    assert read_spins(path).shape == (4, 8, 8, 3)
    assert sorted(os.listdir(tmp_path)) == ["out.h5"]


@pytest.mark.parametrize("argv,words", [
    (["--size", "10000000"], "of memory"),
    (["--n", "100000000000000", "--size", "16"], "of disk space"),
])
def test_absurd_sizes_are_refused_before_anything_is_written(tmp_path, capsys, argv, words):
    code = main(["generate", "--type", "I", "--out", str(tmp_path / "big.h5"), *argv])
    assert code == 2 and words in _one_line(capsys, "generate")
    assert os.listdir(tmp_path) == []


def test_quickstart_refuses_a_bad_size_before_annealing(tmp_path, capsys):
    out = tmp_path / "qs"
    assert main(["quickstart", "--out", str(out), "--size", "30", "--quiet"]) == 2
    assert "size 30 must be a multiple of the scale 4" in _one_line(capsys, "quickstart")
    assert not out.exists()


@pytest.mark.parametrize("command", ["quickstart", "reproduce", "physics-sr"])
def test_experiments_do_not_fill_a_folder_of_other_files(tmp_path, capsys, command):
    (tmp_path / "table.md").write_text("my table")
    (tmp_path / "results.json").write_text("{}")
    before = _fingerprint(tmp_path)
    extra = ["--preset", "smoke"] if command != "quickstart" else []
    assert main([command, "--out", str(tmp_path), "--quiet", *extra]) == 2
    assert "holds other files" in _one_line(capsys, command)
    assert _fingerprint(tmp_path) == before


def test_damaged_results_json_is_made_again_not_a_traceback(tmp_path):
    from spinsr_tf.base.errors import RepairWarning
    from spinsr_tf.experiments.reproduce import read_result

    path = tmp_path / "results.json"
    for text in ("", '{"methods": {"sr": ', "[]"):
        path.write_text(text)
        with pytest.warns(RepairWarning, match="results.json' is damaged"):
            assert read_result(path) is None
    path.write_text(json.dumps({"methods": {}}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_result(path) == {"methods": {}}


# --- train: a failed call changes nothing; stale temporaries go ---------------------------------

SMALL = dict(scale=4, epochs=1, batch_size=4, val_fraction=0.25, seed=0, jit_compile=False)


@pytest.fixture(scope="module")
def data_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("train")
    good = _spins_file(d / "good.h5", n=8, size=16)
    spins = read_spins(good)
    spins[5, 2, 2, 0] = np.nan
    with h5py.File(d / "nan.h5", "w") as f:
        f["spins"] = spins
    return good, d / "nan.h5"


@pytest.fixture(scope="module")
def one_epoch_run(data_files, tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "run"
    run_training(data_files[0], run, **SMALL)
    return run


def test_train_on_nan_data_leaves_no_run_folder(data_files, tmp_path, capsys):
    good, nan = data_files
    out = tmp_path / "run"
    argv = ["train", "--scale", "4", "--out", str(out), "--epochs", "1", "--batch-size", "4",
            "--val-fraction", "0.25", "--network", "paper", "--no-jit", "--quiet"]
    assert main(argv + ["--data", str(nan)]) == 2
    assert "NaN" in _one_line(capsys, "train")
    assert not out.exists()
    existing = tmp_path / "empty"
    existing.mkdir()
    assert main(argv[:4] + [str(existing)] + argv[5:] + ["--data", str(nan)]) == 2
    capsys.readouterr()
    assert existing.is_dir() and not any(existing.iterdir())


@pytest.mark.parametrize("dataset", ["spins", "lr"])
def test_nan_in_hr_or_lr_data_is_named_in_one_line(tmp_path, capsys, dataset):
    """NaN in an LR file (not degraded, so no degradation check sees it) is refused like NaN in
    HR maps: one line naming the file, the dataset and the sample; no run folder."""
    maps = np.ones((6, 16, 16, 3) if dataset == "spins" else (6, 4, 4, 3), np.float32)
    maps /= np.sqrt(3.0)
    maps[4, 1, 2, 0] = np.nan
    path = tmp_path / "bad.h5"
    with h5py.File(path, "w") as f:
        f[dataset] = maps
        if dataset == "lr":
            f.attrs.update({"factor": 4, "kernel_size": 23, "sigma": 1.0,
                            "padding": "periodic", "pixel": "sample"})
    out = tmp_path / "run"
    assert main(["train", "--data", str(path), "--scale", "4", "--out", str(out), "--epochs", "1",
                 "--batch-size", "2", "--val-fraction", "0", "--no-jit", "--quiet"]) == 2
    line = _one_line(capsys, "train")
    assert "NaN" in line and f"'{dataset}'" in line and "bad.h5" in line and "sample 4" in line
    assert not out.exists()


def test_failed_resume_changes_nothing_on_disk(data_files, one_epoch_run, tmp_path, monkeypatch):
    """A run killed between an epoch's history row and its checkpoint, resumed: if the resume
    fails before its first checkpoint, every file is as it was (the orphan row included)."""
    import shutil

    import spinsr_tf.nn.training as training

    run = tmp_path / "run"
    shutil.copytree(one_epoch_run, run)
    with open(run / "history.csv", "a") as fh:
        fh.write("1,0.5,0.5,0.5\n")        # the row of an epoch whose checkpoint never came
    before = _fingerprint(run)

    def fails(self, i):
        raise UserError("the disk went away")

    monkeypatch.setattr(training._Batches, "__getitem__", fails)
    for error in (UserError, KeyboardInterrupt):
        if error is KeyboardInterrupt:
            monkeypatch.setattr(training._Batches, "__getitem__",
                                lambda self, i: (_ for _ in ()).throw(KeyboardInterrupt))
        with pytest.raises(error):
            run_training(data_files[0], run, resume=True, **{**SMALL, "epochs": 2})
        assert _fingerprint(run) == before


def test_checkpoint_is_one_file_and_a_killed_save_leaves_nothing(data_files, one_epoch_run,
                                                                 tmp_path):
    """The checkpoint is one file (no second file to fall out of step with); the 0-byte
    temporary of a save killed with SIGKILL is removed at the next start, and the orphan history
    row of the killed epoch is replaced by the resumed one."""
    import shutil

    import keras

    run = tmp_path / "run"
    shutil.copytree(one_epoch_run, run)
    assert not list(run.glob("checkpoint*.json"))
    model = keras.saving.load_model(run / "checkpoint.keras")
    assert int(model.optimizer.iterations.numpy()) == 2   # 1 epoch of 6 training maps / 4
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = run / f".checkpoint.tmp-{dead.pid}-0123abcd.keras"
    stale.write_bytes(b"")
    alive = run / f".checkpoint.tmp-{os.getpid()}-0123abcd.keras"
    alive.write_bytes(b"")                           # a writer that still runs keeps its own
    with open(run / "history.csv", "a") as fh:
        fh.write("1,9,9,9\n")
    history = run_training(data_files[0], run, resume=True, **{**SMALL, "epochs": 2})
    assert history["epoch"] == [0, 1] and history["loss"][1] != 9
    assert not stale.exists() and alive.exists()


@pytest.mark.parametrize("name,content,words", [
    ("config.json", b"", "config.json"),
    ("history.csv", b"epoch,loss\n\xff\xfe\x00\x01", "history.csv.*damaged"),
    ("checkpoint.keras", b"", "checkpoint"),
])
def test_damaged_run_files_give_one_line_and_change_nothing(data_files, one_epoch_run, tmp_path,
                                                            name, content, words):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(one_epoch_run, run)
    (run / name).write_bytes(content)
    before = _fingerprint(run)
    with pytest.raises(UserError, match=words) as exc:
        run_training(data_files[0], run, resume=True, **{**SMALL, "epochs": 2})
    assert "\n" not in str(exc.value)
    assert _fingerprint(run) == before


def test_history_with_unreadable_values_is_one_line(tmp_path):
    from spinsr_tf.nn.training import read_history

    (tmp_path / "history.csv").write_text("epoch,loss\n0,0.5\nx,y\n")
    with pytest.raises(UserError, match="history.csv.*damaged"):
        read_history(tmp_path)


# --- a user mistake is one line, TensorFlow's start-up included ---------------------------------

def test_real_process_with_tensorflow_prints_one_line_and_leaves_nothing(data_files, tmp_path):
    out = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    proc = subprocess.run([sys.executable, "-m", "spinsr_tf", "train", "--data",
                           str(data_files[1]), "--scale", "4", "--out", str(out), "--epochs",
                           "1", "--batch-size", "4", "--network", "paper", "--no-jit"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("spinsr-tf train: error:") and "NaN" in proc.stderr
    assert not out.exists()


def test_missing_input_is_one_line_before_tensorflow_loads(tmp_path):
    code = ("import sys\nfrom spinsr_tf.cli import main\n"
            f"rc = main(['train', '--data', {str(tmp_path / 'none.h5')!r}, '--scale', '4', "
            f"'--out', {str(tmp_path / 'r')!r}])\n"
            "print(rc, 'tensorflow' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.stdout.split() == ["2", "False"]
    assert proc.stderr.count("\n") == 1 and "does not exist" in proc.stderr
    assert not (tmp_path / "r").exists()


# --- parameters that would silently change finished work, or leave litter -------------------

def test_physics_sr_refuses_other_steps_on_a_folder_of_finished_results(tmp_path, capsys):
    """A setting finished with --steps 5 is kept: --steps 7 is refused in one line before any
    work (it replaced the results), the same --steps is not."""
    from spinsr_tf.experiments.presets import PRESETS

    setting = tmp_path / "type_I" / "x4"
    setting.mkdir(parents=True)
    sizes = {**dataclasses.asdict(PRESETS["smoke"]), "steps": 5}
    (setting / "physics_results.json").write_text(json.dumps({"preset_sizes": sizes,
                                                              "methods": {}}))
    before = _fingerprint(tmp_path)
    argv = ["physics-sr", "--out", str(tmp_path), "--preset", "smoke", "--type", "I", "--quiet"]
    assert main([*argv, "--steps", "7"]) == 2
    assert "steps=5 (now 7)" in _one_line(capsys, "physics-sr")
    assert _fingerprint(tmp_path) == before
    assert main([*argv, "--preset", "medium", "--steps", "5"]) == 2
    assert "other parameters" in _one_line(capsys, "physics-sr")
    assert _fingerprint(tmp_path) == before


def test_an_unrepresentable_coupling_is_one_line_and_leaves_no_partial_folder(tmp_path, capsys):
    """--J 1e300 overflowed float32 in the annealing: five lines and a .partial folder."""
    code = main(["generate", "--type", "I", "--n", "2", "--size", "16", "--J", "1e300",
                 "--out", str(tmp_path / "j.h5")])
    assert code == 2 and "J=1e+300" in _one_line(capsys, "generate")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("argv", [["--sweeps", "-1"], ["--n-train", "0"], ["--epochs", "0"]])
def test_refused_quickstart_arguments_leave_no_output_folder(tmp_path, capsys, argv):
    out = tmp_path / "qs"
    assert main(["quickstart", "--out", str(out), "--quiet", *argv]) == 2
    _one_line(capsys, "quickstart")
    assert not out.exists()


@pytest.mark.parametrize("damage,words", [("huge", "of memory"), ("corrupt", "damaged file"),
                                          ("int32", "expected floats")])
def test_evaluate_refuses_absurd_damaged_or_integer_test_sets_before_any_work(
        model_and_data, tmp_path, capsys, damage, words):
    """A few-KB file declaring 10^9 maps, a corrupt compressed chunk, integer spins: one line,
    nothing written (were a MemoryError, a traceback, and a silent cast)."""
    from test_cli_downsample import write_corrupt_chunk

    model, _ = model_and_data
    data = tmp_path / "test.h5"
    if damage == "huge":
        with h5py.File(data, "w") as f:
            f.create_dataset("spins", shape=(10**9, 64, 64, 3), dtype="float32",
                             chunks=(1, 64, 64, 3), compression="gzip")
    elif damage == "corrupt":
        write_corrupt_chunk(data)
    else:
        with h5py.File(data, "w") as f:
            f["spins"] = np.ones((2, 16, 16, 3), "int32")
    code = main(["evaluate", "--model", str(model), "--data", str(data), "--any-size",
                 "--json", str(tmp_path / "r.json"), "--quiet"])
    assert code == 2 and words in _one_line(capsys, "evaluate")
    assert os.listdir(tmp_path) == ["test.h5"]
