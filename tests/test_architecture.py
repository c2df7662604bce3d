"""The layer contract (docs/architecture.md): one-way imports, no cycles, no Keras below nn."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold():
    exe = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    if not os.path.exists(exe):
        pytest.fail("lint-imports is not installed (pip install -e '.[test]')")
    proc = subprocess.run([exe, "--config", str(ROOT / "setup.cfg")], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "4 kept, 0 broken" in proc.stdout


def test_physics_and_data_load_no_deep_learning_framework():
    code = ("import sys, spinsr_tf, spinsr_tf.physics, spinsr_tf.data, spinsr_tf.data.stream, "
            "spinsr_tf.data.io, spinsr_tf.physics.priors\n"
            "print(sorted(m for m in ('keras', 'tensorflow', 'jax') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True).stdout.strip()
    assert out == "[]"


def test_at_most_six_modules_at_the_top():
    top = sorted(p.name for p in (ROOT / "spinsr_tf").glob("*.py"))
    assert len(top) <= 6, top


def test_cli_recipe_names_are_the_configs():
    from spinsr_tf.cli.recipes import DEFAULT_NETWORK, NETWORK_CHOICES
    from spinsr_tf.nn.config import DEFAULT_RECIPE, RECIPES

    assert DEFAULT_NETWORK == DEFAULT_RECIPE
    assert set(NETWORK_CHOICES) == set(RECIPES) - {"oracle"}
