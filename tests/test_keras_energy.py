"""The keras.ops energies against the NumPy reference (values, gradients, symbolic sizes)."""

import keras
import numpy as np
import pytest

from spinsr_tf.physics import TypeI, TypeII, dipolar_kernel, energy, local_field, with_field
from spinsr_tf.physics.keras_energy import dipolar_spectrum, energy_per_spin, exchange_only

HAMILTONIANS = [TypeI(), TypeI(dmi=-0.5, dmi_kind="bulk"), TypeII(),
                TypeII(dipolar=0.1, anisotropy=0.05, dipolar_form="printed"), exchange_only(),
                TypeII(dipolar=0.1, dipolar_images="minimum"), with_field(TypeI(), 0.05),
                with_field(TypeII(dipolar=0.1), (0.2, -0.1, 0.3))]


@pytest.mark.parametrize("shape", [(3, 8, 8), (2, 9, 6), (1, 16, 12)])
@pytest.mark.parametrize("ham", HAMILTONIANS, ids=lambda h: str(h.to_attrs()))
def test_energy_per_spin_matches_numpy(shape, ham):
    spins = np.random.default_rng(sum(shape)).normal(size=shape + (3,))
    reference = energy(spins, ham) / (shape[1] * shape[2])
    exact = keras.ops.convert_to_numpy(energy_per_spin(spins, ham))
    np.testing.assert_allclose(exact, reference, rtol=1e-12, atol=1e-12)
    single = keras.ops.convert_to_numpy(energy_per_spin(spins.astype("float32"), ham))
    np.testing.assert_allclose(single, reference, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("size", [(8, 8), (7, 10), (16, 5)])
@pytest.mark.parametrize("images", ["converged", "minimum"])
def test_dipolar_spectrum_is_the_fft_of_the_kernel(size, images):
    from spinsr_tf.physics.keras_energy import _kernel_ops

    for factor in (3.0, 1.0):
        want = np.fft.fft2(dipolar_kernel(size, factor, images)).real
        got = keras.ops.convert_to_numpy(dipolar_spectrum(*size, factor=factor, dtype="float64",
                                                          images=images))
        np.testing.assert_allclose(got, want, atol=1e-12)
        # the ops construction used when H and W are symbolic, fed concrete sizes
        kernel = keras.ops.convert_to_numpy(_kernel_ops(*size, factor, "float64", images))
        np.testing.assert_allclose(kernel, dipolar_kernel(size, factor, images), atol=1e-13)


@pytest.mark.parametrize("ham", [TypeI(), TypeII()], ids=["I", "II"])
def test_autodiff_gradient_is_minus_the_local_field(ham):
    import tensorflow as tf

    spins = np.random.default_rng(1).normal(size=(2, 10, 8, 3))
    x = tf.Variable(spins)
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(energy_per_spin(x, ham)) * 80
    grad = tape.gradient(total, x).numpy()
    np.testing.assert_allclose(grad, -local_field(spins, ham), atol=1e-10)


def test_works_on_maps_whose_size_is_known_only_at_run_time():
    inputs = keras.Input((None, None, 3))
    outputs = keras.layers.Lambda(lambda s: energy_per_spin(s, TypeII()))(inputs)
    model = keras.Model(inputs, outputs)
    for size in (8, 12):
        spins = np.random.default_rng(size).normal(size=(2, size, size, 3)).astype("float32")
        np.testing.assert_allclose(model.predict(spins, verbose=0),
                                   energy(spins, TypeII()) / size ** 2, rtol=1e-5)


def test_bad_shape_is_one_clear_error():
    from spinsr_tf.base.errors import UserError

    with pytest.raises(UserError, match="shape"):
        energy_per_spin(np.zeros((4, 4, 3)), TypeI())
