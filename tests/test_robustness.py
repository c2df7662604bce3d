"""Nothing lost under interruption, concurrency or a full disk: exact resume for every recipe,
one command per output, interrupts that stop at a safe point, and failed reads and writes (a
file-size limit, a damaged file) that are one line, exit 1 or 2, with nothing half-written.

Data: 9 smooth unit-vector maps of 16² (HR) at ×4 (LR 4²), batch 4: two training steps and one
validation map per epoch, so a run is a few seconds of graph tracing. The default step runs one
resume (the configuration with every random layer, ~17 s on 2 cores) and the cheap checks; the
named recipes' resumes and the signalled ``train`` processes are slow (~80 s together).
"""

import os
import signal
import subprocess
import sys
import time

import h5py
import keras
import numpy as np
import pytest

from spinsr_tf.base.errors import UserError
from spinsr_tf.nn.config import RECIPES, TrainConfig, recipe
from spinsr_tf.nn.losses import Equivariance, Recorrupted
from spinsr_tf.nn.network import load_sr_model
from spinsr_tf.nn.training import CHECKPOINT, MODEL, read_history, train
from conftest import smooth_unit_spins

N, L, SCALE = 9, 16, 4
SHORT = dict(batch_size=4, val_fraction=1 / N, seed=5, jit_compile=False, kernel_size=5)

#: A configuration with every loss-term layer that draws random numbers: one lattice symmetry
#: per sample, the crops of maps with borders, recorrupted pairs.
ALL_DRAWS = dict(RECIPES["residual_unit"], padding="reflect",
                 losses=(Recorrupted(noise_std=0.05, noise_slope=0.01),
                         Equivariance(draw="sample")))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "hr.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("spins", data=smooth_unit_spins(N, L, seed=2), chunks=(1, L, L, 3))
    return path


def _config(name, data, epochs):
    if name in RECIPES:
        return recipe(name, data, SCALE, epochs=epochs, **SHORT)
    # no validation here: half the time, and the recipes' runs have it
    return TrainConfig(data=data, scale=SCALE, epochs=epochs,
                       **{**SHORT, **ALL_DRAWS, "val_fraction": 0.0, "max_samples": 8})


def _checkpoint_state(run_dir):
    """Every variable of the checkpoint: weights, BatchNorm statistics, optimizer slots and step,
    and the state of every random draw."""
    model = keras.saving.load_model(run_dir / CHECKPOINT, compile=True)
    return ([np.asarray(v) for v in model.variables]
            + [np.asarray(v) for v in model.optimizer.variables])


def _assert_bitwise_equal(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


@pytest.fixture(scope="module")
def through(data, tmp_path_factory):
    """Uninterrupted 2-epoch runs, by configuration name (made when first asked for)."""
    runs = {}

    def get(name):
        if name not in runs:
            out = tmp_path_factory.mktemp("through") / name
            train(_config(name, data, 2), out, progress=False)
            runs[name] = out
        return runs[name]
    return get


# --- exact resume ------------------------------------------------------------------------------

def _random_layers():
    from spinsr_tf.nn.losses.equivariance import RandomCrop
    from spinsr_tf.nn.losses.recorrupted import Recorrupt
    from spinsr_tf.nn.symmetry import RandomLatticeSymmetry

    return {"symmetry": lambda: RandomLatticeSymmetry(seed=11, per_sample=True),
            "crop": lambda: RandomCrop(4, seed=11),
            "recorrupt": lambda: Recorrupt(0.1, 0.02, seed=11)}


def _draw(model, x):
    return [keras.ops.convert_to_numpy(t) for t in keras.tree.flatten(model(x))]


@pytest.mark.parametrize("kind", ["symmetry", "crop", "recorrupt"])
def test_a_saved_random_layer_continues_its_draws_after_loading(kind, tmp_path):
    """Saved after two draws and loaded, a layer's next draws are those the original makes
    next, not its first ones again (Keras saves variables, not seed generators); a file without
    the state (as saved before it was kept) loads at the seed's start."""
    from spinsr_tf.nn.symmetry import SEED_STATE

    x = keras.ops.convert_to_tensor(smooth_unit_spins(3, 8, seed=1))
    inputs = keras.Input((8, 8, 3))
    outputs = _random_layers()[kind]()(inputs)
    model = keras.Model(inputs, outputs)
    first = _draw(model, x)
    model(x)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    for _ in range(2):
        _assert_bitwise_equal(_draw(loaded, x), _draw(model, x))
    store = {}
    loaded.layers[-1].save_own_variables(store)
    assert list(store) == [SEED_STATE]
    fresh = keras.Model.from_config(model.get_config())
    fresh.layers[-1].load_own_variables({})     # an older file: no state, the seed's start
    _assert_bitwise_equal(_draw(fresh, x), first)


@pytest.mark.parametrize("name", [
    "all_draws", *(pytest.param(n, marks=pytest.mark.slow) for n in RECIPES)])
def test_resume_after_an_epoch_gives_the_weights_of_an_uninterrupted_run(name, data, through,
                                                                         tmp_path):
    """One epoch, then the same run extended to two: every variable of the checkpoint (random
    draws' state included) and the model equal the uninterrupted run's bit for bit, and so do
    the epoch losses (each term's: the random draws of epoch 2 are the same ones). The default
    step runs the configuration with every random layer; the named recipes are slow."""
    out = tmp_path / "run"
    train(_config(name, data, 1), out, progress=False)
    history = train(_config(name, data, 2), out, resume=True, progress=False)
    reference = through(name)
    _assert_bitwise_equal(_checkpoint_state(out), _checkpoint_state(reference))
    _assert_bitwise_equal(load_sr_model(out / MODEL).get_weights(),
                          load_sr_model(reference / MODEL).get_weights())
    assert history == read_history(reference)


# --- one command per output ---------------------------------------------------------------------

def _hold_lock(path):
    """A process holding the lock of ``path`` (base.files only: starts in a fraction of a
    second), once it has said so."""
    code = ("import sys, time; from spinsr_tf.base.files import output_lock\n"
            "with output_lock(sys.argv[1]):\n    print('held', flush=True); time.sleep(120)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def _tree(folder):
    return sorted((str(p.relative_to(folder)), p.is_dir() or p.read_bytes())
                  for p in folder.rglob("*"))


def test_a_second_command_on_a_held_output_is_refused_and_a_killed_holder_is_taken_over(
        data, tmp_path, capsys):
    """While another process holds ``--out``, ``train`` and ``generate`` on it exit 2 with one
    line naming the holder and change nothing; once the holder is killed (SIGKILL: no clean-up,
    its lock file stays behind) the lock is free again and is taken over."""
    from spinsr_tf.base.files import lock_name, output_lock
    from spinsr_tf.cli import main

    run, h5 = tmp_path / "run", tmp_path / "maps.h5"
    holders = [_hold_lock(run), _hold_lock(h5)]
    try:
        before = _tree(tmp_path)
        argv_train = ["train", "--data", str(data), "--scale", "4", "--out", str(run),
                      "--epochs", "1", "--quiet"]
        argv_gen = ["generate", "--type", "I", "--n", "2", "--size", "8", "--out", str(h5),
                    "--quiet"]
        for argv, proc in ((argv_train, holders[0]), (argv_gen, holders[1])):
            assert main(argv) == 2
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and f"is in use by process {proc.pid} on " in err[0], err
        assert _tree(tmp_path) == before
        # every other resumable command: refused before it reads or writes anything
        for argv in (["quickstart"], ["reproduce", "--preset", "smoke"],
                     ["physics-sr", "--preset", "smoke"], ["make-pretrained"],
                     ["fit-image", str(tmp_path / "missing.png"), "--scale", "8"]):
            assert main([*argv, "--out", str(run), "--quiet"]) == 2
            assert "is in use by process" in capsys.readouterr().err, argv
        assert _tree(tmp_path) == before
        # in this process too, while the other one holds it
        with pytest.raises(UserError, match="in use by process"):
            with output_lock(run):
                pass
    finally:
        for proc in holders:
            proc.kill()
            proc.wait()
    assert lock_name(run).exists()                       # stale: its holder is gone
    with output_lock(run) as lock:
        assert lock.read_text().split()[0] == str(os.getpid())
    assert not lock_name(run).exists()
    # an output in folders still to be made: locked in the nearest existing one, and met by a
    # command that comes after they were made
    deep = tmp_path / "new" / "deeper" / "run"
    with output_lock(deep) as lock:
        assert lock == tmp_path / ".new%deeper%run.lock" and not (tmp_path / "new").exists()
        deep.parent.mkdir(parents=True)
        with pytest.raises(UserError, match="in use by process"):
            with output_lock(deep):
                pass
        assert not lock_name(deep).exists()
    assert not lock.exists()


def test_a_symlinked_partial_folder_or_lock_file_is_refused(tmp_path, capsys):
    """``generate`` never writes through a symlinked ``OUT.partial`` (its blocks would land in a
    foreign folder), and no command opens a lock file that is a symlink."""
    from spinsr_tf.cli import main

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (tmp_path / "maps.h5.partial").symlink_to(foreign)
    argv = ["generate", "--type", "I", "--n", "2", "--size", "8", "--quiet", "--out"]
    assert main([*argv, str(tmp_path / "maps.h5")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is a symbolic link" in err[0], err
    (tmp_path / ".other.h5.lock").symlink_to(foreign / "x")
    assert main([*argv, str(tmp_path / "other.h5")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is a symbolic link" in err[0], err
    assert list(foreign.iterdir()) == []
    assert not (tmp_path / "maps.h5").exists() and not (tmp_path / "other.h5").exists()


# --- interrupts ----------------------------------------------------------------------------------

@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_is_acted_on_once_even_when_its_exception_is_swallowed(signum):
    """Outside a deferred block the handler raises at once; inside one it only records the
    signal until a safe point (a second signal raises at once); a signal whose exception some
    callback swallowed is raised when the block ends. Exit status 128 + signal."""
    from spinsr_tf.base import interrupts

    with pytest.raises(interrupts.Interrupted) as caught:
        with interrupts.handled():
            os.kill(os.getpid(), signum)
            time.sleep(1)                               # (the signal arrives before this ends)
    assert caught.value.exit_status == 128 + signum
    with pytest.raises(interrupts.Interrupted):
        with interrupts.handled(), interrupts.deferred():
            os.kill(os.getpid(), signum)
            steps = 0
            while steps < 3:                            # work between safe points goes on
                steps += 1
                assert interrupts.requested() == signum
            interrupts.check()
            pytest.fail("check() did not raise")
    with pytest.raises(interrupts.Interrupted):         # swallowed, as in a GC callback
        with interrupts.handled():
            try:
                os.kill(os.getpid(), signum)
                time.sleep(1)
            except KeyboardInterrupt:
                pass
    assert signal.getsignal(signum) is not interrupts._handler   # handlers restored


CLI_RUN = ["--scale", "4", "--epochs", "12", "--batch-size", "4", "--val-fraction", "0.12",
           "--seed", "5", "--no-jit", "--kernel-size", "5", "--quiet"]


@pytest.fixture(scope="module")
def cli_reference(data, tmp_path_factory):
    """The uninterrupted run of :data:`CLI_RUN`, made in this process."""
    from spinsr_tf.cli import main

    out = tmp_path_factory.mktemp("reference") / "run"
    assert main(["train", "--data", str(data), "--out", str(out), *CLI_RUN]) == 0
    return out


def _wait_for(condition, proc, what, timeout=240):
    start = time.monotonic()
    while not condition():
        assert proc.poll() is None, f"train ended (status {proc.returncode}) before {what}"
        assert time.monotonic() - start < timeout, f"no {what} after {timeout} s"
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.parametrize("signum, moment", [(signal.SIGINT, "first epoch"),
                                            (signal.SIGTERM, "after an epoch")])
def test_a_signalled_train_stops_in_one_line_and_the_same_command_finishes_the_run(
        signum, moment, data, cli_reference, tmp_path, capsys):
    """A real ``spinsr-tf train`` (the default, equivariant recipe) signalled while it traces
    its first epoch or after an epoch has been saved exits 128 + signal with one stderr line;
    the same command again ends with the weights and history of an uninterrupted run."""
    from spinsr_tf.cli import main

    out = tmp_path / "run"
    argv = ["train", "--data", str(data), "--out", str(out), *CLI_RUN]
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # the CLI's own
    proc = subprocess.Popen([sys.executable, "-m", "spinsr_tf", *argv], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        if moment == "first epoch":
            _wait_for(lambda: (out / "config.json").exists(), proc, "config.json")
        else:
            _wait_for(lambda: len(read_history(out).get("epoch", [])) >= 1, proc, "an epoch")
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signum, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "run the same command again to continue" in lines[0], err
    assert main(argv) == 0
    capsys.readouterr()
    _assert_bitwise_equal(load_sr_model(out / MODEL).get_weights(),
                          load_sr_model(cli_reference / MODEL).get_weights())
    assert read_history(out) == read_history(cli_reference)


# --- full disks, file-size limits and damaged inputs: one line, exit 1 or 2, nothing left -----
#
# Each command runs in a child process under RLIMIT_FSIZE (``ulimit -f``); the command line
# ignores SIGXFSZ (which would kill it with a core dump), so the limit surfaces as EFBIG, as a
# full disk surfaces as ENOSPC. HDF5 meeting either crashed the process (exit 139) before its
# writes were built in memory (spinsr_tf.data.io.h5_output).

_LIMITED = """
import resource, sys
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
if sys.argv[2] == "unchecked":   # the space checks off: the write itself meets the limit
    import spinsr_tf.data.io
    spinsr_tf.data.io._file_size_limit = lambda: None
from spinsr_tf.cli import main
sys.exit(main(sys.argv[3:]))
"""


def _limited(limit, argv, checked=True, cwd=None):
    """Run ``spinsr-tf argv`` with a file-size limit of ``limit`` bytes: (status, stderr)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", _LIMITED, str(limit),
                           "checked" if checked else "unchecked", *map(str, argv)],
                          capture_output=True, text=True, env=env, cwd=cwd, timeout=300)
    return proc.returncode, proc.stderr


def _one_line(status, err, expected_status, *words):
    lines = err.strip().splitlines()
    assert status == expected_status and len(lines) == 1, (status, err)
    assert lines[0].startswith("spinsr-tf ") and ": error: " in lines[0], err
    for word in words:
        assert word in lines[0], err


def _left(folder, *keep):
    """What a failed command left in ``folder`` beyond ``keep``."""
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


@pytest.fixture(scope="module")
def spins_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("spins") / "hr.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("spins", data=smooth_unit_spins(16, 32, seed=3))
    return path


def test_an_hdf5_write_that_meets_the_file_size_limit_is_one_line_not_a_crash(spins_file,
                                                                              tmp_path):
    """The limit is checked first (exit 2, nothing done); where the write itself meets it (the
    disk filled by another process meanwhile), plain I/O says so: exit 1, no segfault."""
    out = tmp_path / "lr.h5"
    argv = ["downsample", spins_file, "--factor", "2", "--out", out]
    _one_line(*_limited(20_000, argv), 2, "file size limit", "ulimit -f")
    assert _left(tmp_path) == []
    _one_line(*_limited(20_000, argv, checked=False), 1,
              f"file size limit exceeded (ulimit -f) writing {str(out)!r}")
    assert _left(tmp_path) == []


def test_generate_meeting_the_file_size_limit_is_one_line_and_leaves_nothing(tmp_path):
    """Blocks cut short by the limit (NumPy's short write, no errno; the space check off), and
    a data set larger than the limit refused before the annealing."""
    argv = ["generate", "--type", "I", "--n", "2", "--size", "16", "--sweeps", "2",
            "--relax-sweeps", "2", "--quiet", "--out"]
    _one_line(*_limited(3_000, argv + [tmp_path / "a.h5"], checked=False), 1,
              "file size limit exceeded", "block_")
    _one_line(*_limited(40_000, argv + [tmp_path / "b.h5"]), 2, "more than the file size limit")
    assert _left(tmp_path) == []


def test_os_errors_become_one_line_with_the_status_of_whose_fault_it_is(spins_file, tmp_path,
                                                                        capsys, monkeypatch):
    import errno as errno_

    import spinsr_tf.cli.downsample as downsample_cli
    from spinsr_tf.cli import describe_os_error, main, system_fault_in_words

    assert describe_os_error(OSError(errno_.ENOSPC, "x", "/d/out.h5")) == (
        "no space left on device writing '/d/out.h5'", 1)
    assert describe_os_error(OSError(errno_.EIO, "x", "in.h5")) == (
        "input/output error: 'in.h5'", 1)
    assert describe_os_error(OSError(errno_.EACCES, "Permission denied", "in.h5")) == (
        "Permission denied: 'in.h5'", 2)
    assert describe_os_error(OSError("Can't read data")) == ("Can't read data", 2)
    assert system_fault_in_words(RuntimeError("x.data; File too large [Op:SaveV2]")) == \
        errno_.EFBIG
    assert system_fault_in_words(RuntimeError("shape mismatch")) is None

    def failing(*args, **kwargs):
        raise OSError(errno_.EIO, "Input/output error", str(spins_file))

    monkeypatch.setattr(downsample_cli, "downsample_file", failing)
    assert main(["downsample", str(spins_file), "--factor", "2", "--out",
                 str(tmp_path / "lr.h5")]) == 1
    _one_line(1, capsys.readouterr().err, 1, "input/output error", "hr.h5")

    def out_of_memory(*args, **kwargs):
        raise MemoryError()

    monkeypatch.setattr(downsample_cli, "downsample_file", out_of_memory)
    assert main(["downsample", str(spins_file), "--factor", "2", "--out",
                 str(tmp_path / "lr.h5")]) == 1
    _one_line(1, capsys.readouterr().err, 1, "out of memory")


def test_a_damaged_config_json_beside_a_model_is_one_line(tmp_path, capsys):
    """``{"losses": 5}`` or a missing ``scale`` in the run's config.json: refused naming the
    file before anything is written (was a TypeError traceback)."""
    import json
    import shutil

    from spinsr_tf.base.pretrained import resolve_model
    from spinsr_tf.cli import main

    model = tmp_path / "run" / "model.keras"
    shutil.copytree(os.path.dirname(resolve_model("pretrained:type-I-x4")), model.parent)
    config = json.loads((model.parent / "config.json").read_text())
    for damage in ({"losses": 5}, {"scale": None}):
        record = {k: v for k, v in {**config, **damage}.items() if v is not None}
        (model.parent / "config.json").write_text(json.dumps(record))
        assert main(["export", "--model", str(model), "--out", str(tmp_path / "sm")]) == 2
        _one_line(2, capsys.readouterr().err, 2, "config.json' is damaged")
        assert _left(tmp_path, "run") == []


@pytest.mark.slow
@pytest.mark.parametrize("command", ["train", "export", "evaluate"])
def test_tensorflow_commands_meeting_the_file_size_limit_are_one_line(command, spins_file,
                                                                      tmp_path):
    """TensorFlow reports a failed write in words (``OutOfRangeError ... File too large``),
    Keras and the JSON writers as EFBIG: each is one line, exit 1, and no output is left."""
    from spinsr_tf.base.pretrained import resolve_model

    model = resolve_model("pretrained:type-I-x4")
    argv = {"train": ["train", "--data", spins_file, "--scale", "4", "--epochs", "1",
                      "--quiet", "--out", tmp_path / "run"],
            "export": ["export", "--model", model, "--out", tmp_path / "sm"],
            "evaluate": ["evaluate", "--model", model, "--data", spins_file, "--any-size",
                         "--quiet", "--json", tmp_path / "r.json"]}[command]
    _one_line(*_limited(2_000, argv), 1, "file size limit exceeded (ulimit -f) writing")
    assert _left(tmp_path) == []


def test_train_on_a_file_declaring_terabytes_is_refused_before_its_cache_is_written(tmp_path,
                                                                                     capsys):
    """A 6-KB HDF5 file declaring 10^9 maps of 256²: its LR cache (45 TiB at x4) is refused in
    one line against the free disk, where it wrote 351 MB in 2 minutes until killed."""
    from spinsr_tf.cli import main

    data = tmp_path / "huge.h5"
    with h5py.File(data, "w") as f:
        f.create_dataset("spins", shape=(10**9, 256, 256, 3), dtype="float32",
                         chunks=(1, 256, 256, 3), compression="gzip")
    assert main(["train", "--data", str(data), "--scale", "4", "--epochs", "1", "--quiet",
                 "--out", str(tmp_path / "run")]) == 2
    _one_line(2, capsys.readouterr().err, 2, "lr_cache.h5", "of disk space")
    assert _left(tmp_path, "huge.h5") == []
