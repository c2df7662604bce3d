"""The physics tables pipeline (``spinsr-tf physics-sr``) on a tiny preset."""

import json

import numpy as np
import pytest

from spinsr_tf.cli import main
from spinsr_tf.experiments.physics_tables import PHYSICS_SCALES, physics_experiment
from spinsr_tf.experiments.presets import Preset
from conftest import fingerprint

#: 3 training maps and 1 validation map of 32², one full batch: one step, traced once.
TINY = Preset(size=32, n_train=4, n_test=2, epochs=1, batch_size=3, sweeps=20, jit_compile=False)


def test_physics_tables_on_a_tiny_preset(tmp_path, monkeypatch):
    """One setting, Type I x8 (the scale of the robustness table; the others differ only by the
    factor, and each costs a training)."""
    monkeypatch.setitem(PHYSICS_SCALES, "I", (8,))
    _check_physics_tables(tmp_path, (8,))


@pytest.mark.slow
def test_physics_tables_at_every_scale(tmp_path):
    _check_physics_tables(tmp_path, PHYSICS_SCALES["I"])


def _check_physics_tables(tmp_path, scales):
    """The rows are recomputed here from the files (test maps, the saved network, the stored λ),
    refinement lowers its objective below its start's, both computed directly, and a re-run
    reuses everything."""
    from spinsr_tf.data.degradation import gaussian_downsample
    from spinsr_tf.data.generate import read_spins
    from spinsr_tf.evaluation.baselines import BASELINES
    from spinsr_tf.evaluation.metrics import psnr
    from spinsr_tf.evaluation.scoring import predict_sr
    from spinsr_tf.inference.refine import refine
    from spinsr_tf.inference.weight_rule import choose_weight
    from spinsr_tf.nn.network import load_sr_model
    from spinsr_tf.physics import TypeI, energy

    out = physics_experiment(tmp_path, preset=TINY, types=("I",), steps=10, progress=False)
    assert set(out["settings"]) == {f"type_I_x{scale}" for scale in scales}
    hr = read_spins(tmp_path / "type_I" / "test.h5")
    for key, result in out["settings"].items():
        scale = int(key.split("x")[-1])
        methods = result["methods"]
        assert {"sr_physics", "sr_refined", "refine_bicubic", "bicubic_norm"} <= set(methods)
        assert result["physics_hamiltonian"]["type"] == "I"
        weight = result["physics_weight"]
        assert weight in result["physics_weight_rule"]["weights"]
        assert all(v > 0 for v in result["refine_seconds_per_map"].values())
        lr = gaussian_downsample(hr, scale)
        bicubic = BASELINES["bicubic_norm"](lr, scale)
        np.testing.assert_allclose(methods["bicubic_norm"]["per_image"]["psnr"],
                                   psnr(bicubic, hr), rtol=1e-6)
        net = load_sr_model(tmp_path / "type_I" / f"x{scale}" / "run_sr_physics" / "model.keras")
        np.testing.assert_allclose(methods["sr_physics"]["per_image"]["psnr"],
                                   psnr(predict_sr(net, lr), hr), rtol=1e-5)
        refined = refine(lr, TypeI(), weight, scale, steps=10)
        np.testing.assert_allclose(methods["refine_bicubic"]["per_image"]["psnr"],
                                   psnr(refined, hr), rtol=1e-6)
        # ten steps lower every map's objective, LR misfit + λ · energy per site, below its
        # start's (aligned bicubic + normalization), both computed here
        def objective(m):
            m = np.asarray(m, np.float64)
            misfit = np.mean((gaussian_downsample(m, scale) - lr) ** 2, axis=(1, 2, 3))
            return misfit + weight * energy(m, TypeI()) / (m.shape[1] * m.shape[2])

        assert np.all(objective(refined) < objective(bicubic)), (key, weight)
    robust = out["robustness"]["type_I_x8"]
    weights = robust["weights"]
    assert set(weights) == {"dmix1", "dmix0.8", "dmix1.2", "exchange only"}
    assert weights["dmix1"] == choose_weight(gaussian_downsample(hr, 8), TypeI(), 8)
    names = {"bicubic_norm"} | {f"refine_bicubic {k}, λ={w:g}" for k, w in weights.items()}
    assert set(robust["methods"]) == names
    table = (tmp_path / "table_physics.md").read_text()
    assert f"Type I, x{scales[-1]}" in table and "Wrong Hamiltonian" in table
    before = fingerprint(tmp_path, (".json", ".keras", ".h5"))
    again = physics_experiment(tmp_path, preset=TINY, types=("I",), steps=10, progress=False)
    assert again["settings"] == json.loads(json.dumps(out["settings"]))
    after = fingerprint(tmp_path, (".json", ".keras", ".h5"))
    settings = [k for k in before if k.endswith("physics_results.json") and "/" in k]
    assert len(settings) == len(scales) and all(after[k] == before[k] for k in settings)
    assert all(after[k] == before[k] for k in before if k.endswith((".keras", ".h5")))


@pytest.mark.parametrize("args, message", [(["--steps", "-1"], "--steps must be >= 0"),
                                           (["--seed", "-2"], "--seed must be >= 0")])
def test_cli_mistakes_are_one_line(tmp_path, capsys, args, message):
    assert main(["physics-sr", "--out", str(tmp_path / "p"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
