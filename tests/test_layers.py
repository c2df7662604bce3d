"""Custom layers: padding values against ``np.pad``, dynamic shapes, arguments, configs, the
Keras ``GaussianDownsample`` and ``AlignedUpsample`` against their NumPy twins, and
``UnitVectors`` against a NumPy projection."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from spinsr_tf.data.interpolation import upsample
from spinsr_tf.data.degradation import gaussian_downsample
from spinsr_tf.nn.layers import (AlignedUpsample, GaussianDownsample, PeriodicPadding2D,
                              ReflectPadding2D, UnitVectors)

PAD_LAYERS = {"wrap": PeriodicPadding2D, "reflect": ReflectPadding2D}
FORMATS = ["channels_last", "channels_first"]


def _spatial(a, data_format):
    return a if data_format == "channels_last" else np.transpose(a, (0, 2, 3, 1))


class TestPeriodicPadding2D:
    @pytest.mark.parametrize("data_format", FORMATS)
    def test_borders_wrap_and_interior_is_the_input(self, data_format):
        inputs = np.random.rand(1, 2, 3, 4) if data_format == "channels_first" \
            else np.random.rand(1, 3, 4, 2)
        out = np.asarray(PeriodicPadding2D(((1, 2), (3, 1)), data_format=data_format)(inputs))
        x, y = _spatial(inputs, data_format), _spatial(out, data_format)
        assert y.shape == (1, 6, 8, 2)
        np.testing.assert_allclose(y[:, 1:-2, 3:-1], x, rtol=1e-6)
        np.testing.assert_allclose(y[:, 0, 3:-1], x[:, -1], rtol=1e-6)  # top copies bottom row
        np.testing.assert_allclose(y[:, -2:, 3:-1], x[:, :2], rtol=1e-6)  # bottom copies top
        np.testing.assert_allclose(y[:, 1:-2, :3], x[:, :, -3:], rtol=1e-6)  # left copies right
        np.testing.assert_allclose(y[:, 1:-2, -1], x[:, :, 0], rtol=1e-6)
        np.testing.assert_allclose(y[:, 0, 0], x[:, -1, -3], rtol=1e-6)  # corners wrap twice

    @pytest.mark.parametrize("mode", ["wrap", "reflect"])
    @pytest.mark.parametrize("padding,pads", [
        (1, ((1, 1), (1, 1))),
        ((2, 0), ((2, 2), (0, 0))),
        (((0, 3), (2, 1)), ((0, 3), (2, 1))),
        (((7, 1), (1, 9)), ((7, 1), (1, 9))),  # longer than the 4×5 map: wraps/reflects again
    ])
    def test_values_equal_numpy_pad(self, mode, padding, pads):
        x = np.random.default_rng(0).normal(size=(2, 4, 5, 3)).astype("float32")
        out = PAD_LAYERS[mode](padding)(x)
        expected = np.pad(x, ((0, 0), *pads, (0, 0)), mode=mode)
        np.testing.assert_array_equal(np.asarray(out), expected)

    @pytest.mark.parametrize("mode", ["wrap", "reflect"])
    def test_dynamic_spatial_dims(self, mode):
        layer = PAD_LAYERS[mode](((1, 2), (3, 4)))
        assert layer(keras.Input(batch_shape=(1, 2, None, 4))).shape == (1, 5, None, 4)
        assert layer.compute_output_shape((None, None, 6, 4)) == (None, None, 13, 4)
        fn = tf.function(layer, input_signature=[tf.TensorSpec((None, None, None, 4))])
        x = np.random.default_rng(1).normal(size=(1, 5, 6, 4)).astype("float32")
        np.testing.assert_array_equal(fn(x).numpy(),
                                      np.pad(x, ((0, 0), (1, 2), (3, 4), (0, 0)), mode=mode))

    @pytest.mark.parametrize("cls", [PeriodicPadding2D, ReflectPadding2D])
    @pytest.mark.parametrize("padding", [
        (1,), (1, 2, 3), "1", ((1, 2), (3, 4, 5)), ((1, 2), (3, -4)), ((1, 2), "3"), -1, 1.5,
        True, None,
    ])
    def test_invalid_padding(self, cls, padding):
        with pytest.raises(ValueError, match="padding"):
            cls(padding)

    def test_invalid_data_format(self):
        with pytest.raises(ValueError, match="channels_middle"):
            PeriodicPadding2D(1, data_format="channels_middle")

    @pytest.mark.parametrize("cls", [PeriodicPadding2D, ReflectPadding2D])
    @pytest.mark.parametrize("data_format", FORMATS)
    def test_get_config(self, cls, data_format):
        layer = cls(padding=(1, 2), data_format=data_format)
        assert layer.get_config() == {
            "data_format": data_format,
            "dtype": keras.dtype_policies.serialize(layer.dtype_policy),
            "name": layer.name,
            "padding": ((1, 1), (2, 2)),
            "trainable": layer.trainable,
        }
        clone = cls.from_config(layer.get_config())
        assert clone.padding == layer.padding and clone.data_format == data_format


class TestGaussianDownsample:
    @pytest.mark.parametrize("factor", [2, 4, 8, 16])
    @pytest.mark.parametrize("padding", ["periodic", "reflect"])
    @pytest.mark.parametrize("channels", [1, 3])
    @pytest.mark.parametrize("sigma_is_factor", [False, True])
    def test_equals_numpy_reference(self, factor, padding, channels, sigma_is_factor):
        sigma = float(factor) if sigma_is_factor else 1.0
        x = np.random.default_rng(factor).uniform(-1, 1, size=(2, 32, 48, channels))
        x = x.astype("float32")
        out = GaussianDownsample(factor, sigma=sigma, padding=padding)(x)
        expected = gaussian_downsample(x, factor, sigma=sigma, padding=padding)
        assert tuple(out.shape) == expected.shape
        np.testing.assert_allclose(np.asarray(out), expected, rtol=0, atol=1e-6)

    def test_channels_first_and_small_kernel(self):
        x = np.random.default_rng(3).normal(size=(2, 16, 16, 3)).astype("float32")
        layer = GaussianDownsample(4, kernel_size=5, sigma=2.0, padding="reflect",
                                   data_format="channels_first")
        out = np.asarray(layer(np.transpose(x, (0, 3, 1, 2))))
        expected = gaussian_downsample(x, 4, 5, 2.0, "reflect")
        np.testing.assert_allclose(np.transpose(out, (0, 2, 3, 1)), expected, atol=1e-6)

    def test_dynamic_spatial_dims(self):
        layer = GaussianDownsample(4)
        assert layer(keras.Input((None, None, 3))).shape == (None, None, None, 3)
        assert layer.compute_output_shape((None, 32, None, 3)) == (None, 8, None, 3)
        fn = tf.function(layer, input_signature=[tf.TensorSpec((None, None, None, 3))])
        for size in (8, 24):
            x = np.random.default_rng(size).normal(size=(1, size, size, 3)).astype("float32")
            np.testing.assert_allclose(fn(x).numpy(), gaussian_downsample(x, 4), atol=1e-6)

    def test_has_no_weights(self):
        layer = GaussianDownsample(8)
        layer(np.zeros((1, 16, 16, 3), "float32"))
        assert layer.weights == [] and layer.trainable_weights == []

    @pytest.mark.parametrize("kwargs,word", [
        ({"factor": 0}, "factor"),
        ({"factor": 2.5}, "factor"),
        ({"factor": 2, "kernel_size": 22}, "kernel_size"),
        ({"factor": 2, "sigma": 0}, "sigma"),
        ({"factor": 2, "padding": "zeros"}, "padding"),
        ({"factor": 2, "data_format": "nhwc"}, "data_format"),
    ])
    def test_invalid_arguments(self, kwargs, word):
        with pytest.raises(ValueError, match=word):
            GaussianDownsample(**kwargs)

    def test_size_not_divisible(self):
        with pytest.raises(ValueError, match="divisible by factor 4"):
            GaussianDownsample(4)(keras.Input((30, 32, 3)))

    def test_get_config(self):
        layer = GaussianDownsample(8, kernel_size=11, sigma=2, padding="reflect")
        assert layer.get_config() == {
            "factor": 8,
            "kernel_size": 11,
            "sigma": 2.0,
            "padding": "reflect",
            "pixel": "sample",
            "data_format": "channels_last",
            "dtype": keras.dtype_policies.serialize(layer.dtype_policy),
            "name": layer.name,
            "trainable": layer.trainable,
        }


def test_save_load_round_trip(tmp_path):
    inputs = keras.Input((None, None, 3))
    x = PeriodicPadding2D(((1, 0), (2, 1)))(inputs)
    x = ReflectPadding2D(1)(x)
    x = keras.layers.Conv2D(3, 3)(x)
    outputs = GaussianDownsample(2, kernel_size=7, sigma=1.5, padding="reflect")(x)
    model = keras.Model(inputs, outputs)
    data = np.random.default_rng(4).normal(size=(2, 9, 9, 3)).astype("float32")
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
    assert loaded.layers[-1].get_config() == model.layers[-1].get_config()
    np.testing.assert_allclose(loaded.predict(data, verbose=0), model.predict(data, verbose=0),
                               rtol=0, atol=0)


class TestAlignedUpsample:
    @pytest.mark.parametrize("factor", [4, 8])
    @pytest.mark.parametrize("padding", ["periodic", "reflect"])
    @pytest.mark.parametrize("channels", [1, 3])
    def test_equals_numpy_baseline(self, factor, padding, channels):
        x = np.random.default_rng(factor + channels).uniform(-1, 1, size=(2, 6, 9, channels))
        x = x.astype("float32")
        out = np.asarray(AlignedUpsample(factor, padding=padding)(x))
        expected = upsample(x, factor, "bicubic", convention="aligned", padding=padding)
        assert out.shape == (2, 6 * factor, 9 * factor, channels)
        np.testing.assert_allclose(out, expected, rtol=0, atol=1e-5)

    def test_interpolates_the_samples_and_inverts_the_sampling_grid(self):
        x = np.random.default_rng(0).normal(size=(1, 8, 8, 3)).astype("float32")
        out = np.asarray(AlignedUpsample(4)(x))
        # LR pixel k sits at HR pixel 4k: a cubic spline passes through its samples
        np.testing.assert_allclose(out[:, ::4, ::4], x, atol=1e-5)

    @pytest.mark.parametrize("method", ["bilinear", "gaussian"])
    def test_channels_first_and_other_methods(self, method):
        x = np.random.default_rng(1).normal(size=(2, 5, 5, 3)).astype("float32")
        layer = AlignedUpsample(2, method=method, padding="reflect",
                                data_format="channels_first")
        out = np.asarray(layer(np.transpose(x, (0, 3, 1, 2))))
        expected = upsample(x, 2, method, padding="reflect")
        np.testing.assert_allclose(np.transpose(out, (0, 2, 3, 1)), expected, atol=1e-5)

    @pytest.mark.parametrize("padding", ["periodic", "reflect"])
    def test_dynamic_spatial_dims_and_tiny_maps(self, padding):
        layer = AlignedUpsample(4, padding=padding)
        assert layer(keras.Input((None, None, 3))).shape == (None, None, None, 3)
        assert layer.compute_output_shape((None, 8, None, 3)) == (None, 32, None, 3)
        fn = tf.function(layer, input_signature=[tf.TensorSpec((None, None, None, 3))])
        # sizes below the 33-tap reach fold the taps several times; 1 is a constant map
        for h, w in ((1, 1), (2, 3), (7, 12), (40, 5)):
            x = np.random.default_rng(h * w).normal(size=(1, h, w, 3)).astype("float32")
            np.testing.assert_allclose(fn(x).numpy(), upsample(x, 4, padding=padding),
                                       atol=1e-5)

    def test_has_no_weights(self):
        layer = AlignedUpsample(8)
        layer(np.zeros((1, 4, 4, 3), "float32"))
        assert layer.weights == []

    @pytest.mark.parametrize("kwargs,word", [
        ({"factor": 0}, "factor"),
        ({"factor": 2.0}, "factor"),
        ({"factor": 2, "method": "nearest"}, "method"),
        ({"factor": 2, "padding": "zeros"}, "padding"),
        ({"factor": 2, "data_format": "nhwc"}, "data_format"),
    ])
    def test_invalid_arguments(self, kwargs, word):
        with pytest.raises(ValueError, match=word):
            AlignedUpsample(**kwargs)

    def test_get_config(self):
        layer = AlignedUpsample(8, method="bilinear", padding="reflect")
        assert layer.get_config() == {
            "factor": 8,
            "method": "bilinear",
            "padding": "reflect",
            "pixel": "sample",
            "data_format": "channels_last",
            "dtype": keras.dtype_policies.serialize(layer.dtype_policy),
            "name": layer.name,
            "trainable": layer.trainable,
        }


class TestUnitVectors:
    def test_projects_onto_the_unit_sphere(self):
        x = np.random.default_rng(3).normal(size=(2, 4, 5, 3)).astype("float32")
        x[0, 0, 0] = 0.0
        out = np.asarray(UnitVectors()(x))
        norm = np.linalg.norm(x, axis=-1, keepdims=True)
        expected = np.where(norm > 0, x / np.maximum(norm, 1e-30), 0.0)
        np.testing.assert_allclose(out, expected, atol=1e-6)
        np.testing.assert_allclose(np.linalg.norm(out[1], axis=-1), 1.0, atol=1e-6)
        assert np.all(out[0, 0, 0] == 0.0)

    def test_zero_vector_has_a_finite_gradient(self):
        x = tf.Variable(np.zeros((1, 1, 1, 3), "float32"))
        with tf.GradientTape() as tape:
            y = tf.reduce_sum(UnitVectors()(x))
        assert np.all(np.isfinite(tape.gradient(y, x).numpy()))

    def test_one_channel_is_tanh_and_channels_first(self):
        x = np.random.default_rng(4).normal(size=(2, 3, 3, 1)).astype("float32")
        np.testing.assert_allclose(np.asarray(UnitVectors()(x)), np.tanh(x), atol=1e-6)
        v = np.random.default_rng(5).normal(size=(2, 3, 4, 4)).astype("float32")
        out = np.asarray(UnitVectors(data_format="channels_first")(v))
        np.testing.assert_allclose(out, v / np.linalg.norm(v, axis=1, keepdims=True), atol=1e-6)

    @pytest.mark.parametrize("epsilon", [0, -1.0, "1e-6", True])
    def test_invalid_epsilon(self, epsilon):
        with pytest.raises(ValueError, match="epsilon"):
            UnitVectors(epsilon=epsilon)

    def test_one_channel_soft_clip_is_the_identity_inside_and_bounded_outside(self):
        """soft_clip against a NumPy reference: x on [-1, 1], 1 + m tanh((|x| - 1)/m) beyond,
        odd, bounded by 1 + m, slope 1 inside and at the junction, sech² beyond."""
        x = np.linspace(-6, 6, 241, dtype="float32").reshape(1, 241, 1, 1)
        for m in (1.0, 0.25):
            out = np.asarray(UnitVectors(scalar="soft_clip", margin=m)(x))
            a = np.abs(x.astype(np.float64))
            ref = np.where(a <= 1, x, np.sign(x) * (1 + m * np.tanh((a - 1) / m)))
            np.testing.assert_allclose(out, ref, atol=1e-6)
            assert np.all(np.abs(out) <= 1 + m) and np.all(np.diff(out.ravel()) >= 0)
            assert np.all(np.diff(out.ravel()[np.abs(x.ravel()) < 1 + 2 * m]) > 0)
            v = tf.Variable(x)
            with tf.GradientTape() as tape:
                y = tf.reduce_sum(UnitVectors(scalar="soft_clip", margin=m)(v))
            grad = tape.gradient(y, v).numpy().ravel()
            a = a.ravel()
            np.testing.assert_allclose(grad[a <= 1], 1.0)
            np.testing.assert_allclose(grad[a > 1], 1 / np.cosh((a[a > 1] - 1) / m) ** 2,
                                       rtol=5e-3, atol=1e-5)
        vectors = np.random.default_rng(7).normal(size=(2, 3, 3, 3)).astype("float32")
        np.testing.assert_array_equal(np.asarray(UnitVectors(scalar="soft_clip")(vectors)),
                                      np.asarray(UnitVectors()(vectors)))

    @pytest.mark.parametrize("kwargs,word", [({"scalar": "clip"}, "scalar"),
                                             ({"scalar": "soft_clip", "margin": 0}, "margin"),
                                             ({"margin": float("inf")}, "margin")])
    def test_invalid_scalar_bound(self, kwargs, word):
        with pytest.raises(ValueError, match=word):
            UnitVectors(**kwargs)

    def test_config_without_the_scalar_key_is_tanh(self):
        """A model saved before the key existed keeps its meaning: tanh."""
        layer = UnitVectors.from_config({"epsilon": 1e-12, "data_format": "channels_last",
                                         "name": "sr", "trainable": True})
        assert layer.scalar == "tanh"
        x = np.random.default_rng(8).normal(size=(1, 4, 4, 1)).astype("float32") * 2
        np.testing.assert_allclose(np.asarray(layer(x)), np.tanh(x), atol=1e-6)

    def test_get_config(self):
        layer = UnitVectors(epsilon=1e-8)
        assert layer.get_config() == {
            "epsilon": 1e-8,
            "data_format": "channels_last",
            "scalar": "tanh",
            "margin": 1.0,
            "dtype": keras.dtype_policies.serialize(layer.dtype_policy),
            "name": layer.name,
            "trainable": layer.trainable,
        }


def test_variant_layers_save_load_round_trip(tmp_path):
    inputs = keras.Input((None, None, 3))
    x = AlignedUpsample(4, padding="reflect")(inputs)
    outputs = UnitVectors(epsilon=1e-10)(x)
    model = keras.Model(inputs, outputs)
    data = np.random.default_rng(6).normal(size=(2, 5, 7, 3)).astype("float32")
    model.save(tmp_path / "v.keras")
    loaded = keras.saving.load_model(tmp_path / "v.keras", safe_mode=True)
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
    for a, b in zip(loaded.layers[1:], model.layers[1:]):
        assert a.get_config() == b.get_config()
    np.testing.assert_array_equal(loaded.predict(data, verbose=0), model.predict(data, verbose=0))


@pytest.mark.parametrize("padding", ["periodic", "reflect"])
@pytest.mark.parametrize("pixel", ["sample", "integrate"])
@pytest.mark.parametrize("factor", [2, 8])
def test_free_size_graph_equals_static_size_graph(padding, pixel, factor):
    """A static size gets a NumPy-built constant operator, a free size (a SavedModel) the same
    matrix built with keras.ops: the two paths must give one model."""
    rng = np.random.default_rng(factor)
    hr = rng.normal(size=(2, 8 * factor, 6 * factor, 3)).astype("float32")
    down = GaussianDownsample(factor, 23, 1.3, padding, pixel=pixel)
    up = AlignedUpsample(factor, "bicubic", padding, pixel=pixel)

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    def free(x):
        return up(down(x))

    static = up(down(tf.constant(hr)))
    np.testing.assert_allclose(free(tf.constant(hr)).numpy(), static.numpy(), atol=2e-6)
