"""One command line: the same names, the same rules and the Keras conventions (issue 15).

``--learning-rate`` and ``--no-jit`` (old names hidden), ``--scale`` accepting what the network
builds, "is a directory" for a folder given as a file, one resume rule, an interrupt hint only
where it holds, ``--quiet`` that is quiet, progress for ``evaluate``, and a saved model that
plain ``keras.models.load_model`` reads after ``import spinsr_tf``.
"""

import argparse
import subprocess
import sys
from pathlib import Path

import h5py
import pytest

from spinsr_tf.cli import build_parser, main
from conftest import smooth_unit_spins

ROOT = Path(__file__).resolve().parents[1]


def _parse(*argv):
    return build_parser().parse_args(list(argv))


def _help(command):
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[command].format_help()


def _spins_file(path, n=2, size=16):
    with h5py.File(path, "w") as f:
        f["spins"] = smooth_unit_spins(n, size, 0)
    return path


# --- Keras: a saved model loads with plain keras after `import spinsr_tf` -----------------------

@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    from spinsr_tf.nn.network import build_sr_model

    path = tmp_path_factory.mktemp("model") / "model.keras"
    build_sr_model(4, residual=True, output="unit").save(path)
    return path


@pytest.mark.parametrize("order", ["spinsr_tf first", "keras first"])
def test_plain_keras_load_model_after_import_spinsr_tf(saved_model, order):
    first, second = ("spinsr_tf", "keras") if order == "spinsr_tf first" else ("keras", "spinsr_tf")
    code = (f"import sys\nimport {first}\n"
            "print('keras' in sys.modules)\n"
            f"import {second}\nimport keras\n"
            f"model = keras.models.load_model({str(saved_model)!r})\n"
            "print(type(model.get_layer('lr')).__name__, type(model.get_layer('sr')).__name__)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    keras_loaded, classes = proc.stdout.strip().splitlines()[-2:]
    assert keras_loaded == ("False" if order == "spinsr_tf first" else "True")
    assert classes == "GaussianDownsample UnitVectors"


def test_help_and_import_stay_without_keras():
    code = ("import sys, spinsr_tf\nfrom spinsr_tf.cli import build_parser\n"
            "build_parser().format_help()\n"
            "print(sorted(m for m in ('keras', 'tensorflow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True).stdout.strip()
    assert out == "[]"


# --- names: --learning-rate, --no-jit; the old ones hidden -------------------------------------

def test_learning_rate_and_no_jit_with_hidden_old_names():
    base = ("train", "--data", "d.h5", "--scale", "4", "--out", "r")
    assert _parse(*base, "--learning-rate", "0.02").learning_rate == 0.02
    assert _parse(*base, "--lr", "0.03").learning_rate == 0.03
    assert _parse(*base, "--no-jit").no_jit and _parse(*base, "--no-xla").no_jit
    assert not _parse(*base).no_jit and _parse(*base).learning_rate is None
    text = _help("train")
    assert "--learning-rate" in text and "--no-jit" in text
    assert "--lr " not in text and "--lr," not in text and "--no-xla" not in text
    assert "--resume" not in text      # one rule: the same command again continues


@pytest.mark.parametrize("command,extra", [
    ("train", ("--data", "d.h5", "--out", "r")),
    ("evaluate", ("--model", "m.keras", "--data", "d.h5")),
    ("quickstart", ()),
])
def test_scale_accepts_every_power_of_two_and_says_so(command, extra, capsys):
    assert _parse(command, *extra, "--scale", "32").scale == 32
    assert "power of two" in _help(command)
    with pytest.raises(SystemExit) as exc:
        _parse(command, *extra, "--scale", "12")
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "must be a power of two" in err


# --- inputs: a folder is "a directory", not "missing" -------------------------------------------

@pytest.mark.parametrize("argv,flag", [
    (["train", "--data", "{d}", "--scale", "4", "--out", "{t}/r"], "--data"),
    (["downsample", "{d}", "--factor", "4", "--out", "{t}/lr.h5"], "input"),
    (["evaluate", "--model", "{d}", "--data", "{t}/x.h5"], "--model"),
])
def test_a_directory_given_as_input_is_named_so(tmp_path, capsys, argv, flag):
    folder = tmp_path / "folder.h5"
    folder.mkdir()
    _spins_file(tmp_path / "x.h5")
    argv = [a.format(d=folder, t=tmp_path) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{flag} '{folder}' is a directory" in err, err


# --- one resume rule, an interrupt hint only where it holds -------------------------------------

def test_one_resume_rule_stated_in_help_and_readme():
    text = " ".join(build_parser().format_help().split())
    assert "continue where an interrupted call stopped when the same command is run again" in text
    assert "Running the same command again continues the run" in " ".join(_help("train").split())
    assert "continues an interrupted run" in " ".join(_help("generate").split())
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert "the same command again continues where an interrupted call stopped" in readme


def test_train_from_the_command_line_continues_without_resume_flag(monkeypatch):
    import spinsr_tf.inference.weight_rule as weight_rule
    import spinsr_tf.nn.training as training

    seen = {}
    monkeypatch.setattr(weight_rule, "with_chosen_weights", lambda config, *a, **k: config)
    monkeypatch.setattr(training, "train", lambda config, out, resume, progress, **kw:
                        seen.update(resume=resume) or {})
    assert main(["train", "--data", __file__, "--scale", "4", "--out", "r", "--quiet"]) == 0
    assert seen == {"resume": True}


@pytest.mark.parametrize("command,target,hint", [
    ("downsample", "spinsr_tf.cli.downsample.downsample_file", False),
    ("generate", "spinsr_tf.data.generate.generate_dataset", True),
])
def test_interrupt_hint_only_for_commands_that_continue(tmp_path, capsys, monkeypatch, command,
                                                        target, hint):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    module, name = target.rsplit(".", 1)
    monkeypatch.setattr(sys.modules[module] if module in sys.modules
                        else __import__(module, fromlist=[name]), name, interrupted)
    src = _spins_file(tmp_path / "in.h5")
    argv = {"downsample": ["downsample", str(src), "--factor", "4", "--out",
                           str(tmp_path / "lr.h5")],
            "generate": ["generate", "--type", "I", "--n", "1", "--size", "8",
                         "--out", str(tmp_path / "g.h5")]}[command]
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert err.startswith(f"spinsr-tf {command}: interrupted") and err.count("\n") == 1
    assert ("run the same command again" in err) == hint


# --- --quiet is quiet; evaluate shows progress otherwise ----------------------------------------

def test_quiet_prints_nothing(tmp_path, capsys):
    src = _spins_file(tmp_path / "in.h5")
    assert main(["generate", "--type", "I", "--n", "1", "--size", "8", "--sweeps", "5",
                 "--out", str(tmp_path / "g.h5"), "--quiet"]) == 0
    assert main(["downsample", str(src), "--factor", "4", "--out", str(tmp_path / "lr.h5"),
                 "--quiet"]) == 0
    assert capsys.readouterr() == ("", "")


def test_evaluate_shows_progress_unless_quiet(saved_model, tmp_path, capsys):
    data = _spins_file(tmp_path / "test.h5")
    argv = ["evaluate", "--model", str(saved_model), "--data", str(data)]
    assert main(argv) == 0
    cap = capsys.readouterr()
    assert "| bicubic |" in cap.out and "scoring" in cap.err
    assert main(argv + ["--quiet"]) == 0
    assert capsys.readouterr() == ("", "")
