"""Universal models: the mixture each factor trains on, the maker on a tiny recipe, and what the
shipped ones deliver on textures the type models were not trained on."""

import json
import math

import numpy as np
import pytest

from spinsr_tf.base import pretrained
from spinsr_tf.base.errors import UserError
from spinsr_tf.cli import main
from spinsr_tf.data.mixture import Mixture, Uniform
from spinsr_tf.experiments import universal


@pytest.mark.parametrize("factor", [2, 4, 8, 16])
def test_the_finest_kept_period_is_two_lr_pixels(factor):
    d = universal.resolved_dmi(factor)
    assert 2 * math.pi / math.atan(d) == pytest.approx(2 * factor)


def test_each_factor_trains_on_the_textures_its_grid_resolves():
    assert Mixture.parse(universal.mixture_spec(4))["dmi"] == Uniform(0.1, 0.73)
    x8 = Mixture.parse(universal.mixture_spec(8))
    assert x8["dmi"] == Uniform(0.1, 0.414)
    assert x8["dmi_kind"] == Mixture.parse("universal")["dmi_kind"]   # the rest: the preset's
    assert Mixture.parse(universal.mixture_spec(16))["dmi"].values()[1] == pytest.approx(0.199)
    with pytest.raises(UserError, match="resolves no DMI texture"):
        universal.mixture_spec(64)


def test_maker_writes_a_model_folder_that_resolves(tmp_path, monkeypatch):
    from spinsr_tf.nn.network import load_sr_model

    tiny = universal.UniversalRecipe(n_train=4, n_test=2, size=32, epochs=1, batch_size=2,
                                     jit_compile=False)
    folders = universal.make_universal(tmp_path / "out", factors=(4,), recipe=tiny,
                                       progress=False)
    assert [f.name for f in folders] == ["universal-x4"]
    monkeypatch.setattr(pretrained, "MODELS_DIR", tmp_path / "out")
    assert "universal-x4" in pretrained.known_models()
    model = load_sr_model("pretrained:universal-x4", compile=False)
    assert model.get_layer("lr").factor == 4
    folder = tmp_path / "out" / "universal-x4"
    config = json.loads((folder / "config.json").read_text())
    assert config["data"] == "data/train-x4.h5"
    results = json.loads((folder / "results.json").read_text())
    assert results["mixture"] == universal.mixture_spec(4)
    assert set(results["sets"]) == {"mixture (test seed)", "home Type I", "home Type II"}
    for result in results["sets"].values():
        assert {"sr", "bicubic_norm"} <= set(result["methods"])
        assert "per_image" not in result["methods"]["sr"]
    card = (folder / "README.md").read_text()
    assert "pretrained:universal-x4" in card and universal.mixture_spec(4) in card
    # a second call finds everything done: same model file
    before = (folder / "model.keras").read_bytes()
    universal.make_universal(tmp_path / "out", factors=(4,), recipe=tiny, progress=False)
    assert (folder / "model.keras").read_bytes() == before


@pytest.mark.parametrize("extra, message", [
    (["--type", "I"], "--preset and --type do not apply"),
    (["--preset", "smoke"], "--preset and --type do not apply"),
])
def test_cli_universal_refuses_type_options(tmp_path, capsys, extra, message):
    code = main(["make-pretrained", "--universal", "--out", str(tmp_path / "o"), *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0]
    assert not (tmp_path / "o").exists()


UNIVERSAL = [n for n in pretrained.known_models() if n.startswith("universal-")]


@pytest.mark.parametrize("name", UNIVERSAL)
def test_a_shipped_universal_model_wins_where_the_type_model_loses(name):
    """Bloch labyrinths (bulk DMI, D/J 0.3) and skyrmions (Néel D/J 0.3 in a quarter of the
    saturation field), annealed here with a seed no model trained on: the universal model beats
    aligned, normalized bicubic, and the Type I model of its factor by more than 1 dB (that one
    paints Néel walls and a field-free texture into them)."""
    from spinsr_tf.evaluation.metrics import psnr
    from spinsr_tf.nn.network import load_sr_model, sr_submodel
    from spinsr_tf.physics import TypeI, anneal, saturation_field, with_field

    model = load_sr_model(f"pretrained:{name}", compile=False)
    d = model.get_layer("lr").degradation
    specialist = load_sr_model(f"pretrained:type-I-x{d.factor}", compile=False)
    neel = TypeI(dmi=0.3)
    for ham in (TypeI(dmi=0.3, dmi_kind="bulk"), with_field(neel, 0.25 * saturation_field(neel))):
        hr = anneal(ham, 64, seed=4242, indices=range(2))
        lr = d.apply(hr)
        bicubic = np.mean(psnr(d.upsample(lr, "bicubic", "aligned", normalize=True), hr))
        gain, type_gain = (float(np.mean(psnr(sr_submodel(m).predict(lr, verbose=0), hr))
                                 - bicubic) for m in (model, specialist))
        assert gain > 0.5 and gain > type_gain + 1.0, (name, ham.describe(), gain, type_gain)
