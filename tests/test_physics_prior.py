"""Physics priors: Hamiltonian resolution, λ rule, the prior layer, training and upscale with it."""

import json

import h5py
import keras
import numpy as np
import pytest

from spinsr_tf.cli import main
from spinsr_tf.base.errors import UserError
from spinsr_tf.model import build_sr_model, compile_sr_model, load_sr_model
from spinsr_tf.physics import TypeI, TypeII, anneal, energy
from spinsr_tf.prior import (PhysicsPrior, choose_weight, noise_variance, parse_overrides,
                             resolve_prior)


def test_resolve_prior_reads_the_file_and_applies_overrides():
    attrs = {"hamiltonian.type": "I", "hamiltonian.J": 1.0, "hamiltonian.dmi": 0.4,
             "hamiltonian.dmi_kind": "bulk", "seed": 3}
    assert resolve_prior("typeI", attrs) == TypeI(dmi=0.4, dmi_kind="bulk")
    assert resolve_prior("typeI", attrs, {"dmi": 0.48}) == TypeI(dmi=0.48, dmi_kind="bulk")
    assert resolve_prior("typeII", attrs) == TypeII()        # the file is of the other type
    assert resolve_prior("exchange") == TypeI(dmi=0.0)
    assert resolve_prior("none") is None
    assert parse_overrides(["dmi=0.36", "dmi_kind=bulk"]) == {"dmi": 0.36, "dmi_kind": "bulk"}
    for call, message in [(lambda: resolve_prior("typeIII"), "must be one of"),
                          (lambda: resolve_prior("typeII", None, {"dmi": 1}), "no parameter"),
                          (lambda: parse_overrides(["dmi"]), "NAME=VALUE")]:
        with pytest.raises(UserError, match=message):
            call()


def test_noise_variance_of_white_noise():
    rng = np.random.default_rng(0)
    flat = np.full((4, 32, 32, 3), 0.3) + 0.05 * rng.normal(size=(4, 32, 32, 3))
    assert noise_variance(flat) == pytest.approx(0.05 ** 2, rel=0.1)


@pytest.fixture(scope="module")
def textures():
    return anneal(TypeI(), 32, seed=0, indices=[0, 1])


def test_choose_weight_follows_the_discrepancy_principle(textures):
    from spinsr_tf.data.degradation import gaussian_downsample

    clean = gaussian_downsample(textures, 4)
    noisy = clean + 0.03 * np.random.default_rng(0).normal(size=clean.shape)
    grid = (1e-3, 1e-1, 10.0, 1e3)
    # relaxed textures of the prior's own Hamiltonian: even the strongest prior fits them
    assert choose_weight(clean, TypeI(), 4, grid=grid, steps=60, noise=1e-4) == 1e3
    weight, details = choose_weight(noisy, TypeI(), 4, grid=grid, steps=60, noise=1e-4,
                                    return_details=True)
    errors = dict(zip(details["weights"], details["lr_mse"]))
    tol = details["tolerance"]
    assert tol == max(1e-4, 10 * details["lr_mse"][0])
    assert weight < 1e3 and errors[weight] <= tol     # the chosen λ fits within the noise
    nxt = grid[grid.index(weight) + 1]
    assert errors[nxt] > tol                          # and the next one does not
    assert choose_weight(noisy, TypeI(), 4, grid=grid, steps=60, noise=10.0) == 1e3


def test_choose_weight_backs_off_for_a_wrong_hamiltonian(textures):
    """Noise-free LR maps of relaxed Type I textures: the right Hamiltonian fits them at the
    largest λ; a DMI 50 % too strong, or of the wrong kind, soon costs misfit and gets a small λ."""
    from spinsr_tf.data.degradation import gaussian_downsample

    lr = gaussian_downsample(textures, 8)
    right, details = choose_weight(lr, TypeI(), 8, steps=100, return_details=True)
    assert right == 1.0 and details["tolerance"] == pytest.approx(10 * details["lr_mse"][0])
    for wrong in (TypeI(dmi=0.45), TypeI(dmi_kind="bulk")):
        weight, details = choose_weight(lr, wrong, 8, steps=100, return_details=True)
        assert weight <= 1e-3 and details["lr_mse"][-1] > details["tolerance"]


def test_prior_layer_adds_the_energy_and_survives_save_load(tmp_path):
    model = build_sr_model(4, output="unit", residual=True, prior=TypeII(), prior_weight=0.5)
    x = np.random.default_rng(0).normal(size=(2, 4, 4, 3)).astype("float32")
    sr = np.asarray(model(x)["sr"], dtype=np.float64)
    expected = 0.5 * np.mean(energy(sr, TypeII()) / 16 ** 2)
    np.testing.assert_allclose(float(model.losses[0]), expected, rtol=1e-5)
    model.save(tmp_path / "m.keras")
    loaded = load_sr_model(tmp_path / "m.keras")
    layer = loaded.get_layer("physics_prior")
    assert isinstance(layer, PhysicsPrior) and layer.weight == 0.5
    assert layer.hamiltonian == TypeII().to_attrs()
    np.testing.assert_allclose(loaded(x)["sr"], model(x)["sr"], atol=1e-6)
    with pytest.raises(UserError, match="output='unit'"):
        build_sr_model(4, prior=TypeI(), prior_weight=1.0)


def test_training_loss_is_the_lr_misfit_plus_the_weighted_energy():
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(1).normal(size=(4, 4, 4, 3)).astype("float32")
    model = compile_sr_model(build_sr_model(4, output="unit", residual=True, prior=TypeI(),
                                            prior_weight=0.5), 1e-2)
    out = model.predict(x, verbose=0)
    expected = (np.mean((out["lr"] - x) ** 2)
                + 0.5 * np.mean(energy(out["sr"].astype(np.float64), TypeI())) / 16 ** 2)
    assert float(model.evaluate(x, {"lr": x}, verbose=0)) == pytest.approx(expected, rel=1e-4)
    history = model.fit(x, {"lr": x}, epochs=3, verbose=0, shuffle=False).history["loss"]
    assert history[-1] < history[0]


@pytest.fixture(scope="module")
def data_file(tmp_path_factory, textures):
    path = tmp_path_factory.mktemp("prior") / "d.h5"
    with h5py.File(path, "w") as f:
        f["spins"] = np.concatenate([textures, np.roll(textures, 5, axis=2)]).astype("float32")
        f.attrs.update({"hamiltonian.type": "I", "hamiltonian.J": 1.0, "hamiltonian.dmi": 0.3,
                        "hamiltonian.dmi_kind": "interfacial"})
    return path


def test_cli_train_with_prior_then_upscale_with_refinement(data_file, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "--data", str(data_file), "--scale", "4", "--out", str(run), "--epochs", "1",
            "--batch-size", "2", "--lr", "0.001", "--residual", "--physics", "typeI",
            "--no-xla", "--quiet", "--val-fraction", "0.25"]
    assert main(args) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["output"] == "unit" and config["physics"] == "typeI"
    assert config["physics_hamiltonian"] == TypeI().to_attrs()
    rule = config["physics_weight_rule"]
    assert config["physics_weight"] in rule["weights"] and rule["tolerance"] >= 1e-10
    assert main(args[:8] + ["2"] + args[9:] + ["--resume"]) == 0   # λ reused, config matches

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
