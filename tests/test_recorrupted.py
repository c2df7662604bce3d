"""Recorrupted pairs: independent noise in input and target, the LR term when noise is zero."""

import numpy as np
import pytest

from spinsr_tf.nn.config import TrainConfig, recipe
from spinsr_tf.nn.losses import Equivariance, Recorrupted, term_from_config
from spinsr_tf.nn.losses.recorrupted import Recorrupt
from spinsr_tf.nn.network import build_sr_model
from spinsr_tf.nn.training import build_training_graph


def test_pairs_have_uncorrelated_noise_of_the_stated_variance():
    sigma, alpha = 0.2, 0.5
    rng = np.random.default_rng(0)
    clean = rng.uniform(-1, 1, size=(64, 16, 16, 3)).astype(np.float32)
    y = clean + sigma * rng.standard_normal(clean.shape).astype(np.float32)
    y1, y2 = (np.asarray(a) for a in Recorrupt(sigma, alpha=alpha, seed=3)(y))
    e1, e2 = (y1 - clean).ravel(), (y2 - clean).ravel()
    assert np.var(e1) == pytest.approx(sigma ** 2 * (1 + alpha ** 2), rel=0.03)
    assert np.var(e2) == pytest.approx(sigma ** 2 * (1 + 1 / alpha ** 2), rel=0.03)
    assert abs(np.mean(e1 * e2)) < 0.02 * sigma ** 2 * 2.5  # the plain pair would give 1.0 σ²
    # the naive pair (y, y) has fully correlated noise: the control the test must tell apart
    assert np.mean((y - clean).ravel() ** 2) == pytest.approx(sigma ** 2, rel=0.03)


def test_signal_dependent_variance():
    y = np.full((1, 64, 64, 1), 4.0, np.float32)
    y1, _ = (np.asarray(a) for a in Recorrupt(0.0, noise_slope=0.5, alpha=1.0, seed=0)(y))
    assert np.var(y1 - y) == pytest.approx(0.5 * 4.0, rel=0.05)


def test_zero_noise_is_the_lr_term():
    network = build_sr_model(4, 3, output="unit", residual=True)
    config = recipe("equivariant", "x.h5", 4, losses=(Recorrupted(noise_std=0.0),))
    graph = build_training_graph(network, config)
    lr = np.random.default_rng(1).normal(size=(2, 8, 8, 3)).astype(np.float32)
    out = graph.predict(lr, verbose=0)["r2r"]
    lr_again = network.predict(lr, verbose=0)["lr"]
    np.testing.assert_allclose(out, np.mean((lr_again - lr) ** 2, axis=(1, 2, 3)), rtol=1e-5)


def test_config_round_trip_and_bad_values():
    term = Recorrupted(noise_std=0.1, noise_slope=0.02, alpha=0.4)
    assert term_from_config(term.to_config()) == term
    config = recipe("equivariant", "x.h5", 8, losses=(term, Equivariance()))
    assert TrainConfig.from_json(config.to_json()) == config
    from spinsr_tf.base.errors import UserError

    for bad in ({"noise_std": -1}, {"alpha": 0}, {"noise_slope": float("nan")}):
        with pytest.raises(UserError):
            Recorrupted(**bad)


def test_noise_aware_swaps_the_lr_term_for_the_noise_model():
    """The term fit-image trains with follows the noise model: the recipe's LR term becomes
    recorrupted pairs of that model (its std and slope), and stays for the model "none"."""
    from spinsr_tf.data.noise import NoiseModel
    from spinsr_tf.nn.config import RECIPES
    from spinsr_tf.nn.losses import LRConsistency
    from spinsr_tf.nn.losses.recorrupted import noise_aware

    losses = tuple(RECIPES["equivariant"]["losses"])
    assert any(isinstance(t, LRConsistency) for t in losses)
    assert noise_aware(losses, NoiseModel()) == losses
    for model in (NoiseModel("gaussian", 0.05), NoiseModel("poisson", 0.05, 0.01)):
        swapped = noise_aware(losses, model)
        r2r = [t for t in swapped if isinstance(t, Recorrupted)]
        assert len(swapped) == len(losses) and len(r2r) == 1
        assert not any(isinstance(t, LRConsistency) for t in swapped)
        assert r2r[0].noise == model and r2r[0] == Recorrupted.from_noise(model)
        assert (r2r[0].noise_std, r2r[0].noise_slope) == (model.std, model.slope)
