"""bioimage.io export of a fit-image run whose image had a background taken off
(``--background plane``): the package cannot fit one, so it keeps the percentile mapping, says
in one warning, its description and model card that inputs must be flattened, and records the
fitted background; given the fit's own image flattened by that record, its preprocessing
reproduces what the network saw in the fit."""

import importlib.util
import json
import zipfile

import numpy as np
import pytest

from spinsr_tf.cli import main
from spinsr_tf.inference.fit_image import fit_image
from spinsr_tf.inference.image_io import background_map, to_network

pytestmark = pytest.mark.skipif(importlib.util.find_spec("bioimageio.spec") is None,
                                reason="needs the bioimageio extra: "
                                       "pip install 'spinsr_tf[bioimageio]'")


def _kerr_like(size=20, seed=0):
    """Stripe domains (grey levels 60..180) under an illumination plane of 1.5 and 0.8 grey
    levels per pixel along x and y, with noise of std 2: (size, size) float32."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    rng = np.random.default_rng(seed)
    stripes = np.tanh(3 * np.sin(2 * np.pi * (x + 0.6 * y) / 6.0))
    plane = 1.5 * (x - size / 2) + 0.8 * (y - size / 2)
    return (120 + 60 * stripes + plane + 2 * rng.normal(size=x.shape)).astype(np.float32)


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    d = tmp_path_factory.mktemp("background")
    np.save(d / "kerr.npy", _kerr_like())
    fit_image(d / "kerr.npy", out_dir=d / "run", scale=4, epochs=1, batch_size=4,
              background="plane", uncertainty=False, jit_compile=False, progress=False)
    return d


def test_export_says_inputs_must_be_flattened_and_records_the_background(package, capsys):
    from bioimageio.spec import load_description

    d = package
    pkg = d / "model.zip"
    assert main(["export", "--model", str(d / "run" / "train" / "model.keras"), "--format",
                 "bioimageio", "--out", str(pkg)]) == 0
    err = capsys.readouterr().err
    warned = [line for line in err.splitlines() if "warning:" in line]
    assert len(warned) == 1 and "plane background" in warned[0]
    assert "must be flattened" in warned[0]

    descr = load_description(pkg, perform_io_checks=True)
    assert descr.validation_summary.status == "valid-format", descr.validation_summary.format()
    mapping = json.loads((d / "run" / "mapping.json").read_text())
    record = mapping["background"]
    assert record["model"] == "plane"
    values = descr.config.model_dump(mode="json")["spinsr_tf"]["values"]
    assert values["background"] == record
    assert "illumination flattened" in descr.description
    assert "illumination flattened" in descr.inputs[0].description
    # the exported preprocessing is still the per-image percentile mapping, nothing more
    steps = [p.id for p in descr.inputs[0].preprocessing if p.id != "ensure_dtype"]
    assert steps == ["scale_range", "scale_linear"]
    with zipfile.ZipFile(pkg) as z:
        card = z.read("README.md").decode()
        test_input = np.load(z.open("test_input.npy"))
    assert "**Illumination must be flattened.**" in card
    assert f"x {record['coefficients'][1]:.6g}" in card and "20×20 image" in card

    # the fit's own image, flattened by the recorded plane, goes through the package's
    # preprocessing to what the network saw in the fit; unflattened it does not
    from spinsr_tf.nn.bioimageio_export import _to_network

    raw = np.load(d / "kerr.npy")[..., None]
    seen = to_network(raw, mapping)
    flat = raw - background_map(record, raw.shape)
    np.testing.assert_allclose(_to_network(flat[None], values)[0], seen, atol=1e-4)
    assert np.abs(_to_network(raw[None], values)[0] - seen).max() > 0.1
    # the test input is a flattened image too: no plane left across it
    h, w = test_input.shape[1:3]
    yy, xx = np.mgrid[0:h, 0:w]
    design = np.stack([np.ones(h * w), xx.ravel(), yy.ravel()], 1)
    slope = np.linalg.lstsq(design, test_input[0, ..., 0].ravel(), rcond=None)[0][1:]
    assert np.all(np.abs(slope) < 0.5)       # the plane added 1.5 and 0.8 per pixel


def test_without_a_background_nothing_is_said():
    from spinsr_tf.nn.bioimageio_export import _background_text, _input_text, _value_mapping

    values = _value_mapping(1, {"percentile": 1.0, "background": None}, None)
    assert values["background"] is None and _background_text(values["background"]) == ""
    assert "flattened" not in _input_text(1, values)
    assert "background" not in _value_mapping(3, {"kind": "vector_length", "scale": 2.0}, None)
