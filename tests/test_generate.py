"""HDF5 dataset generation: file contract, reproducibility, resume after interruption, bad input."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from spinsr_tf.cli import main
from spinsr_tf.data import dataset_attrs, generate_dataset, read_spins
from spinsr_tf.base.errors import UserError
from spinsr_tf.physics import Schedule, TypeI, TypeII

# Small lattices and short schedules: these tests check the file logic, not the physics.
FAST = dataclasses.replace(Schedule(), sweeps=40)


def _gen(path, n=5, block=2, workers=None, ham=TypeI(), progress=False):
    return generate_dataset(path, ham, n=n, size=8, seed=3, schedule=FAST, block=block,
                            workers=workers, progress=progress)


def test_file_contract(tmp_path):
    path = _gen(tmp_path / "a.h5")
    with h5py.File(path) as f:
        data = f["spins"]
        assert data.shape == (5, 8, 8, 3) and data.dtype == np.float32
        assert data.chunks == (1, 8, 8, 3) and data.compression == "gzip"
        spins = data[()]
        assert f.attrs["hamiltonian.type"] == "I"
        assert f.attrs["hamiltonian.dmi"] == pytest.approx(0.3)
        assert f.attrs["seed"] == 3 and f.attrs["n"] == 5 and f.attrs["size"] == 8
        assert f.attrs["schedule.sweeps"] == 40
        assert "spinsr_tf_version" in f.attrs
    np.testing.assert_allclose(np.linalg.norm(spins, axis=-1), 1.0, atol=1e-5)
    assert not (tmp_path / "a.h5.partial").exists()
    assert dataset_attrs(path)["hamiltonian"] == TypeI().to_attrs()
    np.testing.assert_array_equal(read_spins(path, indices=[1, 3]), spins[[1, 3]])


def test_same_result_for_any_block_size_and_worker_count(tmp_path):
    a = read_spins(_gen(tmp_path / "a.h5", block=2, workers=1))
    b = read_spins(_gen(tmp_path / "b.h5", block=3, workers=2))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a[0], a[1])  # samples differ from each other


def test_resume_after_interruption_equals_uninterrupted_run(tmp_path):
    reference = read_spins(_gen(tmp_path / "ref.h5"))
    calls = []

    def interrupt_after_two_blocks(done, n):
        calls.append(done)
        if len(calls) == 2:
            raise KeyboardInterrupt

    path = tmp_path / "b.h5"
    with pytest.raises(KeyboardInterrupt):
        _gen(path, progress=interrupt_after_two_blocks)
    assert not path.exists()
    blocks = sorted(p.name for p in (tmp_path / "b.h5.partial").glob("block_*.npy"))
    assert len(blocks) == 2  # both finished blocks kept

    seen = []
    _gen(path, progress=lambda done, n: seen.append(done))
    assert seen == [5]  # only the missing last block was annealed
    np.testing.assert_array_equal(read_spins(path), reference)


def test_rerun_of_finished_file_is_a_no_op_and_other_parameters_are_refused(tmp_path):
    path = _gen(tmp_path / "a.h5")
    mtime = path.stat().st_mtime_ns
    _gen(path)
    assert path.stat().st_mtime_ns == mtime
    with pytest.raises(UserError, match="other parameters.*seed"):
        generate_dataset(path, TypeI(), n=5, size=8, seed=4, schedule=FAST, progress=False)
    with pytest.raises(UserError, match="other parameters"):
        _gen(path, ham=TypeI(dmi=0.2))


def test_interrupted_run_with_other_parameters_is_refused(tmp_path):
    path = tmp_path / "a.h5"
    with pytest.raises(KeyboardInterrupt):
        _gen(path, progress=lambda done, n: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(UserError, match="interrupted run.*other parameters"):
        _gen(path, n=6)


def test_kill_9_mid_run_loses_no_finished_sample(tmp_path):
    """A real SIGKILL of the command line, then the same command again."""
    out = tmp_path / "k.h5"
    # ~1 s of annealing in 300 one-sample blocks: long enough to be killed in the middle
    args = ["generate", "--type", "I", "--n", "300", "--size", "8", "--seed", "3",
            "--sweeps", "400", "--block", "1", "--workers", "1", "--quiet"]
    proc = subprocess.Popen([sys.executable, "-m", "spinsr_tf", *args, "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    partial = tmp_path / "k.h5.partial"
    deadline = time.time() + 120
    while time.time() < deadline and len(list(partial.glob("block_*.npy"))) < 2:
        time.sleep(0.002)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists(), "the run finished before it could be killed"
    kept = len(list(partial.glob("block_*.npy")))
    assert kept >= 2
    assert main([*args, "--out", str(out)]) == 0
    reference = generate_dataset(tmp_path / "ref.h5", TypeI(), n=300, size=8, seed=3,
                                 schedule=dataclasses.replace(FAST, sweeps=400), block=7,
                                 progress=False)
    np.testing.assert_array_equal(read_spins(out), read_spins(reference))


def test_type_ii_file_records_its_hamiltonian(tmp_path):
    path = _gen(tmp_path / "t2.h5", n=2, ham=TypeII(anisotropy=0.2))
    attrs = dataset_attrs(path)
    assert attrs["hamiltonian"]["type"] == "II"
    with h5py.File(path) as f:
        assert f.attrs["hamiltonian.anisotropy"] == pytest.approx(0.2)
        assert json.loads(f.attrs["params_json"])["schedule"]["sweeps"] == 40


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--size", "9"], "size must be an even integer >= 8"),
        (["--size", "6"], "size must be an even integer >= 8"),
        (["--n", "0"], "n must be a positive integer"),
        (["--type", "III"], "invalid choice"),
        (["--sweeps", "0"], "--sweeps must be positive"),
    ],
)
def test_cli_bad_arguments_give_one_line_and_exit_2(tmp_path, capsys, extra, message):
    args = ["generate", "--type", "I", "--n", "2", "--size", "8", "--out", str(tmp_path / "x.h5")]
    code = None
    try:
        code = main(args + extra)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x.h5").exists()


def test_cli_unwritable_path(tmp_path, capsys):
    code = main(["generate", "--type", "I", "--n", "1", "--size", "8",
                 "--out", str(tmp_path / "missing_dir" / "x.h5")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "does not exist" in err and len(err.splitlines()) == 1


def test_cli_refuses_foreign_file(tmp_path, capsys):
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = np.zeros(3)
    code = main(["generate", "--type", "I", "--n", "1", "--size", "8", "--out", str(foreign)])
    assert code == 2 and "not a spinsr-tf dataset" in capsys.readouterr().err
    with h5py.File(foreign) as f:  # the user's file is untouched
        assert list(f.keys()) == ["x"]


def test_minimum_image_dataset_stays_readable_and_is_refused_for_the_converged_sum(tmp_path):
    from spinsr_tf.physics import hamiltonian_from_attrs, max_torque

    sched = dataclasses.replace(FAST, relax_omega=1.9, relax_sweeps=300)
    old = TypeII(dipolar_images="minimum")
    path = generate_dataset(tmp_path / "old.h5", old, n=2, size=8, seed=1, schedule=sched,
                            progress=False)
    spins = read_spins(path)
    assert hamiltonian_from_attrs(dataset_attrs(path)["hamiltonian"]) == old
    with h5py.File(path) as f:   # the relaxation's torque, recomputed on the stored spins
        assert f.attrs["relaxed.max_torque_max"] == pytest.approx(max_torque(spins, old).max())
    with pytest.raises(UserError, match="hamiltonian.dipolar_images") as info:
        generate_dataset(path, TypeII(), n=2, size=8, seed=1, schedule=sched, progress=False)
    assert "\n" not in str(info.value)


def test_cli_field_is_recorded_and_read_back(tmp_path, capsys):
    from spinsr_tf.physics import hamiltonian_from_attrs, with_field

    out = tmp_path / "f.h5"
    assert main(["generate", "--type", "I", "--n", "2", "--size", "16", "--sweeps", "60",
                 "--field", "0.06", "--quiet", "--out", str(out)]) == 0
    with h5py.File(out) as f:
        assert f.attrs["hamiltonian.field_z"] == 0.06 and f.attrs["hamiltonian.type"] == "I"
        attrs = {k[len("hamiltonian."):]: v for k, v in f.attrs.items()
                 if k.startswith("hamiltonian.")}
    assert hamiltonian_from_attrs(attrs) == with_field(TypeI(), 0.06)
    assert read_spins(out)[..., 2].mean() > 0.3          # magnetised along the field
    # without --field nothing about a field is written: files as before
    plain = tmp_path / "p.h5"
    assert main(["generate", "--type", "II", "--n", "1", "--size", "8", "--sweeps", "20",
                 "--quiet", "--out", str(plain)]) == 0
    with h5py.File(plain) as f:
        assert not any("field" in k for k in f.attrs)
    assert "warning" not in capsys.readouterr().err


@pytest.mark.parametrize("value", ["nan", "abc", "inf", ""])
def test_cli_bad_field_is_one_line_exit_2_nothing_written(tmp_path, capsys, value):
    out = tmp_path / "x.h5"
    code = main(["generate", "--type", "I", "--n", "1", "--size", "8", "--field", value,
                 "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "--field" in err and len(err.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_cli_warns_in_one_line_about_a_saturating_field(tmp_path, capsys):
    out = tmp_path / "s.h5"
    assert main(["generate", "--type", "I", "--n", "1", "--size", "8", "--sweeps", "20",
                 "--field", "-0.2", "--quiet", "--out", str(out)]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(err) == 1 and "saturation" in err[0]


def test_mixture_resume_after_interruption_equals_uninterrupted_run(tmp_path):
    from spinsr_tf.data.generate import read_map_params
    from spinsr_tf.data.mixture import Mixture

    mix = Mixture.parse("universal")

    def gen(path, progress=False):
        return generate_dataset(path, mix, n=5, size=8, seed=3, schedule={"sweeps": 40},
                                block=2, progress=progress)

    reference = gen(tmp_path / "ref.h5")
    calls = []

    def interrupt_after_two_blocks(done, n):
        calls.append(done)
        if len(calls) == 2:
            raise KeyboardInterrupt

    path = tmp_path / "b.h5"
    with pytest.raises(KeyboardInterrupt):
        gen(path, progress=interrupt_after_two_blocks)
    assert not path.exists() and len(list((tmp_path / "b.h5.partial").glob("block_*.npy"))) == 2
    seen = []
    gen(path, progress=lambda done, n: seen.append(done))
    assert seen == [5]
    np.testing.assert_array_equal(read_spins(path), read_spins(reference))
    np.testing.assert_array_equal(read_map_params(path), read_map_params(reference))
    types = {t.decode() for t in read_map_params(path)["type"]}
    assert types == {"I", "II"}       # both models and their schedules in one file
