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


def test_camera_pixel_lr_maps_are_judged_with_camera_pixels(textures):
    """Relaxed textures seen through camera pixels: with their own operator the right prior is
    kept at the largest λ; judged with point samples (what the rule used for every model
    before) the truth seems to misfit and λ collapses."""
    from spinsr_tf.data.degradation import Degradation

    camera = Degradation(8, pixel="integrate")
    lr = camera.apply(textures)
    right, details = choose_weight(lr, TypeI(), camera, steps=100, return_details=True)
    assert right == 1.0 and max(details["lr_mse"]) <= details["tolerance"]
    assert choose_weight(lr, TypeI(), Degradation(8), steps=100) <= 1e-3


def test_training_weight_rule_uses_the_runs_pixel_model(textures, tmp_path, monkeypatch):
    """``with_chosen_weights`` hands the run's whole degradation (here camera pixels set in the
    configuration, HR maps degraded on the fly) to the rule."""
    from conftest import write_type_i_file
    from spinsr_tf.data.degradation import Degradation
    from spinsr_tf.inference import weight_rule
    from spinsr_tf.nn.config import recipe
    from spinsr_tf.nn.losses import LRConsistency, PhysicsPrior

    seen = {}

    def spy(lr, hamiltonian, degradation, **kwargs):
        seen["degradation"], seen["lr"] = degradation, lr
        return 0.5, {"tolerance": 1.0}

    monkeypatch.setattr(weight_rule, "choose_weight", spy)
    path = write_type_i_file(tmp_path / "hr.h5", textures)
    config = recipe("residual_unit", path, 8, pixel="integrate", val_fraction=0.0,
                    losses=(LRConsistency(), PhysicsPrior(prior="typeI")))
    chosen = weight_rule.with_chosen_weights(config, progress=False)
    assert chosen.term(PhysicsPrior).weight == 0.5
    assert seen["degradation"] == Degradation(8, pixel="integrate")
    hr = np.concatenate([textures, np.roll(textures, 5, axis=2)]).astype(np.float32)
    np.testing.assert_array_equal(seen["lr"], seen["degradation"].apply(hr))
