"""The λ rule: noise estimate and the discrepancy principle, from LR maps alone."""

import numpy as np
import pytest

from spinsr_tf.inference.weight_rule import choose_weight, noise_variance
from spinsr_tf.physics import TypeI


def test_noise_variance_of_white_noise():
    rng = np.random.default_rng(0)
    flat = np.full((4, 32, 32, 3), 0.3) + 0.05 * rng.normal(size=(4, 32, 32, 3))
    assert noise_variance(flat) == pytest.approx(0.05 ** 2, rel=0.1)


def test_choose_weight_follows_the_discrepancy_principle(textures):
    from spinsr_tf.data.degradation import gaussian_downsample

    clean = gaussian_downsample(textures, 4)
    noisy = clean + 0.03 * np.random.default_rng(0).normal(size=clean.shape)
    grid = (1e-3, 1e-1, 10.0, 1e3)
    # relaxed textures of the prior's own Hamiltonian: even the strongest prior fits them
    assert choose_weight(clean, TypeI(), 4, grid=grid, steps=60, noise=1e-4) == 1e3
    weight, details = choose_weight(noisy, TypeI(), 4, grid=grid, steps=60, noise=1e-4,
                                    return_details=True)
    errors = dict(zip(details["weights"], details["lr_mse"]))
    tol = details["tolerance"]
    assert tol == max(1e-4, 10 * details["lr_mse"][0])
    assert weight < 1e3 and errors[weight] <= tol     # the chosen λ fits within the noise
    nxt = grid[grid.index(weight) + 1]
    assert errors[nxt] > tol                          # and the next one does not
    assert choose_weight(noisy, TypeI(), 4, grid=grid, steps=60, noise=10.0) == 1e3


def test_choose_weight_backs_off_for_a_wrong_hamiltonian(textures):
    """Noise-free LR maps of relaxed Type I textures: the right Hamiltonian fits them at the
    largest λ; a DMI 50 % too strong, or of the wrong kind, soon costs misfit and gets a small λ."""
    from spinsr_tf.data.degradation import gaussian_downsample

    lr = gaussian_downsample(textures, 8)
    right, details = choose_weight(lr, TypeI(), 8, steps=100, return_details=True)
    assert right == 1.0 and details["tolerance"] == pytest.approx(10 * details["lr_mse"][0])
    for wrong in (TypeI(dmi=0.45), TypeI(dmi_kind="bulk")):
        weight, details = choose_weight(lr, wrong, 8, steps=100, return_details=True)
        assert weight <= 1e-3 and details["lr_mse"][-1] > details["tolerance"]
