"""SavedModel export: the served SR map equals the Keras SR map, for any batch and size."""

import numpy as np
import pytest
import tensorflow as tf

from spinsr_tf.cli import main
from spinsr_tf.base.errors import UserError
from spinsr_tf.nn.export import export_saved_model, serving_model
from spinsr_tf.nn.network import build_sr_model, sr_submodel


def _model(input_size=None, seed=0):
    """A ×4 model with random weights and random BatchNorm statistics, so that inference mode
    (moving statistics) and training mode (batch statistics) give different SR maps."""
    tf.keras.utils.set_random_seed(seed)
    model = build_sr_model(scale=4, channels=3, input_size=input_size)
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if layer.name.endswith("_bn"):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([1 + 0.2 * rng.normal(size=gamma.shape),
                               0.1 * rng.normal(size=beta.shape),
                               0.3 * rng.normal(size=mean.shape),
                               rng.uniform(0.5, 2, size=var.shape)])
    return model


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    d = tmp_path_factory.mktemp("export")
    model = _model()
    model.save(d / "model.keras")
    return model, d


def test_saved_model_matches_keras_sr_output(saved):
    model, d = saved
    export_saved_model(d / "model.keras", d / "sm")
    served = tf.saved_model.load(str(d / "sm"))
    sr = sr_submodel(model)
    rng = np.random.default_rng(1)
    for shape in [(2, 8, 8, 3), (1, 6, 10, 3), (3, 5, 7, 3)]:
        x = rng.uniform(-1, 1, size=shape).astype(np.float32)
        got = served.serve(tf.constant(x)).numpy()
        want = sr(x, training=False).numpy()
        assert got.shape == (shape[0], shape[1] * 4, shape[2] * 4, 3)
        np.testing.assert_allclose(got, want, atol=1e-5)
    # the comparison is sensitive: batch statistics (training mode) give another map
    # (last, because a training-mode call also moves the BN statistics)
    assert np.max(np.abs(want - sr(x, training=True).numpy())) > 1e-3
    sig = served.signatures["serving_default"]
    out = list(sig(lr=tf.zeros((1, 4, 4, 3))).values())[0]
    assert out.shape == (1, 16, 16, 3)


def test_fixed_size_model_is_served_at_any_size(tmp_path):
    model = _model(input_size=8, seed=2)
    x = np.random.default_rng(3).uniform(-1, 1, size=(2, 8, 8, 3)).astype(np.float32)
    np.testing.assert_allclose(serving_model(model)(x, training=False),
                               sr_submodel(model)(x, training=False), atol=1e-6)
    served = tf.saved_model.load(str(export_saved_model(model, tmp_path / "sm")))
    assert served.serve(tf.zeros((1, 5, 6, 3))).shape == (1, 20, 24, 3)


def test_fixed_size_variant_is_served_as_the_same_variant(tmp_path):
    """The any-size rebuild keeps the variant (unit output, residual on aligned bicubic)."""
    tf.keras.utils.set_random_seed(4)
    model = build_sr_model(scale=4, input_size=8, output="unit", residual=True)
    conv = model.get_layer("sr_conv")
    kernel, bias = conv.get_weights()
    conv.set_weights([np.random.default_rng(5).normal(0, 0.05, kernel.shape), bias])
    x = np.random.default_rng(6).uniform(-1, 1, size=(2, 8, 8, 3)).astype(np.float32)
    want = sr_submodel(model)(x, training=False).numpy()
    np.testing.assert_allclose(serving_model(model)(x, training=False), want, atol=1e-5)
    served = tf.saved_model.load(str(export_saved_model(model, tmp_path / "sm")))
    np.testing.assert_allclose(served.serve(tf.constant(x)).numpy(), want, atol=1e-5)


def test_overwrite_rules_and_atomicity(saved, tmp_path, capsys):
    model, d = saved
    out = tmp_path / "sm"
    out.mkdir()  # an existing empty folder is filled
    export_saved_model(model, out)
    assert (out / "saved_model.pb").is_file()
    (out / "marker").write_text("old")
    with pytest.raises(UserError, match="not empty"):
        export_saved_model(model, out)
    assert (out / "marker").exists()
    argv = ["export", "--model", str(d / "model.keras"), "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--force" in err
    assert main(argv + ["--force"]) == 0
    assert not (out / "marker").exists() and (out / "saved_model.pb").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sm"]  # no temporary folders left


def test_cli_export_bad_inputs(tmp_path, capsys):
    (tmp_path / "fake.keras").write_text("not a zip")
    cases = [["--model", str(tmp_path / "missing.keras"), "--out", str(tmp_path / "a")],
             ["--model", str(tmp_path / "fake.keras"), "--out", str(tmp_path / "b")],
             ["--model", str(tmp_path / "fake.keras"), "--out", str(tmp_path / "no" / "c")]]
    for argv in cases:
        assert main(["export", *argv]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("spinsr-tf export: error:")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake.keras"]
