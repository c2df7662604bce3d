"""Pretrained models: ``pretrained:NAME`` lookup, refusals, and what the shipped ones deliver."""

import json

import h5py
import numpy as np
import pytest

from spinsr_tf.base import pretrained
from spinsr_tf.base.errors import UserError
from spinsr_tf.cli import main
from spinsr_tf.nn.network import build_sr_model

SHIPPED = pretrained.known_models()
#: The settings of Tables 1-2: what ``make-pretrained`` writes and the package ships.
SETTINGS = {"type-I-x4": ("I", 4), "type-I-x8": ("I", 8), "type-II-x4": ("II", 4),
            "type-II-x8": ("II", 8), "type-II-x16": ("II", 16)}


@pytest.fixture
def models_dir(tmp_path, monkeypatch):
    """A folder of one fake pretrained model (an untrained x4 network, sigma 1) as MODELS_DIR."""
    import keras

    folder = tmp_path / "pretrained" / "type-I-x4"
    folder.mkdir(parents=True)
    keras.utils.set_random_seed(0)
    build_sr_model(4, channels=3, residual=True, output="unit").save(folder / "model.keras")
    for name in ("config.json", "results.json"):
        (folder / name).write_text("{}")
    (folder / "README.md").write_text("# card\n")
    monkeypatch.setattr(pretrained, "MODELS_DIR", tmp_path / "pretrained")
    return tmp_path / "pretrained"


def test_names_resolve_to_files_and_unknown_names_list_the_known(models_dir):
    assert pretrained.known_models() == ("type-I-x4",)
    assert pretrained.resolve_model("pretrained:type-I-x4") == str(models_dir / "type-I-x4"
                                                                   / "model.keras")
    assert pretrained.resolve_model("run/model.keras") == "run/model.keras"
    with pytest.raises(UserError, match="unknown pretrained model 'type-III-x4'; known: type-I-x4"):
        pretrained.resolve_model("pretrained:type-III-x4")
    (models_dir / "type-I-x4" / "README.md").unlink()  # an incomplete folder is not a model
    assert pretrained.known_models() == ()


def test_upscale_with_a_pretrained_name(models_dir, tmp_path, capsys):
    lr = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype("float32")
    lr /= np.linalg.norm(lr, axis=-1, keepdims=True)
    np.save(tmp_path / "lr.npy", lr)
    code = main(["upscale", str(tmp_path / "lr.npy"), "--model", "pretrained:type-I-x4",
                 "--out", str(tmp_path / "sr.npy"), "--single-pass"])
    assert code == 0
    assert np.load(tmp_path / "sr.npy").shape == (2, 32, 32, 3)
    # the default's symmetric copies read the run's config.json, which this stand-in lacks
    code = main(["upscale", str(tmp_path / "lr.npy"), "--model", "pretrained:type-I-x4",
                 "--out", str(tmp_path / "mean.npy")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "config.json' is damaged" in err, err
    assert not (tmp_path / "mean.npy").exists()


def test_unknown_name_is_one_line_and_writes_nothing(models_dir, tmp_path, capsys):
    np.save(tmp_path / "lr.npy", np.zeros((1, 8, 8, 3), "float32"))
    with pytest.raises(SystemExit) as exc:
        main(["upscale", str(tmp_path / "lr.npy"), "--model", "pretrained:nope",
              "--out", str(tmp_path / "sr.npy")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 1, err
    assert "unknown pretrained model 'nope'" in err and "type-I-x4" in err
    assert not (tmp_path / "sr.npy").exists()


@pytest.mark.parametrize("key,value", [("sigma", 2.0), ("factor", 8), ("pixel", "integrate")])
def test_an_input_recording_another_degradation_is_refused(models_dir, tmp_path, capsys,
                                                           key, value):
    lr = tmp_path / "lr.h5"
    with h5py.File(lr, "w") as f:
        f["lr"] = np.ones((1, 8, 8, 3), "float32") / np.sqrt(3)
        f.attrs.update({"factor": 4, "kernel_size": 23, "sigma": 1.0, "padding": "periodic",
                        "pixel": "sample"})
        f.attrs[key] = value
    code = main(["upscale", str(lr), "--model", "pretrained:type-I-x4",
                 "--out", str(tmp_path / "sr.h5")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and f"{key}={value}" in err, err
    assert not (tmp_path / "sr.h5").exists()


def test_an_input_recording_the_same_degradation_is_taken(models_dir, tmp_path, capsys):
    lr = tmp_path / "lr.h5"
    with h5py.File(lr, "w") as f:
        f["lr"] = np.ones((1, 8, 8, 3), "float32") / np.sqrt(3)
        f.attrs.update({"factor": 4, "kernel_size": 23, "sigma": 1.0, "padding": "periodic",
                        "pixel": "sample"})
    assert main(["upscale", str(lr), "--model", "pretrained:type-I-x4",
                 "--out", str(tmp_path / "sr.h5"), "--single-pass"]) == 0


@pytest.mark.slow
def test_make_pretrained_writes_model_folders_that_resolve(tmp_path, monkeypatch):
    """The maker on a tiny preset: one folder per setting, each a loadable model whose card and
    files agree with the run it came from."""
    from spinsr_tf.experiments import make_pretrained as maker
    from spinsr_tf.experiments.presets import Preset
    from spinsr_tf.nn.network import load_sr_model

    tiny = Preset(size=32, n_train=4, n_test=2, epochs=1, batch_size=2, sweeps=20,
                  jit_compile=False)
    folders = maker.make_pretrained(tmp_path / "out", preset=tiny, types=("I",), progress=False)
    type_one = {name: s for name, s in SETTINGS.items() if s[0] == "I"}
    assert sorted(f.name for f in folders) == sorted(type_one)
    monkeypatch.setattr(pretrained, "MODELS_DIR", tmp_path / "out")
    assert pretrained.known_models() == tuple(sorted(type_one))
    for name, (kind, scale) in type_one.items():
        model = load_sr_model(f"pretrained:{name}", compile=False)
        assert model.get_layer("lr").factor == scale
        config = json.loads((tmp_path / "out" / name / "config.json").read_text())
        assert config["scale"] == scale and config["data"] == f"custom/type_{kind}/train.h5"
        assert any(t["term"] == "equivariance" for t in config["losses"])
        card = (tmp_path / "out" / name / "README.md").read_text()
        assert f"pretrained:{name}" in card and f"×{scale}" in card
        results = json.loads((tmp_path / "out" / name / "results.json").read_text())
        assert "sr_equivariant" in results["methods"] and "bicubic_norm" in results["methods"]


def test_the_package_ships_every_setting():
    """Every setting has its folder in the package (a clean clone too: *.keras files are ignored
    by git except these)."""
    assert set(SHIPPED) == set(SETTINGS) | {"universal-x4", "universal-x8", "universal-x16",
                                            "universal-sz-x4", "universal-sz-x8"}
    for name in SHIPPED:
        size = (pretrained.MODELS_DIR / name / "model.keras").stat().st_size
        assert size < 2_000_000, (name, size)


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_a_shipped_model_beats_aligned_interpolation_on_fresh_lattices(name):
    """Lattices annealed here with another seed than the training data, degraded as the card
    says: the model's SR maps beat aligned, normalized bicubic interpolation in PSNR by at
    least a third of the margin its card records."""
    from spinsr_tf.data.degradation import gaussian_downsample
    from spinsr_tf.data.interpolation import upsample
    from spinsr_tf.evaluation.metrics import psnr
    from spinsr_tf.nn.network import load_sr_model, sr_submodel
    from spinsr_tf.nn.training import read_run_config
    from spinsr_tf.physics import TypeI, TypeII, anneal

    kind, scale = SETTINGS[name]
    folder = pretrained.MODELS_DIR / name
    config = read_run_config(folder)
    results = json.loads((folder / "results.json").read_text())
    margin = (results["methods"]["sr_equivariant"]["psnr"]
              - results["methods"]["bicubic_norm"]["psnr"])
    assert margin > 0.5, (name, margin)
    hr = anneal(TypeI() if kind == "I" else TypeII(), 64, seed=12345, indices=range(2))
    lr = gaussian_downsample(hr, scale, config.kernel_size, config.sigma, config.padding,
                             pixel=config.pixel)
    model = load_sr_model(f"pretrained:{name}", compile=False)
    sr = sr_submodel(model).predict(lr, verbose=0)
    bic = upsample(lr, scale, "bicubic", "aligned", normalize=True, padding=config.padding,
                   pixel=config.pixel)
    gain = float(np.mean(psnr(sr, hr)) - np.mean(psnr(bic, hr)))
    assert gain > margin / 3, (name, gain, margin)
