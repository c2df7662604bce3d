"""The equivariance loss term: its graph, its gradient rule, its refusals, and the CLI."""

import dataclasses

import keras
import numpy as np
import pytest

from spinsr_tf.base.errors import UserError
from spinsr_tf.cli import main
from spinsr_tf.data.degradation import Degradation
from spinsr_tf.nn.config import TrainConfig, recipe
from spinsr_tf.nn.losses import Equivariance, LRConsistency, term_from_config
from spinsr_tf.nn.network import build_sr_model
from spinsr_tf.nn.training import build_training_graph


def _graph(term, padding="periodic", scale=4, seed=0, perturb=True):
    keras.utils.set_random_seed(seed)
    network = build_sr_model(Degradation(scale, padding=padding), output="unit", residual=True)
    if perturb:  # a non-trivial correction, so that the network is not plain interpolation
        conv = network.get_layer("sr_conv")
        conv.kernel.assign(0.05 * np.random.default_rng(seed).normal(size=conv.kernel.shape))
    config = TrainConfig(data="unused.h5", scale=scale, output="unit", residual=True,
                         padding=padding, learning_rate=1e-3, losses=(LRConsistency(), term))
    return network, build_training_graph(network, config)


@pytest.fixture(scope="module")
def lr_maps(textures):
    from spinsr_tf.data.degradation import gaussian_downsample

    return gaussian_downsample(textures, 4)


def test_identity_group_is_the_fixed_point_residual(lr_maps):
    """With the one-element group the term is MSE(f(A(f(y))), f(y)): the wiring (the network
    called twice, the network's own degradation, the normalisation) against a direct computation."""
    network, graph = _graph(Equivariance(group="identity"))
    out = graph.predict(lr_maps, verbose=0)
    sr = network.predict(lr_maps, verbose=0)["sr"]
    # network(y)["lr"] is A(f(y)); feeding it back gives f(A(f(y)))
    again = network.predict(network.predict(lr_maps, verbose=0)["lr"], verbose=0)["sr"]
    expected = np.mean((again - sr) ** 2, axis=(1, 2, 3))
    np.testing.assert_allclose(out["equivariance"], expected, rtol=1e-4, atol=1e-9)
    assert expected.min() > 0


def test_translations_show_the_network_what_sampling_hides(lr_maps):
    """The untrained residual network is aligned interpolation (+ normalisation), which commutes
    with shifts by whole LR pixels but not with shifts by fractions of one: those are what the
    term adds. Checked directly with exact shifts, then through the term's random draws."""
    from spinsr_tf.nn.symmetry import LatticeOp, apply

    keras.utils.set_random_seed(0)
    network = build_sr_model(4, output="unit", residual=True)

    def residual(op):
        sr = network.predict(lr_maps, verbose=0)["sr"]
        t = apply(sr, op)
        again = network.predict(_degrade(t), verbose=0)["sr"]
        return float(np.mean((again - t) ** 2))

    base = residual(LatticeOp())
    assert residual(LatticeOp(shift=(4, 8))) == pytest.approx(base, rel=1e-4)
    assert residual(LatticeOp(shift=(1, 2))) > 1.2 * base
    _, shifts = _graph(Equivariance(group="translations"), perturb=False)
    drawn = [float(shifts.predict(lr_maps, verbose=0)["equivariance"].mean()) for _ in range(6)]
    assert np.mean(drawn) > 1.2 * base and len(set(drawn)) > 1


def _degrade(hr):
    from spinsr_tf.data.degradation import gaussian_downsample

    return gaussian_downsample(hr, 4)


def test_stop_gradient_changes_the_gradient(lr_maps):
    import tensorflow as tf

    grads = {}
    for stop in (True, False):
        network, graph = _graph(Equivariance(group="identity", stop_gradient=stop))
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(graph(lr_maps, training=False)["equivariance"])
        var = network.get_layer("sr_conv").kernel
        grads[stop] = np.asarray(tape.gradient(loss, var))
    assert np.abs(grads[True]).max() > 0
    assert not np.allclose(grads[True], grads[False], rtol=1e-3, atol=1e-9)


def test_maps_with_borders_use_crops(lr_maps):
    network, graph = _graph(Equivariance(group="translations"), padding="reflect")
    out = graph.predict(lr_maps, verbose=0)["equivariance"]
    assert out.shape == (len(lr_maps),) and np.all(np.isfinite(out)) and out.min() > 0


def test_config_round_trip_and_refusals():
    term = Equivariance(weight=0.5, group="translations", draw="sample", stop_gradient=False)
    assert term_from_config(term.to_config()) == term
    config = recipe("equivariant", "d.h5", 8)
    assert TrainConfig.from_json(config.to_json()) == config
    for bad, word in (({"weight": -1.0}, "weight"), ({"weight": float("nan")}, "weight"),
                      ({"group": "scale"}, "group"), ({"draw": "epoch"}, "draw"),
                      ({"stop_gradient": "yes"}, "stop_gradient")):
        with pytest.raises(UserError, match=word):
            Equivariance(**bad)
    bulk = {"type": "I", "J": 1.0, "dmi": 0.3, "dmi_kind": "bulk"}
    with pytest.raises(UserError, match="mirror"):
        dataclasses.replace(term, group="translations+rotations+mirrors",
                            hamiltonian=bulk).check(3, "periodic", (8, 8))
    Equivariance(group="lattice", hamiltonian=bulk).check(3, "periodic", (8, 8))  # flip-overs
    with pytest.raises(UserError, match="at least 2x2"):
        Equivariance(group="translations").check(3, "periodic", (1, 4))
    Equivariance(group="rotations").check(3, "periodic", (1, 1))


@pytest.fixture(scope="module")
def data_file(tmp_path_factory, textures):
    from conftest import write_type_i_file

    return write_type_i_file(tmp_path_factory.mktemp("eq") / "d.h5", textures, "bulk")


@pytest.mark.parametrize("extra, message", [
    (["--equivariance-weight", "-1"], "weight must be a finite number >= 0"),
    (["--equivariance-weight", "nan"], "weight must be a finite number >= 0"),
    (["--equivariance", "translations+rotations+mirrors"], "mirror"),
    (["--equivariance", "none", "--equivariance-weight", "2"], "--equivariance none"),
])
def test_cli_equivariance_mistakes_are_one_line(data_file, tmp_path, capsys, extra, message):
    code = main(["train", "--data", str(data_file), "--scale", "4", "--out", str(tmp_path / "r"),
                 "--network", "equivariant", "--epochs", "1", "--quiet", *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "r").exists()


def test_cli_default_is_the_equivariant_recipe_and_paper_is_one_flag_away(data_file, tmp_path):
    from spinsr_tf.nn.training import read_run_config

    common = ["--data", str(data_file), "--scale", "4", "--epochs", "1", "--batch-size", "2",
              "--val-fraction", "0.25", "--no-jit", "--quiet"]
    assert main(["train", *common, "--out", str(tmp_path / "default")]) == 0
    config = read_run_config(tmp_path / "default")
    assert config == recipe("equivariant", config.data, 4, **{
        k: getattr(config, k) for k in ("epochs", "batch_size", "val_fraction", "jit_compile",
                                        "kernel_size", "sigma", "padding", "pixel")}).replace(
        losses=config.losses)
    eq = config.term(Equivariance)
    assert eq.group == "lattice" and eq.weight == 1.0 and config.residual
    assert eq.hamiltonian["dmi_kind"] == "bulk"      # recorded from the data file
    assert main(["train", *common, "--out", str(tmp_path / "paper"), "--network", "paper"]) == 0
    paper = read_run_config(tmp_path / "paper")
    assert paper.output == "linear" and not paper.residual and paper.learning_rate == 0.01
    assert [t.kind for t in paper.losses] == ["lr_consistency"]
