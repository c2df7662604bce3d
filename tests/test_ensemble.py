"""The ensemble's group (spinsr_tf.inference.ensemble): the flip S → −S only for an image
without net magnetisation; holes ignored."""

import numpy as np
import pytest

from spinsr_tf.inference.ensemble import IN_FIELD, MAGNETISED, ensemble_group, ensemble_groups


def tilted_stripes(bias: float, size: int = 16) -> np.ndarray:
    """Unit vectors turning along stripes, their Sz shifted by ``bias`` (a film in a field)."""
    phi = np.pi * np.linspace(0.0, 6.0, size)[None, :] * np.ones((size, 1))
    m = np.stack([np.sin(phi), np.zeros_like(phi), np.cos(phi) + bias], -1)
    return m / np.linalg.norm(m, axis=-1, keepdims=True)


def test_ensemble_leaves_out_the_flip_of_a_magnetised_image():
    """The flip S → −S is averaged over only where the image has no net Sz: a field breaks
    it. Holes do not count, whatever they hold."""
    balanced, tilted = tilted_stripes(0.0), tilted_stripes(1.2)
    assert abs(balanced[..., 2].mean()) < MAGNETISED < tilted[..., 2].mean()
    assert ensemble_group(balanced)["group"] == "lattice"
    assert ensemble_group(tilted)["group"] == "lattice-in-field"
    assert ensemble_group(-tilted)["group"] == "lattice-in-field"
    holes = np.zeros(balanced.shape[:2], bool)
    holes[:, :6] = True                      # a third of the image outside the magnet ...
    padded = balanced.copy()
    padded[holes] = (0.0, 0.0, 1.0)          # ... holding +Sz (filled with a neighbour)
    assert ensemble_group(padded)["group"] == "lattice-in-field"
    record = ensemble_group(padded, ~holes)
    assert record["group"] == "lattice"
    assert record["mean_sz"] == pytest.approx(balanced[..., 2][~holes].mean())


def test_groups_of_a_stack_map_by_map_and_of_a_grey_image():
    """One group per map, each map's own mask; a grey image's Sz is its one channel."""
    stack = np.stack([tilted_stripes(0.0), tilted_stripes(1.2), -tilted_stripes(1.2)])
    assert ensemble_groups(stack) == ["lattice", "lattice-in-field", "lattice-in-field"]
    masks = np.ones(stack.shape[:3], bool)
    masks[1] = stack[1, ..., 2] < 0.5        # the magnet: only where Sz is low
    assert ensemble_groups(stack, masks) == [ensemble_group(m, k)["group"]
                                             for m, k in zip(stack, masks)]
    assert ensemble_groups(stack, masks)[1] == "lattice"
    assert ensemble_groups(stack[..., 2:]) == ensemble_groups(stack)


def test_a_model_without_a_recorded_hamiltonian_gets_no_reflections():
    """Spin maps: the same flip rule, the mirrors left out; a grey image keeps them."""
    from spinsr_tf.inference.ensemble import NO_REFLECTIONS

    flat = np.zeros((2, 8, 8, 3), np.float32)
    flat[..., 0] = 1.0
    flat[1, ..., 2], flat[1, ..., 0] = 0.6, 0.8          # map 1 magnetised
    assert ensemble_groups(flat) == ["lattice", IN_FIELD]
    assert ensemble_groups(flat, hamiltonian_known=False) == [
        "translations+rotations+flip", "translations+rotations"]
    assert NO_REFLECTIONS == {"lattice": "translations+rotations+flip",
                              IN_FIELD: "translations+rotations"}
    grey = flat[..., 2:]
    assert ensemble_groups(grey, hamiltonian_known=False) == ["lattice", IN_FIELD]
