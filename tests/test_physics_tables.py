"""The physics tables pipeline (``spinsr-tf physics-sr``) on a tiny preset."""

import json

import pytest

from spinsr_tf.cli import main
from spinsr_tf.experiments.physics_tables import physics_experiment
from spinsr_tf.experiments.reproduce import Preset

TINY = Preset(size=32, n_train=4, n_test=2, epochs=1, batch_size=2, sweeps=20, jit_compile=False)


def test_physics_tables_on_a_tiny_preset(tmp_path):
    out = physics_experiment(tmp_path, preset=TINY, types=("I",), steps=10, progress=False)
    assert set(out["settings"]) == {"type_I_x4", "type_I_x8", "type_I_x16"}
    for key, result in out["settings"].items():
        methods = result["methods"]
        assert {"sr_physics", "sr_refined", "refine_bicubic", "bicubic_norm"} <= set(methods)
        assert result["physics_hamiltonian"]["type"] == "I"
        assert result["physics_weight"] in result["physics_weight_rule"]["weights"]
        assert all(v > 0 for v in result["refine_seconds_per_map"].values())
    robust = out["robustness"]["type_I_x8"]
    weights = robust["weights"]
    assert set(weights) == {"dmix1", "dmix0.8", "dmix1.2", "exchange only"}
    names = {"bicubic_norm"} | {f"refine_bicubic {k}, λ={w:g}" for k, w in weights.items()}
    assert set(robust["methods"]) == names
    table = (tmp_path / "table_physics.md").read_text()
    assert "Type I, x16" in table and "Wrong Hamiltonian" in table
    stamp = (tmp_path / "type_I" / "x8" / "physics_results.json").stat().st_mtime_ns
    again = physics_experiment(tmp_path, preset=TINY, types=("I",), steps=10, progress=False)
    assert again["settings"] == json.loads(json.dumps(out["settings"]))
    assert (tmp_path / "type_I" / "x8" / "physics_results.json").stat().st_mtime_ns == stamp


@pytest.mark.parametrize("args, message", [(["--steps", "-1"], "--steps must be >= 0"),
                                           (["--seed", "-2"], "--seed must be >= 0")])
def test_cli_mistakes_are_one_line(tmp_path, capsys, args, message):
    assert main(["physics-sr", "--out", str(tmp_path / "p"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
