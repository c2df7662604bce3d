"""Distillation: a student learns a teacher network's SR maps — the term, the data it reads, the
student's files made from a vector teacher, and the scalar maker's distilled recipe."""

import json

import h5py
import numpy as np
import pytest

from spinsr_tf.base.errors import UserError
from spinsr_tf.data.degradation import Degradation
from spinsr_tf.data.mixture import Mixture, Uniform
from spinsr_tf.data.stream import open_training_data
from spinsr_tf.experiments import universal
from spinsr_tf.experiments.distillation import student_files
from spinsr_tf.nn.config import TrainConfig, recipe
from spinsr_tf.nn.losses import Distillation, LRConsistency, term_from_config
from tests.conftest import random_unit_spins, smooth_unit_spins


def _lr_and_teacher(tmp_path, n=8, lr_side=4, factor=4, channels=1, seed=0):
    """An LR file (dataset ``lr``, factor attribute) and a teacher file of the same samples."""
    rng = np.random.default_rng(seed)
    lr = rng.uniform(-1, 1, (n, lr_side, lr_side, channels)).astype(np.float32)
    teacher = rng.uniform(-1, 1, (n, lr_side * factor, lr_side * factor, channels))
    with h5py.File(tmp_path / "lr.h5", "w") as f:
        f["lr"] = lr
        f.attrs.update(Degradation(factor).to_attrs())
    with h5py.File(tmp_path / "teacher.h5", "w") as f:
        f["spins"] = teacher.astype(np.float32)
    return tmp_path / "lr.h5", tmp_path / "teacher.h5", lr, teacher.astype(np.float32)


def test_the_term_round_trips_and_needs_the_teacher_maps(tmp_path):
    term = Distillation(weight=0.5)
    assert term_from_config(term.to_config()) == term
    assert term.needs_teacher and not term.needs_hr
    lr_path, t_path, _, _ = _lr_and_teacher(tmp_path)
    with pytest.raises(UserError, match="needs a teacher's SR maps"):
        recipe("equivariant", lr_path, 4, losses=(Distillation(),))
    with pytest.raises(UserError, match="no loss term learns from it"):
        recipe("equivariant", lr_path, 4, losses=(LRConsistency(),), teacher_data=t_path)
    config = recipe("equivariant", lr_path, 4, losses=(Distillation(),), teacher_data=t_path)
    assert config.distilled and not config.supervised
    assert TrainConfig.from_json(json.loads(json.dumps(config.to_json()))) == config


def test_the_data_serves_the_teacher_maps_of_each_sample(tmp_path):
    lr_path, t_path, _, teacher = _lr_and_teacher(tmp_path)
    data = open_training_data(lr_path, 4, teacher_path=t_path)
    idx = np.array([5, 1, 1, 7])
    np.testing.assert_array_equal(data.teacher(idx), teacher[idx])
    assert data.describe()["teacher"]["shape"] == list(teacher.shape)
    assert data.prepare(teacher=True)["teacher"] == len(teacher)    # now from memory
    np.testing.assert_array_equal(data.teacher(idx), teacher[idx])
    data.close()
    assert "teacher" not in open_training_data(lr_path, 4).describe()   # earlier runs resume
    with h5py.File(tmp_path / "short.h5", "w") as f:
        f["spins"] = teacher[:-1]
    with pytest.raises(UserError, match=r"teacher maps of shape \(7, 16, 16, 1\)"):
        open_training_data(lr_path, 4, teacher_path=tmp_path / "short.h5")
    with pytest.raises(UserError, match="does not exist"):
        open_training_data(lr_path, 4, teacher_path=tmp_path / "none.h5")


def test_each_batch_targets_the_teacher_maps_of_its_samples(tmp_path):
    from spinsr_tf.data.stream import BatchPlan
    from spinsr_tf.nn.training import _Batches

    lr_path, t_path, lr, teacher = _lr_and_teacher(tmp_path)
    data = open_training_data(lr_path, 4, teacher_path=t_path)
    plan = BatchPlan(np.arange(8), 3, seed=1)
    batches = _Batches(data, plan, 0, 1, (Distillation(), LRConsistency()))
    for step in range(plan.steps_per_epoch):
        idx = plan.batch(0, step)
        x, targets = batches[step]
        np.testing.assert_array_equal(x, lr[idx])
        np.testing.assert_array_equal(targets["sr"], teacher[idx])
        np.testing.assert_array_equal(targets["lr"], lr[idx])


def test_a_student_moves_towards_its_teacher_and_records_no_hr(tmp_path):
    """Trained on a teacher's maps alone (smooth textures, their own LR maps as input), the
    student's SR maps come closer to the teacher's than the network it starts as."""
    from spinsr_tf.nn.network import load_sr_model, sr_submodel
    from spinsr_tf.nn.training import train

    teacher = smooth_unit_spins(16, 32, seed=3)
    lr = Degradation(4).apply(teacher)
    with h5py.File(tmp_path / "lr.h5", "w") as f:
        f["lr"] = lr
        f.attrs.update(Degradation(4).to_attrs())
    with h5py.File(tmp_path / "teacher.h5", "w") as f:
        f["spins"] = teacher
    config = recipe("equivariant", tmp_path / "lr.h5", 4, losses=(Distillation(),),
                    teacher_data=tmp_path / "teacher.h5", epochs=6, batch_size=4,
                    jit_compile=False, val_fraction=0.25)
    history = train(config, tmp_path / "run")
    assert history["loss"][-1] < 0.7 * history["loss"][0], history["loss"]
    record = json.loads((tmp_path / "run" / "config.json").read_text())
    assert record["run"]["loss"].startswith("distilled from a teacher")
    assert record["run"]["data_identity"]["teacher"]["shape"] == list(teacher.shape)
    net = sr_submodel(load_sr_model(tmp_path / "run" / "model.keras", compile=False))
    trained = np.mean((net.predict(lr, verbose=0) - teacher) ** 2)
    start = np.mean((Degradation(4).upsample(lr, "bicubic", "aligned", normalize=True)
                     - teacher) ** 2)     # the residual network starts at this
    assert trained < start, (trained, start)


def _vector_lr_file(path, n, seed, factor=4, side=32):
    hr = random_unit_spins((n, side, side, 3), seed=seed)
    with h5py.File(path, "w") as f:
        f["lr"] = Degradation(factor).apply(hr)
        f.attrs.update(Degradation(factor).to_attrs())
        f.attrs["params_json"] = json.dumps({"seed": seed})
    return path


def test_student_files_interleave_the_sources_and_hold_the_teachers_sz(tmp_path):
    """Sample k·J + j is map k of source j: its Sz in the LR file, and the Sz of the teacher's
    map as ``upscale`` makes it (the mean over symmetric copies) in the teacher file. Made
    again: kept; another teacher: refused; a scalar teacher: refused."""
    from spinsr_tf.inference.uncertainty import symmetric_mean, trained_hamiltonian
    from spinsr_tf.nn.network import load_sr_model
    from spinsr_tf.base.pretrained import resolve_model

    a = _vector_lr_file(tmp_path / "a.h5", 2, seed=1)
    b = _vector_lr_file(tmp_path / "b.h5", 2, seed=2)
    lr_out, t_out = tmp_path / "s-lr.h5", tmp_path / "s-teacher.h5"
    student_files([a, b], "pretrained:universal-x4", lr_out, t_out)
    with h5py.File(a) as f:
        la = f["lr"][:]
    with h5py.File(b) as f:
        lb = f["lr"][:]
    vector = np.stack([la[0], lb[0], la[1], lb[1]])
    with h5py.File(lr_out) as f:
        np.testing.assert_array_equal(f["lr"][:], vector[..., 2:3])
        assert int(f.attrs["factor"]) == 4 and f.attrs["component"] == "z"
    path = resolve_model("pretrained:universal-x4")
    sr = symmetric_mean(load_sr_model(path, compile=False), vector, None,
                        trained_hamiltonian(path))[0]
    with h5py.File(t_out) as f:
        np.testing.assert_allclose(f["spins"][:], sr[..., 2:3], atol=1e-5)
    data = open_training_data(lr_out, 4, teacher_path=t_out)    # a run reads them as a pair
    assert data.n == 4
    data.close()
    stamp = t_out.stat().st_mtime_ns
    student_files([a, b], "pretrained:universal-x4", lr_out, t_out)
    assert t_out.stat().st_mtime_ns == stamp
    with pytest.raises(UserError, match="is not this student's file"):
        student_files([b, a], "pretrained:universal-x4", lr_out, t_out)
    with pytest.raises(UserError, match="not a 3-component model"):
        student_files([a, b], "pretrained:universal-sz-x4", tmp_path / "x.h5",
                      tmp_path / "y.h5")
    c = _vector_lr_file(tmp_path / "c.h5", 2, seed=3, factor=8, side=64)
    with pytest.raises(UserError, match="not of the same degradation"):
        student_files([a, c], "pretrained:universal-x4", tmp_path / "x.h5", tmp_path / "y.h5")
    with pytest.raises(UserError, match="inverts"):
        student_files([c], "pretrained:universal-x4", tmp_path / "x.h5", tmp_path / "y.h5")
    assert not (tmp_path / "x.h5").exists() and not (tmp_path / "y.h5").exists()


def test_the_recipe_refuses_a_teacher_where_it_cannot_teach(tmp_path):
    with pytest.raises(UserError, match="aliased_dmi needs a teacher"):
        universal.UniversalRecipe(aliased_dmi=True)
    with pytest.raises(UserError, match="x4 aliases no DMI texture"):
        universal.aliased_mixture_spec(4)
    assert Mixture.parse(universal.aliased_mixture_spec(8))["dmi"] == Uniform(0.414, 0.73)
    taught = universal.UniversalRecipe(teacher="pretrained:universal-x4")
    with pytest.raises(UserError, match="a teacher distils scalar models"):
        universal.make_universal(tmp_path / "a", factors=(4,), recipe=taught, progress=False)
    with pytest.raises(UserError, match="is a x4 model, the student x8"):
        universal.make_universal(tmp_path / "b", factors=(8,), recipe=taught, progress=False,
                                 channels="z")
    missing = universal.UniversalRecipe(teacher="nowhere.keras")
    with pytest.raises(UserError, match="does not exist"):
        universal.make_universal(tmp_path / "c", factors=(4,), recipe=missing,
                                 progress=False, channels="z")
    aliased = universal.UniversalRecipe(teacher="pretrained:universal-x4", aliased_dmi=True)
    with pytest.raises(UserError, match="x4 aliases no DMI texture"):
        universal.make_universal(tmp_path / "d", factors=(4,), recipe=aliased,
                                 progress=False, channels="z")
    assert not any((tmp_path / d).exists() for d in "abcd")     # refused before any work


def test_the_scalar_maker_distils_from_the_vector_model(tmp_path):
    """The distilled recipe end to end on a tiny mixture: the student's files interleave the
    resolved and the aliased maps, the run learns the teacher's maps with no HR map, and
    the card says so and gives the call that makes it again."""
    tiny = universal.UniversalRecipe(n_train=2, n_test=2, size=64, epochs=1, batch_size=2,
                                     jit_compile=False, teacher="pretrained:universal-x8",
                                     aliased_dmi=True)
    folder, = universal.make_universal(tmp_path / "out", factors=(8,), recipe=tiny,
                                       progress=False, channels="z")
    data = tmp_path / "out" / "data"
    from spinsr_tf.data.generate import read_map_params

    assert min(read_map_params(data / "train-aliased-x8.h5")["dmi"]) >= 0.414
    with h5py.File(data / "train-aliased-x8.h5") as f:
        assert f.attrs["seed"] == 2
    with h5py.File(data / "train-x8-lr.h5") as f, \
            h5py.File(data / "train-aliased-x8-lr.h5") as g, \
            h5py.File(data / "student-z-x8-lr.h5") as s:
        np.testing.assert_array_equal(s["lr"][1::2], g["lr"][..., 2:3])
        np.testing.assert_array_equal(s["lr"][0::2], f["lr"][..., 2:3])
    config = json.loads((folder / "config.json").read_text())
    assert config["teacher_data"] == "data/student-z-x8-teacher.h5"
    assert [t["term"] for t in config["losses"]] == ["distillation"]
    card = (folder / "README.md").read_text()
    assert "Distilled from `pretrained:universal-x8`" in card
    assert "teacher='pretrained:universal-x8'" in card and "aliased_dmi=True" in card
    assert universal.aliased_mixture_spec(8) in card
