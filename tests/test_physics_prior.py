"""The physics-prior loss term: its energy layer, the loss it adds, training and upscale with it."""

import h5py
import keras
import numpy as np
import pytest

from spinsr_tf.cli import main
from spinsr_tf.base.errors import UserError
from spinsr_tf.nn.config import TrainConfig
from spinsr_tf.nn.losses import LRConsistency, PhysicsPrior
from spinsr_tf.nn.losses.physics_prior import EnergyPerSpin
from spinsr_tf.nn.network import build_sr_model
from spinsr_tf.nn.training import build_training_graph, read_run_config
from spinsr_tf.physics import TypeI, TypeII, energy


def test_energy_layer_is_the_numpy_energy_per_spin_and_survives_save_load(tmp_path):
    x = np.random.default_rng(0).normal(size=(2, 16, 16, 3)).astype("float32")
    layer = EnergyPerSpin(TypeII())
    expected = energy(x.astype(np.float64), TypeII()) / 16 ** 2
    np.testing.assert_allclose(np.asarray(layer(x)), expected, rtol=1e-5)
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, EnergyPerSpin(TypeII(), name="e")(inputs))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert loaded.get_layer("e").hamiltonian == TypeII().to_attrs()
    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, rtol=1e-5)


def test_training_loss_is_the_lr_misfit_plus_the_weighted_energy(tmp_path):
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(1).normal(size=(4, 4, 4, 3)).astype("float32")
    config = TrainConfig(data=str(tmp_path / "unused.h5"), scale=4, output="unit", residual=True,
                         padding="periodic", learning_rate=1e-2,
                         losses=(LRConsistency(),
                                 PhysicsPrior(weight=0.5, hamiltonian=TypeI().to_attrs())))
    network = build_sr_model(4, output="unit", residual=True)
    graph = build_training_graph(network, config)
    out = network.predict(x, verbose=0)
    lr_mse = np.mean((out["lr"] - x) ** 2)
    e = np.mean(energy(out["sr"].astype(np.float64), TypeI())) / 16 ** 2
    targets = {"lr": x, "energy": np.zeros(4, "float32")}
    total = graph.evaluate(x, targets, verbose=0, return_dict=True)
    assert total["loss"] == pytest.approx(lr_mse + 0.5 * e, rel=1e-4)
    assert total["lr_loss"] == pytest.approx(lr_mse, rel=1e-4)
    assert total["energy_loss"] == pytest.approx(e, rel=1e-4)
    with pytest.raises(UserError, match="output='unit'"):
        TrainConfig(data="d.h5", scale=4, losses=(LRConsistency(), PhysicsPrior(weight=1.0)))


def _fit_energy(x, weight, epochs=10):
    """Energy per spin of the SR maps (inference mode) before and after ``epochs`` full-batch
    steps from seed 0, with the prior at ``weight`` (None: the LR term alone)."""
    keras.utils.set_random_seed(0)
    terms = (LRConsistency(),)
    if weight is not None:
        terms += (PhysicsPrior(weight=weight, hamiltonian=TypeI().to_attrs()),)
    config = TrainConfig(data="unused.h5", scale=4, output="unit", residual=True,
                         padding="periodic", learning_rate=1e-2, losses=terms)
    network = build_sr_model(4, output="unit", residual=True)
    graph = build_training_graph(network, config)
    graph.jit_compile = False

    def e():
        sr = np.asarray(network(x, training=False)["sr"], np.float64)
        return np.mean(energy(sr, TypeI())) / sr.shape[1] / sr.shape[2]

    start = e()
    targets = {"lr": x} if weight is None else {"lr": x, "energy": np.zeros(len(x), "float32")}
    graph.fit(x, targets, epochs=epochs, batch_size=len(x), shuffle=False, verbose=0)
    return start, e()


def test_training_with_the_prior_lowers_the_energy_the_lr_term_alone_raises():
    """Same start, same steps: with the prior the SR energy falls (measured -1.704 -> -1.779 J
    per spin), with the LR term alone it rises (-> -1.579): the prior's gradient reaches the
    weights with its sign."""
    x = np.random.default_rng(1).normal(size=(4, 4, 4, 3)).astype("float32")
    start, with_prior = _fit_energy(x, 0.5)
    start_plain, plain = _fit_energy(x, None)
    assert start == pytest.approx(start_plain)
    assert with_prior < start - 0.03, (start, with_prior)
    assert with_prior < plain - 0.1, (with_prior, plain)


@pytest.fixture(scope="module")
def data_file(tmp_path_factory, textures):
    from conftest import write_type_i_file

    return write_type_i_file(tmp_path_factory.mktemp("prior") / "d.h5", textures)


def test_cli_train_with_prior_then_upscale_with_refinement(data_file, tmp_path, capsys,
                                                             monkeypatch):
    run = tmp_path / "run"
    args = ["train", "--data", str(data_file), "--scale", "4", "--out", str(run), "--epochs", "1",
            "--batch-size", "3", "--lr", "0.001", "--residual", "--physics", "typeI",
            "--no-xla", "--quiet", "--val-fraction", "0.25"]
    assert main(args) == 0
    config = read_run_config(run)
    term = config.term(PhysicsPrior)
    assert config.output == "unit" and term.prior == "typeI"
    assert term.hamiltonian == TypeI().to_attrs()
    rule = term.weight_rule
    assert term.weight in rule["weights"] and rule["tolerance"] >= 1e-10

    # a resume takes the stored λ and runs no rule (the finished run trains no further;
    # resuming training itself is test_training's)
    def no_rule(*args, **kwargs):
        raise AssertionError("the λ rule ran on resume")

    monkeypatch.setattr("spinsr_tf.inference.weight_rule.choose_weight", no_rule)
    assert main(args + ["--resume"]) == 0
    assert read_run_config(run) == config
    monkeypatch.undo()

    from spinsr_tf.data.degradation import gaussian_downsample

    with h5py.File(data_file) as f:
        hr = f["spins"][:1]
    np.save(tmp_path / "lr.npy", gaussian_downsample(hr, 4))
    for name, extra in (("plain", []), ("refined", ["--refine", "physics", "--steps", "50"])):
        assert main(["upscale", str(tmp_path / "lr.npy"), "--model", str(run / "model.keras"),
                     "--out", str(tmp_path / f"{name}.npy"), *extra]) == 0
    plain, refined = (np.load(tmp_path / f"{n}.npy").astype(np.float64)
                      for n in ("plain", "refined"))
    assert energy(refined, TypeI()) < energy(plain, TypeI())


@pytest.mark.parametrize("extra, message", [
    (["--physics", "typeI", "--output", "linear"], "needs output='unit'"),
    (["--physics-weight", "0.1"], "without --physics"),
    (["--physics", "typeI", "--physics-weight", "big"], "number or 'auto'"),
    (["--physics", "typeI", "--physics-set", "K=1"], "no parameter 'K'"),
    (["--physics", "typeI", "--padding", "reflect"], "periodic"),
])
def test_cli_train_prior_mistakes_are_one_line(data_file, tmp_path, capsys, extra, message):
    code = main(["train", "--data", str(data_file), "--scale", "4", "--out", str(tmp_path / "r"),
                 "--epochs", "1", "--quiet", *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "r").exists()
